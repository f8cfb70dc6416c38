import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { releaseClaim } from './bucket_claim.ts';
import { crashPoint } from './crash_point.ts';
import { DAG_FILE, imageIndexOfNode, nodeFileNames } from './dag.ts';
import type { Logger } from './log.ts';
import { manifestCsv, parseManifestLine, readManifestLines, type ManifestLine } from './manifest.ts';
import { previewKey, restate } from './naming.ts';
import { readNodeOutcomes } from './nodes_log.ts';
import { lookUpObjects } from './object_lookup.ts';
import type { S3Store } from './s3_store.ts';
import { readWorkflowRecord, recordState, writeWorkflowRecord, type WorkflowManifest } from './workflow.ts';

/**
 * The post step (SPEC 3.5), run by the DAG's FINAL node in the workflow directory: every row
 * whose COG and JPEG are both in the output bucket goes to the `processed` CSV, every other
 * row (with its reason in the log) to the `failed` CSV, both next to the manifest in the input
 * bucket; then the `processing` object is deleted.
 *
 * It can be killed at any point and run again (by the next crondor cycle's recovery, or by
 * hand): workflow.json says 'settling' before anything is written, the CSVs of a manifest are
 * written (again: same keys, same bytes) before its processing object is deleted, and a manifest
 * is recorded as settled once that object is gone. A manifest already settled is skipped, and
 * one whose processing object is already gone was settled by an earlier run that was killed
 * before it could record so: its CSVs are in the bucket and are not written again.
 */

export type PostResult = { processed: number; failed: number };

type ManifestRows = {
  manifest: WorkflowManifest;
  /** Rows the crondor cycle set aside, or that do not parse: failed whatever the bucket holds. */
  setAside: Array<{ line: ManifestLine; reason: string }>;
  /** Rows that were converted, if both outputs (the COG at `key`, the JPEG at `preview`) are there. */
  submitted: Array<{ line: ManifestLine; key: string; preview: string }>;
};

export async function runPost(workflowDir: string, store: S3Store, log: Logger): Promise<PostResult> {
  const record = await readWorkflowRecord(workflowDir);
  if (record.state === 'claiming') {
    throw new Error(
      `${workflowDir} was never submitted: the cycle that made it was stopped while claiming its manifests; ` +
        'the next crondor cycle puts them back under their raw names',
    );
  }
  if (record.state === 'rolled-back') {
    throw new Error(`${workflowDir} was rolled back: its manifests were put back under their raw names for a later cycle, so there is nothing to record here`);
  }
  // From here on the workflow is only ever finished, never rolled back: a CSV may be written.
  if (record.state !== 'settling' && record.state !== 'settled') await recordState(workflowDir, record, 'settling');
  crashPoint('post:started');

  const pending: WorkflowManifest[] = [];
  for (const manifest of record.manifests) {
    if (manifest.claimed === false || manifest.settled === true) continue;
    if (!(await store.exists(record.inputBucket, manifest.processingKey))) {
      // Deleted by an earlier run of post (its CSVs written first) that was stopped before it
      // could record so, or by hand: either way there is nothing left to settle.
      log.info(`s3://${record.inputBucket}/${manifest.processingKey} is gone: ${manifest.sourceKey} was settled already`);
      manifest.settled = true;
      await writeWorkflowRecord(workflowDir, record);
      continue;
    }
    pending.push(manifest);
  }

  const all: ManifestRows[] = [];
  for (const manifest of record.manifests) {
    if (manifest.claimed === false) continue;
    all.push(classify(manifest, await readFile(path.join(workflowDir, manifest.localFile))));
  }
  // The DAG's images in its order, which gave each its node and its .log/.out/.err files.
  const images = all.flatMap((m) => m.submitted.map((s) => s.key));
  const nodeFiles = nodeFileNames(images);
  const converted = convertedImages(path.join(workflowDir, NODES_LOG), images);
  const manifests = all.filter((m) => pending.includes(m.manifest));
  // Only the folders the outputs go to are looked at (object_lookup.ts), never the whole bucket.
  const present = await lookUpObjects(store, record.outputBucket, outputKeys(manifests));

  const totals: PostResult = { processed: 0, failed: 0 };
  for (const [index, { manifest, setAside, submitted }] of manifests.entries()) {
    if (index > 0) crashPoint('post:between-manifests');
    const processed: ManifestLine[] = [];
    const failed: Array<{ line: ManifestLine; reason: string }> = [...setAside];
    for (const { line, key, preview } of submitted) {
      if (present.has(key) && present.has(preview)) {
        // Outputs left by an earlier run (a fixed manifest uploaded again) are not this run's work.
        if (converted.has(key)) processed.push(line);
        else {
          failed.push({
            line,
            reason:
              `s3://${record.outputBucket}/${key} and its preview are there, but ${NODES_LOG} records no successful ` +
              `conversion of it in this workflow (see ${nodeFiles.get(key)}.log): they are left over from an earlier run`,
          });
        }
        continue;
      }
      const missing = [key, preview].filter((k) => !present.has(k));
      const errFile = `${nodeFiles.get(key)}.err`;
      const said = await failureLine(path.join(workflowDir, errFile));
      failed.push({
        line,
        reason:
          `${missing.map((k) => `s3://${record.outputBucket}/${k}`).join(' and ')} missing` +
          (said ? `; ${errFile} says: ${said}` : ` (see ${errFile})`),
      });
    }
    failed.sort((a, b) => a.line.line - b.line.line);
    for (const f of failed) log.warn(`${manifest.sourceKey} line ${f.line.line} failed: ${f.reason}`);

    // An empty manifest still leaves a trace next to it: an empty failed CSV.
    const empty = processed.length === 0 && failed.length === 0;
    if (empty) log.warn(`${manifest.sourceKey} has no rows: nothing to convert; recorded as an empty failed CSV`);
    for (const [state, lines] of [['processed', processed], ['failed', failed.map((f) => f.line)]] as const) {
      if (lines.length === 0 && !(state === 'failed' && empty)) continue;
      const key = restate(manifest.processingKey, state);
      const csv = manifestCsv(lines);
      // The local copy is named after the manifest's local copy, which no other manifest of the run shares.
      await writeFile(path.join(workflowDir, restate(manifest.localFile, state)), csv);
      await store.putText(record.inputBucket, key, csv, 'text/csv');
      log.info(`wrote s3://${record.inputBucket}/${key} (${lines.length} row(s))`);
      if (state === 'processed') crashPoint('post:after-processed-csv');
    }
    crashPoint('post:before-delete');
    // A claim entry the cycle could not delete after its claim (an S3 error) goes now at the latest.
    if (record.workflowId !== undefined) await releaseClaim(store, record.inputBucket, manifest.sourceKey, record.workflowId);
    // Last: while the processing object is there, a post step run again writes the same CSVs.
    await store.delete(record.inputBucket, manifest.processingKey);
    log.info(`removed s3://${record.inputBucket}/${manifest.processingKey}`);
    crashPoint('post:after-delete');
    manifest.settled = true;
    await writeWorkflowRecord(workflowDir, record);
    totals.processed += processed.length;
    totals.failed += failed.length;
  }
  crashPoint('post:before-settled');
  if (record.state !== 'settled') await recordState(workflowDir, record, 'settled');
  log.info(`post done: ${totals.processed} image(s) processed, ${totals.failed} row(s) failed`);
  return totals;
}

