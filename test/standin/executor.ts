import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DagmanRunner } from './dagman.ts';
import { describeFsError, errnoOf, STDERR_FILE, STDOUT_FILE, transferInput, transferOutput, TransferError, type Sandbox } from './file_transfer.ts';
import { decideOnExit, evaluatePeriodic } from './job_policy.ts';
import { OpenError, signalName, startProcess, stopProcess, type Started, type StdioFile } from './processes.ts';
import { boolAttr, JobStatus, numberAttr, status, stringAttr, type Job, type StandinSchedd } from './schedd.ts';
import { parseEnvironment, splitArguments } from './submit_description.ts';
import type { Termination } from './userlog.ts';

/**
 * TEST STAND-IN for HTCondor's execution side: what the negotiator, the shadow and the starter
 * do with the jobs in the stand-in's queue, on this machine.
 *  - local universe (12) and scheduler universe (7) jobs run on the "access point", in their
 *    Iwd, with the job's environment (Environment, which includes what getenv imported at
 *    submission) and stdin/stdout/stderr from In/Out/Err (relative to Iwd, truncated each run);
 *  - a scheduler universe job whose executable is condor_dagman is run by DagmanRunner;
 *  - vanilla jobs, container universe ones included (the executable runs directly here), run as
 *    an execution point runs them: in a fresh scratch directory filled and emptied by HTCondor's
 *    file transfer (file_transfer.ts), or in their Iwd when should_transfer_files is NO or
 *    IF_NEEDED (this machine shares the access point's file system). At most `slots` run at once.
 * Idle jobs start `startDelayMs` after they become idle (the negotiation cycle), except cron jobs
 * (cron_* commands), which wait for runCron(): tests and the demo trigger them instead of waiting
 * for the next quarter hour. When a job exits, OnExitHold and OnExitRemove decide its fate
 * (job_policy.ts); the periodic_* expressions are evaluated every `periodicIntervalMs`.
 * condor_rm stops a job with its RemoveKillSig (or KillSig, or SIGTERM) and SIGKILL after
 * `killGraceMs`; condor_hold kills it at once. stop() kills everything.
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
  /** The stand-in stops: kill everything now, change nothing. */
  shutdown(): void;
}

const UNIVERSE = { vanilla: 5, scheduler: 7, local: 12 } as const;
const HOLD_FAILED_TO_CREATE_PROCESS = 6;
const HOLD_UNABLE_TO_OPEN_OUTPUT = 7;
const HOLD_UNABLE_TO_OPEN_INPUT = 8;
const CRON_ATTRS = ['CronMinute', 'CronHour', 'CronDayOfMonth', 'CronMonth', 'CronDayOfWeek'];

export class Executor {
  /** Running jobs; a vanilla job holds a numbered slot of the execution point. */
  private readonly active = new Map<string, { execution: Execution; slot: number | undefined; finished: Promise<void> }>();
  /** DAGMan runs outlive a hold: released, the same run resumes (DAGMan's recovery, in memory). */
  private readonly dagmen = new Map<string, DagmanRunner>();
  private negotiation: NodeJS.Timeout | undefined;
  private readonly periodic: NodeJS.Timeout;
  private stopped = false;
  private readonly hostname = os.hostname();

  constructor(
    private readonly schedd: StandinSchedd,
    private readonly opts: ExecutorOptions,
  ) {
    schedd.on('idle', this.onIdle);
    schedd.on('vacate', this.onVacate);
    schedd.on('gone', this.onGone);
    this.periodic = setInterval(() => evaluatePeriodic(schedd), opts.periodicIntervalMs);
    this.periodic.unref();
    this.scheduleNegotiation();
  }

