import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { runPost } from '../lib/post.ts';
import { createS3Client, S3Store } from '../lib/s3_store.ts';
import { readWorkflowRecord, writeWorkflowRecord } from '../lib/workflow.ts';
import { settingsFor } from './support/s3_server.ts';
import { keysOf, memoryLogger, startPipelineFixture, type PipelineFixture } from './support/pipeline_fixture.ts';

let fx: PipelineFixture;
let wf: string;
const TS = '20261125-101500';

before(async () => {
  fx = await startPipelineFixture();
});
after(async () => {
  await fx.stop();
});
beforeEach(async () => {
  await fx.reset();
  wf = path.join(fx.launchDir, `workflow-run-${TS}`);
  mkdirSync(wf, { recursive: true });
});

/** What the crondor cycle leaves behind for post: the manifest copy, the record, the processing object. */
async function claimed(manifestKey: string, processingKey: string, text: string, rejected: Array<{ line: number; reason: string }> = []) {
  const localFile = path.basename(processingKey);
  writeFileSync(path.join(wf, localFile), text);
  await fx.store.putText(fx.settings.inputBucket, processingKey, text);
  return { sourceKey: manifestKey, processingKey, localFile, rejected };
}

let cluster = 100;

/**
 * One job of the conversion node of the DAG's image at `index`, as HTCondor writes it to DAGMan's
 * nodes log: submitted (naming its node), executing, terminated with `returnValue`.
 */
function nodeJob(index: number, returnValue: number) {
  const id = `(${++cluster}.000.000)`;
  appendFileSync(
    path.join(wf, 'dagfile.dag.nodes.log'),
    `000 ${id} 2026-11-25 10:15:01 Job submitted from host: <127.0.0.1:9618>\n    DAG Node: COG-Pipeline-DAG-*raw.csv_${index}\n...\n` +
      `001 ${id} 2026-11-25 10:15:02 Job executing on host: <127.0.0.1:9618>\n...\n` +
      `005 ${id} 2026-11-25 10:15:09 Job terminated.\n\t(1) Normal termination (return value ${returnValue})\n...\n`,
  );
}

/** A COG and its JPEG in the output bucket. */
async function outputs(keys: string[]) {
  for (const key of keys) {
    await fx.store.putText(fx.settings.outputBucket, key, 'cog');
    await fx.store.putText(fx.settings.outputBucket, key.replace(/\.tif$/, '.jpg'), 'jpeg');
  }
}

/** Outputs in the output bucket, made by this workflow's node jobs; `dagImages` is the DAG's order. */
async function converted(keys: string[], dagImages = keys) {
  await outputs(keys);
  for (const key of keys) nodeJob(dagImages.indexOf(key), 0);
}

test('rows with both outputs go to processed, the rest to failed, next to the manifest; processing is removed', async () => {
  const text = 'Counties/WI/Wood/1band.tif,1\r\nCounties/WI/Wood/4band.tif,4\r\n"Counties/WI/Dane/two words.tif", 1\r\nCounties/WI/Dane/gone.tif,1\r\nbad row';
  const manifest = await claimed('Counties/WI/batch1_raw.csv', `Counties/WI/batch1_processing-${TS}.csv`, text, [
    { line: 4, reason: 'the image s3://sco-in/Counties/WI/Dane/gone.tif does not exist' },
  ]);
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  // The DAG's images: the rows but the missing one (line 4) and the one that does not parse.
  await converted(['Counties/WI/Wood/1band.tif', 'Counties/WI/Dane/two words.tif'], ['Counties/WI/Wood/1band.tif', 'Counties/WI/Wood/4band.tif', 'Counties/WI/Dane/two words.tif']);
  // Only the COG of 4band arrived: that row failed, and its node's error file says why.
  await fx.store.putText('sco-out', 'Counties/WI/Wood/4band.tif', 'cog');
  writeFileSync(path.join(wf, '4band.tif.err'), 'converting\nERROR 1: preview failed\n\n');

  const log = memoryLogger();
  assert.deepEqual(await runPost(wf, fx.store, log), { processed: 2, failed: 3 });

  assert.deepEqual(await keysOf(fx.store, 'sco-in'), [`Counties/WI/batch1_failed-${TS}.csv`, `Counties/WI/batch1_processed-${TS}.csv`]);
  assert.equal(
    await fx.store.getText('sco-in', `Counties/WI/batch1_processed-${TS}.csv`),
    'Counties/WI/Wood/1band.tif,1\n"Counties/WI/Dane/two words.tif", 1\n',
  );
  assert.equal(await fx.store.getText('sco-in', `Counties/WI/batch1_failed-${TS}.csv`), 'Counties/WI/Wood/4band.tif,4\nCounties/WI/Dane/gone.tif,1\nbad row\n');
  // Local copies for the person reading the workflow directory, and reasons in the log.
  assert.ok(existsSync(path.join(wf, `batch1_failed-${TS}.csv`)));
  const said = log.text();
  assert.match(said, /line 2 failed: s3:\/\/sco-out\/Counties\/WI\/Wood\/4band\.jpg missing; 4band\.tif\.err says: ERROR 1: preview failed/);
  assert.match(said, /line 4 failed: the image s3:\/\/sco-in\/Counties\/WI\/Dane\/gone\.tif does not exist/);
  assert.match(said, /line 5 failed: expected 2 columns/);
});

