import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, cp, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Job } from './schedd.ts';
import { boolAttr, stringAttr } from './schedd.ts';

/**
 * TEST STAND-IN for HTCondor's file transfer between the access point (AP, the stand-in's
 * schedd) and an execution point (EP, a scratch directory on this machine), as the manual's
 * "Submitting Jobs Without a Shared File System" describes it:
 *  - input: the executable (unless transfer_executable = false), stdin, and every
 *    `transfer_input_files` entry land in the scratch directory under their base names; plain
 *    paths are read relative to the job's Iwd (a trailing `/` copies a directory's contents);
 *    `s3://` URLs are fetched with the keys in aws_access_key_id_file / aws_secret_access_key_file,
 *    which HTCondor reads on the AP (it presigns the URLs there);
 *  - output: `transfer_output_files` when given (each must exist), else every top-level file the
 *    job created or modified; `transfer_output_remaps` renames a file within the Iwd or, for an
 *    `s3://` URL, uploads it; stdout and stderr go to the job's output and error files.
 * A failure is a TransferError carrying HTCondor's hold code (13 input, 12 output), a subcode
 * (the errno, or a plugin's exit status shifted left by 8) and a HoldReason in HTCondor's words.
 *
 * S3 URLs take the manual's forms: `s3://<host>/<bucket>/<key>` for a non-AWS service (the host
 * holds a dot; a loopback host is reached over http, any other over https, path-style), and the
 * AWS forms `s3://<bucket>.s3.<region>.amazonaws.com/<key>` and `s3://<bucket>/<key>`.
 */

const HOLD_TRANSFER_OUTPUT = 12;
const HOLD_TRANSFER_INPUT = 13;
/** A transfer plugin exiting 1, as HTCondor reports it in HoldReasonSubCode. */
const PLUGIN_FAILED = 1 << 8;

