import { unparse, type Value } from './classad.ts';
import { JobStatus, numberAttr, status, stringAttr, type Job, type StandinSchedd } from './schedd.ts';

/**
 * TEST STAND-IN for the schedd's and shadow's job policy, HTCondor 25.x
 * (src/condor_utils/user_job_policy.cpp, UserPolicy::AnalyzePolicy; schedd.cpp PeriodicExprEval):
 *  - an expression fires only when it evaluates to a number or boolean other than 0 (reals are
 *    truncated, Value::IsNumber); undefined, error, strings and lists never fire (the old
 *    "undefined puts the job on hold" branch is compiled out, `#if 0`);
 *  - periodically: PeriodicHold for jobs neither held nor completed, PeriodicRelease for held
 *    jobs not held by condor_hold (HoldReasonCode 1), then PeriodicRemove; removed jobs are left
 *    alone; a completed or removed job that is not running leaves the queue unless its
 *    LeaveJobInQueue evaluates true (PeriodicExprEval → DestroyProc);
 *  - when a job exits: OnExitHold, then OnExitRemove: the job stays in the queue (requeued)
 *    only when OnExitRemove evaluates to a number or boolean equal to 0; absent, true, a string
 *    (golang-htcondor's `"false"`), undefined or error: it leaves as completed.
 * The reason is `<Attr>Reason` when that evaluates to a string, else "The job attribute <Attr>
 * expression '<text>' evaluated to TRUE"; a firing hold has HoldReasonCode 3 (JobPolicy) and
 * `<Attr>SubCode` as subcode.
 */

const HOLD_JOB_POLICY = 3;
const HOLD_USER_REQUEST = 1;

/** AnalyzeSinglePeriodicPolicy: the value as IsNumber reads it (booleans 0/1, reals truncated), or undefined. */
function numberOf(v: Value): number | undefined {
  if (v.type === 'boolean') return v.value ? 1 : 0;
  if (v.type === 'integer') return v.value;
  if (v.type === 'real') return Math.trunc(v.value);
  return undefined;
}

function fires(job: Job, attr: string, now: number): boolean {
  if (!job.ad.has(attr)) return false;
  const n = numberOf(job.ad.evaluate(attr, { now }));
  return n !== undefined && n !== 0;
}

function firing(job: Job, attr: string, outcome: 'TRUE' | 'FALSE'): string {
  const expr = job.ad.get(attr);
  return `The job attribute ${attr} expression '${expr ? unparse(expr) : ''}' evaluated to ${outcome}`;
}

function reasonFor(job: Job, attr: string): string {
  return stringAttr(job.ad, `${attr}Reason`) || firing(job, attr, 'TRUE');
}

/** One periodic pass over the queue; `running(job)` tells whether something still runs for the job. */
export function evaluatePeriodic(schedd: StandinSchedd, running: (job: Job) => boolean): void {
  const now = schedd.seconds();
  for (const job of schedd.all()) {
    const s = status(job);
    if (s === JobStatus.completed || s === JobStatus.removed) {
      if (!running(job)) schedd.destroyProc(job);
      continue;
    }
    if (s !== JobStatus.held && fires(job, 'PeriodicHold', now)) {
      schedd.hold([job], reasonFor(job, 'PeriodicHold'), HOLD_JOB_POLICY, numberAttr(job.ad, 'PeriodicHoldSubCode') ?? 0);
      continue;
    }
    if (s === JobStatus.held && numberAttr(job.ad, 'HoldReasonCode') !== HOLD_USER_REQUEST && fires(job, 'PeriodicRelease', now)) {
      schedd.release([job], reasonFor(job, 'PeriodicRelease'));
      continue;
    }
    if (fires(job, 'PeriodicRemove', now)) schedd.remove([job], reasonFor(job, 'PeriodicRemove'));
  }
}

export type ExitDecision =
  | { kind: 'complete' }
  | { kind: 'requeue'; reason: string }
  | { kind: 'hold'; reason: string; code: number; subcode: number };

/** What becomes of a job whose ad already records how it exited (ExitCode etc.). */
export function decideOnExit(job: Job, now: number): ExitDecision {
  if (fires(job, 'OnExitHold', now)) {
    return { kind: 'hold', reason: reasonFor(job, 'OnExitHold'), code: HOLD_JOB_POLICY, subcode: numberAttr(job.ad, 'OnExitHoldSubCode') ?? 0 };
  }
  if (job.ad.has('OnExitRemove') && numberOf(job.ad.evaluate('OnExitRemove', { now })) === 0) {
    return { kind: 'requeue', reason: firing(job, 'OnExitRemove', 'FALSE') };
  }
  return { kind: 'complete' };
}
