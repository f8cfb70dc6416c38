import { unparse, type Value } from './classad.ts';
import { JobStatus, numberAttr, status, stringAttr, type Job, type StandinSchedd } from './schedd.ts';

/**
 * TEST STAND-IN for the schedd's job policy (the manual's "Job policy" / condor_submit's
 * periodic_* and on_exit_* commands), evaluated against the job ad:
 *  - periodically (PERIODIC_EXPR_INTERVAL): PeriodicHold for jobs not held, PeriodicRelease for
 *    held jobs, then PeriodicRemove, in that order;
 *  - when a job exits: OnExitHold, then OnExitRemove (false requeues the job).
 * An expression that is true fires; one that evaluates to UNDEFINED or ERROR puts the job on
 * hold with HoldReasonCode 5 (JobPolicyUndefined), as HTCondor does.
 */

const HOLD_JOB_POLICY = 3;
const HOLD_JOB_POLICY_UNDEFINED = 5;

type Verdict = true | false | 'undefined';

function verdict(job: Job, attr: string, now: number): Verdict {
  if (!job.ad.has(attr)) return false;
  const v: Value = job.ad.evaluate(attr, { now });
  if (v.type === 'boolean') return v.value;
  if (v.type === 'integer' || v.type === 'real') return v.value !== 0;
  return 'undefined';
}

function firing(job: Job, attr: string, outcome: 'TRUE' | 'FALSE' | 'UNDEFINED'): string {
  const expr = job.ad.get(attr);
  return `The job attribute ${attr} expression '${expr ? unparse(expr) : ''}' evaluated to ${outcome}`;
}

function undefinedHold(schedd: StandinSchedd, job: Job, attr: string): void {
  schedd.hold([job], firing(job, attr, 'UNDEFINED'), HOLD_JOB_POLICY_UNDEFINED);
}

/** One periodic pass over the queue. */
export function evaluatePeriodic(schedd: StandinSchedd): void {
  const now = Math.floor(schedd.now().getTime() / 1000);
  for (const job of schedd.all()) {
    const s = status(job);
    if (s !== JobStatus.idle && s !== JobStatus.running && s !== JobStatus.held) continue;
    if (s !== JobStatus.held) {
      const hold = verdict(job, 'PeriodicHold', now);
      if (hold === 'undefined') {
        undefinedHold(schedd, job, 'PeriodicHold');
        continue;
      }
      if (hold) {
        const reason = stringAttr(job.ad, 'PeriodicHoldReason') || firing(job, 'PeriodicHold', 'TRUE');
        schedd.hold([job], reason, HOLD_JOB_POLICY, numberAttr(job.ad, 'PeriodicHoldSubCode') ?? 0);
        continue;
      }
    } else if (verdict(job, 'PeriodicRelease', now) === true) {
      schedd.release([job], firing(job, 'PeriodicRelease', 'TRUE'));
      continue;
    }
    const remove = verdict(job, 'PeriodicRemove', now);
    if (remove === true) schedd.remove([job], firing(job, 'PeriodicRemove', 'TRUE'));
    else if (remove === 'undefined' && s !== JobStatus.held) undefinedHold(schedd, job, 'PeriodicRemove');
  }
}

export type ExitDecision =
  | { kind: 'complete' }
  | { kind: 'requeue'; reason: string }
  | { kind: 'hold'; reason: string; code: number; subcode: number };

/** What becomes of a job whose ad already records how it exited (ExitCode etc.). */
export function decideOnExit(job: Job, now: number): ExitDecision {
  const hold = verdict(job, 'OnExitHold', now);
  if (hold === 'undefined') return { kind: 'hold', reason: firing(job, 'OnExitHold', 'UNDEFINED'), code: HOLD_JOB_POLICY_UNDEFINED, subcode: 0 };
  if (hold) {
    return {
      kind: 'hold',
      reason: stringAttr(job.ad, 'OnExitHoldReason') || firing(job, 'OnExitHold', 'TRUE'),
      code: HOLD_JOB_POLICY,
      subcode: numberAttr(job.ad, 'OnExitHoldSubCode') ?? 0,
    };
  }
  if (!job.ad.has('OnExitRemove')) return { kind: 'complete' };
  const remove = verdict(job, 'OnExitRemove', now);
  if (remove === 'undefined') return { kind: 'hold', reason: firing(job, 'OnExitRemove', 'UNDEFINED'), code: HOLD_JOB_POLICY_UNDEFINED, subcode: 0 };
  return remove ? { kind: 'complete' } : { kind: 'requeue', reason: firing(job, 'OnExitRemove', 'FALSE') };
}