  /** Runs an idle cron job now, as its next cron time would; resolves once that run is over. */
  runCron(id: string): Promise<void> {
    const job = this.schedd.get(id);
    if (!job) throw new Error(`job ${id} is not in the queue`);
    if (!isCron(job)) throw new Error(`job ${id} is not a cron job (it has no cron_* settings)`);
    if (status(job) !== JobStatus.idle || this.active.has(id)) {
      throw new Error(`job ${id} cannot start now: its JobStatus is ${status(job)}, not 1 (idle)`);
    }
    return this.start(job);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.periodic);
    clearTimeout(this.negotiation);
    this.schedd.off('idle', this.onIdle);
    this.schedd.off('vacate', this.onVacate);
    this.schedd.off('gone', this.onGone);
    for (const { execution } of this.active.values()) execution.shutdown();
    for (const runner of this.dagmen.values()) runner.shutdown();
    await Promise.all([...this.active.values()].map((a) => a.finished));
  }

  private readonly onIdle = () => this.scheduleNegotiation();

  private readonly onVacate = (job: Job, why: 'remove' | 'hold') => {
    const running = this.active.get(job.id);
    if (running) running.execution.vacate(why);
    else if (why === 'remove') this.schedd.drop(job);
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

  /** Starts the idle jobs that may start: all AP jobs, and vanilla jobs while slots are free. */
  private negotiate(): void {
    const now = Math.floor(this.schedd.now().getTime() / 1000);
    let busy = [...this.active.values()].filter((a) => a.slot !== undefined).length;
    let nextDeferral = Infinity;
    const idle = this.schedd.all().filter((j) => status(j) === JobStatus.idle && !this.active.has(j.id) && !isCron(j));
    idle.sort((a, b) => (numberAttr(b.ad, 'JobPrio') ?? 0) - (numberAttr(a.ad, 'JobPrio') ?? 0));
    for (const job of idle) {
      const deferral = numberAttr(job.ad, 'DeferralTime');
      if (deferral !== undefined && deferral > now) {
        nextDeferral = Math.min(nextDeferral, deferral);
        continue;
      }
      if (universe(job) === UNIVERSE.vanilla) {
        if (busy >= this.opts.slots) continue;
        busy++;
      }
      this.start(job);
    }
    if (nextDeferral !== Infinity && !this.stopped) {
      setTimeout(() => this.scheduleNegotiation(), (nextDeferral - now) * 1000).unref();
    }
  }

  private start(job: Job): Promise<void> {
    let slot: number | undefined;
    if (universe(job) === UNIVERSE.vanilla) {
      const taken = new Set([...this.active.values()].map((a) => a.slot));
      for (slot = 1; taken.has(slot); slot++);
    }
    const execution = this.executionFor(job, `slot1_${slot ?? 0}@${this.hostname}`);
    const now = () => Math.floor(this.schedd.now().getTime() / 1000);
    // The shadow starts: the job is running (transferring input, for a vanilla job).
    this.schedd.setStatus(job, JobStatus.running);
    if (!job.ad.has('JobStartDate')) job.ad.set('JobStartDate', now());
    job.ad.set('JobCurrentStartDate', now());
    const executing = () => {
      job.ad.set('NumJobStarts', (numberAttr(job.ad, 'NumJobStarts') ?? 0) + 1);
      job.ad.set('JobCurrentStartExecutingDate', now());
      this.schedd.log(job, { kind: 'execute', host: this.opts.host });
    };
    const finished = execution
      .run(executing)
      .then(
        (outcome) => this.finish(job, outcome),
        (err: unknown) => this.finish(job, { kind: 'hold', reason: `Error from the stand-in: ${(err as Error).stack ?? err}`, code: 0, subcode: 0 }),
      )
      .catch((err: unknown) => process.emitWarning(`stand-in: finishing job ${job.id} failed: ${(err as Error).stack ?? err}`))
      .finally(() => {
        this.active.delete(job.id);
        this.scheduleNegotiation();
      });
    this.active.set(job.id, { execution, slot, finished });
    return finished;
  }

  private executionFor(job: Job, slot: string): Execution {
    const u = universe(job);
    if (u === UNIVERSE.scheduler && path.basename(stringAttr(job.ad, 'Cmd') ?? '') === 'condor_dagman') {
      let runner = this.dagmen.get(job.id);
      if (!runner) {
        runner = new DagmanRunner(job, { schedd: this.schedd, submitRetryDelayMs: this.opts.submitRetryDelayMs });
        this.dagmen.set(job.id, runner);
      }
      return runner;
    }
    if (u === UNIVERSE.vanilla) return new EpExecution(job, this.opts, this.schedd.opts.host, slot);
    return new ApExecution(job, this.opts, `starter on ${this.hostname}`, u === UNIVERSE.scheduler ? { CONDOR_ID: job.id } : {});
  }

  /** What the shadow and schedd do once a run is over. */
  private finish(job: Job, outcome: Outcome): void {
    if (this.stopped) return; // the stand-in is going away: no more queue changes
    const now = Math.floor(this.schedd.now().getTime() / 1000);
    const started = numberAttr(job.ad, 'JobCurrentStartDate') ?? now;
    job.ad.set('RemoteWallClockTime', (numberAttr(job.ad, 'RemoteWallClockTime') ?? 0) + (now - started));
    const s = status(job);
    if (s === JobStatus.removed) {
      this.dagmen.delete(job.id);
      this.schedd.drop(job);
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
      if (boolAttr(job.ad, 'LeaveJobInQueue') !== true) this.schedd.drop(job);
    }
  }
}

