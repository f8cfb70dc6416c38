import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fixturePath, keysOf, startPipelineFixture, type PipelineFixture } from './support/pipeline_fixture.ts';
import { runCli } from './support/run_cli.ts';
import { fixedClock } from './standin/standin.ts';

/**
 * The whole pipeline as a user runs it: launch, the crondor job started by the schedd at its
 * cron times, the DAG with the real generate_cogs.sh and Debian's GDAL, and post, against a real
 * S3 server and the htcondor-api stand-in on loopback, which treats the jobs as the real
 * htcondor-api and schedd do (golang-htcondor's parser, spooling rewrite, the schedd's own ad,
 * no inherited environment). The stand-in's clock is a test clock moved by quarter hours.
 */

let fx: PipelineFixture;
let crondorCluster: string;
const QUARTER_HOUR = 15 * 60_000;
// 10:07:30 local time: the first cron time is 10:15.
const START = new Date(2026, 10, 25, 10, 7, 30);

/** Every job ad the schedd held, as it last was: descriptions, arguments and environments end up there. */
const jobAds = new Map<string, string>();

before(async () => {
  fx = await startPipelineFixture({
    standin: { clock: fixedClock(START), execution: { startDelayMs: 50, periodicIntervalMs: 200, submitRetryDelayMs: 100 } },
  });
  const keep = (job: { id: string; ad: { toJSON(): unknown } }) => void jobAds.set(job.id, JSON.stringify(job.ad.toJSON()));
  fx.standin.schedd.on('status', keep);
  fx.standin.schedd.on('gone', keep);
  await fx.reset();
  const launched = await runCli(fx.launchArgs(), { cwd: fx.launchDir });
  assert.equal(launched.code, 0, launched.stderr);
  crondorCluster = /JobID (\d+)\.0/.exec(launched.stdout)![1]!;
});
after(async () => {
  await fx.stop();
});

/** Moves the clock to the crondor job's next cron time and waits for that run to end. */
async function nextQuarterHour(): Promise<void> {
  const id = `${crondorCluster}.0`;
  const deferral = Number(fx.standin.schedd.get(id)?.ad.toJSON().DeferralTime);
  assert.ok(deferral * 1000 > fx.standin.now().getTime(), 'the crondor job waits for its next cron time');
  await fx.standin.advanceClock(deferral * 1000 - fx.standin.now().getTime());
  const after = await fx.standin.waitForJob(id, { statuses: [1], timeoutMs: 60_000 });
  assert.equal(after.status, 1, 'after its run the crondor job is idle again, waiting for the next quarter hour');
}

/** Lets the crondor job run at its next cron time and finds the workflow it submitted. */
async function runCycleAndWaitForDag(): Promise<{ workflowDir: string; dagCluster: string }> {
  await nextQuarterHour();
  const out = readFileSync(path.join(fx.launchDir, `crondor_${crondorCluster}.out`), 'utf8');
  const m = /submitted (workflow-run-\S+) as DAGMan job (\d+)\.0/.exec(out);
  assert.ok(m, out);
  return { workflowDir: path.join(fx.launchDir, m[1]!), dagCluster: m[2]! };
}

function gdalinfo(file: string): string {
  return execFileSync('gdalinfo', [file], { encoding: 'utf8' });
}

