import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { claimEntryKey } from '../lib/bucket_claim.ts';
import { CRASH_AT_VARIABLE, CRASH_POINTS, type CrashPointName } from '../lib/crash_point.ts';
import { runCrondorCycle, type CycleDeps } from '../lib/crondor.ts';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { jobEnvironment, selfInvocation } from '../lib/invocation.ts';
import { SOURCE_METADATA, WORKFLOW_METADATA, workflowIdOf } from '../lib/recovery.ts';
import { createS3Client, S3Store } from '../lib/s3_store.ts';
import { ApiSchedd } from '../lib/schedd.ts';
import { dagmanJob } from '../lib/submit_rendering.ts';
import { readWorkflowRecord, writeWorkflowRecord, type WorkflowRecord } from '../lib/workflow.ts';
import { fixturePath, keysOf, memoryLogger, startPipelineFixture, type PipelineFixture } from './support/pipeline_fixture.ts';
import { runCli } from './support/run_cli.ts';
import { settingsFor } from './support/s3_server.ts';

/**
 * Issue 8, "Every manifest exactly once": a crondor cycle or a post step killed at any step (as a
 * reboot would: SIGKILL, lib/crash_point.ts) leaves nothing the next cycles cannot finish. For
 * every crash point, with the real command line, the htcondor-api stand-in and a real S3 server,
 * the user's view afterwards: every manifest row is once in a processed or failed CSV next to its
 * manifest, no processing object is left, no image is converted twice (one DAG per manifest), and
 * nothing else in the bucket is lost, renamed or added.
 */

let fx: PipelineFixture;
/** Every DAGMan job the stand-in's schedd accepted, and every node job DAGMan submitted (by image). */
const dagmanJobs: Array<{ clusterId: number; workflowDir: string }> = [];
const nodeJobs: string[] = [];
/** What the cycles said, for failure messages. */
let transcript = '';

before(async () => {
  fx = await startPipelineFixture({ standin: { execution: { startDelayMs: 50, periodicIntervalMs: 200, submitRetryDelayMs: 100 } } });
  const schedd = fx.standin.schedd;
  const submitRemote = schedd.submitRemote.bind(schedd);
  schedd.submitRemote = (text, opts) => {
    const result = submitRemote(text, opts);
    const job = schedd.get(`${result.clusterId}.0`);
    const ad = job?.ad.toJSON();
    if (ad?.JobUniverse === 7) {
      dagmanJobs.push({ clusterId: result.clusterId, workflowDir: String(ad.JobDescription) });
      if (holdNewDags) schedd.hold([job!], 'held by the test');
    }
    return result;
  };
  const submit = schedd.submit.bind(schedd);
  schedd.submit = (text, how) => {
    const result = submit(text, how);
    if (how.macros?.FULL_INFILE !== undefined) nodeJobs.push(how.macros.FULL_INFILE.replace(/^"|"$/g, ''));
    return result;
  };
});
after(async () => {
  await fx.stop();
});
beforeEach(async () => {
  holdNewDags = false;
  releaseDags();
  await waitForDags();
  await fx.schedd.removeByConstraint('JobUniverse == 7', 'left by an earlier test');
  await fx.reset();
  dagmanJobs.length = 0;
  nodeJobs.length = 0;
  transcript = '';
});

const IN = () => fx.settings.inputBucket;
const OUT = () => fx.settings.outputBucket;

type Manifest = { key: string; text: string };

/**
 * The bucket before the crash. 'dag': one manifest with a good row and a missing image, one all
 * bad (one workflow, one DAG). 'all-bad': two manifests with no image to convert (settled by the
 * cycle itself, no DAG).
 */
async function seed(scenario: 'dag' | 'all-bad'): Promise<Manifest[]> {
  await fx.store.upload(IN(), 'Wood/good.tif', fixturePath('1band-small.tif'));
  await fx.store.putText(IN(), 'Wood/notes.txt', 'not the pipeline\'s\n');
  const manifests: Manifest[] =
    scenario === 'dag'
      ? [
          { key: 'Wood/batch1_raw.csv', text: 'Wood/good.tif,1\nWood/missing.tif,1\n' },
          { key: 'Dane/batch2_raw.csv', text: 'Dane/nowhere.tif,1\nnot a row\n' },
        ]
      : [
          { key: 'Dane/batch2_raw.csv', text: 'Dane/nowhere.tif,1\nnot a row\n' },
          { key: 'Iron/batch3_raw.csv', text: 'Iron/nowhere.tif,3\n' },
        ];
  for (const m of manifests) await fx.store.putText(IN(), m.key, m.text, 'text/csv');
  return manifests;
}

