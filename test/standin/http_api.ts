import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import { ClassAdSyntaxError, parseExpr } from './classad.ts';
import { QmgmtError, type Job, type StandinSchedd } from './schedd.ts';
import { readTar } from './tar.ts';
import { listenOnLoopback } from '../support/loopback.ts';

/**
 * TEST STAND-IN for htcondor-api's HTTP side, golang-htcondor v0.12.4 (commit 2811bc1,
 * webapi/httpserver/handlers.go; the API's OpenAPI document is
 * test/fixtures/htcondor-api/openapi.json, SPEC 6): bearer-token auth, `/api/v1/jobs`
 * submit/list/get/edit/remove/hold/release, input spooling, `/api/v1/schedd/ping`,
 * `/api/v1/version` and `/healthz`, with the real server's JSON shapes and error bodies.
 *  - POST /api/v1/jobs (handleSubmitJob → Schedd.SubmitRemote): golang-htcondor's own parser
 *    (api_submit.ts, through the schedd); any failure of SubmitRemote answers 500
 *    `Job submission failed: <error>`. The server's environment plays no part (getenv is not
 *    implemented by that parser).
 *  - PATCH /api/v1/jobs/{id} (handleEditJob, encodeJobAttributeValue; schedd_edit.go EditJob):
 *    see editJob below.
 *  - GET /api/v1/version (handleVersion): this stand-in's build information.
 */

/** What handleVersion answers: this stand-in imitates golang-htcondor v0.12.4 at commit 2811bc1. */
export const VERSION = { version: 'v0.12.4-standin', commit: '2811bc1' } as const;

const DEFAULT_PROJECTION = ['ClusterId', 'ProcId', 'Owner', 'JobStatus', 'Cmd', 'Args'];
const DEFAULT_LIMIT = 50;

const submitBody = z.object({ submit_file: z.string().optional() }).nullable();
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
  return listenOnLoopback(server);
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

  if (route === '/version') {
    if (method !== 'GET') throw new HttpError(405, 'Method not allowed');
    return { status: 200, body: VERSION };
  }
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
    const action = one[2];
    if (action === undefined && method === 'PATCH') return editJob(schedd, decodeURIComponent(one[1]!), raw);
    const job = findJob(schedd, decodeURIComponent(one[1]!));
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