test('manifest in, COGs and JPEGs out, processed and failed CSVs next to the manifest', async () => {
  const images: Array<[string, string, number]> = [
    ['Counties/WI/Wood/1band.tif', '1band.tif', 1],
    ['Counties/WI/Wood/4band.tif', '4band.tif', 4],
    ['Counties/WI/Dane/1band.tif', '1band-small.tif', 1],
    ['Counties/WI/Dane/3band.tif', '3band.tif', 3],
    ['Counties/WI/Dane/not-a-tiff.tif', 'not-a-tiff.tif', 1],
  ];
  for (const [key, fixture] of images) {
    await fx.store.upload(fx.settings.inputBucket, key, fixturePath(fixture));
  }
  const manifest = [...images.map(([k, , b]) => `${k},${b}`), 'Counties/WI/Dane/missing.tif,1'].join('\n');
  await fx.store.putText(fx.settings.inputBucket, 'Counties/WI/batch1_raw.csv', manifest);

  // The launch left an idle crondor job, set up as the pipeline needs it on the real server.
  const crondor = fx.standin.schedd.get(`${crondorCluster}.0`)!.ad.toJSON();
  assert.equal(crondor.JobStatus, 1);
  assert.equal(crondor.DeferralTime, new Date(2026, 10, 25, 10, 15, 0).getTime() / 1000, 'first run at 10:15');

  const { workflowDir, dagCluster } = await runCycleAndWaitForDag();
  const end = await fx.standin.waitForJob(`${dagCluster}.0`, { statuses: [4], timeoutMs: 180_000 });
  assert.equal(end.status, 4, 'the DAGMan job completes');
  assert.equal(end.ad?.DAG_NodesTotal, 6);
  assert.equal(end.ad?.DAG_NodesFailed, 1);
  const gone = await fx.standin.waitForJob(`${dagCluster}.0`, { timeoutMs: 10_000 });
  assert.equal(gone.status, null, 'and leaves the queue (leave_in_queue = false)');
  const ts = path.basename(workflowDir).replace('workflow-run-', '');

  // The output bucket: real COGs and previews with the right band counts.
  const outKeys = await keysOf(fx.store, fx.settings.outputBucket);
  assert.deepEqual(outKeys, [
    'Counties/WI/Dane/1band.jpg', 'Counties/WI/Dane/1band.tif', 'Counties/WI/Dane/3band.jpg', 'Counties/WI/Dane/3band.tif',
    'Counties/WI/Wood/1band.jpg', 'Counties/WI/Wood/1band.tif', 'Counties/WI/Wood/4band.jpg', 'Counties/WI/Wood/4band.tif',
  ]);
  const scratch = path.join(fx.home, 'downloads');
  mkdirSync(scratch, { recursive: true });
  const bands = { 'Wood/1band': 1, 'Wood/4band': 3, 'Dane/1band': 1, 'Dane/3band': 3 };
  for (const [name, expected] of Object.entries(bands)) {
    const tif = path.join(scratch, `${name.replace('/', '_')}.tif`);
    const jpg = path.join(scratch, `${name.replace('/', '_')}.jpg`);
    await fx.store.download(fx.settings.outputBucket, `Counties/WI/${name}.tif`, tif);
    await fx.store.download(fx.settings.outputBucket, `Counties/WI/${name}.jpg`, jpg);
    assert.match(gdalinfo(tif), /LAYOUT=COG/, name);
    assert.match(gdalinfo(tif), /COMPRESSION=LZW/, name);
    const info = gdalinfo(jpg);
    assert.match(info, /Driver: JPEG/);
    assert.equal(info.match(/^Band \d+/gm)?.length, expected, `${name}.jpg bands`);
  }

  // The input bucket: the manifest became processed + failed CSVs, rows as written.
  assert.deepEqual(
    (await keysOf(fx.store, fx.settings.inputBucket)).filter((k) => k.endsWith('.csv')),
    [`Counties/WI/batch1_failed-${ts}.csv`, `Counties/WI/batch1_processed-${ts}.csv`],
  );
  assert.equal(
    await fx.store.getText(fx.settings.inputBucket, `Counties/WI/batch1_processed-${ts}.csv`),
    'Counties/WI/Wood/1band.tif,1\nCounties/WI/Wood/4band.tif,4\nCounties/WI/Dane/1band.tif,1\nCounties/WI/Dane/3band.tif,3\n',
  );
  assert.equal(
    await fx.store.getText(fx.settings.inputBucket, `Counties/WI/batch1_failed-${ts}.csv`),
    'Counties/WI/Dane/not-a-tiff.tif,1\nCounties/WI/Dane/missing.tif,1\n',
  );

  // The launch directory and the workflow directory hold every file users rely on (SPEC 4).
  for (const f of ['log', 'out', 'err']) assert.ok(existsSync(path.join(fx.launchDir, `crondor_${crondorCluster}.${f}`)), `crondor .${f}`);
  const files = readdirSync(workflowDir);
  for (const f of [
    'dagfile.dag', 'dagfile.dag.condor.sub', 'dagfile.dag.dagman.out', 'dagfile.dag.dagman.log', 'dagfile.dag.nodes.log',
    'dagfile.dag.lib.out', 'dagfile.dag.lib.err', 'dagfile.dag.rescue001', `batch1_processing-${ts}.csv`, 'post.out', 'post.err',
    'Counties_WI_Wood_1band.tif.log', 'Counties_WI_Dane_1band.tif.out', '4band.tif.log', '4band.tif.out', '4band.tif.err',
    '3band.tif.log', 'not-a-tiff.tif.err',
  ]) {
    assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
  }
  assert.match(readFileSync(path.join(workflowDir, '4band.tif.log'), 'utf8'), /Job terminated\.\n\t\(1\) Normal termination \(return value 0\)/);
  assert.match(readFileSync(path.join(workflowDir, 'not-a-tiff.tif.err'), 'utf8'), /not recognized as a supported file format/);
  assert.match(readFileSync(path.join(workflowDir, 'post.out'), 'utf8'), /line 5 failed: .*not-a-tiff\.jpg missing; not-a-tiff\.tif\.err says: ERROR 4: .*not recognized as a supported file format/);
  assert.match(readFileSync(path.join(workflowDir, 'post.out'), 'utf8'), /line 6 failed: the image s3:\/\/sco-in\/Counties\/WI\/Dane\/missing\.tif does not exist/);
  // DAGMan's own log and debug log are where condor_submit_dag puts them, not in the spool.
  assert.match(readFileSync(path.join(workflowDir, 'dagfile.dag.dagman.log'), 'utf8'), /Job executing on host/);
  assert.match(readFileSync(path.join(workflowDir, 'dagfile.dag.dagman.out'), 'utf8'), /EXITING WITH STATUS/);
  assert.match(readFileSync(path.join(workflowDir, 'dagfile.dag.condor.sub'), 'utf8'), /# Set on job \d+\.0 after submission, then Requirements = true:\n#   OnExitRemove = /);
  assert.deepEqual(findFiles(fx.standin.directory, /dagman\.out$|^log$/), [], 'nothing of the pipeline is written in the spool');

  // The crondor job stays in the queue and runs again at the next quarter hour, as the same job.
  await nextQuarterHour();
  const crondorOut = readFileSync(path.join(fx.launchDir, `crondor_${crondorCluster}.out`), 'utf8');
  assert.match(crondorOut, /no new manifests matching "\*raw\.csv"/);
  const crondorLog = readFileSync(path.join(fx.launchDir, `crondor_${crondorCluster}.log`), 'utf8');
  assert.equal(crondorLog.match(/^001 \(0*\d+\.000\.000\) .* Job executing/gm)?.length, 2, crondorLog);
  assert.match(crondorLog, /OnExitRemove expression 'false' evaluated to FALSE/);
  assert.equal(fx.standin.schedd.get(`${crondorCluster}.0`)?.ad.toJSON().NumJobStarts, 2);
});

/** Files under `dir` whose base name matches. */
function findFiles(dir: string, name: RegExp): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => name.test(path.basename(f)));
}

