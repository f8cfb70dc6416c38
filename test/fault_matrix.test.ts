import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRASH_AT_VARIABLE, CRASH_POINTS, crashPointEnvironment, type CrashPointName } from '../lib/crash_point.ts';
import { runCrondorCycle, type CycleDeps } from '../lib/crondor.ts';
import { acquireCycleLock } from '../lib/cycle_lock.ts';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { jobEnvironment } from '../lib/invocation.ts';
import { createLogger, openPostLog, type Logger } from '../lib/log.ts';
import { CLAIMS_FOLDER, isPipelineKey } from '../lib/naming.ts';
import { runPost } from '../lib/post.ts';
import { createS3Client, S3Store, type S3Timeouts } from '../lib/s3_store.ts';
import { ApiSchedd } from '../lib/schedd.ts';
import { loadS3Settings, readSecretFile, type S3Access } from '../lib/settings.ts';
import type { Invocation, PipelineSettings } from '../lib/submit_rendering.ts';
import { readWorkflowRecord, type WorkflowRecord } from '../lib/workflow.ts';
import { FAULT_CLASSES, s3Target, startFaultProxy, type FaultClass, type FaultProxy, type FaultRule, type ProxiedRequest } from './support/fault_proxy.ts';
import type { TestContext } from 'node:test';
import type { PipelineFixture } from './support/pipeline_fixture.ts';

/**
 * Issue 8, "Proof": for every crash point (lib/crash_point.ts) and every fault class
 * (test/support/fault_proxy.ts), with fault-injecting proxies on loopback in front of a real S3
 * server and the htcondor-api stand-in, the user's view afterwards: every manifest row is once,
 * byte for byte, in a processed or failed CSV next to its manifest; no image converted twice; no
 * object the user put in either bucket lost, renamed or changed; nothing of the pipeline's left
 * (no processing object, no claim entry); no DAGMan job of the pipeline left in the queue.
 *
 * Each case: seed the buckets; arm ONE fault at ONE step (a transient one: the first request of
 * that step only) and run the cycle that is killed at the crash point; then fault-free cycles
 * until every workflow is settled or rolled back (at most two), and one more, which must find
 * nothing to do and say nothing alarming. Persistent faults ("S3 or htcondor-api down from this
 * step on") end the cycle, or the post step, with a non-zero exit and a message that says what
 * failed; after the fault is lifted, the next cycles finish everything.
 *
 * How it runs within CI's time: cases run a few at a time (FAULT_MATRIX_CONCURRENCY, default 6),
 * each in its own buckets, launch directory and pair of proxies (one S3 server and one stand-in
 * for all). A cycle that is to be killed is a child process running lib/ as cog_pipeline.ts does
 * (cycle lock, runCrondorCycle, the exit code and error line of main()), this file being its entry
 * point (FAULT_MATRIX_CHILD), only with short client time-outs: the command line has no setting
 * for them (S3: 10 s to connect, 30 s of silence, 3 attempts; htcondor-api: 60 s, retries after 1
 * to 15 s, a lost submission looked for over 20 s), so one hang would cost minutes. A post step
 * that is to be killed is such a child too (this file, `post ...`); the others are handed by
 * DAGMan to this process (test/fixtures/post_in_test_process.mjs), which runs the same post step
 * in the workflow directory: one TypeScript process less per case. The fault-free cycles after
 * the crash run in this process, as test/recovery.test.ts does.
 */

const CHILD_VARIABLE = 'FAULT_MATRIX_CHILD';
const THIS_FILE = fileURLToPath(import.meta.url);

/** What a child cycle or post step needs besides what its arguments say (base64url JSON in CHILD_VARIABLE). */
type ChildConfig = {
  settings: PipelineSettings;
  launchDir: string;
  /** Instead of the token file's (a server that refuses the token). */
  token?: string;
  /** Where the post steps of its DAGs are run (POST_URL_VARIABLE). */
  postUrl: string;
};

/** Short time-outs for the clients of children and of the cycles run here (see above). */
const S3_TIMEOUTS: S3Timeouts = { connectionTimeoutMs: 1_000, socketTimeoutMs: 2_000 };
const S3_SLOW_AFTER_MS = 1_500;
const API_TIMEOUT_MS = 2_000;
const API_RETRY = { attempts: 5, baseDelayMs: 100, maxDelayMs: 400 };
const LOOKUP_DELAYS_MS = [0, 250, 1_000];

/** An S3 store through `access.endpoint` (a proxy), and a way to close its connections. */
function openStore(access: S3Access, log?: Logger): { store: S3Store; close(): void } {
  const client = createS3Client(loadS3Settings(access, process.env), S3_TIMEOUTS);
  return { store: new S3Store(client, { log, slowAfterMs: S3_SLOW_AFTER_MS }), close: () => client.destroy() };
}

function openSchedd(settings: PipelineSettings, log: Logger | undefined, token?: string, timeoutMs = API_TIMEOUT_MS): ApiSchedd {
  const api = new HtcondorApi({
    url: settings.api.url,
    token: token ?? readSecretFile(settings.api.tokenFile!, 'htcondor-api token'),
    timeoutMs,
    retry: API_RETRY,
    log,
  });
  return new ApiSchedd(api, { log, lookupDelaysMs: LOOKUP_DELAYS_MS });
}

/**
 * How DAGMan runs the post step. To be killed at a crash point: this file, in post mode (a
 * TypeScript process). Otherwise, to spare a TypeScript process per workflow: a few lines of
 * plain JavaScript (test/fixtures/post_in_test_process.mjs) that have the test process run the
 * same post step (postStep below) in the workflow directory, and exit as it ended.
 */
const POST_URL_VARIABLE = 'FAULT_MATRIX_POST_URL';
function postInvocation(killable: boolean): Invocation {
  return killable
    ? { program: process.execPath, args: ['--import', import.meta.resolve('tsx'), THIS_FILE] }
    : { program: process.execPath, args: [fileURLToPath(new URL('fixtures/post_in_test_process.mjs', import.meta.url))] };
}

/** The environment DAGMan gets (and so the post step): the launch's, plus a crash point if asked. */
function dagEnvironment(crashAt: CrashPointName | undefined, postUrl: string): Record<string, string> {
  return { ...jobEnvironment(process.env), [POST_URL_VARIABLE]: postUrl, ...(crashAt?.startsWith('post:') ? { [CRASH_AT_VARIABLE]: crashAt } : {}) };
}

// ---------------------------------------------------------------------------------------------
// What `cog_pipeline.ts crondor` and `cog_pipeline.ts post` do, with short time-outs.

