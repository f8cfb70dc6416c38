/**
 * The baseline: what the Python tool (`cog_pipeline.py`, WIStCart/chtc_cog_processing at
 * 361115c, SPEC 3.2 and 3.5) does in its crondor cycle and its post step, request for request,
 * written in TypeScript with @aws-sdk/client-s3 so that it can run here (the Python tool needs
 * the htcondor bindings and minio, which this machine does not have) through the same counting
 * proxy, on the same data. It is run as its own process, like the CLI:
 *
 *   node --import tsx bench/baseline.ts crondor --input-bucket IN --output-bucket OUT -p GLOB -a F -s F -e URL --api-url URL --api-token-file F
 *   node --import tsx bench/baseline.ts post --input-bucket IN --output-bucket OUT -a F -s F -e URL   (in the workflow directory)
 *
 * What it copies from the Python tool, because it decides the requests and the work:
 *  - every helper (get_matching_objects, fetch_input_objects, rename_object, put_object,
 *    remove_object) makes a new Minio client, and minio-py asks a new client for the bucket's
 *    region first (GetBucketLocation; minio/api.py _get_region, 7.2.x); copy_object HEADs the
 *    source first (stat_object, to refuse sources over 5 GiB). (The requests are the Python
 *    tool's; one SDK client serves them all, see sdkClient);
 *  - get_matching_objects lists the WHOLE bucket (recursive, every page) and filters the keys
 *    with fnmatch, whatever the pattern;
 *  - the cycle: list the input bucket, GET each match into the current directory, make
 *    workflow-run-<ts>/, read every row, print them, write the DAG (htcondor.dags: JOB, VARS,
 *    RETRY per node, then FINAL and its POST script) and the DAGMan submit file, submit it once
 *    (here: one POST /api/v1/jobs, the REST form of schedd.submit), then rename each manifest
 *    (HEAD, copy, delete);
 *  - post: for each row, get_matching_objects(output bucket, key) and, if found,
 *    get_matching_objects(output bucket, key with .jpg): two full listings of the output bucket
 *    per row; then one full listing of the input bucket to find the processing object, PUT the
 *    processed and failed CSVs, DELETE the processing object.
 * Its start-up is that of Node, tsx and the AWS SDK, not of Python: the fixed cost it shows is a
 * floor for a TypeScript tool that loads those, not the Python tool's.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

type S3Conf = { endpoint: string; accessKey: string; secretKey: string; accessKeyFile: string; secretKeyFile: string };

function s3Conf(accessKeyFile: string, secretKeyFile: string, endpoint: string): S3Conf {
  return {
    endpoint,
    accessKey: readFileSync(accessKeyFile, 'utf8').trim(),
    secretKey: readFileSync(secretKeyFile, 'utf8').trim(),
    accessKeyFile,
    secretKeyFile,
  };
}

/**
 * One S3 client for the whole process, so the SDK's construction cost (far above minio-py's) is
 * not charged to the baseline; what a new Minio client means for the traffic is kept: an empty
 * region cache, so its first request to a bucket is a GetBucketLocation.
 */
