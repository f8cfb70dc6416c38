import path from 'node:path';
import { condorArguments } from './condor_syntax.ts';
import { crondorSettings, dagmanSettings, type JobSubmission } from './job_settings.ts';
import { crondorBatchName } from './naming.ts';
import type { ApiAccess, S3Access } from './settings.ts';
import { renderTemplate, submitFilePath } from './template.ts';

/**
 * The submit descriptions of SPEC 3.1 and 3.3, rendered from the templates in `submit/`.
 * Pure: every path and setting comes in as a value.
 */

/** How a job runs this program: an absolute program and the arguments before the mode word. */
export type Invocation = { program: string; args: string[] };

/** Everything the crondor job needs to run a cycle, fixed at launch. */
export type PipelineSettings = {
  inputBucket: string;
  outputBucket: string;
  pattern: string;
  maxRunning: number;
  s3: S3Access;
  api: ApiAccess;
  /** Absolute path of condor_dagman on the access point. */
  dagman: string;
};

/** `crondor ...` arguments: SPEC 3.1's list, plus the REST API and launch directory. */
function crondorArguments(settings: PipelineSettings, launchDir: string): string[] {
  const args = [
    'crondor',
    '--input-bucket', settings.inputBucket,
    '--output-bucket', settings.outputBucket,
    '-p', settings.pattern,
    '-s', settings.s3.secretKeyFile,
    '-a', settings.s3.accessKeyFile,
    '-e', settings.s3.endpoint,
    '-m', String(settings.maxRunning),
    '--api-url', settings.api.url,
  ];
  if (settings.api.tokenFile !== undefined) args.push('--api-token-file', settings.api.tokenFile);
  args.push('--dagman', settings.dagman, '--launch-dir', launchDir);
  return args;
}

/** `post ...` arguments for the FINAL node (S3 only: post never talks to the schedd). */
export function postArguments(settings: Pick<PipelineSettings, 'inputBucket' | 'outputBucket' | 's3'>): string[] {
  return [
    'post',
    '--input-bucket', settings.inputBucket,
    '--output-bucket', settings.outputBucket,
    '-a', settings.s3.accessKeyFile,
    '-s', settings.s3.secretKeyFile,
    '-e', settings.s3.endpoint,
  ];
}

/** The crondor job (SPEC 3.1): its description and what is set on it after submission. */
export function crondorJob(
  settings: PipelineSettings,
  invocation: Invocation,
  launchDir: string,
  environment: Record<string, string>,
): JobSubmission {
  const argv = [...invocation.args, ...crondorArguments(settings, launchDir)];
  const batchName = crondorBatchName(settings.pattern);
  return {
    description: renderTemplate('crondor.sub', {
      NODE: invocation.program,
      ARGUMENTS: condorArguments(argv),
      LAUNCH_DIR: launchDir,
      BATCH_NAME: batchName,
    }),
    expected: (clusterId) => ({
      JobUniverse: 12,
      Cmd: invocation.program,
      TransferExecutable: false,
      Arguments: { argv },
      JobBatchName: batchName,
      CronMinute: '*/15',
      CronHour: '*',
      CronDayOfMonth: '*',
      CronMonth: '*',
      CronDayOfWeek: '*',
      Out: `${launchDir}/crondor_${clusterId}.out`,
      Err: `${launchDir}/crondor_${clusterId}.err`,
      LeaveJobInQueue: false,
    }),
    settings: crondorSettings(launchDir, environment),
  };
}

/**
 * The hold back-off spreads releases over `max/10` clusters, as the later Python tool did;
 * at least 1, because the Python tool's `ClusterId % 0` (under 10 jobs) never released.
 */
export function releaseSpread(maxRunning: number): number {
  return Math.max(1, Math.floor(maxRunning / 10));
}

/** Host (and port) for `s3://` URLs, which name the endpoint without a scheme. */
export function s3UrlHost(endpoint: string): string {
  return endpoint.includes('://') ? new URL(endpoint).host : endpoint;
}

export function renderNodeSubmit(settings: Pick<PipelineSettings, 'inputBucket' | 'outputBucket' | 's3' | 'maxRunning'>): string {
  return renderTemplate('cog_node.sub', {
    EXECUTABLE: submitFilePath('generate_cogs.sh'),
    ACCESS_KEY_FILE: settings.s3.accessKeyFile,
    SECRET_KEY_FILE: settings.s3.secretKeyFile,
    ENDPOINT: s3UrlHost(settings.s3.endpoint),
    INPUT_BUCKET: settings.inputBucket,
    OUTPUT_BUCKET: settings.outputBucket,
    RELEASE_SPREAD: String(releaseSpread(settings.maxRunning)),
  });
}

/** The arguments `condor_submit_dag` gives condor_dagman, with absolute paths (see dagman.sub). */
function dagmanArguments(dagman: string, dagFile: string, maxJobs: number): string[] {
  return [
    '-p', '0', '-f', '-l', '.',
    '-Lockfile', `${dagFile}.lock`,
    '-AutoRescue', '1', '-DoRescueFrom', '0',
    '-Dag', dagFile,
    '-Suppress_notification',
    '-Dagman', dagman,
    '-MaxJobs', String(maxJobs),
    '-UseDagDir',
  ];
}

/** The DAGMan job `condor_submit_dag` would create for a DAG file, and what is set on it after submission. */
export function dagmanJob(opts: {
  dagman: string;
  dagFile: string;
  batchName: string;
  maxJobs: number;
  environment: Record<string, string>;
}): JobSubmission {
  const argv = dagmanArguments(opts.dagman, opts.dagFile, opts.maxJobs);
  // The workflow directory is unique to this workflow run (launch directory and time stamp).
  const workflowId = path.dirname(opts.dagFile);
  return {
    description: renderTemplate('dagman.sub', {
      DAG_FILE: opts.dagFile,
      DAGMAN: opts.dagman,
      ARGUMENTS: condorArguments(argv),
      BATCH_NAME: opts.batchName,
      WORKFLOW_ID: workflowId,
    }),
    identity: { attribute: 'JobDescription', value: workflowId },
    expected: () => ({
      JobUniverse: 7,
      Cmd: opts.dagman,
      TransferExecutable: false,
      Arguments: { argv },
      JobBatchName: opts.batchName,
      Out: `${opts.dagFile}.lib.out`,
      Err: `${opts.dagFile}.lib.err`,
      RemoveKillSig: 'SIGUSR1',
      JobDescription: workflowId,
      LeaveJobInQueue: false,
    }),
    settings: dagmanSettings(opts.dagFile, opts.environment),
  };
}
