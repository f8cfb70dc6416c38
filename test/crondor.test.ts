import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { runCrondorCycle, type CycleDeps } from '../lib/crondor.ts';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { SOURCE_METADATA, WORKFLOW_METADATA, workflowIdOf } from '../lib/recovery.ts';
import { ApiSchedd } from '../lib/schedd.ts';
import { readWorkflowRecord } from '../lib/workflow.ts';
import { fixturePath, keysOf, memoryLogger, startPipelineFixture, type PipelineFixture } from './support/pipeline_fixture.ts';
import { startRewritingProxy, type ProxyRules } from './support/rewriting_proxy.ts';

let fx: PipelineFixture;
let clock: Date;
const invocation = { program: '/usr/bin/node', args: ['/opt/cog/cog_pipeline.ts'] };

before(async () => {
  fx = await startPipelineFixture();
});
after(async () => {
  await fx.stop();
});
beforeEach(async () => {
  await fx.reset();
  clock = new Date(2026, 10, 25, 10, 15, 0);
});

function deps(overrides: Partial<CycleDeps> = {}): CycleDeps & { log: ReturnType<typeof memoryLogger> } {
  return { store: fx.store, schedd: fx.schedd, log: memoryLogger(), now: () => clock, launchDir: fx.launchDir, invocation, environment: {}, ...overrides } as CycleDeps & {
    log: ReturnType<typeof memoryLogger>;
  };
}

/**
 * The newest cluster in the queue. A job found later with a higher id was submitted since; counting
 * jobs would not do, as jobs of earlier tests leave the queue meanwhile.
 */
async function lastClusterId(): Promise<number> {
  return Math.max(0, ...(await fx.schedd.query('true', ['ClusterId'])).map((ad) => Number(ad.ClusterId)));
}

async function putImages(keys: string[]) {
  for (const key of keys) await fx.store.upload(fx.settings.inputBucket, key, fixturePath('1band-small.tif'));
}

test('a cycle with no new manifest does nothing', async () => {
  await putImages(['Counties/WI/Wood/1band.tif']);
  const d = deps();
  assert.deepEqual(await runCrondorCycle(fx.settings, d), { outcome: 'idle' });
  assert.deepEqual(readdirSync(fx.launchDir), []);
  assert.match(d.log.text(), /no new manifests matching "\*raw\.csv"/);
});

