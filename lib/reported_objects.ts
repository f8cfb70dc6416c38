import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Objects the pipeline has warned about once and then leaves alone (something matching the
 * pattern that is not a manifest; a processing object of another launch directory), so that a
 * warning is not repeated every quarter hour. Kept in the launch directory as
 * `{"<bucket>/<key>": "<etag>"}`; an object written again (a new ETag) is reported again.
 */
export type ReportedObjects = Map<string, string>;

/** What is not a manifest, matching the pattern (lib/crondor.ts). */
export const NOT_MANIFESTS_FILE = '.not-manifests.json';
/** Processing objects of other launch directories (lib/recovery.ts). */
export const LEFT_ALONE_FILE = '.processing-left-alone.json';

export const reportedEntry = (bucket: string, key: string) => `${bucket}/${key}`;

export async function loadReported(launchDir: string, file: string): Promise<ReportedObjects> {
  try {
    const parsed = JSON.parse(await readFile(path.join(launchDir, file), 'utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return new Map(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // None yet, or unreadable: everything is looked at (and reported) again.
  }
  return new Map();
}

/** Writes what is to be remembered now (objects no longer there are forgotten). */
export async function saveReported(launchDir: string, file: string, entries: ReportedObjects): Promise<void> {
  const target = path.join(launchDir, file);
  await writeFile(`${target}.tmp`, JSON.stringify(Object.fromEntries(entries), null, 1) + '\n');
  await rename(`${target}.tmp`, target);
}
