/**
 * `npm run bench` (issue 10): the crondor cycle and the post step of the CURRENT pipeline,
 * measured side by side with a baseline that does what the Python tool does, on the same data,
 * on loopback. `npm run bench -- --quick` is the small set (under two minutes).
 *
 * What it sets up, all on 127.0.0.1 and all its own:
 *  - a real S3 server (s3rver in a child process, test/support/s3_server.ts) and the htcondor-api
 *    stand-in (test/standin), each behind a counting proxy (counting_proxy.ts): requests are
 *    counted from the real traffic of the measured processes;
 *  - the stand-in never starts a job (its negotiation delay is ~24 days): DAGs are submitted
 *    and checked as usual, but nothing is converted; post finds what a finished DAG leaves,
 *    made by synthesize.ts (outputs in the output bucket, node logs);
 *  - synthetic data: tiny fake .tif objects and unrelated keys written straight into s3rver's
 *    storage directory (s3_layout.ts: a million PUTs would take far longer), manifests PUT
 *    through the API.
 *
 * How the measured processes are run: the pipeline is launched once through the stand-in
 * (itself measured); the crondor job's own command line and environment are read back from its
 * job ad and run, with only the buckets and launch directory changed per scenario. Post is run
 * with the FINAL node's POST command from the DAG the cycle wrote, in the workflow directory,
 * as DAGMan runs it. CPU and peak RSS come from inside each process (usage_probe.mjs, loaded
 * through NODE_OPTIONS); the S3 server's own time is not in them (another process).
 *
 * Before measuring it runs `npm run build` (the jobs run the build) and compiles the baseline
 * (prepare.ts). The baseline runs as plain Node on that JavaScript; so do the jobs, when the
 * pipeline's build is what they run.
 *
 * Flags: --quick; --cpu-prof (profiles ours at the largest size into bench/profiles/ and
 * summarizes where the time went; the profiled runs' figures include the profiler);
 * --keep (keep the scratch directory); --no-build; --scratch DIR (default /dev/shm when it has
 * room, else the temporary directory); --sizes 100,1000 and --unrelated N (override the set);
 * --post-budget SECONDS (how long the baseline's post may run).
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { selfInvocation } from '../lib/invocation.ts';
import { jobArguments, jobEnvironment } from '../test/standin/executor.ts';
import { stringAttr } from '../test/standin/schedd.ts';
import { startStandin, type Standin } from '../test/standin/standin.ts';
import { startS3Server, type S3Server } from '../test/support/s3_server.ts';
import { classifyRest, classifyS3, startCountingProxy, type CountingProxy } from './counting_proxy.ts';
import { measure } from './measure.ts';
import { buildProject, compileBaseline, type BuildOutcome } from './prepare.ts';
import { formatSummary, summarizeProfile } from './profile_summary.ts';
import { details, table, targetLines, total, type ScenarioInfo, type StepRecord, type Target, type Tool } from './report.ts';
import { checkLayout, DiskWriter } from './s3_layout.ts';
import { synthesizeFinishedDag } from './synthesize.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BASELINE_SOURCE = fileURLToPath(new URL('./baseline.ts', import.meta.url));
// Compiled at the start of each run (prepare.ts); bench/.gitignore keeps it out of git.
const BASELINE = fileURLToPath(new URL('./.build/baseline.mjs', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const PROFILES = fileURLToPath(new URL('./profiles/', import.meta.url));
const PATTERN = '*raw.csv';
const CLI = path.join(REPO, 'cog_pipeline.ts');
// What `npx tsx` runs (test/support/run_cli.ts does the same).
const TSX_CLI = fileURLToPath(import.meta.resolve('tsx/cli'));

// ---------------------------------------------------------------------------------------------
// What to measure.

type Config = {
  mode: 'quick' | 'full';
  sizes: number[];
  unrelatedKeys: number;
  /** Rows of the manifest in the bucket with unrelated keys (compared with the scenario of that size). */
  bigBucketRows: number;
  noopRuns: number;
  imagesPerFolder: number;
  /** Every n-th node fails (no outputs, exit 1): post writes a failed CSV too. */
  failEvery: number;
  /** Every n-th row names an image that is not in the bucket: the cycle sets it aside. */
  missingEvery: number;
  /** The baseline's post is stopped after this long, */
  baselinePostBudgetMs: number;
  /** and not started when it would need more requests than this, */
  baselinePostMaxRequests: number;
  /** nor in the bucket of unrelated keys unless this is set (it lists that bucket whole). */
  baselinePostInBigBucket: boolean;
  /** Any one measured step is stopped after this long. */
  stepTimeoutMs: number;
};

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    unrelated: { type: 'string' },
    'post-budget': { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    scratch: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log('usage: npm run bench [-- --quick] [--cpu-prof] [--keep] [--no-build] [--scratch DIR] [--sizes 100,1000] [--unrelated N] [--post-budget SECONDS]');
  process.exit(0);
}

