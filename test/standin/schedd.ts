import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { submitRemote as parseRemoteSubmission } from './api_submit.ts';
import { ClassAd, ClassAdSyntaxError, matchesConstraint, parseExpr, type Expr, type Literal, type Value } from './classad.ts';
import { CronTab, needsCronTab } from './cron.ts';
import { scheddAd } from './schedd_ad.ts';
import { parseSubmitDescription, SubmitDescriptionError, type JobAttributes } from './submit_description.ts';
import { appendEvent, type JobEvent } from './userlog.ts';

/**
 * TEST STAND-IN for an HTCondor schedd's job queue (HTCondor 25.x, src/condor_schedd.V6:
 * qmgmt.cpp, schedd.cpp), behind the htcondor-api stand-in. Running jobs is the executor's
 * business: it listens for the events this class emits.
 *
 * Submission:
 *  - remote (htcondor-api's POST /api/v1/jobs): the ads golang-htcondor's own parser makes
 *    (api_submit.ts), which arrive held for spooling (JobStatus 5, HoldReasonCode 16);
 *  - local (DAGMan's node jobs): condor_submit's reading of the description
 *    (submit_description.ts), since DAGMan runs the real condor_submit code on the access point.
 * At commit the schedd adds what it owns when absent (Owner, User, QDate, EnteredCurrentStatus,
 * GlobalJobId), and every job held for spooling (code 16) has its ad rewritten, once, by
 * rewriteSpooledJobAd (qmgmt.cpp): SUBMIT_Iwd = the old Iwd, Iwd = the job's spool directory;
 * Cmd (when TransferExecutable is not false), In (when TransferIn is not false), each entry of
 * TransferInput (URLs kept; relative entries kept when PreserveRelativePaths is true), UserLog,
 * X509UserProxy and DataReuseManifestSHA256 cut to their base name (condor_basename), the old
 * value saved as SUBMIT_<Attr> when it changed; TransferOutputRemaps keeps only its URL
 * destinations (the rest go to SUBMIT_TransferOutputRemaps; a remap that does not split into
 * exactly two words on spaces and `=` is dropped from both) and is UNDEFINED when none is left.
 * Out and Err are not rewritten. A job with SUBMIT_Iwd is never rewritten again (later edits
 * stay as written). The submit event is written then, to the rewritten user log.
 *
 * Spooling done (schedd.cpp, spoolJobFilesReaper): StageInFinish = now - 1 unless set, then the
 * job is released with ReleaseReason "Data files spooled" and no user-log event. Any release
 * (releaseJobRaw + fixReasonAttrs): ReleaseReason set, HoldReason/HoldReasonCode/
 * HoldReasonSubCode moved to LastHoldReason/LastHoldReasonCode/LastHoldReasonSubCode; a hold moves
 * ReleaseReason to LastReleaseReason; condor_rm moves the hold reasons too.
 *
 * A job that completes or is removed stays in the queue while its LeaveJobInQueue evaluates true
 * (qmgmt.cpp DestroyProc); the periodic pass takes it out once it no longer does.
 *
 * Cron jobs (Scheduler::calculateCronTabSchedule): an idle cron job without a DeferralTime, or
 * whose DeferralTime (+ DeferralWindow) has passed, or that has just been requeued, gets
 * DeferralTime = CronTab's next run time (cron.ts); an invalid schedule holds it (code 25).
 *
 * Edits (qmgmt SetAttribute, in one transaction): all or nothing; a value is stored as it
 * parses, and as UNDEFINED when it does not (LogSetAttribute); see setAttributes().
 */

export const JobStatus = { idle: 1, running: 2, removed: 3, completed: 4, held: 5, transferringOutput: 6, suspended: 7 } as const;

/** HoldReasonCode 16: the job waits for its input files to be spooled. */
export const SPOOLING_INPUT = 16;
/** HoldReasonCode 25: the cron_* settings cannot be read. */
const INVALID_CRON_SETTINGS = 25;
/** HoldReasonCode 1: condor_hold. */
const USER_REQUEST = 1;

