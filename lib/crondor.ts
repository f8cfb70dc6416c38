import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crashPoint } from './crash_point.ts';
import { DAG_FILE, layerName, writeDag, type DagImage } from './dag.ts';
import { compileGlob, literalPrefix } from './glob.ts';
import type { Logger } from './log.ts';
import { MANIFEST_SNIFF_BYTES, manifestVerdict, MAX_MANIFEST_BYTES, parseManifest, type ImageRow } from './manifest.ts';
import {
  baseName,
  dagBatchName,
  isPipelineKey,
  stateKey,
  workflowDirName,
  workflowTimestamp,
} from './naming.ts';
import { lookUpObjects, type LookupOptions } from './object_lookup.ts';
import { loadReported, NOT_MANIFESTS_FILE, reportedEntry, saveReported } from './reported_objects.ts';
import {
  claimManifest,
  isProcessingKey,
  leftOverClaim,
  postHere,
  putBack,
  recoverWorkflows,
  settleUnsubmitted,
  sweepProcessingObjects,
  workflowIdOf,
  type RecoveryDeps,
} from './recovery.ts';
import type { S3ObjectInfo, S3Store } from './s3_store.ts';
import { SubmissionUncertainError } from './schedd_errors.ts';
import type { Schedd } from './schedd.ts';
import { postArguments, renderNodeSubmit, type Invocation, type PipelineSettings } from './submit_rendering.ts';
import { readWorkflowRecord, recordState, writeWorkflowRecord, type WorkflowManifest, type WorkflowRecord } from './workflow.ts';

/**
 * One crondor cycle (SPEC 3.2): finish or roll back what an earlier cycle or post step left half
 * done (recovery.ts), then find new manifests, claim them, and submit one DAG for all their
 * images. Each step is recorded before the next (workflow.ts: claiming -> claimed -> submitted
 * -> settling -> settled), in workflow.json and, for each manifest, in its processing object's
 * metadata, so that a cycle killed anywhere (crash_point.ts lists where the tests kill it) leaves
 * nothing the next cycle cannot finish: every manifest ends up once in a processed or failed
 * CSV, and no DAG is submitted twice for it.
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
  /** This machine's name, part of the workflow id the processing objects carry; os.hostname() by default. */
  host?: string;
};

export type CycleResult =
  | { outcome: 'idle' }
  | { outcome: 'submitted'; workflowDir: string; dagClusterId: number; images: number; rejected: number }
  | { outcome: 'nothing-to-run'; workflowDir: string; rejected: number };

const NODE_SUBMIT_FILE = 'cog_node.sub';

type ClaimedManifest = { manifest: WorkflowManifest; rows: ImageRow[] };

/** What the cycle needs of the input bucket's listing; `objects` only counts, for the log. */
type Listing = { candidates: S3ObjectInfo[]; processing: string[]; objects: number };

/**
 * Lists only where manifests can be (the pattern's literal prefix), keeping only the objects
 * that matter: memory does not grow with the bucket.
 */
async function listInput(settings: PipelineSettings, store: S3Store): Promise<Listing> {
  const matches = compileGlob(settings.pattern);
  const listing: Listing = { candidates: [], processing: [], objects: 0 };
  // A page at a time: a million objects are a thousand steps, not a million.
  for await (const { objects } of store.objectPages(settings.inputBucket, literalPrefix(settings.pattern))) {
    listing.objects += objects.length;
    for (const object of objects) {
      if (isProcessingKey(object.key)) listing.processing.push(object.key);
      // The pipeline's own objects (state files, claim entries) never count as new manifests.
      if (matches(object.key) && !isPipelineKey(object.key)) listing.candidates.push(object);
    }
  }
  return listing;
}