function cycle(env: Record<string, string> = {}, extra: string[] = []) {
  return runCli(['crondor', ...fx.launchArgs(), ...extra, '--launch-dir', fx.launchDir], { env }).then((r) => {
    transcript += `--- crondor (${JSON.stringify(env)}) exit ${r.code}\n${r.stdout}${r.stderr}`;
    return r;
  });
}

/** Resolves once every DAGMan job submitted so far that may run (set up: Requirements true) has left the queue. */
async function waitForDags(): Promise<void> {
  for (const { clusterId } of dagmanJobs) {
    const job = fx.standin.schedd.get(`${clusterId}.0`);
    if (job && job.ad.toJSON().Requirements !== true) continue;
    await fx.standin.waitForJob(`${clusterId}.0`, { timeoutMs: 60_000 });
  }
}

function workflowDirs(): string[] {
  return existsSync(fx.launchDir) ? readdirSync(fx.launchDir).filter((n) => n.startsWith('workflow-run-')).map((n) => path.join(fx.launchDir, n)) : [];
}

async function records(): Promise<Array<{ dir: string; record: WorkflowRecord }>> {
  return Promise.all(workflowDirs().map(async (dir) => ({ dir, record: await readWorkflowRecord(dir) })));
}

/** Normal cycles (DAGs let finish in between) until every workflow is settled or rolled back; then one more, which must find nothing to do. */
async function cyclesUntilSettled(): Promise<void> {
  for (let i = 0; ; i++) {
    assert.ok(i < 5, `not settled after 5 cycles\n${transcript}`);
    await waitForDags();
    const r = await cycle();
    assert.equal(r.code, 0, transcript);
    await waitForDags();
    const all = await records();
    const keys = await keysOf(fx.store, IN());
    if (all.every(({ record }) => record.state === 'settled' || record.state === 'rolled-back') && !keys.some((k) => /(raw|processing-\d{8}-\d{6})\.csv$/.test(k))) break;
  }
  // One more cycle (in this process: quicker) finds nothing to do and nothing to say.
  const log = memoryLogger();
  const last = await runCrondorCycle(fx.settings, { ...cycleDeps(), log });
  assert.deepEqual(last, { outcome: 'idle' }, `${transcript}${log.text()}`);
  assert.doesNotMatch(log.text(), /WARN|ERROR/, `${transcript}${log.text()}`);
}

function cycleDeps(overrides: Partial<CycleDeps> = {}): CycleDeps & { log: ReturnType<typeof memoryLogger> } {
  return {
    store: fx.store,
    schedd: fx.schedd,
    log: memoryLogger(),
    now: () => new Date(),
    launchDir: fx.launchDir,
    invocation: selfInvocation(),
    environment: jobEnvironment(process.env),
    ...overrides,
  } as CycleDeps & { log: ReturnType<typeof memoryLogger> };
}

