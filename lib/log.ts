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

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