export async function runCrondorCycle(settings: PipelineSettings, deps: CycleDeps): Promise<CycleResult> {
  const { store, log } = deps;
  const recovery: RecoveryDeps = { store, schedd: deps.schedd, log, launchDir: deps.launchDir, host: deps.host ?? os.hostname() };

  // First what earlier cycles and post steps left half done: a manifest put back is claimed
  // again below, as a new one (one DAG, not two).
  const known = await recoverWorkflows(recovery);
  let listing = await listInput(settings, store);
  if (listing.processing.length > 0 && (await sweepProcessingObjects(settings.inputBucket, listing.processing, known, recovery)) > 0) {
    listing = await listInput(settings, store);
  }
  const { candidates } = listing;
  const processingKeys = new Set(listing.processing);

  const manifests = await onlyManifests(candidates, settings, deps);
  if (manifests.length === 0) {
    log.info(`no new manifests matching "${settings.pattern}" in s3://${settings.inputBucket} (${listing.objects} objects listed under "${literalPrefix(settings.pattern)}")`);
    return { outcome: 'idle' };
  }
  log.info(`found ${manifests.length} new manifest(s): ${manifests.join(', ')}`);

  const { timestamp, workflowDir } = await makeWorkflowDir(deps);
  const workflowId = workflowIdOf(recovery.host, workflowDir);
  const entries: WorkflowManifest[] = [];
  for (const sourceKey of manifests) {
    const processingKey = stateKey(sourceKey, 'processing', timestamp);
    entries.push({ sourceKey, processingKey, localFile: uniqueLocalName(processingKey, entries), rejected: [], claimed: false, settled: false });
  }
  const record: WorkflowRecord = {
    timestamp,
    inputBucket: settings.inputBucket,
    outputBucket: settings.outputBucket,
    workflowId,
    manifests: entries,
  };
  // Before any rename: which manifests this workflow is about to claim.
  await recordState(workflowDir, record, 'claiming');
  crashPoint('cycle:before-claim');

  const claimed: ClaimedManifest[] = [];
  let failures = 0;
  for (const [index, entry] of entries.entries()) {
    if (index > 0) crashPoint('cycle:between-manifests');
    const { sourceKey, processingKey } = entry;
    try {
      const claim = await claimManifest(store, settings.inputBucket, entry, workflowId, {
        isLeftOver: (owner) => leftOverClaim(owner, sourceKey, known, recovery, workflowDir, processingKeys),
        onLeftOver: (key, owner) => log.warn(`deleted s3://${settings.inputBucket}/${key}: a claim of ${sourceKey} by ${owner} failed half way and nothing would have finished it`),
      });
      if (claim === 'gone') {
        log.warn(`${sourceKey} is no longer in s3://${settings.inputBucket}; not claimed`);
        continue;
      }
      if (claim !== 'claimed') {
        log.warn(`${sourceKey} is not claimed: ${claim.heldElsewhere}`);
        continue;
      }
    } catch (err) {
      failures++;
      log.error(`could not claim ${sourceKey}; it stays for the next cycle: ${(err as Error).message}`);
      continue;
    }
    crashPoint('cycle:after-claim');
    try {
      const bytes = await store.getBytes(settings.inputBucket, processingKey);
      await writeFile(path.join(workflowDir, entry.localFile), bytes);
      const parsed = parseManifest(bytes);
      crashPoint('cycle:after-read');
      entry.rejected = parsed.rejected.map(({ line, reason }) => ({ line, reason }));
      entry.claimed = true;
      await writeWorkflowRecord(workflowDir, record);
      claimed.push({ manifest: entry, rows: parsed.rows });
      log.info(`claimed ${sourceKey} as ${processingKey}: ${parsed.rows.length} image row(s), ${parsed.rejected.length} bad row(s)`);
      if (parsed.rows.length + parsed.rejected.length === 0) log.warn(`${sourceKey} has no rows: nothing to convert`);
    } catch (err) {
      failures++;
      entry.claimed = false;
      entry.rejected = [];
      log.error(`could not read ${processingKey}: ${(err as Error).message}`);
      await putBack(store, settings.inputBucket, entry, log, workflowId).catch((e: Error) =>
        log.error(`could not put back ${sourceKey} (it is still s3://${settings.inputBucket}/${processingKey}; the next cycle does): ${e.message}`),
      );
    }
  }
  if (claimed.length === 0) {
    await rm(workflowDir, { recursive: true, force: true });
    if (failures > 0) throw new Error('no manifest could be claimed this cycle (see the errors above)');
    // Taken by another launch directory or crondor job, or gone: nothing is wrong.
    log.info('nothing claimed this cycle: every manifest found was gone or claimed by another workflow');
    return { outcome: 'idle' };
  }

  const images = await selectImages(claimed, store, settings.inputBucket, log, { prefix: literalPrefix(settings.pattern), objects: listing.objects });
  await recordState(workflowDir, record, 'claimed');
  crashPoint('cycle:claimed');
  const rejected = claimed.reduce((n, m) => n + m.manifest.rejected.length, 0);

  if (images.length === 0) {
    // A DAG of no nodes would only run the post step; run it here and now instead.
    log.warn(`no image in ${claimed.length} manifest(s) can be converted; recording them all as failed (reasons in ${path.join(workflowDir, 'post.out')})`);
    crashPoint('cycle:before-settle');
    // The post step, run here and now, keeps its own log where a DAG's post step would. If it
    // is stopped, the next cycle runs it again.
    await postHere(workflowDir, store);
    return { outcome: 'nothing-to-run', workflowDir, rejected };
  }

  const batchName = dagBatchName(settings.pattern);
  const dagFile = path.join(workflowDir, DAG_FILE);
  let dagClusterId: number;
  try {
    await writeFile(path.join(workflowDir, NODE_SUBMIT_FILE), renderNodeSubmit(settings));
    // Streamed: a DAG of 100 000 images is tens of MB, never held whole in memory.
    await writeDag(dagFile, {
      timestamp,
      layerName: layerName(batchName),
      images,
      nodeSubmitFile: NODE_SUBMIT_FILE,
      postCommand: [deps.invocation.program, ...deps.invocation.args, ...postArguments(settings)],
    });
    crashPoint('cycle:before-submit');
    dagClusterId = await deps.schedd.submitDag({
      dagFile,
      batchName,
      maxJobs: settings.maxRunning,
      dagman: settings.dagman,
      environment: deps.environment,
    });
  } catch (err) {
    log.error(`submitting the workflow failed: ${(err as Error).message}`);
    // Did it land all the same? The schedd is asked (the schedd client already did for a lost
    // reply); a job that may run is carried on with, anything else is undone.
    // Unless the schedd client could not tell (SubmissionUncertainError): then nothing is assumed,
    // and a workflow the schedd cannot be asked about is left for the next cycle to finish.
    const settled = await settleUnsubmitted(workflowDir, await readWorkflowRecord(workflowDir), recovery, {
      assumeNoJob: !(err instanceof SubmissionUncertainError),
    });
    if (settled.outcome === 'submitted') {
      return { outcome: 'submitted', workflowDir, dagClusterId: settled.dagClusterId, images: images.length, rejected };
    }
    if (settled.outcome === 'rolled-back') {
      await rm(workflowDir, { recursive: true, force: true });
      throw new Error(`workflow not submitted; its manifest(s) were put back for the next cycle`, { cause: err });
    }
    throw new Error(`workflow not submitted; the next cycle finishes ${path.basename(workflowDir)}`, { cause: err });
  }
  crashPoint('cycle:after-submit');
  // DAGMan's post step may already have moved the record on; only 'claimed' becomes 'submitted'.
  const now = await readWorkflowRecord(workflowDir);
  if (now.state === 'claimed') {
    now.dagClusterId = dagClusterId;
    await recordState(workflowDir, now, 'submitted');
  }
  crashPoint('cycle:submitted');
  log.info(
    `submitted ${path.basename(workflowDir)} as DAGMan job ${dagClusterId}.0 (batch "${batchName}"): ` +
      `${images.length} image(s), ${rejected} row(s) set aside as failed`,
  );
  return { outcome: 'submitted', workflowDir, dagClusterId, images: images.length, rejected };
}

