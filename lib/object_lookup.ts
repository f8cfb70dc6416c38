import { folderOf } from './naming.ts';
import type { S3Store } from './s3_store.ts';

/**
 * Which of some keys exist in a bucket, and their sizes, looking only where they would be: the
 * crondor cycle checks the images its manifests name, post the COGs and previews it expects.
 * Neither lists the whole bucket (whose size has nothing to do with the manifest's), and memory
 * holds only the keys asked about.
 *
 * Per folder: one key is a HEAD request; several are found by listing that folder a page (1000
 * objects) at a time until all are found, and if the folder turns out to be large (as many pages
 * read as keys still missing), the rest are asked for one HEAD each. So a folder never costs more
 * than about twice the cheaper of the two ways, whatever its size, and a listing's order (which
 * not every S3 server gets right for non-ASCII keys) is never relied on. Up to `concurrency`
 * folders are looked at at once.
 */

const DEFAULT_CONCURRENCY = 8;
const PAGE = 1000;

export type LookupOptions = {
  concurrency?: number;
  /**
   * A listing the caller has just made (the crondor cycle's, to find manifests): how many objects
   * are under `prefix`. When the keys span more folders than that listing took pages, one listing
   * of their common folder (which holds at most those objects) is cheaper than one per folder.
   */
  listed?: { prefix: string; objects: number };
};

export async function lookUpObjects(
  store: S3Store,
  bucket: string,
  keys: Iterable<string>,
  opts: LookupOptions = {},
): Promise<Map<string, number>> {
  const byFolder = new Map<string, Set<string>>();
  for (const key of keys) {
    const folder = folderOf(key);
    let wanted = byFolder.get(folder);
    if (wanted === undefined) byFolder.set(folder, (wanted = new Set()));
    wanted.add(key);
  }
  const found = new Map<string, number>();
  const common = commonFolder([...byFolder.keys()]);
  if (opts.listed !== undefined && common.startsWith(opts.listed.prefix) && byFolder.size > Math.ceil(opts.listed.objects / PAGE)) {
    for await (const object of store.listObjects(bucket, common)) {
      if (byFolder.get(folderOf(object.key))?.has(object.key)) found.set(object.key, object.size);
    }
    return found;
  }
  const folders = [...byFolder];
  let next = 0;
  const worker = async () => {
    while (next < folders.length) {
      const [folder, wanted] = folders[next++]!;
      await lookInFolder(store, bucket, folder, wanted, found);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, folders.length) }, worker));
  return found;
}

async function lookInFolder(store: S3Store, bucket: string, folder: string, wanted: Set<string>, found: Map<string, number>): Promise<void> {
  const missing = new Set(wanted);
  if (missing.size > 1) {
    let pages = 0;
    for await (const { objects, more } of store.folderPages(bucket, folder)) {
      for (const object of objects) {
        if (missing.delete(object.key)) found.set(object.key, object.size);
      }
      // Listed to the end: what it did not show is not there.
      if (missing.size === 0 || !more) return;
      if (++pages >= missing.size) break;
    }
  }
  for (const key of missing) {
    const head = await store.head(bucket, key);
    if (head !== null) found.set(key, head.size);
  }
}

/** The longest folder (ending in `/`, or '' for the bucket root) that holds all the folders. */
function commonFolder(folders: string[]): string {
  if (folders.length === 0) return '';
  let common = folders[0]!;
  for (const folder of folders) {
    while (!folder.startsWith(common)) common = common.slice(0, common.lastIndexOf('/', common.length - 2) + 1);
  }
  return common;
}
