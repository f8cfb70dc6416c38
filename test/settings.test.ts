import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { endpointUrl } from '../lib/endpoint.ts';
import { loadS3Settings, resolveApiAccess, resolveS3Access, UsageError } from '../lib/settings.ts';

const home = mkdtempSync(path.join(os.tmpdir(), 'cog-settings-'));
after(() => rmSync(home, { recursive: true, force: true }));

test('no S3 flags: the CHTC defaults under ~/.chtc_s3', () => {
  assert.deepEqual(resolveS3Access({}, '/home/sco', '/work'), {
    accessKeyFile: '/home/sco/.chtc_s3/access.key',
    secretKeyFile: '/home/sco/.chtc_s3/secret.key',
    endpoint: 's3dev.chtc.wisc.edu',
  });
});

test('all three S3 flags: used, with key files made absolute', () => {
  assert.deepEqual(resolveS3Access({ accessKey: 'keyid', secretKey: '../secret', s3Endpoint: 'web.s3.wisc.edu' }, '/home/sco', '/home/sco/run'), {
    accessKeyFile: '/home/sco/run/keyid',
    secretKeyFile: '/home/sco/secret',
    endpoint: 'web.s3.wisc.edu',
  });
});

test('any other combination is an error', () => {
  for (const partial of [{ accessKey: 'a' }, { accessKey: 'a', secretKey: 's' }, { s3Endpoint: 'h' }]) {
    assert.throws(() => resolveS3Access(partial, home, home), (err: unknown) => err instanceof UsageError && /provided together with an endpoint/.test(err.message));
  }
});

test('key files are read with surrounding white space stripped; the region comes from AWS_REGION', () => {
  writeFileSync(path.join(home, 'k'), '  AKID\n');
  writeFileSync(path.join(home, 's'), '\tSECRET \n\n');
  const access = { accessKeyFile: path.join(home, 'k'), secretKeyFile: path.join(home, 's'), endpoint: 'http://127.0.0.1:9000' };
  assert.deepEqual(loadS3Settings(access, {}), { endpoint: 'http://127.0.0.1:9000', accessKeyId: 'AKID', secretAccessKey: 'SECRET', region: 'us-east-1' });
  assert.equal(loadS3Settings(access, { AWS_REGION: 'us-west-2' }).region, 'us-west-2');
});

test('a missing key file is named, and its content never appears in errors', () => {
  writeFileSync(path.join(home, 'empty'), ' \n');
  assert.throws(() => loadS3Settings({ accessKeyFile: path.join(home, 'nope'), secretKeyFile: path.join(home, 's'), endpoint: 'h' }, {}), /cannot read the S3 access key file .*nope: ENOENT/);
  assert.throws(() => loadS3Settings({ accessKeyFile: path.join(home, 'k'), secretKeyFile: path.join(home, 'empty'), endpoint: 'h' }, {}), /S3 secret key file .*empty is empty/);
});

test('-e takes a bare host (HTTPS) or a full URL', () => {
  assert.equal(endpointUrl('web.s3.wisc.edu'), 'https://web.s3.wisc.edu');
  assert.equal(endpointUrl('http://127.0.0.1:9000/'), 'http://127.0.0.1:9000');
  assert.throws(() => endpointUrl('ftp://x'));
});

test('htcondor-api: flags win over the environment; the token defaults to the first file in ~/.condor/tokens.d', () => {
  assert.deepEqual(resolveApiAccess({ apiUrl: 'https://ap:8080', apiTokenFile: 't' }, { HTCONDOR_API_URL: 'http://other' }, home, '/run'), { url: 'https://ap:8080', tokenFile: '/run/t' });
  assert.equal(resolveApiAccess({}, { HTCONDOR_API_URL: 'http://ap' }, home, '/run').tokenFile, undefined);
  mkdirSync(path.join(home, '.condor', 'tokens.d'), { recursive: true });
  writeFileSync(path.join(home, '.condor', 'tokens.d', 'b-token'), 'x');
  writeFileSync(path.join(home, '.condor', 'tokens.d', 'a-token'), 'x');
  assert.equal(resolveApiAccess({}, { HTCONDOR_API_URL: 'http://ap' }, home, '/run').tokenFile, path.join(home, '.condor', 'tokens.d', 'a-token'));
  assert.throws(() => resolveApiAccess({}, {}, home, '/run'), /--api-url URL or set HTCONDOR_API_URL/);
  assert.throws(() => resolveApiAccess({ apiUrl: 'ap.example.edu' }, {}, home, '/run'), /must be an http\(s\) URL/);
});

test('credentials inside an S3 endpoint or an htcondor-api URL are refused without being echoed', () => {
  assert.throws(
    () => endpointUrl('https://AKIAEXAMPLE:s3cr3t-value@s3.example.edu'),
    (err: Error) => /must not contain credentials/.test(err.message) && err.message.includes('https://***@s3.example.edu') && !err.message.includes('s3cr3t-value'),
  );
  assert.throws(
    () => resolveApiAccess({ apiUrl: 'https://sco:hunter2@ap.example.edu:8080' }, {}, '/home/sco', '/home/sco'),
    (err: Error) => err instanceof UsageError && /--api-url must not hold credentials \("https:\/\/\*\*\*@ap\.example\.edu:8080"\)/.test(err.message) && !err.message.includes('hunter2'),
  );
  assert.throws(
    () => resolveApiAccess({ apiUrl: 'ftp://sco:hunter2@ap' }, {}, '/home/sco', '/home/sco'),
    (err: Error) => err instanceof UsageError && !err.message.includes('hunter2'),
  );
});

test('an empty HTCONDOR_API_TOKEN_FILE is no setting: the token comes from ~/.condor/tokens.d', () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'cog-home-'));
  try {
    mkdirSync(path.join(home, '.condor', 'tokens.d'), { recursive: true });
    writeFileSync(path.join(home, '.condor', 'tokens.d', 'ap'), 'token\n');
    const access = resolveApiAccess({ apiUrl: 'https://ap.example.edu' }, { HTCONDOR_API_TOKEN_FILE: '' }, home, '/somewhere');
    assert.equal(access.tokenFile, path.join(home, '.condor', 'tokens.d', 'ap'));
    // commander hands the variable over as the flag's value, empty as it is.
    assert.equal(resolveApiAccess({ apiUrl: 'https://ap.example.edu', apiTokenFile: '' }, {}, home, '/somewhere').tokenFile, access.tokenFile);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
