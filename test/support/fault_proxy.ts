import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { listenOnLoopback } from './loopback.ts';

/**
 * A fault-injecting HTTP proxy on 127.0.0.1, in front of the S3 server (s3rver) or the
 * htcondor-api stand-in (issue 8, "Faults"): every request is forwarded as it came (method, path,
 * query, headers, body streamed) unless a rule picks it for a fault, and every exchange is
 * recorded so that a test can say what happened.
 *
 * The Host header is forwarded unchanged by default: the client signed its request (SigV4 signs
 * `host`) for the proxy's address, and a server that verifies signatures computes them from the
 * Host it receives, so keeping it keeps the signature valid. s3rver does not verify SigV4 at all
 * (test/support/s3_server.ts), and with an IP address as Host it serves buckets as paths either
 * way (s3rver's vhost middleware); the stand-in API ignores Host. `rewriteHost: true` sends the
 * target's host instead, for a server that insists on its own name (a SigV4-verifying server
 * would then refuse the request: the signature no longer matches).
 *
 * Fault classes (FAULT_CLASSES), as the client sees them:
 *  - `error-500`     an error answer, not forwarded: S3's `InternalError` XML (no body for HEAD,
 *                    as S3 does) or htcondor-api's JSON error body;
 *  - `slow-down-503` not forwarded: S3's `503 SlowDown` ("Please reduce your request rate.") or
 *                    htcondor-api's `503 Service Unavailable`;
 *  - `reset-before`  the connection is reset before anything is forwarded: nothing happened;
 *  - `reset-after`   forwarded, the server's whole answer read, then the client's connection reset:
 *                    the request landed, the reply is lost (the "did it land?" case);
 *  - `hang`          forwarded (the server acts on it), but no answer ever comes back until the
 *                    client gives up and closes the connection (a time-out on the client's side);
 *                    `forward: false` on the rule makes it a hang of a server that never saw it;
 *  - `gateway-502`   forwarded, the answer replaced by a gateway's (nginx's) HTML 502 Bad Gateway;
 *                    `forward: false` makes it a gateway that could not reach the server.
 *
 * Rules pick requests by method, path (decoded, without the query), query, headers or any
 * predicate; among the requests that match, by position (`nth`, then `times`: how many from
 * there; Infinity for "from now on") and by chance (`probability`, with the proxy's seeded RNG,
 * so a run can be repeated). Rules can be added and removed while the proxy runs.
 */

export const FAULT_CLASSES = ['error-500', 'slow-down-503', 'reset-before', 'reset-after', 'hang', 'gateway-502'] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/** What the server behind the proxy is: it decides the shape of the error bodies. */
export type Flavor = 's3' | 'api';

/** A request as rules see it. */
export type ProxiedRequest = {
  method: string;
  /** The path, percent-decoded, without the query. */
  path: string;
  query: URLSearchParams;
  /** Lower-case names, as Node gives them. */
  headers: http.IncomingHttpHeaders;
};

export type FaultRule = {
  fault: FaultClass;
  /** For the record and for failure messages. */
  label?: string;
  method?: string | string[];
  /** A string must equal the decoded path; a RegExp must match it. */
  path?: string | RegExp;
  /** Query parameters that must be present, with a value matching when a RegExp or string is given (true: any value). */
  query?: Record<string, string | RegExp | true>;
  /** Headers that must be present (true) or absent (false), or match. */
  headers?: Record<string, string | RegExp | boolean>;
  match?: (req: ProxiedRequest) => boolean;
  /** The first matching request faulted is the nth (1-based); default 1. */
  nth?: number;
  /** How many matching requests from the nth on are faulted; default 1, Infinity for "from now on". */
  times?: number;
  /** Each eligible request is faulted with this probability (seeded RNG); default 1. */
  probability?: number;
  /** For `hang` and `gateway-502`: whether the request reaches the server first (default true). */
  forward?: boolean;
  /**
   * For faults after forwarding (`reset-after`, `gateway-502`): the server's answer is held back
   * until this resolves, then lost. The client must be willing to wait that long.
   */
  holdReply?: (req: ProxiedRequest) => Promise<unknown>;
};

export type Exchange = {
  seq: number;
  method: string;
  /** The raw request target (path and query, still encoded). */
  url: string;
  /** Decoded path without the query. */
  path: string;
  requestHeaders: http.IncomingHttpHeaders;
  /** The start of the request body (at most RECORDED_BYTES), and its whole length. */
  requestBody: Buffer;
  requestBytes: number;
  /** The fault injected, and the label of the rule that chose it. */
  fault?: FaultClass;
  rule?: string;
  /** Whether the request reached the server. */
  forwarded: boolean;
  /** The server's status, when it answered. */
  upstreamStatus?: number;
  /** What the client got: a status, or 'reset' (connection reset), or 'gave up' (closed a hung request). */
  outcome?: number | 'reset' | 'gave up' | 'upstream error';
  /** The start of the body the client got or the server sent (at most RECORDED_BYTES). */
  responseBody?: Buffer;
  startedAt: number;
  endedAt?: number;
};