export class TransferError extends Error {
  constructor(
    readonly code: number,
    readonly subcode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Where transfers happen: the AP's and EP's names in messages, and a way to stop. */
export type TransferContext = { apHost: string; slot: string; signal: AbortSignal };

/** What input transfer left in the scratch directory. */
export type Sandbox = {
  dir: string;
  /** Path to run: in the scratch directory, or where it is when it is not transferred. */
  executable: string;
  /** The job's stdin, if any. */
  stdin: string | undefined;
  /** Size and modification time of everything input transfer wrote, to spot outputs. */
  inputs: Map<string, { size: number; mtimeMs: number }>;
};

export const STDOUT_FILE = '_condor_stdout';
export const STDERR_FILE = '_condor_stderr';

export async function transferInput(job: Job, dir: string, ctx: TransferContext): Promise<Sandbox> {
  const iwd = iwdOf(job);
  const apFailure = (file: string, err: unknown) =>
    new TransferError(
      HOLD_TRANSFER_INPUT,
      errnoOf(err),
      `Transfer input files failure at access point ${ctx.apHost} while sending files to the execution point. ` +
        `Details: reading from file ${file}: ${describeFsError(err)}`,
    );

  const cmd = stringAttr(job.ad, 'Cmd') ?? '';
  let executable = cmd;
  if (boolAttr(job.ad, 'TransferExecutable') ?? true) {
    const source = path.resolve(iwd, cmd);
    executable = path.join(dir, path.basename(cmd));
    try {
      await copyFile(source, executable);
      await chmod(executable, 0o755);
    } catch (err) {
      throw apFailure(source, err);
    }
  }

  let stdin: string | undefined;
  const input = stringAttr(job.ad, 'In');
  if (input && input !== '/dev/null') {
    const source = path.resolve(iwd, input);
    stdin = path.join(dir, path.basename(input));
    try {
      await copyFile(source, stdin);
    } catch (err) {
      throw apFailure(source, err);
    }
  }

  for (const entry of listOf(stringAttr(job.ad, 'TransferInput'))) {
    ctx.signal.throwIfAborted();
    const scheme = urlScheme(entry);
    if (scheme === 's3') {
      await downloadS3(job, entry, dir, ctx);
    } else if (scheme !== undefined) {
      throw new TransferError(
        HOLD_TRANSFER_INPUT,
        PLUGIN_FAILED,
        `Transfer input files failure at execution point ${ctx.slot} using protocol ${scheme}. ` +
          `Details: no file transfer plugin for ${scheme}:// URLs on this execution point ( URL file = ${entry} )`,
      );
    } else {
      const source = path.resolve(iwd, entry);
      try {
        // "dir/" sends the directory's contents, "dir" the directory itself.
        const target = entry.endsWith('/') ? dir : path.join(dir, path.basename(source));
        const info = await stat(source);
        if (info.isDirectory()) await cp(source, target, { recursive: true });
        else await copyFile(source, target);
      } catch (err) {
        throw apFailure(source, err);
      }
    }
  }

  const inputs = new Map<string, { size: number; mtimeMs: number }>();
  for (const name of await readdir(dir)) {
    const info = await stat(path.join(dir, name));
    inputs.set(name, { size: info.size, mtimeMs: info.mtimeMs });
  }
  return { dir, executable, stdin, inputs };
}

/**
 * Sends the job's outputs back once it has exited. With when_to_transfer_output = ON_SUCCESS
 * only a job that `succeeded` sends its files (stdout and stderr always come back).
 */
export async function transferOutput(job: Job, sandbox: Sandbox, succeeded: boolean, ctx: TransferContext): Promise<void> {
  const iwd = iwdOf(job);
  const { dir } = sandbox;

  for (const [name, attr] of [[STDOUT_FILE, 'Out'], [STDERR_FILE, 'Err']] as const) {
    const target = stringAttr(job.ad, attr);
    if (!target || target === '/dev/null') continue;
    await deliverToAp(path.join(dir, name), path.resolve(iwd, target), ctx);
  }
  if ((stringAttr(job.ad, 'WhenToTransferOutput') ?? 'ON_EXIT').toUpperCase() === 'ON_SUCCESS' && !succeeded) return;

  const remaps = parseRemaps(stringAttr(job.ad, 'TransferOutputRemaps') ?? '');
  for (const file of await outputFiles(job, sandbox, ctx)) {
    ctx.signal.throwIfAborted();
    const name = path.basename(file);
    const target = remaps.get(file) ?? remaps.get(name) ?? name;
    const scheme = urlScheme(target);
    if (scheme === 's3') await uploadS3(job, path.join(dir, file), target, ctx);
    else if (scheme !== undefined) {
      throw new TransferError(
        HOLD_TRANSFER_OUTPUT,
        PLUGIN_FAILED,
        `Transfer output files failure at execution point ${ctx.slot} using protocol ${scheme}. ` +
          `Details: no file transfer plugin for ${scheme}:// URLs on this execution point ( URL file = ${target} )`,
      );
    } else await deliverToAp(path.join(dir, file), path.resolve(iwd, target), ctx);
  }
}

/** The files to send, relative to the scratch directory. */
async function outputFiles(job: Job, sandbox: Sandbox, ctx: TransferContext): Promise<string[]> {
  const listed = stringAttr(job.ad, 'TransferOutput');
  if (listed !== undefined) {
    const files = listOf(listed);
    for (const file of files) {
      const full = path.resolve(sandbox.dir, file);
      try {
        await stat(full);
      } catch (err) {
        throw new TransferError(
          HOLD_TRANSFER_OUTPUT,
          errnoOf(err),
          `Transfer output files failure at execution point ${ctx.slot} while sending files to access point ${ctx.apHost}. ` +
            `Details: reading from file ${full}: ${describeFsError(err)}`,
        );
      }
    }
    return files;
  }
  const skip = new Set([STDOUT_FILE, STDERR_FILE, path.basename(sandbox.executable)]);
  const files: string[] = [];
  for (const entry of await readdir(sandbox.dir, { withFileTypes: true })) {
    if (!entry.isFile() || skip.has(entry.name)) continue;
    const before = sandbox.inputs.get(entry.name);
    const now = await stat(path.join(sandbox.dir, entry.name));
    if (before && before.size === now.size && before.mtimeMs === now.mtimeMs) continue;
    files.push(entry.name);
  }
  return files.sort();
}

/** The AP writes what the EP sends; it makes no directories, so a remap into a missing one fails. */
async function deliverToAp(source: string, target: string, ctx: TransferContext): Promise<void> {
  try {
    if ((await stat(source)).isDirectory()) await cp(source, target, { recursive: true });
    else await copyFile(source, target);
  } catch (err) {
    const missingSource = (err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(source));
    throw new TransferError(
      HOLD_TRANSFER_OUTPUT,
      errnoOf(err),
      missingSource
        ? `Transfer output files failure at execution point ${ctx.slot} while sending files to access point ${ctx.apHost}. ` +
            `Details: reading from file ${source}: ${describeFsError(err)}`
        : `Transfer output files failure at access point ${ctx.apHost} while receiving files from the execution point. ` +
            `Details: writing to file ${target}: ${describeFsError(err)}`,
    );
  }
}

/** `name = target; name2 = target2`, with `\;` and `\=` standing for themselves. */
function parseRemaps(text: string): Map<string, string> {
  const remaps = new Map<string, string>();
  for (const item of splitUnescaped(text, ';')) {
    if (item.trim() === '') continue;
    const [name, target] = splitUnescaped(item, '=', 2);
    if (target === undefined) throw new Error(`transfer_output_remaps entry "${item.trim()}" has no "="`);
    remaps.set(unescape(name!.trim()), unescape(target.trim()));
  }
  return remaps;
}

function splitUnescaped(text: string, separator: string, limit = Infinity): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && i + 1 < text.length) {
      current += text[i]! + text[i + 1]!;
      i++;
    } else if (text[i] === separator && parts.length < limit - 1) {
      parts.push(current);
      current = '';
    } else current += text[i];
  }
  parts.push(current);
  return parts;
}