/** cog_pipeline.ts crondorMode, with the clients above. Exit code as main(): 0, or 1 with the message. */
async function childCycle(config: ChildConfig): Promise<number> {
  const log = createLogger(process.stdout, process.stderr);
  const taken = await acquireCycleLock(config.launchDir);
  if ('heldBy' in taken) {
    log.info(`another cycle is still running in ${config.launchDir}; this one does nothing`);
    return 0;
  }
  const schedd = openSchedd(config.settings, log, config.token);
  const s3 = openStore(config.settings.s3, log);
  try {
    const crashAt = process.env[CRASH_AT_VARIABLE] as CrashPointName | undefined;
    await runCrondorCycle(config.settings, {
      store: s3.store,
      schedd,
      log,
      now: () => new Date(),
      launchDir: config.launchDir,
      // crashPointEnvironment(), as cog_pipeline.ts passes it on: the post step is killed there too.
      invocation: postInvocation(crashPointEnvironment()[CRASH_AT_VARIABLE] !== undefined),
      environment: dagEnvironment(crashAt, config.postUrl),
    });
    return 0;
  } catch (err) {
    process.stderr.write(errorText(err));
    return 1;
  } finally {
    s3.close();
    await schedd.close();
    await taken.lock.release();
  }
}

/**
 * cog_pipeline.ts post mode (the DAG's FINAL node) in `dir`, its arguments postArguments(settings):
 * post.out and post.err there, and the exit code and error text the command would give.
 */
async function postStep(dir: string, args: string[]): Promise<{ code: number; stderr: string }> {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0 || i + 1 >= args.length) throw new Error(`post: ${name} is missing`);
    return args[i + 1]!;
  };
  const { log, close } = openPostLog(dir);
  const s3 = openStore({ accessKeyFile: flag('-a'), secretKeyFile: flag('-s'), endpoint: flag('-e') }, log);
  try {
    await runPost(dir, s3.store, log);
    return { code: 0, stderr: '' };
  } catch (err) {
    log.error((err as Error).message);
    return { code: 1, stderr: errorText(err) };
  } finally {
    s3.close();
    await close();
  }
}

/** What cog_pipeline.ts main() prints for an error. */
function errorText(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
  return `cog_pipeline.ts: error: ${err instanceof Error ? err.message : String(err)}\n${cause ? `  cause: ${cause}\n` : ''}`;
}

const child = process.argv[2] === 'post' ? 'post' : process.env[CHILD_VARIABLE];
// As cog_pipeline.ts: no "upgrade to Node 22" notice from the AWS SDK in any output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
if (child === 'post') {
  const { code, stderr } = await postStep(process.cwd(), process.argv.slice(3));
  process.stderr.write(stderr);
  process.exitCode = code;
} else if (child !== undefined) {
  const config = JSON.parse(Buffer.from(child, 'base64url').toString()) as ChildConfig;
  process.exitCode = await childCycle(config);
} else {
  await defineTests();
}

// ---------------------------------------------------------------------------------------------
// The tests.