test('a manifest is claimed, copied into the workflow directory and submitted as one DAGMan job', async () => {
  await putImages(['Counties/WI/Wood/1band.tif', 'Counties/WI/Dane/1band.tif', 'Counties/Eau Claire/3band.tif']);
  const manifest = [
    'Counties/WI/Wood/1band.tif,1',
    'Counties/WI/Dane/1band.tif,1',
    '"Counties/Eau Claire/3band.tif",3',
    'Counties/WI/Wood/missing.tif,1',
    'Counties/WI/Wood/1band.tif,1',
    'not,a,row',
  ].join('\r\n');
  await fx.store.putText(fx.settings.inputBucket, 'Counties/WI/batch1_raw.csv', manifest);

  const d = deps();
  const result = await runCrondorCycle(fx.settings, d);
  assert.equal(result.outcome, 'submitted');
  if (result.outcome !== 'submitted') return;
  assert.equal(result.images, 3);
  assert.equal(result.rejected, 3);

  // The bucket: the manifest now has its processing name, in the same folder.
  const inKeys = await keysOf(fx.store, fx.settings.inputBucket);
  assert.ok(inKeys.includes('Counties/WI/batch1_processing-20261125-101500.csv'), inKeys.join());
  assert.ok(!inKeys.includes('Counties/WI/batch1_raw.csv'));

  // The workflow directory: the manifest copy, the DAG, the node submit file, the DAGMan description.
  const wf = path.join(fx.launchDir, 'workflow-run-20261125-101500');
  assert.equal(result.workflowDir, wf);
  assert.equal(readFileSync(path.join(wf, 'batch1_processing-20261125-101500.csv'), 'utf8'), manifest);
  for (const f of ['dagfile.dag', 'cog_node.sub', 'dagfile.dag.condor.sub', 'workflow.json']) assert.ok(existsSync(path.join(wf, f)), f);
  const dag = readFileSync(path.join(wf, 'dagfile.dag'), 'utf8');
  assert.equal(dag.match(/^JOB /gm)?.length, 3);
  assert.match(dag, /FULL_INFILE="Counties\/Eau Claire\/3band\.tif"/);
  assert.match(dag, /^SCRIPT POST final \/usr\/bin\/node \/opt\/cog\/cog_pipeline\.ts post --input-bucket sco-in --output-bucket sco-out /m);

  // The processing object names its workflow (this host and directory) and its raw key.
  const head = await fx.store.head(fx.settings.inputBucket, 'Counties/WI/batch1_processing-20261125-101500.csv');
  assert.equal(head?.metadata[WORKFLOW_METADATA], workflowIdOf(os.hostname(), wf));
  assert.equal(head?.metadata[SOURCE_METADATA], 'Counties/WI/batch1_raw.csv');

  // Rows that cannot run are recorded with their reasons for the post step; and how far it got.
  const record = await readWorkflowRecord(wf);
  assert.equal(record.state, 'submitted');
  assert.equal(record.dagClusterId, result.dagClusterId);
  assert.equal(record.workflowId, workflowIdOf(os.hostname(), wf));
  assert.deepEqual(record.manifests.map((m) => [m.claimed, m.settled]), [[true, false]]);
  const rejected = record.manifests[0]!.rejected;
  assert.deepEqual(rejected.map((r) => r.line), [4, 5, 6]);
  assert.equal(rejected[0]!.reason, 'the image s3://sco-in/Counties/WI/Wood/missing.tif does not exist');
  assert.match(rejected[1]!.reason, /already listed \(Counties\/WI\/batch1_raw\.csv line 1\)/);
  assert.match(rejected[2]!.reason, /^expected 2 columns/);

  // The schedd: one DAGMan job in the DAG's batch, as condor_submit_dag would make it.
  const [dagman, ...others] = await fx.schedd.query(`ClusterId == ${result.dagClusterId}`, ['JobUniverse', 'Cmd', 'JobBatchName', 'Arguments', 'UserLog']);
  assert.equal(others.length, 0);
  assert.equal(dagman!.JobUniverse, 7);
  assert.equal(dagman!.Cmd, '/usr/bin/condor_dagman');
  assert.equal(dagman!.JobBatchName, 'COG-Pipeline-DAG-*raw.csv');
  assert.match(String(dagman!.Arguments), new RegExp(`-Dag ${path.join(wf, 'dagfile.dag')}`));
  assert.equal(dagman!.UserLog, path.join(wf, 'dagfile.dag.dagman.log'));
  assert.match(d.log.text(), /submitted workflow-run-20261125-101500 as DAGMan job \d+\.0/);
});

test('a failed submission puts every manifest back as it was and leaves no workflow directory', async () => {
  await putImages(['a/x.tif']);
  await fx.store.putText(fx.settings.inputBucket, 'a/one_raw.csv', 'a/x.tif,1\n');
  await fx.store.putText(fx.settings.inputBucket, 'b/two_raw.csv', 'a/x.tif,1\n');
  const refusing = new ApiSchedd(new HtcondorApi({ url: fx.standin.url, token: 'wrong-token' }));
  const d = deps({ schedd: refusing });
  try {
    await assert.rejects(runCrondorCycle(fx.settings, d), /put back/);
  } finally {
    await refusing.close();
  }
  assert.deepEqual(await keysOf(fx.store, fx.settings.inputBucket), ['a/one_raw.csv', 'a/x.tif', 'b/two_raw.csv']);
  assert.equal(await fx.store.getText(fx.settings.inputBucket, 'a/one_raw.csv'), 'a/x.tif,1\n');
  assert.deepEqual(readdirSync(fx.launchDir), []);
  assert.match(d.log.text(), /answered 401/);
});

/** A gateway's answer when the server behind it did not reply in time. */
const BAD_GATEWAY = { status: 502, body: { error: 'Bad Gateway', message: 'upstream timed out', code: 502 } };

