import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';
import type { Termination } from './userlog.ts';

/**
 * Processes the stand-in starts for jobs and DAGMan scripts. Each runs in a process group of its
 * own, so that killing it takes its whole process family, as HTCondor's starter does (a shell
 * job's `sleep` dies with the shell); leftovers are killed when the main process exits.
 */

export type Started = { child: ChildProcess; exited: Promise<Termination> };

/** A file for stdin or output: a path (outputs are truncated, as each run starts afresh) or nothing. */
export type StdioFile = { path: string } | 'ignore';

export class OpenError extends Error {
  constructor(
    readonly which: 'stdin' | 'stdout' | 'stderr',
    readonly file: string,
    readonly error: NodeJS.ErrnoException,
  ) {
    super(`cannot open ${file} as ${which}: ${error.message}`);
  }
}

/**
 * Starts a process; resolves once it is running. Rejects with an OpenError when a stdio file
 * cannot be opened, or with the spawn error (ENOENT, EACCES...) when it cannot be executed.
 */
export async function startProcess(
  command: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; stdin?: StdioFile; stdout?: StdioFile; stderr?: StdioFile },
): Promise<Started> {
  const fds: number[] = [];
  const open = (which: 'stdin' | 'stdout' | 'stderr', file: StdioFile | undefined) => {
    if (file === undefined || file === 'ignore') return 'ignore' as const;
    try {
      const fd = openSync(file.path, which === 'stdin' ? 'r' : 'w');
      fds.push(fd);
      return fd;
    } catch (err) {
      throw new OpenError(which, file.path, err as NodeJS.ErrnoException);
    }
  };
  try {
    const stdio: StdioOptions = [open('stdin', opts.stdin), open('stdout', opts.stdout), open('stderr', opts.stderr)];
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio, detached: true });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const exited = new Promise<Termination>((resolve) => {
      child.once('exit', (code, signal) => {
        // The job's leftovers (background children) go with it.
        killGroup(child, 'SIGKILL');
        resolve(signal === null ? { exitCode: code ?? 0, signal: null } : { exitCode: null, signal: os.constants.signals[signal] });
      });
    });
    return { child, exited };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** Signals the process group of a child started by startProcess; quiet if it is already gone. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: nothing left to signal.
  }
}

/**
 * Stops a process: `soft` first (HTCondor's KillSig / RemoveKillSig), then SIGKILL once the
 * grace period is over; `hard` kills at once (condor_hold's hard kill).
 */
export function stopProcess(started: Started, how: { soft: NodeJS.Signals; graceMs: number } | 'hard'): void {
  if (how === 'hard') {
    killGroup(started.child, 'SIGKILL');
    return;
  }
  killGroup(started.child, how.soft);
  const timer = setTimeout(() => killGroup(started.child, 'SIGKILL'), how.graceMs);
  void started.exited.then(() => clearTimeout(timer));
}

/** The signal a job asked for (`SIGUSR1`), or SIGTERM when it names none this system knows. */
export function signalName(name: string | undefined): NodeJS.Signals {
  return name !== undefined && name in os.constants.signals ? (name as NodeJS.Signals) : 'SIGTERM';
}
