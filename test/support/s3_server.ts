// A real S3 server (s3rver) on loopback for tests and the demo.
//
// s3rver runs in a child process started with --openssl-legacy-provider: s3rver
// 3.7.1 encrypts ListObjectsV2 continuation tokens with DES
// (lib/controllers/bucket.js, generateContinuationToken), which OpenSSL 3 (Node
// >= 17) only offers through its legacy provider. Without it every listing that
// needs a second page fails with InternalError (ERR_OSSL_EVP_UNSUPPORTED), and
// the provider can only be enabled when a process starts.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Settings } from '../../lib/s3_store.ts';

export type S3Server = {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  directory: string;
  stop(): Promise<void>;
};

// s3rver accepts only the access key id of its built-in account
// (lib/models/account.js: createKeyPair('S3RVER', 'S3RVER')). It checks that the
// id exists but does not verify SigV4 signatures, so the secret is never checked.
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';

type ChildOptions = { directory: string; buckets: string[] };

export async function startS3Server(
  opts: { buckets?: string[]; directory?: string } = {},
): Promise<S3Server> {
  const ownsDirectory = opts.directory === undefined;
  const directory = opts.directory ?? (await mkdtemp(path.join(tmpdir(), 's3rver-')));
  const removeOwnDirectory = async () => {
    if (ownsDirectory) await rm(directory, { recursive: true, force: true });
  };

  const options: ChildOptions = { directory, buckets: opts.buckets ?? [] };
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // the child is a server, not a test file
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(options)], {
    execArgv: ['--openssl-legacy-provider', '--import', import.meta.resolve('tsx')],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      child.once('message', (message) => resolve((message as { port: number }).port));
      child.once('error', reject);
      child.once('exit', (code, signal) =>
        reject(new Error(`s3rver process exited during startup (code ${code}, signal ${signal})`)),
      );
    });
  } catch (err) {
    child.kill();
    await removeOwnDirectory();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    region: 'us-east-1',
    directory,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.send('stop');
          await exited;
        }
        await removeOwnDirectory();
      })();
      return stopping;
    },
  };
}

export function settingsFor(server: S3Server): S3Settings {
  const { endpoint, accessKeyId, secretAccessKey, region } = server;
  return { endpoint, accessKeyId, secretAccessKey, region };
}

// ---- child process side ----

// s3rver ships no type declarations; these are the parts of its API used here.
type KoaContext = { headers: Record<string, string | string[] | undefined> };
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverInstance {
  middleware: KoaMiddleware[];
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverOptions = {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
};

// s3rver 3.7.1 (lib/controllers/object.js, putObjectCopy) decodes the
// x-amz-copy-source header with decodeURI, which leaves %2B, %23, %3F, %24,
// %26, %2C, %2F, %3A, %3B, %3D and %40 encoded. Real S3 URL-decodes the whole
// value, and clients must send it URL-encoded (CopyObject API docs; the SDK
// passes CopySource through verbatim), so a correct client copying "a+b" sends
// "a%2Bb" and s3rver looks for the literal key "a%2Bb" -> NoSuchKey. Upstream:
// https://github.com/jamhall/s3rver/pull/797 (open). This rewrites the header so
// that s3rver's decodeURI yields what S3's full decode yields
// (decodeURI(encodeURI(s)) === s). A header S3 could not decode still fails,
// because decodeURIComponent throws on it.
const decodeCopySourceLikeS3: KoaMiddleware = async (ctx, next) => {
  const copySource = ctx.headers['x-amz-copy-source'];
  if (typeof copySource === 'string') {
    ctx.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(copySource));
  }
  await next();
};

async function serveInThisProcess(options: ChildOptions): Promise<void> {
  const S3rver = createRequire(import.meta.url)('s3rver') as new (options: S3rverOptions) => S3rverInstance;
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: options.directory,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  // Must come before s3rver's own middleware, which is composed when run() listens.
  server.middleware.unshift(decodeCopySourceLikeS3);
  const { port } = await server.run();
  // Stop when asked, or when the parent goes away without asking.
  const stop = () => void server.close().finally(() => process.exit(0));
  process.once('message', stop);
  process.once('disconnect', stop);
  process.send?.({ port });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [options] = process.argv.slice(2);
  if (options === undefined || process.send === undefined) {
    throw new Error('s3_server.ts is started by startS3Server(), not run directly');
  }
  await serveInThisProcess(JSON.parse(options) as ChildOptions);
}