/** Runs a cycle whose schedd is reached through a proxy with `rules`. */
async function cycleThrough(rules: ProxyRules) {
  const proxy = await startRewritingProxy(fx.standin.url, rules);
  const log = memoryLogger();
  const schedd = new ApiSchedd(new HtcondorApi({ url: proxy.url, token: readFileSync(fx.standin.tokenFile, 'utf8').trim() }), { log, lookupDelaysMs: [0, 100] });
  const d = deps({ schedd, log });
  try {
    return { result: await runCrondorCycle(fx.settings, d).catch((err: Error) => err), log: d.log.text() };
  } finally {
    await schedd.close();
    await proxy.close();
  }
}

test('a submission whose reply is lost but which landed is found by its workflow id: submitted once, not put back', async () => {
  clock = new Date(2026, 10, 25, 11, 15, 0); // a workflow id no earlier test used
  await putImages(['a/x.tif']);
  await fx.store.putText(fx.settings.inputBucket, 'a/one_raw.csv', 'a/x.tif,1\n');
  const { result, log } = await cycleThrough({
    rewrite: (exchange) => (exchange.method === 'POST' && exchange.path === '/api/v1/jobs' ? BAD_GATEWAY : exchange.body),
  });
  assert.ok(!(result instanceof Error), String(result));
  assert.equal(result.outcome, 'submitted');
  const workflowDir = path.join(fx.launchDir, 'workflow-run-20261125-111500');
  const jobs = await fx.schedd.query(`JobDescription == "${workflowDir}"`, ['ClusterId', 'Requirements', 'OnExitRemove']);
  assert.equal(jobs.length, 1, 'exactly one DAGMan job for the workflow');
  assert.equal(jobs[0]!.ClusterId, result.outcome === 'submitted' ? result.dagClusterId : -1);
  assert.equal(jobs[0]!.Requirements, true, 'and it was set up and started as usual');
  assert.match(log, /the reply to the submission was lost \(.*answered 502.*\), but job \d+\.0 \(JobDescription .*workflow-run-20261125-111500\) is in the queue: carrying on with it/);
  assert.deepEqual(await keysOf(fx.store, fx.settings.inputBucket), ['a/one_processing-20261125-111500.csv', 'a/x.tif']);
  await fx.schedd.removeByConstraint(`ClusterId == ${jobs[0]!.ClusterId}`, 'test over');
});

test('a submission that never reached the schedd is put back, after the schedd was asked', async () => {
  clock = new Date(2026, 10, 25, 11, 30, 0);
  await putImages(['a/x.tif']);
  await fx.store.putText(fx.settings.inputBucket, 'a/one_raw.csv', 'a/x.tif,1\n');
  const before = await lastClusterId();
  const { result, log } = await cycleThrough({
    answer: (method, p) => (method === 'POST' && p === '/api/v1/jobs' ? BAD_GATEWAY : undefined),
  });
  assert.ok(result instanceof Error);
  assert.match(log, /answered 502: Bad Gateway: upstream timed out; no job with JobDescription .*workflow-run-20261125-113000 is in the queue, so it was not submitted/);
  assert.deepEqual(await fx.schedd.query(`ClusterId > ${before}`, ['ClusterId']), [], 'nothing was submitted');
  assert.deepEqual(await keysOf(fx.store, fx.settings.inputBucket), ['a/one_raw.csv', 'a/x.tif']);
});

