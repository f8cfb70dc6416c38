/**
 * Before measuring: the pipeline's build, and the baseline as plain JavaScript.
 *
 * The jobs may run a build of the sources rather than the sources (package.json's `build`
 * script, when there is one, makes it; a launch refuses a stale one). The bench measures the
 * sources as they are now, so it runs that script first, as installing does.
 *
 * The baseline (baseline.ts) is compiled once to bench/.build/baseline.mjs and run with plain
 * Node, so its fixed cost is Node's and the libraries' it loads, not a TypeScript loader's: the
 * floor a TypeScript tool that uses the AWS SDK can reach. bench/.build/ resolves node_modules
 * from the repository, as baseline.ts does.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export type BuildOutcome = { ran: boolean; ok: boolean; seconds: number; said: string };

export function buildProject(repo: string): BuildOutcome {
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  if (pkg.scripts?.build === undefined) return { ran: false, ok: true, seconds: 0, said: 'no build script' };
  const started = Date.now();
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', '--silent', 'build'], { cwd: repo, encoding: 'utf8' });
  const said = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  return { ran: true, ok: result.status === 0, seconds: (Date.now() - started) / 1000, said: said || String(result.error ?? '') };
}

export function compileBaseline(source: string, outFile: string): void {
  const out = ts.transpileModule(readFileSync(source, 'utf8'), {
    fileName: source,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2023, module: ts.ModuleKind.ESNext, esModuleInterop: true },
  });
  const problems = (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  if (problems.length > 0) throw new Error(`compiling ${source}: ${problems.join('; ')}`);
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, out.outputText);
}