const RECORDED_BYTES = 16 * 1024;

export type FaultProxy = {
  url: string;
  /** host:port, as an S3 endpoint or a URL's authority. */
  host: string;
  /** Every exchange so far, in the order requests arrived. */
  readonly exchanges: Exchange[];
  /** Adds a rule (checked after those added before); returns it for `remove`. */
  inject(rule: FaultRule): ArmedRule;
  /** Removes every rule. */
  clear(): void;
  close(): Promise<void>;
};

export type ArmedRule = {
  readonly rule: FaultRule;
  /** Requests that matched so far, and how many of them were faulted. */
  readonly matched: number;
  readonly fired: number;
  remove(): void;
};

/** A seeded pseudo-random generator (mulberry32): the same seed, the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business on each side; `expect` too:
// Node answers a client's 100-continue itself, and the body is streamed on at once.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'proxy-authorization', 'proxy-authenticate']);

export async function startFaultProxy(target: string, opts: { flavor: Flavor; seed?: number; rewriteHost?: boolean }): Promise<FaultProxy> {
  const upstream = new URL(target);
  const random = seededRandom(opts.seed ?? 1);
  const exchanges: Exchange[] = [];
  const rules: Array<{ rule: FaultRule; matched: number; fired: number }> = [];
  const agent = new http.Agent({ keepAlive: true });
  const hung = new Set<Socket>();

  const choose = (req: ProxiedRequest): { rule: FaultRule; fault: FaultClass } | undefined => {
    for (const armed of rules) {
      const { rule } = armed;
      if (!matches(rule, req)) continue;
      armed.matched++;
      const nth = rule.nth ?? 1;
      const times = rule.times ?? 1;
      if (armed.matched < nth || armed.matched >= nth + times) continue;
      if (rule.probability !== undefined && random() >= rule.probability) continue;
      armed.fired++;
      return { rule, fault: rule.fault };
    }
    return undefined;
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const parsed = new URL(url, 'http://proxy.invalid');
    let path: string;
    try {
      path = decodeURIComponent(parsed.pathname);
    } catch {
      path = parsed.pathname;
    }
    const method = req.method ?? 'GET';
    const exchange: Exchange = {
      seq: exchanges.length + 1,
      method,
      url,
      path,
      requestHeaders: req.headers,
      requestBody: Buffer.alloc(0),
      requestBytes: 0,
      forwarded: false,
      startedAt: Date.now(),
    };
    exchanges.push(exchange);
    const recordedRequest: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      if (exchange.requestBytes < RECORDED_BYTES) recordedRequest.push(chunk.subarray(0, RECORDED_BYTES - exchange.requestBytes));
      exchange.requestBytes += chunk.length;
      exchange.requestBody = Buffer.concat(recordedRequest);
    });
    const end = (outcome: Exchange['outcome'], body?: Buffer) => {
      if (exchange.endedAt !== undefined) return;
      exchange.outcome = outcome;
      if (body !== undefined) exchange.responseBody = body.subarray(0, RECORDED_BYTES);
      exchange.endedAt = Date.now();
    };

    const proxied: ProxiedRequest = { method, path, query: parsed.searchParams, headers: req.headers };
    const chosen = choose(proxied);
    if (chosen) {
      exchange.fault = chosen.fault;
      exchange.rule = chosen.rule.label ?? `${chosen.fault} ${method} ${path}`;
    }
    const fault = chosen?.fault;
    const forward = chosen?.rule.forward ?? true;

    const answer = (status: number, headers: http.OutgoingHttpHeaders, body: Buffer) => {
      req.resume();
      const send = () => {
        const withBody = method !== 'HEAD';
        res.writeHead(status, { ...headers, 'content-length': withBody ? body.length : 0 });
        res.end(withBody ? body : undefined);
        end(status, body);
      };
      // Answer once the request is read, as a server does (the client may still be sending).
      if (req.readableEnded) send();
      else req.once('end', send);
    };
    const reset = () => {
      req.resume();
      req.socket.destroy();
      end('reset');
    };
    const hang = () => {
      req.resume();
      hung.add(req.socket);
      req.socket.once('close', () => {
        hung.delete(req.socket);
        end('gave up');
      });
    };

    if (fault === 'reset-before') return reset();
    if (fault === 'error-500') return answer(...errorAnswer(opts.flavor, 500, path));
    if (fault === 'slow-down-503') return answer(...errorAnswer(opts.flavor, 503, path));
    if ((fault === 'hang' || fault === 'gateway-502') && !forward) {
      return fault === 'hang' ? hang() : answer(...gatewayAnswer());
    }

    // Forward: the request streams on to the server as it arrives.
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    if (opts.rewriteHost) headers.host = upstream.host;
    const forwarded = http.request({ host: upstream.hostname, port: upstream.port, method, path: url, headers, agent }, (answerFromServer) => {
      exchange.upstreamStatus = answerFromServer.statusCode;
      const status = answerFromServer.statusCode ?? 502;
      if (fault === undefined) {
        // No fault: the answer streams back as it comes.
        const out: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(answerFromServer.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
        res.writeHead(status, out);
        const recorded: Buffer[] = [];
        let bytes = 0;
        answerFromServer.on('data', (chunk: Buffer) => {
          if (bytes < RECORDED_BYTES) recorded.push(chunk.subarray(0, RECORDED_BYTES - bytes));
          bytes += chunk.length;
        });
        answerFromServer.pipe(res);
        answerFromServer.on('end', () => end(status, Buffer.concat(recorded)));
        answerFromServer.on('error', () => {
          res.destroy();
          end('upstream error');
        });
        return;
      }
      // A fault after forwarding: the server's whole answer is read (it acted), then lost.
      const parts: Buffer[] = [];
      answerFromServer.on('data', (chunk: Buffer) => parts.push(chunk));
      answerFromServer.on('end', () => {
        exchange.responseBody = Buffer.concat(parts).subarray(0, RECORDED_BYTES);
        const lose = () => {
          if (fault === 'reset-after') reset();
          else if (fault === 'hang') hang();
          else answer(...gatewayAnswer());
        };
        const held = fault === 'hang' ? undefined : chosen?.rule.holdReply?.(proxied);
        if (held === undefined) lose();
        else void held.then(lose, lose);
      });
    });
    exchange.forwarded = true;
    forwarded.on('error', (err) => {
      // The server is gone or reset us: the client sees what a gateway would say.
      if (res.headersSent) res.destroy();
      else answer(...gatewayAnswer(err.message));
      exchange.outcome = 'upstream error';
    });
    req.pipe(forwarded);
  });
  // Keep-alive connections the client drops (after a reset or when it gives up) are not errors.
  server.on('clientError', (_err, socket) => socket.destroy());

  const listening = await listenOnLoopback(server);
  return {
    url: listening.url,
    host: new URL(listening.url).host,
    exchanges,
    inject(rule) {
      const armed = { rule, matched: 0, fired: 0 };
      rules.push(armed);
      return {
        rule,
        get matched() {
          return armed.matched;
        },
        get fired() {
          return armed.fired;
        },
        remove() {
          const i = rules.indexOf(armed);
          if (i >= 0) rules.splice(i, 1);
        },
      };
    },
    clear() {
      rules.length = 0;
    },
    async close() {
      for (const socket of hung) socket.destroy();
      await listening.close();
      agent.destroy();
    },
  };
}

function matches(rule: FaultRule, req: ProxiedRequest): boolean {
  if (rule.method !== undefined) {
    const methods = Array.isArray(rule.method) ? rule.method : [rule.method];
    if (!methods.includes(req.method)) return false;
  }
  if (rule.path !== undefined && !(typeof rule.path === 'string' ? req.path === rule.path : rule.path.test(req.path))) return false;
  for (const [name, want] of Object.entries(rule.query ?? {})) {
    const value = req.query.get(name);
    if (value === null || !valueMatches(want, value)) return false;
  }
  for (const [name, want] of Object.entries(rule.headers ?? {})) {
    const raw = req.headers[name.toLowerCase()];
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    if (want === false) {
      if (value !== undefined) return false;
      continue;
    }
    if (value === undefined || !valueMatches(want, value)) return false;
  }
  return rule.match === undefined || rule.match(req);
}

function valueMatches(want: string | RegExp | true, value: string): boolean {
  return want === true || (typeof want === 'string' ? value === want : want.test(value));
}

/** An S3 request's bucket and key, path-style (`/bucket/key`); key '' for a bucket request. */
export function s3Target(path: string): { bucket: string; key: string } {
  const [, bucket = '', key = ''] = /^\/([^/]*)\/?(.*)$/s.exec(path) ?? [];
  return { bucket, key };
}

