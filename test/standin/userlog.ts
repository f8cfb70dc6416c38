import { appendFileSync } from 'node:fs';

/**
 * Job event logs (`log = ...`) in HTCondor's user-log text format, with ISO dates as current
 * HTCondor writes them, so people can read `crondor_<cluster>.log` and node logs as they are used to.
 * Each event: `NNN (cluster.proc.subproc) date text`, detail lines, then `...`.
 */

export type JobEvent =
  | { kind: 'submit'; host: string; dagNode?: string }
  | { kind: 'execute'; host: string }
  | { kind: 'terminate'; exitCode: number | null; signal: string | null }
  | { kind: 'hold'; reason: string; code: number; subcode: number }
  | { kind: 'release'; reason: string }
  | { kind: 'abort'; reason: string };

const CODES: Record<JobEvent['kind'], string> = {
  submit: '000',
  execute: '001',
  abort: '009',
  terminate: '005',
  hold: '012',
  release: '013',
};

export function formatEvent(cluster: number, proc: number, when: Date, event: JobEvent): string {
  const id = `(${String(cluster).padStart(3, '0')}.${String(proc).padStart(3, '0')}.000)`;
  const head = `${CODES[event.kind]} ${id} ${isoLocal(when)} `;
  switch (event.kind) {
    case 'submit':
      return head + `Job submitted from host: ${event.host}\n` + (event.dagNode ? `    DAG Node: ${event.dagNode}\n` : '') + '...\n';
    case 'execute':
      return head + `Job executing on host: ${event.host}\n...\n`;
    case 'terminate': {
      const how =
        event.signal === null
          ? `\t(1) Normal termination (return value ${event.exitCode})\n`
          : `\t(0) Abnormal termination (signal ${event.signal})\n`;
      const usage = ['Run Remote', 'Run Local', 'Total Remote', 'Total Local']
        .map((u) => `\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  ${u} Usage\n`)
        .join('');
      return head + 'Job terminated.\n' + how + usage + '...\n';
    }
    case 'hold':
      return head + `Job was held.\n\t${event.reason}\n\tCode ${event.code} Subcode ${event.subcode}\n...\n`;
    case 'release':
      return head + `Job was released.\n\t${event.reason}\n...\n`;
    case 'abort':
      return head + `Job was aborted.\n\t${event.reason}\n...\n`;
  }
}

export function appendEvent(file: string, cluster: number, proc: number, when: Date, event: JobEvent): void {
  appendFileSync(file, formatEvent(cluster, proc, when, event));
}

function isoLocal(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