function unescape(text: string): string {
  return text.replace(/\\([;=\\])/g, '$1');
}

// ---------------------------------------------------------------------------------------------
// S3

type S3Location = { client: S3Client; bucket: string; key: string };

async function downloadS3(job: Job, url: string, dir: string, ctx: TransferContext): Promise<void> {
  const where = await s3Location(job, url, HOLD_TRANSFER_INPUT, ctx);
  const target = path.join(dir, path.posix.basename(where.key));
  try {
    const { Body } = await where.client.send(new GetObjectCommand({ Bucket: where.bucket, Key: where.key }), { abortSignal: ctx.signal });
    if (!(Body instanceof Readable)) throw new Error('the response has no body');
    await pipeline(Body, createWriteStream(target), { signal: ctx.signal });
  } catch (err) {
    ctx.signal.throwIfAborted();
    throw new TransferError(
      HOLD_TRANSFER_INPUT,
      PLUGIN_FAILED,
      `Transfer input files failure at execution point ${ctx.slot} using protocol s3. Details: ${describeS3Error(err)} ( URL file = ${url} )`,
    );
  } finally {
    where.client.destroy();
  }
}

async function uploadS3(job: Job, file: string, url: string, ctx: TransferContext): Promise<void> {
  const where = await s3Location(job, url, HOLD_TRANSFER_OUTPUT, ctx);
  try {
    const { size } = await stat(file);
    await where.client.send(
      new PutObjectCommand({ Bucket: where.bucket, Key: where.key, Body: createReadStream(file), ContentLength: size }),
      { abortSignal: ctx.signal },
    );
  } catch (err) {
    ctx.signal.throwIfAborted();
    throw new TransferError(
      HOLD_TRANSFER_OUTPUT,
      PLUGIN_FAILED,
      `Transfer output files failure at execution point ${ctx.slot} using protocol s3. Details: ${describeS3Error(err)} ( URL file = ${url} )`,
    );
  }
}

