import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseSubmitDescription,
  parseEnvironment,
  splitArguments,
  lookupAttribute,
  SubmitDescriptionError,
  type AttrValue,
  type JobAttributes,
  type SubmitContext,
} from './standin/submit_description.ts';
import { condorArguments } from '../lib/condor_syntax.ts';

const NOW = new Date('2025-03-01T12:00:00Z');
const EPOCH = Math.floor(NOW.getTime() / 1000);
const ctx: SubmitContext = {
  clusterId: 42,
  iwd: '/home/alice/cogs',
  owner: 'alice',
  now: NOW,
  env: { HOME: '/home/alice', PATH: '/usr/bin:/bin', AWS_PROFILE: 'chtc', LANG: 'C.UTF-8' },
};

const lit = (value: string | number | boolean): AttrValue => ({ kind: 'literal', value });
const expr = (text: string): AttrValue => ({ kind: 'expr', text });

function only(text: string, c: SubmitContext = ctx): JobAttributes {
  const { procs } = parseSubmitDescription(text, c);
  assert.equal(procs.length, 1);
  return procs[0]!;
}

/** Asserts a SubmitDescriptionError naming `line` and matching `reason`. */
function rejects(text: string, line: number, reason: RegExp): SubmitDescriptionError {
  let caught: unknown;
  try {
    parseSubmitDescription(text, ctx);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SubmitDescriptionError, `expected a SubmitDescriptionError, got ${String(caught)}`);
  assert.match(caught.message, new RegExp(`Line ${line} of the submit description`));
  assert.equal(caught.lineNumber, line);
  assert.match(caught.reason, reason);
  return caught;
}

test('a cron job in the local universe, as the crondor submit description writes it', () => {
  const text = [
    '# crondor: rescan the bucket every six hours',
    'universe                = local',
    'executable              = bin/cog-pipeline',
    'arguments               = "scan --bucket s3://imagery/raw --manifest manifests/$(Cluster).csv"',
    'log                     = logs/crondor.log',
    'output                  = logs/crondor.$(Cluster).out',
    'error                   = logs/crondor.$(Cluster).err',
    'environment             = "HOME=$ENV(HOME) AWS_REGION=us-east-1"',
    'getenv                  = AWS_*, LANG',
    'cron_minute             = 15',
    'cron_hour               = */6',
    'cron_day_of_month       = *',
    'cron_month              = *',
    'cron_day_of_week        = *',
    'on_exit_remove          = false',
    'batch_name              = cog-crondor',
    'aws_access_key_id_file  = /home/alice/.chtc_s3/access.key',
    'aws_secret_access_key_file = /home/alice/.chtc_s3/secret.key',
    'notification            = Error',
    'queue',
    '',
  ].join('\n');
  const ad = only(text);

  assert.deepEqual(ad.get('ClusterId'), lit(42));
  assert.deepEqual(ad.get('ProcId'), lit(0));
  assert.deepEqual(ad.get('JobUniverse'), lit(12));
  assert.deepEqual(ad.get('JobStatus'), lit(1));
  assert.deepEqual(ad.get('QDate'), lit(EPOCH));
  assert.deepEqual(ad.get('EnteredCurrentStatus'), lit(EPOCH));
  assert.deepEqual(ad.get('NumHolds'), lit(0));
  assert.deepEqual(ad.get('NumJobStarts'), lit(0));
  assert.deepEqual(ad.get('Iwd'), lit('/home/alice/cogs'));
  assert.deepEqual(ad.get('Owner'), lit('alice'));
  assert.deepEqual(ad.get('Cmd'), lit('/home/alice/cogs/bin/cog-pipeline'));
  assert.deepEqual(splitArguments(ad), [
    'scan', '--bucket', 's3://imagery/raw', '--manifest', 'manifests/42.csv',
  ]);
  assert.deepEqual(ad.get('UserLog'), lit('/home/alice/cogs/logs/crondor.log'));
  assert.deepEqual(ad.get('Out'), lit('logs/crondor.42.out'));
  assert.deepEqual(ad.get('Err'), lit('logs/crondor.42.err'));
  assert.deepEqual(parseEnvironment(ad), {
    HOME: '/home/alice', AWS_REGION: 'us-east-1', AWS_PROFILE: 'chtc', LANG: 'C.UTF-8',
  });
  assert.deepEqual(ad.get('CronMinute'), lit('15'));
  assert.deepEqual(ad.get('CronHour'), lit('*/6'));
  assert.deepEqual(ad.get('CronDayOfMonth'), lit('*'));
  assert.deepEqual(ad.get('CronMonth'), lit('*'));
  assert.deepEqual(ad.get('CronDayOfWeek'), lit('*'));
  // condor_submit adds the deferral window and prep time whenever cron_* is used
  assert.deepEqual(ad.get('DeferralWindow'), lit(0));
  assert.deepEqual(ad.get('DeferralPrepTime'), lit(300));
  assert.deepEqual(ad.get('OnExitRemove'), expr('false'));
  assert.deepEqual(ad.get('OnExitHold'), lit(false));
  assert.deepEqual(ad.get('PeriodicRemove'), lit(false));
  assert.deepEqual(ad.get('JobBatchName'), lit('cog-crondor'));
  assert.deepEqual(ad.get('EC2AccessKeyId'), lit('/home/alice/.chtc_s3/access.key'));
  assert.deepEqual(ad.get('EC2SecretAccessKey'), lit('/home/alice/.chtc_s3/secret.key'));
  assert.deepEqual(ad.get('JobNotification'), lit(3));
  assert.deepEqual(ad.get('KillSig'), lit('SIGTERM')); // every universe but vanilla gets one
});

