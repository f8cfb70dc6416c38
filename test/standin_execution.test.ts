import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { renderDagmanSubmit } from '../lib/submit_rendering.ts';
import type { JsonValue } from './standin/classad.ts';
import { parseDag } from './standin/dag_file.ts';
import { status, type Job } from './standin/schedd.ts';
import { startStandin, type Standin } from './standin/standin.ts';
import { startS3Server, type S3Server } from './support/s3_server.ts';

/**
 * The stand-in's execution side with real processes: cron jobs in the local universe, DAGMan
 * (retries, FINAL node, condor_rm), and vanilla jobs with S3 file transfer and job policy.
 */

let standin: Standin;
let api: HtcondorApi;
let work: string;

before(async () => {
  standin = await startStandin({ execution: { startDelayMs: 20, periodicIntervalMs: 100, killGraceMs: 500, submitRetryDelayMs: 50 } });
  api = new HtcondorApi({ url: standin.url, token: readFileSync(standin.tokenFile, 'utf8').trim(), timeoutMs: 10_000 });
  work = mkdtempSync(path.join(os.tmpdir(), 'standin-execution-'));
});
after(async () => {
  await api.close();
  await standin.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Polls until `check` returns something other than undefined. */
async function until<T>(what: string, check: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ads of jobs as they leave the queue, by id. */
function recordDepartures(): Map<string, Record<string, JsonValue>> {
  const seen = new Map<string, Record<string, JsonValue>>();
  standin.schedd.on('gone', (job: Job) => seen.set(job.id, job.ad.toJSON()));
  return seen;
}

function dirFor(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function script(file: string, body: string): string {
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;

test('a local-universe cron job runs only when triggered, stays queued, and logs each run', async () => {
  const dir = dirFor('cron');
  const runs = path.join(dir, 'runs.txt');
  const { jobIds } = await api.submit(
    [
      'universe = local',
      'executable = /bin/sh',
      'transfer_executable = false',
      `arguments = "-c 'echo ran $GREETING >> ${runs}; echo to-stdout; echo to-stderr >&2; exit 0'"`,
      `initialdir = ${dir}`,
      `log = ${dir}/cron_$(Cluster).log`,
      `output = ${dir}/cron_$(Cluster).out`,
      `error = ${dir}/cron_$(Cluster).err`,
      'cron_minute = */15',
      'cron_hour = *',
      'on_exit_remove = false',
      'environment = "GREETING=hello"',
      'queue',
    ].join('\n'),
  );
  const id = jobIds[0]!;
  const cluster = id.split('.')[0];

  // Well past the start delay it is still idle: a cron job waits for its time (here, the trigger).
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await api.getJob(id))?.JobStatus, 1);

  const first = await standin.runCron(id);
  assert.equal(first.status, 1, 'on_exit_remove = false: back to idle, still queued');
  assert.equal(first.ad?.ExitCode, 0);
  assert.equal(first.ad?.NumJobStarts, 1);
  // The second run through the control route, as the demo or a shell would trigger it.
  const token = readFileSync(standin.tokenFile, 'utf8').trim();
  const control = (method: string, route: string) => fetch(`${standin.url}${route}`, { method, headers: { authorization: `Bearer ${token}` } });
  const answer = await control('POST', `/standin/cron/${id}`);
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), { job_id: id, job_status: 1, exit_code: 0 });
  const second = await api.getJob(id);
  assert.equal(second?.NumJobStarts, 2);
  assert.equal(typeof second?.JobCurrentStartDate, 'number');

  assert.equal(readFileSync(runs, 'utf8'), 'ran hello\nran hello\n');
  // Output files are truncated at each run, as HTCondor opens them afresh.
  assert.equal(readFileSync(path.join(dir, `cron_${cluster}.out`), 'utf8'), 'to-stdout\n');
  assert.equal(readFileSync(path.join(dir, `cron_${cluster}.err`), 'utf8'), 'to-stderr\n');
  const log = readFileSync(path.join(dir, `cron_${cluster}.log`), 'utf8');
  assert.equal(count(log, /^000 /gm), 1);
  assert.equal(count(log, /^001 /gm), 2);
  // A job that OnExitRemove keeps queued is logged as terminated and requeued (event 004), not 005.
  assert.equal(count(log, /^004 .*Job was evicted\.\n\t\(0\) Job terminated and was requeued\n/gm), 2);
  assert.match(log, /\(1\) Normal termination \(return value 0\)\n\tThe job attribute OnExitRemove expression 'false' evaluated to FALSE/);

  // It is not running, so condor_rm takes it out of the queue at once.
  assert.equal(await api.removeJobs(`ClusterId == ${cluster}`, 'test done'), 1);
  const gone = await control('GET', `/standin/jobs/${id}/wait?status=4&timeout_ms=1000`);
  assert.deepEqual(await gone.json(), { job_id: id, job_status: null });
  assert.equal((await control('POST', `/standin/cron/${id}`)).status, 404);
});

/** A DAG directory: a node submit file whose job runs node.sh, and a POST script that records how it ran. */
function dagFixture(name: string, dag: string, nodeScript: string): { dir: string; dagFile: string } {
  const dir = dirFor(name);
  writeFileSync(path.join(dir, 'input.txt'), `input of ${name}\n`);
  script(path.join(dir, 'node.sh'), nodeScript);
  script(path.join(dir, 'post.sh'), 'pwd > post.pwd\necho "$@" > post.args\necho "$MYVAR" > post.env\nexit 0');
  writeFileSync(
    path.join(dir, 'node.sub'),
    [
      'universe = vanilla',
      'executable = node.sh',
      'arguments = "$(NAME)"',
      'log = $(NAME).log',
      'output = $(NAME).out',
      'error = $(NAME).err',
      'should_transfer_files = YES',
      'when_to_transfer_output = ON_EXIT',
      'transfer_input_files = input.txt',
      'queue',
    ].join('\n') + '\n',
  );
  const dagFile = path.join(dir, 'dagfile.dag');
  writeFileSync(dagFile, dag);
  return { dir, dagFile };
}

async function submitDag(dagFile: string, batchName: string, maxJobs: number): Promise<string> {
  const text = renderDagmanSubmit({ dagman: '/usr/bin/condor_dagman', dagFile, batchName, maxJobs, environment: { MYVAR: 'from-dagman' } });
  const { jobIds } = await api.submit(text);
  return jobIds[0]!;
}

test('DAGMan runs the nodes with RETRY and throttling, then the NOOP FINAL node POST script, and completes', async () => {
  const { dir, dagFile } = dagFixture(
    'dag-ok',
    [
      'JOB A node.sub',
      'VARS A NAME="A"',
      'JOB B node.sub',
      'VARS B NAME="B"',
      'RETRY B 2',
      'FINAL final final.sub NOOP',
      'SCRIPT POST final post.sh $DAG_STATUS $FAILED_COUNT $RETURN',
    ].join('\n') + '\n',
    // B fails its first attempt; each run leaves a result file that output transfer brings back.
    `cat input.txt > "$1.result"\necho "node $1 ran"\nif [ "$1" = B ] && [ ! -e ${work}/dag-ok-B-failed-once ]; then touch ${work}/dag-ok-B-failed-once; exit 3; fi\nexit 0`,
  );
  const departed = recordDepartures();
  let dagmanId = '';
  let mostQueued = 0;
  const watch = () => {
    const ad = standin.schedd.get(dagmanId)?.ad.toJSON();
    mostQueued = Math.max(mostQueued, Number(ad?.DAG_NodesQueued ?? 0));
  };
  standin.schedd.on('status', watch);
  dagmanId = await submitDag(dagFile, 'standin-dag-ok', 1);

  const end = await standin.waitForJob(dagmanId, { statuses: [4], timeoutMs: 30_000 });
  standin.schedd.off('status', watch);
  const ad = end.ad!;
  assert.equal(end.status, 4, 'remote DAGMan job stays in the queue completed (LeaveJobInQueue)');
  assert.equal(ad.ExitCode, 0);
  assert.deepEqual(
    [ad.DAG_Status, ad.DAG_NodesTotal, ad.DAG_NodesDone, ad.DAG_NodesFailed, ad.DAG_NodesQueued, ad.DAG_NodesReady, ad.DAG_NodesUnready],
    [0, 3, 3, 0, 0, 0, 0],
  );
  assert.equal(mostQueued, 1, '-MaxJobs 1 keeps one node job in the queue at a time');

  // Node jobs: submitted from the DAG directory with the DAG's batch name and DAGMan's attributes.
  const nodeAds = [...departed.values()].filter((a) => a.DAGManJobId === Number(dagmanId.split('.')[0]));
  assert.equal(nodeAds.length, 3, 'A once, B twice');
  for (const n of nodeAds) {
    assert.equal(n.JobBatchName, 'standin-dag-ok');
    assert.equal(n.Iwd, dir);
    assert.equal(n.DAGManNodesLog, `${dagFile}.nodes.log`);
  }
  assert.deepEqual(nodeAds.map((n) => [n.DAGNodeName, n.ExitCode]).sort(), [['A', 0], ['B', 0], ['B', 3]]);
  assert.equal(readFileSync(path.join(dir, 'A.result'), 'utf8'), 'input of dag-ok\n');
  assert.equal(readFileSync(path.join(dir, 'B.out'), 'utf8'), 'node B ran\n');
  assert.ok(!existsSync(path.join(dir, 'node.sh.result')));

  // The POST script ran in the DAG directory, with DAGMan's environment and its macros.
  assert.equal(readFileSync(path.join(dir, 'post.pwd'), 'utf8').trim(), dir);
  assert.equal(readFileSync(path.join(dir, 'post.args'), 'utf8'), '0 0 0\n');
  assert.equal(readFileSync(path.join(dir, 'post.env'), 'utf8'), 'from-dagman\n');

  const nodesLog = readFileSync(`${dagFile}.nodes.log`, 'utf8');
  assert.equal(count(nodesLog, /^005 /gm), 4, 'A, B twice, and the NOOP FINAL node');
  assert.match(nodesLog, /^000 \(000\.2147483647\.001\) .* Job submitted from host: <dummy-submit-for-noop-job>\n {4}DAG Node: final\n/m);
  assert.match(readFileSync(path.join(dir, 'B.log'), 'utf8'), /Normal termination \(return value 3\)/);
  const out = readFileSync(`${dagFile}.dagman.out`, 'utf8');
  assert.match(out, /Retrying node B \(retry #1 of 2\)\.\.\./);
  assert.match(out, /POST Script of node final completed successfully\./);
  assert.match(out, /EXITING WITH STATUS 0$/m);
  assert.match(readFileSync(`${dagFile}.lib.out`, 'utf8'), /Executing condor dagman/);
  assert.ok(!existsSync(`${dagFile}.rescue001`));
  assert.ok(!existsSync(`${dagFile}.lock`), 'the lock file goes when DAGMan exits');
  assert.match(readFileSync(`${dagFile}.dagman.log`, 'utf8'), /^005 .*\n\t\(1\) Normal termination \(return value 0\)/m);
});

test('a node that keeps failing leaves a rescue DAG and DAG_Status 2; the FINAL node decides the exit status', async () => {
  const { dir, dagFile } = dagFixture(
    'dag-failing',
    ['JOB good node.sub', 'VARS good NAME="good"', 'JOB bad node.sub', 'VARS bad NAME="bad"', 'RETRY bad 1', 'FINAL final final.sub NOOP', 'SCRIPT POST final post.sh $DAG_STATUS $FAILED_COUNT'].join('\n') + '\n',
    'if [ "$1" = bad ]; then exit 7; fi\nexit 0',
  );
  const dagmanId = await submitDag(dagFile, 'standin-dag-failing', 10);
  const end = await standin.waitForJob(dagmanId, { statuses: [4], timeoutMs: 30_000 });
  assert.deepEqual([end.ad!.DAG_Status, end.ad!.DAG_NodesDone, end.ad!.DAG_NodesFailed], [2, 2, 1]);
  // "The success or failure of the FINAL node determines the success or failure of the entire DAG."
  assert.equal(end.ad!.ExitCode, 0);
  assert.equal(readFileSync(path.join(dir, 'post.args'), 'utf8'), '2 1\n');
  const rescue = readFileSync(`${dagFile}.rescue001`, 'utf8');
  assert.match(rescue, /^# Rescue DAG version: 2\.0\.1 \(partial\)$/m);
  assert.match(rescue, /^# Nodes that failed: 1\n#   bad,<ENDLIST>$/m);
  assert.match(rescue, /^DONE good$/m);
  assert.match(rescue, /^RETRY bad 1$/m);
  assert.doesNotMatch(rescue, /DONE (bad|final)/);
  assert.equal(count(readFileSync(path.join(dir, 'bad.log'), 'utf8'), /return value 7/g), 2);
});

test('DAG statements this DAGMan does not implement fail the DAG with an error in dagman.out', async () => {
  const { dagFile } = dagFixture('dag-parent', 'JOB A node.sub\nJOB B node.sub\nPARENT A CHILD B\n', 'exit 0');
  const dagmanId = await submitDag(dagFile, 'standin-dag-parent', 10);
  const end = await standin.waitForJob(dagmanId, { statuses: [4], timeoutMs: 10_000 });
  assert.equal(end.ad!.ExitCode, 1);
  assert.equal(end.ad!.DAG_Status, undefined, 'a DAG that never parsed publishes no DAG_* attributes');
  assert.match(readFileSync(`${dagFile}.dagman.out`, 'utf8'), /ERROR: .*dagfile\.dag \(line 3\): PARENT is a DAGMan command this stand-in does not support/);
});

test('removing a running DAG by JobBatchName kills its nodes, runs the FINAL POST script, and empties the batch', async () => {
  const pids = dirFor('dag-rm-pids');
  const { dir, dagFile } = dagFixture(
    'dag-rm',
    ['JOB one node.sub', 'VARS one NAME="one"', 'JOB two node.sub', 'VARS two NAME="two"', 'FINAL final final.sub NOOP', 'SCRIPT POST final post.sh $DAG_STATUS'].join('\n') + '\n',
    `echo $$ > ${pids}/$1.pid\nexec sleep 120`,
  );
  const departed = recordDepartures();
  const dagmanId = await submitDag(dagFile, 'standin-dag-rm', 10);
  const batch = 'JobBatchName == "standin-dag-rm"';
  await until('both node jobs running', () => (standin.schedd.query(`${batch} && JobStatus == 2`).length === 3 ? true : undefined));
  const nodePids = await until('both node processes', () => {
    const files = readdirSync(pids);
    return files.length === 2 ? files.map((f) => Number(readFileSync(path.join(pids, f), 'utf8'))) : undefined;
  });

  assert.ok((await api.removeJobs(batch, 'stop the workflow')) >= 1);
  await until('the batch to leave the queue', () => (standin.schedd.query(batch).length === 0 ? true : undefined));

  for (const pid of nodePids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `node process ${pid} is gone`);
  assert.equal(readFileSync(path.join(dir, 'post.args'), 'utf8'), '4\n', 'the FINAL POST script ran, with DAG_Status 4');
  const dagman = departed.get(dagmanId)!;
  assert.equal(dagman.JobStatus, 3);
  assert.equal(dagman.DAG_Status, 4);
  const out = readFileSync(`${dagFile}.dagman.out`, 'utf8');
  assert.match(out, /Received SIGUSR1/);
  assert.match(out, /POST Script of node final completed successfully\./);
  assert.match(readFileSync(`${dagFile}.rescue001`, 'utf8'), /^# Nodes premarked DONE: 0$/m);
  assert.match(readFileSync(`${dagFile}.dagman.log`, 'utf8'), /^009 .*\n\tstop the workflow\n/m);
  assert.match(readFileSync(path.join(dir, 'one.log'), 'utf8'), /^009 .*Job was aborted\./m);
  assert.deepEqual(readdirSync(path.join(standin.directory, 'execute')), [], 'scratch directories are removed');
});

test('S3 file transfer: objects in, outputs uploaded or renamed; a missing object holds the job (13) until job policy removes it', async () => {
  const s3: S3Server = await startS3Server({ buckets: ['in', 'out'] });
  try {
    const host = new URL(s3.endpoint).host;
    const dir = dirFor('s3');
    const keyId = path.join(dir, 'keyid');
    const secret = path.join(dir, 'secret');
    writeFileSync(keyId, `  ${s3.accessKeyId}\n`);
    writeFileSync(secret, `${s3.secretAccessKey}\n\n`);
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(new PutObjectCommand({ Bucket: 'in', Key: 'Counties/Eau Claire/input.txt', Body: 'hello s3\n' }));
    script(path.join(dir, 'upper.sh'), 'tr a-z A-Z < input.txt > output.txt\necho made > extra.txt\necho done');
    const description = (input: string, extra: string[] = []) =>
      [
        'universe = container',
        'container_image = docker://example/unused:1',
        'executable = upper.sh',
        'log = $(Cluster).log',
        'output = $(Cluster).out',
        'error = $(Cluster).err',
        `aws_access_key_id_file = ${keyId}`,
        `aws_secret_access_key_file = ${secret}`,
        `transfer_input_files = s3://${host}/in/${input}`,
        `transfer_output_remaps = "output.txt = s3://${host}/out/results/Eau Claire/output.txt; extra.txt = renamed.txt"`,
        'should_transfer_files = YES',
        'when_to_transfer_output = ON_EXIT',
        ...extra,
        'queue',
      ].join('\n');
    const departed = recordDepartures();

    const ok = standin.schedd.submit(description('Counties/Eau Claire/input.txt'), { remote: false, iwd: dir }).jobIds[0]!;
    await standin.waitForJob(ok, { timeoutMs: 20_000 });
    assert.equal(departed.get(ok)?.ExitCode, 0);
    const uploaded = await client.send(new GetObjectCommand({ Bucket: 'out', Key: 'results/Eau Claire/output.txt' }));
    assert.equal(await uploaded.Body!.transformToString(), 'HELLO S3\n');
    assert.equal(readFileSync(path.join(dir, 'renamed.txt'), 'utf8'), 'made\n');
    assert.ok(!existsSync(path.join(dir, 'input.txt')), 'an unchanged input is not an output');
    assert.ok(!existsSync(path.join(dir, 'output.txt')), 'a file sent to S3 is not also copied to the Iwd');
    assert.equal(readFileSync(path.join(dir, `${ok.split('.')[0]}.out`), 'utf8'), 'done\n');

    const held: Array<Record<string, JsonValue>> = [];
    const onHold = (job: Job) => status(job) === 5 && held.push(job.ad.toJSON());
    standin.schedd.on('status', onHold);
    const missing = standin.schedd.submit(
      description('Counties/nope.txt', ['periodic_release = NumHolds < 2', 'periodic_remove = NumHolds >= 2']),
      { remote: false, iwd: dir },
    ).jobIds[0]!;
    await standin.waitForJob(missing, { timeoutMs: 20_000 });
    standin.schedd.off('status', onHold);
    const holds = held.filter((a) => `${a.ClusterId}.${a.ProcId}` === missing);
    assert.equal(holds.length, 2, 'held, released by periodic_release, held again, then removed by periodic_remove');
    assert.equal(holds[0]!.HoldReasonCode, 13);
    assert.equal(holds[0]!.HoldReasonSubCode, 256);
    assert.match(String(holds[0]!.HoldReason), new RegExp(`^Transfer input files failure at execution point \\S+ using protocol s3\\. .*\\( URL file = s3://${host}/in/Counties/nope\\.txt \\)$`));
    assert.ok(!String(holds[0]!.HoldReason).includes(s3.secretAccessKey + ' '), 'no key in the reason');
    assert.equal(departed.get(missing)?.JobStatus, 3);
    const log = readFileSync(path.join(dir, `${missing.split('.')[0]}.log`), 'utf8');
    assert.equal(count(log, /^012 .*\n.*\n\tCode 13 Subcode 256\n/gm), 2);
    assert.match(log, /^013 .*\n\tThe job attribute PeriodicRelease expression 'NumHolds < 2' evaluated to TRUE\n/m);
    assert.match(log, /^009 .*\n\tThe job attribute PeriodicRemove expression 'NumHolds >= 2' evaluated to TRUE\n/m);
    assert.equal(count(log, /^001 /gm), 0, 'input transfer failed before the job could execute');

    // An output the access point cannot write (a remap into a missing directory) holds the job with code 12.
    const badOut = standin.schedd.submit(description('Counties/Eau Claire/input.txt').replace('extra.txt = renamed.txt', 'extra.txt = no/such/dir/x.txt'), {
      remote: false,
      iwd: dir,
    }).jobIds[0]!;
    const stuck = await standin.waitForJob(badOut, { statuses: [5], timeoutMs: 20_000 });
    assert.equal(stuck.ad!.HoldReasonCode, 12);
    assert.equal(stuck.ad!.HoldReasonSubCode, 2);
    assert.match(String(stuck.ad!.HoldReason), /^Transfer output files failure at access point .* Details: writing to file .*no\/such\/dir\/x\.txt: \(errno 2\) No such file or directory$/);
    standin.schedd.remove([standin.schedd.get(badOut)!], 'test done');
    client.destroy();
  } finally {
    await s3.stop();
  }
});

test('the DAG file reader: VARS escapes, node options, and statements it refuses', () => {
  const dag = parseDag(
    [
      '# comment',
      'Job A a.sub DIR "sub dir" NOOP',
      'VARS A PREPEND path="C:\\\\tmp\\\\x" quote="say \\"hi\\"" plain = "a b"',
      'final F f.sub',
      'RETRY A 2 UNLESS-EXIT 42',
      'SCRIPT POST F post.sh $JOB \\',
      '  $RETURN',
    ].join('\n'),
    'x.dag',
    { useDagDir: false },
  );
  const [a, f] = dag.nodes;
  assert.deepEqual(a!.vars, [['path', 'C:\\tmp\\x'], ['quote', 'say "hi"'], ['plain', 'a b']]);
  assert.deepEqual([a!.dir, a!.noop, a!.retry, a!.unlessExit, a!.final], ['sub dir', true, 2, 42, false]);
  assert.deepEqual([f!.final, f!.post], [true, 'post.sh $JOB $RETURN']);
  const refused = (text: string, why: RegExp) => assert.throws(() => parseDag(text, 'x.dag', { useDagDir: true }), why);
  refused('JOB A a.sub\nJOB B b.sub\nPARENT A CHILD B\n', /x\.dag \(line 3\): PARENT is a DAGMan command this stand-in does not support/);
  refused('JOB A a.sub\nFROB A\n', /expected JOB, FINAL, SCRIPT, RETRY or VARS token \(found FROB\)/);
  refused('JOB A a.sub DIR d\n', /DIR specification in node lines not allowed with -UseDagDir/);
  refused('JOB A a.sub\nVARS A x="unterminated\n', /Missing end quote for variable x/);
  refused('JOB A a.sub\nVARS B x="1"\n', /Unknown Job B/);
  refused('FINAL F f.sub\nRETRY F 1\n', /Final job F cannot have RETRY/);
  refused('JOB A a.sub\nSCRIPT PRE A pre.sh\n', /PRE scripts are not supported/);
});
