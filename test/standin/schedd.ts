import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ClassAd, ClassAdSyntaxError, matchesConstraint, parseExpr, type Literal } from './classad.ts';
import { parseSubmitDescription, SubmitDescriptionError, type JobAttributes } from './submit_description.ts';
import { appendEvent, type JobEvent } from './userlog.ts';

/**
 * TEST STAND-IN for an HTCondor schedd's job queue, behind the htcondor-api stand-in.
 * It keeps job ads, applies remote-submission semantics (SPEC 6), answers constraint
 * queries, and carries out remove/hold/release as `condor_rm` & co. do. Running jobs is the
 * executor's business: it listens for the events this class emits.
 */

export const JobStatus = { idle: 1, running: 2, removed: 3, completed: 4, held: 5, transferringOutput: 6, suspended: 7 } as const;

/** HoldReasonCode 16: the job waits for its input files to be spooled. */
export const SPOOLING_INPUT = 16;

export type Job = {
  readonly cluster: number;
  readonly proc: number;
  readonly id: string;
  readonly ad: ClassAd;
  /** The attributes as the submit description produced them (argument and environment syntax). */
  readonly submitted: JobAttributes;
};

export type ActionResults = {
  total: number;
  success: number;
  not_found: number;
  permission_denied: number;
  bad_status: number;
  already_done: number;
  error: number;
};

export class SubmitRejected extends Error {}

export type ScheddEvents = {
  /** A job became idle and may be started. */
  idle: [Job];
  /** A running job must stop: removed or held. */
  vacate: [Job, 'remove' | 'hold'];
  /** A job's JobStatus changed (from the status given). */
  status: [Job, number];
  /** A job left the queue. */
  gone: [Job];
};

export class StandinSchedd extends EventEmitter<ScheddEvents> {
  private readonly jobs = new Map<string, Job>();
  private nextCluster = 1;

  constructor(
    readonly opts: {
      /** The schedd's SPOOL directory: remote jobs' Iwd moves under it. */
      spoolDir: string;
      owner: string;
      /** `<ip:port>` written in submit and execute events. */
      host: string;
      now?: () => Date;
    },
  ) {
    super();
    mkdirSync(opts.spoolDir, { recursive: true });
  }

  now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  /**
   * `condor_submit` of a description. Remote submission (htcondor-api's SubmitRemote) starts
   * every job held for spooling; jobs with nothing to spool are released at once, their Iwd
   * moved to the spool directory. Local submission (DAGMan's node jobs) keeps the Iwd given.
   */
  submit(
    text: string,
    how: {
      remote: boolean;
      iwd: string;
      env?: Record<string, string>;
      /** Macros defined ahead of the description (DAGMan's VARS). */
      macros?: Record<string, string>;
      extra?: Record<string, Literal>;
    },
  ): { clusterId: number; jobIds: string[] } {
    const cluster = this.nextCluster;
    let procs: JobAttributes[];
    try {
      procs = parseSubmitDescription(text, {
        clusterId: cluster,
        iwd: how.iwd,
        env: how.env,
        macros: how.macros,
        owner: this.opts.owner,
        now: this.now(),
      }).procs;
    } catch (err) {
      if (err instanceof SubmitDescriptionError) throw new SubmitRejected(err.message);
      throw err;
    }
    const jobs = procs.map((attrs) => this.makeJob(cluster, attrs, how.extra ?? {}));
    this.nextCluster++;
    for (const job of jobs) {
      if (how.remote) applyRemoteSemantics(job.ad);
      else if (!job.ad.has('LeaveJobInQueue')) job.ad.set('LeaveJobInQueue', false);
      this.jobs.set(job.id, job);
      this.log(job, { kind: 'submit', host: this.opts.host, dagNode: stringAttr(job.ad, 'DAGNodeName') });
      if (how.remote && !needsSpooling(job.ad)) this.finishSpooling(job);
      else if (status(job) === JobStatus.held) this.log(job, { kind: 'hold', reason: stringAttr(job.ad, 'HoldReason') ?? '', code: numberAttr(job.ad, 'HoldReasonCode') ?? 0, subcode: 0 });
      else this.emit('idle', job);
    }
    return { clusterId: cluster, jobIds: jobs.map((j) => j.id) };
  }

