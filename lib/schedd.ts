import { writeFile } from 'node:fs/promises';
import { HtcondorApi, type JobAd } from './htcondor_api.ts';
import { renderDagmanSubmit } from './submit_rendering.ts';

/**
 * What the pipeline asks of the schedd, and nothing more. The REST API is the first
 * transport; another (the condor command-line tools) can implement the same interface.
 */
export interface Schedd {
  /** Submits a description; returns the new cluster id. */
  submit(description: string): Promise<number>;
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

/** The schedd reached through htcondor-api. */
export class ApiSchedd implements Schedd {
  constructor(private readonly api: HtcondorApi) {}

  async submit(description: string): Promise<number> {
    return (await this.api.submit(description)).clusterId;
  }

  async submitDag(dag: DagSubmission): Promise<number> {
    const description = renderDagmanSubmit(dag);
    // condor_submit_dag leaves this file beside the DAG; users read it when DAGMan misbehaves.
    await writeFile(`${dag.dagFile}.condor.sub`, description);
    return this.submit(description);
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
}