function submit(opts: ApiServerOptions, body: { submit_file?: string } | null): { status: number; body: unknown } {
  const text = body?.submit_file ?? '';
  if (text === '') throw new HttpError(400, 'submit_file is required');
  let result: { clusterId: number; jobIds: string[] };
  try {
    result = opts.schedd.submitRemote(text, { serverCwd: opts.workingDir });
  } catch (err) {
    // handleSubmitJob: every SubmitRemote error (a parse error included) is a 500.
    throw new HttpError(500, `Job submission failed: ${(err as Error).message}`);
  }
  return { status: 201, body: { cluster_id: result.clusterId, job_ids: result.jobIds } };
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

/** golang-htcondor's defaultImmutableAttrs (schedd_edit.go), matched with their exact spelling. */
const GOLANG_IMMUTABLE = new Set(['ClusterId', 'ProcId', 'Owner', 'User', 'QDate', 'CompletionDate', 'JobStartDate', 'JobCurrentStartDate', 'EnteredCurrentStatus', 'GlobalJobId', 'Submitter']);
/** golang-htcondor's defaultProtectedAttrs (schedd_edit.go), exact spelling. */
const GOLANG_PROTECTED = new Set([
  'AccountingGroup', 'AcctGroup', 'AcctGroupUser', 'NiceUser', 'ConcurrencyLimits', 'JobPrio', 'PostJobPrio1', 'PostJobPrio2',
  'JobStatus', 'HoldReason', 'HoldReasonCode', 'HoldReasonSubCode', 'LastHoldReason', 'LastHoldReasonCode', 'LastHoldReasonSubCode',
  'ReleaseReason', 'RemoveReason', 'NumJobStarts', 'NumShadowStarts',
]);

/**
 * PATCH /api/v1/jobs/{id}, as handleEditJob and Schedd.EditJob do it:
 *  1. the id must be `cluster.proc` (400 `Invalid job ID: ...`); the body must decode as
 *     `{"attributes": {...}}` (400 `Invalid request body: ...`) with at least one attribute
 *     (400 `No attributes to update`);
 *  2. each value is encoded (encodeJobAttributeValue): a JSON string is ClassAd expression text
 *     as it is, a number its digits (Go's shortest form for a fraction), a boolean
 *     `true`/`false`, null `UNDEFINED`; a typed object `{"type", "value"}` with a string value:
 *     string (Go %q quoting), integer/int, real/float, boolean/bool, raw/expression; anything
 *     wrong with it is a 400 naming the attribute;
 *  3. names in golang-htcondor's immutable or protected lists (exact spelling) answer 403
 *     `Cannot edit job: attribute X is immutable and cannot be changed` / `... is protected and
 *     can only be changed by queue superusers`, before anything is set;
 *  4. the attributes are set in one qmgmt transaction (StandinSchedd.setAttributes, all or
 *     nothing); the schedd's refusal is a 500 `Failed to edit job: failed to set attribute X:
 *     SetAttribute failed for X with error code N` — a job not in the queue included (N = 2,
 *     ENOENT: the handler looks for "ENOENT"/"nonexistent" in the message, which golang's
 *     qmgmt error never contains). A value the schedd cannot parse is not refused: the job queue
 *     stores it as UNDEFINED.
 * 200: `{"status": "success", "message": "Successfully edited job <id>", "job_id": "<id>"}`.
 */
function editJob(schedd: StandinSchedd, id: string, raw: Buffer): { status: number; body: unknown } {
  const parsedId = goParseJobId(id);
  if (typeof parsedId === 'string') throw new HttpError(400, `Invalid job ID: ${parsedId}`);
  const attributes = decodeEditRequest(raw);
  const names = Object.keys(attributes);
  if (names.length === 0) throw new HttpError(400, 'No attributes to update');
  const encoded: Array<[string, string]> = [];
  for (const name of names) {
    try {
      encoded.push([name, encodeJobAttributeValue(name, attributes[name])]);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
  }
  for (const name of names) {
    if (GOLANG_IMMUTABLE.has(name)) throw new HttpError(403, `Cannot edit job: attribute ${name} is immutable and cannot be changed`);
    if (GOLANG_PROTECTED.has(name)) throw new HttpError(403, `Cannot edit job: attribute ${name} is protected and can only be changed by queue superusers`);
  }
  try {
    schedd.setAttributes(`${parsedId[0]}.${parsedId[1]}`, encoded);
  } catch (err) {
    if (!(err instanceof QmgmtError)) throw err;
    throw new HttpError(500, `Failed to edit job: failed to set attribute ${err.attribute}: SetAttribute failed for ${err.attribute} with error code ${err.errno}`);
  }
  return { status: 200, body: { status: 'success', message: `Successfully edited job ${id}`, job_id: id } };
}

/** handlers.go parseJobID: two dot-separated parts, each read by strconv.Atoi. */
function goParseJobId(id: string): [number, number] | string {
  const parts = id.split('.');
  if (parts.length !== 2) return 'invalid job ID format, expected cluster.proc';
  const atoi = (s: string) => (/^[+-]?\d+$/.test(s) ? Number(s) : undefined);
  const cluster = atoi(parts[0]!);
  if (cluster === undefined) return `invalid cluster ID: strconv.Atoi: parsing ${JSON.stringify(parts[0])}: invalid syntax`;
  const proc = atoi(parts[1]!);
  if (proc === undefined) return `invalid proc ID: strconv.Atoi: parsing ${JSON.stringify(parts[1])}: invalid syntax`;
  return [cluster, proc];
}

/** json.Decode into JobEditRequest{Attributes map[string]any}, with Go's error messages for the usual mistakes. */
function decodeEditRequest(raw: Buffer): Record<string, unknown> {
  const text = raw.toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'Invalid request body: EOF');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `Invalid request body: ${(err as Error).message}`);
  }
  const kind = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v === 'boolean' ? 'bool' : typeof v);
  if (json === null) return {};
  if (typeof json !== 'object' || Array.isArray(json)) {
    throw new HttpError(400, `Invalid request body: json: cannot unmarshal ${kind(json)} into Go value of type httpserver.JobEditRequest`);
  }
  // Go matches JSON keys to struct fields case-insensitively; the last one wins.
  let attributes: unknown = null;
  for (const [key, value] of Object.entries(json)) if (key.toLowerCase() === 'attributes') attributes = value;
  if (attributes === null) return {};
  if (typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw new HttpError(400, `Invalid request body: json: cannot unmarshal ${kind(attributes)} into Go struct field JobEditRequest.attributes of type map[string]interface {}`);
  }
  return attributes as Record<string, unknown>;
}