  private makeJob(cluster: number, attrs: JobAttributes, extra: Record<string, Literal>): Job {
    const ad = new ClassAd();
    for (const [name, value] of attrs) {
      if (value.kind === 'literal') ad.set(name, value.value);
      else {
        try {
          ad.set(name, parseExpr(value.text));
        } catch (err) {
          if (err instanceof ClassAdSyntaxError) throw new SubmitRejected(`${name}: ${err.message}`);
          throw err;
        }
      }
    }
    for (const [name, value] of Object.entries(extra)) ad.set(name, value);
    const proc = numberAttr(ad, 'ProcId') ?? 0;
    return { cluster, proc, id: `${cluster}.${proc}`, ad, submitted: attrs };
  }

  /** `PUT /jobs/{id}/input` is done: the sandbox is in the spool directory; release the job. */
  finishSpooling(job: Job): string {
    const dir = this.spoolDirOf(job);
    mkdirSync(dir, { recursive: true });
    if (!job.ad.has('SUBMIT_Iwd')) job.ad.set('SUBMIT_Iwd', stringAttr(job.ad, 'Iwd') ?? '');
    job.ad.set('Iwd', dir);
    if (status(job) === JobStatus.held && numberAttr(job.ad, 'HoldReasonCode') === SPOOLING_INPUT) {
      this.setStatus(job, JobStatus.idle);
      job.ad.delete('HoldReason');
      job.ad.delete('HoldReasonCode');
      this.emit('idle', job);
    }
    return dir;
  }