/** The user's view: each manifest's rows once in its processed/failed CSVs (of one workflow), nothing else changed. */
async function assertExactlyOnce(manifests: Manifest[], imageEtag: string): Promise<void> {
  const keys = await keysOf(fx.store, IN());
  const csvs: string[] = [];
  for (const m of manifests) {
    const stem = m.key.slice(0, -'raw.csv'.length);
    const mine = keys.filter((k) => k.startsWith(stem) && /^(processed|failed)-\d{8}-\d{6}\.csv$/.test(k.slice(stem.length)));
    csvs.push(...mine);
    assert.ok(mine.length > 0, `no CSV for ${m.key}: ${keys.join(', ')}\n${transcript}`);
    assert.equal(new Set(mine.map((k) => k.slice(-19))).size, 1, `the CSVs of ${m.key} come from one workflow: ${mine.join(', ')}`);
    const rows: string[] = [];
    for (const k of mine) rows.push(...(await fx.store.getText(IN(), k)).split('\n').filter((l) => l !== ''));
    assert.deepEqual(rows.sort(), m.text.split('\n').filter((l) => l !== '').sort(), `${m.key}: every row exactly once\n${transcript}`);
    const processed = mine.find((k) => k.includes('processed-'));
    if (m.text.includes('Wood/good.tif')) {
      assert.ok(processed, `${m.key}: the good row is processed`);
      assert.equal(await fx.store.getText(IN(), processed), 'Wood/good.tif,1\n');
    } else {
      assert.equal(processed, undefined);
    }
  }
  // Nothing lost, renamed or added: the image and the other object as they were, plus the CSVs.
  assert.deepEqual(keys, ['Wood/good.tif', 'Wood/notes.txt', ...csvs].sort(), transcript);
  assert.equal((await fx.store.head(IN(), 'Wood/good.tif'))?.etag, imageEtag, 'the image is untouched');
  assert.equal(await fx.store.getText(IN(), 'Wood/notes.txt'), 'not the pipeline\'s\n');

  // One DAG per manifest, each image converted once.
  const dags = new Map<string, number>();
  for (const { workflowDir } of dagmanJobs) {
    // DAGMan writes its dagman.out first thing: the DAGs that ran.
    if (!existsSync(path.join(workflowDir, 'dagfile.dag.dagman.out'))) continue;
    for (const m of (await readWorkflowRecord(workflowDir)).manifests) if (m.claimed !== false) dags.set(m.sourceKey, (dags.get(m.sourceKey) ?? 0) + 1);
  }
  for (const [key, n] of dags) assert.equal(n, 1, `${key} went into ${n} DAGs\n${transcript}`);
  const converted = new Map<string, number>();
  for (const image of nodeJobs) converted.set(image, (converted.get(image) ?? 0) + 1);
  for (const [image, n] of converted) assert.equal(n, 1, `${image} converted ${n} times`);
  if (manifests.some((m) => m.text.includes('Wood/good.tif'))) {
    assert.deepEqual([...converted.keys()], ['Wood/good.tif']);
    assert.deepEqual(await keysOf(fx.store, OUT()), ['Wood/good.jpg', 'Wood/good.tif']);
    assert.equal(dags.size, 2, 'both manifests went into the DAG that ran');
  } else {
    assert.equal(dagmanJobs.length, 0, 'no DAG for manifests with nothing to convert');
  }
  for (const { dir, record } of await records()) {
    assert.ok(record.state === 'settled' || record.state === 'rolled-back', `${dir} is ${record.state}`);
  }
}

const KILLED = 137; // tsx passes on the child's SIGKILL as 128 + 9

/** DAGMan jobs are put on hold as they are submitted (so a test can look at them before they run). */
let holdNewDags = false;

function heldDags(): number[] {
  return dagmanJobs.map((d) => d.clusterId).filter((c) => fx.standin.schedd.get(`${c}.0`)?.ad.toJSON().JobStatus === 5);
}

function releaseDags(): void {
  for (const c of heldDags()) fx.standin.schedd.release([fx.standin.schedd.get(`${c}.0`)!], 'released by the test');
}

/** What a manifest is in the bucket: under its raw name, its processing name, or both. */
async function whereIs(key: string): Promise<string> {
  const stem = key.slice(0, -'raw.csv'.length);
  const keys = await keysOf(fx.store, IN());
  const raw = keys.includes(key);
  const processing = keys.some((k) => k.startsWith(stem) && /^processing-\d{8}-\d{6}\.csv$/.test(k.slice(stem.length)));
  return raw && processing ? 'both' : raw ? 'raw' : processing ? 'processing' : 'neither';
}

/**
 * Crash points of the crondor cycle itself, with what the crash leaves: the workflow's state and
 * where the two manifests are (Dane/batch2 is claimed first: keys are listed in order).
 */
