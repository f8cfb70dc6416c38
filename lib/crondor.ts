import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { layerName, renderDag } from './dag.ts';
import { compileGlob } from './glob.ts';
import { openPostLog, type Logger } from './log.ts';
import { MANIFEST_SNIFF_BYTES, manifestVerdict, MAX_MANIFEST_BYTES, parseManifest, type ImageRow } from './manifest.ts';
import {
  baseName,
  dagBatchName,
  isStateFileKey,
  stateKey,
  workflowDirName,
  workflowTimestamp,
} from './naming.ts';
import { runPost } from './post.ts';
import { loadNotManifests, reportedBefore, saveNotManifests } from './not_manifests.ts';
import type { S3ObjectInfo, S3Store } from './s3_store.ts';
import type { Schedd } from './schedd.ts';
import { postArguments, renderNodeSubmit, type Invocation, type PipelineSettings } from './submit_rendering.ts';
import { writeWorkflowRecord, type WorkflowManifest } from './workflow.ts';

/**
 * One crondor cycle (SPEC 3.2): find new manifests, claim them, and submit one DAG for all
 * their images. The order keeps every manifest either untouched, or claimed and submitted, or
 * put back: a manifest is renamed to its `processing` name before the DAG is submitted (so a
 * crash afterwards can never submit it twice), and a failed submission renames it back.
 */

export type CycleDeps = {
  store: S3Store;
  schedd: Schedd;
  log: Logger;
  now: () => Date;
  /** Where `workflow-run-<ts>/` is made: the directory the pipeline was launched from. */
  launchDir: string;
  /** How DAGMan runs this program for the post step. */
  invocation: Invocation;
  /** Environment handed to DAGMan (and so to the post step). */
  environment: Record<string, string>;
};

export type CycleResult =
  | { outcome: 'idle' }
  | { outcome: 'submitted'; workflowDir: string; dagClusterId: number; images: number; rejected: number }
  | { outcome: 'nothing-to-run'; workflowDir: string; rejected: number };

const NODE_SUBMIT_FILE = 'cog_node.sub';
const DAG_FILE = 'dagfile.dag';

type ClaimedManifest = WorkflowManifest & { rows: ImageRow[] };

export async function runCrondorCycle(settings: PipelineSettings, deps: CycleDeps): Promise<CycleResult> {
  const { store, log } = deps;
  const matches = compileGlob(settings.pattern);
  const candidates: S3ObjectInfo[] = [];
  const inputKeys = new Set<string>();
  for await (const object of store.listObjects(settings.inputBucket)) {
    inputKeys.add(object.key);
    // The pipeline's own processing/processed/failed files never count as new manifests.
    if (matches(object.key) && !isStateFileKey(object.key)) candidates.push(object);
  }
  const manifests = await onlyManifests(candidates, settings, deps);
  if (manifests.length === 0) {
    log.info(`no new manifests matching "${settings.pattern}" in s3://${settings.inputBucket} (${inputKeys.size} objects)`);
    return { outcome: 'idle' };
  }
  log.info(`found ${manifests.length} new manifest(s): ${manifests.join(', ')}`);

  const timestamp = workflowTimestamp(deps.now());
  const workflowDir = path.join(deps.launchDir, workflowDirName(timestamp));
  await mkdir(workflowDir); // not recursive: two cycles never share a workflow directory

  const claimed: ClaimedManifest[] = [];
  for (const sourceKey of manifests) {
    const processingKey = stateKey(sourceKey, 'processing', timestamp);
    try {
      await store.rename(settings.inputBucket, sourceKey, processingKey);
    } catch (err) {
      log.error(`could not claim ${sourceKey}; it stays for the next cycle: ${(err as Error).message}`);
      continue;
    }
    const localFile = uniqueLocalName(processingKey, claimed);
    try {
      const text = await store.getText(settings.inputBucket, processingKey);
      await writeFile(path.join(workflowDir, localFile), text);
      const parsed = parseManifest(text);
      const rejected = parsed.rejected.map(({ line, reason }) => ({ line, reason }));
      claimed.push({ sourceKey, processingKey, localFile, rows: parsed.rows, rejected });
      log.info(`claimed ${sourceKey} as ${processingKey}: ${parsed.rows.length} image row(s), ${parsed.rejected.length} bad row(s)`);
      if (parsed.rows.length + parsed.rejected.length === 0) log.warn(`${sourceKey} has no rows: nothing to convert`);
    } catch (err) {
      log.error(`could not read ${processingKey}: ${(err as Error).message}`);
      await putBack(store, settings.inputBucket, [{ sourceKey, processingKey }], log);
    }
  }
  if (claimed.length === 0) {
    await rm(workflowDir, { recursive: true, force: true });
    throw new Error('no manifest could be claimed this cycle (see the errors above)');
  }

  const images = selectImages(claimed, inputKeys, settings.inputBucket, log);
  const record = {
    timestamp,
    inputBucket: settings.inputBucket,
    outputBucket: settings.outputBucket,
    manifests: claimed.map(({ rows: _rows, ...m }) => m),
  };
  await writeWorkflowRecord(workflowDir, record);
  const rejected = claimed.reduce((n, m) => n + m.rejected.length, 0);

  if (images.length === 0) {
    // A DAG of no nodes would only run the post step; run it here and now instead.
    log.warn(`no image in ${claimed.length} manifest(s) can be converted; recording them all as failed (reasons in ${path.join(workflowDir, 'post.out')})`);
    // The post step, run here and now, keeps its own log where a DAG's post step would.
    const postLog = openPostLog(workflowDir);
    try {
      await runPost(workflowDir, store, postLog.log);
    } finally {
      await postLog.close();
    }
    return { outcome: 'nothing-to-run', workflowDir, rejected };
  }

  const batchName = dagBatchName(settings.pattern);
  const dagFile = path.join(workflowDir, DAG_FILE);
  try {
    await writeFile(path.join(workflowDir, NODE_SUBMIT_FILE), renderNodeSubmit(settings));
    await writeFile(
      dagFile,
      renderDag({
        timestamp,
        layerName: layerName(batchName),
        images,
        nodeSubmitFile: NODE_SUBMIT_FILE,
        postCommand: [deps.invocation.program, ...deps.invocation.args, ...postArguments(settings)],
      }),
    );
    const dagClusterId = await deps.schedd.submitDag({
      dagFile,
      batchName,
      maxJobs: settings.maxRunning,
      dagman: settings.dagman,
      environment: deps.environment,
    });
    log.info(
      `submitted ${path.basename(workflowDir)} as DAGMan job ${dagClusterId}.0 (batch "${batchName}"): ` +
        `${images.length} image(s), ${rejected} row(s) set aside as failed`,
    );
    return { outcome: 'submitted', workflowDir, dagClusterId, images: images.length, rejected };
  } catch (err) {
    log.error(`submitting the workflow failed: ${(err as Error).message}`);
    await putBack(store, settings.inputBucket, claimed, log);
    await rm(workflowDir, { recursive: true, force: true });
    throw new Error(`workflow not submitted; its manifest(s) were put back for the next cycle`, { cause: err });
  }
}

