import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClassAd } from './classad.ts';
import { needsCronTab } from './cron.ts';
import { DagmanRunner } from './dagman.ts';
import { describeFsError, errnoOf, STDERR_FILE, STDOUT_FILE, transferInput, transferOutput, TransferError, type Sandbox } from './file_transfer.ts';
import { decideOnExit, evaluatePeriodic } from './job_policy.ts';
import { killGroup, OpenError, signalName, startProcess, stopProcess, type Started, type StdioFile } from './processes.ts';
import { isLocalJobEligibleToRun } from './schedd_ad.ts';
import { JobStatus, numberAttr, status, stringAttr, type Job, type StandinSchedd } from './schedd.ts';
import type { Termination } from './userlog.ts';

/**
 * TEST STAND-IN for HTCondor's execution side (HTCondor 25.x): what the schedd (schedd.cpp),
 * the negotiator, the shadow and the starter do with the jobs in the stand-in's queue, on this
 * machine.
 *  - Local (12) and scheduler (7) universe jobs start only when Scheduler::IsLocalJobEligibleToRun
 *    says so (schedd_ad.ts: START_LOCAL_UNIVERSE / START_SCHEDULER_UNIVERSE and the job's
 *    Requirements against the schedd's own ad), not before their DeferralTime, and not during a
 *    cool-down (JobCoolDownExpiration). They run on the "access point", in their Iwd, with
 *    stdin/stdout/stderr from In/Out/Err (relative to Iwd, truncated each run), and inherit no
 *    environment (DCJOBOPT_NO_ENV_INHERIT): a scheduler universe job gets its Environment plus
 *    CONDOR_ID (Scheduler::start_sched_universe_job), a local universe job its Environment plus
 *    what the local starter publishes here (BATCH_SYSTEM, _CONDOR_JOB_IWD;
 *    Starter::PublishToEnv). A scheduler universe job whose executable is condor_dagman is run
 *    by DagmanRunner.
 *  - Arguments and environment come from the job ad, read as the starter reads them
 *    (ArgList::AppendArgsFromClassAd, Env::MergeFrom): `Arguments` (V2 raw: white space separates,
 *    single quotes group, `''` inside them is a quote), else `Args` (V1: white space separates);
 *    `Environment` (V2 raw, each word NAME=value), else `Env` (V1, `;` or EnvDelim). Double quotes
 *    are ordinary characters: `"A=1 B=2"` sets `"A` and B=`2"`. When the schedd cannot read them
 *    (an entry without `=`, such as `""`, or an unbalanced `'`), a scheduler universe job is not
 *    started and goes into a cool-down (SCHEDULER_UNIVERSE_COOL_DOWN_DURATION, 300 s; schedd.cpp
 *    "Failed to read job environment" → wrapup → setJobCoolDown); a local universe job's starter
 *    exits without starting it ("Failed to start job") and the schedd requeues it, which this
 *    stand-in models with a SYSTEM_COOLDOWN_DURATION (20 s) cool-down so that it does not retry
 *    in a tight loop. Either way the job stays idle: it is not held.
 *  - A scheduler universe job that exits with a non-zero status goes into the same 300 s
 *    cool-down before it may start again (Scheduler::child_exit); one killed by a signal does not.
 *  - Vanilla jobs, container universe ones included (the executable runs directly here), run as
 *    an execution point runs them: in a fresh scratch directory filled and emptied by HTCondor's
 *    file transfer (file_transfer.ts), or in their Iwd when should_transfer_files is NO or
 *    IF_NEEDED (this machine shares the access point's file system). At most `slots` run at once.
 * Idle jobs start at the next negotiation, `startDelayMs` after something changed; a job with a
 * DeferralTime (a cron job's next run, set by the schedd) starts once the clock reaches it, which
 * a test clock reaches through Standin.advanceClock; runCron() starts an idle cron job at once.
 * When a job exits, OnExitHold and OnExitRemove decide its fate (job_policy.ts); the periodic_*
 * expressions and LeaveJobInQueue are evaluated every `periodicIntervalMs`. condor_rm stops a job
 * with its RemoveKillSig (or KillSig, or SIGTERM) and SIGKILL after `killGraceMs`; condor_hold
 * kills it at once; crash() (a test hook) kills it with a signal of the test's choice, as if it
 * had died by itself. stop() kills everything.
 */

