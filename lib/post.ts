import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from './log.ts';
import { manifestCsv, parseManifestLine, readManifestLines, type ManifestLine } from './manifest.ts';
import { folderOf, previewKey, restate } from './naming.ts';
import type { S3Store } from './s3_store.ts';
import { readWorkflowRecord, type WorkflowManifest } from './workflow.ts';

/**
 * The post step (SPEC 3.5), run by the DAG's FINAL node in the workflow directory: every row
 * whose COG and JPEG are both in the output bucket goes to the `processed` CSV, every other
 * row (with its reason in the log) to the `failed` CSV, both next to the manifest in the input
 * bucket; then the `processing` object is deleted.
 */

export type PostResult = { processed: number; failed: number };

export async function runPost(workflowDir: string, store: S3Store, log: Logger): Promise<PostResult> {
  const record = await readWorkflowRecord(workflowDir);
  const totals: PostResult = { processed: 0, failed: 0 };
  for (const manifest of record.manifests) {
    const result = await settleManifest(workflowDir, manifest, record.inputBucket, record.outputBucket, store, log);
    totals.processed += result.processed;
    totals.failed += result.failed;
  }
  log.info(`post done: ${totals.processed} image(s) processed, ${totals.failed} row(s) failed`);
  return totals;
}

async function settleManifest(
  workflowDir: string,
  manifest: WorkflowManifest,
  inputBucket: string,
  outputBucket: string,
  store: S3Store,
  log: Logger,
): Promise<PostResult> {
  const text = await readFile(path.join(workflowDir, manifest.localFile), 'utf8');
  const rejectedAt = new Map(manifest.rejected.map((r) => [r.line, r.reason]));
  const processed: ManifestLine[] = [];
  const failed: ManifestLine[] = [];
  const toCheck: Array<{ line: ManifestLine; key: string }> = [];

  for (const line of readManifestLines(text)) {
    const row = parseManifestLine(line);
    const reason = 'reason' in row ? row.reason : rejectedAt.get(line.line);
    if (reason === undefined && 'key' in row) {
      toCheck.push({ line, key: row.key });
    } else {
      failed.push(line);
      log.warn(`${manifest.sourceKey} line ${line.line} failed: ${reason}`);
    }
  }

  const present = await outputsPresent(store, outputBucket, toCheck.flatMap((c) => [c.key, previewKey(c.key)]));
  for (const { line, key } of toCheck) {
    const missing = [key, previewKey(key)].filter((k) => !present.has(k));
    if (missing.length === 0) {
      processed.push(line);
    } else {
      failed.push(line);
      log.warn(
        `${manifest.sourceKey} line ${line.line} failed: ${missing.map((k) => `s3://${outputBucket}/${k}`).join(' and ')} missing (see the node's .err and .log files)`,
      );
    }
  }
  failed.sort((a, b) => a.line - b.line);

  for (const [state, lines] of [['processed', processed], ['failed', failed]] as const) {
    if (lines.length === 0) continue;
    const key = restate(manifest.processingKey, state);
    const csv = manifestCsv(lines);
    await writeFile(path.join(workflowDir, path.basename(key)), csv);
    await store.putText(inputBucket, key, csv, 'text/csv');
    log.info(`wrote s3://${inputBucket}/${key} (${lines.length} row(s))`);
  }
  await store.delete(inputBucket, manifest.processingKey);
  log.info(`removed s3://${inputBucket}/${manifest.processingKey}`);
  return { processed: processed.length, failed: failed.length };
}

/** Which of the keys exist: one listing per folder involved, not one request per row. */
async function outputsPresent(store: S3Store, bucket: string, keys: string[]): Promise<Set<string>> {
  const present = new Set<string>();
  for (const folder of new Set(keys.map(folderOf))) {
    for (const key of await store.listFolder(bucket, folder)) present.add(key);
  }
  return present;
}