const CYCLE_POINTS: Array<{ point: CrashPointName; state: string; dane: string; wood: string; next: RegExp }> = [
  { point: 'cycle:before-claim', state: 'claiming', dane: 'raw', wood: 'raw', next: /rolled back/ },
  { point: 'claim:after-entry', state: 'claiming', dane: 'raw', wood: 'raw', next: /rolled back/ },
  { point: 'claim:after-copy', state: 'claiming', dane: 'both', wood: 'raw', next: /deleted s3:\/\/sco-in\/Dane\/batch2_processing-\S+: s3:\/\/sco-in\/Dane\/batch2_raw\.csv is there[^]*rolled back/ },
  { point: 'cycle:after-claim', state: 'claiming', dane: 'processing', wood: 'raw', next: /put back s3:\/\/sco-in\/Dane\/batch2_raw\.csv[^]*rolled back/ },
  { point: 'cycle:after-read', state: 'claiming', dane: 'processing', wood: 'raw', next: /put back s3:\/\/sco-in\/Dane\/batch2_raw\.csv[^]*rolled back/ },
  { point: 'cycle:between-manifests', state: 'claiming', dane: 'processing', wood: 'raw', next: /rolled back/ },
  { point: 'cycle:claimed', state: 'claimed', dane: 'processing', wood: 'processing', next: /claimed but with no submission recorded[^]*rolled back/ },
  { point: 'cycle:before-submit', state: 'claimed', dane: 'processing', wood: 'processing', next: /rolled back/ },
  { point: 'cycle:after-submit', state: 'claimed', dane: 'processing', wood: 'processing', next: /its DAGMan job \d+\.0 is in the queue though no submission was recorded .*: recorded as submitted, left to run/ },
  { point: 'cycle:submitted', state: 'submitted', dane: 'processing', wood: 'processing', next: /no new manifests/ },
];
const POST_POINTS: CrashPointName[] = ['post:started', 'post:after-processed-csv', 'post:before-delete', 'post:after-delete', 'post:between-manifests', 'post:before-settled'];

describe('a crondor cycle killed at', () => {
  for (const { point, state, dane, wood, next } of CYCLE_POINTS) {
    test(point, async () => {
      const manifests = await seed('dag');
      const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
      holdNewDags = true;
      try {
        const r = await cycle({ [CRASH_AT_VARIABLE]: point });
        assert.equal(r.code, KILLED, `killed at ${point}\n${transcript}`);
        // What the crash left: the step recorded, the manifests half way.
        const [left, ...others] = await records();
        assert.equal(others.length, 0);
        assert.equal(left!.record.state, state, transcript);
        assert.equal(await whereIs('Dane/batch2_raw.csv'), dane);
        assert.equal(await whereIs('Wood/batch1_raw.csv'), wood);
        const submitted = point === 'cycle:after-submit' || point === 'cycle:submitted';
        assert.equal(dagmanJobs.length, submitted ? 1 : 0);
        // The next cycle finishes or rolls back what was left (a DAG is held, so still in the queue).
        const second = await cycle();
        assert.equal(second.code, 0, transcript);
        assert.match(second.stdout, next, transcript);
        if (submitted) {
          assert.equal((await readWorkflowRecord(left!.dir)).state, 'submitted', 'the held DAG is left to run');
          assert.equal(dagmanJobs.length, 1, 'and not submitted again');
        }
      } finally {
        holdNewDags = false;
        releaseDags();
      }
      await cyclesUntilSettled();
      await assertExactlyOnce(manifests, etag);
    });
  }

  test('putback:after-copy (putting the manifests back after a failed submission)', async () => {
    const manifests = await seed('dag');
    const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
    const wrongToken = path.join(fx.home, 'wrong-token');
    writeFileSync(wrongToken, 'not-the-token\n');
    const r = await cycle({ [CRASH_AT_VARIABLE]: 'putback:after-copy' }, ['--api-token-file', wrongToken]);
    assert.equal(r.code, KILLED, transcript);
    assert.match(r.stdout, /submitting the workflow failed: .*401/);
    assert.equal(await whereIs('Dane/batch2_raw.csv'), 'both', 'killed between the copy and the delete of the put-back');
    assert.equal(await whereIs('Wood/batch1_raw.csv'), 'processing');
    await cyclesUntilSettled();
    await assertExactlyOnce(manifests, etag);
  });

  test('recovery:before-rolled-back (every manifest put back, not yet recorded)', async () => {
    const manifests = await seed('dag');
    const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
    // First killed after claiming; the next cycle, rolling that back, is killed too.
    assert.equal((await cycle({ [CRASH_AT_VARIABLE]: 'cycle:claimed' })).code, KILLED, transcript);
    assert.equal((await cycle({ [CRASH_AT_VARIABLE]: 'recovery:before-rolled-back' })).code, KILLED, transcript);
    assert.equal(await whereIs('Dane/batch2_raw.csv'), 'raw');
    assert.equal(await whereIs('Wood/batch1_raw.csv'), 'raw');
    assert.equal((await records())[0]!.record.state, 'claimed');
    await cyclesUntilSettled();
    await assertExactlyOnce(manifests, etag);
    assert.deepEqual((await records()).map(({ record }) => record.state), ['rolled-back', 'settled']);
  });
});