export type ExecutorOptions = {
  /** The schedd's `<ip:port>`, as execute events name it. */
  host: string;
  /** Where execution points make their scratch directories (HTCondor's EXECUTE). */
  executeDir: string;
  /** Vanilla jobs running at once. */
  slots: number;
  startDelayMs: number;
  periodicIntervalMs: number;
  killGraceMs: number;
  /** DAGMan's first delay before retrying a failed node submission (it doubles each time). */
  submitRetryDelayMs: number;
};

export type Outcome =
  | { kind: 'exited'; termination: Termination }
  /** The starter or the file transfer failed: the job goes on hold. */
  | { kind: 'hold'; reason: string; code: number; subcode: number }
  /** Stopped by stop() before it ended. */
  | { kind: 'stopped' };

/** One run of a job. */
export interface Execution {
  /** Runs the job; `executing` is called once its program runs (after any input transfer). */
  run(executing: () => void): Promise<Outcome>;
  /** The job was removed or held while it ran. */
  vacate(why: 'remove' | 'hold'): void;
  /** The job dies by `signal`, of itself (test hook). */
  crash(signal: NodeJS.Signals): void;
  /** The stand-in stops: kill everything now, change nothing. */
  shutdown(): void;
}

const UNIVERSE = { vanilla: 5, scheduler: 7, local: 12 } as const;
const HOLD_FAILED_TO_CREATE_PROCESS = 6;
const HOLD_UNABLE_TO_OPEN_OUTPUT = 7;
const HOLD_UNABLE_TO_OPEN_INPUT = 8;
/** SCHEDULER_UNIVERSE_COOL_DOWN_DURATION's default. */
const SCHEDULER_COOL_DOWN_S = 300;
/** SYSTEM_COOLDOWN_DURATION's default. */
const SYSTEM_COOL_DOWN_S = 20;
/** setTimeout's limit. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The job's arguments or environment cannot be read as the starter reads them. */
export class JobSetupError extends Error {}

/** split_args (condor_arglist.cpp): the V2 raw syntax. */
function splitArgsV2(raw: string): string[] {
  const words: string[] = [];
  let buf = '';
  let token = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === "'") {
      const start = i;
      token = true;
      for (i++; ; i++) {
        if (i >= raw.length) throw new JobSetupError(`Unbalanced quote starting here: ${raw.slice(start)}`);
        if (raw[i] !== "'") buf += raw[i];
        else if (raw[i + 1] === "'") buf += raw[++i];
        else break;
      }
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (token) words.push(buf);
      buf = '';
      token = false;
    } else {
      buf += c;
      token = true;
    }
  }
  if (token) words.push(buf);
  return words;
}

/** The job's argv after the executable, as ArgList::AppendArgsFromClassAd reads it. Throws JobSetupError. */
export function jobArguments(ad: ClassAd): string[] {
  const v2 = stringAttr(ad, 'Arguments');
  if (v2 !== undefined) return splitArgsV2(v2);
  const v1 = stringAttr(ad, 'Args');
  if (v1 !== undefined) return v1.split(/[ \t\n\r]+/).filter((w) => w !== '');
  return [];
}

/** Env::SetEnvWithErrorMessage. */
function setEnv(env: Record<string, string>, entry: string): void {
  if (entry === '') throw new JobSetupError(`empty environment entry`);
  const eq = entry.indexOf('=');
  if (eq < 0 && entry.includes('$$')) {
    env[entry] = ''; // an unexpanded $$() macro is kept as it is
    return;
  }
  if (eq < 0) throw new JobSetupError(`ERROR: Missing '=' after environment variable '${entry}'.`);
  if (eq === 0) throw new JobSetupError(`ERROR: missing variable in '${entry}'.`);
  env[entry.slice(0, eq)] = entry.slice(eq + 1);
}