const config: Config = flags.quick
  ? {
      mode: 'quick',
      sizes: [100, 1000, 10_000],
      unrelatedKeys: 50_000,
      bigBucketRows: 100,
      noopRuns: 3,
      imagesPerFolder: 100,
      failEvery: 100,
      missingEvery: 1000,
      baselinePostBudgetMs: 30_000,
      baselinePostMaxRequests: 1_000,
      baselinePostInBigBucket: false,
      stepTimeoutMs: 5 * 60_000,
    }
  : {
      mode: 'full',
      sizes: [100, 1000, 10_000, 100_000],
      unrelatedKeys: 1_000_000,
      bigBucketRows: 100,
      noopRuns: 5,
      imagesPerFolder: 100,
      failEvery: 100,
      missingEvery: 1000,
      baselinePostBudgetMs: 240_000,
      baselinePostMaxRequests: 100_000,
      baselinePostInBigBucket: true,
      stepTimeoutMs: 30 * 60_000,
    };
if (flags.sizes) config.sizes = flags.sizes.split(',').map((s) => Number(s.replace(/_/g, '')));
if (flags.unrelated) config.unrelatedKeys = Number(flags.unrelated.replace(/_/g, ''));
if (flags['post-budget']) config.baselinePostBudgetMs = Number(flags['post-budget']) * 1000;
if (config.sizes.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(config.unrelatedKeys) || !(config.baselinePostBudgetMs > 0)) {
  throw new Error('--sizes takes whole numbers (100,1000), --unrelated a whole number, --post-budget seconds');
}

// ---------------------------------------------------------------------------------------------
// Loopback set-up.

const benchStarted = Date.now();
// Other work on the machine stretches wall times (CPU times much less): said in the output.
const loadAtStart = os.loadavg()[0]!;
const phases: Array<{ phase: string; seconds: number }> = [];
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await work();
  } finally {
    phases.push({ phase: name, seconds: (Date.now() - t) / 1000 });
  }
}
const progress = (message: string) => process.stderr.write(`[bench ${((Date.now() - benchStarted) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);

/**
 * Where the S3 server's storage, the launch and workflow directories and the node logs go: a
 * memory file system when there is one with room, because on this machine's disk (ext4 mounted
 * with online discard) making and deleting 100 000 node logs takes minutes; else the temporary
 * directory. --scratch DIR chooses.
 */
function scratchBase(): string {
  if (flags.scratch) return flags.scratch;
  try {
    accessSync('/dev/shm', constants.W_OK);
    const fs = statfsSync('/dev/shm');
    if (fs.bavail * fs.bsize > 4 * 2 ** 30) return '/dev/shm';
  } catch {
    // no memory file system here
  }
  return os.tmpdir();
}

const work = mkdtempSync(path.join(scratchBase(), 'cog-bench-'));
const scratch = path.join(work, 'scratch');
mkdirSync(scratch);
progress(`mode ${config.mode}; scratch directory ${work}`);

let s3: S3Server | undefined;
let standin: Standin | undefined;
let s3Proxy: CountingProxy | undefined;
let restProxy: CountingProxy | undefined;

/** s3rver directly, not through the proxy: the bench's own set-up is not counted. */
let direct: S3Client;

async function setUp(): Promise<void> {
  s3 = await startS3Server({ directory: path.join(work, 's3') });
  // Never starts a job: DAGs are submitted and checked, nothing runs (2^31-1 ms is setTimeout's most).
  standin = await startStandin({ directory: path.join(work, 'standin'), execution: { startDelayMs: 2 ** 31 - 1, periodicIntervalMs: 60_000 } });
  s3Proxy = await startCountingProxy(s3.endpoint, classifyS3);
  restProxy = await startCountingProxy(standin.url, classifyRest);
  direct = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  writeFileSync(path.join(work, 'keyid'), `${s3.accessKeyId}\n`);
  writeFileSync(path.join(work, 'secret'), `${s3.secretAccessKey}\n`);
  // Check s3rver's storage layout before writing a million files into it.
  const probe = Buffer.from('layout check');
  await createBucket('bench-layout');
  await direct.send(new PutObjectCommand({ Bucket: 'bench-layout', Key: 'a/b/c.tif', Body: probe }));
  checkLayout(s3.directory, 'bench-layout', 'a/b/c.tif', probe);
}

async function tearDown(): Promise<void> {
  const t = Date.now();
  const step = (what: string) => progress(`tear-down: ${what} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  direct?.destroy();
  await s3Proxy?.close();
  await restProxy?.close();
  step('proxies closed');
  await standin?.stop();
  step('stand-in stopped');
  await s3?.stop();
  step('s3rver stopped');
  if (flags.keep) progress(`kept ${work}`);
  else await removeTree(work);
}

/** rm -rf: far faster than fs.rm for a million small files. */
function removeTree(dir: string): Promise<void> {
  return new Promise((resolve) => {
    const rm = spawn('rm', ['-rf', '--', dir], { stdio: 'ignore' });
    rm.once('exit', () => resolve());
    rm.once('error', () => resolve());
  });
}

