import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { ApiSchedd } from '../lib/schedd.ts';
import { ClassAd, type JsonValue } from './standin/classad.ts';
import { CronTab } from './standin/cron.ts';
import { parseDag } from './standin/dag_file.ts';
import { jobArguments, jobEnvironment } from './standin/executor.ts';
import { status, type Job } from './standin/schedd.ts';
import { fixedClock, startStandin, type Standin } from './standin/standin.ts';
import { startS3Server, type S3Server } from './support/s3_server.ts';

/**
 * The stand-in's execution side with real processes: local and scheduler universe jobs as the
 * schedd starts them (its own ad, no inherited environment, cron schedules on a test clock, job
 * policy, LeaveJobInQueue), DAGMan (retries, FINAL node, condor_rm, a crash and its requeue),
 * and vanilla jobs with S3 file transfer and job policy. Jobs go in through the REST API, as
 * the pipeline submits them, except where a test stands for DAGMan's own submissions.
 */

let standin: Standin;
let api: HtcondorApi;
let work: string;

const EXECUTION = { startDelayMs: 20, periodicIntervalMs: 100, killGraceMs: 500, submitRetryDelayMs: 50 };

before(async () => {
  standin = await startStandin({ execution: EXECUTION });
  api = new HtcondorApi({ url: standin.url, token: readFileSync(standin.tokenFile, 'utf8').trim(), timeoutMs: 60_000 });
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ads of jobs as they leave the queue, by id. */
function recordDepartures(s: Standin = standin): Map<string, Record<string, JsonValue>> {
  const seen = new Map<string, Record<string, JsonValue>>();
  s.schedd.on('gone', (job: Job) => seen.set(job.id, job.ad.toJSON()));
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
const adOf = (s: Standin, id: string) => s.schedd.get(id)?.ad.toJSON();

/** A local universe job through the API: `/bin/sh -c <command>`, its outputs in `dir`. */
function localJob(dir: string, command: string, extra: string[] = []): string {
  return [
    'universe = local',
    'executable = /bin/sh',
    'transfer_executable = false',
    `arguments = "-c '${command}'"`,
    `initialdir = ${dir}`,
    `output = ${dir}/job_$(Cluster).out`,
    `error = ${dir}/job_$(Cluster).err`,
    ...extra,
    'queue',
  ].join('\n');
}

test('the starter reads Arguments and Environment as V2 raw strings: double quotes are ordinary characters', () => {
  const ad = new ClassAd({ Arguments: `-c 'echo it''s; exit 0' "q"`, Environment: `"A=1 B='x y' C=2"` });
  assert.deepEqual(jobArguments(ad), ['-c', "echo it's; exit 0", '"q"']);
  assert.deepEqual(jobEnvironment(ad), { '"A': '1', B: 'x y', C: '2"' });
  assert.deepEqual(jobArguments(new ClassAd({ Args: ' a  b\\"c ' })), ['a', 'b\\"c']);
  assert.deepEqual(jobEnvironment(new ClassAd({ Env: 'A=1;B=2' })), { A: '1', B: '2' });
  assert.deepEqual(jobEnvironment(new ClassAd({})), {});
  assert.throws(() => jobEnvironment(new ClassAd({ Environment: '""' })), /Missing '=' after environment variable '""'/);
  assert.throws(() => jobEnvironment(new ClassAd({ Environment: "A='x" })), /Unbalanced quote starting here: 'x/);
  assert.throws(() => jobArguments(new ClassAd({ Arguments: "'open" })), /Unbalanced quote/);
});

test('CronTab: the next matching minute strictly after now, in local time, with HTCondor\'s field rules', () => {
  const tab = (fields: Record<string, string>) => {
    const t = CronTab.fromAd(new ClassAd(fields));
    if (!(t instanceof CronTab)) throw new Error(t.error);
    return t;
  };
  const at = (text: string) => Math.floor(new Date(text).getTime() / 1000);
  const every15 = tab({ CronMinute: '*/15', CronHour: '*' });
  assert.equal(every15.nextRunTime(at('2026-03-02T10:07:30')), at('2026-03-02T10:15:00'));
  assert.equal(every15.nextRunTime(at('2026-03-02T10:15:00')), at('2026-03-02T10:30:00'), 'strictly after now');
  assert.equal(every15.nextRunTime(at('2026-03-02T23:59:10')), at('2026-03-03T00:00:00'));
  assert.equal(tab({ CronMinute: '5,35', CronHour: '2' }).nextRunTime(at('2026-03-02T10:07:30')), at('2026-03-03T02:05:00'));
  // A step keeps the values divisible by it, not every 15th from the start of the range.
  assert.equal(tab({ CronMinute: '5-59/15' }).nextRunTime(at('2026-03-02T10:00:30')), at('2026-03-02T10:15:00'));
  // Weekdays only: Saturday 2026-03-07 goes to Monday.
  assert.equal(tab({ CronMinute: '0', CronHour: '9', CronDayOfWeek: '1-5' }).nextRunTime(at('2026-03-06T10:00:00')), at('2026-03-09T09:00:00'));
  assert.equal(tab({ CronMinute: '30', CronHour: '0', CronDayOfMonth: '1', CronMonth: '1' }).nextRunTime(at('2026-03-02T10:00:00')), at('2027-01-01T00:30:00'));
  const invalid = CronTab.fromAd(new ClassAd({ CronMinute: '*/15', CronHour: 'noon' }));
  assert.deepEqual(invalid, { error: "Invalid parameter value 'noon' for CronHour" });
  assert.ok('error' in (CronTab.fromAd(new ClassAd({ CronMinute: '*/0' })) as object), 'a step of 0 is invalid');
});

test('a cron job runs when the test clock reaches its DeferralTime, again at the next one, as the same job', async () => {
  const timed = await startStandin({ clock: fixedClock('2026-03-02T10:07:30'), execution: EXECUTION });
  const timedApi = new HtcondorApi({ url: timed.url, token: readFileSync(timed.tokenFile, 'utf8').trim(), timeoutMs: 60_000 });
  try {
    const dir = dirFor('cron-clock');
    const { jobIds } = await timedApi.submit(localJob(dir, `echo ran >> ${dir}/runs.txt`, ['log = cron.log', 'cron_minute = */15', 'cron_hour = *']));
    const id = jobIds[0]!;
    const at = (text: string) => Math.floor(new Date(text).getTime() / 1000);
    // Released at once (nothing to spool); idle until 10:15 local time.
    assert.equal(adOf(timed, id)?.DeferralTime, at('2026-03-02T10:15:00'));
    // As the pipeline does: OnExitRemove = false (a boolean, which golang-htcondor's parser cannot make) keeps it queued.
    await timedApi.editJob(id, { OnExitRemove: false });
    await sleep(150);
    assert.equal(adOf(timed, id)?.JobStatus, 1);
    assert.equal(adOf(timed, id)?.NumJobStarts ?? 0, 0, 'nothing runs before its time');

    await timed.advanceClock(7.5 * 60_000);
    await until('the first run', () => (adOf(timed, id)?.NumJobCompletions === 1 && adOf(timed, id)?.JobStatus === 1 ? true : undefined));
    assert.equal(adOf(timed, id)?.DeferralTime, at('2026-03-02T10:30:00'), 'requeued with the next cron time');
    assert.equal(readFileSync(path.join(dir, 'runs.txt'), 'utf8'), 'ran\n');
    await sleep(100);
    assert.equal(adOf(timed, id)?.NumJobStarts, 1);

    await timed.advanceClock(15 * 60_000);
    await until('the second run', () => (adOf(timed, id)?.NumJobCompletions === 2 && adOf(timed, id)?.JobStatus === 1 ? true : undefined));
    assert.equal(readFileSync(path.join(dir, 'runs.txt'), 'utf8'), 'ran\nran\n');
    const ad = adOf(timed, id)!;
    assert.deepEqual([`${ad.ClusterId}.${ad.ProcId}`, ad.NumJobStarts, ad.DeferralTime], [id, 2, at('2026-03-02T10:45:00')]);
    const log = readFileSync(path.join(String(ad.Iwd), 'cron.log'), 'utf8');
    assert.equal(count(log, /^001 /gm), 2);
    assert.equal(count(log, /^004 /gm), 2);
    await assert.rejects(standin.advanceClock(1), /needs an injected clock/);
  } finally {
    await timedApi.close();
    await timed.stop();
  }
});

test('OnExitRemove as typed: golang-htcondor\'s string "false" completes the job; 0 requeues it; LeaveJobInQueue keeps a completed job 10 days', async () => {
  const timed = await startStandin({ clock: fixedClock('2026-03-02T10:00:00'), execution: EXECUTION });
  const timedApi = new HtcondorApi({ url: timed.url, token: readFileSync(timed.tokenFile, 'utf8').trim(), timeoutMs: 60_000 });
  try {
    const departed = recordDepartures(timed);
    const dir = dirFor('exit-policy');
    // on_exit_remove = false arrives as the string "false": the job completes, and by default stays.
    const stringFalse = (await timedApi.submit(localJob(dir, 'exit 0', ['on_exit_remove = false']))).jobIds[0]!;
    const kept = await timed.waitForJob(stringFalse, { statuses: [4] });
    assert.equal(kept.ad?.OnExitRemove, 'false');
    assert.deepEqual([kept.status, kept.ad?.NumJobStarts, kept.ad?.CompletionDate], [4, 1, Math.floor(timed.now().getTime() / 1000)]);
    // leave_in_queue = false: gone as soon as it completes.
    const leaving = (await timedApi.submit(localJob(dir, 'exit 0', ['leave_in_queue = false']))).jobIds[0]!;
    const gone = await timed.waitForJob(leaving);
    assert.equal(gone.status, null);
    assert.equal(departed.get(leaving)?.JobStatus, 4);
    // An OnExitRemove that evaluates to false (0) requeues: here until the second completion.
    const twice = (await timedApi.submit(localJob(dir, `echo run >> ${dir}/twice.txt`, ['requirements = false']))).jobIds[0]!;
    await timedApi.editJob(twice, { OnExitRemove: 'NumJobCompletions >= 2' });
    await timedApi.editJob(twice, { Requirements: true });
    const done = await timed.waitForJob(twice, { statuses: [4] });
    assert.equal(done.ad?.NumJobCompletions, 2);
    assert.equal(readFileSync(path.join(dir, 'twice.txt'), 'utf8'), 'run\nrun\n');

    // Ten days on, the default LeaveJobInQueue is false: the periodic pass takes the completed jobs out.
    await timed.advanceClock(864_000 * 1000 - 1000);
    assert.equal(timed.schedd.get(stringFalse)?.ad.toJSON().JobStatus, 4, 'still there a second before ten days');
    await timed.advanceClock(2000);
    assert.equal(timed.schedd.get(stringFalse), undefined);
    assert.equal(timed.schedd.get(twice), undefined);
  } finally {
    await timedApi.close();
    await timed.stop();
  }
});

test('a local job runs only if its Requirements match the schedd\'s own ad: should_transfer_files = YES never starts; a PATCH can let a job start', async () => {
  const dir = dirFor('requirements');
  const plain = (await api.submit(localJob(dir, 'exit 0'))).jobIds[0]!;
  const transfer = (await api.submit(localJob(dir, 'exit 0', ['should_transfer_files = YES', 'when_to_transfer_output = ON_EXIT']))).jobIds[0]!;
  const blocked = (await api.submit(localJob(dir, `echo started > ${dir}/blocked.txt`, ['requirements = false']))).jobIds[0]!;
  const done = await standin.waitForJob(plain, { statuses: [4] });
  assert.equal(done.ad?.ExitCode, 0);
  await sleep(300);
  for (const id of [transfer, blocked]) {
    const ad = adOf(standin, id)!;
    assert.deepEqual([ad.JobStatus, ad.NumJobStarts ?? 0, ad.JobStartDate], [1, 0, undefined], `job ${id} is idle and never started`);
  }
  assert.match(String(adOf(standin, transfer)!.Requirements), /TARGET\.HasFileTransfer/);
  // The schedd's ad has what the job asks for, and no HasFileTransfer.
  const ad = standin.schedd.scheddAd().toJSON();
  assert.deepEqual([ad.OpSys, ad.HasContainer, ad.HasSIF, ad.HasFileTransfer], ['LINUX', true, true, undefined]);
  assert.ok(Number(ad.Memory) > 0 && Number(ad.Cpus) > 0 && Number(ad.Disk) > 0);

  await api.editJob(blocked, { Requirements: '(TARGET.Arch =!= UNDEFINED) && TARGET.Memory > 0' });
  await standin.waitForJob(blocked, { statuses: [4] });
  assert.equal(readFileSync(path.join(dir, 'blocked.txt'), 'utf8'), 'started\n');
  assert.equal(await api.removeJobs(`ClusterId == ${transfer.split('.')[0]}`, 'test done'), 1);
});

test('local and scheduler universe jobs inherit no environment; one the schedd cannot read is not started', async () => {
  const dir = dirFor('environment');
  process.env.STANDIN_SHOULD_NOT_LEAK = 'leaked';
  try {
    const readEnv = (file: string) =>
      Object.fromEntries(
        readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    // env itself, not through a shell (which drops variables whose names it cannot export).
    const envJob = (universe: string, out: string, environment: string) =>
      [`universe = ${universe}`, 'executable = /usr/bin/env', 'transfer_executable = false', `initialdir = ${dir}`, `output = ${dir}/${out}`, `environment = ${environment}`, 'queue'].join('\n');
    const local = (await api.submit(envJob('local', 'local.env', '"A=1 B=2"'))).jobIds[0]!;
    const sched = (await api.submit(envJob('scheduler', 'sched.env', 'GREETING=hi'))).jobIds[0]!;
    const localAd = (await standin.waitForJob(local, { statuses: [4] })).ad!;
    await standin.waitForJob(sched, { statuses: [4] });
    // The literal double quotes of `environment = "A=1 B=2"` belong to the first name and the last value.
    assert.deepEqual(readEnv(path.join(dir, 'local.env')), { '"A': '1', B: '2"', BATCH_SYSTEM: 'HTCondor', _CONDOR_JOB_IWD: localAd.Iwd });
    assert.deepEqual(readEnv(path.join(dir, 'sched.env')), { GREETING: 'hi', CONDOR_ID: sched });

    // `environment = ""` (two quote characters) and an unbalanced quote: the job is not started and cools down.
    const now = () => Math.floor(Date.now() / 1000);
    const emptyQuotes = (await api.submit(localJob(dir, `echo ran > ${dir}/never.txt`, ['environment = ""']).replace('universe = local', 'universe = scheduler'))).jobIds[0]!;
    const unbalanced = (await api.submit(localJob(dir, `echo ran > ${dir}/never.txt`, ["environment = A='x"]))).jobIds[0]!;
    const cooled = await until('both cool-downs', () => {
      const a = adOf(standin, emptyQuotes);
      const b = adOf(standin, unbalanced);
      return a?.NumJobCoolDowns && b?.NumJobCoolDowns ? [a, b] : undefined;
    });
    await sleep(200);
    for (const ad of cooled) assert.deepEqual([ad.JobStatus, ad.NumJobStarts ?? 0, ad.JobStartDate, ad.HoldReason], [1, 0, undefined, undefined]);
    assert.ok(Math.abs(Number(cooled[0]!.JobCoolDownExpiration) - (now() + 300)) <= 2, 'scheduler universe: SCHEDULER_UNIVERSE_COOL_DOWN_DURATION');
    assert.ok(Math.abs(Number(cooled[1]!.JobCoolDownExpiration) - (now() + 20)) <= 2);
    assert.ok(!existsSync(path.join(dir, 'never.txt')));
    assert.equal(await api.removeJobs(`ClusterId == ${emptyQuotes.split('.')[0]} || ClusterId == ${unbalanced.split('.')[0]}`, 'test done'), 2);
  } finally {
    delete process.env.STANDIN_SHOULD_NOT_LEAK;
  }
});

test('a local-universe cron job runs when triggered (runCron, the control route), stays queued, and logs each run', async () => {
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
      'environment = GREETING=hello',
      'leave_in_queue = false',
      'queue',
    ].join('\n'),
  );
  const id = jobIds[0]!;
  const cluster = id.split('.')[0];
  await api.editJob(id, { OnExitRemove: false });

  // Well past the start delay it is still idle: its cron time has not come.
  await sleep(200);
  const waiting = await api.getJob(id);
  assert.equal(waiting?.JobStatus, 1);
  assert.ok(Number(waiting?.DeferralTime) > Date.now() / 1000);

  const first = await standin.runCron(id);
  assert.equal(first.status, 1, 'OnExitRemove = false: back to idle, still queued');
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
  // Output files keep their absolute paths and are truncated at each run, as HTCondor opens them afresh.
  assert.equal(readFileSync(path.join(dir, `cron_${cluster}.out`), 'utf8'), 'to-stdout\n');
  assert.equal(readFileSync(path.join(dir, `cron_${cluster}.err`), 'utf8'), 'to-stderr\n');
  // The user log was cut to its base name: it is in the spool directory.
  assert.ok(!existsSync(path.join(dir, `cron_${cluster}.log`)));
  const log = readFileSync(path.join(String(second?.Iwd), `cron_${cluster}.log`), 'utf8');
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

/** The DAGMan job as the pipeline submits it: the description, then its settings by PATCH, then Requirements = true. */
async function submitDag(dagFile: string, batchName: string, maxJobs: number): Promise<string> {
  const schedd = new ApiSchedd(api);
  const cluster = await schedd.submitDag({ dagman: '/usr/bin/condor_dagman', dagFile, batchName, maxJobs, environment: { MYVAR: 'from-dagman' } });
  return `${cluster}.0`;
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

  const end = await standin.waitForJob(dagmanId, { timeoutMs: 30_000 });
  standin.schedd.off('status', watch);
  assert.equal(end.status, null, 'leave_in_queue = false: the finished DAGMan job leaves the queue');
  const ad = departed.get(dagmanId)!;
  assert.equal(ad.JobStatus, 4);
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
  // dagman.out is where _CONDOR_DAGMAN_LOG (set on the job after submission) says.
  const out = readFileSync(`${dagFile}.dagman.out`, 'utf8');
  assert.match(out, /Retrying node B \(retry #1 of 2\)\.\.\./);
  assert.match(out, /POST Script of node final completed successfully\./);
  assert.match(out, /EXITING WITH STATUS 0$/m);
  assert.match(readFileSync(`${dagFile}.lib.out`, 'utf8'), /Executing condor dagman/);
  assert.ok(!existsSync(`${dagFile}.rescue001`));
  assert.ok(!existsSync(`${dagFile}.lock`), 'the lock file goes when DAGMan exits');
  // UserLog was set after submission (not rewritten): the job's events from then on are there.
  assert.match(readFileSync(`${dagFile}.dagman.log`, 'utf8'), /^005 .*\n\t\(1\) Normal termination \(return value 0\)/m);
});

test('a node that keeps failing leaves a rescue DAG and DAG_Status 2; the FINAL node decides the exit status', async () => {
  const { dir, dagFile } = dagFixture(
    'dag-failing',
    ['JOB good node.sub', 'VARS good NAME="good"', 'JOB bad node.sub', 'VARS bad NAME="bad"', 'RETRY bad 1', 'FINAL final final.sub NOOP', 'SCRIPT POST final post.sh $DAG_STATUS $FAILED_COUNT'].join('\n') + '\n',
    'if [ "$1" = bad ]; then exit 7; fi\nexit 0',
  );
  const departed = recordDepartures();
  const dagmanId = await submitDag(dagFile, 'standin-dag-failing', 10);
  await standin.waitForJob(dagmanId, { timeoutMs: 30_000 });
  const end = departed.get(dagmanId)!;
  assert.deepEqual([end.DAG_Status, end.DAG_NodesDone, end.DAG_NodesFailed], [2, 2, 1]);
  // "The success or failure of the FINAL node determines the success or failure of the entire DAG."
  assert.equal(end.ExitCode, 0);
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
  const departed = recordDepartures();
  const dagmanId = await submitDag(dagFile, 'standin-dag-parent', 10);
  await standin.waitForJob(dagmanId, { timeoutMs: 60_000 });
  const end = departed.get(dagmanId)!;
  assert.equal(end.ExitCode, 1);
  assert.equal(end.DAG_Status, undefined, 'a DAG that never parsed publishes no DAG_* attributes');
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

test('DAGMan killed by a signal: requeued by condor_submit_dag\'s OnExitRemove and resumed; with golang-htcondor\'s string OnExitRemove it leaves', async () => {
  const { dagFile } = dagFixture('dag-crash', 'JOB long node.sub\nVARS long NAME="long"\n', 'exec sleep 120');
  const departed = recordDepartures();
  const dagmanId = await submitDag(dagFile, 'standin-dag-crash', 10);
  const cluster = Number(dagmanId.split('.')[0]);
  const nodeId = await until('the node job running', () => standin.schedd.query(`DAGManJobId == ${cluster} && JobStatus == 2`)[0]?.id);
  standin.executor.crash(dagmanId, 'SIGKILL');
  await until('DAGMan running again', () => {
    const ad = adOf(standin, dagmanId);
    return ad?.JobStatus === 2 && ad.NumJobStarts === 2 ? ad : undefined;
  });
  const restarted = adOf(standin, dagmanId)!;
  assert.deepEqual([restarted.ExitBySignal, restarted.ExitSignal, restarted.ExitCode], [true, 9, undefined]);
  assert.equal(adOf(standin, nodeId)?.JobStatus, 2, 'its node job carried on');
  assert.match(readFileSync(`${dagFile}.dagman.log`, 'utf8'), /^004 .*\n\t\(0\) Job terminated and was requeued\n(?:\t.*\n)*?\t\(0\) Abnormal termination \(signal 9\)/m);
  assert.match(readFileSync(`${dagFile}.dagman.out`, 'utf8'), /Resuming/);
  await api.removeJobs('JobBatchName == "standin-dag-crash"', 'test done');
  await until('the crash batch to leave', () => (standin.schedd.query('JobBatchName == "standin-dag-crash"').length === 0 ? true : undefined));

  // Submitted with on_exit_remove in the description: golang-htcondor makes it a string, which counts as "remove".
  const plain = dagFixture('dag-crash-string', 'JOB long node.sub\nVARS long NAME="long"\n', 'exec sleep 120');
  const { jobIds } = await api.submit(
    [
      'universe = scheduler',
      'executable = /usr/bin/condor_dagman',
      'transfer_executable = false',
      `arguments = "-p 0 -f -l . -Lockfile ${plain.dagFile}.lock -Dag ${plain.dagFile} -UseDagDir"`,
      'on_exit_remove = (ExitSignal =?= 11 || (ExitCode =!= UNDEFINED && ExitCode >= 0 && ExitCode <= 2))',
      'leave_in_queue = false',
      'batch_name = standin-dag-string',
      'queue',
    ].join('\n'),
  );
  const stringId = jobIds[0]!;
  const stringCluster = Number(stringId.split('.')[0]);
  await until('its node job running', () => standin.schedd.query(`DAGManJobId == ${stringCluster} && JobStatus == 2`)[0]?.id);
  const spool = String(adOf(standin, stringId)!.Iwd);
  standin.executor.crash(stringId, 'SIGKILL');
  const left = await standin.waitForJob(stringId);
  assert.equal(left.status, null);
  const ad = departed.get(stringId)!;
  assert.deepEqual([ad.JobStatus, ad.ExitSignal, ad.NumJobStarts, typeof ad.OnExitRemove], [4, 9, 1, 'string']);
  // Without _CONDOR_DAGMAN_LOG, DAGMan wrote default.dagman.out in its working directory, the spool.
  assert.match(readFileSync(path.join(spool, 'default.dagman.out'), 'utf8'), /Caught signal SIGKILL/);
  // Its node job is an orphan now; take it out.
  assert.equal(await api.removeJobs(`DAGManJobId == ${stringCluster}`, 'test done'), 1);
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

    // Submitted on the access point, as DAGMan submits node jobs (condor_submit's reading).
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