test('DAGMan killed by a signal is requeued and finishes the workflow; every image is converted once', async () => {
  await fx.reset();
  const keys = Array.from({ length: 6 }, (_, i) => `Crash/tile${i}.tif`);
  for (const key of keys) await fx.store.upload(fx.settings.inputBucket, key, fixturePath('1band-small.tif'));
  await fx.store.putText(fx.settings.inputBucket, 'Crash/crash_raw.csv', keys.map((k) => `${k},1`).join('\n'));
  const { workflowDir, dagCluster } = await runCycleWithMaxRunning1();
  const dagId = `${dagCluster}.0`;
  await waitUntil(() => Number(fx.standin.schedd.get(dagId)?.ad.toJSON().DAG_NodesDone ?? 0) >= 1, 'the workflow never got going');

  fx.standin.executor.crash(dagId, 'SIGKILL');
  const end = await fx.standin.waitForJob(dagId, { statuses: [4], timeoutMs: 120_000 });
  assert.equal(end.status, 4, 'the requeued DAGMan job completes');
  assert.equal(end.ad?.NumJobStarts, 2, 'DAGMan was started again after the crash');
  assert.equal(end.ad?.DAG_NodesFailed, 0);
  const ts = path.basename(workflowDir).replace('workflow-run-', '');
  assert.equal(await fx.store.getText(fx.settings.inputBucket, `Crash/crash_processed-${ts}.csv`), keys.map((k) => `${k},1\n`).join(''));
  const log = readFileSync(path.join(workflowDir, 'dagfile.dag.dagman.log'), 'utf8');
  assert.match(log, /Job was evicted|Job terminated[^]*signal 9/i, 'the crash is in DAGMan\'s log');
});