let shared: S3Client | undefined;
function sdkClient(conf: S3Conf): S3Client {
  shared ??= new S3Client({
    endpoint: conf.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: conf.accessKey, secretAccessKey: conf.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return shared;
}

/** A new "Minio client": an empty region cache. */
class MinioLike {
  private readonly client: S3Client;
  private readonly regions = new Set<string>();

  constructor(conf: S3Conf) {
    this.client = sdkClient(conf);
  }

  /** minio-py's _get_region: one GetBucketLocation per bucket per client. */
  private async region(bucket: string): Promise<void> {
    if (this.regions.has(bucket)) return;
    await this.client.send(new GetBucketLocationCommand({ Bucket: bucket }));
    this.regions.add(bucket);
  }

  async *listObjects(bucket: string): AsyncGenerator<string> {
    await this.region(bucket);
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key !== undefined) yield o.Key;
      token = page.NextContinuationToken;
    } while (token !== undefined);
  }

  async getToFile(bucket: string, key: string, file: string): Promise<void> {
    await this.region(bucket);
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!(Body instanceof Readable)) throw new Error('response body is not a stream');
    await pipeline(Body, createWriteStream(file));
  }

  async copy(bucket: string, to: string, from: string): Promise<void> {
    await this.region(bucket);
    await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: from })); // stat_object
    const source = `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
    await this.client.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source }));
  }

  async putFile(bucket: string, key: string, file: string): Promise<void> {
    await this.region(bucket);
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: readFileSync(file) }));
  }

  async remove(bucket: string, key: string): Promise<void> {
    await this.region(bucket);
    await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  }
}

async function withClient<T>(conf: S3Conf, work: (c: MinioLike) => Promise<T>): Promise<T> {
  return work(new MinioLike(conf));
}

/** Python's fnmatch.translate (case-sensitive, as on POSIX): `*` and `?` cross `/`, `[...]` sets. */
export function fnmatchRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i++]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      let j = i;
      if (pattern[j] === '!') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j++;
      if (j >= pattern.length) out += '\\[';
      else {
        let set = pattern.slice(i, j).replaceAll('\\', '\\\\');
        i = j + 1;
        if (set.startsWith('!')) set = '^' + set.slice(1);
        else if (set.startsWith('^') || set.startsWith('[')) set = '\\' + set;
        out += `[${set}]`;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^(?:${out})$`, 's');
}

/** get_matching_objects: a new client, the whole bucket listed, keys filtered with fnmatch. */
async function getMatchingObjects(conf: S3Conf, bucket: string, pattern: string): Promise<string[]> {
  const re = fnmatchRegExp(pattern);
  return withClient(conf, async (c) => {
    const keys: string[] = [];
    for await (const key of c.listObjects(bucket)) if (re.test(key)) keys.push(key);
    return keys;
  });
}

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

const baseName = (key: string) => key.split('/').at(-1)!;

/** Python's csv.reader over a file: every row, fields as written. */
function readCsv(file: string): string[][] {
  return parse(readFileSync(file), { relax_column_count: true, skip_empty_lines: false }) as string[][];
}

/** A DAG file as htcondor.dags.write_dag writes one layer with per-node VARS, RETRY and a FINAL node. */
function dagText(layer: string, submitFile: string, vars: Array<Record<string, string>>, post: string[]): string {
  const q = (v: string) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  const lines = ['# BEGIN META', '# END META', '# BEGIN NODES AND EDGES'];
  vars.forEach((v, i) => {
    const name = `${layer}_${i}`;
    lines.push(`JOB ${name} ${submitFile}`);
    lines.push(`VARS ${name} ${Object.entries(v).map(([k, value]) => `${k}=${q(value)}`).join(' ')}`);
    lines.push(`RETRY ${name} 3`);
  });
  lines.push('FINAL final final.sub', `SCRIPT POST final ${post.join(' ')}`, '# END NODES AND EDGES', '');
  return lines.join('\n');
}