/** handlers.go encodeJobAttributeValue. */
function encodeJobAttributeValue(name: string, value: unknown): string {
  const q = goQuote;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const type = typeof obj.type === 'string' ? obj.type : '';
    if (type === '') throw new Error(`attribute ${q(name)}: typed object missing 'type'`);
    if (!('value' in obj)) throw new Error(`attribute ${q(name)}: typed object missing 'value'`);
    if (typeof obj.value !== 'string') throw new Error(`attribute ${q(name)}: typed object 'value' must be a string (use type=integer/real for numerics)`);
    const text = obj.value;
    switch (type.toLowerCase()) {
      case 'string':
        return goQuote(text);
      case 'integer':
      case 'int': {
        const t = text.trim();
        if (!/^[+-]?\d+$/.test(t) || BigInt(t) > 2n ** 63n - 1n || BigInt(t) < -(2n ** 63n)) throw new Error(`attribute ${q(name)}: ${q(text)} is not a valid integer`);
        return BigInt(t).toString();
      }
      case 'real':
      case 'float': {
        const t = text.trim();
        const special = /^([+-]?)(inf|infinity|nan)$/i.exec(t);
        if (special) return special[2]!.toLowerCase() === 'nan' ? 'NaN' : special[1] === '-' ? '-Inf' : '+Inf';
        if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(t) || !Number.isFinite(Number(t))) throw new Error(`attribute ${q(name)}: ${q(text)} is not a valid real number`);
        return goFormatFloat(Number(t));
      }
      case 'boolean':
      case 'bool': {
        const v = text.trim().toLowerCase();
        if (v !== 'true' && v !== 'false') throw new Error(`attribute ${q(name)}: boolean must be "true" or "false", got ${q(text)}`);
        return v;
      }
      case 'raw':
      case 'expression':
        if (text.trim() === '') throw new Error(`attribute ${q(name)}: raw expression must not be empty`);
        return text;
      default:
        throw new Error(`attribute ${q(name)}: unknown type ${q(type)} (want string|integer|real|boolean|raw)`);
    }
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 2 ** 63 ? BigInt(value).toString() : goFormatFloat(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === null) return 'UNDEFINED';
  return JSON.stringify(value); // an array: json.Marshal
}

/** strconv.FormatFloat(v, 'g', -1, 64): the shortest digits, exponent form below 1e-4 or from 1e6 (1e+06). */
function goFormatFloat(v: number): string {
  const [mantissa, e] = v.toExponential().split('e') as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= 6) return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(v);
}

/** Go's %q (strconv.Quote): Go escapes, printable Unicode kept. */
function goQuote(s: string): string {
  const named: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\\': '\\\\', '"': '\\"' };
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (named[ch]) out += named[ch];
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (/\p{C}/u.test(ch)) out += code > 0xffff ? `\\U${code.toString(16).padStart(8, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}