test('a manifest at the bucket root gets its CSVs at the root, with no leading slash', async () => {
  const manifest = await claimed('test_raw.csv', `test_processing-${TS}.csv`, 'a/x.tif,1\n');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  await converted(['a/x.tif']);
  await runPost(wf, fx.store, memoryLogger());
  assert.deepEqual(await keysOf(fx.store, 'sco-in'), [`test_processed-${TS}.csv`]);
});

test('post checks the output bucket with listings, not a request per row', async () => {
  const keys = Array.from({ length: 300 }, (_, i) => `Tiles/${i % 2 === 0 ? 'east' : 'west'}/t${i}.tif`);
  const manifest = await claimed('tiles_raw.csv', `tiles_processing-${TS}.csv`, keys.map((k) => `${k},3`).join('\n'));
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  for (let i = 0; i < keys.length; i += 50) await converted(keys.slice(i, i + 50), keys);

  const client = createS3Client(settingsFor(fx.s3));
  const commands: string[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      commands.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize' },
  );
  assert.deepEqual(await runPost(wf, new S3Store(client), memoryLogger()), { processed: 300, failed: 0 });
  // The 600 outputs of both folders in one page (up to 1000 objects) of a listing of Tiles/.
  assert.equal(commands.filter((c) => c === 'ListObjectsV2Command').length, 1);
});

test('post looks at many output folders side by side with one listing of their parent, not one per folder', async () => {
  const keys = Array.from({ length: 40 }, (_, i) => `Sections/s${i}/t.tif`);
  const manifest = await claimed('sections_raw.csv', `sections_processing-${TS}.csv`, keys.map((k) => `${k},1`).join('\n'));
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  await converted(keys);

  const client = createS3Client(settingsFor(fx.s3));
  const lookups: string[] = [];
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'ListObjectsV2Command' || context.commandName === 'HeadObjectCommand') lookups.push(String(context.commandName));
      return next(args);
    },
    { step: 'initialize' },
  );
  assert.deepEqual(await runPost(wf, new S3Store(client), memoryLogger()), { processed: 40, failed: 0 });
  // One HEAD for the processing object, one listing of Sections/ for the 80 outputs.
  assert.deepEqual(lookups.sort(), ['HeadObjectCommand', 'ListObjectsV2Command']);
});

test('post outside a workflow directory says so', async () => {
  rmSync(path.join(wf, 'workflow.json'), { force: true });
  await assert.rejects(runPost(wf, fx.store, memoryLogger()), /workflow\.json is missing/);
});

test('post records its steps: settling, each manifest settled, then settled', async () => {
  const manifest = await claimed('test_raw.csv', `test_processing-${TS}.csv`, 'a/x.tif,1\n');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', state: 'submitted', dagClusterId: 7, manifests: [{ ...manifest, claimed: true, settled: false }] });
  await converted(['a/x.tif']);
  await runPost(wf, fx.store, memoryLogger());
  const record = await readWorkflowRecord(wf);
  assert.equal(record.state, 'settled');
  assert.deepEqual(record.manifests.map((m) => m.settled), [true]);
});

/** An S3 store whose deletes fail: post stopped after writing the CSVs, before removing the manifest. */
class NoDeleteStore extends S3Store {
  override async delete(bucket: string, key: string): Promise<void> {
    throw new Error(`S3 delete s3://${bucket}/${key} failed: InternalError (HTTP 500)`);
  }
}

test('post run again after a failure before the delete writes the same CSVs, then deletes the manifest; run once more it changes nothing', async () => {
  const text = 'a/x.tif,1\na/y.tif,1\n';
  const one = await claimed('a/one_raw.csv', `a/one_processing-${TS}.csv`, text);
  const two = await claimed('b/two_raw.csv', `b/two_processing-${TS}.csv`, 'b/z.tif,1\n');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', state: 'submitted', manifests: [{ ...one, claimed: true }, { ...two, claimed: true }] });
  await converted(['a/x.tif', 'b/z.tif'], ['a/x.tif', 'a/y.tif', 'b/z.tif']);

  await assert.rejects(runPost(wf, new NoDeleteStore(createS3Client(settingsFor(fx.s3))), memoryLogger()), /delete .* failed/);
  const csvs = async () => {
    const keys = (await keysOf(fx.store, 'sco-in')).filter((k) => !k.includes('processing-'));
    return Promise.all(keys.map(async (k) => [k, await fx.store.getText('sco-in', k)]));
  };
  const first = await csvs();
  assert.deepEqual(first.map(([k]) => k), [`a/one_failed-${TS}.csv`, `a/one_processed-${TS}.csv`]);
  assert.equal((await readWorkflowRecord(wf)).state, 'settling');

  const log = memoryLogger();
  assert.deepEqual(await runPost(wf, fx.store, log), { processed: 2, failed: 1 });
  const second = await csvs();
  assert.deepEqual(second.filter(([k]) => k!.startsWith('a/')), first, 'the same keys, the same bytes');
  assert.deepEqual(await keysOf(fx.store, 'sco-in'), [`a/one_failed-${TS}.csv`, `a/one_processed-${TS}.csv`, `b/two_processed-${TS}.csv`]);

  // Settled manifests are skipped: nothing is written or deleted again.
  await fx.store.delete('sco-in', `a/one_failed-${TS}.csv`); // the user took the failed rows away
  const again = memoryLogger();
  assert.deepEqual(await runPost(wf, fx.store, again), { processed: 0, failed: 0 });
  assert.deepEqual(await keysOf(fx.store, 'sco-in'), [`a/one_processed-${TS}.csv`, `b/two_processed-${TS}.csv`]);
});

