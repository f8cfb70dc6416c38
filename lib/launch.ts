import { classAdString, dagWord } from './condor_syntax.ts';
import type { Logger } from './log.ts';
import { crondorBatchName } from './naming.ts';
import type { S3Store } from './s3_store.ts';
import type { Schedd } from './schedd.ts';
import {
  postArguments,
  crondorJob,
  type Invocation,
  type PipelineSettings,
} from './submit_rendering.ts';
import { UsageError } from './settings.ts';

/** JobStatus values (SPEC 6). */
const IDLE = 1;
const RUNNING = 2;
const HELD = 5;

/**
 * Launch (SPEC 3.1): checks what can be checked now, while a person is watching, then submits
 * the crondor job. Returns its cluster id.
 */
export async function launch(
  settings: PipelineSettings,
  deps: {
    schedd: Schedd;
    store: S3Store;
    log: Logger;
    launchDir: string;
    invocation: Invocation;
    environment: Record<string, string>;
  },
): Promise<number> {
  // The FINAL node's POST script line is split on white space by DAGMan.
  for (const word of [deps.invocation.program, ...deps.invocation.args, ...postArguments(settings)]) {
    try {
      dagWord(word, 'path');
    } catch (err) {
      throw new UsageError(`${(err as Error).message}; move it to a path without spaces`);
    }
  }
  // The crondor job's log lines put $(Cluster) after the launch directory; after a `$` in the
  // path golang-htcondor would expand no further macro on that line.
  if (deps.launchDir.includes('$')) {
    throw new UsageError(`the launch directory ${deps.launchDir} holds a "$", which the crondor job's submit description cannot carry; launch from another directory`);
  }
  for (const bucket of new Set([settings.inputBucket, settings.outputBucket])) {
    await assertBucketReadable(deps.store, bucket);
  }
  const batchName = crondorBatchName(settings.pattern);
  // Only a live crondor blocks a new one; a completed or removed one may linger in the queue.
  const running = await deps.schedd.query(
    `JobBatchName =?= ${classAdString(batchName)} && (JobStatus == ${IDLE} || JobStatus == ${RUNNING} || JobStatus == ${HELD})`,
    ['ClusterId', 'ProcId', 'JobStatus'],
  );
  if (running.length > 0) {
    const ids = running.map((ad) => `${ad.ClusterId}.${ad.ProcId}`).join(', ');
    throw new UsageError(
      `a crondor job for pattern "${settings.pattern}" is already in the queue (${ids}); ` +
        `remove it first with condor_rm ${running[0]!.ClusterId} if you mean to replace it`,
    );
  }
  if (settings.inputBucket === settings.outputBucket) {
    deps.log.warn(`input and output bucket are both "${settings.inputBucket}": each COG will replace its original GeoTIFF at the same key`);
  }
  const cluster = await deps.schedd.submit(crondorJob(settings, deps.invocation, deps.launchDir, deps.environment));
  deps.log.info(`submitted crondor job ${cluster}.0 (batch "${batchName}"), first cycle at the next quarter hour`);
  return cluster;
}

async function assertBucketReadable(store: S3Store, bucket: string): Promise<void> {
  try {
    for await (const _ of store.listObjects(bucket)) break;
  } catch (err) {
    throw new Error(`cannot list bucket "${bucket}" (check the endpoint, the keys and the bucket name)`, { cause: err });
  }
}
