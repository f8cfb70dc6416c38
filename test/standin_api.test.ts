import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startStandin, type Standin } from './standin/standin.ts';

/**
 * The stand-in's HTTP side checked against the API's OpenAPI document
 * (test/fixtures/htcondor-api/openapi.json), SPEC 6 and golang-htcondor v0.12.4's handlers
 * (webapi/httpserver/handlers.go) with plain HTTP requests, not through the project's client, so
 * it cannot drift to suit the client. Nothing runs here: jobs stay where the test puts them.
 */

let standin: Standin;
let token: string;
let work: string;

before(async () => {
  // Jobs here must stay where the test puts them: nothing starts within the test's time.
  standin = await startStandin({ execution: { startDelayMs: 60_000 } });
  token = readFileSync(standin.tokenFile, 'utf8').trim();
  work = mkdtempSync(path.join(os.tmpdir(), 'standin-api-'));
});
after(async () => {
  await standin.stop();
  rmSync(work, { recursive: true, force: true });
});

async function call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${standin.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : body instanceof Uint8Array ? new Blob([new Uint8Array(body)]) : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
}

const submit = (text: string) => call('POST', '/api/v1/jobs', { submit_file: text });
const patch = (id: string, body: unknown) => call('PATCH', `/api/v1/jobs/${id}`, body);
const getAd = async (id: string) => (await call('GET', `/api/v1/jobs/${id}`)).json;

test('health and ping answer; everything under /api/v1/jobs needs the bearer token', async () => {
  assert.deepEqual((await call('GET', '/healthz')).json, { status: 'ok' });
  assert.equal((await call('GET', '/api/v1/schedd/ping')).status, 200);
  const denied = await call('GET', '/api/v1/jobs', undefined, { authorization: 'Bearer wrong' });
  assert.equal(denied.status, 401);
  assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.deepEqual(Object.keys(denied.json).sort(), ['code', 'error', 'message']);
  assert.equal(denied.json.error, 'Unauthorized');
  assert.equal(denied.json.code, 401);
  const anonymous = await fetch(`${standin.url}/api/v1/jobs`);
  assert.equal(anonymous.status, 401);
});

test('GET /api/v1/version names the golang-htcondor release the stand-in imitates, behind the token', async () => {
  const v = await call('GET', '/api/v1/version');
  assert.equal(v.status, 200);
  assert.deepEqual(v.json, { version: 'v0.12.4-standin', commit: '2811bc1' });
  assert.equal((await call('GET', '/api/v1/version', undefined, { authorization: 'Bearer wrong' })).status, 401);
});

test('submit is 201 with cluster_id and job_ids; any failure of golang-htcondor\'s parser is a 500', async () => {
  const ok = await submit('executable = /bin/true\ntransfer_executable = false\nqueue 2\n');
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.json.job_ids, [`${ok.json.cluster_id}.0`, `${ok.json.cluster_id}.1`]);
  const bad = await submit('executable = /bin/true\ntransfer_executable = false\nthis is not a command\nqueue\n');
  assert.equal(bad.status, 500);
  assert.deepEqual(Object.keys(bad.json).sort(), ['code', 'error', 'message']);
  assert.equal(bad.json.error, 'Internal Server Error');
  assert.equal(bad.json.code, 500);
  assert.match(bad.json.message, /^Job submission failed: ./);
  assert.equal((await call('POST', '/api/v1/jobs', {})).status, 400);
  assert.equal((await call('POST', '/api/v1/jobs', {})).json.message, 'submit_file is required');
  assert.equal((await call('POST', '/api/v1/jobs', 'not json')).status, 400);
});

test('a job with nothing to spool is released by the server itself: Data files spooled, hold reasons kept as Last*', async () => {
  const { json } = await submit(`executable = /bin/true\ntransfer_executable = false\ninitialdir = ${work}\nqueue\n`);
  const ad = await getAd(`${json.cluster_id}.0`);
  assert.equal(ad.JobStatus, 1);
  assert.equal(ad.ReleaseReason, 'Data files spooled');
  assert.equal(ad.LastHoldReasonCode, 16);
  assert.equal(ad.LastHoldReason, 'Spooling input data files');
  assert.equal(ad.HoldReason, undefined);
  assert.equal(ad.HoldReasonCode, undefined);
  assert.equal(typeof ad.StageInFinish, 'number');
  assert.ok(ad.StageInFinish < ad.EnteredCurrentStatus, 'StageInFinish is one second before the release');
  // The spool hold rewrote the ad even so: the job runs in its spool directory.
  assert.equal(ad.SUBMIT_Iwd, work);
  assert.ok(String(ad.Iwd).startsWith(path.join(standin.directory, 'spool') + path.sep));
  assert.equal(ad.Cmd, '/bin/true', 'an executable that is not transferred keeps its path');
  assert.equal(ad.SUBMIT_Cmd, undefined);
  assert.equal(ad.Owner, os.userInfo().username);
});

