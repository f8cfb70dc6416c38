import type { JobSubmission } from '../../lib/job_settings.ts';
import { dagBatchName } from '../../lib/naming.ts';
import { crondorJob, dagmanJob, type PipelineSettings } from '../../lib/submit_rendering.ts';
import { sampleSettings } from '../support/sample_settings.ts';

/**
 * The submit descriptions whose job ads golang-htcondor's own code decides (vectors.json): every
 * description the pipeline sends to htcondor-api, in the variants that change its text, and one
 * case for each submit feature the stand-in's emulation (test/standin/api_submit.ts) accepts.
 * Fixed paths and values, so the vectors are reproducible.
 */
export type ConformanceCase = { name: string; description: string };

const invocation = {
  program: '/opt/conda/envs/cog-pipeline/bin/node',
  args: ['--import', 'file:///home/sco/cog-pipeline/node_modules/tsx/dist/loader.mjs', '/home/sco/cog-pipeline/cog_pipeline.ts'],
};

const ENV = { PATH: '/usr/bin:/bin', HOME: '/home/sco', CONDOR_CONFIG: '/etc/condor/condor_config' };

/** Patterns users write, and ones with characters that matter to a submit-file parser. */
const PATTERNS = [
  '*raw.csv',
  'Counties/WI/*_raw.csv',
  "*it's raw.csv",
  '*"quoted"raw.csv',
  '*#raw.csv',
  'Café/*[0-9]raw.csv',
  // A lone $ is text to both parsers (macro syntax is refused before rendering).
  '*$raw.csv',
  'a$b/*raw.csv',
  '*\\raw.csv',
];

/** The jobs the pipeline submits through htcondor-api, in every variant that changes their text. */
export function pipelineJobs(): Array<{ name: string; job: JobSubmission }> {
  const cases: Array<{ name: string; job: JobSubmission }> = [];
  const crondor = (name: string, s: PipelineSettings, launchDir: string, env: Record<string, string>) =>
    cases.push({ name: `pipeline crondor: ${name}`, job: crondorJob(s, invocation, launchDir, env) });
  crondor('defaults', sampleSettings({}), '/home/sco/cog-pipeline', ENV);
  crondor('with AWS_REGION', sampleSettings({}), '/home/sco/cog-pipeline', { ...ENV, AWS_REGION: 'us-east-2' });
  crondor('-m 1', sampleSettings({ maxRunning: 1 }), '/home/sco/cog-pipeline', ENV);
  crondor('-m 250', sampleSettings({ maxRunning: 250 }), '/home/sco/cog-pipeline', ENV);
  crondor('launch directory with a space', sampleSettings({}), '/home/sco/cog runs', ENV);
  crondor('no token file', sampleSettings({ api: { url: 'http://127.0.0.1:8080', tokenFile: undefined } }), '/home/sco/cog-pipeline', ENV);
  crondor(
    'key files and token with $ in their paths',
    sampleSettings({
      s3: { accessKeyFile: '/home/sco/key$id', secretKeyFile: '/home/sco/$ecret', endpoint: 'web.s3.wisc.edu' },
      api: { url: 'https://ap.example.edu:8080', tokenFile: '/home/sco/tok$en' },
    }),
    '/home/sco/cog-pipeline',
    ENV,
  );
  for (const pattern of PATTERNS) crondor(`pattern ${pattern}`, sampleSettings({ pattern }), '/home/sco/cog-pipeline', ENV);

  const dagman = (name: string, dagFile: string, pattern: string, maxJobs: number, env: Record<string, string>) =>
    cases.push({
      name: `pipeline dagman: ${name}`,
      job: dagmanJob({ dagman: '/usr/bin/condor_dagman', dagFile, batchName: dagBatchName(pattern), maxJobs, environment: env }),
    });
  const dagFile = '/home/sco/cog-pipeline/workflow-run-20261125-141500/dagfile.dag';
  dagman('defaults', dagFile, '*raw.csv', 10000, ENV);
  dagman('with AWS_REGION', dagFile, '*raw.csv', 10000, { ...ENV, AWS_REGION: 'us-east-2' });
  dagman('-m 1', dagFile, '*raw.csv', 1, ENV);
  dagman('workflow directory with a space', '/home/sco/cog runs/workflow-run-20261125-141500/dagfile.dag', '*raw.csv', 250, ENV);
  for (const pattern of PATTERNS) dagman(`pattern ${pattern}`, dagFile, pattern, 10000, ENV);
  return cases;
}

const EXE = 'executable = /bin/true\ntransfer_executable = false\n';

