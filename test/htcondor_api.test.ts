import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { HtcondorApi, HtcondorApiError } from '../lib/htcondor_api.ts';
import { memoryLogger } from './support/pipeline_fixture.ts';
import { startRewritingProxy } from './support/rewriting_proxy.ts';
import { startStandin, type Standin } from './standin/standin.ts';

let standin: Standin;
let api: HtcondorApi;

before(async () => {
  standin = await startStandin();
  api = new HtcondorApi({ url: standin.url, token: readFileSync(standin.tokenFile, 'utf8').trim(), timeoutMs: 5000 });
});
after(async () => {
  await api.close();
  await standin.stop();
});

const sleepJob = (batch: string, count = 1) =>
  `executable = /bin/sleep\narguments = 60\ntransfer_executable = false\nbatch_name = ${batch}\nqueue ${count}\n`;

test('submit answers with the cluster and job ids; a job with nothing to spool is released into the spool directory', async () => {
  const { clusterId, jobIds } = await api.submit(sleepJob('released', 2));
  assert.deepEqual(jobIds, [`${clusterId}.0`, `${clusterId}.1`]);
  const ad = await api.getJob(`${clusterId}.1`);
  assert.ok(ad);
  assert.equal(ad.JobStatus, 1);
  assert.equal(ad.JobBatchName, 'released');
  assert.match(String(ad.Iwd), new RegExp(`^${standin.directory}/spool/`));
});

test('a job that must transfer its executable waits on hold for its input (HoldReasonCode 16)', async () => {
  const { clusterId } = await api.submit('executable = my_script.sh\nqueue\n');
  const ad = await api.getJob(`${clusterId}.0`);
  assert.equal(ad?.JobStatus, 5);
  assert.equal(ad?.HoldReasonCode, 16);
});

test('listing follows page tokens to the end and returns each job once, with the projection asked for', async () => {
  const { clusterId } = await api.submit(sleepJob('paged', 123));
  const ads = await api.listJobs({ constraint: `ClusterId == ${clusterId}`, projection: ['ClusterId', 'ProcId', 'JobBatchName'], pageSize: 50 });
  assert.equal(ads.length, 123);
  assert.deepEqual(
    ads.map((a) => a.ProcId),
    Array.from({ length: 123 }, (_, i) => i),
  );
  assert.deepEqual(Object.keys(ads[0]!).sort(), ['ClusterId', 'JobBatchName', 'ProcId']);
});

test('a job no longer in the queue is null, not an error', async () => {
  assert.equal(await api.getJob('99999.0'), null);
});

test('remove by constraint takes every job of a batch, as condor_rm -c does, and nothing else', async () => {
  await api.submit(sleepJob('COG-Pipeline-DAG-*raw.csv', 3));
  const { clusterId: keep } = await api.submit(sleepJob('COG-Pipeline-DAG-*other.csv'));
  // == on strings is case-insensitive in ClassAds.
  const removed = await api.removeJobs('JobBatchName == "cog-pipeline-dag-*RAW.csv"', 'test cleanup');
  assert.equal(removed, 3);
  assert.deepEqual(await api.listJobs({ constraint: 'JobBatchName == "COG-Pipeline-DAG-*raw.csv"' }), []);
  assert.ok(await api.getJob(`${keep}.0`));
  assert.equal(await api.removeJobs('JobBatchName == "COG-Pipeline-DAG-*raw.csv"', 'again'), 0);
});

test('a rejected submit description surfaces the server message (htcondor-api answers 500)', async () => {
  await assert.rejects(api.submit('executable = /bin/true\nthis is not a command\nqueue\n'), (err: unknown) => {
    assert.ok(err instanceof HtcondorApiError);
    assert.equal(err.status, 500);
    assert.match(err.message, /POST .*\/api\/v1\/jobs answered 500: Internal Server Error: Job submission failed: .*line 2, col 6 \(near "is"\)/);
    return true;
  });
});

test('a wrong token is a clear 401 that names the server and what to check', async () => {
  const wrong = new HtcondorApi({ url: standin.url, token: 'not-the-token' });
  try {
    await assert.rejects(wrong.listJobs(), (err: unknown) => {
      assert.ok(err instanceof HtcondorApiError);
      assert.equal(err.status, 401);
      assert.ok(err.message.includes(`${standin.url}/api/v1/jobs answered 401`), err.message);
      assert.match(err.message, /--api-token-file/);
      assert.ok(!err.message.includes('not-the-token'), 'the token must not appear in errors');
      return true;
    });
  } finally {
    await wrong.close();
  }
});

test('an unreachable server is named in the error', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const log = memoryLogger();
  const gone = new HtcondorApi({ url: `http://127.0.0.1:${port}/api/v1`, token: 't', timeoutMs: 2000, retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 40 }, log });
  try {
    await assert.rejects(gone.ping(), /htcondor-api GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/schedd\/ping: cannot reach the server \(ECONNREFUSED\)/);
    // It tried three times, saying so each time.
    assert.equal(log.text().match(/cannot reach the server \(ECONNREFUSED\); retrying in \d+\.\d s \(attempt [23] of 3\)/g)?.length, 2, log.text());
  } finally {
    await gone.close();
  }
});

test('a busy server (503) is retried with back-off, and the request goes through; a POST is never repeated', async () => {
  let refused = 0;
  const proxy = await startRewritingProxy(standin.url, {
    answer: (method) => (refused < 2 && (method === 'GET' || method === 'POST') ? (refused++, { status: 503, body: { error: 'Service Unavailable', message: 'schedd busy', code: 503 } }) : undefined),
  });
  const log = memoryLogger();
  const busy = new HtcondorApi({ url: proxy.url, token: readFileSync(standin.tokenFile, 'utf8').trim(), retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 40 }, log });
  try {
    assert.ok(Array.isArray(await busy.listJobs({ constraint: 'false' })));
    assert.equal(refused, 2);
    assert.match(log.text(), /answered 503: Service Unavailable: schedd busy; retrying in/);
    refused = 1;
    await assert.rejects(busy.submit('executable = /bin/true\nqueue\n'), /POST .* answered 503/);
    assert.equal(refused, 2, 'one POST, not repeated');
  } finally {
    await busy.close();
    await proxy.close();
  }
});

test('a server that echoes the request back never gets the token into an error message', async () => {
  const token = readFileSync(standin.tokenFile, 'utf8').trim();
  const echo = net.createServer((socket) => {
    socket.once('data', (request) => {
      const body = JSON.stringify({ error: 'Bad Request', message: `you sent: ${request.toString()}`, code: 400 });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const { port } = echo.address() as net.AddressInfo;
  const client = new HtcondorApi({ url: `http://127.0.0.1:${port}`, token });
  try {
    await assert.rejects(client.listJobs(), (err: Error) => {
      assert.match(err.message, /answered 400/);
      assert.ok(!err.message.includes(token), err.message);
      return true;
    });
  } finally {
    await client.close();
    await new Promise((resolve) => echo.close(resolve));
  }
});
