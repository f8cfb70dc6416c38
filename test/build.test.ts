import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { BUILT_ENTRY, buildInputs, buildProblem, digest, REPOSITORY_ROOT, type BuildRecord } from '../lib/build.ts';
import { selfInvocation } from '../lib/invocation.ts';
import { submitFilePath } from '../lib/template.ts';

const run = promisify(execFile);
const TSX = path.join(REPOSITORY_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'cog-build-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function node(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, args, { cwd, env: { ...process.env, HTCONDOR_API_URL: '', HTCONDOR_API_TOKEN_FILE: '' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('jobs run the build with plain Node: this Node.js binary on dist/cog_pipeline.js, no tsx', () => {
  // npm test builds first, as scripts/install.sh does.
  assert.equal(buildProblem(), undefined);
  assert.deepEqual(selfInvocation(), { program: process.execPath, args: [path.join(REPOSITORY_ROOT, 'dist', 'cog_pipeline.js')] });
  assert.ok(existsSync(BUILT_ENTRY));
});

test('the build reads the templates and the node executable from the repository, as the sources do', async () => {
  const built = (await import(pathToFileURL(path.join(REPOSITORY_ROOT, 'dist', 'lib', 'template.js')).href)) as typeof import('../lib/template.ts');
  assert.equal(built.submitFilePath('generate_cogs.sh'), path.join(REPOSITORY_ROOT, 'submit', 'generate_cogs.sh'));
  assert.equal(built.submitFilePath('generate_cogs.sh'), submitFilePath('generate_cogs.sh'));
  assert.match(built.renderTemplate('dag_node.dag', {
    NODE_NAME: 'n_0', SUBMIT_FILE: 'cog_node.sub', FULL_INFILE: '"a/b.tif"', INFILE: '"b.tif"', FULL_OUTFILE: '"a/b.jpg"',
    OUTFILE: '"b.jpg"', BANDS: '"1"', DISK_KIB: '"2097152"', LOGNAME: '"b.tif"',
  }), /^JOB n_0 cog_node\.sub\n/);
});

test('a build is current until a source it was made from changes, is added or is removed', () => {
  const root = path.join(scratch, 'layout');
  mkdirSync(path.join(root, 'lib', 'sub'), { recursive: true });
  mkdirSync(path.join(root, 'scripts'));
  for (const f of ['cog_pipeline.ts', 'lib/a.ts', 'lib/sub/b.ts', 'lib/types.d.ts', 'scripts/build.ts']) writeFileSync(path.join(root, f), `// ${f}\n`);
  assert.deepEqual(buildInputs(root), ['cog_pipeline.ts', 'lib/a.ts', 'lib/sub/b.ts', 'scripts/build.ts']);
  assert.equal(buildProblem(root), `${path.join(root, 'dist')} holds no build`);

  const record: BuildRecord = { files: Object.fromEntries(buildInputs(root).map((f) => [f, digest(`// ${f}\n`)])) };
  mkdirSync(path.join(root, 'dist'));
  writeFileSync(path.join(root, 'dist', 'build.json'), JSON.stringify(record));
  assert.equal(buildProblem(root), undefined);

  appendFileSync(path.join(root, 'lib', 'a.ts'), 'export {};\n');
  writeFileSync(path.join(root, 'lib', 'c.ts'), '');
  rmSync(path.join(root, 'lib', 'sub', 'b.ts'));
  assert.equal(
    buildProblem(root),
    `the build in ${path.join(root, 'dist')} is older than the sources (lib/a.ts changed, lib/c.ts added, lib/sub/b.ts removed)`,
  );
});

test('on a fresh copy, a launch refuses until npm run build, and again once a source changes', async () => {
  const copy = path.join(scratch, 'copy');
  mkdirSync(copy);
  for (const f of ['cog_pipeline.ts', 'lib', 'scripts', 'submit', 'package.json', 'tsconfig.json']) cpSync(path.join(REPOSITORY_ROOT, f), path.join(copy, f), { recursive: true });
  symlinkSync(path.join(REPOSITORY_ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  for (const f of ['keyid', 'secret', 'token']) writeFileSync(path.join(scratch, f), 'x\n');
  const launch = [
    '-a', path.join(scratch, 'keyid'), '-s', path.join(scratch, 'secret'), '-e', 'http://127.0.0.1:9',
    '--input-bucket', 'in', '--output-bucket', 'out', '-p', '*raw.csv',
    '--api-url', 'http://127.0.0.1:9', '--api-token-file', path.join(scratch, 'token'),
  ];

  const before = await node([TSX, path.join(copy, 'cog_pipeline.ts'), ...launch], scratch);
  assert.equal(before.code, 1, before.stderr);
  assert.equal(
    before.stderr,
    `cog_pipeline.ts: error: ${path.join(copy, 'dist')} holds no build; the jobs run the build: run "npm run build" (scripts/install.sh does), then try again\n`,
  );

  const built = await node(['--import', 'tsx', 'scripts/build.ts'], copy);
  assert.equal(built.code, 0, built.stderr);
  assert.ok(existsSync(path.join(copy, 'dist', 'cog_pipeline.js')));
  assert.equal(buildProblem(copy), undefined);
  const help = await node([path.join(copy, 'dist', 'cog_pipeline.js'), 'crondor', '--help'], scratch);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: cog_pipeline\.ts crondor/);

  appendFileSync(path.join(copy, 'lib', 'naming.ts'), '// edited\n');
  const after = await node([TSX, path.join(copy, 'cog_pipeline.ts'), ...launch], scratch);
  assert.equal(after.code, 1, after.stderr);
  assert.match(after.stderr, /is older than the sources \(lib\/naming\.ts changed\); the jobs run the build: run "npm run build"/);
});