test('a container job with transfer_output_remaps and macros defined earlier in the text', () => {
  const text = `
INFILE   = scenes/LC08_$(Process).tif
OUTFILE  = $(INFILE).cog.tif
universe = container
container_image = docker://ghcr.io/osgeo/gdal:ubuntu-small-3.9.0
executable = convert.sh
transfer_executable = true
arguments = "$(INFILE) out.tif"
transfer_input_files = $(INFILE), helpers/gdal.conf
transfer_output_files = out.tif
transfer_output_remaps = "out.tif = s3://imagery/cog/$(OUTFILE)"
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
request_cpus = 2
request_memory = 4GB
request_disk = 2GB
queue 2
`;
  const { procs } = parseSubmitDescription(text, ctx);
  assert.equal(procs.length, 2);
  const [first, second] = procs as [JobAttributes, JobAttributes];
  assert.deepEqual(first.get('JobUniverse'), lit(5));
  assert.deepEqual(first.get('WantContainer'), lit(true));
  assert.deepEqual(first.get('ContainerImage'), lit('docker://ghcr.io/osgeo/gdal:ubuntu-small-3.9.0'));
  assert.deepEqual(first.get('WantDockerImage'), lit(true));
  assert.deepEqual(first.get('TransferExecutable'), lit(true));
  assert.deepEqual(first.get('Cmd'), lit('/home/alice/cogs/convert.sh'));
  assert.deepEqual(splitArguments(first), ['scenes/LC08_0.tif', 'out.tif']);
  assert.deepEqual(splitArguments(second), ['scenes/LC08_1.tif', 'out.tif']);
  assert.deepEqual(first.get('TransferInput'), lit('scenes/LC08_0.tif,helpers/gdal.conf'));
  assert.deepEqual(first.get('TransferOutput'), lit('out.tif'));
  // the surrounding double quotes go; the value is the same string condor_submit stores
  assert.deepEqual(first.get('TransferOutputRemaps'), lit('out.tif = s3://imagery/cog/scenes/LC08_0.tif.cog.tif'));
  assert.deepEqual(second.get('TransferOutputRemaps'), lit('out.tif = s3://imagery/cog/scenes/LC08_1.tif.cog.tif'));
  assert.deepEqual(first.get('ShouldTransferFiles'), lit('YES'));
  assert.deepEqual(first.get('WhenToTransferOutput'), lit('ON_EXIT'));
  assert.deepEqual(first.get('RequestCpus'), lit(2));
  assert.deepEqual(first.get('RequestMemory'), lit(4096));
  assert.deepEqual(first.get('RequestDisk'), lit(2097152));
});