test('with -p "*" only manifests are claimed: images and data CSVs stay as they are, reported once', async () => {
  await putImages(['a/x.tif', 'a/y.tif']);
  await fx.store.putText(fx.settings.inputBucket, 'a/prices.csv', 'name,price\nwidget,3\n');
  await fx.store.putText(fx.settings.inputBucket, 'a/one_raw.csv', 'a/x.tif,1\na/y.tif,1\n');
  const before = new Map<string, string>();
  for (const key of ['a/x.tif', 'a/y.tif', 'a/prices.csv']) before.set(key, (await fx.store.getHead(fx.settings.inputBucket, key, 1 << 20)).toString('base64'));
  const everything = { ...fx.settings, pattern: '*' };

  const first = deps();
  const result = await runCrondorCycle(everything, first);
  assert.equal(result.outcome, 'submitted');
  assert.deepEqual(await keysOf(fx.store, fx.settings.inputBucket), ['a/one_processing-20261125-101500.csv', 'a/prices.csv', 'a/x.tif', 'a/y.tif']);
  for (const [key, bytes] of before) assert.equal((await fx.store.getHead(fx.settings.inputBucket, key, 1 << 20)).toString('base64'), bytes, `${key} is untouched`);
  const warnings = first.log.text().split('\n').filter((l) => / WARN /.test(l));
  assert.deepEqual(warnings.map((l) => l.replace(/^.* WARN\s+/, '')), [
    's3://sco-in/a/prices.csv matches "*" but is not a manifest (no line names a .tif image in its first column); it is left where it is and not reported again unless it changes',
    's3://sco-in/a/x.tif matches "*" but is not a manifest (it is not text: it holds NUL bytes, as images do); it is left where it is and not reported again unless it changes',
    's3://sco-in/a/y.tif matches "*" but is not a manifest (it is not text: it holds NUL bytes, as images do); it is left where it is and not reported again unless it changes',
  ]);

  // The next cycle says nothing about them; a data CSV written again is looked at again.
  clock = new Date(2026, 10, 25, 10, 30, 0);
  const second = deps();
  assert.deepEqual(await runCrondorCycle(everything, second), { outcome: 'idle' });
  assert.doesNotMatch(second.log.text(), /WARN/);
  await fx.store.putText(fx.settings.inputBucket, 'a/prices.csv', 'name,price\nwidget,4\n');
  const third = deps();
  assert.deepEqual(await runCrondorCycle(everything, third), { outcome: 'idle' });
  assert.match(third.log.text(), /a\/prices\.csv matches "\*" but is not a manifest/);
  assert.doesNotMatch(third.log.text(), /x\.tif matches/);
});

test("the pipeline's own state files never match the pattern again, even with *.csv", async () => {
  await putImages(['a/x.tif']);
  for (const key of ['a/b_processing-20261101-000000.csv', 'a/b_processed-20261101-000000.csv', 'a/b_failed-20261101-000000.csv']) {
    await fx.store.putText(fx.settings.inputBucket, key, 'a/x.tif,1\n');
  }
  assert.deepEqual(await runCrondorCycle({ ...fx.settings, pattern: '*.csv' }, deps()), { outcome: 'idle' });
});

test('a manifest whose rows all fail is settled at once: failed CSV written, nothing submitted', async () => {
  const before = await lastClusterId();
  await fx.store.putText(fx.settings.inputBucket, 'test_raw.csv', 'nowhere/a.tif,1\nbad row\n');
  const result = await runCrondorCycle(fx.settings, deps());
  assert.equal(result.outcome, 'nothing-to-run');
  assert.deepEqual(await keysOf(fx.store, fx.settings.inputBucket), ['test_failed-20261125-101500.csv']);
  assert.equal(await fx.store.getText(fx.settings.inputBucket, 'test_failed-20261125-101500.csv'), 'nowhere/a.tif,1\nbad row\n');
  assert.deepEqual(await fx.schedd.query(`ClusterId > ${before}`, ['ClusterId']), [], 'nothing was submitted');
  // The reasons are in the workflow's post.out, as for any workflow; the cycle's log points there.
  const workflowDir = path.join(fx.launchDir, 'workflow-run-20261125-101500');
  const postOut = readFileSync(path.join(workflowDir, 'post.out'), 'utf8');
  assert.match(postOut, /test_raw\.csv line 1 failed: the image s3:\/\/sco-in\/nowhere\/a\.tif does not exist/);
  assert.match(postOut, /test_raw\.csv line 2 failed: expected 2 columns/);
  assert.match(readFileSync(path.join(workflowDir, 'post.err'), 'utf8'), /line 1 failed/);
  // Through the same steps as any workflow: claimed, then settled by the post step run here.
  const record = await readWorkflowRecord(workflowDir);
  assert.equal(record.state, 'settled');
  assert.deepEqual(record.manifests.map((m) => [m.claimed, m.settled]), [[true, true]]);
});