const S3_ERRORS: Record<number, { code: string; message: string }> = {
  500: { code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  503: { code: 'SlowDown', message: 'Please reduce your request rate.' },
};

const API_ERRORS: Record<number, string> = { 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** An error answer as the server itself sends it: S3's XML error document, htcondor-api's JSON. */
function errorAnswer(flavor: Flavor, status: 500 | 503, path: string): [number, http.OutgoingHttpHeaders, Buffer] {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  if (flavor === 's3') {
    const { code, message } = S3_ERRORS[status]!;
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      `<Error><Code>${code}</Code><Message>${message}</Message><Resource>${escapeXml(path)}</Resource>` +
      `<RequestId>${requestId}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
    return [status, { 'content-type': 'application/xml', 'x-amz-request-id': requestId, ...(status === 503 ? { 'retry-after': '1' } : {}) }, Buffer.from(xml)];
  }
  const body = { error: API_ERRORS[status], message: status === 503 ? 'the schedd is not answering (injected by the test proxy)' : 'injected by the test proxy', code: status };
  return [status, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(body) + '\n')];
}

/** What nginx answers when its upstream fails. */
function gatewayAnswer(why?: string): [number, http.OutgoingHttpHeaders, Buffer] {
  const html =
    '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n' +
    `<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n${why ? `<!-- ${escapeXml(why)} -->\r\n` : ''}`;
  return [502, { 'content-type': 'text/html', server: 'nginx' }, Buffer.from(html)];
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
