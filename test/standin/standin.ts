import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JsonValue } from './classad.ts';
import { Executor, type ExecutorOptions } from './executor.ts';
import { HttpError, startApiServer } from './http_api.ts';
import { status, StandinSchedd, type Job } from './schedd.ts';

/**
 * TEST AND DEMO STAND-IN for htcondor-api (golang-htcondor v0.12.4, http_api.ts) and the HTCondor
 * 25.x schedd behind it (schedd.ts), and for the pool that runs its jobs (executor.ts).
 * Production runs on a real HTCondor pool; this exists because none can be installed here.
 * Binds 127.0.0.1 on a free port.
 *
 * Time: the schedd and the executor share one clock, the real one unless `clock` is given. With
 * a given clock, advanceClock() moves it forward and runs a negotiation cycle (cron jobs whose
 * DeferralTime has come start) and the periodic pass (LeaveJobInQueue, periodic_*).
 *
 * Besides the REST API, two control routes (same bearer token) stand in for time passing:
 *  - `POST /standin/cron/{cluster.proc}` runs an idle cron job now and answers once the run is
 *    over: `{"job_id", "job_status", "exit_code"}` (job_status null when it left the queue);
 *  - `GET /standin/jobs/{cluster.proc}/wait?status=4,3&timeout_ms=30000` answers once the job
 *    has one of those statuses or has left the queue (`job_status` null), 408 on timeout.
 */
export type Standin = {
  /** Base URL, as given to `--api-url`. */
  url: string;
  /** A file holding the token, as given to `--api-token-file`. */
  tokenFile: string;
  schedd: StandinSchedd;
  executor: Executor;
  /** Where the stand-in keeps its spool, execute directories and token. */
  directory: string;
  /** Runs an idle cron job now (instead of at its next cron time); resolves when that run is over. */
  runCron(jobId: string): Promise<JobState>;
  /**
   * Moves the injected clock (StandinOptions.clock) `ms` forward, then runs a negotiation cycle
   * (idle jobs whose DeferralTime has come start; the promise resolves once they have been
   * started, not finished) and the periodic pass. Throws without an injected clock.
   */
  advanceClock(ms: number): Promise<void>;
  /** The stand-in's clock (the injected one, moved by advanceClock, or the real one). */
  now(): Date;
  /**
   * Resolves once the job has one of `statuses` (JobStatus numbers) or has left the queue
   * (with no statuses given: only once it has left); rejects after `timeoutMs`.
   */
  waitForJob(jobId: string, opts?: { statuses?: number[]; timeoutMs?: number }): Promise<JobState>;
  stop(): Promise<void>;
};

/** A job as it is now: its JobStatus and ad, or null for both once it has left the queue. */
export type JobState = { jobId: string; status: number | null; ad: Record<string, JsonValue> | null };

export type StandinOptions = {
  directory?: string;
  owner?: string;
  /** How jobs run; the defaults suit the demo, tests shorten the delays. */
  execution?: Partial<Omit<ExecutorOptions, 'host' | 'executeDir'>>;
  /**
   * The clock of the schedd and the executor (QDate, cron schedules, time() in expressions...);
   * the real time when absent. Giving one enables advanceClock(); see fixedClock().
   */
  clock?: () => Date;
};

/** A clock standing still at `start` (a Date, or anything `new Date()` reads), for StandinOptions.clock. */
export function fixedClock(start: Date | string | number): () => Date {
  const at = new Date(start).getTime();
  if (Number.isNaN(at)) throw new Error(`not a time: ${String(start)}`);
  return () => new Date(at);
}

const DEFAULT_WAIT_MS = 60_000;

export async function startStandin(opts: StandinOptions = {}): Promise<Standin> {
  const directory = opts.directory ?? mkdtempSync(path.join(os.tmpdir(), 'htcondor-standin-'));
  mkdirSync(directory, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  const tokenFile = path.join(directory, 'token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const workingDir = path.join(directory, 'server');
  mkdirSync(workingDir, { recursive: true });
  const host = '<127.0.0.1:9618>';
  let offsetMs = 0;
  const baseClock = opts.clock;
  const now = () => (baseClock ? new Date(baseClock().getTime() + offsetMs) : new Date());
  const schedd = new StandinSchedd({ spoolDir: path.join(directory, 'spool'), owner: opts.owner ?? os.userInfo().username, host, now });
  const executor = new Executor(schedd, {
    host,
    executeDir: path.join(directory, 'execute'),
    slots: os.availableParallelism(),
    startDelayMs: 1000,
    periodicIntervalMs: 1000,
    killGraceMs: 2000,
    submitRetryDelayMs: 1000,
    ...opts.execution,
  });

  const stateOf = (jobId: string): JobState => {
    const job = schedd.get(jobId);
    return { jobId, status: job ? status(job) : null, ad: job ? job.ad.toJSON() : null };
  };
  const runCron = async (jobId: string): Promise<JobState> => {
    await executor.runCron(jobId);
    return stateOf(jobId);
  };
  const waitForJob = (jobId: string, { statuses = [], timeoutMs = DEFAULT_WAIT_MS }: { statuses?: number[]; timeoutMs?: number } = {}) =>
    new Promise<JobState>((resolve, reject) => {
      const check = () => {
        const job = schedd.get(jobId);
        if (job && !statuses.includes(status(job))) return;
        cleanup();
        resolve(stateOf(jobId));
      };
      const onStatus = (job: Job) => job.id === jobId && check();
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`job ${jobId} did not reach status ${statuses.join(' or ') || '(gone)'} within ${timeoutMs} ms; its status is ${stateOf(jobId).status}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        schedd.off('status', onStatus);
        schedd.off('gone', onStatus);
      };
      schedd.on('status', onStatus);
      schedd.on('gone', onStatus);
      check();
    });

  const advanceClock = async (ms: number): Promise<void> => {
    if (!baseClock) throw new Error('advanceClock needs an injected clock (StandinOptions.clock)');
    if (!(ms >= 0)) throw new Error(`the clock only moves forward (asked to move ${ms} ms)`);
    offsetMs += ms;
    executor.negotiateNow();
    executor.periodicPass();
  };
  const server = await startApiServer({
    schedd,
    token,
    workingDir,
    control: async (req, url) => {
      const cron = /^\/standin\/cron\/(\d+\.\d+)$/.exec(url.pathname);
      if (cron && req.method === 'POST') {
        try {
          const state = await runCron(cron[1]!);
          return { job_id: state.jobId, job_status: state.status, exit_code: state.ad?.ExitCode ?? null };
        } catch (err) {
          throw new HttpError(schedd.get(cron[1]!) ? 409 : 404, (err as Error).message);
        }
      }
      const wait = /^\/standin\/jobs\/(\d+\.\d+)\/wait$/.exec(url.pathname);
      if (wait && req.method === 'GET') {
        const statuses = (url.searchParams.get('status') ?? '').split(',').filter((s) => s !== '').map(Number);
        const timeoutMs = Number(url.searchParams.get('timeout_ms') ?? DEFAULT_WAIT_MS);
        try {
          const state = await waitForJob(wait[1]!, { statuses, timeoutMs });
          return { job_id: state.jobId, job_status: state.status };
        } catch (err) {
          throw new HttpError(408, (err as Error).message);
        }
      }
      return undefined;
    },
  });
  return {
    url: server.url,
    tokenFile,
    schedd,
    executor,
    directory,
    runCron,
    advanceClock,
    now,
    waitForJob,
    async stop() {
      await executor.stop();
      await server.close();
      if (!opts.directory) rmSync(directory, { recursive: true, force: true });
    },
  };
}
