import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConformanceCase } from './cases.ts';

/**
 * Runs golang-htcondor's own submit path (main.go beside this file) on submit descriptions, with
 * Go's module tooling fetching the pinned module. Used by `npm run conformance` to write
 * vectors.json and by the conformance test to check that file against the real code.
 */

export const GOLANG_HTCONDOR = 'github.com/bbockelm/golang-htcondor v0.12.4';
const MIN_GO = [1, 25, 7]; // the `go` line of golang-htcondor v0.12.4's go.mod

/** A case and what the real code made of it: one job ad per proc, or the error it gave. */
export type Vector = ConformanceCase & {
  ads?: Array<{ attributes: Record<string, string>; needs_spooling: boolean }>;
  error?: string;
};

export type RealParserRun = { ok: true; vectors: Vector[] } | { ok: false; why: string };

export const VECTORS_FILE = fileURLToPath(new URL('./vectors.json', import.meta.url));
const PROGRAM_DIR = fileURLToPath(new URL('.', import.meta.url));

/** `{ok: false}` when Go is missing or too old, or the module cannot be fetched; throws on any other failure. */
export function runRealParser(cases: ConformanceCase[]): RealParserRun {
  const version = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (version.error) return { ok: false, why: 'Go is not on PATH' };
  const found = /^go(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.stdout.trim());
  const numbers = found ? [Number(found[1]), Number(found[2]), Number(found[3] ?? 0)] : [];
  if (!found || older(numbers, MIN_GO)) return { ok: false, why: `${version.stdout.trim() || 'this Go'} is older than go${MIN_GO.join('.')}, which the module needs` };

  // A scratch copy: Go may add to go.sum, and the repository must not change under a test.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cog-conformance-'));
  try {
    for (const name of ['go.mod', 'go.sum', 'main.go']) copyFileSync(path.join(PROGRAM_DIR, name), path.join(dir, name));
    const run = spawnSync('go', ['run', '-mod=mod', '.'], {
      cwd: dir,
      input: JSON.stringify(cases),
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    if (run.status === 0) return { ok: true, vectors: JSON.parse(run.stdout) as Vector[] };
    const fetchFailure = run.stderr.split('\n').find((line) => /reading https?:|403 Forbidden|404 Not Found|dial tcp|no such host|module lookup disabled|verifying .*go\.mod/.test(line));
    if (fetchFailure !== undefined) return { ok: false, why: `Go could not fetch ${GOLANG_HTCONDOR}'s modules (${fetchFailure.trim()})` };
    throw new Error(`the conformance program failed (exit ${run.status ?? run.signal}):\n${run.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function older(a: number[], b: number[]): boolean {
  for (let i = 0; i < b.length; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) < b[i]!;
  return false;
}
