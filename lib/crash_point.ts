/**
 * TEST HOOK: named points where a test can kill the pipeline as a reboot would. Inert unless the
 * environment variable COG_PIPELINE_TEST_CRASH_AT names the point: then the process sends itself
 * SIGKILL there, at once (no cleanup, no finally blocks, no buffered log lines flushed, the cycle
 * lock left behind). test/recovery.test.ts selects each point in turn and checks that the next
 * crondor cycle finishes or rolls back what was half done (README, "What happens when things go
 * wrong"). Nothing else reads the variable; production runs never set it.
 *
 * The points, in the order a manifest meets them:
 *
 * The crondor cycle (lib/crondor.ts):
 *  - cycle:before-claim       workflow directory and workflow.json ('claiming', listing the
 *                             manifests about to be claimed) written; nothing renamed yet
 *  - claim:after-entry      inside the first manifest's claim: its claim entry is written in the
 *                             bucket (bucket_claim.ts), the raw object not yet copied
 *  - claim:after-copy         inside the first manifest's rename: the processing copy (with its
 *                             workflow id) exists, the raw object is not deleted yet
 *  - cycle:after-claim        the first manifest renamed to processing, not read yet
 *  - cycle:after-read         the first manifest read and copied into the workflow directory,
 *                             workflow.json not yet updated
 *  - cycle:between-manifests  the first manifest claimed and recorded; the next one untouched
 *  - cycle:claimed            workflow.json says 'claimed' (all renames and reads done); no DAG
 *                             file written yet
 *  - cycle:before-submit      DAG and node submit files written; nothing sent to the schedd
 *  - cycle:after-submit       the DAGMan job is submitted and set up (it may start), but
 *                             workflow.json still says 'claimed'
 *  - cycle:submitted          workflow.json says 'submitted' with the DAGMan cluster id
 *  - cycle:before-settle      every row is bad (nothing to convert): 'claimed', the in-cycle
 *                             post step not started
 *  - putback:after-copy       inside a put-back (a failed submission, or a roll-back by the next
 *                             cycle): the raw copy exists, the processing object is not deleted
 *  - recovery:before-rolled-back
 *                             a roll-back has put every manifest back; workflow.json still says
 *                             'claiming' or 'claimed'
 *
 * The post step (lib/post.ts; run by DAGMan's FINAL node, by the cycle when nothing is to be
 * converted, or by the next cycle's recovery):
 *  - post:started             workflow.json says 'settling'; nothing written to the bucket
 *  - post:after-processed-csv the first manifest's processed CSV uploaded, its failed CSV not
 *  - post:before-delete       both CSVs of the first manifest uploaded, processing not deleted
 *  - post:after-delete        the first manifest's processing object deleted, not yet recorded
 *                             as settled
 *  - post:between-manifests   the first manifest recorded as settled; the next one untouched
 *  - post:before-settled      every manifest settled; workflow.json not yet 'settled'
 */

export const CRASH_AT_VARIABLE = 'COG_PIPELINE_TEST_CRASH_AT';

export const CRASH_POINTS = [
  'cycle:before-claim',
  'claim:after-entry',
  'claim:after-copy',
  'cycle:after-claim',
  'cycle:after-read',
  'cycle:between-manifests',
  'cycle:claimed',
  'cycle:before-submit',
  'cycle:after-submit',
  'cycle:submitted',
  'cycle:before-settle',
  'putback:after-copy',
  'recovery:before-rolled-back',
  'post:started',
  'post:after-processed-csv',
  'post:before-delete',
  'post:after-delete',
  'post:between-manifests',
  'post:before-settled',
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

/** Kills this process with SIGKILL when COG_PIPELINE_TEST_CRASH_AT is `name`; otherwise nothing. */
export function crashPoint(name: CrashPointName): void {
  if (process.env[CRASH_AT_VARIABLE] === name) process.kill(process.pid, 'SIGKILL');
}

/**
 * The variable for the jobs' environment when a test selected a post step point, so that the
 * post step DAGMan runs is killed there too (jobs get no inherited environment); empty otherwise.
 */
export function crashPointEnvironment(): Record<string, string> {
  const at = process.env[CRASH_AT_VARIABLE];
  return at !== undefined && at.startsWith('post:') ? { [CRASH_AT_VARIABLE]: at } : {};
}
