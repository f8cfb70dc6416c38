import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startStandin, type Standin } from './standin/standin.ts';

/**
 * The stand-in's HTTP side checked against ../shared/htcondor-api/openapi.json and SPEC 6 with
 * plain HTTP requests, not through the project's client, so it cannot drift to suit the client.
 */

let standin: Standin;
let token: string;

before(async () => {
  // Jobs here must stay where the test puts them: nothing starts within the test's time.
  standin = await startStandin({ execution: { startDelayMs: 60_000 } });
  token = readFileSync(standin.tokenFile, 'utf8').trim();
});
after(async () => {
  await standin.stop();
});

async function call(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${standin.url}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : body instanceof Uint8Array ? new Blob([new Uint8Array(body)]) : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
}

const submit = (text: string) => call('POST', '/api/v1/jobs', { submit_file: text });

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

test('submit is 201 with cluster_id and job_ids; a bad description is refused with the line at fault', async () => {
  const ok = await submit('executable = /bin/true\ntransfer_executable = false\nqueue 2\n');
  assert.equal(ok.status, 201);
  assert.deepEqual(ok.json.job_ids, [`${ok.json.cluster_id}.0`, `${ok.json.cluster_id}.1`]);
  const bad = await submit('executable = /bin/true\nqueue\nuniverse = vanilla\n');
  assert.equal(bad.status, 400);
  assert.match(bad.json.message, /Line 3/);
  assert.equal((await call('POST', '/api/v1/jobs', {})).status, 400);
});

test('listing: default limit 50 and the small default projection, then page tokens to the end', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nbatch_name = many\nqueue 120\n');
  const cluster = json.cluster_id as number;
  const first = await call('GET', `/api/v1/jobs?constraint=${encodeURIComponent(`ClusterId == ${cluster}`)}`);
  assert.equal(first.json.jobs.length, 50);
  assert.equal(first.json.total_returned, 50);
  assert.equal(first.json.has_more, true);
  // The default projection (ClusterId, ProcId, Owner, JobStatus, Cmd, Args); an ad without Args has none.
  assert.deepEqual(Object.keys(first.json.jobs[0]).sort(), ['ClusterId', 'Cmd', 'JobStatus', 'Owner', 'ProcId']);
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
  const ad = await call('GET', `/api/v1/jobs/${json.cluster_id}.0`);
  assert.equal(ad.json.ClusterId, json.cluster_id);
  assert.equal((await call('GET', '/api/v1/jobs/424242.0')).status, 404);
  assert.equal((await call('GET', '/api/v1/jobs/abc')).status, 400);
});

test('hold, release and remove, one job or by constraint; 404 when nothing matches', async () => {
  const { json } = await submit('executable = /bin/true\ntransfer_executable = false\nbatch_name = policy\nqueue 3\n');
  const c = json.cluster_id as number;
  const held = await call('POST', '/api/v1/jobs/hold', { constraint: `ClusterId == ${c}`, reason: 'looking' });
  assert.equal(held.status, 200);
  assert.deepEqual({ total: held.json.results.total, success: held.json.results.success }, { total: 3, success: 3 });
  assert.equal((await call('GET', `/api/v1/jobs/${c}.1`)).json.JobStatus, 5);
  assert.equal((await call('POST', `/api/v1/jobs/${c}.1/release`, {})).status, 200);
  assert.equal((await call('GET', `/api/v1/jobs/${c}.1`)).json.JobStatus, 1);
  assert.equal((await call('POST', '/api/v1/jobs/release', { constraint: `ClusterId == ${c}` })).json.results.success, 2);
  assert.equal((await call('DELETE', `/api/v1/jobs/${c}.0`)).status, 200);
  const removed = await call('DELETE', '/api/v1/jobs', { constraint: 'JobBatchName == "policy"', reason: 'done' });
  assert.equal(removed.json.results.success, 2);
  const none = await call('DELETE', '/api/v1/jobs', { constraint: 'JobBatchName == "policy"' });
  assert.equal(none.status, 404);
  assert.equal(none.json.message, 'No jobs matched the constraint');
  assert.equal((await call('DELETE', '/api/v1/jobs', { reason: 'no constraint' })).status, 400);
});

test('a job that transfers its executable waits held (16) until PUT input spools its sandbox, then runs from the spool', async () => {
  const { json } = await submit('executable = run.sh\ntransfer_input_files = data.txt\nqueue\n');
  const id = `${json.cluster_id}.0`;
  const before = (await call('GET', `/api/v1/jobs/${id}`)).json;
  assert.equal(before.JobStatus, 5);
  assert.equal(before.HoldReasonCode, 16);
  const tar = ustar([
    ['run.sh', '#!/bin/sh\ncat data.txt\n', 0o755],
    ['data.txt', 'hello\n', 0o644],
  ]);
  const put = await call('PUT', `/api/v1/jobs/${id}/input`, tar, { 'content-type': 'application/x-tar' });
  assert.equal(put.status, 200);
  const afterAd = (await call('GET', `/api/v1/jobs/${id}`)).json;
  assert.equal(afterAd.JobStatus, 1);
  assert.ok(String(afterAd.Iwd).startsWith(path.join(standin.directory, 'spool')));
  assert.ok(existsSync(path.join(String(afterAd.Iwd), 'run.sh')));
  assert.equal(readFileSync(path.join(String(afterAd.Iwd), 'data.txt'), 'utf8'), 'hello\n');
  const notTar = await call('PUT', `/api/v1/jobs/${id}/input`, new Uint8Array(700).fill(7), { 'content-type': 'application/x-tar' });
  assert.equal(notTar.status, 400);
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