test('listing: default limit 50 and the small default projection, then page tokens to the end', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nbatch_name = many\nqueue 120\n');
  const cluster = json.cluster_id as number;
  const first = await call('GET', `/api/v1/jobs?constraint=${encodeURIComponent(`ClusterId == ${cluster}`)}`);
  assert.equal(first.json.jobs.length, 50);
  assert.equal(first.json.total_returned, 50);
  assert.equal(first.json.has_more, true);
  // The default projection is ClusterId, ProcId, Owner, JobStatus, Cmd, Args.
  const keys = Object.keys(first.json.jobs[0]);
  for (const k of ['ClusterId', 'Cmd', 'JobStatus', 'Owner', 'ProcId']) assert.ok(keys.includes(k), k);
  for (const k of keys) assert.ok(['ClusterId', 'ProcId', 'Owner', 'JobStatus', 'Cmd', 'Args'].includes(k), k);
  let seen = first.json.jobs.length;
  let tokenParam = first.json.next_page_token as string;
  while (tokenParam) {
    const page = await call('GET', `/api/v1/jobs?constraint=${encodeURIComponent(`ClusterId == ${cluster}`)}&projection=ProcId&page_token=${encodeURIComponent(tokenParam)}`);
    seen += page.json.jobs.length;
    tokenParam = page.json.has_more ? page.json.next_page_token : '';
  }
  assert.equal(seen, 120);
  const all = await call('GET', `/api/v1/jobs?constraint=${encodeURIComponent(`JobBatchName == "MANY"`)}&limit=*&projection=*`);
  assert.equal(all.json.jobs.length, 120);
  assert.equal(all.json.has_more, false);
  assert.equal(all.json.jobs[0].JobBatchName, 'many');
  const badConstraint = await call('GET', `/api/v1/jobs?constraint=${encodeURIComponent('JobStatus = 1')}`);
  assert.equal(badConstraint.status, 400);
});

test('one job: GET its ad, 404 when it is not in the queue, 400 for a malformed id', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nqueue\n');
  const ad = await getAd(`${json.cluster_id}.0`);
  assert.equal(ad.ClusterId, json.cluster_id);
  assert.match(String(ad.Requirements), /^\/Expr\(.*\)\/$/, 'expressions come back as /Expr(text)/');
  assert.equal((await call('GET', '/api/v1/jobs/424242.0')).status, 404);
  assert.equal((await call('GET', '/api/v1/jobs/abc')).status, 400);
});

test('hold, release and remove, one job or by constraint; 404 when nothing matches', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nbatch_name = policy\nqueue 3\n');
  const c = json.cluster_id as number;
  const held = await call('POST', '/api/v1/jobs/hold', { constraint: `ClusterId == ${c}`, reason: 'looking' });
  assert.equal(held.status, 200);
  assert.deepEqual({ total: held.json.results.total, success: held.json.results.success }, { total: 3, success: 3 });
  const heldAd = await getAd(`${c}.1`);
  assert.deepEqual([heldAd.JobStatus, heldAd.HoldReason, heldAd.HoldReasonCode], [5, 'looking', 1]);
  assert.equal(heldAd.LastReleaseReason, 'Data files spooled', 'a hold moves ReleaseReason to LastReleaseReason');
  assert.equal((await call('POST', `/api/v1/jobs/${c}.1/release`, {})).status, 200);
  const released = await getAd(`${c}.1`);
  assert.deepEqual([released.JobStatus, released.LastHoldReason, released.LastHoldReasonCode, released.HoldReason], [1, 'looking', 1, undefined]);
  assert.equal((await call('POST', '/api/v1/jobs/release', { constraint: `ClusterId == ${c}` })).json.results.success, 2);
  assert.equal((await call('DELETE', `/api/v1/jobs/${c}.0`)).status, 200);
  const removed = await call('DELETE', '/api/v1/jobs', { constraint: 'JobBatchName == "policy"', reason: 'done' });
  assert.equal(removed.json.results.success, 2);
  const none = await call('DELETE', '/api/v1/jobs', { constraint: 'JobBatchName == "policy"' });
  assert.equal(none.status, 404);
  assert.equal(none.json.message, 'No jobs matched the constraint');
  assert.equal((await call('DELETE', '/api/v1/jobs', { reason: 'no constraint' })).status, 400);
});

