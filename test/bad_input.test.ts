import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { parseManifest } from '../lib/manifest.ts';
import { runCli } from './support/run_cli.ts';

/**
 * Bad input, each case with the exact message the user sees. The README's "What happens when
 * things go wrong" lists the same cases. Command-line mistakes exit 2 before anything is read or
 * submitted; a manifest's bad rows go to its failed CSV, as written, with the reason in post.out.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'cog-bad-input-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const key = path.join(dir, 'keyid');
const empty = path.join(dir, 'empty');
writeFileSync(key, 'AKIAEXAMPLE\n');
writeFileSync(empty, '');

const S3 = ['-a', key, '-s', key, '-e', 'http://127.0.0.1:9'];
const BUCKETS = ['--input-bucket', 'in', '--output-bucket', 'out'];
const API = ['--api-url', 'http://127.0.0.1:9'];
const launch = (...over: string[]) => [...S3, ...BUCKETS, '-p', '*raw.csv', ...API, ...over];

/** [what the user did, arguments, the first line of what they see] */
const COMMAND_LINES: Array<[string, string[], string]> = [
  ['no flags at all', [], '--input-bucket: is required; --output-bucket: is required; --pattern: is required'],
  ['an access key without an endpoint', ['-a', key, ...BUCKETS, '-p', 'x', ...API], 'access/secret keys must be provided together with an endpoint (-a FILE -s FILE -e HOST), or none of them'],
  ['an endpoint with a space', ['-a', key, '-s', key, '-e', 'web s3.wisc.edu', ...BUCKETS, '-p', 'x', ...API], 'Invalid S3 endpoint "web s3.wisc.edu": it contains whitespace'],
  ['an endpoint that is not http(s)', ['-a', key, '-s', key, '-e', 'ftp://x', ...BUCKETS, '-p', 'x', ...API], 'Invalid S3 endpoint "ftp://x": scheme must be http or https, not ftp'],
  ['an endpoint with a path', ['-a', key, '-s', key, '-e', 'web.s3.wisc.edu/path', ...BUCKETS, '-p', 'x', ...API], 'Invalid S3 endpoint "web.s3.wisc.edu/path": expected a host name (web.s3.wisc.edu), host:port, or an http(s):// URL'],
  ['an endpoint with credentials in it', ['-a', key, '-s', key, '-e', 'https://AKIA:secret@s3.example.edu', ...BUCKETS, '-p', 'x', ...API], 'Invalid S3 endpoint "https://***@s3.example.edu": it must not contain credentials'],
  ['an endpoint port out of range', ['-a', key, '-s', key, '-e', 'web.s3.wisc.edu:99999', ...BUCKETS, '-p', 'x', ...API], 'Invalid S3 endpoint "web.s3.wisc.edu:99999": port 99999 is out of range'],
  ['a key file that does not exist', ['-a', path.join(dir, 'nope'), '-s', key, '-e', 'http://127.0.0.1:9', ...BUCKETS, '-p', 'x', ...API], `cannot read the S3 access key file ${path.join(dir, 'nope')}: ENOENT`],
  ['an empty key file', ['-a', empty, '-s', key, '-e', 'http://127.0.0.1:9', ...BUCKETS, '-p', 'x', ...API], `the S3 access key file ${empty} is empty`],
  ['no htcondor-api URL', [...S3, ...BUCKETS, '-p', 'x'], 'no htcondor-api URL: give --api-url URL or set HTCONDOR_API_URL'],
  ['an htcondor-api URL that is not http(s)', [...S3, ...BUCKETS, '-p', 'x', '--api-url', 'ap.example.edu'], '--api-url must be an http(s) URL, got "ap.example.edu"'],
  ['a password in the htcondor-api URL', [...S3, ...BUCKETS, '-p', 'x', '--api-url', 'https://sco:pw@ap.example.edu'], '--api-url must not hold credentials ("https://***@ap.example.edu"); give the token with --api-token-file'],
  ['a token file that does not exist', launch('--api-token-file', path.join(dir, 'token')), `cannot read the htcondor-api token file ${path.join(dir, 'token')}: ENOENT`],
  ['a bucket name with a slash', [...S3, '--input-bucket', 'in/sub', '--output-bucket', 'out', '-p', 'x', ...API], '--input-bucket: a bucket name has no "/" or spaces'],
  ['an empty bucket name', [...S3, '--input-bucket', '', '--output-bucket', 'out', '-p', 'x', ...API], '--input-bucket: is empty'],
  ['an empty pattern', [...S3, ...BUCKETS, '-p', '', ...API], '--pattern: is empty'],
  ['a pattern ending in a space', [...S3, ...BUCKETS, '-p', '*raw.csv ', ...API], '--pattern: starts or ends with white space, which a submit description would drop'],
  ['a pattern ending in a backslash', [...S3, ...BUCKETS, '-p', '*raw\\', ...API], '--pattern: ends in a backslash, which a submit description reads as a line continuation'],
  ['a pattern with $(...)', [...S3, ...BUCKETS, '-p', '*$(Cluster)raw.csv', ...API], '--pattern: holds "$(", "$$" or "$NAME(", which HTCondor reads as a macro'],
  ['a pattern with $ENV(...)', [...S3, ...BUCKETS, '-p', '$ENV(HOME)*raw.csv', ...API], '--pattern: holds "$(", "$$" or "$NAME(", which HTCondor reads as a macro'],
  ['a pattern with a line break', [...S3, ...BUCKETS, '-p', '*raw\n.csv', ...API], '--pattern: holds a control character or a line break'],
  ['a key file path with $(...)', ['-a', '/home/sco/$(x)', '-s', key, '-e', 'http://127.0.0.1:9', ...BUCKETS, '-p', 'x', ...API], '--access-key: holds "$(", "$$" or "$NAME(", which HTCondor reads as a macro'],
  ['-m that is not a number', launch('-m', 'lots'), '--max-running: must be a whole number written in decimal digits'],
  ['-m in hexadecimal', launch('-m', '0x10'), '--max-running: must be a whole number written in decimal digits'],
  ['-m 0', launch('-m', '0'), '--max-running: must be at least 1'],
  ['-m past DAGMan\'s limit', launch('-m', '2147483648'), "--max-running: must be at most 2147483647 (DAGMan's limit)"],
  ['a relative --dagman', launch('--dagman', 'condor_dagman'), '--dagman: must be an absolute path'],
  ['an unknown mode word', ['frobnicate'], 'unknown mode "frobnicate": the first word is crondor or post, or none to launch'],
];