/** The job's environment as Env::MergeFrom(ad) reads it (later entries win). Throws JobSetupError. */
export function jobEnvironment(ad: ClassAd): Record<string, string> {
  const env: Record<string, string> = {};
  const v2 = stringAttr(ad, 'Environment');
  if (v2 !== undefined) {
    for (const entry of splitArgsV2(v2)) setEnv(env, entry);
    return env;
  }
  let v1 = stringAttr(ad, 'Env');
  if (v1 === undefined || v1 === '') return env;
  // MergeFromV1AutoDelim: EnvDelim, else ';'; a leading permitted delimiter names the delimiter.
  let delim = stringAttr(ad, 'EnvDelim')?.[0] ?? ';';
  if (v1[0] === delim) v1 = v1.slice(1);
  else if ('!#$%&*+,-/:;<>?@^`|~\x1F'.includes(v1[0]!)) {
    delim = v1[0]!;
    v1 = v1.slice(1);
  }
  for (const entry of v1.split(new RegExp(`[\\n${delim.replace(/[\\\]^-]/g, '\\$&')}]`))) {
    const trimmed = entry.replace(/^[ \t\n\r]+/, '');
    if (trimmed !== '') setEnv(env, trimmed);
  }
  return env;
}

export class Executor {
  /** Running jobs; a vanilla job holds a numbered slot of the execution point. */
  private readonly active = new Map<string, { execution: Execution; slot: number | undefined; finished: Promise<void> }>();
  /** DAGMan runs outlive a hold or a crash: the next run resumes (DAGMan's recovery, in memory). */
  private readonly dagmen = new Map<string, DagmanRunner>();
  private negotiation: NodeJS.Timeout | undefined;
  private wakeUp: NodeJS.Timeout | undefined;
  private readonly periodic: NodeJS.Timeout;
  private stopped = false;
  private readonly hostname = os.hostname();

  constructor(
    private readonly schedd: StandinSchedd,
    private readonly opts: ExecutorOptions,
  ) {
    schedd.on('idle', this.onChange);
    schedd.on('edited', this.onChange);
    schedd.on('vacate', this.onVacate);
    schedd.on('gone', this.onGone);
    this.periodic = setInterval(() => this.periodicPass(), opts.periodicIntervalMs);
    this.periodic.unref();
    this.scheduleNegotiation();
  }

  /** Runs an idle cron job now, as its next cron time would; resolves once that run is over. */
  runCron(id: string): Promise<void> {
    const job = this.schedd.get(id);
    if (!job) throw new Error(`job ${id} is not in the queue`);
    if (!needsCronTab(job.ad)) throw new Error(`job ${id} is not a cron job (it has no cron_* settings)`);
    if (status(job) !== JobStatus.idle || this.active.has(id)) {
      throw new Error(`job ${id} cannot start now: its JobStatus is ${status(job)}, not 1 (idle)`);
    }
    const started = this.start(job);
    if (!started) throw new Error(`job ${id} could not start: ${stringAttr(job.ad, 'HoldReason') ?? 'the schedd could not read its arguments or environment'}`);
    return started;
  }

  /** Test hook: the running job `id` (DAGMan included) dies by `signal`, as if of itself. */
  crash(id: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    const running = this.active.get(id);
    if (!running) throw new Error(`job ${id} is not running`);
    running.execution.crash(signal);
  }

  /** A negotiation cycle now: idle jobs that may start (their time has come, say) start. */
  negotiateNow(): void {
    if (this.stopped) return;
    clearTimeout(this.negotiation);
    this.negotiation = undefined;
    this.negotiate();
  }

