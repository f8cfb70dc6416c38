import { appendFileSync } from 'node:fs';

/**
 * Job event logs (`log = ...`) in HTCondor's user-log text format, with ISO dates as current
 * HTCondor writes them, so people can read `crondor_<cluster>.log` and node logs as they are used to.
 * Each event: `NNN (cluster.proc.subproc) date text`, detail lines, then `...`. The bodies follow
 * condor_event.cpp's formatBody (usage figures are zero: the stand-in does not measure them).
 */

/** How a job's process ended: an exit code, or the number of the signal that killed it. */
export type Termination = { exitCode: number; signal: null } | { exitCode: null; signal: number };

export type JobEvent =
  | { kind: 'submit'; host: string; dagNode?: string }
  | { kind: 'execute'; host: string }
  | ({ kind: 'terminate' } & Termination)
  /** `004 Job was evicted`, as written when a job ends but its OnExitRemove keeps it queued. */
  | ({ kind: 'requeue'; reason: string } & Termination)
  | { kind: 'hold'; reason: string; code: number; subcode: number }
  | { kind: 'release'; reason: string }
  | { kind: 'abort'; reason: string };

const CODES: Record<JobEvent['kind'], string> = {
  submit: '000',
  execute: '001',
  requeue: '004',
  terminate: '005',
  abort: '009',
  hold: '012',
  release: '013',
};

const USAGE = (which: string) => `\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  ${which} Usage\n`;

function howItEnded(t: Termination): string {
  return t.signal === null
    ? `\t(1) Normal termination (return value ${t.exitCode})\n`
    : `\t(0) Abnormal termination (signal ${t.signal})\n\t(0) No core file\n`;
}

export function formatEvent(cluster: number, proc: number, when: Date, event: JobEvent, subproc = 0): string {
  const id = `(${String(cluster).padStart(3, '0')}.${String(proc).padStart(3, '0')}.${String(subproc).padStart(3, '0')})`;
  const head = `${CODES[event.kind]} ${id} ${isoLocal(when)} `;
  switch (event.kind) {
    case 'submit':
      return head + `Job submitted from host: ${event.host}\n` + (event.dagNode ? `    DAG Node: ${event.dagNode}\n` : '') + '...\n';
    case 'execute':
      return head + `Job executing on host: ${event.host}\n...\n`;
    case 'terminate': {
      const usage = ['Run Remote', 'Run Local', 'Total Remote', 'Total Local'].map(USAGE).join('');
      const bytes = ['Run Bytes Sent By Job', 'Run Bytes Received By Job', 'Total Bytes Sent By Job', 'Total Bytes Received By Job']
        .map((b) => `\t0  -  ${b}\n`)
        .join('');
      return head + 'Job terminated.\n' + howItEnded(event) + usage + bytes + '...\n';
    }
    case 'requeue':
      return (
        head +
        'Job was evicted.\n\t(0) Job terminated and was requeued\n' +
        USAGE('Run Remote') +
        USAGE('Run Local') +
        '\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n' +
        howItEnded(event) +
        `\t${event.reason}\n...\n`
      );
    case 'hold':
      return head + `Job was held.\n\t${event.reason}\n\tCode ${event.code} Subcode ${event.subcode}\n...\n`;
    case 'release':
      return head + `Job was released.\n\t${event.reason}\n...\n`;
    case 'abort':
      return head + `Job was aborted.\n\t${event.reason}\n...\n`;
  }
}

export function appendEvent(file: string, cluster: number, proc: number, when: Date, event: JobEvent, subproc = 0): void {
  appendFileSync(file, formatEvent(cluster, proc, when, event, subproc));
}

function isoLocal(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