test(`command-line mistakes (${COMMAND_LINES.length}) exit 2 with one clear line, before anything is read or submitted`, async () => {
  const results: Array<Awaited<ReturnType<typeof runCli>>> = [];
  for (let i = 0; i < COMMAND_LINES.length; i += 4) {
    results.push(...(await Promise.all(COMMAND_LINES.slice(i, i + 4).map(([, args]) => runCli(args, { cwd: dir })))));
  }
  COMMAND_LINES.forEach(([what, , message], i) => {
    const r = results[i]!;
    assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
    assert.equal(r.stderr.split('\n')[0], `cog_pipeline.ts: error: ${message}`, what);
    assert.match(r.stderr, /\(run with --help for usage\)/, what);
  });
  assert.ok(COMMAND_LINES.length >= 25);
});

/** [what the user wrote in a manifest, the row, the reason post.out and the failed CSV's row give] */
const MANIFEST_ROWS: Array<[string, string, string]> = [
  ['no band column', 'a.tif', 'expected 2 columns (image key, band count)'],
  ['a third column', 'a.tif,1,2', 'expected 2 columns (image key, band count)'],
  ['not a .tif', 'a.jpg,1', 'the image key does not end in .tif'],
  ['a leading slash', '/a.tif,1', 'the image key starts with "/" (keys are relative to the bucket)'],
  ['a folder', 'a/,1', 'the image key names a folder, not an image; the image key does not end in .tif'],
  ['no key', ',1', 'the image key is empty; the image key does not end in .tif'],
  ['a stray double quote', 'a"b.tif,1', 'not valid CSV: Invalid Opening Quote: a quote is found on field 0, value is "a"'],
  ['an unclosed quote', '"a.tif,1', 'not valid CSV: Quote Not Closed: the parsing is finished with an opening quote'],
  ['a single quote in the key', "a'b.tif,1", 'the image key contains a single quote'],
  ['a backslash in the key', 'a\\b.tif,1', 'the image key contains a backslash'],
  ['a $ in the key', 'a$b.tif,1', 'the image key contains a "$" (HTCondor macro syntax)'],
  ['a semicolon in the key', 'a;b.tif,1', 'the image key contains a semicolon'],
  ['an = in the key', 'a=b.tif,1', 'the image key contains an "="'],
  ['a tab in the key', 'a\tb.tif,1', 'the image key contains a control character'],
  ['a key longer than S3 allows', `${'x'.repeat(1100)}.tif,1`, 'the image key is longer than S3 allows (1024 bytes)'],
  ['bands not a number', 'a.tif,x', 'the band count is not a whole number'],
  ['negative bands', 'a.tif,-1', 'the band count is not a whole number'],
  ['fractional bands', 'a.tif,1.5', 'the band count is not a whole number'],
  ['0 bands', 'a.tif,0', 'the band count must be between 1 and 255'],
  ['256 bands', 'a.tif,256', 'the band count must be between 1 and 255'],
];

test(`bad manifest rows (${MANIFEST_ROWS.length}) are set aside as written, each with its reason, and do not stop the good rows`, () => {
  const text = ['good/first.tif,3', ...MANIFEST_ROWS.map(([, row]) => row), 'good/last.tif,1'].join('\n');
  const { rows, rejected } = parseManifest(text);
  assert.deepEqual(rows.map((r) => r.key), ['good/first.tif', 'good/last.tif']);
  assert.deepEqual(
    rejected.map((r) => [r.line, r.raw, r.reason]),
    MANIFEST_ROWS.map(([, row, reason], i) => [i + 2, row, reason]),
  );
  assert.ok(COMMAND_LINES.length + MANIFEST_ROWS.length >= 40);
});
