/**
 * Runs one command as its own process, as a job would, and measures it: wall time from the
 * parent (spawn to exit, Node's start-up included), CPU and peak RSS from inside the process
 * (usage_probe.mjs, preloaded through NODE_OPTIONS so the command line is unchanged).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PROBE = fileURLToPath(new URL('./usage_probe.mjs', import.meta.url));

export type Command = {
  program: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Where stdout and stderr go (a job's output files). */
  stdoutFile: string;
  stderrFile: string;
  /** Killed (its whole process group) after this long. */
  timeoutMs: number;
  /** Write a V8 CPU profile of the process into this directory (when the program is node). */
  cpuProfDir?: string;
};

export type Usage = {
  wallMs: number;
  userCpuMs: number;
  systemCpuMs: number;
  cpuMs: number;
  /** The largest peak RSS of the processes the command ran (KB). */
  maxRssKb: number;
  /** Where the peak RSS comes from (usage_probe.mjs: VmHWM where /proc exists). */
  rssSource: string;
  peakHeapUsedBytes: number;
  peakExternalBytes: number;
  peakArrayBuffersBytes: number;
  /** Node processes that reported (more than one: a wrapper started Node again). */
  processes: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
};

let sequence = 0;

export async function measure(cmd: Command, scratchDir: string): Promise<Usage> {
  const prefix = path.join(scratchDir, `usage-${process.pid}-${++sequence}`);
  const nodeOptions = [`--import=${PROBE}`];
  // NODE_OPTIONS does not take --cpu-prof: it goes on the command line of a Node program.
  const args = cmd.cpuProfDir && /^node(\.exe)?$/.test(path.basename(cmd.program)) ? ['--cpu-prof', `--cpu-prof-dir=${cmd.cpuProfDir}`, ...cmd.args] : cmd.args;
  const out = openSync(cmd.stdoutFile, 'a');
  const err = openSync(cmd.stderrFile, 'a');
  const started = process.hrtime.bigint();
  let timedOut = false;
  const { code, signal } = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    const child = spawn(cmd.program, args, {
      cwd: cmd.cwd,
      env: { ...cmd.env, NODE_OPTIONS: nodeOptions.join(' '), BENCH_USAGE_FILE: prefix },
      stdio: ['ignore', out, err],
      // Its own process group, so a time-out stops everything it started, and nothing else.
      detached: true,
    });
    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    let killer: NodeJS.Timeout | undefined;
    // SIGTERM first (the probe then still writes the partial run's usage), SIGKILL if it lingers.
    const timer = setTimeout(() => {
      timedOut = true;
      signalGroup('SIGTERM');
      killer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
    }, cmd.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      clearTimeout(killer);
      reject(e);
    });
    child.once('exit', (c, s) => {
      clearTimeout(timer);
      clearTimeout(killer);
      resolve({ code: c, signal: s });
    });
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  closeSync(out);
  closeSync(err);

  const records = readdirSync(scratchDir)
    .filter((f) => f.startsWith(`${path.basename(prefix)}.`) && f.endsWith('.json'))
    .map((f) => {
      const file = path.join(scratchDir, f);
      const record = JSON.parse(readFileSync(file, 'utf8')) as ProbeRecord;
      rmSync(file);
      return record;
    });
  const sum = (pick: (r: ProbeRecord) => number) => records.reduce((n, r) => n + pick(r), 0);
  const max = (pick: (r: ProbeRecord) => number) => records.reduce((n, r) => Math.max(n, pick(r)), 0);
  const userCpuMs = sum((r) => r.userCpuMs);
  const systemCpuMs = sum((r) => r.systemCpuMs);
  return {
    wallMs,
    userCpuMs,
    systemCpuMs,
    cpuMs: userCpuMs + systemCpuMs,
    maxRssKb: max((r) => r.maxRssKb),
    rssSource: records[0]?.rssSource ?? 'none (no process reported)',
    peakHeapUsedBytes: max((r) => r.peakHeapUsedBytes),
    peakExternalBytes: max((r) => r.peakExternalBytes),
    peakArrayBuffersBytes: max((r) => r.peakArrayBuffersBytes),
    processes: records.length,
    exitCode: code,
    signal,
    timedOut,
  };
}

type ProbeRecord = {
  userCpuMs: number;
  systemCpuMs: number;
  maxRssKb: number;
  rssSource: string;
  peakHeapUsedBytes: number;
  peakExternalBytes: number;
  peakArrayBuffersBytes: number;
};
