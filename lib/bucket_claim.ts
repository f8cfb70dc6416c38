import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { crashPoint } from './crash_point.ts';
import { baseName, CLAIMS_FOLDER, folderOf } from './naming.ts';
import type { S3Store } from './s3_store.ts';

/**
 * The exclusive claim of a manifest in the bucket, so that two crondor jobs whose patterns
 * overlap, or two launch directories (two access points) watching one bucket, never both take
 * one manifest. A lock in a launch directory cannot do this, and S3 offers no compare-and-swap
 * that every S3 server honours (conditional writes are recent and s3rver, among others, ignores
 * them). What every S3 server since AWS's 2020 consistency change does offer is a listing that
 * shows every write finished before it. On that, a claim is a two-step entry:
 *
 *   1. write my entry  `<folder>/.cog-pipeline-claims/<manifest name>/<my workflow's hash>`
 *   2. list the entries of that manifest: I hold the claim if mine is the only one;
 *      otherwise I delete mine and leave the manifest (perhaps trying again in a moment).
 *
 * Two claimants can never both find themselves alone: whichever wrote second listed after both
 * writes, so it sees the other's entry. Both may back off (then both try again after a random
 * pause, and at worst the next cycle does). Entries are deleted when the claim is done (the raw
 * manifest renamed), when it is undone (recovery puts the manifest back) and when the workflow
 * settles; an entry left by a process killed mid-claim keeps everyone else off the manifest
 * until that launch directory's next cycle finishes or undoes the claim. That is the safe side:
 * the warning names the entry, to be deleted by hand only if its launch directory is gone.
 */

/** An entry younger than this is a claim in progress: worth waiting a moment for. */
const IN_PROGRESS_MS = 60_000;
const ATTEMPTS = 3;

export function claimEntriesPrefix(manifestKey: string): string {
  return `${folderOf(manifestKey)}${CLAIMS_FOLDER}/${baseName(manifestKey)}/`;
}

/** One entry per workflow and manifest: a hash, since a workflow id holds a path. */
export function claimEntryKey(manifestKey: string, workflowId: string): string {
  return claimEntriesPrefix(manifestKey) + createHash('sha256').update(workflowId).digest('hex').slice(0, 24);
}

export type ClaimOutcome = { held: true } | { held: false; why: string };

export type ClaimOptions = {
  /**
   * Keep this workflow's entry even when another is found (a put-back: the entry must stay in
   * place from before the raw manifest reappears until the put-back is done, so that nobody
   * claims it half way). A claimant always withdraws instead, so two never wait on each other.
   */
  keepOnContention?: boolean;
  /** The pause before looking again after two claimants met; random by default. */
  pause?: () => Promise<void>;
  /**
   * Whether another entry, by its owner (a workflow id), is one that nothing will ever delete: a
   * claim of this very launch directory that failed half way (its reply lost, say), whose workflow
   * directory is gone or went on without the manifest. Only the launch directory's own cycle can
   * tell (one runs at a time); such an entry is deleted instead of waited for.
   */
  isLeftOver?: (owner: string) => boolean;
  /** Told of each left-over entry deleted. */
  onLeftOver?: (entryKey: string, owner: string) => void;
};

/**
 * Takes the claim on `manifestKey` for `workflowId`. When it is not held (`why` says who holds
 * it, for the log), no entry of this workflow is left, unless `keepOnContention`.
 */
export async function takeClaim(
  store: S3Store,
  bucket: string,
  manifestKey: string,
  workflowId: string,
  opts: ClaimOptions = {},
): Promise<ClaimOutcome> {
  const mine = claimEntryKey(manifestKey, workflowId);
  const pause = opts.pause ?? (() => sleep(250 + Math.random() * 1500));
  const write = () => store.putText(bucket, mine, `${JSON.stringify({ workflowId, manifest: manifestKey })}\n`, 'application/json');
  await write();
  crashPoint('claim:after-entry');
  // Who wrote each entry, read once: an entry's key is its owner's hash, so its owner never changes.
  const owners = new Map<string, string>();
  const ownerOfEntry = async (key: string) => {
    const owner = owners.get(key) ?? (await ownerOf(store, bucket, key));
    if (owner !== 'unknown') owners.set(key, owner);
    return owner;
  };
  let why = '';
  for (let attempt = 1; ; attempt++) {
    const entries = [];
    for await (const entry of store.listObjects(bucket, claimEntriesPrefix(manifestKey))) entries.push(entry);
    let others = entries.filter((e) => e.key !== mine);
    if (opts.isLeftOver !== undefined && others.length > 0) {
      const live: typeof others = [];
      for (const other of others) {
        const owner = await ownerOfEntry(other.key);
        if (owner !== 'unknown' && opts.isLeftOver(owner)) {
          await store.delete(bucket, other.key);
          opts.onLeftOver?.(other.key, owner);
        } else {
          live.push(other);
        }
      }
      others = live;
    }
    if (others.length === 0) return { held: true };
    if (!opts.keepOnContention) await store.delete(bucket, mine);
    // Ages by the server's own clock (my entry was written just now): no clock skew between hosts.
    const now = entries.find((e) => e.key === mine)?.lastModified.getTime() ?? Date.now();
    const oldest = others.reduce((a, b) => (a.lastModified <= b.lastModified ? a : b));
    const owner = await ownerOfEntry(oldest.key);
    if (now - oldest.lastModified.getTime() >= IN_PROGRESS_MS) {
      return {
        held: false,
        why:
          `another workflow (${owner}) has held a claim on it since ${oldest.lastModified.toISOString()} without finishing; ` +
          `it is left for that launch directory's next cycle (if that launch directory is gone, delete s3://${bucket}/${oldest.key})`,
      };
    }
    why = `another workflow (${owner}) is claiming it right now`;
    if (attempt >= ATTEMPTS) return { held: false, why: `${why}; left for the next cycle` };
    await pause();
    if (!opts.keepOnContention) await write();
  }
}

async function ownerOf(store: S3Store, bucket: string, entryKey: string): Promise<string> {
  try {
    const parsed = JSON.parse(await store.getText(bucket, entryKey)) as { workflowId?: unknown };
    return typeof parsed.workflowId === 'string' ? parsed.workflowId : 'unknown';
  } catch {
    return 'unknown'; // deleted meanwhile, or not written by this pipeline
  }
}

/** Deletes this workflow's entry for the manifest, if there is one (S3 deletes are idempotent). */
export async function releaseClaim(store: S3Store, bucket: string, manifestKey: string, workflowId: string): Promise<void> {
  await store.delete(bucket, claimEntryKey(manifestKey, workflowId));
}