test('container images of other kinds, and the checks condor_submit makes', () => {
  const sif = only('universe = container\ncontainer_image = /images/gdal.sif\nexecutable = x\nqueue\n');
  assert.deepEqual(sif.get('WantSIF'), lit(true));
  // an image in the vanilla universe makes it a container job
  const implicit = only('container_image = docker://alpine\nexecutable = x\nqueue\n');
  assert.deepEqual(implicit.get('JobUniverse'), lit(5));
  assert.deepEqual(implicit.get('WantContainer'), lit(true));
  // no executable is needed when the image has an entry point
  assert.equal(only('universe = container\ncontainer_image = docker://alpine\nqueue\n').get('Cmd'), undefined);
  const docker = only('universe = docker\ndocker_image = alpine:3\nqueue\n');
  assert.deepEqual(docker.get('JobUniverse'), lit(5));
  assert.deepEqual(docker.get('WantDocker'), lit(true));
  assert.deepEqual(docker.get('DockerImage'), lit('alpine:3'));
  rejects('universe = container\nexecutable = x\nqueue\n', 3, /require a container_image/);
  rejects('universe = scheduler\ncontainer_image = docker://alpine\nexecutable = x\nqueue\n', 2, /not supported in the scheduler universe/);
  rejects('universe = grid\nexecutable = x\nqueue\n', 1, /grid universe is not supported/);
  rejects('universe = vanila\nexecutable = x\nqueue\n', 1, /unknown universe 'vanila'/);
  rejects('universe = vanilla\nqueue\n', 2, /no 'executable' was given/);
});

test('queue N makes N procs, each expanding $(Process) and friends separately', () => {
  const text = `
executable = /bin/echo
arguments = job $(Cluster).$(Process) step $(Step) id $(JobId) proc $(ProcId) of cluster $(ClusterId) $(CLUSTER)/$(PROCESS)
output = out/$(Process).txt
queue 3
`;
  const { procs } = parseSubmitDescription(text, ctx);
  assert.deepEqual(procs.map((p) => p.get('ProcId')), [lit(0), lit(1), lit(2)]);
  assert.deepEqual(procs.map((p) => p.get('ClusterId')), [lit(42), lit(42), lit(42)]);
  assert.deepEqual(procs.map((p) => p.get('Out')), [lit('out/0.txt'), lit('out/1.txt'), lit('out/2.txt')]);
  assert.deepEqual(splitArguments(procs[2]!), ['job', '42.2', 'step', '2', 'id', '42.2', 'proc', '2', 'of', 'cluster', '42', '42/2']);
  // old syntax: no surrounding double quotes, so Args rather than Arguments
  assert.deepEqual(procs[0]!.get('Args'), lit('job 42.0 step 0 id 42.0 proc 0 of cluster 42 42/0'));
  assert.equal(procs[0]!.get('Arguments'), undefined);
  assert.deepEqual(procs[0]!.get('Cmd'), lit('/bin/echo'));
});