function universe(job: Job): number {
  return numberAttr(job.ad, 'JobUniverse') ?? UNIVERSE.vanilla;
}

function isCron(job: Job): boolean {
  return CRON_ATTRS.some((a) => job.ad.has(a));
}

/** Runs one process for a job and stops it as condor_rm / condor_hold ask. */
class ProcessRun {
  private started: Started | undefined;
  private vacated: 'remove' | 'hold' | 'shutdown' | undefined;

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
    else executing();
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
    opts: ExecutorOptions,
    private readonly where: string,
    private readonly extraEnv: Record<string, string>,
  ) {
    this.process = new ProcessRun(job, opts.killGraceMs);
  }

  async run(executing: () => void): Promise<Outcome> {
    const { job } = this;
    const iwd = stringAttr(job.ad, 'Iwd') ?? '/';
    const cmd = stringAttr(job.ad, 'Cmd') ?? '';
    // A remote job's spooled executable sits in its spool directory, the Iwd.
    const spooled = job.ad.has('SUBMIT_Iwd') && (boolAttr(job.ad, 'TransferExecutable') ?? true);
    const command = spooled ? path.join(iwd, path.basename(cmd)) : path.resolve(iwd, cmd);
    const args = splitArguments(job.submitted);
    try {
      const stdio = {
        stdin: stdioFile(iwd, stringAttr(job.ad, 'In')),
        stdout: stdioFile(iwd, stringAttr(job.ad, 'Out')),
        stderr: stdioFile(iwd, stringAttr(job.ad, 'Err')),
      };
      const env = { ...parseEnvironment(job.submitted), ...this.extraEnv };
      const termination = await this.process.run(command, args, { cwd: iwd, env, ...stdio }, executing);
      return { kind: 'exited', termination };
    } catch (err) {
      return startFailure(this.where, command, args, err);
    }
  }

  vacate(why: 'remove' | 'hold'): void {
    this.process.stop(why);
  }

  shutdown(): void {
    this.process.stop('shutdown');
  }
}

/** A vanilla job on an execution point: input transfer, the job in a scratch directory, output transfer. */
class EpExecution implements Execution {
  private readonly process: ProcessRun;
  private readonly abort = new AbortController();
  private readonly direct: ApExecution | undefined;

  constructor(
    private readonly job: Job,
    private readonly opts: ExecutorOptions,
    private readonly apHost: string,
    private readonly slot: string,
  ) {
    this.process = new ProcessRun(job, opts.killGraceMs);
    const should = (stringAttr(job.ad, 'ShouldTransferFiles') ?? 'IF_NEEDED').toUpperCase();
    if (should !== 'YES') this.direct = new ApExecution(job, opts, slot, { BATCH_SYSTEM: 'HTCondor' });
  }

  async run(executing: () => void): Promise<Outcome> {
    if (this.direct) return this.direct.run(executing);
    const { job } = this;
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
      const args = splitArguments(job.submitted);
      let termination: Termination;
      try {
        const env = {
          ...parseEnvironment(job.submitted),
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

  shutdown(): void {
    if (this.direct) return this.direct.shutdown();
    this.abort.abort();
    this.process.stop('shutdown');
  }
}
