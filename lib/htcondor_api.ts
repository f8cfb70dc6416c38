import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { z } from 'zod';
import type { Logger } from './log.ts';

/**
 * A client for the HTCondor REST API (`htcondor-api`, base path /api/v1): one pooled
 * connection, bounded timeouts, responses checked with zod, and errors that say which
 * server, which request and what the server answered.
 */

export type JobAd = Record<string, unknown>;

/**
 * A value for `PATCH /jobs/{id}`: a bare string is ClassAd expression text, a typed string is
 * quoted by the server, numbers and booleans are themselves.
 */
export type AttributeEdit = string | number | boolean | { type: 'string'; value: string };

const versionResponse = z.object({ version: z.string(), commit: z.string() });

const submitResponse = z.object({
  cluster_id: z.number().int(),
  job_ids: z.array(z.string()),
});

const jobListResponse = z.object({
  jobs: z.array(z.record(z.string(), z.unknown())),
  total_returned: z.number().int().optional(),
  has_more: z.boolean().optional(),
  next_page_token: z.string().optional(),
  // The server streams ads; a failure part-way is reported here with status 200.
  error: z.string().optional(),
});

const errorBody = z.object({ error: z.string().optional(), message: z.string().optional(), code: z.number().optional() });

export class HtcondorApiError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
    this.name = 'HtcondorApiError';
  }
}

/** How idempotent requests are retried after a transient failure: attempts in all, back-off with jitter. */
export type RetryPolicy = { attempts: number; baseDelayMs: number; maxDelayMs: number };
const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 1_000, maxDelayMs: 15_000 };

export type HtcondorApiOptions = {
  /** e.g. `https://ap.example.edu:8080`; a trailing `/api/v1` is accepted too. */
  url: string;
  /** The HTCondor token; undefined sends no Authorization header. */
  token: string | undefined;
  /** Per-request time limit for headers and body, in milliseconds. */
  timeoutMs?: number;
  retry?: RetryPolicy;
  /** Told about each retry, so a slow server is never a silent one. */
  log?: Logger;
};

export type ListJobsOptions = {
  constraint?: string;
  projection?: string[];
  /** Page size asked of the server (it defaults to 50). */
  pageSize?: number;
};

export class HtcondorApi {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly pool: Pool;
  private readonly token: string | undefined;
  private readonly retry: RetryPolicy;
  private readonly log: Logger | undefined;

