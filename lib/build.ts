import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The build the jobs run. People type `npx tsx cog_pipeline.ts` (tsx compiles the sources as they
 * load); the crondor job and the post step run plain Node on `dist/cog_pipeline.js`, the same
 * sources compiled to JavaScript by `npm run build` (scripts/build.ts), which `npm ci` runs
 * (package.json's "prepare"; so does scripts/install.sh). Every 15 minutes for months, tsx's
 * start-up (it compiles every module as it loads) would cost more than a cycle with nothing to do.
 *
 * `dist/build.json` records a digest of every file the build was made from, so a launch from the
 * sources can tell whether the build is theirs (invocation.ts).
 */

/** Whether this module runs from the build (`dist/lib/build.js`) or from the sources (`lib/build.ts`). */
export const RUNNING_BUILT = import.meta.url.endsWith('.js');

/**
 * The repository's root, from the sources or from the build alike: templates, the node
 * executable (`submit/`) and `node_modules/` are read from it, never copied into `dist/`.
 */
export const REPOSITORY_ROOT = fileURLToPath(new URL(RUNNING_BUILT ? '../../' : '../', import.meta.url));

export const DIST_DIR = path.join(REPOSITORY_ROOT, 'dist');
/** What the jobs run. */
export const BUILT_ENTRY = path.join(DIST_DIR, 'cog_pipeline.js');
export const BUILD_RECORD = path.join(DIST_DIR, 'build.json');

/** The build's inputs, relative to the root: the program, lib/, and the build script (its options). */
export function buildInputs(root = REPOSITORY_ROOT): string[] {
  const lib = readdirSync(path.join(root, 'lib'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join('lib', f.split(path.sep).join('/')));
  return ['cog_pipeline.ts', ...lib.sort(), 'scripts/build.ts'];
}

/** The files a build is made from, by path relative to the root, each with the SHA-256 of its bytes. */
export type BuildRecord = { files: Record<string, string> };

export function digest(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Why `dist/` is not a build of the sources as they are now, or undefined when it is: missing,
 * or made from other sources (a file changed, added or removed since `npm run build`).
 */
export function buildProblem(root = REPOSITORY_ROOT): string | undefined {
  let record: BuildRecord;
  try {
    record = JSON.parse(readFileSync(path.join(root, 'dist', 'build.json'), 'utf8')) as BuildRecord;
  } catch {
    return `${path.join(root, 'dist')} holds no build`;
  }
  const built = new Map(Object.entries(record.files ?? {}));
  const changed: string[] = [];
  for (const file of buildInputs(root)) {
    let now: string;
    try {
      now = digest(readFileSync(path.join(root, file)));
    } catch {
      continue; // gone since listed: counted below as removed
    }
    const then = built.get(file);
    if (then === undefined) changed.push(`${file} added`);
    else if (then !== now) changed.push(`${file} changed`);
    built.delete(file);
  }
  for (const file of built.keys()) changed.push(`${file} removed`);
  if (changed.length === 0) return undefined;
  const shown = changed.slice(0, 3).join(', ') + (changed.length > 3 ? `, and ${changed.length - 3} more` : '');
  return `the build in ${path.join(root, 'dist')} is older than the sources (${shown})`;
}
