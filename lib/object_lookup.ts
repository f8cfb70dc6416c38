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
 *
 * Keys in several folders may take fewer requests by one listing of their common folder, full
 * pages instead of a request per folder: with `listed`, when the common folder is known to be
 * small enough; without it (post), by trying (tryCommonFolder).
 */

const DEFAULT_CONCURRENCY = 8;
const PAGE = 1000;
/** The size of a key not found (yet). */
const NOT_FOUND = -1;
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
  // Each key asked about, with its size once found (NOT_FOUND until then): filled in place, one
  // table costs less than a set of the keys and a map of those found growing beside it.
  const sizes = new Map<string, number>();
  for (const key of keys) sizes.set(key, NOT_FOUND);
  const byFolder = new Map<string, string[]>();
  for (const key of sizes.keys()) {
    const folder = folderOf(key);
    const inFolder = byFolder.get(folder);
    if (inFolder === undefined) byFolder.set(folder, [key]);
    else inFolder.push(key);
  }
  const common = commonFolder([...byFolder.keys()]);
  if (opts.listed !== undefined) {
    if (common.startsWith(opts.listed.prefix) && byFolder.size > Math.ceil(opts.listed.objects / PAGE)) {
      for await (const { objects } of store.objectPages(bucket, common)) {
        for (const object of objects) if (sizes.has(object.key)) sizes.set(object.key, object.size);
      }
      return withoutMissing(sizes);
    }
  } else if (byFolder.size > 1) {
    // The fewest requests a lookup per folder makes: a page per 1000 keys of each folder.
    let perFolder = 0;
    for (const inFolder of byFolder.values()) perFolder += Math.ceil(inFolder.length / PAGE);
    if (await tryCommonFolder(store, bucket, common, perFolder, sizes)) return withoutMissing(sizes);
  }
  // Only what the common folder's listing (if any) did not show is looked for again.
  const folders: Array<[string, string[]]> = [];
  for (const [folder, inFolder] of byFolder) {
    const missing = inFolder.filter((k) => sizes.get(k) === NOT_FOUND);
    if (missing.length > 0) folders.push([folder, missing]);
  }
  let next = 0;
  const worker = async () => {
    while (next < folders.length) {
      const [folder, missing] = folders[next++]!;
      await lookInFolder(store, bucket, folder, missing, sizes);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, folders.length) }, worker));
  return withoutMissing(sizes);
}

/** The keys found, with their sizes. */
function withoutMissing(sizes: Map<string, number>): Map<string, number> {
  for (const [key, size] of sizes) if (size === NOT_FOUND) sizes.delete(key);
  return sizes;
}

/**
 * Lists the keys' common folder (subfolders and all), noting what it finds: true once listed to
 * the end (what it did not show is not there). Post's outputs usually fill their folders, side
 * by side under one parent: 100 000 images in folders of 100 are 200 requests this way instead
 * of 1 000. It gives up (false: what is still missing is looked for per folder) once it has made
 * as many requests as the lookup per folder makes at the fewest or, with more pages to come,
 * once it has shown more objects that were not asked about than ones that were: the folders then
 * lie in a larger tree. So trying costs at most about as much again as looking per folder.
 */
async function tryCommonFolder(store: S3Store, bucket: string, common: string, perFolder: number, sizes: Map<string, number>): Promise<boolean> {
  let pages = 0;
  let asked = 0;
  let others = 0;
  for await (const { objects, more } of store.objectPages(bucket, common)) {
    for (const object of objects) {
      if (sizes.has(object.key)) {
        sizes.set(object.key, object.size);
        asked++;
      } else others++;
    }
    if (!more) return true;
    if (++pages >= perFolder || others > asked) return false;
  }
  return true;
}

async function lookInFolder(store: S3Store, bucket: string, folder: string, wanted: string[], sizes: Map<string, number>): Promise<void> {
  const missing = new Set(wanted);
  if (missing.size > 1) {
    let pages = 0;
    for await (const { objects, more } of store.folderPages(bucket, folder)) {
      for (const object of objects) {
        if (missing.delete(object.key)) sizes.set(object.key, object.size);
      }
      // Listed to the end: what it did not show is not there.
      if (missing.size === 0 || !more) return;
      if (++pages >= missing.size) break;
    }
  }
  for (const key of missing) {
    const head = await store.head(bucket, key);
    if (head !== null) sizes.set(key, head.size);
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