  /** The periodic policy pass now (PERIODIC_EXPR_INTERVAL), LeaveJobInQueue included. */
  periodicPass(): void {
    if (this.stopped) return;
    evaluatePeriodic(this.schedd, (job) => this.active.has(job.id));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.periodic);
    clearTimeout(this.negotiation);
    clearTimeout(this.wakeUp);
    this.schedd.off('idle', this.onChange);
    this.schedd.off('edited', this.onChange);
    this.schedd.off('vacate', this.onVacate);
    this.schedd.off('gone', this.onGone);
    for (const { execution } of this.active.values()) execution.shutdown();
    for (const runner of this.dagmen.values()) runner.shutdown();
    await Promise.all([...this.active.values()].map((a) => a.finished));
  }

  private readonly onChange = () => this.scheduleNegotiation();

  private readonly onVacate = (job: Job, why: 'remove' | 'hold') => {
    const running = this.active.get(job.id);
    if (running) running.execution.vacate(why);
    else if (why === 'remove') this.schedd.destroyProc(job);
  };

  private readonly onGone = (job: Job) => {
    this.dagmen.get(job.id)?.shutdown();
    this.dagmen.delete(job.id);
  };

  private scheduleNegotiation(): void {
    if (this.stopped || this.negotiation) return;
    this.negotiation = setTimeout(() => {
      this.negotiation = undefined;
      this.negotiate();
    }, this.opts.startDelayMs);
  }

  /** Starts the idle jobs that may start: AP jobs the schedd finds eligible, vanilla jobs while slots are free. */
  private negotiate(): void {
    if (this.stopped) return;
    const now = this.schedd.seconds();
    let busy = [...this.active.values()].filter((a) => a.slot !== undefined).length;
    let wake = Infinity;
    const idle = this.schedd.all().filter((j) => status(j) === JobStatus.idle && !this.active.has(j.id));
    idle.sort((a, b) => (numberAttr(b.ad, 'JobPrio') ?? 0) - (numberAttr(a.ad, 'JobPrio') ?? 0));
    for (const job of idle) {
      const coolDown = numberAttr(job.ad, 'JobCoolDownExpiration');
      if (coolDown !== undefined && coolDown >= now) {
        wake = Math.min(wake, coolDown + 1);
        continue;
      }
      const deferral = numberAttr(job.ad, 'DeferralTime');
      if (deferral !== undefined && deferral > now) {
        wake = Math.min(wake, deferral);
        continue;
      }
      const u = universe(job);
      if (u === UNIVERSE.local || u === UNIVERSE.scheduler) {
        if (!isLocalJobEligibleToRun(job.ad, this.schedd.scheddAd(), u, now)) continue;
      } else {
        if (busy >= this.opts.slots) continue;
        busy++;
      }
      this.start(job);
    }
    clearTimeout(this.wakeUp);
    this.wakeUp = undefined;
    if (wake !== Infinity) {
      // With the real clock, this is when the next deferred job is due; a test clock moves by advanceClock.
      this.wakeUp = setTimeout(() => this.scheduleNegotiation(), Math.min(Math.max(wake - now, 0) * 1000, MAX_TIMER_MS));
      this.wakeUp.unref();
    }
  }

  /** Starts a run; undefined when the schedd cannot start the job (it stays idle, cooling down). */
  private start(job: Job): Promise<void> | undefined {
    const u = universe(job);
    let execution: Execution;
    if (u === UNIVERSE.local || u === UNIVERSE.scheduler) {
      let argv: string[];
      let env: Record<string, string>;
      try {
        argv = jobArguments(job.ad);
        env = jobEnvironment(job.ad);
      } catch (err) {
        if (!(err instanceof JobSetupError)) throw err;
        this.coolDown(job, u === UNIVERSE.scheduler ? SCHEDULER_COOL_DOWN_S : SYSTEM_COOL_DOWN_S);
        return undefined;
      }
      execution = this.apExecutionFor(job, u, argv, env);
    } else {
      execution = new EpExecution(job, this.opts, this.schedd.opts.host, `slot1_${this.freeSlot()}@${this.hostname}`);
    }
    const slot = u === UNIVERSE.vanilla ? this.freeSlot() : undefined;
    const now = () => this.schedd.seconds();
    // The shadow (or the schedd, for an AP job) starts: the job is running (transferring input, for a vanilla job).
    this.schedd.setStatus(job, JobStatus.running);
    if (!job.ad.has('JobStartDate')) job.ad.set('JobStartDate', now());
    job.ad.set('JobCurrentStartDate', now());
    const executing = () => {
      job.ad.set('NumJobStarts', (numberAttr(job.ad, 'NumJobStarts') ?? 0) + 1);
      job.ad.set('JobCurrentStartExecutingDate', now());
      this.schedd.log(job, { kind: 'execute', host: this.opts.host });
    };
    // The run is over (the shadow or starter is gone) before the schedd acts on its outcome.
    const over = (outcome: Outcome) => {
      this.active.delete(job.id);
      this.finish(job, outcome);
    };
    const finished = execution
      .run(executing)
      .then(over, (err: unknown) => over({ kind: 'hold', reason: `Error from the stand-in: ${(err as Error).stack ?? err}`, code: 0, subcode: 0 }))
      .catch((err: unknown) => process.emitWarning(`stand-in: finishing job ${job.id} failed: ${(err as Error).stack ?? err}`))
      .finally(() => {
        this.active.delete(job.id);
        this.scheduleNegotiation();
      });
    this.active.set(job.id, { execution, slot, finished });
    return finished;
  }

  private freeSlot(): number {
    const taken = new Set([...this.active.values()].map((a) => a.slot));
    let slot = 1;
    while (taken.has(slot)) slot++;
    return slot;
  }

  private apExecutionFor(job: Job, u: number, argv: string[], jobEnv: Record<string, string>): Execution {
    const iwd = stringAttr(job.ad, 'Iwd') ?? '/';
    if (u === UNIVERSE.scheduler) {
      const env = { ...jobEnv, CONDOR_ID: job.id };
      if (path.basename(stringAttr(job.ad, 'Cmd') ?? '') === 'condor_dagman') {
        let runner = this.dagmen.get(job.id);
        if (!runner) {
          runner = new DagmanRunner(job, { schedd: this.schedd, submitRetryDelayMs: this.opts.submitRetryDelayMs, env, argv });
          this.dagmen.set(job.id, runner);
        }
        return runner;
      }
      return new ApExecution(job, this.opts.killGraceMs, `schedd on ${this.hostname}`, argv, env);
    }
    return new ApExecution(job, this.opts.killGraceMs, `starter on ${this.hostname}`, argv, { ...jobEnv, BATCH_SYSTEM: 'HTCondor', _CONDOR_JOB_IWD: iwd });
  }

  /** Scheduler::setJobCoolDown. */
  private coolDown(job: Job, seconds: number): void {
    job.ad.set('NumJobCoolDowns', (numberAttr(job.ad, 'NumJobCoolDowns') ?? 0) + 1);
    job.ad.set('JobCoolDownExpiration', this.schedd.seconds() + seconds);
    this.scheduleNegotiation();
  }

  /** What the shadow and schedd do once a run is over. */
  private finish(job: Job, outcome: Outcome): void {
    if (this.stopped) return; // the stand-in is going away: no more queue changes
    const now = this.schedd.seconds();
    const started = numberAttr(job.ad, 'JobCurrentStartDate') ?? now;
    job.ad.set('RemoteWallClockTime', (numberAttr(job.ad, 'RemoteWallClockTime') ?? 0) + (now - started));
    const s = status(job);
    if (s === JobStatus.removed) {
      this.dagmen.delete(job.id);
      this.schedd.destroyProc(job);
      return;
    }
    if (s === JobStatus.held || outcome.kind === 'stopped') return;
    if (outcome.kind === 'hold') {
      this.schedd.putOnHold(job, outcome.reason, outcome.code, outcome.subcode);
      return;
    }
    const t = outcome.termination;
    job.ad.set('ExitBySignal', t.signal !== null);
    if (t.signal === null) {
      job.ad.set('ExitCode', t.exitCode);
      job.ad.delete('ExitSignal');
    } else {
      job.ad.set('ExitSignal', t.signal);
      job.ad.delete('ExitCode');
    }
    job.ad.set('NumJobCompletions', (numberAttr(job.ad, 'NumJobCompletions') ?? 0) + 1);
    if (universe(job) === UNIVERSE.scheduler && t.signal === null && t.exitCode !== 0) this.coolDown(job, SCHEDULER_COOL_DOWN_S);
    const decision = decideOnExit(job, now);
    if (decision.kind === 'hold') {
      this.schedd.putOnHold(job, decision.reason, decision.code, decision.subcode);
    } else if (decision.kind === 'requeue') {
      this.schedd.log(job, { kind: 'requeue', reason: decision.reason, ...t });
      this.schedd.requeue(job);
    } else {
      this.dagmen.delete(job.id);
      job.ad.set('CompletionDate', now);
      this.schedd.setStatus(job, JobStatus.completed);
      this.schedd.log(job, { kind: 'terminate', ...t });
      this.schedd.destroyProc(job);
    }
  }
}

