/**
 * cog_pipeline.ts: turns buckets of GeoTIFFs into Cloud Optimized GeoTIFFs on an HTCondor pool.
 *
 *   npx tsx cog_pipeline.ts -a KEYFILE -s SECRETFILE -e HOST --input-bucket IN --output-bucket OUT -p "*raw.csv"
 *
 * A thin command line over lib/: it reads options, builds the S3 store, the schedd client and
 * the logger, and hands them to launch, the crondor cycle or post.
 */
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { z } from 'zod';
import { MACRO_SYNTAX } from './lib/condor_syntax.ts';
import { jobEnvironment, selfInvocation } from './lib/invocation.ts';
import { createLogger, openPostLog, type Logger } from './lib/log.ts';
import type { S3Store } from './lib/s3_store.ts';
import type { Schedd } from './lib/schedd.ts';
import {
  DEFAULT_S3_ENDPOINT,
  loadS3Settings,
  readSecretFile,
  resolveApiAccess,
  resolveS3Access,
  UsageError,
  type S3Access,
} from './lib/settings.ts';
import type { PipelineSettings } from './lib/submit_rendering.ts';

// What each mode needs is loaded when it runs (the import()s below), not at start-up: the
// crondor job starts every 15 minutes, and a cycle with nothing to do needs the S3 client but
// neither the REST client (undici) nor the DAG, launch or post code; --help and usage errors need
// none of them.

// The project supports Node.js 20 (the access point's conda environment); without this, the AWS
// SDK's "upgrade to Node 22" notice would land in every crondor_<cluster>.err and post.err.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const DEFAULT_MAX_RUNNING = 10000;
const DEFAULT_DAGMAN = '/usr/bin/condor_dagman';

const required = { error: (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : undefined) };
const bucketName = z
  .string(required)
  .min(1, 'is empty')
  .regex(/^[^\s/]*$/, 'a bucket name has no "/" or spaces');

/**
 * A value written into submit descriptions, which end a value at a line break, continue one after
 * a trailing backslash, and read `$(`, `$$` and `$NAME(` as macros.
 */
const inSubmitDescription = (value: z.ZodType<string>) =>
  value
    .refine((p) => !/[\u0000-\u001f\u007f\u2028\u2029]/.test(p), 'holds a control character or a line break')
    .refine((p) => !p.endsWith('\\'), 'ends in a backslash, which a submit description reads as a line continuation')
    .refine((p) => !MACRO_SYNTAX.test(p), 'holds "$(", "$$" or "$NAME(", which HTCondor reads as a macro');
/** A file path the jobs are given in their submit descriptions. */
const jobPath = inSubmitDescription(z.string());
const s3Flags = z.object({
  accessKey: jobPath.optional(),
  secretKey: jobPath.optional(),
  s3Endpoint: z.string().optional(),
});
const MAX_DAGMAN_JOBS = 2_147_483_647;
const apiFlags = z.object({ apiUrl: z.string().optional(), apiTokenFile: jobPath.optional() });
const pipelineFlags = s3Flags.merge(apiFlags).extend({
  inputBucket: bucketName,
  outputBucket: bucketName,
  // The pattern is written into submit descriptions (arguments, batch name), which also trim values.
  pattern: inSubmitDescription(
    z
      .string(required)
      .min(1, 'is empty')
      .refine((p) => p.trim() === p, 'starts or ends with white space, which a submit description would drop'),
  ),
  maxRunning: z
    .string()
    .regex(/^\d+$/, 'must be a whole number written in decimal digits')
    .transform(Number)
    .refine((n) => n >= 1, 'must be at least 1')
    // condor_dagman reads -MaxJobs into a C int.
    .refine((n) => n <= MAX_DAGMAN_JOBS, `must be at most ${MAX_DAGMAN_JOBS} (DAGMan's limit)`),
  dagman: jobPath.refine(path.isAbsolute, 'must be an absolute path'),
});
const crondorFlags = pipelineFlags.extend({ launchDir: z.string().optional() });
const postFlags = s3Flags.extend({ inputBucket: bucketName, outputBucket: bucketName });

function parseFlags<T extends z.ZodType>(schema: T, opts: unknown): z.infer<T> {
  const result = schema.safeParse(opts);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${flagName(String(i.path[0] ?? ''))}: ${i.message}`);
    throw new UsageError(problems.join('; '));
  }
  return result.data;
}

function flagName(prop: string): string {
  return '--' + prop.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

function addS3Options(cmd: Command): Command {
  return cmd
    .option('-a, --access-key <file>', 'file holding the S3 access key id')
    .option('-s, --secret-key <file>', 'file holding the S3 secret key')
    .option(
      '-e, --s3-endpoint <host>',
      `S3 endpoint: a host (HTTPS, e.g. web.s3.wisc.edu) or a full URL (http://127.0.0.1:9000). ` +
        `Give -a, -s and -e together, or none of them for ~/.chtc_s3/{access,secret}.key and ${DEFAULT_S3_ENDPOINT}`,
    );
}

