import { appendFile, writeFile } from 'node:fs/promises';
import { HtcondorApi, HtcondorApiError, type AttributeEdit, type JobAd } from './htcondor_api.ts';
import { describeValue, sameAttributeValue, START, type AttributeValue, type ExpectedValue, type JobAttributes, type JobSubmission } from './job_settings.ts';
import { dagmanJob } from './submit_rendering.ts';

/**
 * What the pipeline asks of the schedd, and nothing more. The REST API is the first
 * transport; another (the condor command-line tools) can implement the same interface.
 */
export interface Schedd {
  /** Submits a job and configures it (job_settings.ts); returns the new cluster id once it may start. */
  submit(job: JobSubmission): Promise<number>;
  /** Submits a DAG as `condor_submit_dag` would; returns the DAGMan job's cluster id. */
  submitDag(dag: DagSubmission): Promise<number>;
  /** Ads of the jobs matching a ClassAd constraint, with the named attributes. */
  query(constraint: string, projection: string[]): Promise<JobAd[]>;
  /** Removes every job matching a constraint (`condor_rm -constraint`); returns how many. */
  removeByConstraint(constraint: string, reason: string): Promise<number>;
  close(): Promise<void>;
}

export type DagSubmission = {
  /** Absolute path of the DAG file; DAGMan's own files are written beside it. */
  dagFile: string;
  batchName: string;
  maxJobs: number;
  /** Absolute path of condor_dagman on the access point. */
  dagman: string;
  /** Environment for DAGMan and so for the POST script. */
  environment: Record<string, string>;
};

/** The server changed or refused what the pipeline relies on; the job was removed. */
export class JobSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JobSetupError';
  }
}

/** The schedd reached through htcondor-api. */
export class ApiSchedd implements Schedd {
  constructor(private readonly api: HtcondorApi) {}

  /**
   * POST the description, check the ad it made, PATCH the settings and read them back, and only
   * then PATCH `Requirements = true`: the job can never run half-configured. On any failure the
   * job is removed and the error names the attribute, what came back and the server's version.
   */
  async submit(job: JobSubmission): Promise<number> {
    return (await this.submitAndConfigure(job)).clusterId;
  }

  async submitDag(dag: DagSubmission): Promise<number> {
    const job = dagmanJob(dag);
    // condor_submit_dag leaves this file beside the DAG; users read it when DAGMan misbehaves.
    const submitFile = `${dag.dagFile}.condor.sub`;
    await writeFile(submitFile, job.description);
    const { clusterId, settings } = await this.submitAndConfigure(job);
    const lines = Object.entries(settings).map(([name, value]) => `#   ${name} = ${describeValue(value)}`);
    await appendFile(submitFile, `# Set on job ${clusterId}.0 after submission, then Requirements = true:\n${lines.join('\n')}\n`);
    return clusterId;
  }

  query(constraint: string, projection: string[]): Promise<JobAd[]> {
    return this.api.listJobs({ constraint, projection });
  }

  removeByConstraint(constraint: string, reason: string): Promise<number> {
    return this.api.removeJobs(constraint, reason);
  }

  close(): Promise<void> {
    return this.api.close();
  }

  private async submitAndConfigure(job: JobSubmission): Promise<{ clusterId: number; settings: JobAttributes }> {
    const { clusterId } = await this.api.submit(job.description);
    const jobId = `${clusterId}.0`;
    const settings = job.settings(clusterId);
    try {
      await this.check(jobId, job.expected(clusterId), 'the submitted description');
      await this.edit(jobId, settings);
      await this.check(jobId, settings, 'the settings made after submission');
      await this.edit(jobId, START);
      await this.check(jobId, START, 'the start of the job');
    } catch (err) {
      await this.api.removeJob(jobId, 'cog-pipeline: the job could not be set up as submitted').catch(() => undefined);
      const version = await this.api.version().then(
        (v) => `htcondor-api ${v.version} (commit ${v.commit})`,
        () => 'htcondor-api of unknown version',
      );
      throw new JobSetupError(`${(err as Error).message}; job ${jobId} was removed (${version} at ${this.api.baseUrl})`, { cause: err });
    }
    return { clusterId, settings };
  }

  private async edit(jobId: string, attributes: JobAttributes): Promise<void> {
    try {
      await this.api.editJob(jobId, Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, toEdit(value)])));
    } catch (err) {
      if (err instanceof HtcondorApiError && (err.status === 404 || err.status === 405 || err.status === 501)) {
        throw new Error(`the server cannot edit jobs (PATCH /api/v1/jobs/{id} answered ${err.status}); the pipeline sets ${Object.keys(attributes).join(', ')} that way`, { cause: err });
      }
      throw err;
    }
  }

  /** Reads the job's ad back and compares every attribute named in `expected`. */
  private async check(jobId: string, expected: Record<string, ExpectedValue>, what: string): Promise<void> {
    const ad = await this.api.getJob(jobId);
    if (ad === null) throw new Error(`job ${jobId} left the queue right after submission`);
    const actual = lowerCaseKeys(ad);
    for (const [name, value] of Object.entries(expected)) {
      const got = actual.get(name.toLowerCase());
      if (!sameAttributeValue(value, got)) {
        throw new Error(`${name} of job ${jobId} is ${describeValue(got)} on the server, not ${describeValue(value)} as ${what} says`);
      }
    }
  }
}

/** A value for `PATCH /api/v1/jobs/{id}`: strings as typed strings (the server quotes them), expressions as text. */
function toEdit(value: AttributeValue): AttributeEdit {
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'object') return value.expression;
  return value;
}

/** ClassAd attribute names are case-insensitive. */
function lowerCaseKeys(ad: JobAd): Map<string, unknown> {
  return new Map(Object.entries(ad).map(([k, v]) => [k.toLowerCase(), v]));
}
