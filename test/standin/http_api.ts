import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ClassAdSyntaxError, parseExpr } from './classad.ts';
import { SubmitRejected, type Job, type StandinSchedd } from './schedd.ts';
import { readTar } from './tar.ts';

/**
 * TEST STAND-IN for htcondor-api's HTTP side (../shared/htcondor-api/openapi.json, SPEC 6):
 * bearer-token auth, `/api/v1/jobs` submit/list/get/remove/hold/release, input spooling,
 * `/api/v1/schedd/ping` and `/healthz`, with the real server's JSON shapes and error bodies.
 */

const DEFAULT_PROJECTION = ['ClusterId', 'ProcId', 'Owner', 'JobStatus', 'Cmd', 'Args'];
const DEFAULT_LIMIT = 50;

const submitBody = z.object({ submit_file: z.string() });
const constraintBody = z.object({ constraint: z.string(), reason: z.string().optional() });
const reasonBody = z.object({ reason: z.string().optional() }).optional();

/** An answer other than 200, with its status; control routes throw it too. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type ApiServerOptions = {
  schedd: StandinSchedd;
  /** The HTCondor token clients must present. */
  token: string;
  /** The server's working directory: the Iwd of jobs submitted without `initialdir`. */
  workingDir: string;
  /** The server's environment: submissions are made from it (`getenv`, `$ENV()`), as condor_submit would. */
  env?: Record<string, string>;
  /** Extra routes outside /api/v1 (the stand-in's control endpoints), behind the same token. */
  control?: (req: http.IncomingMessage, url: URL, body: Buffer) => Promise<unknown | undefined>;
};

