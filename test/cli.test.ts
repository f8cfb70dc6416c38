import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HtcondorApi } from '../lib/htcondor_api.ts';
import { startPipelineFixture, type PipelineFixture } from './support/pipeline_fixture.ts';
import { runCli as cli } from './support/run_cli.ts';

let fx: PipelineFixture;
before(async () => {
  fx = await startPipelineFixture();
  await fx.reset();
});
after(async () => {
  await fx.stop();
});

test('--help explains each mode', async () => {
  const main = await cli(['--help']);
  assert.equal(main.code, 0);
  assert.match(main.stdout, /--input-bucket/);
  assert.match(main.stdout, /crondor/);
  assert.match(main.stdout, /processed-<ts>\.csv/);
  for (const mode of ['crondor', 'post']) {
    for (const args of [[mode, '--help'], ['help', mode]]) {
      const help = await cli(args);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`Usage: cog_pipeline\\.ts ${mode}`), args.join(' '));
    }
  }
  const plain = await cli(['help']);
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /Usage: cog_pipeline\.ts \[crondor\|post\] \[options\]/);
});

test('S3 keys without an endpoint are refused with the credential rule', async () => {
  const r = await cli(['-a', 'k', '-s', 's', '--input-bucket', 'a', '--output-bucket', 'b', '-p', '*raw.csv', '--api-url', 'http://127.0.0.1:1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /access\/secret keys must be provided together with an endpoint/);
});

test('a missing required flag and a bad -m are usage errors', async () => {
  const r = await cli(['--input-bucket', 'a', '-p', 'x']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--output-bucket: is required/);
  for (const [value, message] of [
    ['lots', /--max-running: must be a whole number written in decimal digits/],
    ['0x10', /--max-running: must be a whole number written in decimal digits/],
    ['1e3', /--max-running: must be a whole number written in decimal digits/],
    ['0', /--max-running: must be at least 1/],
    ['2147483648', /--max-running: must be at most 2147483647 \(DAGMan's limit\)/],
  ] as const) {
    const m = await cli([...fx.launchArgs(), '-m', value]);
    assert.equal(m.code, 2, value);
    assert.match(m.stderr, message, value);
  }
});

test('patterns and paths a submit description cannot carry as text are usage errors, with the reason', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['-p', '*raw.csv ', /--pattern: starts or ends with white space, which a submit description would drop/],
    ['-p', ' *raw.csv', /--pattern: starts or ends with white space/],
    ['-p', '*raw.csv\\', /--pattern: ends in a backslash, which a submit description reads as a line continuation/],
    ['-p', '*$(Cluster)raw.csv', /--pattern: holds "\$\(", "\$\$" or "\$NAME\(", which HTCondor reads as a macro/],
    ['-p', '*$ENV(HOME)raw.csv', /--pattern: holds "\$\("/],
    ['-p', '*$$(x)raw.csv', /--pattern: holds "\$\("/],
    ['-p', '*raw\n.csv', /--pattern: holds a control character or a line break/],
    ['-a', '/home/sco/$(x)keyid', /--access-key: holds "\$\("/],
    ['--api-token-file', '/home/sco/$ENV(HOME)', /--api-token-file: holds "\$\("/],
  ];
  for (const [flag, value, message] of cases) {
    const args = fx.launchArgs();
    const at = args.indexOf(flag === '-p' ? '-p' : flag);
    if (at >= 0) args[at + 1] = value;
    else args.push(flag, value);
    const r = await cli(args, { cwd: fx.launchDir });
    assert.equal(r.code, 2, `${flag} ${JSON.stringify(value)}: ${r.stderr}`);
    assert.match(r.stderr, message, JSON.stringify(value));
  }
  // A lone "$" is text to both parsers: fine in a pattern.
  const ok = fx.launchArgs();
  ok[ok.indexOf('-p') + 1] = '*$raw.csv';
  const r = await cli(ok, { cwd: fx.launchDir });
  assert.equal(r.code, 0, r.stderr);
  await fx.schedd.removeByConstraint(`ClusterId == ${/JobID (\d+)/.exec(r.stdout)![1]}`, 'test over');
});

test('a launch directory with a "$" in its path is refused before anything is submitted', async () => {
  const dir = path.join(fx.home, 'runs$2026');
  mkdirSync(dir, { recursive: true });
  const before = fx.standin.schedd.all().length;
  const r = await cli(fx.launchArgs(), { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /the launch directory .*runs\$2026 holds a "\$", which the crondor job's submit description cannot carry; launch from another directory/);
  assert.equal(fx.standin.schedd.all().length, before);
});

test('launch without an htcondor-api URL says how to give one', async () => {
  const args = fx.launchArgs();
  args.splice(args.indexOf('--api-url'), 2);
  const r = await cli(args);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--api-url URL or set HTCONDOR_API_URL/);
});

test('launch submits the crondor job, prints its id as the Python tool did, and refuses a second one', async () => {
  const r = await cli(fx.launchArgs(), { cwd: fx.launchDir });
  assert.equal(r.code, 0, r.stderr);
  const m = /^Crondor job was submitted with JobID (\d+)\.0$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  const job = fx.standin.schedd.get(`${m[1]}.0`);
  assert.ok(job);
  const ad = job.ad.toJSON();
  assert.equal(ad.JobUniverse, 12);
  assert.equal(ad.JobBatchName, 'COG-Pipeline-Crondor-*raw.csv');
  assert.equal(ad.CronMinute, '*/15');
  assert.equal(ad.UserLog, path.join(fx.launchDir, `crondor_${m[1]}.log`));
  assert.equal(ad.Out, path.join(fx.launchDir, `crondor_${m[1]}.out`));
  assert.equal(ad.OnExitRemove, false);
  assert.equal(ad.Requirements, true);
  assert.equal(ad.JobStatus, 1);
  // Only the key files' paths travel with the job, never the keys or the token.
  const text = JSON.stringify(ad);
  assert.ok(text.includes(fx.settings.s3.secretKeyFile));
  assert.ok(!text.includes(readFileSync(fx.standin.tokenFile, 'utf8').trim()));
  assert.ok(!text.includes(fx.s3.secretAccessKey));

  const again = await cli(fx.launchArgs(), { cwd: fx.launchDir });
  assert.equal(again.code, 2);
  assert.match(again.stderr, new RegExp(`already in the queue \\(${m[1]}\\.0\\)`));
  await fx.schedd.removeByConstraint(`ClusterId == ${m[1]}`, 'test over');
});

test('a completed or removed crondor job still listed in the queue does not block a new launch', async () => {
  await fx.reset();
  // Jobs submitted through htcondor-api stay listed 10 days after they complete (LeaveJobInQueue).
  const api = new HtcondorApi({ url: fx.standin.url, token: readFileSync(fx.standin.tokenFile, 'utf8').trim() });
  try {
    const { clusterId } = await api.submit('executable = /bin/true\ntransfer_executable = false\nbatch_name = COG-Pipeline-Crondor-*raw.csv\nqueue\n');
    const done = await fx.standin.waitForJob(`${clusterId}.0`, { statuses: [4] });
    assert.equal(done.status, 4, 'the old job completed and is still listed');
    const r = await cli(fx.launchArgs(), { cwd: fx.launchDir });
    assert.equal(r.code, 0, r.stderr);
    const m = /JobID (\d+)\.0/.exec(r.stdout)!;
    await fx.schedd.removeByConstraint(`ClusterId == ${m[1]}`, 'test over');
  } finally {
    await api.close();
  }
});

test('a crondor cycle run by hand with nothing to do exits 0 and says so', async () => {
  const r = await cli(['crondor', ...fx.launchArgs(), '--launch-dir', fx.launchDir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /no new manifests matching "\*raw\.csv" in s3:\/\/sco-in/);
});

test('launch with one bucket for input and output says in one line that COGs replace the originals', async () => {
  await fx.reset();
  const args = fx.launchArgs();
  args[args.indexOf('--output-bucket') + 1] = fx.settings.inputBucket;
  const r = await cli(args, { cwd: fx.launchDir });
  assert.equal(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((line) => /replace/.test(line));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /input and output bucket are both "sco-in": each COG will replace its original GeoTIFF at the same key/);
  const m = /JobID (\d+)\.0/.exec(r.stdout)!;
  await fx.schedd.removeByConstraint(`ClusterId == ${m[1]}`, 'test over');
});

test('launch checks the buckets before submitting anything', async () => {
  const args = fx.launchArgs();
  args[args.indexOf('--input-bucket') + 1] = 'no-such-bucket';
  const before = fx.standin.schedd.all().length;
  const r = await cli(args, { cwd: fx.launchDir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot list bucket "no-such-bucket"/);
  assert.match(r.stderr, /cause: .*NoSuchBucket/);
  assert.equal(fx.standin.schedd.all().length, before);
});

test('a malformed S3 endpoint is a usage error', async () => {
  const args = fx.launchArgs();
  args[args.indexOf('-e') + 1] = 'web s3.wisc.edu';
  const r = await cli(args);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Invalid S3 endpoint "web s3\.wisc\.edu"/);
});
