/**
 * `npm run demo`: the whole pipeline on this one machine. A local S3 server and the
 * htcondor-api/schedd stand-in (test doubles from test/; production uses your S3 endpoint and a
 * real HTCondor pool) run on 127.0.0.1; sample images and a manifest are uploaded; then
 * cog_pipeline.ts is launched exactly as a user would, its crondor job runs a cycle, the DAG
 * converts the images with the real generate_cogs.sh and GDAL, and post records the outcome.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { classAdString } from '../lib/condor_syntax.ts';
import { HtcondorApi, type JobAd } from '../lib/htcondor_api.ts';
import { crondorBatchName, dagBatchName } from '../lib/naming.ts';
import { createS3Client, S3Store } from '../lib/s3_store.ts';
import { startStandin } from '../test/standin/standin.ts';
import { settingsFor, startS3Server } from '../test/support/s3_server.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const DEMO_DIR = path.join(REPO, 'demo-run');
/** Sample images shipped with the project (reduced copies of the office's test images). */
const SAMPLES = path.join(REPO, 'samples');
const TSX_CLI = path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const PATTERN = '*raw.csv';
const IN = 'sco-in';
const OUT = 'sco-out';
const MANIFEST_KEY = 'Counties/WI/demo_raw.csv';
const TIMEOUT_MS = 10 * 60 * 1000;

/** The sample batch: four real images, one file that is not a TIFF, one image never uploaded. */
const IMAGES: Array<[key: string, sample: string, bands: number]> = [
  ['Counties/WI/Wood/1band.tif', '1band.tif', 1],
  ['Counties/WI/Wood/4band.tif', '4band.tif', 4],
  ['Counties/WI/Dane/1band.tif', '1band.tif', 1],
  ['Counties/WI/Dane/3band.tif', '3band.tif', 3],
  ['Counties/WI/Dane/not-a-tiff.tif', 'not-a-tiff.tif', 1],
];
const MISSING = 'Counties/WI/Dane/missing.tif';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // as cog_pipeline.ts does

const say = (line = '') => process.stdout.write(line + '\n');
const step = (line: string) => say(`\n==> ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  rmSync(DEMO_DIR, { recursive: true, force: true });
  const launchDir = path.join(DEMO_DIR, 'launch');
  const keysDir = path.join(DEMO_DIR, 'keys');
  mkdirSync(launchDir, { recursive: true });
  mkdirSync(keysDir, { recursive: true });

  step('starting a local S3 server and the htcondor-api stand-in on 127.0.0.1');
  const s3 = await startS3Server({ buckets: [IN, OUT], directory: path.join(DEMO_DIR, 's3') });
  const standin = await startStandin({ directory: path.join(DEMO_DIR, 'htcondor') });
  const api = new HtcondorApi({ url: standin.url, token: readFileSync(standin.tokenFile, 'utf8').trim() });
  try {
    say(`    S3 endpoint   ${s3.endpoint}   (buckets ${IN}, ${OUT})`);
    say(`    htcondor-api  ${standin.url}`);
    const accessKeyFile = path.join(keysDir, 'keyid');
    const secretKeyFile = path.join(keysDir, 'secret');
    writeFileSync(accessKeyFile, s3.accessKeyId + '\n', { mode: 0o600 });
    writeFileSync(secretKeyFile, s3.secretAccessKey + '\n', { mode: 0o600 });

    step(`uploading ${IMAGES.length} sample images, then the manifest s3://${IN}/${MANIFEST_KEY}`);
    const store = new S3Store(createS3Client(settingsFor(s3)));
    for (const [key, sample] of IMAGES) await store.upload(IN, key, path.join(SAMPLES, sample));
    const manifest = [...IMAGES.map(([key, , bands]) => `${key},${bands}`), `${MISSING},1`].join('\n') + '\n';
    await store.putText(IN, MANIFEST_KEY, manifest, 'text/csv');
    for (const line of manifest.trimEnd().split('\n')) say(`    ${line}`);

    step('launching the pipeline, as you would on the access point');
    const launchArgs = [
      '-a', accessKeyFile, '-s', secretKeyFile, '-e', s3.endpoint,
      '--input-bucket', IN, '--output-bucket', OUT, '-p', PATTERN,
      '--api-url', standin.url, '--api-token-file', standin.tokenFile,
    ];
    say(`    $ npx tsx cog_pipeline.ts ${launchArgs.map(shellWord).join(' ')}`);
    const launched = await promisify(execFile)(process.execPath, [TSX_CLI, path.join(REPO, 'cog_pipeline.ts'), ...launchArgs], { cwd: launchDir });
    say(`    ${launched.stdout.trim()}`);
    const crondorId = /JobID (\d+\.\d+)/.exec(launched.stdout)?.[1];
    if (!crondorId) throw new Error(`launch did not report a job id: ${launched.stdout}${launched.stderr}`);

    step(`running the crondor job's cycle now (the stand-in does not wait for the quarter hour)`);
    await standin.runCron(crondorId);
    const crondorOut = readFileSync(path.join(launchDir, `crondor_${crondorId.split('.')[0]}.out`), 'utf8');
    for (const line of crondorOut.trimEnd().split('\n')) say(`    ${line}`);

    step('waiting for the DAG (what condor_watch_q would show)');
    const dag = await watchDag(api);
    say(`    DAGMan job ${dag.ClusterId}.0 finished and left the queue (its post step wrote the CSVs below)`);

    await report(store, launchDir, manifest);
    step('next step: the same launch on a real pool');
    say('    npx tsx cog_pipeline.ts -a ~/keyid -s ~/secret -e web.s3.wisc.edu \\');
    say(`        --input-bucket YOUR-INPUT-BUCKET --output-bucket YOUR-OUTPUT-BUCKET -p "${PATTERN}" \\`);
    say('        --api-url https://YOUR-ACCESS-POINT:8080 --api-token-file ~/.condor/tokens.d/YOUR-TOKEN');
    say(`    watch it with condor_q / condor_watch_q; stop it with condor_rm -c 'JobBatchName=="${crondorBatchName(PATTERN)}"'`);
    say(`\nEverything the demo made is in ${DEMO_DIR}`);
    return 0;
  } finally {
    await api.close();
    await standin.stop();
    await s3.stop();
  }
}

