import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';

/**
 * Plain, timestamped log lines for people reading `crondor_<cluster>.out` or `post.out` at
 * 2 a.m. Everything goes to `out`, so it tells the whole story in order; warnings and errors
 * also go to `err`, so a non-empty `.err` file means something needs a look.
 */
export type Logger = {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

export function createLogger(out: Writable, err: Writable, now: () => Date = () => new Date()): Logger {
  const line = (level: string, message: string) => `${stamp(now())} ${level} ${message}\n`;
  return {
    info: (m) => void out.write(line('INFO ', m)),
    warn: (m) => {
      out.write(line('WARN ', m));
      if (err !== out) err.write(line('WARN ', m));
    },
    error: (m) => {
      out.write(line('ERROR', m));
      if (err !== out) err.write(line('ERROR', m));
    },
  };
}

/**
 * The post step's log, `post.out` and `post.err` in the workflow directory (appended to: a post
 * step run again by hand adds to them). DAGMan keeps no output of POST scripts.
 */
export function openPostLog(workflowDir: string): { log: Logger; close(): Promise<void> } {
  const out = createWriteStream(path.join(workflowDir, 'post.out'), { flags: 'a' });
  const err = createWriteStream(path.join(workflowDir, 'post.err'), { flags: 'a' });
  return {
    log: createLogger(out, err),
    async close() {
      out.end();
      err.end();
      await Promise.all([finished(out), finished(err)]);
    },
  };
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
