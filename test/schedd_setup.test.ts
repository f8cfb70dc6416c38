import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { ApiSchedd } from '../lib/schedd.ts';
import { JobSetupError } from '../lib/schedd_errors.ts';
import { crondorJob, dagmanJob } from '../lib/submit_rendering.ts';
import { sampleSettings } from './support/sample_settings.ts';
import { startRewritingProxy, type ProxyRules } from './support/rewriting_proxy.ts';
import { startStandin, type Standin } from './standin/standin.ts';

/**
 * Submitting and setting up the crondor and DAGMan jobs on a server that behaves as htcondor-api
 * v0.12.4 does (the stand-in), and on servers that do not (a proxy that answers or rewrites).
 */

let standin: Standin;
let token: string;

before(async () => {
  standin = await startStandin();
  token = readFileSync(standin.tokenFile, 'utf8').trim();
});
after(async () => {
  await standin.stop();
});

const settings = sampleSettings({ pattern: "*it's raw.csv", maxRunning: 10 });
const invocation = { program: '/bin/true', args: ['--import', 'file:///x/tsx.mjs', '/x/cog_pipeline.ts'] };
const env = { PATH: '/usr/bin:/bin', HOME: '/home/sco', AWS_REGION: 'us-east-2' };

function scheddAt(url: string): ApiSchedd {
  return new ApiSchedd(new HtcondorApi({ url, token, timeoutMs: 5000 }));
}

test('the crondor job is submitted, set up after submission, and only then allowed to start', async () => {
  const schedd = scheddAt(standin.url);
  try {
    const cluster = await schedd.submit(crondorJob(settings, invocation, '/home/sco/launch dir', env));
    const ad = standin.schedd.get(`${cluster}.0`)!.ad.toJSON();
    assert.equal(ad.OnExitRemove, false);
    assert.equal(ad.Environment, 'PATH=/usr/bin:/bin HOME=/home/sco AWS_REGION=us-east-2');
    assert.equal(ad.UserLog, `/home/sco/launch dir/crondor_${cluster}.log`);
    assert.equal(ad.Out, `/home/sco/launch dir/crondor_${cluster}.out`);
    assert.equal(ad.Requirements, true);
    assert.equal(ad.LeaveJobInQueue, false);
    assert.equal(ad.JobStatus, 1, 'idle, waiting for its cron time');
  } finally {
    await schedd.close();
  }
});

test('the DAGMan job gets condor_submit_dag\'s requeue rule, node removal, log and environment; .condor.sub records them', async () => {
  const schedd = scheddAt(standin.url);
  try {
    const job = dagmanJob({ dagman: '/usr/bin/condor_dagman', dagFile: '/nonexistent/wf/dagfile.dag', batchName: 'COG-Pipeline-DAG-x', maxJobs: 5, environment: env });
    const cluster = await schedd.submit(job);
    const ad = standin.schedd.get(`${cluster}.0`)!.ad.toJSON();
    assert.equal(ad.OtherJobRemoveRequirements, `DAGManJobId =?= ${cluster}`);
    assert.match(String(ad.OnExitRemove), /^\/Expr\(.*ExitSignal.*11.*ExitCode.*\)\/$/);
    assert.equal(ad.UserLog, '/nonexistent/wf/dagfile.dag.dagman.log');
    assert.match(String(ad.Environment), / _CONDOR_DAGMAN_LOG=\/nonexistent\/wf\/dagfile\.dag\.dagman\.out _CONDOR_MAX_DAGMAN_LOG=0$/);
    await standin.schedd.remove([standin.schedd.get(`${cluster}.0`)!], 'test over');
  } finally {
    await schedd.close();
  }
});

/** Submits the crondor job through a proxy with `rules`; returns the error and the jobs it left in the queue. */
async function submitThrough(rules: ProxyRules): Promise<{ error: Error; left: unknown[] }> {
  const proxy = await startRewritingProxy(standin.url, rules);
  const schedd = scheddAt(proxy.url);
  const newest = Math.max(0, ...standin.schedd.all().map((job) => job.cluster));
  try {
    const error = await schedd.submit(crondorJob(settings, invocation, '/home/sco/launch', env)).then(
      () => assert.fail('the submission should have failed'),
      (err: Error) => err,
    );
    // Removed jobs leave the queue at once (leave_in_queue = false).
    return { error, left: standin.schedd.all().filter((job) => job.cluster > newest).map((job) => job.id) };
  } finally {
    await schedd.close();
    await proxy.close();
  }
}

test('a server without PATCH (as its OpenAPI document says: 501): the job is removed and the message says why', async () => {
  const { error, left } = await submitThrough({
    answer: (method) => (method === 'PATCH' ? { status: 501, body: { error: 'Not Implemented', message: 'Job editing not yet implemented', code: 501 } } : undefined),
  });
  assert.ok(error instanceof JobSetupError);
  assert.match(error.message, /the server cannot edit jobs \(PATCH \/api\/v1\/jobs\/\{id\} answered 501\)/);
  assert.match(error.message, /job \d+\.0 was removed \(htcondor-api v0\.12\.4-standin \(commit 2811bc1\)/);
  assert.deepEqual(left, []);
});

test('a server whose parser reads a line differently: the attribute, what came back and the server version are named; nothing is left', async () => {
  // As if the server expanded $(Cluster) to nothing (as golang-htcondor does with $(CLUSTER)).
  const { error, left } = await submitThrough({
    rewrite: ({ method, path, body }) => (method === 'GET' && /\/api\/v1\/jobs\/\d+\.0$/.test(path) ? body.replace(/crondor_\d+\.out/, 'crondor_.out') : body),
  });
  assert.ok(error instanceof JobSetupError);
  assert.match(error.message, /^Out of job (\d+)\.0 is "\/home\/sco\/launch\/crondor_\.out" on the server, not "\/home\/sco\/launch\/crondor_\1\.out" as the submitted description says; job \1\.0 was removed \(htcondor-api v0\.12\.4-standin/);
  assert.deepEqual(left, []);
});

test('a server that keeps an edit from taking effect: the job never got Requirements = true and is removed', async () => {
  let patches = 0;
  const { error, left } = await submitThrough({
    // Accept the PATCH without doing it.
    answer: (method, path) => (method === 'PATCH' ? (patches++, { status: 200, body: { status: 'success', message: `Successfully edited job ${path}`, job_id: '' } }) : undefined),
  });
  assert.equal(patches, 1, 'the start (Requirements = true) is never sent once a setting did not stick');
  assert.match(error.message, /^OnExitRemove of job \d+\.0 is \(absent\) on the server, not false as the settings made after submission say/);
  assert.deepEqual(left, []);
});