test('condor_rm of the DAGMan job removes its node jobs; post still runs', async () => {
  await fx.reset();
  const keys = Array.from({ length: 20 }, (_, i) => `Rm/tile${i}.tif`);
  for (const key of keys) await fx.store.upload(fx.settings.inputBucket, key, fixturePath('1band.tif'));
  await fx.store.putText(fx.settings.inputBucket, 'Rm/rm_raw.csv', keys.map((k) => `${k},1`).join('\n'));
  const { workflowDir, dagCluster } = await runCycleWithMaxRunning1();
  const dagId = `${dagCluster}.0`;
  await waitUntil(
    async () => (await fx.schedd.query(`DAGManJobId == ${dagCluster}`, ['ClusterId'])).length > 0,
    'no node job was ever queued',
  );
  assert.equal(await fx.schedd.removeByConstraint(`ClusterId == ${dagCluster} && ProcId == 0`, 'condor_rm of the DAGMan job'), 1);

  const gone = await fx.standin.waitForJob(dagId, { statuses: [], timeoutMs: 60_000 });
  assert.equal(gone.status, null, 'the DAGMan job left the queue');
  assert.deepEqual(await fx.schedd.query(`DAGManJobId == ${dagCluster}`, ['ClusterId']), [], 'its node jobs went with it');
  const ts = path.basename(workflowDir).replace('workflow-run-', '');
  const failed = await fx.store.getText(fx.settings.inputBucket, `Rm/rm_failed-${ts}.csv`);
  assert.ok(failed.trimEnd().split('\n').length >= 1);
});