  spoolDirOf(job: Job): string {
    return path.join(this.opts.spoolDir, String(job.cluster % 10000), String(job.proc), `cluster${job.cluster}.proc${job.proc}.subproc0`);
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  all(): Job[] {
    return [...this.jobs.values()].sort((a, b) => a.cluster - b.cluster || a.proc - b.proc);
  }

  /** Jobs matching a ClassAd constraint, in (cluster, proc) order. Throws ClassAdSyntaxError. */
  query(constraint: string): Job[] {
    const expr = parseExpr(constraint);
    const now = Math.floor(this.now().getTime() / 1000);
    return this.all().filter((job) => matchesConstraint(expr, job.ad, { now }));
  }

  /** `condor_rm`: running jobs are vacated first; others leave the queue at once. */
  remove(jobs: Job[], reason: string): ActionResults {
    const results = emptyResults(jobs.length);
    for (const job of jobs) {
      if (status(job) === JobStatus.removed) {
        results.already_done++;
        continue;
      }
      const wasRunning = status(job) === JobStatus.running;
      this.setStatus(job, JobStatus.removed);
      job.ad.set('RemoveReason', reason);
      // The abort event carries the RemoveReason ("via condor_rm (by user ...)" from condor_rm itself).
      this.log(job, { kind: 'abort', reason });
      results.success++;
      if (wasRunning) this.emit('vacate', job, 'remove');
      else this.drop(job);
      // As the real schedd: removing a DAGMan job also removes what its OtherJobRemoveRequirements names.
      const others = job.ad.has('OtherJobRemoveRequirements') ? job.ad.evaluate('OtherJobRemoveRequirements') : undefined;
      if (others?.type === 'string') {
        const more = this.query(others.value).filter((j) => status(j) !== JobStatus.removed);
        if (more.length > 0) this.remove(more, `${reason} (DAGMan job ${job.id} removed)`);
      }
    }
    return results;
  }

  /** `condor_hold`: a running job is vacated; its status becomes held either way. */
  hold(jobs: Job[], reason: string, code = 1, subcode = 0): ActionResults {
    const results = emptyResults(jobs.length);
    for (const job of jobs) {
      const s = status(job);
      if (s === JobStatus.held) results.already_done++;
      else if (s === JobStatus.removed || s === JobStatus.completed) results.bad_status++;
      else {
        this.putOnHold(job, reason, code, subcode);
        if (s === JobStatus.running) this.emit('vacate', job, 'hold');
        results.success++;
      }
    }
    return results;
  }

  /** `condor_release`: held jobs become idle. */
  release(jobs: Job[], reason: string): ActionResults {
    const results = emptyResults(jobs.length);
    for (const job of jobs) {
      if (status(job) !== JobStatus.held) {
        results.bad_status++;
        continue;
      }
      job.ad.delete('HoldReason');
      job.ad.delete('HoldReasonCode');
      job.ad.delete('HoldReasonSubCode');
      this.setStatus(job, JobStatus.idle);
      this.log(job, { kind: 'release', reason });
      results.success++;
      this.emit('idle', job);
    }
    return results;
  }

  putOnHold(job: Job, reason: string, code: number, subcode: number): void {
    job.ad.set('HoldReason', reason);
    job.ad.set('HoldReasonCode', code);
    job.ad.set('HoldReasonSubCode', subcode);
    job.ad.set('NumHolds', (numberAttr(job.ad, 'NumHolds') ?? 0) + 1);
    this.setStatus(job, JobStatus.held);
    this.log(job, { kind: 'hold', reason, code, subcode });
  }

  setStatus(job: Job, value: number): void {
    const previous = status(job);
    job.ad.set('LastJobStatus', previous);
    job.ad.set('JobStatus', value);
    job.ad.set('EnteredCurrentStatus', Math.floor(this.now().getTime() / 1000));
    this.emit('status', job, previous);
  }

  /** A job that ended but stays queued (its OnExitRemove was false) is idle again and may rerun. */
  requeue(job: Job): void {
    this.setStatus(job, JobStatus.idle);
    this.emit('idle', job);
  }

  /** The job leaves the queue (completed without LeaveJobInQueue, or removed). */
  drop(job: Job): void {
    if (this.jobs.delete(job.id)) this.emit('gone', job);
  }

  /**
   * Appends an event to the job's user log, if it has one (relative paths are in its Iwd), and
   * to the DAGMan nodes log of a DAG node job (`dagman_log`), which DAGMan follows.
   */
  log(job: Job, event: JobEvent): void {
    const iwd = stringAttr(job.ad, 'Iwd') ?? '/';
    for (const attr of ['UserLog', 'DAGManNodesLog']) {
      const file = stringAttr(job.ad, attr);
      if (!file) continue;
      try {
        appendEvent(path.resolve(iwd, file), job.cluster, job.proc, this.now(), event);
      } catch {
        // The real schedd also carries on when a user log cannot be written.
      }
    }
  }
}

function emptyResults(total: number): ActionResults {
  return { total, success: 0, not_found: 0, permission_denied: 0, bad_status: 0, already_done: 0, error: 0 };
}

export function status(job: Job): number {
  return numberAttr(job.ad, 'JobStatus') ?? 0;
}

export function stringAttr(ad: ClassAd, name: string): string | undefined {
  const v = ad.evaluate(name);
  return v.type === 'string' ? v.value : undefined;
}

export function numberAttr(ad: ClassAd, name: string): number | undefined {
  const v = ad.evaluate(name);
  return v.type === 'integer' || v.type === 'real' ? v.value : undefined;
}

export function boolAttr(ad: ClassAd, name: string): boolean | undefined {
  const v = ad.evaluate(name);
  if (v.type === 'boolean') return v.value;
  if (v.type === 'integer' || v.type === 'real') return v.value !== 0;
  return undefined;
}

/** What htcondor-api's SubmitRemote sets on every job (SPEC 6). */
function applyRemoteSemantics(ad: ClassAd): void {
  if (!ad.has('ShouldTransferFiles')) ad.set('ShouldTransferFiles', 'YES');
  if (!ad.has('WhenToTransferOutput')) ad.set('WhenToTransferOutput', 'ON_EXIT');
  ad.set('JobStatus', JobStatus.held);
  ad.set('HoldReasonCode', SPOOLING_INPUT);
  ad.set('HoldReason', 'Spooling input data files');
  if (!ad.has('LeaveJobInQueue')) {
    ad.set('LeaveJobInQueue', parseExpr('JobStatus == 4 && (CompletionDate =?= UNDEFINED || CompletionDate == 0 || ((time() - CompletionDate) < 864000))'));
  }
}

/** A job needs its sandbox uploaded when it transfers its executable, stdin or input files. */
function needsSpooling(ad: ClassAd): boolean {
  if (boolAttr(ad, 'TransferExecutable') ?? true) return true;
  const stdin = stringAttr(ad, 'In');
  if (stdin && stdin !== '/dev/null') return true;
  return Boolean(stringAttr(ad, 'TransferInput'));
}