test('a manifest whose processing object is already gone was settled by an earlier run: its CSVs are not written again', async () => {
  const manifest = await claimed('test_raw.csv', `test_processing-${TS}.csv`, 'a/x.tif,1\n');
  await fx.store.delete('sco-in', manifest.processingKey);
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', state: 'settling', manifests: [{ ...manifest, claimed: true }] });
  const log = memoryLogger();
  assert.deepEqual(await runPost(wf, fx.store, log), { processed: 0, failed: 0 });
  assert.match(log.text(), /test_processing-20261125-101500\.csv is gone: test_raw\.csv was settled already/);
  assert.deepEqual(await keysOf(fx.store, 'sco-in'), []);
  assert.equal((await readWorkflowRecord(wf)).state, 'settled');
});

test('post refuses a workflow that was rolled back or never finished claiming', async () => {
  const manifest = await claimed('test_raw.csv', `test_processing-${TS}.csv`, 'a/x.tif,1\n');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', state: 'rolled-back', manifests: [{ ...manifest, claimed: false }] });
  await assert.rejects(runPost(wf, fx.store, memoryLogger()), /was rolled back: its manifests were put back/);
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', state: 'claiming', manifests: [{ ...manifest, claimed: false }] });
  await assert.rejects(runPost(wf, fx.store, memoryLogger()), /was never submitted/);
  assert.deepEqual(await keysOf(fx.store, 'sco-in'), [`test_processing-${TS}.csv`]);
});

test('outputs left over from an earlier run do not make a row processed: only this workflow\'s successful conversion does', async () => {
  const manifest = await claimed('again_raw.csv', `again_processing-${TS}.csv`, 'old/a.tif,1\nold/b.tif,1\nold/c.tif,1\nold/d.tif,1\n');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  // All four have a COG and a JPEG from an earlier run. This run: a converted; b failed; c never
  // ran; d failed, then succeeded when DAGMan retried it.
  await outputs(['old/a.tif', 'old/b.tif', 'old/c.tif', 'old/d.tif']);
  nodeJob(0, 0);
  nodeJob(1, 1);
  nodeJob(3, 1);
  nodeJob(3, 0);

  const log = memoryLogger();
  assert.deepEqual(await runPost(wf, fx.store, log), { processed: 2, failed: 2 });
  assert.equal(await fx.store.getText('sco-in', `again_processed-${TS}.csv`), 'old/a.tif,1\nold/d.tif,1\n');
  assert.equal(await fx.store.getText('sco-in', `again_failed-${TS}.csv`), 'old/b.tif,1\nold/c.tif,1\n');
  assert.match(
    log.text(),
    /line 2 failed: s3:\/\/sco-out\/old\/b\.tif and its preview are there, but dagfile\.dag\.nodes\.log records no successful conversion of it in this workflow \(see b\.tif\.log\): they are left over from an earlier run/,
  );
  assert.match(log.text(), /line 3 failed: .*nodes\.log records no successful conversion of it .*\(see c\.tif\.log\)/);
});

test("without DAGMan's nodes log (no node job ever ran) no row is processed, whatever the bucket holds", async () => {
  const manifest = await claimed('again_raw.csv', `again_processing-${TS}.csv`, 'old/a.tif,1\n');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  await outputs(['old/a.tif']);
  assert.deepEqual(await runPost(wf, fx.store, memoryLogger()), { processed: 0, failed: 1 });
});

test('an empty manifest does not vanish: it is settled as an empty failed CSV next to where it was', async () => {
  const manifest = await claimed('Counties/empty_raw.csv', `Counties/empty_processing-${TS}.csv`, '');
  await writeWorkflowRecord(wf, { timestamp: TS, inputBucket: 'sco-in', outputBucket: 'sco-out', manifests: [manifest] });
  const log = memoryLogger();
  assert.deepEqual(await runPost(wf, fx.store, log), { processed: 0, failed: 0 });
  assert.deepEqual(await keysOf(fx.store, 'sco-in'), [`Counties/empty_failed-${TS}.csv`]);
  assert.equal(await fx.store.getText('sco-in', `Counties/empty_failed-${TS}.csv`), '');
  assert.match(log.text(), /WARN  Counties\/empty_raw\.csv has no rows: nothing to convert; recorded as an empty failed CSV/);
});
