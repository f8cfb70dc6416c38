import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/**
 * `workflow.json`, written by the crondor cycle into the workflow directory: which manifests
 * the run claimed, where they live in the bucket, and which rows it could not submit and why.
 * The post step reads it instead of guessing from local file names.
 */

const WORKFLOW_FILE = 'workflow.json';

const workflowRecord = z.object({
  timestamp: z.string(),
  inputBucket: z.string(),
  outputBucket: z.string(),
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
    }),
  ),
});

export type WorkflowRecord = z.infer<typeof workflowRecord>;
export type WorkflowManifest = WorkflowRecord['manifests'][number];

export async function writeWorkflowRecord(dir: string, record: WorkflowRecord): Promise<void> {
  await writeFile(path.join(dir, WORKFLOW_FILE), JSON.stringify(record, null, 2) + '\n');
}

export async function readWorkflowRecord(dir: string): Promise<WorkflowRecord> {
  const file = path.join(dir, WORKFLOW_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${file} is missing: post must run in a workflow directory made by the crondor cycle`);
  }
  const parsed = workflowRecord.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file} is not a valid workflow record: ${parsed.error.message}`);
  return parsed.data;
}
