import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { endpointUrl, withoutCredentials } from './endpoint.ts';
import type { S3Settings } from './s3_store.ts';

/**
 * Where the S3 keys, the S3 endpoint and the htcondor-api token come from. Only file paths
 * are ever passed on to jobs; the secrets are read here, at the edge, when needed.
 */

export const DEFAULT_S3_ENDPOINT = 's3dev.chtc.wisc.edu';
export const DEFAULT_REGION = 'us-east-1';

/** The S3 part of the command line, as files and an endpoint (never the keys themselves). */
export type S3Access = { accessKeyFile: string; secretKeyFile: string; endpoint: string };

export class UsageError extends Error {}

/**
 * SPEC 2's credential rule: `-a`, `-s` and `-e` together, or none of them (the CHTC defaults
 * under ~/.chtc_s3). Paths are made absolute, because jobs run in other directories.
 */
export function resolveS3Access(
  opts: { accessKey?: string; secretKey?: string; s3Endpoint?: string },
  home: string,
  cwd: string,
): S3Access {
  const given = [opts.accessKey, opts.secretKey, opts.s3Endpoint].filter((v) => v !== undefined);
  if (given.length === 0) {
    return {
      accessKeyFile: path.join(home, '.chtc_s3', 'access.key'),
      secretKeyFile: path.join(home, '.chtc_s3', 'secret.key'),
      endpoint: DEFAULT_S3_ENDPOINT,
    };
  }
  if (given.length !== 3) {
    throw new UsageError(
      'access/secret keys must be provided together with an endpoint (-a FILE -s FILE -e HOST), or none of them',
    );
  }
  try {
    endpointUrl(opts.s3Endpoint!); // fail now on a malformed endpoint, not in the crondor job
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return {
    accessKeyFile: path.resolve(cwd, opts.accessKey!),
    secretKeyFile: path.resolve(cwd, opts.secretKey!),
    endpoint: opts.s3Endpoint!,
  };
}

/** Reads a key or token file, surrounding white space stripped; errors name the file only. */
export function readSecretFile(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const value = text.trim();
  if (value === '') throw new UsageError(`the ${what} file ${file} is empty`);
  return value;
}

export function loadS3Settings(access: S3Access, env: NodeJS.ProcessEnv): S3Settings {
  return {
    endpoint: endpointUrl(access.endpoint),
    accessKeyId: readSecretFile(access.accessKeyFile, 'S3 access key'),
    secretAccessKey: readSecretFile(access.secretKeyFile, 'S3 secret key'),
    region: env.AWS_REGION || DEFAULT_REGION,
  };
}

/** How to reach htcondor-api: its URL and the file holding the HTCondor token. */
export type ApiAccess = { url: string; tokenFile: string | undefined };

export function resolveApiAccess(
  opts: { apiUrl?: string; apiTokenFile?: string },
  env: NodeJS.ProcessEnv,
  home: string,
  cwd: string,
): ApiAccess {
  const url = opts.apiUrl ?? env.HTCONDOR_API_URL;
  if (!url) {
    throw new UsageError('no htcondor-api URL: give --api-url URL or set HTCONDOR_API_URL');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`--api-url must be an http(s) URL, got "${withoutCredentials(url)}"`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // A password in the URL would travel in every job's arguments; the token file is the way.
    throw new UsageError(`--api-url must not hold credentials ("${withoutCredentials(url)}"); give the token with --api-token-file`);
  }
  // An empty variable (`export HTCONDOR_API_TOKEN_FILE=`) is no setting, not the current directory.
  const tokenFile = (opts.apiTokenFile || undefined) ?? (env.HTCONDOR_API_TOKEN_FILE || undefined) ?? firstTokenFile(home);
  return { url, tokenFile: tokenFile === undefined ? undefined : path.resolve(cwd, tokenFile) };
}

/** HTCondor keeps a user's tokens in ~/.condor/tokens.d; take the first, as the tools do. */
function firstTokenFile(home: string): string | undefined {
  const dir = path.join(home, '.condor', 'tokens.d');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return undefined;
  }
  const name = names.find((n) => !n.startsWith('.') && statSync(path.join(dir, n)).isFile());
  return name === undefined ? undefined : path.join(dir, name);
}