test('a spooled job: rewritten at submission (Iwd, Cmd, TransferInput, UserLog; not Out or Err), released by PUT input', async () => {
  const { json } = await submit(
    [
      'executable = bin/run.sh',
      'transfer_input_files = data/data.txt, s3://example.org/bucket/key.txt',
      `initialdir = ${work}`,
      `log = ${work}/logs/job.log`,
      `output = ${work}/job.out`,
      'error = job.err',
      'queue',
    ].join('\n'),
  );
  const id = `${json.cluster_id}.0`;
  const before = await getAd(id);
  assert.equal(before.JobStatus, 5);
  assert.equal(before.HoldReasonCode, 16);
  const spool = String(before.Iwd);
  assert.ok(spool.startsWith(path.join(standin.directory, 'spool') + path.sep));
  assert.ok(existsSync(spool), 'the spool directory is made at submission');
  assert.equal(before.SUBMIT_Iwd, work);
  assert.deepEqual([before.Cmd, before.SUBMIT_Cmd], ['run.sh', 'bin/run.sh']);
  assert.deepEqual([before.UserLog, before.SUBMIT_UserLog], ['job.log', `${work}/logs/job.log`]);
  assert.deepEqual([before.TransferInput, before.SUBMIT_TransferInput], ['data.txt,s3://example.org/bucket/key.txt', 'data/data.txt,s3://example.org/bucket/key.txt']);
  assert.deepEqual([before.Out, before.Err, before.SUBMIT_Out, before.SUBMIT_Err], [`${work}/job.out`, 'job.err', undefined, undefined]);
  // The submit event went to the rewritten log, in the spool directory.
  assert.match(readFileSync(path.join(spool, 'job.log'), 'utf8'), /^000 /);
  assert.ok(!existsSync(path.join(work, 'logs', 'job.log')));

  // A later edit is taken as it is: nothing is rewritten twice.
  assert.equal((await patch(id, { attributes: { UserLog: { type: 'string', value: `${work}/after.log` } } })).status, 200);
  assert.equal((await getAd(id)).UserLog, `${work}/after.log`);

  const tar = ustar([
    ['run.sh', '#!/bin/sh\ncat data.txt\n', 0o755],
    ['data.txt', 'hello\n', 0o644],
  ]);
  const put = await call('PUT', `/api/v1/jobs/${id}/input`, tar, { 'content-type': 'application/x-tar' });
  assert.equal(put.status, 200);
  const afterAd = await getAd(id);
  assert.equal(afterAd.JobStatus, 1);
  assert.equal(afterAd.ReleaseReason, 'Data files spooled');
  assert.equal(afterAd.LastHoldReasonCode, 16);
  assert.equal(afterAd.Iwd, spool);
  assert.ok(existsSync(path.join(spool, 'run.sh')));
  assert.equal(readFileSync(path.join(spool, 'data.txt'), 'utf8'), 'hello\n');
  assert.doesNotMatch(readFileSync(path.join(spool, 'job.log'), 'utf8'), /^013 /m, 'the spooling release writes no event');
  const notTar = await call('PUT', `/api/v1/jobs/${id}/input`, new Uint8Array(700).fill(7), { 'content-type': 'application/x-tar' });
  assert.equal(notTar.status, 400);
});

test('PATCH: values encoded as handleEditJob does (expression text, numbers, booleans, null, typed objects)', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nqueue\n');
  const id = `${json.cluster_id}.0`;
  const edited = await patch(id, {
    attributes: {
      Expression: 'NumJobStarts > 2 && true',
      Quoted: '"as typed"',
      Whole: 3,
      Fraction: 2.5,
      Big: 1234567.5,
      Flag: false,
      Nothing: null,
      TypedString: { type: 'string', value: 'say "hi"\n' },
      TypedInteger: { type: 'integer', value: ' 42 ' },
      TypedReal: { type: 'float', value: '0.25' },
      TypedBool: { type: 'Bool', value: 'TRUE' },
      TypedRaw: { type: 'raw', value: 'Whole + 1' },
      NotAnExpression: '((',
    },
  });
  assert.equal(edited.status, 200);
  assert.deepEqual(edited.json, { status: 'success', message: `Successfully edited job ${id}`, job_id: id });
  const ad = await getAd(id);
  assert.equal(ad.Expression, '/Expr(NumJobStarts > 2 && true)/');
  assert.equal(ad.Quoted, 'as typed');
  assert.deepEqual([ad.Whole, ad.Fraction, ad.Big, ad.Flag, ad.Nothing], [3, 2.5, 1234567.5, false, null]);
  assert.equal(ad.TypedString, 'say "hi"\n');
  assert.deepEqual([ad.TypedInteger, ad.TypedReal, ad.TypedBool, ad.TypedRaw], [42, 0.25, true, '/Expr(Whole + 1)/']);
  // The schedd stores a value it cannot parse as UNDEFINED (the job queue log), without an error.
  assert.equal(ad.NotAnExpression, null);
  assert.ok('NotAnExpression' in ad);
});