async function s3Location(job: Job, url: string, code: number, ctx: TransferContext): Promise<S3Location> {
  const bad = (why: string) =>
    new TransferError(code, PLUGIN_FAILED, `Transfer ${code === HOLD_TRANSFER_INPUT ? 'input' : 'output'} files failure at access point ${ctx.apHost}: ${why} ( URL file = ${url} )`);
  const m = /^s3:\/\/([^/]+)\/(.+)$/i.exec(url);
  if (!m) throw bad('an s3:// URL needs a host or bucket and a key');
  const host = m[1]!;
  const rest = m[2]!;
  const region = stringAttr(job.ad, 'AWSRegion');
  let bucket: string;
  let key: string;
  let endpoint: string | undefined;
  let resolvedRegion = region ?? 'us-east-1';
  const aws = /^(.+)\.s3[.-]([a-z0-9-]+)\.amazonaws\.com$/i.exec(host);
  if (aws) {
    bucket = aws[1]!;
    key = rest;
    resolvedRegion = region ?? aws[2]!;
  } else if (host.includes('.')) {
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) throw bad(`s3://${host}/ must be followed by <bucket>/<key>`);
    bucket = rest.slice(0, slash);
    key = rest.slice(slash + 1);
    endpoint = `${isLoopback(host) ? 'http' : 'https'}://${host}`;
  } else {
    bucket = host;
    key = rest;
  }
  const credentials = {
    accessKeyId: await readKeyFile(job, 'EC2AccessKeyId', 'aws_access_key_id_file', code, ctx, url),
    secretAccessKey: await readKeyFile(job, 'EC2SecretAccessKey', 'aws_secret_access_key_file', code, ctx, url),
  };
  const client = new S3Client({
    endpoint,
    region: resolvedRegion,
    credentials,
    forcePathStyle: endpoint !== undefined,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { client, bucket, key };
}

/** The AP reads the key files (surrounding white space stripped); their contents never appear in messages. */
async function readKeyFile(job: Job, attr: string, command: string, code: number, ctx: TransferContext, url: string): Promise<string> {
  const direction = code === HOLD_TRANSFER_INPUT ? 'input' : 'output';
  const file = stringAttr(job.ad, attr);
  if (!file) {
    throw new TransferError(code, 0, `Transfer ${direction} files failure at access point ${ctx.apHost}: s3:// URLs need ${command} ( URL file = ${url} )`);
  }
  const full = path.resolve(iwdOf(job), file);
  let value: string;
  try {
    value = (await readFile(full, 'utf8')).trim();
  } catch (err) {
    throw new TransferError(
      code,
      errnoOf(err),
      `Transfer ${direction} files failure at access point ${ctx.apHost}: could not read ${command} ${full}: ${describeFsError(err)} ( URL file = ${url} )`,
    );
  }
  if (value === '') {
    throw new TransferError(code, 0, `Transfer ${direction} files failure at access point ${ctx.apHost}: ${command} ${full} is empty ( URL file = ${url} )`);
  }
  return value;
}

function isLoopback(hostPort: string): boolean {
  const host = hostPort.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function describeS3Error(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const text = err.message && err.message !== err.name ? `${err.name}: ${err.message}` : err.name;
  return status === undefined ? text : `HTTP response was ${status} (${text})`;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function iwdOf(job: Job): string {
  return stringAttr(job.ad, 'Iwd') ?? '/';
}

function listOf(text: string | undefined): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

function urlScheme(entry: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(entry)?.[1]?.toLowerCase();
}

export function errnoOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const value = code ? (os.constants.errno as Record<string, number>)[code] : undefined;
  return value ?? 0;
}

/** `(errno 2) No such file or directory`, as HTCondor words file errors. */
export function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const errno = errnoOf(err);
  const text = e?.message?.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '') ?? String(err);
  return errno ? `(errno ${errno}) ${text.charAt(0).toUpperCase()}${text.slice(1)}` : text;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
