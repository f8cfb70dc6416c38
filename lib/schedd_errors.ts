/**
 * How a submission can fail, for the callers that must tell (the crondor cycle). Apart from the
 * schedd client so that telling does not load the REST client (undici) into every cycle.
 */

/**
 * Whether the DAGMan job is in the queue is not known: the reply to its submission was lost and
 * the schedd could not be asked either, or its set-up failed and so did its removal. Nothing may
 * be undone on the strength of it (the workflow directory is the only way to find the job again):
 * the next cycle asks the schedd, removes a job that was never set up to start, and rolls back.
 */
export class SubmissionUncertainError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SubmissionUncertainError';
  }
}

/** The server changed or refused what the pipeline relies on; the job was removed. */
export class JobSetupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JobSetupError';
  }
}