test('PATCH: 400 for a bad id, body or value; 403 for immutable or protected attributes; 500 when the schedd refuses; all or nothing', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nqueue\n');
  const id = `${json.cluster_id}.0`;
  const expectError = async (res: Awaited<ReturnType<typeof call>>, status: number, message: string | RegExp) => {
    assert.equal(res.status, status, JSON.stringify(res.json));
    assert.deepEqual(Object.keys(res.json).sort(), ['code', 'error', 'message']);
    assert.equal(res.json.code, status);
    if (typeof message === 'string') assert.equal(res.json.message, message);
    else assert.match(res.json.message, message);
  };
  await expectError(await patch('abc', { attributes: { A: 1 } }), 400, 'Invalid job ID: invalid job ID format, expected cluster.proc');
  await expectError(await patch('1.x', { attributes: { A: 1 } }), 400, /^Invalid job ID: invalid proc ID: /);
  await expectError(await call('PATCH', `/api/v1/jobs/${id}`, 'not json'), 400, /^Invalid request body: /);
  await expectError(await call('PATCH', `/api/v1/jobs/${id}`, ''), 400, 'Invalid request body: EOF');
  await expectError(await patch(id, { attributes: 'A = 1' }), 400, /^Invalid request body: json: cannot unmarshal string/);
  await expectError(await patch(id, {}), 400, 'No attributes to update');
  await expectError(await patch(id, { attributes: {} }), 400, 'No attributes to update');
  await expectError(await patch(id, { attributes: { A: { value: '1' } } }), 400, `attribute "A": typed object missing 'type'`);
  await expectError(await patch(id, { attributes: { A: { type: 'string' } } }), 400, `attribute "A": typed object missing 'value'`);
  await expectError(await patch(id, { attributes: { A: { type: 'integer', value: 7 } } }), 400, /typed object 'value' must be a string/);
  await expectError(await patch(id, { attributes: { A: { type: 'integer', value: '1.5' } } }), 400, 'attribute "A": "1.5" is not a valid integer');
  await expectError(await patch(id, { attributes: { A: { type: 'real', value: 'x' } } }), 400, 'attribute "A": "x" is not a valid real number');
  await expectError(await patch(id, { attributes: { A: { type: 'boolean', value: 'yes' } } }), 400, 'attribute "A": boolean must be "true" or "false", got "yes"');
  await expectError(await patch(id, { attributes: { A: { type: 'raw', value: ' ' } } }), 400, 'attribute "A": raw expression must not be empty');
  await expectError(await patch(id, { attributes: { A: { type: 'list', value: '{}' } } }), 400, 'attribute "A": unknown type "list" (want string|integer|real|boolean|raw)');

  // golang-htcondor's own lists, before anything is set: nothing of the request is applied.
  await expectError(await patch(id, { attributes: { Before: 1, ClusterId: 9 } }), 403, 'Cannot edit job: attribute ClusterId is immutable and cannot be changed');
  await expectError(await patch(id, { attributes: { Before: 1, JobStatus: 4 } }), 403, 'Cannot edit job: attribute JobStatus is protected and can only be changed by queue superusers');
  await expectError(await patch(id, { attributes: { Before: 1, JobPrio: 10 } }), 403, /JobPrio is protected/);
  // The schedd's own refusals (its immutable list, a line break in a value): one transaction, aborted.
  await expectError(await patch(id, { attributes: { Before: 1, JobUniverse: 12 } }), 500, 'Failed to edit job: failed to set attribute JobUniverse: SetAttribute failed for JobUniverse with error code 13');
  await expectError(await patch(id, { attributes: { Before: 1, Multi: 'a\nb' } }), 500, 'Failed to edit job: failed to set attribute Multi: SetAttribute failed for Multi with error code 22');
  const ad = await getAd(id);
  assert.equal(ad.Before, undefined, 'no part of a refused edit is applied');
  assert.equal(ad.JobUniverse, 5);
  assert.equal(ad.ClusterId, json.cluster_id);

  // A job that is not in the queue: the schedd answers ENOENT (2), which handleEditJob does not recognise.
  await expectError(await patch('424242.0', { attributes: { A: 1 } }), 500, 'Failed to edit job: failed to set attribute A: SetAttribute failed for A with error code 2');
  await expectError(await call('PATCH', `/api/v1/jobs/${id}`, { attributes: { A: 1 } }, { authorization: 'Bearer wrong' }), 401, /^Authentication failed/);
});

/** A minimal ustar archive, as a client would upload a job's input sandbox. */
function ustar(files: Array<[name: string, content: string, mode: number]>): Uint8Array {
  const blocks: Buffer[] = [];
  for (const [name, content, mode] of files) {
    const data = Buffer.from(content);
    const header = Buffer.alloc(512);
    header.write(name, 0);
    header.write(mode.toString(8).padStart(7, '0') + '\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return new Uint8Array(Buffer.concat(blocks));
}