async function createBucket(name: string): Promise<void> {
  await direct.send(new CreateBucketCommand({ Bucket: name }));
}

async function keysUnder(bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await direct.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

async function getText(bucket: string, key: string): Promise<string> {
  const { Body } = await direct.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Body ? Body.transformToString() : '';
}

// ---------------------------------------------------------------------------------------------
// How the measured processes are run.

type JobCommand = { program: string; argv: string[]; env: Record<string, string>; source: string };

/** The crondor job's command for other buckets and another launch directory. */
function crondorCommand(job: JobCommand, inBucket: string, outBucket: string, launchDir: string): string[] {
  let argv = [...job.argv];
  for (const [flag, value] of [['--input-bucket', inBucket], ['--output-bucket', outBucket], ['--launch-dir', launchDir]] as const) {
    const i = argv.indexOf(flag);
    if (i < 0 || i + 1 >= argv.length) throw new Error(`the crondor job's arguments have no ${flag}: ${argv.join(' ')}`);
    argv = [...argv.slice(0, i + 1), value, ...argv.slice(i + 2)];
  }
  return argv;
}

function s3Args(): string[] {
  return ['-a', path.join(work, 'keyid'), '-s', path.join(work, 'secret'), '-e', s3Proxy!.url];
}

/** Runs and measures one process; traffic is what passed the proxies meanwhile. */
async function run(
  what: { scenario: string; step: StepRecord['step']; tool: Tool },
  program: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
  opts: { timeoutMs?: number; cpuProfDir?: string } = {},
): Promise<StepRecord> {
  s3Proxy!.take();
  restProxy!.take();
  const usage = await measure(
    {
      program,
      args,
      cwd,
      env,
      stdoutFile: path.join(cwd, `bench-${what.step}.out`),
      stderrFile: path.join(cwd, `bench-${what.step}.err`),
      timeoutMs: opts.timeoutMs ?? config.stepTimeoutMs,
      cpuProfDir: opts.cpuProfDir,
    },
    scratch,
  );
  const record: StepRecord = { ...what, status: 'ok', runs: 1, usage, s3: s3Proxy!.take(), rest: restProxy!.take() };
  if (usage.timedOut) {
    record.status = 'timed-out';
    record.note = `stopped after ${((opts.timeoutMs ?? config.stepTimeoutMs) / 1000).toFixed(0)} s`;
  } else if (usage.exitCode !== 0) {
    record.status = 'failed';
    const err = readFileSync(path.join(cwd, `bench-${what.step}.err`), 'utf8').trim().split('\n').slice(-3).join(' | ');
    record.note = `exit ${usage.exitCode ?? usage.signal}: ${err.slice(0, 300)}`;
  }
  return record;
}

/** Of several runs, the one with the median wall time (its figures stay together). */
function median(records: StepRecord[]): StepRecord {
  const sorted = [...records].sort((a, b) => (a.usage?.wallMs ?? 0) - (b.usage?.wallMs ?? 0));
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  return { ...mid, runs: records.length, allRuns: records.map((r) => r.usage!) };
}

function workflowDirs(launchDir: string): string[] {
  return readdirSync(launchDir)
    .filter((f) => f.startsWith('workflow-run-'))
    .sort()
    .map((f) => path.join(launchDir, f));
}

function dagFacts(workflowDir: string | undefined): { dagBytes?: number; nodes?: number } {
  if (workflowDir === undefined) return {};
  const file = path.join(workflowDir, 'dagfile.dag');
  try {
    const text = readFileSync(file, 'utf8');
    return { dagBytes: statSync(file).size, nodes: text.match(/^JOB /gm)?.length ?? 0 };
  } catch {
    return {};
  }
}

/** Rows in the processed and failed CSVs next to the manifest: what post recorded. */
async function postOutcome(inBucket: string): Promise<string> {
  const keys = await keysUnder(inBucket, 'Manifests/');
  const rows = async (state: string) => {
    const key = keys.find((k) => k.includes(`_${state}-`));
    return key === undefined ? 0 : (await getText(inBucket, key)).split(/\r?\n/).filter((l) => l !== '').length;
  };
  const processing = keys.filter((k) => k.includes('_processing-')).length;
  return `processed ${await rows('processed')}, failed ${await rows('failed')}${processing > 0 ? `, ${processing} processing object(s) left` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Data.

const IMAGE = Buffer.from('II*\0bench: a fake GeoTIFF, never converted\n');

type Scenario = ScenarioInfo & { post: boolean };

function imageKey(i: number, perFolder: number): string {
  const folder = `Counties/C${String(Math.floor(i / perFolder)).padStart(4, '0')}`;
  return `${folder}/tile_${String(i).padStart(6, '0')}.tif`;
}

/** Builds the input bucket: images, unrelated keys, the manifest (PUT through the API, last). */
async function buildScenario(s: Scenario, disk: DiskWriter): Promise<string | undefined> {
  const inBucket = `${s.id}-in`;
  await createBucket(inBucket);
  await createBucket(`${s.id}-out`);
  const lines: string[] = [];
  for (let i = 0; i < s.rows; i++) {
    const key = imageKey(i, config.imagesPerFolder);
    if ((i + 1) % config.missingEvery === 0) {
      lines.push(`${key.replace('tile_', 'missing_')},1`);
      continue;
    }
    disk.put(inBucket, key, IMAGE);
    lines.push(`${key},${[1, 3, 4][i % 3]}`);
  }
  for (let i = 0; i < s.unrelatedKeys; i++) {
    const key = `Archive/Y${String(Math.floor(i / 100_000)).padStart(2, '0')}/D${String(Math.floor(i / 1000) % 100).padStart(2, '0')}/old_${String(i).padStart(7, '0')}.tif`;
    disk.put(inBucket, key, IMAGE);
  }
  if (s.rows === 0) return undefined;
  const manifest = lines.join('\n') + '\n';
  await putManifest(inBucket, s.id, manifest);
  return manifest;
}

async function putManifest(bucket: string, id: string, manifest: string): Promise<void> {
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: `Manifests/${id}_raw.csv`, Body: manifest, ContentType: 'text/csv' }));
}

/** The input bucket as it was before ours ran: the raw manifest back, ours' CSVs gone. */
async function restoreManifest(s: Scenario, manifest: string): Promise<void> {
  const inBucket = `${s.id}-in`;
  for (const key of await keysUnder(inBucket, 'Manifests/')) await direct.send(new DeleteObjectCommand({ Bucket: inBucket, Key: key }));
  await putManifest(inBucket, s.id, manifest);
}

/** What the baseline's post would request: two full listings of the output bucket per row, then one of the input bucket. */
function baselinePostEstimate(s: Scenario, outputs: number): number {
  const pages = (objects: number) => Math.max(1, Math.ceil(objects / 1000));
  return s.images * 2 * (1 + pages(outputs)) + (1 + pages(s.inputObjects)) + 4;
}

// ---------------------------------------------------------------------------------------------
// The run.

const records: StepRecord[] = [];
const scenarios: Scenario[] = [];
const profiles: Array<{ title: string; file: string; summary: string }> = [];
let jobCommand: JobCommand | undefined;

/**
 * Launches the pipeline as people do (`npx tsx cog_pipeline.ts ...`, here tsx's CLI without npx),
 * measured, and reads back from the crondor job's ad how the schedd will run each cycle.
 */
async function launchOnce(): Promise<JobCommand> {
  const launchDir = path.join(work, 'launch');
  mkdirSync(launchDir, { recursive: true });
  await createBucket('launch-in');
  await createBucket('launch-out');
  const tokenFile = standin!.tokenFile;
  const flagsOf = ['--input-bucket', 'launch-in', '--output-bucket', 'launch-out', '-p', PATTERN, ...s3Args(), '--api-url', restProxy!.url, '--api-token-file', tokenFile];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? work, LANG: process.env.LANG ?? 'C.UTF-8' };
  const record = await run({ scenario: 'launch', step: 'launch', tool: 'ours' }, process.execPath, [TSX_CLI, CLI, ...flagsOf], launchDir, env);
  records.push(record);
  const stdout = readFileSync(path.join(launchDir, 'bench-launch.out'), 'utf8');
  const cluster = /JobID (\d+)\.0/.exec(stdout)?.[1];
  const ad = cluster === undefined ? undefined : standin!.schedd.get(`${cluster}.0`)?.ad;
  const cmd = ad && stringAttr(ad, 'Cmd');
  if (record.status === 'ok' && ad && cmd) {
    const job = { program: cmd, argv: jobArguments(ad), env: jobEnvironment(ad), source: `the crondor job ${cluster}.0's Cmd, Arguments and Environment` };
    record.outcome = `crondor job ${cluster}.0: ${[cmd, ...job.argv.slice(0, job.argv.indexOf('crondor') + 1)].join(' ')} ...`;
    return job;
  }
  // The launch failed: measure the cycle all the same, run as lib/invocation.ts says jobs run it,
  // or failing that from the sources with tsx.
  let program = process.execPath;
  let prefix = ['--import', import.meta.resolve('tsx'), CLI];
  let source = 'node --import tsx cog_pipeline.ts and the documented crondor flags (the launch failed)';
  try {
    const inv = selfInvocation();
    [program, prefix, source] = [inv.program, inv.args, 'lib/invocation.ts selfInvocation() and the documented crondor flags (the launch failed)'];
  } catch (err) {
    record.note = `${record.note ?? ''}; selfInvocation(): ${(err as Error).message}`;
  }
  record.note = `${record.note ?? 'no crondor job in the queue'}; cycles run as ${source}`;
  return {
    program,
    argv: [...prefix, 'crondor', ...flagsOf, '--launch-dir', launchDir],
    env,
    source,
  };
}