test('a manifest with rows that are not UTF-8 gets them back byte for byte in its failed CSV', async () => {
  const latin1 = Buffer.from('Comt\xe9s/caf\xe9.tif,1\r\n', 'latin1');
  const content = Buffer.concat([Buffer.from('nowhere/a.tif,1\n'), latin1, Buffer.from([0x62, 0xff, 0x80, 0x2c, 0x31, 0x0a])]);
  await fx.store.putText(fx.settings.inputBucket, 'enc_raw.csv', content, 'text/csv');
  const result = await runCrondorCycle(fx.settings, deps());
  assert.equal(result.outcome, 'nothing-to-run');
  const failed = await fx.store.getBytes(fx.settings.inputBucket, 'enc_failed-20261125-101500.csv');
  assert.ok(failed.equals(Buffer.concat([Buffer.from('nowhere/a.tif,1\n'), Buffer.from('Comt\xe9s/caf\xe9.tif,1\n', 'latin1'), Buffer.from([0x62, 0xff, 0x80, 0x2c, 0x31, 0x0a])])), failed.toString('latin1'));
});

test('manifests are found among more than 1000 objects, with odd characters in their keys', async () => {
  const keys = Array.from({ length: 1100 }, (_, i) => `bulk/${String(i).padStart(4, '0')}.tif`);
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k) => fx.store.putText(fx.settings.inputBucket, k, 'x')));
  }
  const manifestKey = 'Comtés/Eau Claire/lot #2+[b]_raw.csv';
  await fx.store.putText(fx.settings.inputBucket, manifestKey, 'bulk/0007.tif,1\nbulk/1099.tif,3\n');
  const result = await runCrondorCycle(fx.settings, deps());
  assert.equal(result.outcome, 'submitted');
  if (result.outcome === 'submitted') assert.equal(result.images, 2);
  const inKeys = await keysOf(fx.store, fx.settings.inputBucket);
  assert.ok(inKeys.includes('Comtés/Eau Claire/lot #2+[b]_processing-20261125-101500.csv'));
  assert.ok(!inKeys.includes(manifestKey));
});

test('two manifests with the same name in different folders keep separate local copies, before and after post', async () => {
  await fx.store.putText(fx.settings.inputBucket, 'a/raw.csv', 'a/nothing.tif,1\n');
  await fx.store.putText(fx.settings.inputBucket, 'b/raw.csv', 'b/nothing.tif,1\nb/nothing2.tif,1\n');
  const result = await runCrondorCycle(fx.settings, deps());
  assert.equal(result.outcome, 'nothing-to-run');
  const workflowDir = path.join(fx.launchDir, 'workflow-run-20261125-101500');
  assert.equal(readFileSync(path.join(workflowDir, 'failed-20261125-101500.csv'), 'utf8'), 'a/nothing.tif,1\n');
  assert.equal(readFileSync(path.join(workflowDir, 'b_failed-20261125-101500.csv'), 'utf8'), 'b/nothing.tif,1\nb/nothing2.tif,1\n');
});

test('two manifests with the same name in different folders get separate local copies', async () => {
  await putImages(['a/x.tif', 'b/y.tif']);
  await fx.store.putText(fx.settings.inputBucket, 'a/raw.csv', 'a/x.tif,1\n');
  await fx.store.putText(fx.settings.inputBucket, 'b/raw.csv', 'b/y.tif,1\n');
  const result = await runCrondorCycle(fx.settings, deps());
  assert.equal(result.outcome, 'submitted');
  const record = await readWorkflowRecord(path.join(fx.launchDir, 'workflow-run-20261125-101500'));
  assert.deepEqual(
    record.manifests.map((m) => [m.processingKey, m.localFile]),
    [
      ['a/processing-20261125-101500.csv', 'processing-20261125-101500.csv'],
      ['b/processing-20261125-101500.csv', 'b_processing-20261125-101500.csv'],
    ],
  );
});