/** Polls the DAGMan job through the REST API and prints a line whenever its progress changes. */
async function watchDag(api: HtcondorApi): Promise<JobAd> {
  const constraint = `JobBatchName == ${classAdString(dagBatchName(PATTERN))} && JobUniverse == 7`;
  const projection = ['ClusterId', 'JobStatus', 'DAG_NodesTotal', 'DAG_NodesDone', 'DAG_NodesFailed', 'DAG_NodesQueued', 'DAG_Status'];
  const deadline = Date.now() + TIMEOUT_MS;
  let last = '';
  let seen: JobAd | undefined;
  while (Date.now() < deadline) {
    const [dag] = await api.listJobs({ constraint, projection });
    // A finished DAGMan job leaves the queue at once (leave_in_queue = false).
    if (!dag && seen) return seen;
    if (dag?.JobStatus === 4) return dag;
    if (dag) {
      seen = dag;
      const line = `${dag.DAG_NodesDone ?? 0}/${dag.DAG_NodesTotal ?? '?'} nodes done, ${dag.DAG_NodesFailed ?? 0} failed, ${dag.DAG_NodesQueued ?? 0} in the queue`;
      if (line !== last && dag.DAG_NodesTotal !== undefined) say(`    ${new Date().toLocaleTimeString()}  DAGMan job ${dag.ClusterId}.0: ${line}`);
      last = line;
    }
    await sleep(500);
  }
  throw new Error(`the DAG did not finish within ${TIMEOUT_MS / 60000} minutes`);
}

async function report(store: S3Store, launchDir: string, manifestText: string): Promise<void> {
  step('report');
  const outputs = new Map<string, number>();
  for await (const o of store.listObjects(OUT)) outputs.set(o.key, o.size);
  const stateFiles: string[] = [];
  for await (const o of store.listObjects(IN)) if (/(processed|failed)-\d{8}-\d{6}\.csv$/.test(o.key)) stateFiles.push(o.key);
  const processedKey = stateFiles.find((k) => k.includes('processed-'));
  const failedKey = stateFiles.find((k) => k.includes('failed-'));

  say('  Converted:');
  const processed = processedKey ? (await store.getText(IN, processedKey)).trimEnd().split('\n') : [];
  for (const row of processed) {
    const key = row.split(',')[0]!;
    const jpg = key.replace(/\.tiff?$/i, '.jpg');
    say(`    ${key}  ->  s3://${OUT}/${key} (COG, ${kb(outputs.get(key))}) + s3://${OUT}/${jpg} (JPEG, ${kb(outputs.get(jpg))})`);
  }
  say('  Failed (the rows, as written, are in the failed CSV; reasons from post.out):');
  const workflowDir = path.join(launchDir, readdirSync(launchDir).find((n) => n.startsWith('workflow-run-')) ?? '');
  const postOut = safeRead(path.join(workflowDir, 'post.out'));
  const manifestRows = manifestText.trimEnd().split('\n');
  for (const row of failedKey ? (await store.getText(IN, failedKey)).trimEnd().split('\n') : []) {
    const line = manifestRows.indexOf(row) + 1;
    const reason = new RegExp(` line ${line} failed: (.*)$`, 'm').exec(postOut)?.[1];
    say(`    ${row}${reason ? `   (${reason})` : ''}`);
  }
  say('  Where things are:');
  if (processedKey) say(`    processed CSV  s3://${IN}/${processedKey}`);
  if (failedKey) say(`    failed CSV     s3://${IN}/${failedKey}`);
  say(`    COGs and JPEGs s3://${OUT}/Counties/WI/...   (S3 server data: ${path.join(DEMO_DIR, 's3')})`);
  say(`    launch dir     ${launchDir}   (crondor_<cluster>.log/.out/.err)`);
  say(`    workflow dir   ${workflowDir}   (dagfile.dag*, <image>.log/.out/.err, post.out)`);
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function kb(bytes: number | undefined): string {
  return bytes === undefined ? 'missing' : `${(bytes / 1024).toFixed(0)} KiB`;
}

function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