test('new-style arguments with spaces and quotes round-trip through splitArguments', () => {
  const text = `executable = x\narguments = "one 'two with spaces' ""three"" 'it''s' '' last"\nqueue\n`;
  const ad = only(text);
  const argv = ['one', 'two with spaces', '"three"', "it's", '', 'last'];
  assert.deepEqual(splitArguments(ad), argv);
  // the same argv from the submit-file value itself, and the ad holds condor's stored form
  assert.deepEqual(splitArguments(`"one 'two with spaces' ""three"" 'it''s' '' last"`), argv);
  assert.deepEqual(ad.get('Arguments'), lit(`one two' 'with' 'spaces "three" it''''s '' last`));
  // the manual's own examples
  assert.deepEqual(splitArguments('"3 simple arguments"'), ['3', 'simple', 'arguments']);
  assert.deepEqual(splitArguments(`"one ""two"" 'spacey ''quoted'' argument'"`), ['one', '"two"', "spacey 'quoted' argument"]);
  assert.deepEqual(splitArguments(`one \\"two\\" 'three'`), ['one', '"two"', "'three'"]);
  // what the pipeline writes with condorArguments comes back unchanged
  const hard = ['--name', 'a b\tc', `quote"s`, "apos'trophe", '', '  ', 's3://bucket/key with space.tif'];
  const line = `executable = x\narguments = ${condorArguments(hard)}\nqueue\n`;
  assert.deepEqual(splitArguments(only(line)), hard);
  // malformed argument strings are errors
  rejects('executable = x\narguments = "a b" c\nqueue\n', 2, /Unexpected characters following double-quote/);
  rejects(`executable = x\narguments = "a 'b"\nqueue\n`, 2, /Unbalanced quote/);
  rejects('executable = x\narguments = a "b"\nqueue\n', 2, /illegal unescaped double-quote/);
});

test('request_memory and request_disk units, as condor_submit scales them', () => {
  const ad = (lines: string) => only(`executable = x\n${lines}\nqueue\n`);
  assert.deepEqual(ad('request_disk = 2GB').get('RequestDisk'), lit(2097152));
  assert.deepEqual(ad('request_memory = 1GB').get('RequestMemory'), lit(1024));
  assert.deepEqual(ad('request_memory = 512MB').get('RequestMemory'), lit(512));
  assert.deepEqual(ad('request_memory = 512').get('RequestMemory'), lit(512)); // bare number: MiB
  assert.deepEqual(ad('request_disk = 4096').get('RequestDisk'), lit(4096)); // bare number: KiB
  assert.deepEqual(ad('request_memory = 2g').get('RequestMemory'), lit(2048));
  assert.deepEqual(ad('request_memory = 1.5 G').get('RequestMemory'), lit(1536));
  assert.deepEqual(ad('request_memory = 1t').get('RequestMemory'), lit(1024 * 1024));
  assert.deepEqual(ad('request_memory = 100K').get('RequestMemory'), lit(1)); // rounded up
  assert.deepEqual(ad('request_disk = 3 mb').get('RequestDisk'), lit(3072));
  assert.deepEqual(ad('request_disk = 10kb').get('RequestDisk'), lit(10));
  // anything else is an expression, unless it starts like a number
  assert.deepEqual(ad('request_memory = MY.Base * 2').get('RequestMemory'), expr('MY.Base * 2'));
  assert.deepEqual(ad('request_cpus = 4').get('RequestCpus'), lit(4));
  rejects('executable = x\nrequest_memory = 2 GiB\nqueue\n', 2, /not a quantity/);
  rejects('executable = x\nrequest_disk = 1,2\nqueue\n', 2, /not a quantity/);
});

test('+Attr and MY.Attr set custom attributes: strings as literals, the rest as expressions', () => {
  const text = `
executable = x
batch_name = from-command
CHUNK = 7
+JobBatchName = "nightly \\"cogs\\""
+WantGlidein = true
MY.ChunkSize = $(CHUNK) * 1024
+Requirements2 = (TARGET.Disk > 100) && regexp("^slot", TARGET.Name)
+Empty =
+AccountingGroupX = $$(Name)
queue
`;
  const ad = only(text);
  assert.deepEqual(ad.get('JobBatchName'), lit('nightly "cogs"')); // the + form wins over batch_name
  assert.deepEqual(ad.get('WantGlidein'), expr('true'));
  assert.deepEqual(ad.get('ChunkSize'), expr('7 * 1024'));
  assert.deepEqual(ad.get('Requirements2'), expr('(TARGET.Disk > 100) && regexp("^slot", TARGET.Name)'));
  assert.deepEqual(ad.get('Empty'), expr('undefined'));
  assert.deepEqual(ad.get('AccountingGroupX'), expr('$$(Name)'));
  assert.equal(ad.has('MY.ChunkSize'), false);
  rejects('executable = x\n+Bad = (a && b\nqueue\n', 2, /not a valid expression: missing '\)'/);
  rejects('executable = x\n+ProcId = 3\nqueue\n', 2, /set by the schedd/);
  rejects('executable = x\n+1abc = 3\nqueue\n', 2, /illegal/);
});

