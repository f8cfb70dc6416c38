/**
 * `npm run build` (`npm ci` runs it, as package.json's "prepare", and so scripts/install.sh;
 * `npm test` before the tests):
 * compiles cog_pipeline.ts and lib/ to JavaScript in dist/, which the crondor job and the post
 * step run with plain Node (lib/build.ts says why). TypeScript only strips the types and rewrites
 * the `.ts` of relative imports to `.js` (`rewriteRelativeImportExtensions`), one file at a time;
 * `npm run typecheck` and `npm test` check the types (and `isolatedModules` that one file at a
 * time is enough).
 *
 * The new build is written beside dist/ and then put in its place with a rename, so a job
 * starting meanwhile finds the old build or the new one, never half of one.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { buildInputs, digest, DIST_DIR, REPOSITORY_ROOT, type BuildRecord } from '../lib/build.ts';

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2023,
  module: ts.ModuleKind.ESNext,
  rewriteRelativeImportExtensions: true,
  esModuleInterop: true,
};

function build(): number {
  const staging = path.join(REPOSITORY_ROOT, `.dist-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  // Made at install time, never committed.
  writeFileSync(path.join(staging, '.gitignore'), '*\n');
  const record: BuildRecord = { files: {} };
  const problems: string[] = [];
  let compiled = 0;
  try {
    for (const file of buildInputs()) {
      const bytes = readFileSync(path.join(REPOSITORY_ROOT, file));
      record.files[file] = digest(bytes);
      if (!file.endsWith('.ts') || file.startsWith('scripts/')) continue;
      const out = ts.transpileModule(bytes.toString('utf8'), { compilerOptions: COMPILER_OPTIONS, fileName: file, reportDiagnostics: true });
      for (const d of out.diagnostics ?? []) problems.push(`${file}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
      const target = path.join(staging, file.replace(/\.ts$/, '.js'));
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, out.outputText);
      compiled++;
    }
    if (problems.length > 0) {
      process.stderr.write(`build: not built, dist/ left as it was:\n${problems.map((p) => `  ${p}\n`).join('')}`);
      return 1;
    }
    writeFileSync(path.join(staging, 'build.json'), JSON.stringify(record, null, 2) + '\n');
    replaceDist(staging);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  process.stdout.write(`build: ${compiled} files compiled to ${path.relative(process.cwd(), DIST_DIR) || '.'}/\n`);
  return 0;
}

/**
 * Puts the staged build in dist/'s place: two renames, so dist/ is missing for only a moment.
 * Another build finishing at the same moment (two `npm test` at once) makes the second rename
 * fail; it is tried again.
 */
function replaceDist(staging: string): void {
  const old = `${staging}-old`;
  for (let attempt = 1; ; attempt++) {
    try {
      renameSync(DIST_DIR, old);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      renameSync(staging, DIST_DIR);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= 5 || (code !== 'ENOTEMPTY' && code !== 'EEXIST')) throw err;
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  }
}

process.exitCode = build();
