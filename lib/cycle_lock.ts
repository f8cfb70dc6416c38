import { open, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * One crondor cycle at a time per launch directory. A cycle that overruns its quarter hour (a
 * slow S3 endpoint, a huge bucket) must not overlap the next one, which would claim and submit
 * the same manifests. The lock is a file naming its holder; a holder that died (killed, the
 * access point rebooted) no longer counts, so it can never be left held forever.
 */

export const LOCK_FILE = '.crondor-cycle.lock';

type Holder = { pid: number; host: string; since: string };

export type CycleLock = { release(): Promise<void> };

/** Takes the lock, or returns who holds it. `alive` tells whether a process of this host still runs. */
export async function acquireCycleLock(
  launchDir: string,
  opts: { now: () => Date; alive?: (pid: number) => boolean } = { now: () => new Date() },
): Promise<{ lock: CycleLock } | { heldBy: Holder }> {
  const file = path.join(launchDir, LOCK_FILE);
  const alive = opts.alive ?? processAlive;
  const me: Holder = { pid: process.pid, host: os.hostname(), since: opts.now().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(JSON.stringify(me) + '\n');
      await handle.close();
      return { lock: { release: () => releaseIfMine(file, me) } };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    if (holder && (holder.host !== me.host || alive(holder.pid))) return { heldBy: holder };
    // The holder is gone: move its lock aside (one taker wins the rename) and try again.
    await rename(file, `${file}.stale-${process.pid}`).then(
      () => rm(`${file}.stale-${process.pid}`, { force: true }),
      () => undefined,
    );
  }
  const holder = await readHolder(file);
  return { heldBy: holder ?? { pid: 0, host: 'unknown', since: 'unknown' } };
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<Holder>;
    if (typeof parsed.pid === 'number' && typeof parsed.host === 'string' && typeof parsed.since === 'string') {
      return { pid: parsed.pid, host: parsed.host, since: parsed.since };
    }
  } catch {
    // Unreadable or half-written: treated as left by a holder that died while writing it.
  }
  return undefined;
}

async function releaseIfMine(file: string, me: Holder): Promise<void> {
  const holder = await readHolder(file);
  if (holder && holder.pid === me.pid && holder.host === me.host && holder.since === me.since) await rm(file, { force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