function baselineCycleArgs(s: Scenario): string[] {
  return [
    BASELINE, 'crondor',
    '--input-bucket', `${s.id}-in`, '--output-bucket', `${s.id}-out`, '-p', PATTERN, ...s3Args(),
    '--api-url', restProxy!.url, '--api-token-file', standin!.tokenFile,
  ];
}

async function noopScenario(s: Scenario, job: JobCommand): Promise<void> {
  const oursDir = path.join(work, 'runs', s.id, 'ours');
  const baseDir = path.join(work, 'runs', s.id, 'baseline');
  mkdirSync(oursDir, { recursive: true });
  mkdirSync(baseDir, { recursive: true });
  const ours = () => run({ scenario: s.id, step: 'cycle', tool: 'ours' }, job.program, crondorCommand(job, `${s.id}-in`, `${s.id}-out`, oursDir), oursDir, job.env);
  const base = () => run({ scenario: s.id, step: 'cycle', tool: 'baseline' }, process.execPath, baselineCycleArgs(s), baseDir, job.env);
  // One run of each first, unmeasured: compile caches, the page cache (a crondor job that has
  // run every 15 minutes for months starts warm).
  await ours();
  await base();
  const oursRuns: StepRecord[] = [];
  const baseRuns: StepRecord[] = [];
  for (let i = 0; i < config.noopRuns; i++) {
    oursRuns.push(await ours());
    baseRuns.push(await base());
  }
  records.push(median(oursRuns), median(baseRuns));
}