/**
 * The objects among those matching the pattern that are manifests. The others (images, data
 * CSVs) are never claimed, renamed or deleted: each is reported once and then left alone.
 */
async function onlyManifests(candidates: S3ObjectInfo[], settings: PipelineSettings, deps: CycleDeps): Promise<string[]> {
  const { store, log } = deps;
  const known = await loadNotManifests(deps.launchDir);
  const manifests: string[] = [];
  const notManifests: Array<{ key: string; etag: string }> = [];
  for (const object of candidates) {
    if (reportedBefore(known, settings.inputBucket, object.key, object.etag)) {
      notManifests.push(object);
      continue;
    }
    let verdict: ReturnType<typeof manifestVerdict>;
    try {
      const head = object.size > MAX_MANIFEST_BYTES ? Buffer.alloc(0) : await store.getHead(settings.inputBucket, object.key, MANIFEST_SNIFF_BYTES);
      verdict = manifestVerdict(object.size, head);
    } catch (err) {
      log.error(`could not read ${object.key} to tell whether it is a manifest; it stays for the next cycle: ${(err as Error).message}`);
      continue;
    }
    if (verdict.manifest) manifests.push(object.key);
    else {
      notManifests.push(object);
      log.warn(
        `s3://${settings.inputBucket}/${object.key} matches "${settings.pattern}" but is not a manifest (${verdict.reason}); ` +
          'it is left where it is and not reported again unless it changes',
      );
    }
  }
  if (notManifests.length > 0 || known.size > 0) await saveNotManifests(deps.launchDir, settings.inputBucket, notManifests);
  return manifests;
}

/**
 * The images to convert, once each. Rows naming an image that is not in the input bucket, or
 * one already listed, are set aside (recorded as rejected, so they end up in the failed CSV).
 */
function selectImages(claimed: ClaimedManifest[], inputKeys: Set<string>, inputBucket: string, log: Logger) {
  const images: Array<{ key: string; bands: number }> = [];
  const firstSeen = new Map<string, string>();
  for (const manifest of claimed) {
    for (const row of manifest.rows) {
      let reason: string | undefined;
      const seen = firstSeen.get(row.key);
      if (!inputKeys.has(row.key)) reason = `the image s3://${inputBucket}/${row.key} does not exist`;
      else if (seen !== undefined) reason = `the image is already listed (${seen}); it is converted once`;
      if (reason !== undefined) {
        manifest.rejected.push({ line: row.line, reason });
        continue;
      }
      firstSeen.set(row.key, `${manifest.sourceKey} line ${row.line}`);
      images.push({ key: row.key, bands: row.bands });
    }
    manifest.rejected.sort((a, b) => a.line - b.line);
    for (const r of manifest.rejected) log.warn(`${manifest.sourceKey} line ${r.line} set aside: ${r.reason}`);
  }
  return images;
}

/** The local copy keeps the manifest's base name, unless another claimed one already has it. */
function uniqueLocalName(processingKey: string, claimed: ClaimedManifest[]): string {
  const name = baseName(processingKey);
  return claimed.some((m) => m.localFile === name) ? processingKey.replaceAll('/', '_') : name;
}

async function putBack(
  store: S3Store,
  bucket: string,
  manifests: Array<{ sourceKey: string; processingKey: string }>,
  log: Logger,
): Promise<void> {
  for (const m of manifests) {
    try {
      await store.rename(bucket, m.processingKey, m.sourceKey);
      log.info(`put back s3://${bucket}/${m.sourceKey}`);
    } catch (err) {
      log.error(`could not put back ${m.sourceKey} (it is still s3://${bucket}/${m.processingKey}): ${(err as Error).message}`);
    }
  }
}