function universe(job: Job): number {
  return numberAttr(job.ad, 'JobUniverse') ?? UNIVERSE.vanilla;
}

/** Runs one process for a job and stops it as condor_rm / condor_hold ask. */
class ProcessRun {
  private started: Started | undefined;
  private vacated: 'remove' | 'hold' | 'shutdown' | undefined;
  private crashed: NodeJS.Signals | undefined;

  constructor(
    private readonly job: Job,
    private readonly killGraceMs: number,
  ) {}

  get stopping(): boolean {
    return this.vacated !== undefined;
  }

  async run(command: string, args: string[], opts: Parameters<typeof startProcess>[2], executing: () => void): Promise<Termination> {
    this.started = await startProcess(command, args, opts);
    if (this.vacated) this.stop(this.vacated);
    else {
      executing();
      if (this.crashed) this.crash(this.crashed);
    }
    return this.started.exited;
  }

  stop(why: 'remove' | 'hold' | 'shutdown'): void {
    this.vacated = why;
    if (!this.started) return;
    if (why === 'remove') {
      const sig = stringAttr(this.job.ad, 'RemoveKillSig') ?? stringAttr(this.job.ad, 'KillSig');
      stopProcess(this.started, { soft: signalName(sig), graceMs: this.killGraceMs });
    } else stopProcess(this.started, 'hard');
  }