async function sizedScenario(s: Scenario, job: JobCommand, disk: DiskWriter, manifest: string, profile: boolean): Promise<void> {
  const inBucket = `${s.id}-in`;
  const outBucket = `${s.id}-out`;
  const oursDir = path.join(work, 'runs', s.id, 'ours');
  const baseDir = path.join(work, 'runs', s.id, 'baseline');
  mkdirSync(oursDir, { recursive: true });
  mkdirSync(baseDir, { recursive: true });
  const profDir = (step: string) => {
    if (!profile) return undefined;
    const dir = path.join(PROFILES, `${config.mode}-${s.id}-${step}`);
    rmSync(dir, { recursive: true, force: true }); // only this run's profile is summarized
    return dir;
  };

  // Ours: the cycle, then post on what a finished DAG leaves.
  progress(`${s.id}: ours, crondor cycle`);
  const cycle = await run({ scenario: s.id, step: 'cycle', tool: 'ours' }, job.program, crondorCommand(job, inBucket, outBucket, oursDir), oursDir, job.env, {
    cpuProfDir: profDir('cycle'),
  });
  const oursWorkflow = workflowDirs(oursDir)[0];
  const oursDag = dagFacts(oursWorkflow);
  cycle.dagBytes = oursDag.dagBytes;
  cycle.outcome = oursDag.nodes === undefined ? 'no DAG written' : `DAG of ${oursDag.nodes} nodes`;
  if (profile) cycle.note = [cycle.note, 'measured with --cpu-prof (the profiler adds its overhead)'].filter(Boolean).join('; ');
  records.push(cycle);
  let outputs = 0;
  if (s.post) {
    if (cycle.status === 'ok' && oursWorkflow !== undefined && oursDag.nodes !== undefined) {
      progress(`${s.id}: synthesizing the finished DAG (${oursDag.nodes} nodes)`);
      const made = await synthesizeFinishedDag(oursWorkflow, disk, outBucket, config.failEvery);
      outputs = made.converted * 2;
      progress(`${s.id}: ours, post`);
      const [program, ...args] = made.postCommand;
      const post = await run({ scenario: s.id, step: 'post', tool: 'ours' }, program!, args, oursWorkflow, job.env, { cpuProfDir: profDir('post') });
      post.outcome = `${await postOutcome(inBucket)} (${made.converted} nodes converted, ${made.failed} failed, ${s.missingRows} rows set aside)`;
      if (profile) post.note = [post.note, 'measured with --cpu-prof (the profiler adds its overhead)'].filter(Boolean).join('; ');
      records.push(post);
    } else {
      records.push({ scenario: s.id, step: 'post', tool: 'ours', status: 'skipped', runs: 0, note: 'the cycle wrote no DAG' });
    }
  }

  // The baseline, on the same input bucket (the raw manifest put back) and the same outputs.
  await restoreManifest(s, manifest);
  progress(`${s.id}: baseline, crondor cycle`);
  const baseCycle = await run({ scenario: s.id, step: 'cycle', tool: 'baseline' }, process.execPath, baselineCycleArgs(s), baseDir, job.env);
  const baseWorkflow = workflowDirs(baseDir)[0];
  const baseDag = dagFacts(baseWorkflow);
  baseCycle.dagBytes = baseDag.dagBytes;
  baseCycle.outcome = baseDag.nodes === undefined ? 'no DAG written' : `DAG of ${baseDag.nodes} nodes`;
  records.push(baseCycle);
  if (!s.post) return;
  if (baseCycle.status !== 'ok' || baseWorkflow === undefined) {
    records.push({ scenario: s.id, step: 'post', tool: 'baseline', status: 'skipped', runs: 0, note: 'the baseline cycle made no workflow' });
    return;
  }
  const estimate = baselinePostEstimate(s, outputs);
  if (s.unrelatedKeys > 0 && !config.baselinePostInBigBucket) {
    records.push({
      scenario: s.id,
      step: 'post',
      tool: 'baseline',
      status: 'skipped',
      runs: 0,
      note: `not run in --quick (the full run does): ~${estimate.toLocaleString('en-US')} requests, the ${fmtN(config.bigBucketRows)}-row scenario's plus a full listing of the input bucket`,
    });
    return;
  }
  if (estimate > config.baselinePostMaxRequests) {
    const rate = baselineRate();
    records.push({
      scenario: s.id,
      step: 'post',
      tool: 'baseline',
      status: 'skipped',
      runs: 0,
      note:
        `not run: it would make ~${estimate.toLocaleString('en-US')} requests (two full listings of a ${outputs.toLocaleString('en-US')}-object output bucket per row)` +
        (rate ? `, ~${formatDuration(estimate / rate)} at the ${rate.toFixed(0)} requests/s it made at a smaller size` : ''),
    });
    return;
  }
  progress(`${s.id}: baseline, post (~${estimate} requests, at most ${(config.baselinePostBudgetMs / 1000).toFixed(0)} s)`);
  const postArgs = [BASELINE, 'post', '--input-bucket', inBucket, '--output-bucket', outBucket, ...s3Args()];
  const basePost = await run({ scenario: s.id, step: 'post', tool: 'baseline' }, process.execPath, postArgs, baseWorkflow, job.env, {
    timeoutMs: config.baselinePostBudgetMs,
  });
  if (basePost.status === 'timed-out') {
    const done = total(basePost.s3?.requests);
    basePost.note =
      `stopped at the ${(config.baselinePostBudgetMs / 1000).toFixed(0)} s budget after ${done.toLocaleString('en-US')} of ~${estimate.toLocaleString('en-US')} requests` +
      ` (finishing would take ~${formatDuration(((basePost.usage?.wallMs ?? 0) / 1000) * (estimate / Math.max(done, 1)))})`;
  } else if (basePost.status === 'ok') {
    basePost.outcome = await postOutcome(inBucket);
  }
  records.push(basePost);
}