export type Job = {
  readonly cluster: number;
  readonly proc: number;
  readonly id: string;
  readonly ad: ClassAd;
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

/** condor_submit refused a description (local submission). */
export class SubmitRejected extends Error {}

/** A qmgmt call failed: what the schedd answers on the wire is the errno. */
export class QmgmtError extends Error {
  constructor(
    readonly attribute: string,
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

const ENOENT = 2;
const EACCES = 13;
const EINVAL = 22;

/** SYSTEM_IMMUTABLE_JOB_ATTRS' default (param_info.in); the schedd compares names case-insensitively. */
const SCHEDD_IMMUTABLE = new Set(['owner', 'clusterid', 'jobuniverse', 'procid', 'mytype', 'targettype', 'user', 'osuser']);
/** SYSTEM_SECURE_JOB_ATTRS' default: edits are ignored (IGNORE_ATTEMPTS_TO_SET_SECURE_JOB_ATTRS is true). */
const SCHEDD_SECURE = new Set(
  ['x509userProxySubject', 'x509UserProxyEmail', 'x509UserProxyVOName', 'x509UserProxyFirstFQAN', 'x509UserProxyFQAN', 'TotalSubmitProcs', 'AuthTokenSubject', 'AuthTokenIssuer', 'AuthTokenGroups', 'AuthTokenId', 'AuthTokenScopes', 'AuthTokenProject', 'OsUser'].map((n) => n.toLowerCase()),
);

export type ScheddEvents = {
  /** A job became idle and may be started. */
  idle: [Job];
  /** A running job must stop: removed or held. */
  vacate: [Job, 'remove' | 'hold'];
  /** A job's JobStatus changed (from the status given). */
  status: [Job, number];
  /** A job left the queue. */
  gone: [Job];
  /** Attributes of a job were edited (qmgmt SetAttribute): it may start now where it could not. */
  edited: [Job];
};

export class StandinSchedd extends EventEmitter<ScheddEvents> {
  private readonly jobs = new Map<string, Job>();
  private nextCluster = 1;
  private readonly hostname = os.hostname();

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

  /** The clock in epoch seconds, as ClassAd time() and the job attributes have it. */
  seconds(): number {
    return Math.floor(this.now().getTime() / 1000);
  }

  /**
   * htcondor-api's SubmitRemote: golang-htcondor's parser makes the ads (api_submit.ts; its
   * errors propagate), the schedd commits them, and jobs with nothing to spool are released at
   * once (releaseJobsWithEmptySpool). `serverCwd` is the server's working directory, the Iwd of
   * a description without `initialdir`.
   */
  submitRemote(text: string, opts: { serverCwd: string }): { clusterId: number; jobIds: string[] } {
    const cluster = this.nextCluster;
    const procs = parseRemoteSubmission(text, { clusterId: cluster, serverCwd: opts.serverCwd, now: this.seconds() });
    this.nextCluster++;
    const jobs = procs.map(({ ad }) => this.jobFor(cluster, ad));
    this.commit(jobs);
    procs.forEach(({ needsSpooling }, i) => {
      if (!needsSpooling) this.finishSpooling(jobs[i]!);
    });
    return { clusterId: cluster, jobIds: jobs.map((j) => j.id) };
  }

  /**
   * condor_submit of a description on the access point, as DAGMan submits node jobs (and as
   * tests submit directly): condor_submit's reading (submit_description.ts), from `iwd`, with
   * `env` as the submitter's environment (getenv, $ENV()) and `macros` ahead of the description
   * (DAGMan's VARS). `extra` attributes are set on every job.
   */
  submit(
    text: string,
    how: {
      remote: false;
      iwd: string;
      env?: Record<string, string>;
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
    const jobs = procs.map((attrs) => this.jobFor(cluster, adFromAttributes(attrs, how.extra ?? {})));
    this.nextCluster++;
    for (const job of jobs) if (!job.ad.has('LeaveJobInQueue')) job.ad.set('LeaveJobInQueue', false);
    this.commit(jobs);
    return { clusterId: cluster, jobIds: jobs.map((j) => j.id) };
  }

  private jobFor(cluster: number, ad: ClassAd): Job {
    ad.set('ClusterId', cluster);
    const proc = numberAttr(ad, 'ProcId') ?? 0;
    ad.set('ProcId', proc);
    return { cluster, proc, id: `${cluster}.${proc}`, ad };
  }

  /** The end of the submit transaction (qmgmt.cpp CommitTransaction and what it triggers). */
  private commit(jobs: Job[]): void {
    const now = this.seconds();
    for (const job of jobs) {
      const { ad } = job;
      if (!ad.has('Owner')) ad.set('Owner', this.opts.owner);
      if (!ad.has('User')) ad.set('User', `${this.opts.owner}@${this.hostname}`);
      if (!ad.has('QDate')) ad.set('QDate', now);
      if (!ad.has('EnteredCurrentStatus')) ad.set('EnteredCurrentStatus', now);
      if (!ad.has('GlobalJobId')) ad.set('GlobalJobId', `${this.hostname}#${job.id}#${numberAttr(ad, 'QDate') ?? now}`);
      const spoolingHold = status(job) === JobStatus.held && numberAttr(ad, 'HoldReasonCode') === SPOOLING_INPUT;
      if (spoolingHold) {
        const dir = this.spoolDirOf(job);
        mkdirSync(dir, { recursive: true });
        rewriteSpooledJobAd(ad, dir);
      }
      this.jobs.set(job.id, job);
      this.log(job, { kind: 'submit', host: this.opts.host, dagNode: stringAttr(ad, 'DAGNodeName') });
      const s = status(job);
      if (s === JobStatus.held && !spoolingHold) {
        this.log(job, { kind: 'hold', reason: stringAttr(ad, 'HoldReason') ?? '', code: numberAttr(ad, 'HoldReasonCode') ?? 0, subcode: numberAttr(ad, 'HoldReasonSubCode') ?? 0 });
      } else if (s === JobStatus.idle) this.becameIdle(job, false);
    }
  }

  /** Spooling of the job's input is over (`PUT /jobs/{id}/input`, or nothing to spool): release it. */
  finishSpooling(job: Job): string {
    const dir = this.spoolDirOf(job);
    mkdirSync(dir, { recursive: true });
    if (status(job) === JobStatus.held && numberAttr(job.ad, 'HoldReasonCode') === SPOOLING_INPUT) {
      if (!numberAttr(job.ad, 'StageInFinish')) job.ad.set('StageInFinish', this.seconds() - 1);
      this.releaseRaw(job, 'Data files spooled', false);
    }
    return dir;
  }

  /** SpooledJobFiles::getJobSpoolPath. */
  spoolDirOf(job: Job): string {
    return path.join(this.opts.spoolDir, String(job.cluster % 10000), String(job.proc % 10000), `cluster${job.cluster}.proc${job.proc}.subproc0`);
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
    const now = this.seconds();
    return this.all().filter((job) => matchesConstraint(expr, job.ad, { now }));
  }

  /** The schedd's own ad (Scheduler::publish), with the queue's local and scheduler universe counts. */
  scheddAd(): ClassAd {
    const counts = { localRunning: 0, localIdle: 0, schedulerRunning: 0, schedulerIdle: 0 };
    for (const job of this.jobs.values()) {
      const u = numberAttr(job.ad, 'JobUniverse');
      const s = status(job);
      if (u === 12 && s === JobStatus.running) counts.localRunning++;
      if (u === 12 && s === JobStatus.idle) counts.localIdle++;
      if (u === 7 && s === JobStatus.running) counts.schedulerRunning++;
      if (u === 7 && s === JobStatus.idle) counts.schedulerIdle++;
    }
    return scheddAd(this.opts.spoolDir, counts);
  }

  /**
   * qmgmt SetAttribute of each `[name, ClassAd expression text]` on job `id`, in one transaction
   * (all or nothing). Throws QmgmtError with the errno the schedd answers: ENOENT for a job not
   * in the queue, EINVAL for a name that is not an attribute name or a value holding a line
   * break, EACCES for SYSTEM_IMMUTABLE_JOB_ATTRS (Owner ClusterId JobUniverse ProcId MyType
   * TargetType User OsUser, any case). Secure attributes are ignored; a value that does not
   * parse is stored as UNDEFINED, as the job queue log does.
   */
  setAttributes(id: string, attributes: Array<[name: string, value: string]>): void {
    const job = this.jobs.get(id);
    const fail = (name: string, errno: number, why: string): never => {
      throw new QmgmtError(name, errno, `SetAttribute of ${name} in job ${id}: ${why}`);
    };
    for (const [name, value] of attributes) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) fail(name, EINVAL, 'invalid attribute name');
      if (/[\r\n]/.test(value)) fail(name, EINVAL, 'invalid attribute value (a line break)');
      if (!job) fail(name, ENOENT, 'nonexistent job');
      if (SCHEDD_IMMUTABLE.has(name.toLowerCase())) fail(name, EACCES, 'attempt to edit immutable attribute');
    }
    for (const [name, value] of attributes) {
      if (SCHEDD_SECURE.has(name.toLowerCase())) continue;
      let expr: Expr | null;
      try {
        expr = value.trim() === '' ? null : parseExpr(value);
      } catch (err) {
        if (!(err instanceof ClassAdSyntaxError)) throw err;
        expr = null;
      }
      job!.ad.set(name, expr);
    }
    this.emit('edited', job!);
  }

  /**
   * `condor_rm`: every job named is marked removed first (one transaction, as abortJobs does),
   * then running jobs are vacated and the others end now (and leave unless LeaveJobInQueue);
   * a removed DAGMan job's OtherJobRemoveRequirements removes its node jobs too.
   */
  remove(jobs: Job[], reason: string): ActionResults {
    const results = emptyResults(jobs.length);
    const removed: Array<{ job: Job; wasRunning: boolean }> = [];
    for (const job of jobs) {
      if (status(job) === JobStatus.removed) {
        results.already_done++;
        continue;
      }
      const wasRunning = status(job) === JobStatus.running;
      this.setStatus(job, JobStatus.removed);
      job.ad.set('RemoveReason', reason);
      moveAttributes(job.ad, HOLD_REASONS);
      job.ad.delete('JobStatusOnRelease');
      // The abort event carries the RemoveReason ("via condor_rm (by user ...)" from condor_rm itself).
      this.log(job, { kind: 'abort', reason });
      results.success++;
      removed.push({ job, wasRunning });
    }
    for (const { job, wasRunning } of removed) {
      if (wasRunning) this.emit('vacate', job, 'remove');
      else this.destroyProc(job);
      const others = job.ad.has('OtherJobRemoveRequirements') ? job.ad.evaluate('OtherJobRemoveRequirements', { now: this.seconds() }) : undefined;
      if (others?.type === 'string') {
        let more: Job[] = [];
        try {
          more = this.query(others.value).filter((j) => status(j) !== JobStatus.removed && status(j) !== JobStatus.completed);
        } catch (err) {
          if (!(err instanceof ClassAdSyntaxError)) throw err;
        }
        if (more.length > 0) this.remove(more, `${reason} (DAGMan job ${job.id} removed)`);
      }
    }
    return results;
  }

  /** `condor_hold`: a running job is vacated; its status becomes held either way. */
  hold(jobs: Job[], reason: string, code = USER_REQUEST, subcode = 0): ActionResults {
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
      this.releaseRaw(job, reason, true);
      results.success++;
    }
    return results;
  }

  /** releaseJobRaw: the reasons move to Last*, the job is idle again. */
  private releaseRaw(job: Job, reason: string, writeToUserLog: boolean): void {
    job.ad.set('ReleaseReason', reason);
    moveAttributes(job.ad, HOLD_REASONS);
    job.ad.delete('JobStatusOnRelease');
    this.setStatus(job, JobStatus.idle);
    if (writeToUserLog) this.log(job, { kind: 'release', reason });
    this.becameIdle(job, false);
  }

  putOnHold(job: Job, reason: string, code: number, subcode: number): void {
    moveAttributes(job.ad, [['ReleaseReason', 'LastReleaseReason']]);
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
    job.ad.set('EnteredCurrentStatus', this.seconds());
    this.emit('status', job, previous);
  }

  /** A job that ended but stays queued (its OnExitRemove was false) is idle again and may rerun. */
  requeue(job: Job): void {
    this.setStatus(job, JobStatus.idle);
    this.becameIdle(job, true);
  }

  /**
   * The job has completed or been removed and nothing runs for it any more (DestroyProc): it
   * leaves the queue, unless its LeaveJobInQueue evaluates true.
   */
  destroyProc(job: Job): void {
    if (boolAttr(job.ad, 'LeaveJobInQueue', this.seconds()) === true) return;
    this.drop(job);
  }

  /** The job leaves the queue. */
  drop(job: Job): void {
    if (this.jobs.delete(job.id)) this.emit('gone', job);
  }

  /** An idle job may start; a cron job first gets its DeferralTime. */
  private becameIdle(job: Job, requeued: boolean): void {
    if (needsCronTab(job.ad) && !this.scheduleCron(job, requeued)) return;
    this.emit('idle', job);
  }

  /** Scheduler::calculateCronTabSchedule for an idle cron job; false when it went on hold instead. */
  scheduleCron(job: Job, force: boolean): boolean {
    const now = this.seconds();
    const deferral = numberAttr(job.ad, 'DeferralTime');
    const window = numberAttr(job.ad, 'DeferralWindow') ?? 0;
    if (!force && deferral !== undefined && now <= deferral + window) return true;
    const tab = CronTab.fromAd(job.ad);
    const next = tab instanceof CronTab ? tab.nextRunTime(now) : undefined;
    if (next === undefined) {
      const why = tab instanceof CronTab ? 'no time matches the schedule' : tab.error;
      this.putOnHold(job, `Invalid cron schedule parameters: ${why}`, INVALID_CRON_SETTINGS, 0);
      return false;
    }
    job.ad.set('DeferralTime', next);
    return true;
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

const HOLD_REASONS: Array<[string, string]> = [
  ['HoldReason', 'LastHoldReason'],
  ['HoldReasonCode', 'LastHoldReasonCode'],
  ['HoldReasonSubCode', 'LastHoldReasonSubCode'],
];

/** moveStrAttr / moveIntAttr: each attribute present moves to its new name. */
function moveAttributes(ad: ClassAd, moves: Array<[string, string]>): void {
  for (const [from, to] of moves) {
    const expr = ad.get(from);
    if (expr === undefined) continue;
    ad.set(to, expr);
    ad.delete(from);
  }
}

function adFromAttributes(attrs: JobAttributes, extra: Record<string, Literal>): ClassAd {
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
  return ad;
}

/** HTCondor's IsUrl: `scheme://`. */
function isUrl(s: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(s);
}

/** HTCondor's split(): tokens between any of the delimiter characters, trimmed, empty ones dropped. */
function split(s: string, delimiters: string): string[] {
  const out: string[] = [];
  let token = '';
  for (const c of s) {
    if (delimiters.includes(c)) {
      if (token.trim() !== '') out.push(token.trim());
      token = '';
    } else token += c;
  }
  if (token.trim() !== '') out.push(token.trim());
  return out;
}

function condorBasename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** qmgmt.cpp rewriteSpooledJobAd, for a job whose spool directory is `spool`. */
function rewriteSpooledJobAd(ad: ClassAd, spool: string): void {
  if (ad.has('SUBMIT_Iwd')) return;
  const iwd = ad.evaluate('Iwd');
  ad.set('SUBMIT_Iwd', iwd.type === 'string' ? iwd.value : null);
  ad.set('Iwd', spool);

  const remaps = ad.get('TransferOutputRemaps');
  const urlRemaps: string[] = [];
  if (remaps !== undefined) {
    const value = ad.evaluate('TransferOutputRemaps');
    if (value.type === 'string') {
      const others: string[] = [];
      for (const command of split(value.value, ';')) {
        const parts = split(command, ' =');
        if (parts.length !== 2) continue;
        (isUrl(parts[1]!) ? urlRemaps : others).push(command);
      }
      ad.set('SUBMIT_TransferOutputRemaps', others.join(';'));
    } else ad.set('SUBMIT_TransferOutputRemaps', remaps);
  } else if (ad.has('SUBMIT_TransferOutputRemaps')) ad.set('SUBMIT_TransferOutputRemaps', null);
  ad.set('TransferOutputRemaps', urlRemaps.length > 0 ? urlRemaps.join(';') : null);

  const rewritten: Array<[attr: string, transferFlag: string | undefined, list: boolean]> = [
    ['Cmd', 'TransferExecutable', false],
    ['In', 'TransferIn', false],
    ['TransferInput', undefined, true],
    ['UserLog', undefined, false],
    ['X509UserProxy', undefined, false],
    ['DataReuseManifestSHA256', undefined, false],
  ];
  const preserveRelative = boolAttr(ad, 'PreserveRelativePaths') === true;
  for (const [attr, flag, isList] of rewritten) {
    const old = stringAttr(ad, attr);
    if (old === undefined || old === '/dev/null') continue;
    if (flag !== undefined && boolAttr(ad, flag) === false) continue;
    const paths = isList ? split(old, ', \t\r\n') : [old];
    const renamed = paths.map((p) => {
      if (attr !== 'TransferInput') return condorBasename(p);
      if (isUrl(p) || (preserveRelative && !p.startsWith('/'))) return p;
      return condorBasename(p);
    });
    if (renamed.some((p, i) => p !== paths[i])) {
      ad.set(`SUBMIT_${attr}`, old);
      ad.set(attr, renamed.join(','));
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

/** LookupBool (EvalBool): a boolean, or a number (0 is false); undefined for anything else. */
export function boolAttr(ad: ClassAd, name: string, now?: number): boolean | undefined {
  return truthOf(ad.evaluate(name, now === undefined ? undefined : { now }));
}

function truthOf(v: Value): boolean | undefined {
  if (v.type === 'boolean') return v.value;
  if (v.type === 'integer' || v.type === 'real') return v.value !== 0;
  return undefined;
}