  crash(signal: NodeJS.Signals): void {
    this.crashed = signal;
    if (this.started) killGroup(this.started.child, signal);
  }
}

function startFailure(where: string, command: string, args: string[], err: unknown): Outcome {
  if (err instanceof OpenError) {
    return {
      kind: 'hold',
      code: err.which === 'stdin' ? HOLD_UNABLE_TO_OPEN_INPUT : HOLD_UNABLE_TO_OPEN_OUTPUT,
      subcode: errnoOf(err.error),
      reason: `Error from ${where}: Failed to open '${err.file}' as standard ${err.which === 'stdin' ? 'input' : err.which === 'stdout' ? 'output' : 'error'}: ${describeFsError(err.error)}`,
    };
  }
  const withArgs = args.length > 0 ? ` with arguments ${args.join(' ')}` : '';
  return {
    kind: 'hold',
    code: HOLD_FAILED_TO_CREATE_PROCESS,
    subcode: errnoOf(err),
    reason: `Error from ${where}: Failed to execute '${command}'${withArgs}: ${describeFsError(err)}`,
  };
}

function stdioFile(iwd: string, file: string | undefined): StdioFile {
  return file && file !== '/dev/null' ? { path: path.resolve(iwd, file) } : 'ignore';
}

/** A job run on the access point (local and scheduler universe), or in place for a vanilla job without file transfer. */
class ApExecution implements Execution {
  private readonly process: ProcessRun;

  constructor(
    private readonly job: Job,
    killGraceMs: number,
    private readonly where: string,
    private readonly argv: string[],
    private readonly env: Record<string, string>,
  ) {
    this.process = new ProcessRun(job, killGraceMs);
  }

  async run(executing: () => void): Promise<Outcome> {
    const { job } = this;
    const iwd = stringAttr(job.ad, 'Iwd') ?? '/';
    // A spooled executable's Cmd is its base name, in the spool directory that is now the Iwd.
    const command = path.resolve(iwd, stringAttr(job.ad, 'Cmd') ?? '');
    try {
      const stdio = {
        stdin: stdioFile(iwd, stringAttr(job.ad, 'In')),
        stdout: stdioFile(iwd, stringAttr(job.ad, 'Out')),
        stderr: stdioFile(iwd, stringAttr(job.ad, 'Err')),
      };
      const termination = await this.process.run(command, this.argv, { cwd: iwd, env: this.env, ...stdio }, executing);
      return { kind: 'exited', termination };
    } catch (err) {
      return startFailure(this.where, command, this.argv, err);
    }
  }

  vacate(why: 'remove' | 'hold'): void {
    this.process.stop(why);
  }

  crash(signal: NodeJS.Signals): void {
    this.process.crash(signal);
  }

  shutdown(): void {
    this.process.stop('shutdown');
  }
}