/**
 * The workflow directory, named after the cycle's time. Never shared: if a directory of that
 * second exists (a cycle killed a moment ago), the next free second is taken, so the processing
 * keys, which carry the same time stamp, are new as well.
 */
async function makeWorkflowDir(deps: CycleDeps): Promise<{ timestamp: string; workflowDir: string }> {
  let at = deps.now().getTime();
  for (let attempt = 0; ; attempt++) {
    const timestamp = workflowTimestamp(new Date(at));
    const workflowDir = path.join(deps.launchDir, workflowDirName(timestamp));
    try {
      await mkdir(workflowDir); // not recursive: two cycles never share a workflow directory
      return { timestamp, workflowDir };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 59) throw err;
      at += 1000;
    }
  }
}

/**
 * The objects among those matching the pattern that are manifests. The others (images, data
 * CSVs) are never claimed, renamed or deleted: each is reported once and then left alone.
 */
async function onlyManifests(candidates: S3ObjectInfo[], settings: PipelineSettings, deps: CycleDeps): Promise<string[]> {
  const { store, log } = deps;
  const known = await loadReported(deps.launchDir, NOT_MANIFESTS_FILE);
  const manifests: string[] = [];
  const notManifests: Array<{ key: string; etag: string }> = [];
  for (const object of candidates) {
    if (known.get(reportedEntry(settings.inputBucket, object.key)) === object.etag) {
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
  if (notManifests.length > 0 || known.size > 0) {
    await saveReported(deps.launchDir, NOT_MANIFESTS_FILE, new Map(notManifests.map((o) => [reportedEntry(settings.inputBucket, o.key), o.etag])));
  }
  return manifests;
}

/**
 * The images to convert, once each. Rows naming an image that is not in the input bucket, or
 * one already listed, are set aside (recorded as rejected, so they end up in the failed CSV).
 * Only where the rows' images can be is looked at (object_lookup.ts).
 */
async function selectImages(
  claimed: ClaimedManifest[],
  store: S3Store,
  inputBucket: string,
  log: Logger,
  listed: LookupOptions['listed'],
): Promise<DagImage[]> {
  const sizes = await lookUpObjects(store, inputBucket, claimed.flatMap(({ rows }) => rows.map((row) => row.key)), { listed });
  const images: DagImage[] = [];
  const firstSeen = new Map<string, string>();
  for (const { manifest, rows } of claimed) {
    for (const row of rows) {
      let reason: string | undefined;
      const seen = firstSeen.get(row.key);
      const bytes = sizes.get(row.key);
      if (bytes === undefined) reason = `the image s3://${inputBucket}/${row.key} does not exist`;
      else if (seen !== undefined) reason = `the image is already listed (${seen}); it is converted once`;
      if (reason !== undefined) {
        manifest.rejected.push({ line: row.line, reason });
        continue;
      }
      firstSeen.set(row.key, `${manifest.sourceKey} line ${row.line}`);
      images.push({ key: row.key, bands: row.bands, bytes: bytes! });
    }
    manifest.rejected.sort((a, b) => a.line - b.line);
    for (const r of manifest.rejected) log.warn(`${manifest.sourceKey} line ${r.line} set aside: ${r.reason}`);
  }
  return images;
}

/** The local copy keeps the manifest's base name, unless another claimed one already has it. */
function uniqueLocalName(processingKey: string, others: WorkflowManifest[]): string {
  const name = baseName(processingKey);
  return others.some((m) => m.localFile === name) ? processingKey.replaceAll('/', '_') : name;
}
