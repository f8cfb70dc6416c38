import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Objects that match the pattern but are not manifests (an image, a data CSV), by content: they
 * are left where they are and reported once, not every quarter hour. Kept in the launch directory
 * as `{"<bucket>/<key>": "<etag>"}`; an object written again (a new ETag) is looked at again.
 */

export const NOT_MANIFESTS_FILE = '.not-manifests.json';

export type NotManifests = Map<string, string>;

const entry = (bucket: string, key: string) => `${bucket}/${key}`;

export async function loadNotManifests(launchDir: string): Promise<NotManifests> {
  try {
    const parsed = JSON.parse(await readFile(path.join(launchDir, NOT_MANIFESTS_FILE), 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return new Map(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // None yet, or unreadable: everything is looked at (and reported) again.
  }
  return new Map();
}

export function reportedBefore(known: NotManifests, bucket: string, key: string, etag: string): boolean {
  return known.get(entry(bucket, key)) === etag;
}

/** Writes the objects that are not manifests now (so deleted ones are forgotten). */
export async function saveNotManifests(launchDir: string, bucket: string, objects: Array<{ key: string; etag: string }>): Promise<void> {
  const file = path.join(launchDir, NOT_MANIFESTS_FILE);
  const data = Object.fromEntries(objects.map((o) => [entry(bucket, o.key), o.etag]));
  await writeFile(`${file}.tmp`, JSON.stringify(data, null, 1) + '\n');
  await rename(`${file}.tmp`, file);
}