  constructor(opts: HtcondorApiOptions) {
    const url = new URL(opts.url);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '') + '/api/v1';
    this.baseUrl = this.origin + this.basePath;
    this.token = opts.token;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.log = opts.log;
    const timeout = opts.timeoutMs ?? 60_000;
    this.pool = new Pool(this.origin, {
      connections: 4,
      connectTimeout: Math.min(timeout, 15_000),
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  /** `POST /jobs`: submits a description; the schedd answers with the new cluster. */
  async submit(submitDescription: string): Promise<{ clusterId: number; jobIds: string[] }> {
    const body = await this.call('POST', '/jobs', { submit_file: submitDescription }, [201], submitResponse);
    return { clusterId: body!.cluster_id, jobIds: body!.job_ids };
  }

  /** `GET /jobs`, following page tokens until every matching ad is read. */
  async listJobs(opts: ListJobsOptions = {}): Promise<JobAd[]> {
    const ads: JobAd[] = [];
    let pageToken: string | undefined;
    do {
      const query = new URLSearchParams({ constraint: opts.constraint ?? 'true', limit: String(opts.pageSize ?? 500) });
      if (opts.projection) query.set('projection', opts.projection.join(','));
      if (pageToken) query.set('page_token', pageToken);
      const page = (await this.call('GET', `/jobs?${query}`, undefined, [200], jobListResponse))!;
      if (page.error) throw new HtcondorApiError(`${this.describe('GET', '/jobs')} failed part-way: ${page.error}`, 200);
      ads.push(...page.jobs);
      pageToken = page.has_more && page.next_page_token ? page.next_page_token : undefined;
    } while (pageToken);
    return ads;
  }

  /** `GET /jobs/{id}`; null when the job is not in the queue. */
  async getJob(jobId: string): Promise<JobAd | null> {
    return this.call('GET', `/jobs/${encodeURIComponent(jobId)}`, undefined, [200], z.record(z.string(), z.unknown()), [404]);
  }

  /**
   * `PATCH /jobs/{id}`: sets attributes of one job in one schedd transaction. The server has it
   * though its OpenAPI document still says 501.
   */
  async editJob(jobId: string, attributes: Record<string, AttributeEdit>): Promise<void> {
    await this.call('PATCH', `/jobs/${encodeURIComponent(jobId)}`, { attributes }, [200], z.unknown());
  }

  /** `DELETE /jobs/{id}`: removes one job (condor_rm). */
  async removeJob(jobId: string, reason: string): Promise<void> {
    await this.call('DELETE', `/jobs/${encodeURIComponent(jobId)}`, { reason }, [200], z.unknown(), [404]);
  }

  /** `GET /version`: the server's build. */
  async version(): Promise<{ version: string; commit: string }> {
    return (await this.call('GET', '/version', undefined, [200], versionResponse))!;
  }

  /** `DELETE /jobs` by constraint, as `condor_rm -constraint`; returns how many were matched. */
  async removeJobs(constraint: string, reason: string): Promise<number> {
    const body = await this.call(
      'DELETE',
      '/jobs',
      { constraint, reason },
      [200],
      z.object({ results: z.object({ total: z.number().optional(), success: z.number().optional() }).optional() }).passthrough(),
      [404],
    );
    return body?.results?.success ?? body?.results?.total ?? 0;
  }

  /** `GET /schedd/ping`: checks that the server and its schedd answer. */
  async ping(): Promise<void> {
    await this.call('GET', '/schedd/ping', undefined, [200], z.unknown());
  }

  /** A server (or a proxy) may echo the request back: never let the token reach a message. */
  private redact(text: string): string {
    const scrubbed = text.replace(/(Bearer|Authorization:?)\s+\S+/gi, '$1 <redacted>');
    return this.token ? scrubbed.replaceAll(this.token, '<redacted>') : scrubbed;
  }

  private describe(method: string, p: string): string {
    return `htcondor-api ${method} ${this.baseUrl}${p.split('?')[0]}`;
  }

  /**
   * One request. GET, PUT, PATCH and DELETE are idempotent, so a transient failure (no answer, a
   * time-out, 429, 502, 503, 504) is retried with back-off and jitter, at most `attempts` times
   * in all (about half a minute by default). A POST is never repeated: whether it landed is
   * the caller's question (ApiSchedd asks the schedd).
   */
  private async call<T>(
    method: Dispatcher.HttpMethod,
    p: string,
    json: unknown,
    okStatus: number[],
    schema: z.ZodType<T>,
    nullStatus: number[] = [],
  ): Promise<T | null> {
    const attempts = method === 'POST' ? 1 : this.retry.attempts;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.callOnce(method, p, json, okStatus, schema, nullStatus);
      } catch (err) {
        const status = err instanceof HtcondorApiError ? err.status : -1;
        const transient = status === undefined || status === 429 || status === 502 || status === 503 || status === 504;
        if (!transient || attempt >= attempts) throw err;
        const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
        const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
        this.log?.warn(`${(err as Error).message}; retrying in ${(delay / 1000).toFixed(1)} s (attempt ${attempt + 1} of ${attempts})`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private async callOnce<T>(
    method: Dispatcher.HttpMethod,
    p: string,
    json: unknown,
    okStatus: number[],
    schema: z.ZodType<T>,
    nullStatus: number[],
  ): Promise<T | null> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    let res: Dispatcher.ResponseData;
    try {
      res = await this.pool.request({
        method,
        path: this.basePath + p,
        headers,
        body: json === undefined ? undefined : JSON.stringify(json),
      });
    } catch (err) {
      throw new HtcondorApiError(`${this.describe(method, p)}: cannot reach the server (${networkReason(err)})`, undefined);
    }
    const text = await res.body.text();
    if (nullStatus.includes(res.statusCode)) return null;
    if (!okStatus.includes(res.statusCode)) {
      const said = this.redact(serverMessage(text));
      throw new HtcondorApiError(`${this.describe(method, p)} answered ${res.statusCode}: ${said}${hint(res.statusCode)}`, res.statusCode);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HtcondorApiError(`${this.describe(method, p)} answered ${res.statusCode} with a body that is not JSON`, res.statusCode);
    }
    const checked = schema.safeParse(parsed);
    if (!checked.success) {
      throw new HtcondorApiError(
        `${this.describe(method, p)} answered ${res.statusCode} with an unexpected body: ${checked.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
        res.statusCode,
      );
    }
    return checked.data;
  }
}

function networkReason(err: unknown): string {
  if (err instanceof undiciErrors.ConnectTimeoutError) return 'connection timed out';
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) return 'no answer in time';
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  return e.code ?? e.cause?.code ?? e.message ?? String(err);
}

/** What the server said, on one line: its JSON error, or a page's title (a gateway's 502), or the start of its text. */
function serverMessage(text: string): string {
  const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim().slice(0, 200);
  try {
    const body = errorBody.parse(JSON.parse(text));
    return oneLine([body.error, body.message].filter(Boolean).join(': ') || text);
  } catch {
    const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
    return oneLine(title ?? text.replace(/<[^>]*>/g, ' ')) || '(empty body)';
  }
}

function hint(status: number): string {
  if (status === 401) return ' (check the token given with --api-token-file or HTCONDOR_API_TOKEN_FILE)';
  if (status === 403) return ' (the token is valid but lacks permission for this)';
  return '';
}