async function crondor(argv: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      'input-bucket': { type: 'string' },
      'output-bucket': { type: 'string' },
      pattern: { type: 'string', short: 'p' },
      'secret-key': { type: 'string', short: 's' },
      'access-key': { type: 'string', short: 'a' },
      's3-endpoint': { type: 'string', short: 'e' },
      'max-running': { type: 'string', short: 'm', default: '10000' },
      'api-url': { type: 'string' },
      'api-token-file': { type: 'string' },
    },
  });
  const inBucket = o['input-bucket']!;
  const outBucket = o['output-bucket']!;
  const pattern = o.pattern!;
  const conf = s3Conf(o['access-key']!, o['secret-key']!, o['s3-endpoint']!);

  const matching = await getMatchingObjects(conf, inBucket, pattern);
  if (matching.length === 0) return;
  console.log('MATCHING FILES: ', matching);
  // fetch_input_objects: a new client, each match downloaded under its base name.
  await withClient(conf, async (c) => {
    for (const key of matching) await c.getToFile(inBucket, key, baseName(key));
  });
  console.log(`Downloaded ${matching.length} files`);

  const ts = timestamp();
  const workflowDir = `workflow-run-${ts}`;
  mkdirSync(workflowDir, { recursive: true });
  const renames = new Map<string, string>();
  const local: string[] = [];
  for (const key of matching) {
    const file = baseName(key);
    const processing = `${file.slice(0, -7)}processing-${ts}.csv`;
    renames.set(key, [...key.split('/').slice(0, -1), processing].join('/'));
    renameSync(file, path.join(workflowDir, processing));
    local.push(processing);
  }

  // submit_DAG, from inside the workflow directory.
  const launchDir = process.cwd();
  process.chdir(workflowDir);
  const files: string[][] = [];
  for (const file of local) {
    console.log('READING CSV FILE: ', file);
    files.push(...readCsv(file));
  }
  console.log('FILES TO BE COMPUTED ON: ', JSON.stringify(files));
  const inputArgs = files.map((row) => ({
    node_name: 'cog-pipeline-node',
    FULL_INFILE: row[0]!,
    INFILE: baseName(row[0]!),
    FULL_OUTFILE: row[0]!.replace('.tif', '.jpg'),
    OUTFILE: baseName(row[0]!).replace('.tif', '.jpg'),
    BANDS: row[1]!,
  }));
  console.log('ABOUTY TO SUBMIT EP JOBS WITH INPUT ARGS: ', JSON.stringify(inputArgs));
  const layer = `COG-Pipeline-DAG-${pattern}`;
  const submitFile = `${layer}.sub`;
  writeFileSync(
    submitFile,
    [
      'universe = container',
      'container_image = docker://osgeo/gdal:ubuntu-small-3.6.3',
      'log = $(INFILE).log',
      'output = $(INFILE).out',
      'error = $(INFILE).err',
      'executable = ../generate_cogs.sh',
      'arguments = $(INFILE) $(BANDS)',
      'request_disk = 2GB',
      'request_memory = 1GB',
      'request_cpus = 1',
      `aws_access_key_id_file = ${conf.accessKeyFile}`,
      `aws_secret_access_key_file = ${conf.secretKeyFile}`,
      `transfer_input_files = s3://${conf.endpoint}/${inBucket}/$(FULL_INFILE)`,
      `transfer_output_remaps = "$(INFILE) = s3://${conf.endpoint}/${outBucket}/$(FULL_INFILE); $(OUTFILE) = s3://${conf.endpoint}/${outBucket}/$(FULL_OUTFILE);"`,
      'should_transfer_files = YES',
      'when_to_transfer_output = ON_EXIT',
      `periodic_release = ((time() - EnteredCurrentStatus) >= ((((ClusterId % ${Math.floor(Number(o['max-running']) / 10)}) * 60) + 60) * pow(2, NumHolds)))`,
      'periodic_remove = NumHolds > 5',
      'queue',
      '',
    ].join('\n'),
  );
  const post = [process.argv[1]!, 'post', '--input-bucket', inBucket, '--output-bucket', outBucket, '-a', conf.accessKeyFile, '-s', conf.secretKeyFile, '-e', conf.endpoint];
  writeFileSync('dagfile.dag', dagText(layer, submitFile, inputArgs, post));
  // Submit.from_dag + schedd.submit: condor_submit_dag's DAGMan job, submitted once.
  const dagDir = path.resolve('.');
  const description = [
    'universe = scheduler',
    'executable = /usr/bin/condor_dagman',
    'transfer_executable = false',
    `initialdir = ${dagDir}`,
    'output = dagfile.dag.lib.out',
    'error = dagfile.dag.lib.err',
    'log = dagfile.dag.dagman.log',
    'remove_kill_sig = SIGUSR1',
    `arguments = "-p 0 -f -l . -Lockfile dagfile.dag.lock -AutoRescue 1 -DoRescueFrom 0 -Dag dagfile.dag -Suppress_notification -Dagman /usr/bin/condor_dagman -MaxJobs ${o['max-running']}"`,
    `batch_name = ${layer}`,
    'queue',
    '',
  ].join('\n');
  writeFileSync('dagfile.dag.condor.sub', description);
  console.log('Submitting DAG job...');
  const token = readFileSync(o['api-token-file']!, 'utf8').trim();
  const res = await fetch(`${o['api-url']!.replace(/\/+$/, '')}/api/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ submit_file: description }),
  });
  const answer = await res.text();
  if (!res.ok) throw new Error(`submitting the DAG failed: HTTP ${res.status} ${answer}`);
  console.log('Job was submitted', answer.trim());
  process.chdir(launchDir);

  // rename_object: a new client; copy (after a HEAD), then delete, per manifest.
  await withClient(conf, async (c) => {
    for (const [from, to] of renames) {
      console.log(`RENAMING ${inBucket}/${from} TO ${inBucket}/${to}`);
      await c.copy(inBucket, to, from);
      await c.remove(inBucket, from);
    }
  });
}

async function post(argv: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args: argv,
    options: {
      'input-bucket': { type: 'string' },
      'output-bucket': { type: 'string' },
      'secret-key': { type: 'string', short: 's' },
      'access-key': { type: 'string', short: 'a' },
      's3-endpoint': { type: 'string', short: 'e' },
    },
  });
  const inBucket = o['input-bucket']!;
  const outBucket = o['output-bucket']!;
  const said: string[] = [];
  try {
    const conf = s3Conf(o['access-key']!, o['secret-key']!, o['s3-endpoint']!);
    for (const file of readdirSync('.').filter((f) => /processing-/.test(f)).sort()) {
      const ok: string[][] = [];
      const failed: string[][] = [];
      for (const row of readCsv(file)) {
        const tif = row[0]!;
        const jpg = tif.replaceAll('.tif', '.jpg');
        // Python's `and`: the .jpg is looked for only when the .tif was found.
        if ((await getMatchingObjects(conf, outBucket, tif)).length > 0 && (await getMatchingObjects(conf, outBucket, jpg)).length > 0) ok.push(row);
        else failed.push(row);
      }
      const remote = (await getMatchingObjects(conf, inBucket, `*${file}`))[0]!;
      const remotePath = remote.split('/').slice(0, -1).join('/');
      const copies = new Map<string, string>();
      for (const [state, rows] of [['processed', ok], ['failed', failed]] as const) {
        if (rows.length === 0) continue;
        const name = file.replace('processing', state);
        writeFileSync(name, stringify(rows, { record_delimiter: '\r\n' }));
        copies.set(name, `${remotePath}/${name}`);
      }
      await withClient(conf, async (c) => {
        for (const [local, key] of copies) {
          said.push(`MOVING ${local} to ${inBucket}/${key}`);
          await c.putFile(inBucket, key, local);
        }
      });
      for (const local of copies.keys()) rmSync(local);
      await withClient(conf, async (c) => {
        said.push(`DELETING ${remote} from ${inBucket}/${remote}`);
        await c.remove(inBucket, remote);
      });
    }
  } catch (err) {
    said.push(`An error occurred: ${(err as Error).message}`);
  } finally {
    writeFileSync('post.out', said.map((l) => l + '\n').join(''));
    writeFileSync('post.err', '');
  }
}

const [mode, ...rest] = process.argv.slice(2);
try {
  if (mode === 'crondor') await crondor(rest);
  else if (mode === 'post') await post(rest);
  else {
    process.stderr.write('usage: baseline.ts crondor|post [flags]\n');
    process.exitCode = 2;
  }
} finally {
  shared?.destroy();
}
