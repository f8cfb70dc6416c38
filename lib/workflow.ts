import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/**
 * `workflow.json`, written by the crondor cycle into the workflow directory: which manifests
 * the run claimed, where they live in the bucket, which rows it could not submit and why, and
 * how far the workflow got. The post step reads it instead of guessing from local file names;
 * the next cycle's recovery (recovery.ts) reads it to finish or roll back what a crash left.
 *
 * A workflow's life, each step recorded here before the next one starts:
 *
 *   claiming ──> claimed ──> submitted ──> settling ──> settled
 *       │           │  └─────────────────────┘ (nothing to convert: the cycle runs post itself;
 *       │           │                           or DAGMan ran post before 'submitted' was recorded)
 *       └───────────┴──> rolled-back (no DAGMan job: every manifest put back under its raw name)
 *
 *  - claiming:    the directory exists and lists the manifests about to be renamed; none is
 *                 known to be claimed (each is marked `claimed` once renamed and read)
 *  - claimed:     every rename and read is done (`claimed: false` marks a manifest whose claim
 *                 failed: it was left or put back under its raw name); nothing submitted yet
 *  - submitted:   the DAGMan job is set up (`dagClusterId`)
 *  - settling:    a post step started: from here on the workflow is only ever finished, never
 *                 rolled back (a CSV may already be in the bucket)
 *  - settled:     every claimed manifest has its CSVs and its processing object is gone
 *                 (each is marked `settled` as soon as its processing object is deleted)
 *  - rolled-back: the next cycle found no DAGMan job for a 'claiming'/'claimed' workflow and put
 *                 its manifests back (the directory stays, as a record)
 *
 * Records written before these steps existed have no `state`: they are read as before by post
 * and left alone by recovery.
 */

const WORKFLOW_FILE = 'workflow.json';

export const WORKFLOW_STATES = ['claiming', 'claimed', 'submitted', 'settling', 'settled', 'rolled-back'] as const;
export type WorkflowState = (typeof WORKFLOW_STATES)[number];

/** States recovery has nothing more to do for. */
export function isFinal(state: WorkflowState | undefined): boolean {
  return state === 'settled' || state === 'rolled-back';
}

const workflowRecord = z.object({
  timestamp: z.string(),
  inputBucket: z.string(),
  outputBucket: z.string(),
  /** How far the workflow got (see above); absent in records of earlier versions. */
  state: z.enum(WORKFLOW_STATES).optional(),
  /** `<host>:<workflow directory>`: the processing objects carry it as S3 user metadata. */
  workflowId: z.string().optional(),
  /** The DAGMan job's cluster id, once submitted. */
  dagClusterId: z.number().int().optional(),
  /** When `state` last changed (ISO 8601). */
  updated: z.string().optional(),
  manifests: z.array(
    z.object({
      /** The key the manifest was uploaded as (`...raw.csv`). */
      sourceKey: z.string(),
      /** Its key while the workflow runs (`...processing-<ts>.csv`). */
      processingKey: z.string(),
      /** Its copy in the workflow directory. */
      localFile: z.string(),
      /** Rows not submitted, by line number, with the reason. */
      rejected: z.array(z.object({ line: z.number().int(), reason: z.string() })),
      /** Renamed to its processing key and read (absent in earlier records: claimed). */
      claimed: z.boolean().optional(),
      /** Its CSVs written and its processing object deleted. */
      settled: z.boolean().optional(),
    }),
  ),
});

export type WorkflowRecord = z.infer<typeof workflowRecord>;
export type WorkflowManifest = WorkflowRecord['manifests'][number];

export function workflowFile(dir: string): string {
  return path.join(dir, WORKFLOW_FILE);
}

/**
 * Replaces workflow.json in one step (a temporary file renamed over it): a crash leaves either
 * the old record or the new one, never half of one.
 */
export async function writeWorkflowRecord(dir: string, record: WorkflowRecord): Promise<void> {
  const file = workflowFile(dir);
  const temporary = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, JSON.stringify(record, null, 2) + '\n');
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
}

/** Records a new state (and stamps when). */
export async function recordState(dir: string, record: WorkflowRecord, state: WorkflowState): Promise<void> {
  record.state = state;
  record.updated = new Date().toISOString();
  await writeWorkflowRecord(dir, record);
}

export async function readWorkflowRecord(dir: string): Promise<WorkflowRecord> {
  const file = workflowFile(dir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing: post must run in a workflow directory made by the crondor cycle`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not a valid workflow record: ${(err as Error).message}`);
  }
  const parsed = workflowRecord.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not a valid workflow record: ${parsed.error.message}`);
  return parsed.data;
}
