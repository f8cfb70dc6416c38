import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SCRIPT = fileURLToPath(new URL('../../cog_pipeline.ts', import.meta.url));
// What `npx tsx` runs, so the CLI can be started from any directory, as users do.
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
const run = promisify(execFile);

/** Runs cog_pipeline.ts as a user would; resolves with its exit code and output. */
export async function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [TSX, SCRIPT, ...args], {
      cwd: opts.cwd ?? path.dirname(SCRIPT),
      env: { ...process.env, HTCONDOR_API_URL: '', HTCONDOR_API_TOKEN_FILE: '', ...opts.env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