// Required flags are checked with zod, not commander: commander would demand the launch
// flags of the top-level command even when a mode word runs a subcommand.
function addBucketOptions(cmd: Command): Command {
  return cmd
    .option('--input-bucket <bucket>', '(required) bucket watched for manifests; holds the input images')
    .option('--output-bucket <bucket>', '(required) bucket the COGs and JPEG previews go to (may equal the input bucket)');
}

function addPipelineOptions(cmd: Command): Command {
  addBucketOptions(cmd);
  return addS3Options(
    cmd.option('-p, --pattern <glob>', '(required) manifests to pick up, matched against whole object keys as Python fnmatch does (e.g. "*raw.csv"; * crosses /)'),
  )
    .option('-m, --max-running <n>', 'most conversion jobs running at once (DAGMan -maxjobs)', String(DEFAULT_MAX_RUNNING))
    .addOption(new Option('--api-url <url>', 'htcondor-api base URL, e.g. https://ap.example.edu:8080').env('HTCONDOR_API_URL'))
    .addOption(
      new Option('--api-token-file <file>', 'file holding the HTCondor token for htcondor-api (default: the first file in ~/.condor/tokens.d/)').env(
        'HTCONDOR_API_TOKEN_FILE',
      ),
    )
    .option('--dagman <path>', 'condor_dagman on the access point', DEFAULT_DAGMAN);
}

function pipelineSettings(flags: z.infer<typeof pipelineFlags>, s3: S3Access): PipelineSettings {
  return {
    inputBucket: flags.inputBucket,
    outputBucket: flags.outputBucket,
    pattern: flags.pattern,
    maxRunning: flags.maxRunning,
    s3,
    api: resolveApiAccess(flags, process.env, os.homedir(), process.cwd()),
    dagman: flags.dagman,
  };
}

async function openStore(s3: S3Access, log: Logger): Promise<S3Store> {
  const { createS3Client, S3Store } = await import('./lib/s3_store.ts');
  return new S3Store(createS3Client(loadS3Settings(s3, process.env)), { log });
}

/**
 * The schedd through htcondor-api. The token is read at once (a missing one is an error before
 * anything happens); the REST client is loaded and connected only when the schedd is first
 * asked something, which a cycle that finds nothing to do never does.
 */
function openSchedd(settings: PipelineSettings, log: Logger): Schedd {
  const token = settings.api.tokenFile === undefined ? undefined : readSecretFile(settings.api.tokenFile, 'htcondor-api token');
  let opened: Promise<Schedd> | undefined;
  const schedd = () =>
    (opened ??= Promise.all([import('./lib/htcondor_api.ts'), import('./lib/schedd.ts')]).then(
      ([{ HtcondorApi }, { ApiSchedd }]) => new ApiSchedd(new HtcondorApi({ url: settings.api.url, token, log }), { log }),
    ));
  return {
    submit: async (job) => (await schedd()).submit(job),
    submitDag: async (dag) => (await schedd()).submitDag(dag),
    query: async (constraint, projection) => (await schedd()).query(constraint, projection),
    removeByConstraint: async (constraint, reason) => (await schedd()).removeByConstraint(constraint, reason),
    close: async () => {
      if (opened !== undefined) await (await opened).close();
    },
  };
}

const consoleLogger = () => createLogger(process.stdout, process.stderr);

async function launchMode(opts: unknown): Promise<void> {
  const flags = parseFlags(pipelineFlags, opts);
  const settings = pipelineSettings(flags, resolveS3Access(flags, os.homedir(), process.cwd()));
  // Before anything is asked of S3 or the schedd: the jobs need a build of these sources.
  const invocation = selfInvocation();
  const log = createLogger(process.stderr, process.stderr);
  const schedd = openSchedd(settings, log);
  try {
    const { launch } = await import('./lib/launch.ts');
    const cluster = await launch(settings, {
      schedd,
      store: await openStore(settings.s3, log),
      log,
      launchDir: process.cwd(),
      invocation,
      environment: jobEnvironment(process.env),
    });
    console.log(`Crondor job was submitted with JobID ${cluster}.0`);
  } finally {
    await schedd.close();
  }
}

async function crondorMode(opts: unknown): Promise<void> {
  const flags = parseFlags(crondorFlags, opts);
  const launchDir = path.resolve(flags.launchDir ?? process.cwd());
  const settings = pipelineSettings(flags, resolveS3Access(flags, os.homedir(), launchDir));
  const invocation = selfInvocation();
  const log = consoleLogger();
  // Reads the token now: a missing one stops the cycle before it takes the lock.
  const schedd = openSchedd(settings, log);
  const { acquireCycleLock } = await import('./lib/cycle_lock.ts');
  const taken = await acquireCycleLock(launchDir);
  if ('heldBy' in taken) {
    const { pid, host, since } = taken.heldBy;
    log.info(`another cycle is still running in ${launchDir} (pid ${pid} on ${host}, since ${since}); this one does nothing`);
    return;
  }
  try {
    const [{ runCrondorCycle }, { crashPointEnvironment }, store] = await Promise.all([
      import('./lib/crondor.ts'),
      import('./lib/crash_point.ts'),
      openStore(settings.s3, log),
    ]);
    await runCrondorCycle(settings, {
      store,
      schedd,
      log,
      now: () => new Date(),
      launchDir,
      invocation,
      // crashPointEnvironment() is empty unless a test selected a post step crash point.
      environment: { ...jobEnvironment(process.env), ...crashPointEnvironment() },
    });
  } finally {
    await schedd.close();
    await taken.lock.release();
  }
}