/** One case per submit feature the stand-in accepts, and the errors it must give. */
const FEATURE_CASES: ConformanceCase[] = [
  { name: 'minimal vanilla job (defaults, param-default collisions)', description: 'executable = /bin/true\nqueue\n' },
  { name: 'no queue statement', description: EXE },
  { name: 'queue 3 with $(Process)', description: `${EXE}output = /o.$(Process)\nerror = /e.$(ProcId)\nqueue 3\n` },
  {
    name: 'macros: exact case, built-ins, undefined, $(DOLLAR); expansion stops at $$()',
    description: `${EXE}a = x\nlog = /l/$(Cluster).$(CLUSTER).$(cluster).$(ClusterId).$(Process).$(ProcId).$(Node).$(Item).$(Step).$(Row).$(a).$(A).$(nope).$(DOLLAR).$$(Foo).$ENV(HOME).log\nqueue\n`,
  },
  { name: 'command names are case-insensitive', description: 'Executable = /bin/x\nUNIVERSE = local\nOutput = /o\nTransfer_Executable = False\nqueue\n' },
  { name: 'colon assignment', description: `${EXE}output : /o\nqueue\n` },
  { name: 'a # after a value is part of it; comment lines', description: `${EXE}output = /o # not a comment\n# comment\n  # indented comment\nqueue\n` },
  { name: 'empty values and quoted empty', description: `${EXE}output =\nerror = ""\nqueue\n` },
  { name: 'continuation line', description: `${EXE}arguments = a \\\n b\nqueue\n` },
  { name: 'continuation swallows the queue line', description: `${EXE}batch_name = C-\\\nqueue\n` },
  { name: 'CRLF line ends keep the CR', description: `${EXE}output = /o\r\nqueue\r\n` },
  { name: 'tabs around =', description: `${EXE}output\t=\t/o\t\nqueue\n` },
  { name: 'universes', description: 'universe = scheduler\nexecutable = /bin/true\nqueue\n' },
  { name: 'universe container and unknown universes read as vanilla', description: 'universe = container\ncontainer_image = docker://osgeo/gdal:ubuntu-small-3.6.3\nexecutable = /bin/true\nqueue\n' },
  { name: 'docker_image', description: 'universe = docker\ndocker_image = alpine\nexecutable = /bin/true\nqueue\n' },
  { name: 'new-style arguments', description: `${EXE}arguments = "a 'b c' 'it''s' ""q"""\nqueue\n` },
  { name: 'old-style arguments', description: `${EXE}arguments = a b\\"c\nqueue\n` },
  { name: 'args synonym', description: `${EXE}args = x y\nqueue\n` },
  { name: 'environment in quotes keeps them', description: `${EXE}environment = "A=1 B='x y'"\nqueue\n` },
  { name: 'environment without quotes', description: `${EXE}environment = A=1 B=2\nqueue\n` },
  { name: 'env synonym and empty quoted environment', description: `${EXE}env = ""\nqueue\n` },
  { name: 'getenv is ignored', description: `${EXE}getenv = true\nqueue\n` },
  { name: 'input, output, error, log, initialdir', description: `${EXE}input = in.txt\noutput = out.txt\nerror = err.txt\nlog = job.log\ninitialdir = /work\nqueue\n` },
  { name: 'input alone does not make a job spool', description: 'executable = /bin/cat\ntransfer_executable = false\ninput = /etc/hostname\nqueue\n' },
  { name: 'transfer_input_files makes a job spool', description: 'executable = /bin/true\ntransfer_input_files = /a/b.dag, /c ,, d\nqueue\n' },
  { name: 'transfer_executable defaults to true', description: 'executable = /bin/true\nqueue\n' },
  {
    name: 'file transfer commands',
    // One remap only: golang-htcondor builds the list from a Go map, so the order of several is random.
    description: `${EXE}should_transfer_files = IF_NEEDED\nwhen_to_transfer_output = on_exit_or_evict\ntransfer_output_files = a, b\ntransfer_output_remaps = "a = s3://h/b/a"\nqueue\n`,
  },
  { name: 'should_transfer_files = YES adds file-transfer requirements', description: `universe = local\n${EXE}should_transfer_files = YES\nwhen_to_transfer_output = ON_EXIT\nqueue\n` },
  { name: 'should_transfer_files = NO', description: `universe = local\n${EXE}should_transfer_files = NO\nqueue\n` },
  { name: 'requirements are prepended', description: `${EXE}requirements = (Memory > 1024) || false\nqueue\n` },
  { name: 'requirements = false', description: `${EXE}requirements = false\nqueue\n` },
  { name: 'requirements that do not parse', description: `${EXE}requirements = (((\nqueue\n` },
  { name: 'request_* with units read as plain numbers', description: `${EXE}request_disk = 512MB\nrequest_memory = 1GB\nrequest_cpus = 2\nrequest_gpus = 1\nqueue\n` },
  { name: 'request_* in plain units', description: `${EXE}request_disk = 524288\nrequest_memory = 512\nrequest_cpus = 1\nqueue\n` },
  { name: 'request_* that are not numbers', description: `${EXE}request_memory = lots\nrequest_cpus = many\nqueue\n` },
  { name: 'hold, leave_in_queue, priority, max_retries', description: `${EXE}hold = true\nleave_in_queue = false\npriority = 5\nmax_retries = 3\nqueue\n` },
  { name: 'leave_in_queue = true', description: `${EXE}leave_in_queue = true\nqueue\n` },
  { name: 'hold_reason sets a hold code', description: `${EXE}hold = true\nhold_reason = waiting\nqueue\n` },
  { name: 'policy expressions are strings', description: `${EXE}on_exit_remove = (ExitSignal =?= 11)\non_exit_hold = ExitCode != 0\nperiodic_remove = NumHolds > 5\nperiodic_release = (time() - EnteredCurrentStatus) > 60\nperiodic_hold = false\nqueue\n` },
  { name: 'on_exit_remove = false is the string "false"', description: `universe = local\n${EXE}on_exit_remove = false\nqueue\n` },
  { name: 'cron settings', description: `universe = local\n${EXE}cron_minute = */15\ncron_hour = *\ncron_day_of_month = *\ncron_month = *\ncron_day_of_week = 1-5\ncron_window = 60\ncron_prep_time = 10\nqueue\n` },
  { name: 'deferral settings', description: `${EXE}deferral_time = 1800000000\ndeferral_window = 300\nqueue\n` },
  { name: 'signals', description: `universe = scheduler\n${EXE}remove_kill_sig = SIGUSR1\nkill_sig = 15\nqueue\n` },
  { name: 'notification, notify_user, description, batch_name', description: `${EXE}notification = never\nnotify_user = sco@example.edu\ndescription = a job\nbatch_name = COG-Pipeline-DAG-*raw.csv\nqueue\n` },
  { name: 'notification = complete', description: `${EXE}notification = Complete\nqueue\n` },
  { name: 'batch_name keeps quotes', description: `${EXE}batch_name = "quoted name"\nqueue\n` },
  { name: 'batch_name with an unclosed $(', description: `${EXE}batch_name = C-$(x\nqueue\n` },
  { name: 'batch_name with Unicode', description: `${EXE}batch_name = C-é\u2028x\nqueue\n` },
  { name: 'rank, accounting group, copy_to_spool, stream_*', description: `${EXE}rank = Memory\naccounting_group = group_sco\naccounting_group_user = sco\ncopy_to_spool = False\nstream_output = true\nstream_error = false\nqueue\n` },
  { name: 'MY. attributes are typed by guess', description: `${EXE}MY.A = false\nMY.B = 12\nMY.C = 1.5\nMY.D = "quoted"\nMY.E = a && b\nMY.F = plain text\nmy.g = 1\nqueue\n` },
  { name: '+Attr never reaches the ad: it defines a macro, which can even set a command', description: `${EXE}+OtherJobRemoveRequirements = "DAGManJobId =?= $(cluster)"\n+output = /from-plus\nlog = /l/$(OtherJobRemoveRequirements)\nqueue\n` },
  { name: '+ and a one-letter name silently ends the description', description: `${EXE}+H = 3\noutput = /never\nqueue 2\n` },
  { name: 'error=x without spaces is an error directive', description: `${EXE}error=/e\nqueue\n` },
  { name: 'error = x with spaces sets Err', description: `${EXE}error = /e\nqueue\n` },
  { name: 'param-default collisions can be overridden', description: `${EXE}mount_under_scratch = false\nmax_transfer_input_mb = 100\nmax_transfer_output_mb = 200\nqueue\n` },
  { name: 'error: missing executable', description: 'output = /o\nqueue\n' },
  { name: 'error: a line that is not a command', description: `${EXE}this is not a command\nqueue\n` },
];

export function conformanceCases(): ConformanceCase[] {
  return [...pipelineJobs().map(({ name, job }) => ({ name, description: job.description })), ...FEATURE_CASES];
}