test('macros: later definitions, defaults, self-extension, $ENV, $$ and undefined names', () => {
  const text = `
executable = x
A = first
A = $(A) second
B = $(UNDEFINED)[$(MISSING:fallback)]
arguments = "$(A) $(b) $ENV(HOME) $ENV(NOPE)end $$(OpSys) $(DOLLAR)(literal) $(Item)|$(Node)"
C = $(D)
D = late
output = $(c).out
queue
`;
  const ad = only(text);
  assert.deepEqual(splitArguments(ad), ['first', 'second', '[fallback]', '/home/alice', 'end', '$$(OpSys)', '$(literal)', '|']);
  assert.deepEqual(ad.get('Out'), lit('late.out'));
  rejects('executable = x\nA = $(B)\nB = $(A)\noutput = $(A)\nqueue\n', 3, /refers to itself/);
  rejects('executable = x\noutput = $RANDOM_CHOICE(a,b)\nqueue\n', 2, /\$RANDOM_CHOICE\(\.\.\.\)' is not supported/);
  rejects('executable = x\noutput = $(oops\nqueue\n', 2, /unterminated macro reference/);
  rejects('executable = x\nProcess = 3\noutput = $(Process)\nqueue\n', 2, /built-in macro/);
});

test('environment in both syntaxes, and getenv', () => {
  const v2 = only(`executable = x\nenvironment = "one=1 two=""2"" three='spacey ''quoted'' value'"\nqueue\n`);
  assert.deepEqual(parseEnvironment(v2), { one: '1', two: '"2"', three: "spacey 'quoted' value" });
  const v1 = only(`executable = x\nenvironment = one=1;two=2;three="quotes have no 'special' meaning"\nqueue\n`);
  assert.deepEqual(parseEnvironment(v1), { one: '1', two: '2', three: `"quotes have no 'special' meaning"` });
  assert.deepEqual(parseEnvironment('"A=1 B=\'x y\'"'), { A: '1', B: 'x y' });
  // environment wins over getenv, whatever the order
  const both = only('executable = x\ngetenv = true\nenvironment = "HOME=/override"\nqueue\n');
  assert.deepEqual(parseEnvironment(both), {
    HOME: '/override', PATH: '/usr/bin:/bin', AWS_PROFILE: 'chtc', LANG: 'C.UTF-8',
  });
  const filtered = only('executable = x\ngetenv = !PATH, !aws_*\nqueue\n');
  assert.deepEqual(parseEnvironment(filtered), { HOME: '/home/alice', LANG: 'C.UTF-8' });
  const none = only('executable = x\nqueue\n');
  assert.deepEqual(none.get('Environment'), lit(''));
  assert.deepEqual(none.get('Arguments'), lit(''));
  rejects('executable = x\nenvironment = "A=1 B"\nqueue\n', 2, /Missing '=' after environment variable 'B'/);
});

test('hold, retries, signals, accounting and other mapped commands', () => {
  const ad = only(`
executable = x
hold = true
max_retries = 3
success_exit_code = 2
on_exit_remove = ExitBySignal == false && ExitCode == 0
periodic_release = NumJobStarts < 5
periodic_hold = (time() - EnteredCurrentStatus) > 3600
remove_kill_sig = 2
kill_sig = sigusr1
leave_in_queue = JobStatus == 4
priority = -5
copy_to_spool = false
stream_output = true
stream_error = false
encrypt_execute_directory = True
accounting_group = group_cogs
requirements = OpSys == "LINUX" && Arch == "X86_64"
dagman_log = /tmp/dag.nodes.log
queue
`);
  assert.deepEqual(ad.get('JobStatus'), lit(5));
  assert.deepEqual(ad.get('HoldReason'), lit("submitted on hold at user's request"));
  assert.deepEqual(ad.get('HoldReasonCode'), lit(15));
  assert.deepEqual(ad.get('JobMaxRetries'), lit(3));
  assert.deepEqual(ad.get('JobSuccessExitCode'), lit(2));
  assert.deepEqual(
    ad.get('OnExitRemove'),
    expr('NumJobCompletions > JobMaxRetries || ExitCode =?= JobSuccessExitCode || (ExitBySignal == false && ExitCode == 0)'),
  );
  assert.deepEqual(ad.get('PeriodicRelease'), expr('NumJobStarts < 5'));
  assert.deepEqual(ad.get('PeriodicHold'), expr('(time() - EnteredCurrentStatus) > 3600'));
  assert.deepEqual(ad.get('RemoveKillSig'), lit('SIGINT'));
  assert.deepEqual(ad.get('KillSig'), lit('SIGUSR1'));
  assert.deepEqual(ad.get('LeaveJobInQueue'), expr('JobStatus == 4'));
  assert.deepEqual(ad.get('JobPrio'), lit(-5));
  assert.deepEqual(ad.get('CopyToSpool'), lit(false));
  assert.deepEqual(ad.get('StreamOut'), lit(true));
  assert.deepEqual(ad.get('StreamErr'), lit(false));
  assert.deepEqual(ad.get('EncryptExecuteDirectory'), lit(true));
  assert.deepEqual(ad.get('AccountingGroup'), lit('group_cogs.alice'));
  assert.deepEqual(ad.get('AcctGroup'), lit('group_cogs'));
  assert.deepEqual(ad.get('AcctGroupUser'), lit('alice'));
  assert.deepEqual(ad.get('Requirements'), expr('OpSys == "LINUX" && Arch == "X86_64"'));
  assert.deepEqual(ad.get('DAGManNodesLog'), lit('/tmp/dag.nodes.log'));
  assert.equal(ad.get('KillSigTimeout'), undefined);
  // attribute names are case-insensitive, as in ClassAds
  assert.deepEqual(lookupAttribute(ad, 'jobstatus'), lit(5));

  const noOwner = parseSubmitDescription('executable = x\ninitialdir = run\ntransfer_executable = false\nqueue\n', {
    clusterId: 1, iwd: '/srv/submit', now: NOW,
  }).procs[0]!;
  assert.deepEqual(noOwner.get('Owner'), expr('undefined'));
  assert.deepEqual(noOwner.get('Iwd'), lit('/srv/submit/run'));
  assert.deepEqual(noOwner.get('Cmd'), lit('x')); // not transferred, so left as written
  assert.deepEqual(noOwner.get('TransferExecutable'), lit(false));

  rejects('executable = x\nhold = maybe\nqueue\n', 2, /must be true or false/);
  rejects('executable = x\nkill_sig = SIGFOO\nqueue\n', 2, /invalid signal SIGFOO/);
  rejects('executable = x\ncron_hour = 25\nqueue\n', 2, /25 is outside 0-23/);
  rejects('executable = x\ncron_window = 60\nqueue\n', 2, /no effect without cron_/);
  rejects('executable = x\nnotification = sometimes\nqueue\n', 2, /notification must be/);
  rejects('executable = x\nshould_transfer_files = NO\ntransfer_input_files = a\nqueue\n', 2, /disabled should_transfer_files/);
  rejects('executable = x\nshould_transfer_files = MAYBE\nqueue\n', 2, /invalid value \(MAYBE\)/);
});

test('backslash continues a line; comments are whole lines only', () => {
  const ad = only([
    'executable = x',
    'arguments = "a b \\',
    '             c d"',
    '# a comment that ends in a backslash does not continue \\',
    'output = o.txt # not a comment',
    'transfer_input_files = one, \\',
    '# commented out: two, \\',
    '   three',
    'queue',
  ].join('\n'));
  assert.deepEqual(splitArguments(ad), ['a', 'b', 'c', 'd']);
  assert.deepEqual(ad.get('Out'), lit('o.txt # not a comment'));
  assert.deepEqual(ad.get('TransferInput'), lit('one,three'));
  rejects('executable = x\noutput = a \\', 2, /ends with a backslash/);
});

test('error: an unknown submit command names its line', () => {
  const err = rejects('executable = x\n\n# typo below\nrequest_memroy = 2GB\nqueue\n', 4, /^unknown submit command 'request_memroy'; is it a typo\?/);
  assert.match(err.reason, /did you mean 'request_memory'/);
  assert.match(err.message, /request_memroy = 2GB/);
  // a macro is fine when something references it, and only then
  rejects('executable = x\nfoo = bar\nqueue\n', 2, /unknown submit command 'foo'/);
  assert.deepEqual(only('executable = x\nfoo = bar\noutput = $(FOO)\nqueue\n').get('Out'), lit('bar'));
  // real condor_submit commands this stand-in does not implement are refused by name
  rejects('executable = x\nmax_idle = 10\nqueue\n', 2, /'max_idle' is not supported by this stand-in/);
});

test('error: a description without a queue statement', () => {
  // the error points at the last line, where the description ends
  const err = rejects('executable = x\noutput = y\n\n# the end\n', 4, /without a queue statement/);
  assert.match(err.message, /^ERROR: at Line 4 of the submit description/);
  rejects('executable = x\noutput = y\n', 2, /without a queue statement/);
  rejects('', 1, /without a queue statement/);
});

test('error: a line that is not a command, comment or queue statement', () => {
  rejects('executable = x\nthis is not a command\nqueue\n', 2, /not a submit command/);
  rejects('executable = x\nif defined FOO\nqueue\n', 2, /'if' statements are not supported/);
  rejects('executable = x\ninclude : more.sub\nqueue\n', 2, /'include' statements are not supported/);
  rejects('executable = x\narguments += more\nqueue\n', 2, /'\+=' operator/);
  rejects('executable = x\nfoo bar = 1\nqueue\n', 2, /illegal submit command name 'foo bar'/);
});

test('error: queue forms other than queue and queue N', () => {
  rejects('executable = x\nqueue from manifest.txt\n', 2, /does not support 'queue from manifest\.txt'/);
  rejects('executable = x\nqueue infile in (a.tif b.tif)\n', 2, /does not support 'queue infile in/);
  rejects('executable = x\nqueue matching *.tif\n', 2, /does not support 'queue matching/);
  rejects('executable = x\nqueue 2 + 1\n', 2, /does not support/);
  rejects('executable = x\nqueue 0\n', 2, /queue 0 submits no jobs/);
  rejects('executable = x\nqueue\noutput = late\n', 3, /text after the queue statement on line 2/);
  // comments and blank lines after the queue statement are fine
  assert.equal(parseSubmitDescription('executable = x\nQUEUE 2\n\n# done\n', ctx).procs.length, 2);
});

test('the context is checked, and the function is pure', () => {
  assert.throws(() => parseSubmitDescription('executable = x\nqueue\n', { ...ctx, iwd: 'relative' }), TypeError);
  assert.throws(() => parseSubmitDescription('executable = x\nqueue\n', { ...ctx, clusterId: 0 }), TypeError);
  const text = 'executable = x\noutput = $(Cluster).out\nqueue 2\n';
  assert.deepEqual(parseSubmitDescription(text, ctx), parseSubmitDescription(text, ctx));
});

test("macros given ahead of the description (DAGMan's VARS) are prepended: the description wins, unused ones are no error", () => {
  const ad = only('executable = x\narguments = "$(INFILE) $(BANDS)"\nBANDS = 3\nqueue\n', {
    ...ctx,
    macros: { INFILE: 'a b.tif', BANDS: '1', UNUSED: 'ignored', output: 'from-vars.out' },
  });
  assert.deepEqual(splitArguments(ad), ['a', 'b.tif', '3']);
  assert.deepEqual(lookupAttribute(ad, 'Out'), lit('from-vars.out'));
  assert.throws(() => parseSubmitDescription('executable = x\nqueue\n', { ...ctx, macros: { Cluster: '1' } }), /built-in macro/);
});
