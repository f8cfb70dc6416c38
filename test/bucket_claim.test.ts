import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { claimEntriesPrefix, claimEntryKey, takeClaim } from '../lib/bucket_claim.ts';
import { readWorkflowRecord } from '../lib/workflow.ts';
import { keysOf, startPipelineFixture, type PipelineFixture } from './support/pipeline_fixture.ts';
import { runCli } from './support/run_cli.ts';

/**
 * Issue 8, "Run twice": two launch directories (or two crondor jobs whose patterns overlap)
 * watching one bucket must never both claim a manifest. The claim is exclusive in the bucket
 * itself (lib/bucket_claim.ts), checked here on a real S3 server with real concurrent processes.
 */

let fx: PipelineFixture;
before(async () => {
  fx = await startPipelineFixture();
});
after(async () => {
  await fx.stop();
});
beforeEach(async () => {
  await fx.reset();
});

const IN = () => fx.settings.inputBucket;
const noPause = async () => undefined;

/** Makes an object look written `minutes` ago: s3rver reports its file's mtime as Last-Modified. */
function backdate(key: string, minutes: number): void {
  const parts = key.split('/');
  const file = path.join(fx.s3.directory, IN(), ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
  const then = new Date(Date.now() - minutes * 60_000);
  utimesSync(file, then, then);
}

test('two claimants at once: never both hold the claim, and the one that does not leaves no entry', async () => {
  const manifest = 'Wood/batch_raw.csv';
  let held = 0;
  for (let round = 0; round < 12; round++) {
    const ids = [`host-a:/launch/a/workflow-run-${round}`, `host-b:/launch/b/workflow-run-${round}`];
    const outcomes = await Promise.all(ids.map((id) => takeClaim(fx.store, IN(), manifest, id)));
    const holders = ids.filter((_, i) => outcomes[i]!.held);
    assert.ok(holders.length <= 1, `round ${round}: both hold the claim`);
    const entries = (await keysOf(fx.store, IN())).filter((k) => k.startsWith(claimEntriesPrefix(manifest)));
    assert.deepEqual(entries, holders.map((id) => claimEntryKey(manifest, id)), `round ${round}: only the holder's entry is left`);
    for (const [i, outcome] of outcomes.entries()) {
      if (!outcome.held) assert.match(outcome.why, new RegExp(`another workflow \\(${ids[1 - i]}\\) is claiming it right now; left for the next cycle`));
    }
    for (const key of entries) await fx.store.delete(IN(), key);
    held += holders.length;
  }
  // The random pause between tries lets one of two claimants through nearly always.
  assert.ok(held >= 6, `only ${held} of 12 rounds had a holder`);
});

test('an entry left by a claimant killed long ago keeps everyone off the manifest, and the message says which entry to delete', async () => {
  const manifest = 'Wood/batch_raw.csv';
  const stale = claimEntryKey(manifest, 'host-a:/launch/a/workflow-run-20261125-101500');
  await fx.store.putText(IN(), stale, '{"workflowId":"host-a:/launch/a/workflow-run-20261125-101500"}\n');
  backdate(stale, 10);
  const outcome = await takeClaim(fx.store, IN(), manifest, 'host-b:/launch/b/workflow-run-1', { pause: noPause });
  assert.equal(outcome.held, false);
  assert.match(
    (outcome as { why: string }).why,
    /^another workflow \(host-a:\/launch\/a\/workflow-run-20261125-101500\) has held a claim on it since \S+ without finishing; it is left for that launch directory's next cycle \(if that launch directory is gone, delete s3:\/\/sco-in\/Wood\/\.cog-pipeline-claims\/batch_raw\.csv\/[0-9a-f]{24}\)$/,
  );
  assert.deepEqual(await keysOf(fx.store, IN()), [stale]);
});

test('a put-back keeps its entry while another claimant is there, so the manifest cannot be taken half way', async () => {
  const manifest = 'Wood/batch_raw.csv';
  const other = claimEntryKey(manifest, 'host-a:/a/workflow-run-1');
  await fx.store.putText(IN(), other, '{"workflowId":"host-a:/a/workflow-run-1"}\n');
  const outcome = await takeClaim(fx.store, IN(), manifest, 'host-b:/b/workflow-run-2', { keepOnContention: true, pause: noPause });
  assert.equal(outcome.held, false);
  assert.deepEqual(await keysOf(fx.store, IN()), [other, claimEntryKey(manifest, 'host-b:/b/workflow-run-2')].sort());
});

test('the crondor cycle leaves a manifest another launch directory is claiming, says so, and exits 0', async () => {
  await fx.store.putText(IN(), 'Dane/batch_raw.csv', 'Dane/nowhere.tif,1\n');
  const stale = claimEntryKey('Dane/batch_raw.csv', 'elsewhere:/srv/other/workflow-run-20261125-100000');
  await fx.store.putText(IN(), stale, '{"workflowId":"elsewhere:/srv/other/workflow-run-20261125-100000"}\n');
  backdate(stale, 30);
  const r = await runCli(['crondor', ...fx.launchArgs(), '--launch-dir', fx.launchDir]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Dane\/batch_raw\.csv is not claimed: another workflow \(elsewhere:\/srv\/other\/workflow-run-20261125-100000\) has held a claim on it since/);
  assert.match(r.stdout, /nothing claimed this cycle/);
  assert.deepEqual(await keysOf(fx.store, IN()), [stale, 'Dane/batch_raw.csv'].sort());
  assert.deepEqual(readdirSync(fx.launchDir).filter((n) => n.startsWith('workflow-run-')), []);
});

test('two launch directories watching one bucket, started together: every manifest is claimed by one of them, once', async () => {
  // Manifests whose images are missing: each is settled by the cycle that claims it (a failed
  // CSV, no DAG), so the race is only between the claims.
  const manifests = Array.from({ length: 10 }, (_, i) => `County${i}/batch_raw.csv`);
  for (const key of manifests) await fx.store.putText(IN(), key, `${key.replace(/batch_raw\.csv$/, 'x.tif')},1\n`);
  const launchDirs = ['one', 'two'].map((name) => {
    const dir = path.join(fx.launchDir, name);
    mkdirSync(dir);
    return dir;
  });
  const cycle = (dir: string) => runCli(['crondor', ...fx.launchArgs(), '--launch-dir', dir]);
  let transcript = '';
  for (let round = 0; round < 3; round++) {
    const results = await Promise.all(launchDirs.map(cycle));
    for (const r of results) {
      transcript += r.stdout + r.stderr;
      assert.equal(r.code, 0, transcript);
    }
  }

  // Who claimed what, by the workflow records of both launch directories.
  const claims = new Map<string, string[]>();
  for (const dir of launchDirs) {
    for (const name of readdirSync(dir).filter((n) => n.startsWith('workflow-run-'))) {
      const record = await readWorkflowRecord(path.join(dir, name));
      assert.equal(record.state, 'settled', transcript);
      for (const m of record.manifests.filter((m) => m.claimed !== false)) {
        claims.set(m.sourceKey, [...(claims.get(m.sourceKey) ?? []), path.join(path.basename(dir), name)]);
      }
    }
  }
  for (const key of manifests) assert.equal(claims.get(key)?.length, 1, `${key} claimed by ${JSON.stringify(claims.get(key))}\n${transcript}`);

  // The user's view: one failed CSV next to each manifest, holding its row once; nothing else left.
  const keys = await keysOf(fx.store, IN());
  for (const key of manifests) {
    const csvs = keys.filter((k) => k.startsWith(key.replace(/raw\.csv$/, '')));
    assert.equal(csvs.length, 1, `${key}: ${csvs.join(', ')}`);
    assert.match(csvs[0]!, /failed-\d{8}-\d{6}\.csv$/);
    assert.equal(await fx.store.getText(IN(), csvs[0]!), `${key.replace(/batch_raw\.csv$/, 'x.tif')},1\n`);
  }
  assert.equal(keys.length, manifests.length, `no claim entry or processing object is left: ${keys.join(', ')}`);
});