async function waitUntil(condition: () => boolean | Promise<boolean>, failure: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, failure);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('condor_rm -c JobBatchName==... removes a running workflow: DAGMan and its nodes leave, post still runs', async () => {
  await fx.reset();
  const keys = Array.from({ length: 30 }, (_, i) => `Slow/tile${i}.tif`);
  for (const key of keys) await fx.store.upload(fx.settings.inputBucket, key, fixturePath('1band.tif'));
  await fx.store.putText(fx.settings.inputBucket, 'Slow/slow_raw.csv', keys.map((k) => `${k},1`).join('\n'));
  // One conversion at a time, so the workflow is surely still running when it is removed.
  const { workflowDir, dagCluster } = await runCycleWithMaxRunning1();

  const dagId = `${dagCluster}.0`;
  const batch = 'JobBatchName == "COG-Pipeline-DAG-*raw.csv"';
  // Wait until at least one image is converted and the next one's node job is in the queue.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const done = Number(fx.standin.schedd.get(dagId)?.ad.toJSON().DAG_NodesDone ?? 0);
    const nodes = await fx.schedd.query(`${batch} && DAGManJobId == ${dagCluster}`, ['ClusterId']);
    if (done >= 1 && nodes.length > 0) break;
    assert.ok(Date.now() < deadline, 'the workflow never got going');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok((await fx.schedd.removeByConstraint(batch, 'stop this workflow')) >= 2);

  const gone = await fx.standin.waitForJob(dagId, { statuses: [], timeoutMs: 60_000 });
  assert.equal(gone.status, null, 'the DAGMan job left the queue');
  assert.deepEqual(await fx.schedd.query(batch, ['ClusterId']), [], 'no job of the workflow is left');

  // The FINAL node's post step still ran: what was converted is processed, the rest failed.
  const ts = path.basename(workflowDir).replace('workflow-run-', '');
  const processed = await fx.store.getText(fx.settings.inputBucket, `Slow/slow_processed-${ts}.csv`);
  const failed = await fx.store.getText(fx.settings.inputBucket, `Slow/slow_failed-${ts}.csv`);
  const done = processed.trimEnd().split('\n');
  assert.ok(done.length >= 1 && done.length < keys.length, `${done.length} converted before the removal`);
  assert.equal(done.length + failed.trimEnd().split('\n').length, keys.length);
  assert.match(readFileSync(path.join(workflowDir, 'dagfile.dag.dagman.out'), 'utf8'), /removed|condor_rm/i);
});

/** A crondor cycle run by hand with -m 1, as a user can: `cog_pipeline.ts crondor ... -m 1`. */
async function runCycleWithMaxRunning1(): Promise<{ workflowDir: string; dagCluster: string }> {
  const r = await runCli(['crondor', ...fx.launchArgs(), '-m', '1', '--launch-dir', fx.launchDir]);
  assert.equal(r.code, 0, r.stderr);
  const m = /submitted (workflow-run-\S+) as DAGMan job (\d+)\.0/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return { workflowDir: path.join(fx.launchDir, m[1]!), dagCluster: m[2]! };
}

test('no secret in any file, object, job ad or log the pipeline produced (planted: the S3 keys and the htcondor-api token)', async () => {
  const secrets = {
    's3 secret key': readFileSync(fx.settings.s3.secretKeyFile, 'utf8').trim(),
    's3 access key': readFileSync(fx.settings.s3.accessKeyFile, 'utf8').trim(),
    'htcondor-api token': readFileSync(fx.standin.tokenFile, 'utf8').trim(),
  };
  for (const job of fx.standin.schedd.all()) jobAds.set(job.id, JSON.stringify(job.ad.toJSON()));
  const places: Array<[string, Buffer]> = [];
  // Everything in the launch directory: crondor logs, workflow directories, DAG files, node logs, post logs, CSV copies.
  for (const file of readdirSync(fx.launchDir, { recursive: true, encoding: 'utf8' })) {
    const full = path.join(fx.launchDir, file);
    if (statSync(full).isFile()) places.push([full, readFileSync(full)]);
  }
  // What the schedd holds: spool directories and the job ads (descriptions, arguments, environment).
  for (const file of readdirSync(path.join(fx.standin.directory, 'spool'), { recursive: true, encoding: 'utf8' })) {
    const full = path.join(fx.standin.directory, 'spool', file);
    if (statSync(full).isFile()) places.push([full, readFileSync(full)]);
  }
  for (const [id, ad] of jobAds) places.push([`job ad ${id}`, Buffer.from(ad)]);
  // Every object in both buckets.
  for (const bucket of [fx.settings.inputBucket, fx.settings.outputBucket]) {
    for (const key of await keysOf(fx.store, bucket)) places.push([`s3://${bucket}/${key}`, await fx.store.getHead(bucket, key, 64 << 20)]);
  }
  assert.ok(jobAds.size >= 3 && places.length > 20, `searched ${places.length} places and ${jobAds.size} job ads`);
  const found = places.flatMap(([where, bytes]) =>
    Object.entries(secrets)
      .filter(([, secret]) => bytes.includes(secret))
      .map(([what]) => `${what} in ${where}`),
  );
  assert.deepEqual(found, []);
});