export async function startApiServer(opts: ApiServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(opts, req, Buffer.concat(chunks))
        .then(({ status, body }) => send(res, status, body))
        .catch((err: unknown) => {
          const status = err instanceof HttpError ? err.status : 500;
          if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="htcondor-api"');
          send(res, status, { error: STATUS_CODES[status], message: (err as Error).message, code: status });
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}

async function handle(opts: ApiServerOptions, req: http.IncomingMessage, raw: Buffer): Promise<{ status: number; body: unknown }> {
  const url = new URL(req.url ?? '/', 'http://stand-in');
  const method = req.method ?? 'GET';
  const { schedd } = opts;

  if (url.pathname === '/healthz') return { status: 200, body: { status: 'ok' } };
  if (!url.pathname.startsWith('/api/v1/')) {
    if (opts.control) authenticate(req, opts.token);
    const answer = opts.control ? await opts.control(req, url, raw) : undefined;
    if (answer === undefined) throw new HttpError(404, `no route for ${method} ${url.pathname}`);
    return { status: 200, body: answer };
  }
  const route = url.pathname.slice('/api/v1'.length);
  if (route === '/schedd/ping' && method === 'GET') {
    return { status: 200, body: { daemon: 'schedd', auth_method: 'TOKEN', user: schedd.opts.owner } };
  }
  authenticate(req, opts.token);

  if (route === '/jobs') {
    if (method === 'POST') return submit(opts, parseBody(submitBody, raw));
    if (method === 'GET') return list(schedd, url.searchParams);
    if (method === 'DELETE') return bulk(schedd, 'remove', parseBody(constraintBody, raw));
    throw new HttpError(405, 'Method not allowed');
  }
  const bulkAction = /^\/jobs\/(hold|release)$/.exec(route);
  if (bulkAction) {
    if (method !== 'POST') throw new HttpError(405, 'Method not allowed');
    return bulk(schedd, bulkAction[1] as 'hold' | 'release', parseBody(constraintBody, raw));
  }
  const one = /^\/jobs\/([^/]+)(?:\/(input|hold|release))?$/.exec(route);
  if (one) {
    const job = findJob(schedd, decodeURIComponent(one[1]!));
    const action = one[2];
    if (action === undefined && method === 'GET') return { status: 200, body: job.ad.toJSON() };
    if (action === undefined && method === 'DELETE') return single(schedd, job, 'remove', raw);
    if ((action === 'hold' || action === 'release') && method === 'POST') return single(schedd, job, action, raw);
    if (action === 'input' && method === 'PUT') return spool(schedd, job, raw);
    throw new HttpError(405, 'Method not allowed');
  }
  throw new HttpError(404, `no route for ${method} ${url.pathname}`);
}

function authenticate(req: http.IncomingMessage, token: string): void {
  const header = req.headers.authorization;
  if (!header) throw new HttpError(401, 'Authentication failed: no bearer token');
  const m = /^Bearer\s+(.+)$/i.exec(header);
  if (!m || m[1]!.trim() !== token) throw new HttpError(401, 'Authentication failed: token rejected by the schedd');
}

function parseBody<T>(schema: z.ZodType<T>, raw: Buffer): T {
  let json: unknown;
  try {
    json = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `Invalid request body: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, `Invalid request body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

function submit(opts: ApiServerOptions, body: { submit_file: string }): { status: number; body: unknown } {
  if (body.submit_file === '') throw new HttpError(400, 'submit_file is required');
  try {
    const result = opts.schedd.submit(body.submit_file, { remote: true, iwd: opts.workingDir, env: opts.env });
    return { status: 201, body: { cluster_id: result.clusterId, job_ids: result.jobIds } };
  } catch (err) {
    // The real server answers 500 for any SubmitRemote failure; the project's stand-in names bad
    // descriptions as the client's fault (400), which the openapi document also allows.
    if (err instanceof SubmitRejected) throw new HttpError(400, `Job submission failed: ${err.message}`);
    throw err;
  }
}

function list(schedd: StandinSchedd, params: URLSearchParams): { status: number; body: unknown } {
  const constraint = params.get('constraint') || 'true';
  const limitText = params.get('limit');
  let limit = DEFAULT_LIMIT;
  if (limitText === '*') limit = -1;
  else if (limitText !== null && limitText !== '') {
    if (!/^-?\d+$/.test(limitText)) throw new HttpError(400, `Invalid limit parameter: ${limitText}`);
    limit = Number(limitText);
  }
  const projectionText = params.get('projection');
  const projection = projectionText === '*' ? undefined : projectionText ? projectionText.split(',').map((s) => s.trim()) : DEFAULT_PROJECTION;
  let after: [number, number] | undefined;
  const token = params.get('page_token');
  if (token) after = decodePageToken(token);

  let jobs: Job[];
  try {
    jobs = schedd.query(constraint);
  } catch (err) {
    if (err instanceof ClassAdSyntaxError) throw new HttpError(400, `Invalid constraint: ${err.message}`);
    throw err;
  }
  if (after) {
    const [c, p] = after;
    jobs = jobs.filter((j) => j.cluster > c || (j.cluster === c && j.proc > p));
  }
  const page = limit > 0 ? jobs.slice(0, limit) : jobs;
  const body: Record<string, unknown> = { jobs: page.map((j) => j.ad.toJSON(projection)), total_returned: page.length };
  // As the real server: "more" whenever the page is full, even if nothing is left.
  if (limit > 0 && page.length >= limit) {
    const last = page[page.length - 1]!;
    body.has_more = true;
    body.next_page_token = Buffer.from(`${last.cluster}.${last.proc}`).toString('base64');
  } else {
    body.has_more = false;
  }
  return { status: 200, body };
}

function decodePageToken(token: string): [number, number] {
  const m = /^(\d+)\.(\d+)$/.exec(Buffer.from(token, 'base64').toString('utf8'));
  if (!m) throw new HttpError(400, `invalid page token: ${token}`);
  return [Number(m[1]), Number(m[2])];
}

function bulk(
  schedd: StandinSchedd,
  action: 'remove' | 'hold' | 'release',
  body: { constraint: string; reason?: string },
): { status: number; body: unknown } {
  if (body.constraint.trim() === '') throw new HttpError(400, `Constraint is required for bulk ${action}`);
  try {
    parseExpr(body.constraint);
  } catch (err) {
    throw new HttpError(400, `Invalid constraint: ${(err as Error).message}`);
  }
  const jobs = schedd.query(body.constraint);
  if (jobs.length === 0) throw new HttpError(404, 'No jobs matched the constraint');
  const reason = body.reason ?? `via htcondor-api (by user ${schedd.opts.owner})`;
  const results = action === 'remove' ? schedd.remove(jobs, reason) : action === 'hold' ? schedd.hold(jobs, reason) : schedd.release(jobs, reason);
  const verb = { remove: 'removal', hold: 'hold', release: 'release' }[action];
  return { status: 200, body: { message: `Bulk ${verb} operation completed`, constraint: body.constraint, results } };
}

function single(schedd: StandinSchedd, job: Job, action: 'remove' | 'hold' | 'release', raw: Buffer): { status: number; body: unknown } {
  const reason = parseBody(reasonBody, raw)?.reason ?? `via htcondor-api (by user ${schedd.opts.owner})`;
  const results = action === 'remove' ? schedd.remove([job], reason) : action === 'hold' ? schedd.hold([job], reason) : schedd.release([job], reason);
  if (results.success === 0) throw new HttpError(400, `job ${job.id} could not be ${action === 'remove' ? 'removed' : action === 'hold' ? 'held' : 'released'} in its current state`);
  return { status: 200, body: { message: `Job ${job.id} ${action === 'remove' ? 'removed' : action === 'hold' ? 'held' : 'released'} successfully`, job_id: job.id } };
}

function spool(schedd: StandinSchedd, job: Job, raw: Buffer): { status: number; body: unknown } {
  let entries;
  try {
    entries = readTar(raw);
  } catch (err) {
    throw new HttpError(400, `Invalid input sandbox: ${(err as Error).message}`);
  }
  const dir = schedd.spoolDirOf(job);
  mkdirSync(dir, { recursive: true });
  for (const entry of entries) {
    const target = path.join(dir, entry.name);
    if (entry.type === 'dir') mkdirSync(target, { recursive: true });
    else {
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, entry.data);
      chmodSync(target, entry.mode & 0o777 || 0o644);
    }
  }
  schedd.finishSpooling(job);
  return { status: 200, body: { message: 'Job input files uploaded successfully', job_id: job.id } };
}

function findJob(schedd: StandinSchedd, id: string): Job {
  if (!/^\d+\.\d+$/.test(id)) throw new HttpError(400, `Invalid job ID: ${id} (expected cluster.proc)`);
  const job = schedd.get(id);
  if (!job) throw new HttpError(404, `Job ${id} not found`);
  return job;
}
