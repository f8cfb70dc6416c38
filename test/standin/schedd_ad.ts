import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import { ClassAd, parseExpr, type Value } from './classad.ts';

/**
 * TEST STAND-IN for the schedd's own ClassAd (HTCondor 25.x, schedd.cpp Scheduler::publish) and
 * for the check a local (12) or scheduler (7) universe job must pass before the schedd starts
 * it (Scheduler::IsLocalJobEligibleToRun): these jobs never meet a machine ad, so their
 * Requirements are evaluated with the job as MY and the schedd's ad as TARGET.
 *
 * The ad has what Scheduler::publish puts there about this machine and the queue: Arch, OpSys,
 * OpSysVer, OpSysAndVer, Memory (physical MB), Disk (free KiB where local universe jobs run),
 * Cpus, HasContainer and HasSIF (both true), TotalLocalJobsRunning/Idle,
 * TotalSchedulerJobsRunning/Idle and the START_LOCAL_UNIVERSE / START_SCHEDULER_UNIVERSE
 * expressions (defaults `TotalLocalJobsRunning < 200`, `TotalSchedulerJobsRunning < 500`). It has
 * no HasFileTransfer: a job whose Requirements name TARGET.HasFileTransfer (golang-htcondor adds
 * that clause for `should_transfer_files = YES`) evaluates to undefined and never starts.
 *
 * IsLocalJobEligibleToRun: the universe's start expression, evaluated in the schedd's ad with
 * the job as TARGET, then the job's Requirements (when it has any), evaluated in the job with
 * the schedd's ad as TARGET, must both be true (EvalBool: a boolean, or a number not 0);
 * undefined, error and anything else count as false.
 */

export const START_LOCAL_UNIVERSE = 'TotalLocalJobsRunning < 200';
export const START_SCHEDULER_UNIVERSE = 'TotalSchedulerJobsRunning < 500';

export type QueueCounts = { localRunning: number; localIdle: number; schedulerRunning: number; schedulerIdle: number };

/** The schedd's ad as Scheduler::publish makes it, for a schedd whose local jobs run under `executeDir`. */
export function scheddAd(executeDir: string, counts: QueueCounts): ClassAd {
  const ad = new ClassAd();
  const { opSysAndVer, opSysVer } = (osRelease ??= distribution());
  ad.set('Arch', os.arch() === 'x64' ? 'X86_64' : os.arch() === 'arm64' ? 'aarch64' : os.arch().toUpperCase());
  ad.set('OpSys', 'LINUX');
  if (opSysVer !== undefined) ad.set('OpSysVer', opSysVer);
  ad.set('OpSysAndVer', opSysAndVer);
  ad.set('Memory', Math.floor(os.totalmem() / (1024 * 1024)));
  ad.set('Disk', freeKiB(executeDir));
  ad.set('Cpus', Math.max(os.availableParallelism(), os.cpus().length));
  ad.set('HasContainer', true);
  ad.set('HasSIF', true);
  ad.set('TotalLocalJobsIdle', counts.localIdle);
  ad.set('TotalLocalJobsRunning', counts.localRunning);
  ad.set('StartLocalUniverse', parseExpr(START_LOCAL_UNIVERSE));
  ad.set('TotalSchedulerJobsIdle', counts.schedulerIdle);
  ad.set('TotalSchedulerJobsRunning', counts.schedulerRunning);
  ad.set('StartSchedulerUniverse', parseExpr(START_SCHEDULER_UNIVERSE));
  return ad;
}

/** Scheduler::IsLocalJobEligibleToRun for a job of universe 12 or 7. */
export function isLocalJobEligibleToRun(job: ClassAd, schedd: ClassAd, universe: number, now: number): boolean {
  const start = universe === 12 ? 'StartLocalUniverse' : 'StartSchedulerUniverse';
  if (schedd.has(start) && !evalBool(schedd.evaluate(start, { now, target: job }))) return false;
  if (job.has('Requirements') && !evalBool(job.evaluate('Requirements', { now, target: schedd }))) return false;
  return true;
}

/** EvalBool: true for boolean true or a number other than 0; false for everything else. */
function evalBool(v: Value): boolean {
  if (v.type === 'boolean') return v.value;
  if (v.type === 'integer' || v.type === 'real') return v.value !== 0;
  return false;
}

function freeKiB(dir: string): number {
  try {
    const s = statfsSync(dir);
    return Math.floor((Number(s.bavail) * Number(s.bsize)) / 1024);
  } catch {
    return 0;
  }
}

let osRelease: ReturnType<typeof distribution> | undefined;

const DISTRIBUTIONS: Record<string, string> = {
  ubuntu: 'Ubuntu',
  debian: 'Debian',
  almalinux: 'AlmaLinux',
  rocky: 'Rocky',
  centos: 'CentOS',
  rhel: 'RedHat',
  fedora: 'Fedora',
  opensuse: 'openSUSE',
  'opensuse-leap': 'openSUSE',
  amzn: 'AmazonLinux',
};

/** OpSysAndVer (`Ubuntu22`, `AlmaLinux9`...) and OpSysVer (`2204`) from /etc/os-release, as sysapi derives them. */
function distribution(): { opSysAndVer: string; opSysVer: number | undefined } {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const field = (name: string) => new RegExp(`^${name}="?([^"\\n]*)"?$`, 'm').exec(text)?.[1];
    const name = DISTRIBUTIONS[(field('ID') ?? '').toLowerCase()];
    const [major = '', minor = '0'] = (field('VERSION_ID') ?? '').split('.');
    if (name && /^\d+$/.test(major)) return { opSysAndVer: `${name}${major}`, opSysVer: Number(major) * 100 + (Number(minor) || 0) };
  } catch {
    // No os-release: the plain OpSys, as sysapi falls back to.
  }
  return { opSysAndVer: 'LINUX', opSysVer: undefined };
}