async function postMode(opts: unknown, log: Logger): Promise<void> {
  const flags = parseFlags(postFlags, opts);
  const s3 = resolveS3Access(flags, os.homedir(), process.cwd());
  const [{ runPost }, store] = await Promise.all([import('./lib/post.ts'), openStore(s3, log)]);
  await runPost(process.cwd(), store, log);
}

function buildProgram(): Command {
  const program = new Command('cog_pipeline.ts')
    .usage('[crondor|post] [options]')
    .description('Turns GeoTIFFs in an S3 bucket into Cloud Optimized GeoTIFFs plus JPEG previews on an HTCondor pool.')
    .addHelpText(
      'after',
      `
Without a mode word it launches: it submits the crondor job (batch "COG-Pipeline-Crondor-<pattern>").
Every 15 minutes that job looks for new manifests matching the pattern in the input bucket, renames
each to <name>processing-<ts>.csv and submits one DAG (batch "COG-Pipeline-DAG-<pattern>") that
converts every image listed. When the DAG ends, its post step writes <name>processed-<ts>.csv and
<name>failed-<ts>.csv next to the manifest. A manifest is a CSV of "key,bands" rows, one image per
line, e.g. "Counties/WI/Wood/1band.tif,1"; name it <name>raw.csv and upload it last.

Files in the directory you launch from: crondor_<cluster>.log/.out/.err, and one workflow-run-<ts>/
per workflow (DAG files, <image>.log/.out/.err per image, post.out, post.err).`,
    )
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)');
  addPipelineOptions(program).action(async (opts) => launchMode(opts));
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  npx tsx cog_pipeline.ts -a ~/keyid -s ~/secret -e web.s3.wisc.edu --input-bucket IN --output-bucket OUT -p "*raw.csv"\n' +
      '  npx tsx cog_pipeline.ts crondor --help      one monitoring cycle (what the crondor job runs)\n' +
      '  npx tsx cog_pipeline.ts post --help         the post step (what the DAG\'s FINAL node runs)\n\n' +
      'Manage it as any HTCondor work: condor_q, condor_watch_q, condor_rm -c \'JobBatchName=="COG-Pipeline-DAG-*raw.csv"\'',
  );

  addPipelineOptions(
    program
      .command('crondor')
      .description(
        'Run one monitoring cycle: claim new manifests and submit their DAG. The crondor job runs this every ' +
          '15 minutes; run it by hand to process new manifests now.',
      ),
  )
    .option('--launch-dir <dir>', 'directory holding workflow-run-<ts>/ (default: the current directory)')
    .action(async (opts) => crondorMode(opts));

  addS3Options(
    addBucketOptions(
      program
        .command('post')
        .description(
          'Record which images of a finished workflow succeeded. Runs in a workflow-run-<ts>/ directory as the ' +
            "DAG's FINAL node; writes the processed/failed CSVs next to each manifest and post.out/post.err there.",
        ),
    ),
  ).action(async (opts) => {
    const { log, close } = openPostLog(process.cwd());
    try {
      await postMode(opts, log);
    } catch (err) {
      log.error((err as Error).message);
      throw err;
    } finally {
      await close();
    }
  });
  return program;
}

const MODES = ['crondor', 'post'];

async function main(argv: string[]): Promise<number> {
  // `cog_pipeline.ts help` is what people type first.
  if (argv[2] === 'help') argv = [...argv.slice(0, 2), ...(MODES.includes(argv[3] ?? '') ? [argv[3]!] : []), '--help'];
  const word = argv[2];
  if (word !== undefined && !word.startsWith('-') && !MODES.includes(word)) {
    process.stderr.write(`cog_pipeline.ts: error: unknown mode "${word}": the first word is crondor or post, or none to launch\n(run with --help for usage)\n`);
    return 2;
  }
  try {
    await buildProgram().exitOverride().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed its message; help and version are not errors, bad usage is 2.
      return err.exitCode === 0 ? 0 : 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof UsageError) {
      process.stderr.write(`cog_pipeline.ts: error: ${message}\n(run with --help for usage)\n`);
      return 2;
    }
    process.stderr.write(`cog_pipeline.ts: error: ${message}\n`);
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
    if (cause) process.stderr.write(`  cause: ${cause}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