describe("DAGMan's post step killed at", () => {
  for (const point of POST_POINTS) {
    test(point, async () => {
      const manifests = await seed('dag');
      const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
      const r = await cycle({ [CRASH_AT_VARIABLE]: point });
      assert.equal(r.code, 0, transcript);
      await waitForDags();
      const { dir, record } = (await records())[0]!;
      assert.equal(record.state, 'settling', `the post step was killed at ${point}`);
      assert.match(readFileSync(path.join(dir, 'dagfile.dag.dagman.out'), 'utf8'), /POST Script of Node final died on signal 9/);
      await cyclesUntilSettled();
      assert.match(transcript, /its DAGMan job is gone but its post step did not finish: running the post step now/);
      await assertExactlyOnce(manifests, etag);
    });
  }
});

describe('the in-cycle post step (nothing to convert) killed at', () => {
  for (const point of ['cycle:before-settle', ...POST_POINTS.filter((p) => p !== 'post:after-processed-csv')] as CrashPointName[]) {
    test(point, async () => {
      const manifests = await seed('all-bad');
      const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
      const r = await cycle({ [CRASH_AT_VARIABLE]: point });
      assert.equal(r.code, KILLED, transcript);
      assert.equal((await records())[0]!.record.state, point === 'cycle:before-settle' ? 'claimed' : 'settling');
      await cyclesUntilSettled();
      await assertExactlyOnce(manifests, etag);
    });
  }
});

test('every crash point is exercised by a test above', () => {
  const covered = new Set<string>([...CYCLE_POINTS.map((c) => c.point), ...POST_POINTS, 'cycle:before-settle', 'putback:after-copy', 'recovery:before-rolled-back']);
  assert.deepEqual(CRASH_POINTS.filter((p) => !covered.has(p)), []);
});

test('a DAGMan job submitted but never set up (killed inside the submission) is removed, and the workflow rolled back and submitted once', async () => {
  const manifests = await seed('dag');
  const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
  assert.equal((await cycle({ [CRASH_AT_VARIABLE]: 'cycle:before-submit' })).code, KILLED, transcript);
  // What a kill between POST /jobs and the set-up leaves: the job in the queue, Requirements false.
  const dir = (await records())[0]!.dir;
  const job = dagmanJob({ dagman: fx.settings.dagman, dagFile: path.join(dir, 'dagfile.dag'), batchName: 'COG-Pipeline-DAG-*raw.csv', maxJobs: 50, environment: {} });
  const api = new HtcondorApi({ url: fx.standin.url, token: readFileSync(fx.standin.tokenFile, 'utf8').trim() });
  const { clusterId } = await api.submit(job.description);
  await api.close();
  await cyclesUntilSettled();
  assert.match(transcript, new RegExp(`removed DAGMan job ${clusterId}\\.0, submitted but never set up to start by a stopped cycle`));
  assert.equal(fx.standin.schedd.get(`${clusterId}.0`), undefined, 'the half set up job is gone');
  assert.ok(!existsSync(path.join(dir, 'dagfile.dag.dagman.out')), 'and never ran');
  await assertExactlyOnce(manifests, etag);
  assert.equal(dagmanJobs.length, 2);
});

test('a processing object of this launch directory whose workflow directory is gone is put back and claimed again', async () => {
  const manifests = await seed('dag');
  const etag = (await fx.store.head(IN(), 'Wood/good.tif'))!.etag;
  assert.equal((await cycle({ [CRASH_AT_VARIABLE]: 'cycle:claimed' })).code, KILLED, transcript);
  const dir = (await records())[0]!.dir;
  rmSync(dir, { recursive: true });
  await cyclesUntilSettled();
  assert.match(transcript, /s3:\/\/sco-in\/Wood\/batch1_processing-\S+ was left behind \(its workflow directory \S+ is gone\): put back as Wood\/batch1_raw\.csv/);
  await assertExactlyOnce(manifests, etag);
});