async function defineTests(): Promise<void> {
  const { after, before, describe, test } = await import('node:test');
  const { fixturePath, keysOf, memoryLogger, startPipelineFixture } = await import('./support/pipeline_fixture.ts');
  const { settingsFor } = await import('./support/s3_server.ts');
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const { listenOnLoopback } = await import('./support/loopback.ts');

  let fx: PipelineFixture;
  /** Every DAGMan job the stand-in accepted (by workflow directory), every node job DAGMan submitted (image, directory). */
  const dagmanJobs: Array<{ clusterId: number; workflowDir: string }> = [];
  /** Launch directories whose DAGMan jobs are put on hold as they are submitted (see Lane.holdDags). */
  const holding = new Set<string>();
  const nodeJobs: Array<{ image: string; dir: string }> = [];

  // The post steps DAGMan runs (post_in_test_process.mjs hands them over): run here.
  let postUrl = '';
  const postServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const { cwd, args } = JSON.parse(body) as { cwd: string; args: string[] };
      void postStep(cwd, args).then(
        (result) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)),
        (err: Error) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 1, stderr: `post: ${err.message}\n` })),
      );
    });
  });

  before(async () => {
    postUrl = (await listenOnLoopback(postServer)).url;
    fx = await startPipelineFixture({ standin: { execution: { startDelayMs: 50, periodicIntervalMs: 200, submitRetryDelayMs: 100 } } });
    const schedd = fx.standin.schedd;
    schedd.setMaxListeners(0); // every case waits for its DAGs at once
    const submitRemote = schedd.submitRemote.bind(schedd);
    schedd.submitRemote = (text, opts) => {
      const result = submitRemote(text, opts);
      const job = schedd.get(`${result.clusterId}.0`);
      const ad = job?.ad.toJSON();
      if (ad?.JobUniverse === 7) {
        const workflowDir = String(ad.JobDescription);
        dagmanJobs.push({ clusterId: result.clusterId, workflowDir });
        if ([...holding].some((dir) => workflowDir.startsWith(dir + path.sep))) schedd.hold([job!], 'held by the test');
      }
      return result;
    };
    const submit = schedd.submit.bind(schedd);
    schedd.submit = (text, how) => {
      const result = submit(text, how);
      if (how.macros?.FULL_INFILE !== undefined) nodeJobs.push({ image: how.macros.FULL_INFILE.replace(/^"|"$/g, ''), dir: how.iwd });
      return result;
    };
  });
  after(async () => {
    await fx?.stop();
    postServer.closeAllConnections();
    postServer.close();
  });

  type Manifest = { key: string; bytes: Buffer };
  type Scenario = 'dag' | 'all-bad';

  /** One case's world: its own buckets, launch directory, proxies, and what happened. */
  class Lane {
    readonly inputBucket: string;
    readonly outputBucket: string;
    readonly launchDir: string;
    s3!: FaultProxy;
    api!: FaultProxy;
    settings!: PipelineSettings;
    store!: S3Store;
    closeStore: () => void = () => undefined;
    schedd!: ApiSchedd;
    transcript = '';
    manifests: Manifest[] = [];
    /** The user's objects (key -> ETag) of each bucket before anything ran, manifests excluded. */
    userObjects = new Map<string, Map<string, string>>();

    constructor(readonly id: number) {
      this.inputBucket = `fm${id}-in`;
      this.outputBucket = `fm${id}-out`;
      this.launchDir = path.join(fx.home, `launch-${id}`);
    }

    async start(): Promise<void> {
      const client = createS3Client(settingsFor(fx.s3));
      for (const bucket of [this.inputBucket, this.outputBucket]) await client.send(new CreateBucketCommand({ Bucket: bucket }));
      client.destroy();
      await mkdir(this.launchDir, { recursive: true });
      this.s3 = await startFaultProxy(fx.s3.endpoint, { flavor: 's3', seed: this.id });
      this.api = await startFaultProxy(fx.standin.url, { flavor: 'api', seed: this.id });
      this.settings = {
        ...fx.settings,
        inputBucket: this.inputBucket,
        outputBucket: this.outputBucket,
        s3: { ...fx.settings.s3, endpoint: this.s3.url },
        api: { ...fx.settings.api, url: this.api.url },
      };
      const s3 = openStore(this.settings.s3);
      this.store = s3.store;
      this.closeStore = s3.close;
      this.schedd = openSchedd(this.settings, undefined);
    }

    async stop(): Promise<void> {
      this.closeStore();
      await this.schedd.close();
      await this.s3.close();
      await this.api.close();
    }

    /** The bucket before the crash (see recovery.test.ts), plus objects of the user's that must survive. */
    async seed(scenario: Scenario): Promise<void> {
      const IN = this.inputBucket;
      await fx.store.upload(IN, 'Wood/good.tif', fixturePath('1band-small.tif'));
      await fx.store.putText(IN, 'Wood/notes.txt', "not the pipeline's\n");
      // Matches the pattern but is not a manifest: left exactly where it is.
      await fx.store.putText(IN, 'Wood/stats_raw.csv', 'name,value\nheight,3\n', 'text/csv');
      await fx.store.putText(this.outputBucket, 'Other/keep.jpg', 'a preview of the user\'s own\n');
      this.manifests =
        scenario === 'dag'
          ? [
              { key: 'Wood/batch1_raw.csv', bytes: Buffer.from('Wood/good.tif,1\nWood/missing.tif,1\n') },
              // A Latin-1 row comes back byte for byte.
              { key: 'Dane/batch2_raw.csv', bytes: Buffer.concat([Buffer.from('Dane/nowhere.tif,1\nnot a row\nDane/caf'), Buffer.from([0xe9]), Buffer.from('.tif,1\n')]) },
            ]
          : [
              { key: 'Dane/batch2_raw.csv', bytes: Buffer.from('Dane/nowhere.tif,1\nnot a row\n') },
              { key: 'Iron/batch3_raw.csv', bytes: Buffer.from('Iron/nowhere.tif,3\n') },
            ];
      for (const m of this.manifests) await fx.store.putText(IN, m.key, m.bytes, 'text/csv');
      for (const bucket of [IN, this.outputBucket]) {
        const objects = new Map<string, string>();
        for await (const o of fx.store.listObjects(bucket)) if (!this.manifests.some((m) => bucket === IN && m.key === o.key)) objects.set(o.key, o.etag);
        this.userObjects.set(bucket, objects);
      }
    }

    /** A cycle in a child process (to be killed at `crashAt`), as `cog_pipeline.ts crondor` runs it. */
    async childCycle(crashAt: CrashPointName | undefined, opts: { token?: string } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
      const config: ChildConfig = { settings: this.settings, launchDir: this.launchDir, token: opts.token, postUrl };
      const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_VARIABLE]: Buffer.from(JSON.stringify(config)).toString('base64url') };
      delete env.NODE_TEST_CONTEXT; // a child cycle, not a test file
      if (crashAt !== undefined) env[CRASH_AT_VARIABLE] = crashAt;
      else delete env[CRASH_AT_VARIABLE];
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), THIS_FILE], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
      this.transcript += `--- child cycle (crash at ${crashAt ?? 'none'}): ${signal ?? `exit ${code}`}\n${stdout}${stderr}`;
      return { code, signal, stdout, stderr };
    }

    /** A cycle in this process. */
    async cycle(crashAt?: CrashPointName, schedd: ApiSchedd = this.schedd): Promise<{ log: string; error?: Error }> {
      const log = memoryLogger();
      const deps: CycleDeps = {
        store: this.store,
        schedd,
        log,
        now: () => new Date(),
        launchDir: this.launchDir,
        invocation: postInvocation(crashAt !== undefined),
        environment: dagEnvironment(crashAt, postUrl),
      };
      let error: Error | undefined;
      try {
        await runCrondorCycle(this.settings, deps);
      } catch (err) {
        error = err as Error;
      }
      this.transcript += `--- cycle (DAG post crash at ${crashAt ?? 'none'})${error ? `: ${error.message}` : ''}\n${log.text()}`;
      return { log: log.text(), error };
    }

    myDags() {
      return dagmanJobs.filter((d) => d.workflowDir.startsWith(this.launchDir + path.sep));
    }

    /**
     * While `hold` is true, this lane's DAGMan jobs are held as they are submitted (as in
     * test/recovery.test.ts), so that no DAG runs, and ends, during the run that is to be killed:
     * what that run does then does not depend on how fast the stand-in converts. Releasing lets them run.
     */
    holdDags(hold: boolean): void {
      if (hold) {
        holding.add(this.launchDir);
        return;
      }
      holding.delete(this.launchDir);
      for (const { clusterId } of this.myDags()) {
        const job = fx.standin.schedd.get(`${clusterId}.0`);
        if (job?.ad.toJSON().JobStatus === 5) fx.standin.schedd.release([job], 'released by the test');
      }
    }

    /** Resolves once every DAGMan job of this lane that may run (set up) has left the queue. */
    async waitForDags(): Promise<void> {
      for (const { clusterId } of this.myDags()) {
        const job = fx.standin.schedd.get(`${clusterId}.0`);
        if (job && job.ad.toJSON().Requirements !== true) continue;
        await fx.standin.waitForJob(`${clusterId}.0`, { timeoutMs: 90_000 });
      }
    }

    workflowDirs(): string[] {
      return readdirSync(this.launchDir).filter((n) => n.startsWith('workflow-run-')).map((n) => path.join(this.launchDir, n));
    }

    async records(): Promise<Array<{ dir: string; record: WorkflowRecord }>> {
      return Promise.all(this.workflowDirs().map(async (dir) => ({ dir, record: await readWorkflowRecord(dir) })));
    }

    async settled(): Promise<boolean> {
      const all = await this.records();
      const keys = await keysOf(fx.store, this.inputBucket);
      return (
        all.every(({ record }) => record.state === 'settled' || record.state === 'rolled-back') &&
        !keys.some((k) => /processing-\d{8}-\d{6}\.csv$/.test(k) || this.manifests.some((m) => m.key === k))
      );
    }

    /** Fault-free cycles (DAGs let finish in between) until everything is settled; returns how many it took. */
    async cyclesUntilSettled(most: number): Promise<number> {
      for (let n = 1; ; n++) {
        assert.ok(n <= most, `not settled after ${most} fault-free cycle(s)\n${this.transcript}`);
        await this.waitForDags();
        const { error, log } = await this.cycle();
        assert.equal(error, undefined, `a fault-free cycle failed\n${this.transcript}`);
        assertOneLineEntries(log, "a cycle's log", this.transcript);
        await this.waitForDags();
        if (await this.settled()) return n;
      }
    }

    /** The user's view once everything is settled (the issue's "Proof"). */
    async assertUserView(scenario: Scenario): Promise<void> {
      const IN = this.inputBucket;
      const OUT = this.outputBucket;
      const t = () => `\n${this.transcript}`;
      const keys = await keysOf(fx.store, IN);
      const expectedPipelineKeys: string[] = [];
      for (const m of this.manifests) {
        const stem = m.key.slice(0, -'raw.csv'.length);
        const mine = keys.filter((k) => k.startsWith(stem) && /^(processed|failed)-\d{8}-\d{6}\.csv$/.test(k.slice(stem.length)));
        expectedPipelineKeys.push(...mine);
        assert.ok(mine.length > 0, `no processed or failed CSV next to ${m.key}: ${keys.join(', ')}${t()}`);
        assert.equal(new Set(mine.map((k) => k.slice(-19))).size, 1, `the CSVs of ${m.key} come from one workflow: ${mine.join(', ')}${t()}`);
        const rows: string[] = [];
        for (const k of mine) rows.push(...lines(await fx.store.getBytes(IN, k)));
        assert.deepEqual(rows.sort(), lines(m.bytes).sort(), `${m.key}: every row exactly once, byte for byte (hex)${t()}`);
        const processed = mine.find((k) => k.includes('processed-'));
        if (m.bytes.includes('Wood/good.tif')) {
          assert.ok(processed, `${m.key}: the good row is processed${t()}`);
          assert.equal(await fx.store.getText(IN, processed), 'Wood/good.tif,1\n');
        } else {
          assert.equal(processed, undefined, `${m.key} has nothing that converts`);
        }
      }
      // Of the pipeline's own objects only the CSVs are left: no processing object, no claim entry.
      assert.deepEqual(keys.filter((k) => isPipelineKey(k) || k.includes(CLAIMS_FOLDER)), expectedPipelineKeys.sort(), `only the CSVs are left of the pipeline's objects${t()}`);
      // Nothing of the user's lost, renamed or changed; nothing else added.
      for (const bucket of [IN, OUT]) {
        const now = new Map<string, string>();
        for await (const o of fx.store.listObjects(bucket)) if (!(bucket === IN && isPipelineKey(o.key))) now.set(o.key, o.etag);
        const outputs = bucket === OUT && scenario === 'dag' ? ['Wood/good.jpg', 'Wood/good.tif'] : [];
        assert.deepEqual([...now.keys()].sort(), [...this.userObjects.get(bucket)!.keys(), ...outputs].sort(), `the user's objects of s3://${bucket}${t()}`);
        for (const [key, etag] of this.userObjects.get(bucket)!) assert.equal(now.get(key), etag, `s3://${bucket}/${key} is unchanged${t()}`);
      }

      // No manifest in two DAGs that ran; no image converted twice, nor written twice.
      const dags = new Map<string, number>();
      for (const { workflowDir } of this.myDags()) {
        if (!existsSync(path.join(workflowDir, 'dagfile.dag.dagman.out'))) continue;
        for (const m of (await readWorkflowRecord(workflowDir)).manifests) if (m.claimed !== false) dags.set(m.sourceKey, (dags.get(m.sourceKey) ?? 0) + 1);
      }
      for (const [key, n] of dags) assert.equal(n, 1, `${key} went into ${n} DAGs that ran${t()}`);
      const converted = new Map<string, number>();
      for (const { image } of nodeJobs.filter((j) => j.dir.startsWith(this.launchDir + path.sep))) converted.set(image, (converted.get(image) ?? 0) + 1);
      assert.deepEqual(Object.fromEntries(converted), scenario === 'dag' ? { 'Wood/good.tif': 1 } : {}, `each image converted once${t()}`);
      const written = this.s3.exchanges.filter((e) => e.method === 'PUT' && e.path === `/${OUT}/Wood/good.tif` && e.forwarded && e.upstreamStatus === 200);
      assert.equal(written.length, scenario === 'dag' ? 1 : 0, `the COG is written once${t()}`);
      if (scenario === 'all-bad') assert.equal(this.myDags().length, 0, `no DAG for manifests with nothing to convert${t()}`);

      for (const { dir, record } of await this.records()) {
        assert.ok(record.state === 'settled' || record.state === 'rolled-back', `${dir} is ${record.state}${t()}`);
        for (const file of ['post.out', 'post.err']) {
          if (existsSync(path.join(dir, file))) assertOneLineEntries(readFileSync(path.join(dir, file), 'utf8'), `${path.basename(dir)}/${file}`, this.transcript);
        }
      }
      // The queue holds nothing of this launch directory.
      const left = fx.standin.schedd.all().filter((j) => {
        const ad = j.ad.toJSON();
        return String(ad.JobDescription ?? '').startsWith(this.launchDir + path.sep) || String(ad.Iwd ?? '').startsWith(this.launchDir + path.sep);
      });
      assert.deepEqual(left.map((j) => `${j.id} ${String(j.ad.toJSON().JobDescription ?? j.ad.toJSON().Iwd)} Requirements=${String(j.ad.toJSON().Requirements)}`), [], `no job of the pipeline is left in the queue${t()}`);

      // One more cycle finds nothing to do and nothing to warn about.
      const { log, error } = await this.cycle();
      assert.equal(error, undefined, t());
      assert.match(log, /no new manifests/, t());
      assert.doesNotMatch(log, /WARN|ERROR/, t());
    }
  }

  /**
   * What the pipeline prints is read a line at a time (crondor_<cluster>.out, post.out): every
   * entry is one timestamped line, whatever a server answered; the command's own error line and
   * its cause as cog_pipeline.ts prints them.
   */
  function assertOneLineEntries(text: string, what: string, transcript: string): void {
    const broken = text.split('\n').filter((l) => l !== '' && !/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO |WARN |ERROR) \S/.test(l) && !/^(cog_pipeline\.ts: error: |  cause: )\S/.test(l));
    assert.deepEqual(broken, [], `every entry of ${what} is one line: a message spans lines\n${transcript}`);
  }

  /** Lines of a CSV or manifest as bytes (hex), for a byte-for-byte comparison. */
  function lines(bytes: Buffer): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        if (i > start) out.push(bytes.subarray(start, i).toString('hex'));
        start = i + 1;
      }
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Where a fault is injected: one step of the cycle or of post, as requests on the wire.

  const s3 = {
    list: (bucket: 'in' | 'out'): Pick<FaultRule, 'method' | 'query' | 'match'> => ({
      method: 'GET',
      query: { 'list-type': '2' },
      match: (r) => s3Target(r.path).bucket.endsWith(`-${bucket}`) && !(r.query.get('prefix') ?? '').includes(CLAIMS_FOLDER),
    }),
    sniff: (): Pick<FaultRule, 'method' | 'headers' | 'match'> => ({ method: 'GET', headers: { range: true }, match: (r) => !r.query.has('list-type') }),
    get: (key: RegExp): Pick<FaultRule, 'method' | 'headers' | 'match'> => ({ method: 'GET', headers: { range: false }, match: (r) => !r.query.has('list-type') && key.test(s3Target(r.path).key) }),
    head: (key: RegExp): Pick<FaultRule, 'method' | 'match'> => ({ method: 'HEAD', match: (r) => key.test(s3Target(r.path).key) }),
    put: (key: RegExp): Pick<FaultRule, 'method' | 'headers' | 'match'> => ({ method: 'PUT', headers: { 'x-amz-copy-source': false }, match: (r) => key.test(s3Target(r.path).key) }),
    copy: (to: RegExp): Pick<FaultRule, 'method' | 'headers' | 'match'> => ({ method: 'PUT', headers: { 'x-amz-copy-source': true }, match: (r) => to.test(s3Target(r.path).key) }),
    delete: (key: RegExp): Pick<FaultRule, 'method' | 'match'> => ({ method: 'DELETE', match: (r) => key.test(s3Target(r.path).key) }),
  };
  const api = {
    submit: (): Pick<FaultRule, 'method' | 'path'> => ({ method: 'POST', path: '/api/v1/jobs' }),
    edit: (): Pick<FaultRule, 'method' | 'path'> => ({ method: 'PATCH', path: /^\/api\/v1\/jobs\/\d+\.\d+$/ }),
    query: (): Pick<FaultRule, 'method' | 'path' | 'query'> => ({ method: 'GET', path: '/api/v1/jobs', query: { constraint: /JobDescription/ } }),
  };
  const PROCESSING = /processing-\d{8}-\d{6}\.csv$/;
  const RAW = /_raw\.csv$/;
  const CLAIM_ENTRY = new RegExp(`(^|/)${CLAIMS_FOLDER.replace('.', '\\.')}/`);

  type Site = { target: 's3' | 'api'; step: string; rule: Omit<FaultRule, 'fault'> };
  /**
   * Per crash point: the scenario, what happens before the crashing run, and the step whose
   * request gets the fault (the step just before the crash point where there is one; for post
   * steps with nothing before them, the first one after, which the next cycle's post meets).
   */
  type PointPlan = { scenario: Scenario; before?: 'killed at cycle:claimed'; token?: 'wrong'; sites: Site[] };
  const PLANS: Record<string, PointPlan> = {
    'cycle:before-claim': { scenario: 'dag', sites: [{ target: 's3', step: 'listing the input bucket', rule: s3.list('in') }] },
    'claim:after-entry': { scenario: 'dag', sites: [{ target: 's3', step: "writing the first manifest's claim entry", rule: s3.put(CLAIM_ENTRY) }] },
    'claim:after-copy': { scenario: 'dag', sites: [{ target: 's3', step: 'copying the first manifest to its processing key', rule: s3.copy(PROCESSING) }] },
    'cycle:after-claim': { scenario: 'dag', sites: [{ target: 's3', step: 'deleting the first raw manifest', rule: s3.delete(RAW) }] },
    'cycle:after-read': { scenario: 'dag', sites: [{ target: 's3', step: 'reading the first processing object', rule: s3.get(PROCESSING) }] },
    'cycle:between-manifests': { scenario: 'dag', sites: [{ target: 's3', step: 'HEAD of the first raw manifest', rule: s3.head(RAW) }] },
    'cycle:claimed': { scenario: 'dag', sites: [{ target: 's3', step: 'copying the second manifest', rule: { ...s3.copy(PROCESSING), nth: 2 } }] },
    'cycle:before-submit': { scenario: 'dag', sites: [{ target: 's3', step: 'reading the second processing object', rule: { ...s3.get(PROCESSING), nth: 2 } }] },
    'cycle:after-submit': {
      scenario: 'dag',
      sites: [
        { target: 's3', step: 'reading the start of an object to tell whether it is a manifest', rule: s3.sniff() },
        { target: 'api', step: "the DAG's submission (POST /jobs)", rule: api.submit() },
      ],
    },
    'cycle:submitted': {
      scenario: 'dag',
      sites: [
        { target: 's3', step: 'deleting the second raw manifest', rule: { ...s3.delete(RAW), nth: 2 } },
        { target: 'api', step: 'the last edit of the set-up (PATCH Requirements = true)', rule: { ...api.edit(), nth: 2 } },
      ],
    },
    'cycle:before-settle': { scenario: 'all-bad', sites: [{ target: 's3', step: 'reading the second processing object', rule: { ...s3.get(PROCESSING), nth: 2 } }] },
    'putback:after-copy': { scenario: 'dag', token: 'wrong', sites: [{ target: 's3', step: 'copying a manifest back to its raw key (submission refused)', rule: s3.copy(RAW) }] },
    'recovery:before-rolled-back': {
      scenario: 'dag',
      before: 'killed at cycle:claimed',
      sites: [
        { target: 's3', step: "deleting a processing object in the next cycle's roll-back", rule: s3.delete(PROCESSING) },
        { target: 'api', step: "the next cycle's question for the workflow's DAGMan job (GET /jobs)", rule: api.query() },
      ],
    },
    'post:started': {
      scenario: 'dag',
      sites: [
        { target: 's3', step: "the post step's HEAD of the first processing object", rule: s3.head(PROCESSING) },
        { target: 'api', step: "the next cycle's question for the workflow's DAGMan job (GET /jobs)", rule: api.query() },
      ],
    },
    'post:after-processed-csv': { scenario: 'dag', sites: [{ target: 's3', step: 'writing the processed CSV', rule: s3.put(/processed-\d{8}-\d{6}\.csv$/) }] },
    'post:before-delete': { scenario: 'dag', sites: [{ target: 's3', step: 'writing the first failed CSV', rule: s3.put(/failed-\d{8}-\d{6}\.csv$/) }] },
    'post:after-delete': { scenario: 'dag', sites: [{ target: 's3', step: 'deleting the first processing object', rule: s3.delete(PROCESSING) }] },
    'post:between-manifests': { scenario: 'dag', sites: [{ target: 's3', step: 'listing the output folder', rule: s3.list('out') }] },
    'post:before-settled': { scenario: 'dag', sites: [{ target: 's3', step: 'deleting the second processing object', rule: { ...s3.delete(PROCESSING), nth: 2 } }] },
  };

  // -------------------------------------------------------------------------------------------
  // What the user sees of each fault: the cause as the clients word it.

  /** The cause in an S3 error message (lib/s3_store.ts errorSummary of the SDK's error). */
  const S3_CAUSE: Record<FaultClass, RegExp> = {
    'error-500': /InternalError: We encountered an internal error\. Please try again\. \(HTTP 500\)|Unknown \(HTTP 500\)/,
    'slow-down-503': /SlowDown: Please reduce your request rate\. \(HTTP 503\)|Unknown \(HTTP 503\)/,
    'reset-before': /socket hang up|ECONNRESET/,
    'reset-after': /socket hang up|ECONNRESET/,
    hang: /timed out after \d+ ms/,
    'gateway-502': /\(HTTP 502\)/,
  };
  /** The cause in an htcondor-api error message (lib/htcondor_api.ts). */
  const API_CAUSE: Record<FaultClass, RegExp> = {
    'error-500': /answered 500: Internal Server Error: injected by the test proxy/,
    'slow-down-503': /answered 503: Service Unavailable: the schedd is not answering/,
    'reset-before': /cannot reach the server \((UND_ERR_SOCKET|ECONNRESET|other side closed)\)/,
    'reset-after': /cannot reach the server \((UND_ERR_SOCKET|ECONNRESET|other side closed)\)/,
    hang: /cannot reach the server \(no answer in time\)/,
    'gateway-502': /answered 502: /,
  };
  /** Faults after which the request may have been carried out: the server saw it. */
  const LANDS: FaultClass[] = ['reset-after', 'hang', 'gateway-502'];
  /** Faults htcondor-api's client retries (idempotent requests only): no answer, 502, 503. */
  const API_RETRIED: FaultClass[] = ['slow-down-503', 'reset-before', 'reset-after', 'hang', 'gateway-502'];

  type CrashRun = { killed: true; log?: RegExp } | { killed: false; exit: 0 | 1; error?: RegExp; log: RegExp };

  /**
   * What the run that is to be killed does with one transient fault before the crash point.
   * S3 faults are retried by the SDK (3 attempts), so the run reaches the point; so are the
   * htcondor-api faults its client retries, except on a POST, which is never repeated: a
   * submission whose reply is lost is looked for in the queue, and one that never reached the
   * schedd, or was refused, is undone.
   */
  function expectedCrashRun(point: CrashPointName, site: Site, fault: FaultClass): CrashRun {
    if (site.target === 's3') {
      // A hang costs one client time-out before the retry, which the cycle's log reports.
      return { killed: true, log: fault === 'hang' && !point.startsWith('post:') ? /still waiting for S3 \(.*\) after \d+ s: the endpoint is slow or not answering; retrying/ : undefined };
    }
    const cause = API_CAUSE[fault].source;
    if (site.rule.method === 'POST') {
      if (LANDS.includes(fault)) {
        return { killed: true, log: new RegExp(`the reply to the submission was lost \\(.*${cause}.*\\), but job \\d+\\.0 \\(JobDescription \\S+\\) is in the queue: carrying on with it`) };
      }
      const notThere = fault === 'error-500' ? '' : '.*; no job with JobDescription \\S+ is in the queue, so it was not submitted';
      return {
        killed: false,
        exit: 1,
        error: /^cog_pipeline\.ts: error: workflow not submitted; its manifest\(s\) were put back for the next cycle$/m,
        log: new RegExp(`ERROR submitting the workflow failed: htcondor-api POST \\S+/api/v1/jobs.*${cause}${notThere}[^]*put back s3://`),
      };
    }
    if (!API_RETRIED.includes(fault)) {
      if (site.rule.method === 'PATCH') {
        return {
          killed: false,
          exit: 1,
          error: /^cog_pipeline\.ts: error: workflow not submitted; its manifest\(s\) were put back for the next cycle$/m,
          log: new RegExp(`ERROR submitting the workflow failed: htcondor-api PATCH \\S+ ${cause}; job \\d+\\.0 was removed \\(htcondor-api \\S+ \\(commit .*\\) at \\S+\\)`),
        };
      }
      if (point === 'recovery:before-rolled-back') {
        // A query that failed leaves the workflow for the next cycle: the cycle carries on and ends well.
        return { killed: false, exit: 0, log: new RegExp(`ERROR workflow-run-\\S+ stays as it is until the next cycle: could not ask the schedd for its DAGMan job: htcondor-api GET \\S+ ${cause}`) };
      }
      return { killed: true };
    }
    // Retried: the log says so, and the run goes on to the crash point.
    return point === 'post:started' ? { killed: true } : { killed: true, log: new RegExp(`${cause}.*; retrying in \\d+\\.\\d s \\(attempt 2 of 5\\)`) };
  }

  const KILLED = 'SIGKILL';
  let lanes = 0;

  /** One case: the fault at its site, the crash at its point, fault-free cycles, the user's view. */
  async function crashCase(t: TestContext, point: CrashPointName, plan: PointPlan, site: Site, fault: FaultClass): Promise<void> {
    const lane = new Lane(++lanes);
    await lane.start();
    try {
      await lane.seed(plan.scenario);
      const proxy = site.target === 's3' ? lane.s3 : lane.api;
      if (plan.before === 'killed at cycle:claimed') {
        const first = await lane.childCycle('cycle:claimed');
        assert.equal(first.signal, KILLED, lane.transcript);
      }
      const armed = proxy.inject({ ...site.rule, fault, label: site.step });
      const expected = expectedCrashRun(point, site, fault);
      let said: string;
      if (point.startsWith('post:') && plan.scenario === 'dag') {
        // The cycle submits; DAGMan's post step is the process killed at the point.
        const { error, log } = await lane.cycle(point);
        assert.equal(error, undefined, lane.transcript);
        assertOneLineEntries(log, "the cycle's log", lane.transcript);
        said = log;
        await lane.waitForDags();
        const dir = (await lane.records())[0]!.dir;
        const dagmanOut = readFileSync(path.join(dir, 'dagfile.dag.dagman.out'), 'utf8');
        assert.match(dagmanOut, /POST Script of Node final died on signal 9/, `the post step is killed at ${point}\n${lane.transcript}`);
      } else {
        lane.holdDags(true);
        const r = await lane.childCycle(point, { token: plan.token === 'wrong' ? 'not-the-token' : undefined }).finally(() => lane.holdDags(false));
        assertOneLineEntries(r.stdout + r.stderr, "the cycle's output", lane.transcript);
        said = r.stdout;
        if (expected.killed) {
          assert.equal(r.signal, KILLED, `killed at ${point} (${fault} at ${site.step})\n${lane.transcript}`);
        } else {
          assert.equal(r.code, expected.exit, `${fault} at ${site.step}: the cycle ends with exit ${expected.exit}\n${lane.transcript}`);
          if (expected.error) assert.match(r.stderr, expected.error, lane.transcript);
        }
      }
      if (expected.log) assert.match(said, expected.log, lane.transcript);
      const crashed = expected.killed ? 'killed' : `exit ${expected.exit}`;
      lane.transcript += `=== ${crashed}; ${fault} at ${site.step}: injected ${armed.fired} time(s)\n`;
      // The fault stays armed until its step comes, which for post:started is in the next cycle.
      const cycles = await lane.cyclesUntilSettled(2);
      assert.equal(armed.fired, 1, `the fault was injected once (${site.step})\n${lane.transcript}`);
      await lane.assertUserView(plan.scenario);
      t.diagnostic(`${crashed}, then settled after ${cycles} fault-free cycle(s)`);
    } finally {
      await lane.stop();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Persistent faults: a server down from one step on.

  type Outage = {
    name: string;
    target: 's3' | 'api';
    /** The first request of the outage; every request from it on fails (of those in `scope`, when given). */
    from: (r: ProxiedRequest) => boolean;
    scope?: (r: ProxiedRequest) => boolean;
    /** Where the outage hits: a cycle (a child process, as the crondor job) or DAGMan's post step. */
    during: 'cycle' | 'post';
    /** How the cycle ends (1: nothing could be done; 0: what could be done was). */
    exit?: 0 | 1;
    /** What the user is told: the error line of the command and the log line naming the failed request. */
    error?: RegExp;
    log: (fault: FaultClass) => RegExp;
  };
  const OUTAGES: Outage[] = [
    {
      name: 'S3 down from the first claim on',
      target: 's3',
      from: (r) => (r.method === 'PUT' || r.method === 'DELETE') && s3Target(r.path).bucket.endsWith('-in'),
      during: 'cycle',
      exit: 1,
      error: /^cog_pipeline\.ts: error: no manifest could be claimed this cycle \(see the errors above\)$/m,
      log: (f) => new RegExp(`ERROR could not claim Dane/batch2_raw\\.csv; it stays for the next cycle: S3 \\w+ s3://\\S+ failed: .*${S3_CAUSE[f].source}`),
    },
    {
      // S3 throttles and fails by prefix: one folder refused, the others fine.
      name: "S3 down for one folder (Dane/) from its manifest's claim on",
      target: 's3',
      from: (r) => r.method === 'PUT' && s3Target(r.path).bucket.endsWith('-in') && s3Target(r.path).key.startsWith('Dane/'),
      scope: (r) => s3Target(r.path).key.startsWith('Dane/'),
      during: 'cycle',
      exit: 0,
      log: (f) => new RegExp(`ERROR could not claim Dane/batch2_raw\\.csv; it stays for the next cycle: S3 \\w+ s3://\\S+ failed: .*${S3_CAUSE[f].source}[^]*INFO  submitted workflow-run-`),
    },
    {
      name: "S3 down from the post step's first CSV on",
      target: 's3',
      from: (r) => r.method === 'PUT' && /(processed|failed)-\d{8}-\d{6}\.csv$/.test(r.path),
      during: 'post',
      log: (f) => new RegExp(`ERROR S3 put s3://\\S+/Dane/batch2_failed-\\d{8}-\\d{6}\\.csv failed: .*${S3_CAUSE[f].source}`),
    },
    {
      name: 'htcondor-api down from the submission on',
      target: 'api',
      from: (r) => r.method === 'POST',
      during: 'cycle',
      exit: 1,
      error: /^cog_pipeline\.ts: error: workflow not submitted; (its manifest\(s\) were put back for the next cycle|the next cycle finishes workflow-run-\S+)$/m,
      log: (f) => new RegExp(`ERROR submitting the workflow failed: htcondor-api (POST|GET) \\S+ ?.*${API_CAUSE[f].source}`),
    },
    {
      name: 'htcondor-api down from the set-up on (the first PATCH)',
      target: 'api',
      from: (r) => r.method === 'PATCH',
      during: 'cycle',
      exit: 1,
      error: /^cog_pipeline\.ts: error: workflow not submitted; (its manifest\(s\) were put back for the next cycle|the next cycle finishes workflow-run-\S+)$/m,
      log: (f) => new RegExp(`ERROR submitting the workflow failed: htcondor-api PATCH \\S+ ?.*${API_CAUSE[f].source}`),
    },
  ];

  async function outageCase(t: TestContext, outage: Outage, fault: FaultClass): Promise<void> {
    const lane = new Lane(++lanes);
    await lane.start();
    try {
      await lane.seed('dag');
      let down = false;
      const proxy = outage.target === 's3' ? lane.s3 : lane.api;
      const scope = outage.scope ?? (() => true);
      proxy.inject({ fault, label: outage.name, times: Infinity, match: (r) => (down ||= outage.from(r)) && scope(r) });
      if (outage.during === 'cycle') {
        const r = await lane.childCycle(undefined);
        assertOneLineEntries(r.stdout + r.stderr, "the cycle's output", lane.transcript);
        assert.equal(r.code, outage.exit, `${outage.name} (${fault}): the cycle ends with exit ${outage.exit}\n${lane.transcript}`);
        if (outage.error) assert.match(r.stderr, outage.error, lane.transcript);
        assert.match(r.stdout, outage.log(fault), lane.transcript);
        t.diagnostic(r.stderr.split('\n').find((l) => l.startsWith('cog_pipeline.ts: error: ')) ?? `exit ${r.code}`);
      } else {
        const { error } = await lane.cycle();
        assert.equal(error, undefined, lane.transcript);
        await lane.waitForDags();
        const dir = (await lane.records())[0]!.dir;
        const dagmanOut = readFileSync(path.join(dir, 'dagfile.dag.dagman.out'), 'utf8');
        const postErr = readFileSync(path.join(dir, 'post.err'), 'utf8');
        lane.transcript += `--- post.err\n${postErr}`;
        assert.match(dagmanOut, /POST Script of Node final failed with status 1/, lane.transcript);
        assertOneLineEntries(postErr, 'post.err', lane.transcript);
        assert.match(postErr, outage.log(fault), lane.transcript);
        t.diagnostic(`post.err: ${postErr.split('\n').find((l) => / ERROR /.test(l))}`);
      }
      assert.ok(down, lane.transcript);
      proxy.clear();
      lane.transcript += `=== ${outage.name} (${fault}) is over\n`;
      const cycles = await lane.cyclesUntilSettled(2);
      await lane.assertUserView('dag');
      t.diagnostic(`settled after ${cycles} cycle(s) once the fault was lifted`);
    } finally {
      await lane.stop();
    }
  }

  const CONCURRENCY = Number(process.env.FAULT_MATRIX_CONCURRENCY ?? 6);

  // The outages first: their time-outs are spent while the other cases run.
  describe('a server down from one step on, then back', { concurrency: CONCURRENCY }, () => {
    for (const outage of OUTAGES) {
      for (const fault of FAULT_CLASSES) test(`${outage.name} × ${fault}`, (t) => outageCase(t, outage, fault));
    }
  });

  describe('every crash point × every fault class', { concurrency: CONCURRENCY }, () => {
    for (const point of CRASH_POINTS) {
      const plan = PLANS[point];
      if (plan === undefined) continue; // reported by the test below
      for (const site of plan.sites) {
        for (const fault of FAULT_CLASSES) {
          test(`${point} × ${fault} (${site.target}: ${site.step})`, (t) => crashCase(t, point, plan, site, fault));
        }
      }
    }
  });

  test('every crash point has a fault plan', () => {
    assert.deepEqual(CRASH_POINTS.filter((p) => PLANS[p] === undefined), []);
  });

  test("the reply to the set-up's last edit (Requirements = true) is lost, and by the retry the DAG has run and left the queue: the cycle carries on with it", async () => {
    const lane = new Lane(++lanes);
    await lane.start();
    // A client that waits as long as the reply is held back (htcondor-api's default is 60 s).
    const patient = openSchedd(lane.settings, undefined, undefined, 60_000);
    try {
      await lane.seed('dag');
      lane.api.inject({
        ...api.edit(),
        nth: 2,
        fault: 'reset-after',
        label: 'the reply to PATCH Requirements = true, lost once the DAG has ended',
        holdReply: (r) => fx.standin.waitForJob(/(\d+\.\d+)$/.exec(r.path)![1]!, { timeoutMs: 60_000 }),
      });
      const { error, log } = await lane.cycle(undefined, patient);
      // The job was set up (it ran): the workflow is submitted, not undone, and nobody is told otherwise.
      assert.equal(error, undefined, `the cycle carries on with the DAG that ran\n${lane.transcript}`);
      assert.doesNotMatch(log, /submitting the workflow failed|was removed/, lane.transcript);
      const { record } = (await lane.records())[0]!;
      assert.ok(record.state === 'submitted' || record.state === 'settled', lane.transcript);
      assert.equal(await lane.cyclesUntilSettled(1), 1);
      await lane.assertUserView('dag');
    } finally {
      await patient.close();
      await lane.stop();
    }
  });

  // -------------------------------------------------------------------------------------------
  // The proxy itself: each fault class as the pipeline's clients see it.

  describe('the fault proxy', () => {
    for (const fault of FAULT_CLASSES) {
      test(`${fault}: S3 and htcondor-api clients see it as from a real server; once is retried, always is an error`, async () => {
        const lane = new Lane(++lanes);
        await lane.start();
        try {
          const IN = lane.inputBucket;
          // Once: the SDK retries, the object is written once all the same.
          const once = lane.s3.inject({ fault, method: 'PUT' });
          await lane.store.putText(IN, 'a.txt', 'a');
          assert.equal(once.fired, 1);
          assert.equal(await fx.store.getText(IN, 'a.txt'), 'a');
          const first = lane.s3.exchanges.find((e) => e.fault === fault)!;
          // The request as the client signed it, Host and all.
          assert.match(String(first.requestHeaders.authorization), /^AWS4-HMAC-SHA256 Credential=S3RVER\//);
          assert.equal(first.requestHeaders.host, lane.s3.host);
          assert.equal(first.forwarded, LANDS.includes(fault));
          assert.equal(first.outcome, fault === 'reset-before' || fault === 'reset-after' ? 'reset' : fault === 'hang' ? 'gave up' : Number(/\d{3}/.exec(fault)![0]));
          once.remove();
          // Always: the operation fails and says why; a request that reached the server landed.
          lane.s3.inject({ fault, method: 'PUT', times: Infinity });
          await assert.rejects(lane.store.putText(IN, 'b.txt', 'b'), (err: Error) => {
            // (The 's' flag: how the pipeline words a gateway's page is checked by the cases above.)
            assert.match(err.message, new RegExp(`^S3 put s3://${IN}/b\\.txt failed: .*${S3_CAUSE[fault].source}`, 's'));
            return true;
          });
          lane.s3.clear();
          assert.equal(await lane.store.exists(IN, 'b.txt'), LANDS.includes(fault), 'the request reached the server');

          const apiClient = new HtcondorApi({ url: lane.api.url, token: readSecretFile(fx.standin.tokenFile, 'token'), timeoutMs: API_TIMEOUT_MS, retry: API_RETRY });
          try {
            lane.api.inject({ fault, path: '/api/v1/version' });
            if (API_RETRIED.includes(fault)) assert.match((await apiClient.version()).version, /\S/);
            else await assert.rejects(apiClient.version(), (err: Error) => (assert.match(err.message, API_CAUSE[fault]), true));
            lane.api.clear();
            lane.api.inject({ fault, path: '/api/v1/version', times: Infinity });
            await assert.rejects(apiClient.version(), (err: Error) => (assert.match(err.message, API_CAUSE[fault]), true));
          } finally {
            await apiClient.close();
          }
        } finally {
          await lane.stop();
        }
      });
    }

    test('rules pick requests by position, from now on, or by a seeded chance', async () => {
      const lane = new Lane(++lanes);
      await lane.start();
      try {
        const second = lane.s3.inject({ fault: 'error-500', method: 'HEAD', nth: 2, times: 2 });
        for (let i = 0; i < 5; i++) await lane.store.exists(lane.inputBucket, 'x').catch(() => undefined);
        // The SDK retries each failed HEAD: requests 2 and 3 fail, the retry of 2 is request 3.
        assert.deepEqual(lane.s3.exchanges.filter((e) => e.method === 'HEAD').map((e) => e.outcome ?? 'open'), [404, 500, 500, 404, 404, 404, 404]);
        assert.equal(second.fired, 2);
        second.remove();
        const picks = async (seed: number) => {
          const proxy = await startFaultProxy(fx.s3.endpoint, { flavor: 's3', seed });
          proxy.inject({ fault: 'error-500', method: 'HEAD', probability: 0.5, times: Infinity });
          const { store, close } = openStore({ ...lane.settings.s3, endpoint: proxy.url });
          for (let i = 0; i < 8; i++) await store.exists(lane.inputBucket, 'x').catch(() => undefined);
          close();
          await proxy.close();
          return proxy.exchanges.map((e) => e.outcome).join(',');
        };
        assert.equal(await picks(7), await picks(7), 'the same seed, the same faults');
      } finally {
        await lane.stop();
      }
    });
  });
}
