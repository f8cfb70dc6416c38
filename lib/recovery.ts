import { existsSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { classAdString } from './condor_syntax.ts';
import { releaseClaim, takeClaim, type ClaimOptions, type ClaimOutcome } from './bucket_claim.ts';
import { crashPoint } from './crash_point.ts';
import { sameAttributeValue, START } from './job_settings.ts';
import { openPostLog, type Logger } from './log.ts';
import { baseName, stateKey } from './naming.ts';
import { runPost } from './post.ts';
import { LEFT_ALONE_FILE, loadReported, reportedEntry, saveReported } from './reported_objects.ts';
import type { ObjectHead, S3Store } from './s3_store.ts';
import type { Schedd } from './schedd.ts';
import { isFinal, readWorkflowRecord, recordState, workflowFile, type WorkflowManifest, type WorkflowRecord, type WorkflowState } from './workflow.ts';

/**
 * A manifest's life as a recoverable state machine (issue 8, "Every manifest exactly once").
 *
 * Every step is recorded before the next one starts, in the workflow directory (workflow.json,
 * see workflow.ts) and in the bucket (each processing object carries its workflow id and its
 * raw key as S3 user metadata). So the next crondor cycle, whatever killed the last one (a
 * reboot, SIGKILL, an S3 error on the last step of a rename), can tell for every workflow
 * directory and every processing object which step was last done, and finish it or undo it:
 *
 *  - 'claiming' (killed while renaming): no DAG can have been submitted; every manifest is put back;
 *  - 'claimed' (no submission recorded): the schedd is asked for a DAGMan job with the workflow
 *    id. One that was set up and may run is the workflow's: recorded as 'submitted', left to run.
 *    One still half set up (`Requirements` not yet true: it never started) is removed. If DAGMan
 *    ever ran (its dagman.out exists), the post step runs; otherwise every manifest is put back;
 *  - 'submitted' / 'settling': while the DAGMan job is in the queue, nothing is done; once it is
 *    gone, the post step runs (again) and settles whatever is not settled;
 *  - a processing object of this host and launch directory whose workflow is gone, finished or
 *    rolled back, or which it never claimed, is put back (or, when the raw manifest is there
 *    again, deleted). Processing objects of other launch directories are left alone.
 *
 * Putting a manifest back never loses it and never leaves two: if only the processing object is
 * there, it is renamed to the raw key (restoring the user's metadata); if both are there (a
 * rename stopped after its copy), the processing copy is deleted, since the raw object is the
 * user's; if only the raw key is there, nothing is left to do.
 */

export type RecoveryDeps = {
  store: S3Store;
  schedd: Schedd;
  log: Logger;
  /** The directory holding `workflow-run-<ts>/`. */
  launchDir: string;
  /** This machine's host name: with the workflow directory, the workflow id. */
  host: string;
};

/** S3 user metadata (`x-amz-meta-...`) the pipeline sets on a processing object. */
export const WORKFLOW_METADATA = 'cog-pipeline-workflow';
export const SOURCE_METADATA = 'cog-pipeline-source';

/** A workflow directory's name; the group is its time stamp. */
const WORKFLOW_DIR = /^workflow-run-(\d{8}-\d{6})$/;
const PROCESSING_FILE = /^.*processing-\d{8}-\d{6}\.csv$/s;

/** `<host>:<workflow directory>`, as the processing objects carry it. */
export function workflowIdOf(host: string, workflowDir: string): string {
  return `${host}:${workflowDir}`;
}

/** Whether the key names a manifest while it is processed (`..._processing-<ts>.csv`). */
export function isProcessingKey(key: string): boolean {
  return PROCESSING_FILE.test(baseName(key));
}

/**
 * Metadata values travel as HTTP header values: anything but printable ASCII (and `%`) is
 * percent-encoded, so a launch directory or key in any script survives the trip.
 */
function encodeMetadata(value: string): string {
  return value.replace(/[^\x21-\x7e]|%/gu, (c) => encodeURIComponent(c));
}

function decodeMetadata(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/** The user's own metadata: what the object had before the pipeline added its two entries. */
function userMetadata(head: ObjectHead): Record<string, string> {
  const { [WORKFLOW_METADATA]: _workflow, [SOURCE_METADATA]: _source, ...rest } = head.metadata;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// The two bucket steps: claim (raw -> processing) and put back (processing -> raw).

export type ManifestKeys = { sourceKey: string; processingKey: string };

/**
 * Claims the raw manifest for the workflow: takes its claim in the bucket (bucket_claim.ts, so
 * that no other launch directory or crondor job takes it too), then renames it to its processing
 * key, the copy carrying the workflow id: copy, then delete. Returns 'gone' when the raw manifest
 * is no longer there, and why when another workflow holds its claim. A failure leaves the raw
 * manifest where it was (the copy is deleted again) and throws; if even that cannot be done, the
 * copy names its workflow and the claim entry stays, and the next cycle deletes both.
 */
export async function claimManifest(
  store: S3Store,
  bucket: string,
  m: ManifestKeys,
  workflowId: string,
  opts: Pick<ClaimOptions, 'isLeftOver' | 'onLeftOver'> = {},
): Promise<'claimed' | 'gone' | { heldElsewhere: string }> {
  let claim: ClaimOutcome;
  try {
    claim = await takeClaim(store, bucket, m.sourceKey, workflowId, opts);
  } catch (err) {
    // The entry may have been written all the same (a lost reply): take it away if S3 lets us;
    // if not, the next cycle of this launch directory finds it left over (leftOverClaim).
    await releaseClaim(store, bucket, m.sourceKey, workflowId).catch(() => undefined);
    throw err;
  }
  if (!claim.held) return { heldElsewhere: claim.why };
  // The entry is deleted only once nothing of this claim is left half done.
  const release = () => releaseClaim(store, bucket, m.sourceKey, workflowId).catch(() => undefined);
  const raw = await store.head(bucket, m.sourceKey).catch(async (err: unknown) => {
    await release();
    throw err;
  });
  if (raw === null) {
    await release();
    return 'gone';
  }
  const metadata = { ...userMetadata(raw), [WORKFLOW_METADATA]: encodeMetadata(workflowId), [SOURCE_METADATA]: encodeMetadata(m.sourceKey) };
  try {
    await store.copyWithMetadata(bucket, m.sourceKey, m.processingKey, raw, metadata);
  } catch (err) {
    // The copy may have been made all the same (a lost reply): it is ours, take it away.
    if (await store.delete(bucket, m.processingKey).then(() => true, () => false)) await release();
    throw err;
  }
  crashPoint('claim:after-copy');
  try {
    await store.delete(bucket, m.sourceKey);
  } catch (err) {
    // A lost reply: the delete may have been done. If the raw manifest is gone, the claim is.
    if (!(await store.exists(bucket, m.sourceKey))) {
      await release();
      return 'claimed';
    }
    if (await store.delete(bucket, m.processingKey).then(() => true, () => false)) await release();
    throw err;
  }
  await release();
  return 'claimed';
}

/**
 * Puts a manifest back under its raw key. Safe to repeat and to run after a crash at any point
 * of a claim or of an earlier put-back: it looks at which of the two keys exist. The workflow's
 * claim entry is in place before the raw key can reappear and until the processing copy is gone,
 * so nobody else claims the manifest half way (and a put-back killed after its copy is not
 * mistaken, on the next try, for a manifest still to be put back when someone else took it).
 * `workflowId` is undefined only for processing objects of earlier versions, which had no claims.
 */
export async function putBack(
  store: S3Store,
  bucket: string,
  m: ManifestKeys,
  log: Logger,
  workflowId: string | undefined,
): Promise<'put back' | 'copy deleted' | 'nothing to do'> {
  const release = async () => {
    if (workflowId !== undefined) await releaseClaim(store, bucket, m.sourceKey, workflowId);
  };
  const processing = await store.head(bucket, m.processingKey);
  if (processing === null) {
    await release();
    return 'nothing to do';
  }
  if (workflowId !== undefined) {
    const claim = await takeClaim(store, bucket, m.sourceKey, workflowId, { keepOnContention: true });
    if (!claim.held) throw new Error(`cannot put ${m.sourceKey} back now: ${claim.why}`);
  }
  if (await store.exists(bucket, m.sourceKey)) {
    // A rename stopped between its copy and its delete (or the user uploaded it again): the raw
    // object is the user's, the processing one only the pipeline's copy.
    await store.delete(bucket, m.processingKey);
    await release();
    log.info(`deleted s3://${bucket}/${m.processingKey}: s3://${bucket}/${m.sourceKey} is there`);
    return 'copy deleted';
  }
  await store.copyWithMetadata(bucket, m.processingKey, m.sourceKey, processing, userMetadata(processing));
  crashPoint('putback:after-copy');
  await store.delete(bucket, m.processingKey);
  await release();
  log.info(`put back s3://${bucket}/${m.sourceKey}`);
  return 'put back';
}

// ---------------------------------------------------------------------------------------------
// Workflow directories.

/**
 * Re-reads workflow.json and moves it to `to` only if its state is still one of `from`: the post
 * step DAGMan runs may have moved it on meanwhile. Returns the record as it now is.
 */
async function advance(
  dir: string,
  from: Array<WorkflowState | undefined>,
  to: WorkflowState,
  change: (record: WorkflowRecord) => void = () => undefined,
): Promise<{ advanced: boolean; record: WorkflowRecord }> {
  const record = await readWorkflowRecord(dir);
  if (!from.includes(record.state)) return { advanced: false, record };
  change(record);
  await recordState(dir, record, to);
  return { advanced: true, record };
}

/** DAGMan jobs of the workflow still in the queue (not completed), with what tells whether they may run. */
async function dagmanJobs(schedd: Schedd, workflowDir: string) {
  const ads = await schedd.query(`JobDescription =?= ${classAdString(workflowDir)} && JobStatus =!= 4`, ['ClusterId', 'ProcId', 'JobStatus', 'Requirements']);
  return ads.map((ad) => ({
    clusterId: typeof ad.ClusterId === 'number' ? ad.ClusterId : Number(ad.ClusterId),
    status: typeof ad.JobStatus === 'number' ? ad.JobStatus : Number(ad.JobStatus),
    // Set up completely: the last edit of the set-up lets it start (job_settings.ts START).
    started: sameAttributeValue(START.Requirements!, ad.Requirements),
  }));
}

/** Whether DAGMan ever ran for this workflow: it writes its debug log first thing. */
function dagmanRan(workflowDir: string): boolean {
  return ['dagfile.dag.dagman.out', 'dagfile.dag.nodes.log'].some((f) => existsSync(path.join(workflowDir, f)));
}

export type Unsubmitted =
  | { outcome: 'submitted'; dagClusterId: number }
  | { outcome: 'settle' }
  | { outcome: 'rolled-back' }
  | { outcome: 'settled' }
  | { outcome: 'undecided'; why: string };

/**
 * A 'claiming' or 'claimed' workflow with no submission recorded: did a DAGMan job land, or did
 * DAGMan run? Asks the schedd, never guesses. `assumeNoJob` (the cycle's own failed submission,
 * which the schedd client already checked) rolls back when the schedd cannot be asked either.
 */
export async function settleUnsubmitted(
  dir: string,
  record: WorkflowRecord,
  deps: RecoveryDeps,
  opts: { assumeNoJob?: boolean } = {},
): Promise<Unsubmitted> {
  const name = path.basename(dir);
  const { log } = deps;
  // 'claiming': the record says 'claimed' before any DAG file is written, so nothing was submitted.
  if (record.state === 'claimed') {
    let jobs: Awaited<ReturnType<typeof dagmanJobs>> = [];
    try {
      jobs = await dagmanJobs(deps.schedd, dir);
    } catch (err) {
      if (!opts.assumeNoJob) return { outcome: 'undecided', why: `could not ask the schedd for its DAGMan job: ${(err as Error).message}` };
    }
    const started = jobs.find((j) => j.started);
    if (started !== undefined) {
      const { advanced, record: now } = await advance(dir, ['claimed'], 'submitted', (r) => (r.dagClusterId = started.clusterId));
      if (advanced) log.warn(`${name}: its DAGMan job ${started.clusterId}.0 is in the queue though no submission was recorded (the cycle was stopped right after submitting): recorded as submitted, left to run`);
      return now.state === 'settled' ? { outcome: 'settled' } : { outcome: 'submitted', dagClusterId: started.clusterId };
    }
    for (const job of jobs.filter((j) => j.status !== 3)) {
      // Submitted but never set up to start (Requirements is still false): it never ran.
      try {
        await deps.schedd.removeByConstraint(
          `ClusterId == ${job.clusterId} && JobDescription =?= ${classAdString(dir)}`,
          'cog-pipeline: a DAGMan job left half set up by a stopped crondor cycle',
        );
        log.warn(`${name}: removed DAGMan job ${job.clusterId}.0, submitted but never set up to start by a stopped cycle`);
      } catch (err) {
        return { outcome: 'undecided', why: `could not remove its half set up DAGMan job ${job.clusterId}.0: ${(err as Error).message}` };
      }
    }
    if (dagmanRan(dir)) {
      log.warn(`${name}: DAGMan ran for it though no submission was recorded, and is gone: its post step settles it`);
      return { outcome: 'settle' };
    }
  }
  // The post step may have started meanwhile (DAGMan's, after a submission the record missed).
  const now = await readWorkflowRecord(dir);
  if (now.state === 'settling') return { outcome: 'settle' };
  if (now.state === 'settled') return { outcome: 'settled' };
  if (now.state !== 'claiming' && now.state !== 'claimed') return { outcome: 'undecided', why: `its state changed to ${now.state}` };
  return (await rollBack(dir, now, deps)) ? { outcome: 'rolled-back' } : { outcome: 'undecided', why: 'not every manifest could be put back' };
}

/** Puts every manifest of the workflow back, then records 'rolled-back'; false if one could not be. */
export async function rollBack(dir: string, record: WorkflowRecord, deps: RecoveryDeps): Promise<boolean> {
  let complete = true;
  for (const m of record.manifests) {
    try {
      await putBack(deps.store, record.inputBucket, m, deps.log, record.workflowId);
    } catch (err) {
      complete = false;
      deps.log.error(`could not put back ${m.sourceKey} (still s3://${record.inputBucket}/${m.processingKey}; the next cycle tries again): ${(err as Error).message}`);
    }
  }
  if (!complete) return false;
  crashPoint('recovery:before-rolled-back');
  const { advanced } = await advance(dir, ['claiming', 'claimed'], 'rolled-back', (r) => {
    for (const m of r.manifests) m.claimed = false;
  });
  return advanced;
}

/** Runs the post step for a workflow here and now, with its log in the workflow directory. */
export async function postHere(dir: string, store: S3Store): Promise<void> {
  const postLog = openPostLog(dir);
  try {
    await runPost(dir, store, postLog.log);
  } catch (err) {
    postLog.log.error((err as Error).message);
    throw err;
  } finally {
    await postLog.close();
  }
}

/** One unfinished workflow: finish it or roll it back, as far as can be done now. */
async function recoverWorkflow(dir: string, record: WorkflowRecord, deps: RecoveryDeps): Promise<void> {
  const name = path.basename(dir);
  const { log } = deps;
  switch (record.state) {
    case 'claiming':
    case 'claimed': {
      log.warn(`${name} was left ${record.state === 'claiming' ? 'while its manifests were being claimed' : 'claimed but with no submission recorded'} (the cycle was stopped): finishing it`);
      const result = await settleUnsubmitted(dir, record, deps);
      if (result.outcome === 'rolled-back') {
        log.warn(`${name} rolled back: its manifests are back under their raw names and are claimed again now; the directory stays as a record`);
      } else if (result.outcome === 'settle') {
        await settleNow(dir, deps);
      } else if (result.outcome === 'undecided') {
        log.error(`${name} stays as it is until the next cycle: ${result.why}`);
      }
      return;
    }
    case 'submitted':
    case 'settling': {
      // Still in the queue (running, held, or removed and finishing its FINAL node): its own post step settles it.
      if ((await dagmanJobs(deps.schedd, dir)).length > 0) return;
      await settleNow(dir, deps);
      return;
    }
    default:
      return;
  }
}

async function settleNow(dir: string, deps: RecoveryDeps): Promise<void> {
  const name = path.basename(dir);
  deps.log.warn(`${name}: its DAGMan job is gone but its post step did not finish: running the post step now (see ${path.join(dir, 'post.out')})`);
  await postHere(dir, deps.store);
  deps.log.info(`${name} settled`);
}

/** The launch directory's workflows, as the recovery pass leaves them. */
export type KnownWorkflows = {
  /** Records of the workflows not settled or rolled back, by directory. */
  unfinished: Map<string, WorkflowRecord>;
  /** Directories of settled and rolled-back workflows (and of earlier versions'): nothing is left to do there. */
  finished: Set<string>;
};

/**
 * The names of the launch directory's finished workflow directories, so that a cycle does not
 * read every record ever written: after months of quarter hours there are thousands, and reading
 * 10 000 took 2 s and 125 MB of every cycle. A finished record never changes again.
 */
const FINISHED_FILE = '.finished-workflows';

async function loadFinishedNames(launchDir: string): Promise<Set<string>> {
  try {
    return new Set((await readFile(path.join(launchDir, FINISHED_FILE), 'utf8')).split('\n').filter((n) => WORKFLOW_DIR.test(n)));
  } catch {
    return new Set(); // none yet, or unreadable: every record is read (and the list made) again
  }
}

async function saveFinishedNames(launchDir: string, names: string[]): Promise<void> {
  const file = path.join(launchDir, FINISHED_FILE);
  await writeFile(`${file}.tmp`, names.map((n) => `${n}\n`).join(''));
  await rename(`${file}.tmp`, file);
}

/**
 * The recovery pass at the start of a cycle: every workflow directory of the launch directory
 * whose record is not settled or rolled back is finished or rolled back, as far as can be done
 * now (what cannot, say S3 is down, is tried again by the next cycle). Records of finished
 * workflows are read once, then only their names are kept (FINISHED_FILE).
 */
export async function recoverWorkflows(deps: RecoveryDeps): Promise<KnownWorkflows> {
  const known: KnownWorkflows = { unfinished: new Map(), finished: new Set() };
  let names: string[];
  try {
    names = (await readdir(deps.launchDir)).filter((n) => WORKFLOW_DIR.test(n)).sort();
  } catch {
    return known;
  }
  const finishedBefore = await loadFinishedNames(deps.launchDir);
  for (const name of names) {
    const dir = path.join(deps.launchDir, name);
    if (finishedBefore.has(name)) {
      known.finished.add(dir);
      continue;
    }
    let record: WorkflowRecord;
    try {
      record = await readWorkflowRecord(dir);
    } catch (err) {
      await abandonedDirectory(dir, err as Error, deps.log);
      continue;
    }
    if (record.state === undefined || isFinal(record.state)) {
      known.finished.add(dir);
      continue;
    }
    try {
      await recoverWorkflow(dir, record, deps);
    } catch (err) {
      deps.log.error(`could not finish ${name}; the next cycle tries again: ${(err as Error).message}`);
    }
    try {
      record = await readWorkflowRecord(dir);
    } catch {
      // Keep what was read before.
    }
    if (isFinal(record.state)) known.finished.add(dir);
    else known.unfinished.set(dir, record);
  }
  const finishedNow = [...known.finished].map((dir) => path.basename(dir));
  if (finishedNow.length !== finishedBefore.size || finishedNow.some((n) => !finishedBefore.has(n))) {
    await saveFinishedNames(deps.launchDir, finishedNow).catch((err: Error) =>
      deps.log.warn(`could not write ${path.join(deps.launchDir, FINISHED_FILE)} (the next cycle reads every record again): ${err.message}`),
    );
  }
  return known;
}

/**
 * A workflow directory without a record: a cycle was stopped between making it and writing its
 * first record, before it renamed anything. Removed when it holds nothing else.
 */
async function abandonedDirectory(dir: string, err: Error, log: Logger): Promise<void> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return;
  }
  if (files.includes(path.basename(workflowFile(dir)))) {
    log.error(`${path.basename(dir)} is left alone: ${err.message}`);
    return;
  }
  if (files.every((f) => f.startsWith('workflow.json.tmp-'))) {
    await rm(dir, { recursive: true, force: true });
    log.info(`removed ${path.basename(dir)}: a cycle was stopped before it claimed anything there`);
  }
}

// ---------------------------------------------------------------------------------------------
// Processing objects in the bucket.

/**
 * Every processing object in the input bucket that no unfinished workflow of this launch
 * directory accounts for: put back (or deleted) if its metadata names this host and launch
 * directory, else left alone and reported once. Returns how many raw manifests came back.
 */
export async function sweepProcessingObjects(
  bucket: string,
  processingKeys: string[],
  known: KnownWorkflows,
  deps: RecoveryDeps,
): Promise<number> {
  const { store, log } = deps;
  const inFlight = new Set<string>();
  for (const record of known.unfinished.values()) {
    if (record.inputBucket !== bucket) continue;
    for (const m of record.manifests) if (m.claimed !== false && m.settled !== true) inFlight.add(m.processingKey);
  }
  const leftAlone = await loadReported(deps.launchDir, LEFT_ALONE_FILE);
  const stillLeftAlone = new Map<string, string>();
  let restored = 0;
  for (const key of processingKeys) {
    if (inFlight.has(key)) continue;
    let head: ObjectHead | null;
    try {
      head = await store.head(bucket, key);
    } catch (err) {
      log.error(`could not read the metadata of s3://${bucket}/${key}: ${(err as Error).message}`);
      continue;
    }
    if (head === null) continue;
    const workflowId = decodeMetadata(head.metadata[WORKFLOW_METADATA]);
    const owner = workflowId === undefined ? undefined : parseWorkflowId(workflowId);
    if (owner === undefined || owner.host !== deps.host || path.dirname(owner.dir) !== deps.launchDir) {
      const entry = reportedEntry(bucket, key);
      stillLeftAlone.set(entry, head.etag);
      if (leftAlone.get(entry) !== head.etag) {
        log.warn(
          `s3://${bucket}/${key} is left alone: ${workflowId === undefined ? 'it carries no workflow id (claimed by an earlier version, or not by this pipeline)' : `it belongs to ${workflowId}, not to this launch directory on ${deps.host}`}; not reported again`,
        );
      }
      continue;
    }
    const record =
      known.unfinished.get(owner.dir) ?? (known.finished.has(owner.dir) ? await readWorkflowRecord(owner.dir).catch(() => undefined) : undefined);
    const manifest: WorkflowManifest | undefined = record?.manifests.find((m) => m.processingKey === key);
    const sourceKey = manifest?.sourceKey ?? decodeMetadata(head.metadata[SOURCE_METADATA]);
    if (sourceKey === undefined) {
      log.error(`s3://${bucket}/${key} names ${owner.dir} but not its raw key; it is left alone`);
      continue;
    }
    const why =
      record === undefined
        ? `its workflow directory ${owner.dir} is gone`
        : manifest === undefined || manifest.claimed === false
          ? `${path.basename(owner.dir)} never claimed it (a claim that failed half-way)`
          : `${path.basename(owner.dir)} is ${record.state}`;
    try {
      if (manifest?.settled === true) {
        // Its CSVs are written: this copy is all that is left to remove.
        await store.delete(bucket, key);
        await releaseClaim(store, bucket, sourceKey, workflowId!);
        log.warn(`deleted s3://${bucket}/${key}: ${why} and ${sourceKey} was settled`);
        continue;
      }
      const done = await putBack(store, bucket, { sourceKey, processingKey: key }, log, workflowId);
      log.warn(`s3://${bucket}/${key} was left behind (${why}): ${done === 'put back' ? `put back as ${sourceKey}, to be claimed again` : `${sourceKey} is there, so the copy was deleted`}`);
      if (done === 'put back') restored++;
    } catch (err) {
      log.error(`could not put back s3://${bucket}/${key} as ${sourceKey} (the next cycle tries again): ${(err as Error).message}`);
    }
  }
  if (stillLeftAlone.size > 0 || leftAlone.size > 0) await saveReported(deps.launchDir, LEFT_ALONE_FILE, stillLeftAlone);
  return restored;
}

/**
 * Whether a claim entry of `manifestKey` owned by `owner` (a workflow id) was left by a claim of
 * this host and launch directory that nothing will finish: its workflow directory is gone (a cycle
 * that claimed nothing removes it), settled or rolled back, or went on without the manifest (its
 * claim failed). Entries of unfinished workflows that still hold the manifest, of the workflow
 * claiming now (`current`) and of other launch directories are not; nor is one whose processing
 * copy is still listed (`processingKeys`): its put-back needs the entry in place.
 */
export function leftOverClaim(
  owner: string,
  manifestKey: string,
  known: KnownWorkflows,
  deps: Pick<RecoveryDeps, 'host' | 'launchDir'>,
  current: string,
  processingKeys: ReadonlySet<string>,
): boolean {
  const o = parseWorkflowId(owner);
  if (o === undefined || o.host !== deps.host || path.dirname(o.dir) !== deps.launchDir || o.dir === current) return false;
  const timestamp = WORKFLOW_DIR.exec(path.basename(o.dir))?.[1];
  if (timestamp === undefined || processingKeys.has(stateKey(manifestKey, 'processing', timestamp))) return false;
  if (known.finished.has(o.dir)) return true;
  const record = known.unfinished.get(o.dir);
  if (record === undefined) return !existsSync(o.dir);
  const manifest = record.manifests.find((x) => x.sourceKey === manifestKey);
  return manifest === undefined || (record.state !== 'claiming' && manifest.claimed === false);
}

function parseWorkflowId(id: string): { host: string; dir: string } | undefined {
  const colon = id.indexOf(':');
  if (colon <= 0) return undefined;
  return { host: id.slice(0, colon), dir: id.slice(colon + 1) };
}