/** Requests per second the baseline's post made in the largest finished run, to say how long a skipped one would take. */
function baselineRate(): number | undefined {
  const done = records.filter((r) => r.tool === 'baseline' && r.step === 'post' && (r.status === 'ok' || r.status === 'timed-out') && r.usage);
  const last = done.at(-1);
  return last ? total(last.s3?.requests) / (last.usage!.wallMs / 1000) : undefined;
}

function formatDuration(s: number): string {
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 2 * 3600) return `${(s / 60).toFixed(0)} min`;
  if (s < 2 * 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

function scenarioInfo(id: string, title: string, rows: number, unrelatedKeys: number, post: boolean): Scenario {
  const missingRows = Math.floor(rows / config.missingEvery);
  const images = rows - missingRows;
  return {
    id,
    title,
    rows,
    images,
    missingRows,
    folders: Math.ceil(rows / config.imagesPerFolder),
    unrelatedKeys,
    inputObjects: images + unrelatedKeys + (rows > 0 ? 1 : 0),
    post,
  };
}

const fmtN = (n: number) => n.toLocaleString('en-US');

let build: BuildOutcome | undefined;

async function main(): Promise<void> {
  if (!flags['no-build']) {
    build = await phase('npm run build', async () => buildProject(REPO));
    if (build.ran) progress(`npm run build: ${build.ok ? 'done' : `FAILED (${build.said.split('\n').slice(-2).join(' ')}); measuring what is there`}`);
  }
  compileBaseline(BASELINE_SOURCE, BASELINE);
  await phase('set-up (s3rver, stand-in, proxies)', setUp);
  const disk = new DiskWriter(s3!.directory, path.join(work, 'pool'));
  const job = await phase('launch', launchOnce);
  jobCommand = job;
  progress(`crondor runs as ${job.source}`);

  const noop = scenarioInfo('noop', 'no-op cycle (empty bucket)', 0, 0, false);
  scenarios.push(noop);
  await phase('no-op cycles', async () => {
    await buildScenario(noop, disk);
    await noopScenario(noop, job);
  });

  const sized: Scenario[] = [scenarioInfo('one', 'one manifest, 1 row', 1, 0, true)];
  for (const n of config.sizes) sized.push(scenarioInfo(`n${n}`, `${fmtN(n)} rows`, n, 0, true));
  // --unrelated 0 leaves the bucket of unrelated keys out.
  if (config.unrelatedKeys > 0) {
    sized.push(scenarioInfo('big', `${fmtN(config.bigBucketRows)} rows + ${fmtN(config.unrelatedKeys)} unrelated keys`, config.bigBucketRows, config.unrelatedKeys, true));
  }
  const largest = `n${Math.max(...config.sizes)}`;
  for (const s of sized) {
    scenarios.push(s);
    const built = await phase(`${s.id}: data`, async () => {
      progress(`${s.id}: writing ${fmtN(s.images + s.unrelatedKeys)} objects`);
      return buildScenario(s, disk);
    });
    await phase(`${s.id}: runs`, () => sizedScenario(s, job, disk, built!, flags['cpu-prof'] && s.id === largest));
  }

  if (flags['cpu-prof']) {
    mkdirSync(PROFILES, { recursive: true });
    for (const dir of readdirSync(PROFILES).filter((d) => d.startsWith(`${config.mode}-${largest}-`))) {
      const files = readdirSync(path.join(PROFILES, dir)).filter((f) => f.endsWith('.cpuprofile'));
      for (const f of files) {
        const file = path.join(PROFILES, dir, f);
        const title = `${dir} (${path.relative(REPO, file)})`;
        profiles.push({ title, file, summary: formatSummary(title, summarizeProfile(file)) });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Targets (issue 10), informational.

/** The Python tool's no-op cycle, wall time, as issue 10 measured it on the project's machines. */
const PYTHON_NOOP_CYCLE_S = 0.6;

function targets(): Target[] {
  const find = (scenario: string, step: string, tool: Tool) => records.find((r) => r.scenario === scenario && r.step === step && r.tool === tool);
  const mbOf = (r: StepRecord | undefined) => (r?.usage?.maxRssKb ?? NaN) / 1024;
  const sOf = (ms: number | undefined) => ((ms ?? NaN) / 1000).toFixed(2);
  const out: Target[] = [];
  const verdict = (ok: boolean): Target['verdict'] => (ok ? 'PASS' : 'FAIL');

  const noopOurs = find('noop', 'cycle', 'ours');
  const noopBase = find('noop', 'cycle', 'baseline');
  if (noopOurs?.status === 'ok' && noopBase?.status === 'ok') {
    // The Python tool itself cannot run here (its packages come from PyPI); issue 10 measured its
    // no-op cycle on the project's machines. The baseline is the floor for any Node.js tool.
    out.push({
      name: `no-op cycle no slower than the Python tool's ${PYTHON_NOOP_CYCLE_S} s`,
      verdict: verdict(noopOurs.usage!.wallMs <= PYTHON_NOOP_CYCLE_S * 1000),
      detail: `${sOf(noopOurs.usage!.wallMs)} s wall (median; issue 10's figure for the Python tool; ` +
        `the baseline, plain Node and the AWS SDK: ${sOf(noopBase.usage!.wallMs)} s)`,
    });
    out.push({ name: 'no-op cycle under 80 MB RSS', verdict: verdict(mbOf(noopOurs) < 80), detail: `${mbOf(noopOurs).toFixed(1)} MB peak RSS` });
  } else out.push({ name: 'no-op cycle', verdict: 'FAIL', detail: `did not run: ${noopOurs?.note ?? noopBase?.note ?? 'no record'}` });

  for (const step of ['cycle', 'post'] as const) {
    const r = find('n100000', step, 'ours');
    const name = `${step} of 100 000 rows under 5 s client CPU and 300 MB`;
    if (!r) out.push({ name, verdict: 'SKIP', detail: `not measured in this run (largest size ${fmtN(Math.max(...config.sizes))}; the full run measures it)` });
    else if (r.status !== 'ok') out.push({ name, verdict: 'FAIL', detail: `${r.status}: ${r.note ?? ''}` });
    else {
      const cpu = r.usage!.cpuMs / 1000;
      out.push({ name, verdict: verdict(cpu < 5 && mbOf(r) < 300), detail: `${cpu.toFixed(2)} s CPU (${sOf(r.usage!.wallMs)} s wall), ${mbOf(r).toFixed(1)} MB peak RSS` });
    }
  }

  const cycles = records.filter((r) => r.step === 'cycle' && r.tool === 'ours' && r.scenario !== 'noop' && r.status === 'ok');
  const restCounts = cycles.map((r) => `${r.scenario}:${total(r.rest?.requests)}`);
  const distinct = new Set(cycles.map((r) => total(r.rest?.requests)));
  out.push({
    name: 'REST requests per cycle independent of N',
    verdict: cycles.length > 1 && distinct.size === 1 ? 'PASS' : cycles.length > 1 ? 'FAIL' : 'SKIP',
    detail: restCounts.join(', '),
  });

  for (const r of records.filter((x) => x.step === 'post' && x.tool === 'ours' && x.status === 'ok')) {
    const s = scenarios.find((x) => x.id === r.scenario)!;
    // One pass: each output folder listed once, as many pages as its objects need.
    const allowed = s.folders * Math.max(1, Math.ceil((2 * config.imagesPerFolder) / 1000));
    const listings = (r.s3?.requests.ListObjectsV2 ?? 0) + (r.s3?.requests.ListObjects ?? 0);
    out.push({
      name: `post listings at most one pass over the folders (${s.title})`,
      verdict: verdict(listings <= allowed),
      detail: `${listings} listing requests for ${s.folders} folder(s) of the rows`,
    });
  }

  const big = find('big', 'cycle', 'ours');
  const same = find(`n${config.bigBucketRows}`, 'cycle', 'ours');
  const name = 'cycle peak RSS independent of unrelated keys in the bucket';
  if (big?.status === 'ok' && same?.status === 'ok') {
    const grow = mbOf(big) - mbOf(same);
    // Keeping every key (as the cycle once did) costs ~100 bytes a key or more; a listing that
    // keeps nothing still leaves some garbage for V8 to collect later, whatever the bucket's size.
    const linear = (config.unrelatedKeys * 100) / 2 ** 20;
    out.push({
      name,
      verdict: verdict(grow <= 32),
      detail:
        `${mbOf(big).toFixed(1)} MB with ${fmtN(config.unrelatedKeys)} unrelated keys, ${mbOf(same).toFixed(1)} MB without ` +
        `(${grow >= 0 ? '+' : ''}${grow.toFixed(1)} MB; PASS up to +32 MB; keeping the keys would add ~${linear.toFixed(0)} MB or more)` +
        (linear < 64 ? '; too few keys to tell growth from noise: the full run decides' : ''),
    });
  } else out.push({ name, verdict: 'SKIP', detail: `needs the bucket of unrelated keys and the ${fmtN(config.bigBucketRows)}-row scenario` });
  return out;
}

// ---------------------------------------------------------------------------------------------

function machine() {
  const cpus = os.cpus();
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  const s3rverVersion = (JSON.parse(readFileSync(path.join(REPO, 'node_modules/s3rver/package.json'), 'utf8')) as { version: string }).version;
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    s3rver: s3rverVersion,
    commit,
  };
}

let crashed: unknown;
try {
  await main();
} catch (err) {
  crashed = err;
} finally {
  await phase('tear-down', tearDown).catch((err: unknown) => progress(`tear-down: ${(err as Error).message}`));
}

const info = machine();
const totalSeconds = (Date.now() - benchStarted) / 1000;
const loadAtEnd = os.loadavg()[0]!;
const busy = Math.max(loadAtStart, loadAtEnd) > info.cpus;
const targetList = crashed ? [] : targets();
const header = [
  `cog-pipeline bench (${config.mode}), ${new Date().toISOString()}`,
  `machine: ${info.cpus} × ${info.cpuModel}, ${info.memoryGiB} GiB, ${info.platform}; Node ${info.node}; s3rver ${info.s3rver}; commit ${info.commit}`,
  `load average (1 min): ${loadAtStart.toFixed(1)} at the start, ${loadAtEnd.toFixed(1)} at the end` +
    (busy ? ` - MORE THAN ${info.cpus} CPUs: other work competed, wall times are inflated (CPU times much less)` : ''),
  `scratch: ${work} (S3 storage, launch and workflow directories; bulk objects are hard links, bench/s3_layout.ts)`,
  `data: ${config.imagesPerFolder} images per folder; every ${config.missingEvery}th row names a missing image; every ${config.failEvery}th node fails; ` +
    `wall = spawn to exit; CPU = user+sys of the measured process; RSS = its peak (${records.find((r) => r.usage)?.usage?.rssSource ?? '-'}); ` +
    'S3/REST = requests through the counting proxies',
  `crondor runs as: ${jobCommand?.source ?? '(not set up)'}; post as the DAG's FINAL POST command; the baseline: bench/baseline.ts (what cog_pipeline.py does), compiled, run by plain node`,
  build === undefined ? 'build: not run (--no-build)' : build.ran ? `build: npm run build ${build.ok ? `ok (${build.seconds.toFixed(1)} s)` : `FAILED: ${build.said.slice(-300)}`}` : 'build: package.json has no build script',
].join('\n');
const report = [
  header,
  '',
  table(records, scenarios),
  '',
  'S3 kinds: List=ListObjectsV2 Get=GetObject Head=HeadObject Put=PutObject Copy=CopyObject Del=DeleteObject Loc=GetBucketLocation. "+" = stopped early.',
  '',
  details(records),
  '',
  'targets (issue 10; informational):',
  targetLines(targetList),
  ...profiles.flatMap((p) => ['', p.summary]),
  '',
  `bench phases: ${phases.map((p) => `${p.phase} ${p.seconds.toFixed(1)} s`).join('; ')}`,
  `total ${totalSeconds.toFixed(1)} s; results in ${path.relative(process.cwd(), RESULTS) || RESULTS}`,
].join('\n');
console.log(report);

writeFileSync(
  RESULTS,
  JSON.stringify(
    {
      mode: config.mode,
      date: new Date().toISOString(),
      machine: info,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      scratch: work,
      config,
      build,
      crondorCommand: jobCommand ? { source: jobCommand.source, program: jobCommand.program, argv: jobCommand.argv } : undefined,
      scenarios,
      records,
      targets: targetList,
      profiles: profiles.map((p) => ({ title: p.title, file: path.relative(REPO, p.file), summary: p.summary })),
      phases,
      totalSeconds,
      crashed: crashed ? String((crashed as Error).stack ?? crashed) : undefined,
    },
    null,
    2,
  ) + '\n',
);
if (crashed) {
  console.error(crashed);
  process.exitCode = 1;
}
