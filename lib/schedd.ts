import { appendFile, writeFile } from 'node:fs/promises';
import { classAdString } from './condor_syntax.ts';
import { HtcondorApi, HtcondorApiError, type AttributeEdit, type JobAd } from './htcondor_api.ts';
import { describeValue, sameAttributeValue, START, type AttributeValue, type ExpectedValue, type JobAttributes, type JobSubmission } from './job_settings.ts';
import type { Logger } from './log.ts';
import { JobSetupError, SubmissionUncertainError } from './schedd_errors.ts';
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

export type ApiScheddOptions = {
  /** Told when a submission whose reply was lost is found in the queue. */
  log?: Logger;
  /**
   * After a submission whose outcome is unknown, how long to wait before each look in the queue
   * for the job (a request the server is still working on may land a little later).
   */
  lookupDelaysMs?: number[];
};

/** The schedd reached through htcondor-api. */
export class ApiSchedd implements Schedd {
  private readonly lookupDelaysMs: number[];

  constructor(
    private readonly api: HtcondorApi,
    private readonly opts: ApiScheddOptions = {},
  ) {
    this.lookupDelaysMs = opts.lookupDelaysMs ?? [0, 5_000, 15_000];
  }

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
    const clusterId = await this.submitOnce(job);
    const jobId = `${clusterId}.0`;
    const settings = job.settings(clusterId);
    let starting = false;
    try {
      await this.check(jobId, job.expected(clusterId), 'the submitted description');
      await this.edit(jobId, settings);
      await this.check(jobId, settings, 'the settings made after submission');
      starting = true;
      await this.edit(jobId, START);
      await this.check(jobId, START, 'the start of the job');
    } catch (err) {
      // The last edit may have been done though its reply was lost (a retry then finds the job
      // running, or gone: a job that cannot start never leaves the queue by itself). The schedd
      // is asked; a job that may start was set up, and is carried on with, never removed.
      if (starting) {
        const now = await this.api.getJob(jobId).catch(() => undefined);
        if (now === null || (now !== undefined && sameAttributeValue(START.Requirements!, lowerCaseKeys(now).get('requirements')))) {
          this.opts.log?.warn(
            `the reply to the last step of job ${jobId}'s set-up was lost (${(err as Error).message}), but the job ${now === null ? 'has run and left the queue' : 'may start'}: carrying on with it`,
          );
          return { clusterId, settings };
        }
      }
      const removal = await this.api.removeJob(jobId, 'cog-pipeline: the job could not be set up as submitted').then(
        () => undefined,
        (e: Error) => e,
      );
      const version = await this.api.version().then(
        (v) => `htcondor-api ${v.version} (commit ${v.commit})`,
        () => 'htcondor-api of unknown version',
      );
      if (removal !== undefined) {
        throw new SubmissionUncertainError(
          `${(err as Error).message}; job ${jobId} could not be removed either (${removal.message}): the next cycle asks the schedd about it (${version} at ${this.api.baseUrl})`,
          { cause: err },
        );
      }
      throw new JobSetupError(`${(err as Error).message}; job ${jobId} was removed (${version} at ${this.api.baseUrl})`, { cause: err });
    }
    return { clusterId, settings };
  }

  /**
   * POST the description. When the reply is lost (no answer, a time-out, a gateway's 502/503/504),
   * the job may be in the queue all the same: ask the schedd for the job's identity before
   * calling the submission failed, so that a workflow is never submitted twice.
   */
  private async submitOnce(job: JobSubmission): Promise<number> {
    try {
      return (await this.api.submit(job.description)).clusterId;
    } catch (err) {
      if (!job.identity || !outcomeUnknown(err)) throw err;
      const { attribute, value } = job.identity;
      const constraint = `${attribute} =?= ${classAdString(value)} && JobStatus =!= ${REMOVED}`;
      for (const delay of this.lookupDelaysMs) {
        await sleep(delay);
        let found: JobAd[];
        try {
          found = await this.api.listJobs({ constraint, projection: ['ClusterId', 'ProcId'] });
        } catch (lookup) {
          throw new SubmissionUncertainError(
            `${(err as Error).message}; whether it reached the schedd is not known: asking for ${attribute} ${value} failed too (${(lookup as Error).message})`,
            { cause: err },
          );
        }
        const cluster = found[0]?.ClusterId;
        if (typeof cluster === 'number') {
          this.opts.log?.warn(`the reply to the submission was lost (${(err as Error).message}), but job ${cluster}.0 (${attribute} ${value}) is in the queue: carrying on with it`);
          return cluster;
        }
      }
      throw new Error(`${(err as Error).message}; no job with ${attribute} ${value} is in the queue, so it was not submitted`, { cause: err });
    }
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

const REMOVED = 3;

/** Whether a failed request may have been carried out by the server all the same. */
function outcomeUnknown(err: unknown): boolean {
  return err instanceof HtcondorApiError && (err.status === undefined || err.status === 502 || err.status === 503 || err.status === 504);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