/** A vanilla job on an execution point: input transfer, the job in a scratch directory, output transfer. */
class EpExecution implements Execution {
  private readonly process: ProcessRun;
  private readonly abort = new AbortController();
  private readonly setup: { argv: string[]; env: Record<string, string> } | { error: string };
  private readonly direct: ApExecution | undefined;

  constructor(
    private readonly job: Job,
    private readonly opts: ExecutorOptions,
    private readonly apHost: string,
    private readonly slot: string,
  ) {
    this.process = new ProcessRun(job, opts.killGraceMs);
    try {
      this.setup = { argv: jobArguments(job.ad), env: jobEnvironment(job.ad) };
    } catch (err) {
      if (!(err instanceof JobSetupError)) throw err;
      this.setup = { error: err.message };
    }
    const should = (stringAttr(job.ad, 'ShouldTransferFiles') ?? 'IF_NEEDED').toUpperCase();
    if (should !== 'YES' && 'argv' in this.setup) {
      this.direct = new ApExecution(job, opts.killGraceMs, slot, this.setup.argv, { ...this.setup.env, BATCH_SYSTEM: 'HTCondor' });
    }
  }

  async run(executing: () => void): Promise<Outcome> {
    if ('error' in this.setup) {
      return { kind: 'hold', code: HOLD_FAILED_TO_CREATE_PROCESS, subcode: 0, reason: `Error from ${this.slot}: Failed to read the job's arguments or environment: ${this.setup.error}` };
    }
    if (this.direct) return this.direct.run(executing);
    const { job } = this;
    const { argv: args, env: jobEnv } = this.setup;
    if (!stringAttr(job.ad, 'Cmd')) {
      // A container job may leave its program to the image; this stand-in runs no images.
      return { kind: 'hold', code: HOLD_FAILED_TO_CREATE_PROCESS, subcode: 0, reason: `Error from ${this.slot}: the job names no executable, and this execution point cannot run a container image's own entry point` };
    }
    await mkdir(this.opts.executeDir, { recursive: true });
    const scratch = await mkdtemp(path.join(this.opts.executeDir, `dir_${job.cluster}_${job.proc}_`));
    const ctx = { apHost: this.apHost, slot: this.slot, signal: this.abort.signal };
    try {
      let sandbox: Sandbox;
      try {
        sandbox = await transferInput(job, scratch, ctx);
      } catch (err) {
        return this.failure(err);
      }
      let termination: Termination;
      try {
        const env = {
          ...jobEnv,
          _CONDOR_SCRATCH_DIR: scratch,
          TMPDIR: scratch,
          TMP: scratch,
          TEMP: scratch,
          BATCH_SYSTEM: 'HTCondor',
        };
        const stdio = {
          stdin: sandbox.stdin ? { path: sandbox.stdin } : ('ignore' as const),
          stdout: { path: path.join(scratch, STDOUT_FILE) },
          stderr: { path: path.join(scratch, STDERR_FILE) },
        };
        termination = await this.process.run(sandbox.executable, args, { cwd: scratch, env, ...stdio }, executing);
      } catch (err) {
        return startFailure(this.slot, sandbox.executable, args, err);
      }
      // An evicted job sends nothing back (ON_EXIT_OR_EVICT's spooling of it is not modelled).
      if (this.process.stopping) return { kind: 'exited', termination };
      const success = numberAttr(job.ad, 'JobSuccessExitCode') ?? 0;
      try {
        await transferOutput(job, sandbox, termination.exitCode === success, ctx);
      } catch (err) {
        return this.failure(err);
      }
      return { kind: 'exited', termination };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  private failure(err: unknown): Outcome {
    if (err instanceof TransferError) return { kind: 'hold', reason: err.message, code: err.code, subcode: err.subcode };
    if (this.abort.signal.aborted) return { kind: 'stopped' };
    throw err;
  }

  vacate(why: 'remove' | 'hold'): void {
    if (this.direct) return this.direct.vacate(why);
    this.abort.abort();
    this.process.stop(why);
  }

  crash(signal: NodeJS.Signals): void {
    if (this.direct) return this.direct.crash(signal);
    this.process.crash(signal);
  }

  shutdown(): void {
    if (this.direct) return this.direct.shutdown();
    this.abort.abort();
    this.process.stop('shutdown');
  }
}