describe('in one process', () => {
  const deps = cycleDeps;

  test('the processing object carries its workflow id and raw key; the user\'s metadata and Content-Type survive the claim and the put-back', async () => {
    await fx.store.upload(IN(), 'Wood/good.tif', fixturePath('1band-small.tif'));
    await fx.store.putText(IN(), 'Wood/meta_raw.csv', 'Wood/good.tif,1\n', 'text/csv; charset=utf-8');
    await fx.store.copyWithMetadata(IN(), 'Wood/meta_raw.csv', 'Wood/meta_raw.csv', (await fx.store.head(IN(), 'Wood/meta_raw.csv'))!, { owner: 'gis staff' });
    const refusing = new ApiSchedd(new HtcondorApi({ url: fx.standin.url, token: 'wrong-token' }));
    const d = deps({ schedd: refusing, now: () => new Date(2026, 0, 2, 3, 4, 5) });
    const seen: { head?: Awaited<ReturnType<S3Store['head']>> } = {};
    // Look at the processing object between the claim and the (failing) submission.
    const submitDag = refusing.submitDag.bind(refusing);
    refusing.submitDag = async (dag) => {
      seen.head = await fx.store.head(IN(), 'Wood/meta_processing-20260102-030405.csv');
      return submitDag(dag);
    };
    try {
      await assert.rejects(runCrondorCycle(fx.settings, d), /put back/);
    } finally {
      await refusing.close();
    }
    const dir = path.join(fx.launchDir, 'workflow-run-20260102-030405');
    assert.ok(seen.head, d.log.text());
    assert.deepEqual(seen.head.metadata, {
      owner: 'gis staff',
      [WORKFLOW_METADATA]: workflowIdOf(os.hostname(), dir),
      [SOURCE_METADATA]: 'Wood/meta_raw.csv',
    });
    assert.equal(seen.head.contentType, 'text/csv; charset=utf-8');
    const back = await fx.store.head(IN(), 'Wood/meta_raw.csv');
    assert.deepEqual(back?.metadata, { owner: 'gis staff' });
    assert.equal(back?.contentType, 'text/csv; charset=utf-8');
    assert.equal(await fx.store.getText(IN(), 'Wood/meta_raw.csv'), 'Wood/good.tif,1\n');
  });

  test('processing objects of another launch directory, or without a workflow id, are left alone and reported once', async () => {
    await fx.store.putText(IN(), 'Other/a_raw.csv', 'Other/a.tif,1\n');
    const head = (await fx.store.head(IN(), 'Other/a_raw.csv'))!;
    await fx.store.copyWithMetadata(IN(), 'Other/a_raw.csv', 'Other/a_processing-20260101-000000.csv', head, {
      [WORKFLOW_METADATA]: workflowIdOf(os.hostname(), '/somewhere/else/workflow-run-20260101-000000'),
      [SOURCE_METADATA]: 'Other/a_raw.csv',
    });
    await fx.store.delete(IN(), 'Other/a_raw.csv');
    await fx.store.putText(IN(), 'Older/b_processing-20250101-000000.csv', 'Older/b.tif,1\n');
    const before = await keysOf(fx.store, IN());
    const first = deps();
    assert.deepEqual(await runCrondorCycle(fx.settings, first), { outcome: 'idle' });
    const warnings = first.log.text().split('\n').filter((l) => / WARN /.test(l));
    assert.equal(warnings.length, 2, first.log.text());
    assert.match(warnings[0]!, /s3:\/\/sco-in\/Older\/b_processing-20250101-000000\.csv is left alone: it carries no workflow id/);
    assert.match(warnings[1]!, /s3:\/\/sco-in\/Other\/a_processing-20260101-000000\.csv is left alone: it belongs to .*:\/somewhere\/else\/workflow-run-20260101-000000, not to this launch directory/);
    const second = deps();
    assert.deepEqual(await runCrondorCycle(fx.settings, second), { outcome: 'idle' });
    assert.doesNotMatch(second.log.text(), /WARN/);
    assert.deepEqual(await keysOf(fx.store, IN()), before);
  });

  /** The claim entry (lib/bucket_claim.ts) of the workflow of that time stamp in this launch directory. */
  const claimEntry = (manifestKey: string, timestamp: string) =>
    claimEntryKey(manifestKey, workflowIdOf(os.hostname(), path.join(fx.launchDir, `workflow-run-${timestamp}`)));

  /** An S3 store whose next delete of the given keys fails (an S3 error on the last step of a rename). */
  class FlakyStore extends S3Store {
    readonly failDelete = new Set<string>();
    override async delete(bucket: string, key: string): Promise<void> {
      if (this.failDelete.delete(key)) throw new Error(`S3 delete s3://${bucket}/${key} failed: InternalError (HTTP 500)`);
      return super.delete(bucket, key);
    }
  }

  test('an S3 error on the last step of a claim (deleting the raw manifest) leaves it unclaimed, with no processing copy', async () => {
    await fx.store.upload(IN(), 'Wood/good.tif', fixturePath('1band-small.tif'));
    await fx.store.putText(IN(), 'Wood/one_raw.csv', 'Wood/good.tif,1\n');
    const store = new FlakyStore(createS3Client(settingsFor(fx.s3)));
    store.failDelete.add('Wood/one_raw.csv');
    const d = deps({ store });
    await assert.rejects(runCrondorCycle(fx.settings, d), /no manifest could be claimed/);
    assert.match(d.log.text(), /could not claim Wood\/one_raw\.csv; it stays for the next cycle: .*InternalError/);
    assert.deepEqual(await keysOf(fx.store, IN()), ['Wood/good.tif', 'Wood/one_raw.csv']);

    // Both deletes fail (the copy cannot be taken away either): the next cycle deletes the copy.
    store.failDelete.add('Wood/one_raw.csv');
    store.failDelete.add('Wood/one_processing-20260101-000000.csv');
    await assert.rejects(runCrondorCycle(fx.settings, deps({ store, now: () => new Date(2026, 0, 1) })), /no manifest could be claimed/);
    // The claim entry stays while the copy does: no other launch directory takes the manifest meanwhile.
    assert.deepEqual(await keysOf(fx.store, IN()), [claimEntry('Wood/one_raw.csv', '20260101-000000'), 'Wood/good.tif', 'Wood/one_processing-20260101-000000.csv', 'Wood/one_raw.csv']);
    const next = deps({ now: () => new Date(2026, 0, 1, 0, 15) });
    const result = await runCrondorCycle(fx.settings, next);
    assert.equal(result.outcome, 'submitted', next.log.text());
    assert.match(next.log.text(), /Wood\/one_processing-20260101-000000\.csv was left behind \(its workflow directory \S+ is gone\): Wood\/one_raw\.csv is there, so the copy was deleted/);
    assert.deepEqual(await keysOf(fx.store, IN()), ['Wood/good.tif', 'Wood/one_processing-20260101-001500.csv']);
  });

  test('an S3 error on the last step of a put-back leaves the workflow claimed; the next cycle deletes the copy and claims the manifest once', async () => {
    await fx.store.upload(IN(), 'Wood/good.tif', fixturePath('1band-small.tif'));
    await fx.store.putText(IN(), 'Wood/one_raw.csv', 'Wood/good.tif,1\n');
    const store = new FlakyStore(createS3Client(settingsFor(fx.s3)));
    store.failDelete.add('Wood/one_processing-20260101-000000.csv');
    const refusing = new ApiSchedd(new HtcondorApi({ url: fx.standin.url, token: 'wrong-token' }));
    const d = deps({ store, schedd: refusing, now: () => new Date(2026, 0, 1) });
    try {
      await assert.rejects(runCrondorCycle(fx.settings, d), /workflow not submitted; the next cycle finishes workflow-run-20260101-000000/);
    } finally {
      await refusing.close();
    }
    assert.deepEqual(await keysOf(fx.store, IN()), [claimEntry('Wood/one_raw.csv', '20260101-000000'), 'Wood/good.tif', 'Wood/one_processing-20260101-000000.csv', 'Wood/one_raw.csv']);
    assert.equal((await readWorkflowRecord(path.join(fx.launchDir, 'workflow-run-20260101-000000'))).state, 'claimed');

    const next = deps({ now: () => new Date(2026, 0, 1, 0, 15) });
    const result = await runCrondorCycle(fx.settings, next);
    assert.equal(result.outcome, 'submitted', next.log.text());
    assert.match(next.log.text(), /deleted s3:\/\/sco-in\/Wood\/one_processing-20260101-000000\.csv: s3:\/\/sco-in\/Wood\/one_raw\.csv is there[^]*workflow-run-20260101-000000 rolled back/);
    assert.deepEqual(await keysOf(fx.store, IN()), ['Wood/good.tif', 'Wood/one_processing-20260101-001500.csv']);
    await waitForDags();
    await fx.standin.waitForJob(`${(result as { dagClusterId: number }).dagClusterId}.0`, { timeoutMs: 90_000 });
    assert.deepEqual(await keysOf(fx.store, IN()), ['Wood/good.tif', 'Wood/one_processed-20260101-001500.csv']);
  });

  test('finished workflows are read once: later cycles keep only their names, so months of workflow directories cost nothing', async () => {
    const finished = path.join(fx.launchDir, 'workflow-run-20250101-000000');
    await mkdir(finished);
    await writeWorkflowRecord(finished, {
      timestamp: '20250101-000000', inputBucket: IN(), outputBucket: OUT(), state: 'settled',
      workflowId: workflowIdOf(os.hostname(), finished), manifests: [],
    });
    const first = deps();
    assert.deepEqual(await runCrondorCycle(fx.settings, first), { outcome: 'idle' });
    assert.equal(readFileSync(path.join(fx.launchDir, '.finished-workflows'), 'utf8'), 'workflow-run-20250101-000000\n');
    // Its record is not read again: a later cycle does not notice it is no longer readable...
    writeFileSync(path.join(finished, 'workflow.json'), 'not a record');
    const second = deps();
    assert.deepEqual(await runCrondorCycle(fx.settings, second), { outcome: 'idle' });
    assert.doesNotMatch(second.log.text(), /ERROR|WARN/);
    // ...which it would, reading every record.
    rmSync(path.join(fx.launchDir, '.finished-workflows'));
    const third = deps();
    await runCrondorCycle(fx.settings, third);
    assert.match(third.log.text(), /workflow-run-20250101-000000 is left alone: .* is not a valid workflow record/);
  });

  test('a workflow directory left without a record (killed before its first record was written) is removed', async () => {
    const abandoned = path.join(fx.launchDir, 'workflow-run-20260101-080000');
    await mkdir(abandoned);
    const d = deps();
    assert.deepEqual(await runCrondorCycle(fx.settings, d), { outcome: 'idle' });
    assert.ok(!existsSync(abandoned));
    assert.match(d.log.text(), /removed workflow-run-20260101-080000: a cycle was stopped before it claimed anything there/);
  });

  test('a cycle started in the same second as a killed one takes the next second: no workflow directory or processing key is shared', async () => {
    await seed('dag');
    const at = () => new Date(2026, 0, 1, 9, 0, 0);
    // What a cycle killed in that second and rolled back since leaves.
    const killed = path.join(fx.launchDir, 'workflow-run-20260101-090000');
    await mkdir(killed);
    await writeWorkflowRecord(killed, { timestamp: '20260101-090000', inputBucket: IN(), outputBucket: OUT(), state: 'rolled-back', manifests: [] });
    holdNewDags = true;
    try {
      const result = await runCrondorCycle(fx.settings, deps({ now: at }));
      assert.equal(result.outcome, 'submitted');
      assert.equal(path.basename((result as { workflowDir: string }).workflowDir), 'workflow-run-20260101-090001');
      assert.equal(await whereIs('Wood/batch1_raw.csv'), 'processing');
      assert.ok((await keysOf(fx.store, IN())).includes('Wood/batch1_processing-20260101-090001.csv'));
    } finally {
      holdNewDags = false;
      await fx.schedd.removeByConstraint(`JobDescription =?= "${path.join(fx.launchDir, 'workflow-run-20260101-090001')}"`, 'test over');
    }
  });
});