function classify(manifest: WorkflowManifest, text: Buffer): ManifestRows {
  const rejectedAt = new Map(manifest.rejected.map((r) => [r.line, r.reason]));
  const rows: ManifestRows = { manifest, setAside: [], submitted: [] };
  for (const line of readManifestLines(text)) {
    const row = parseManifestLine(line);
    if ('reason' in row) rows.setAside.push({ line, reason: row.reason });
    else if (rejectedAt.has(line.line)) rows.setAside.push({ line, reason: rejectedAt.get(line.line)! });
    else rows.submitted.push({ line, key: row.key, preview: previewKey(row.key) });
  }
  return rows;
}

/** What the converted rows should have left in the output bucket: each one's COG and JPEG. */
function* outputKeys(manifests: ManifestRows[]): Generator<string> {
  for (const { submitted } of manifests) {
    for (const { key, preview } of submitted) {
      yield key;
      yield preview;
    }
  }
}

/** DAGMan's log of the node jobs, next to the DAG (DAGMan's default node log). */
const NODES_LOG = `${DAG_FILE}.nodes.log`;

/**
 * The images whose node job ended well in this workflow, as DAGMan's nodes log tells (HTCondor's
 * user-log format: the last "Job terminated" event of the node, retries included, is a normal
 * termination with return value 0). One pass over one file: at 100 000 images, about a second
 * less than opening each node's own log.
 */
function convertedImages(nodesLog: string, images: string[]): Set<string> {
  const converted = new Set<string>();
  for (const [node, succeeded] of readNodeOutcomes(nodesLog)) {
    const index = imageIndexOfNode(node);
    if (succeeded && index !== undefined && index < images.length) converted.add(images[index]!);
  }
  return converted;
}

/** The line of a node's error file that says why it failed: GDAL's last ERROR, else the last line. */
async function failureLine(file: string): Promise<string | undefined> {
  try {
    const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '');
    const gdalError = lines.findLast((l) => /^ERROR \d+:/.test(l));
    return (gdalError ?? lines.at(-1))?.trim().slice(0, 300);
  } catch {
    return undefined;
  }
}
