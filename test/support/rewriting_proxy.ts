import http from 'node:http';
import { listenOnLoopback } from './loopback.ts';

/**
 * An HTTP proxy on 127.0.0.1 in front of the htcondor-api stand-in that answers some requests
 * itself or rewrites some answers: a server that behaves differently from the one the pipeline
 * was checked against (an older htcondor-api, one that follows its OpenAPI document's 501 for
 * PATCH), for tests of what the client does then.
 */
export type Exchange = { method: string; path: string; status: number; body: string };

export type ProxyRules = {
  /** Answer a request without forwarding it (status and JSON body), or undefined to forward it. */
  answer?(method: string, path: string): { status: number; body: unknown } | undefined;
  /** Rewrite a forwarded answer: a new body, or a new status and body (a reply lost on the way back). */
  rewrite?(exchange: Exchange): string | { status: number; body: unknown };
};

export async function startRewritingProxy(target: string, rules: ProxyRules): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const own = rules.answer?.(method, path);
      if (own) {
        res.writeHead(own.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(own.body));
        return;
      }
      const forwarded = http.request(
        { host: upstream.hostname, port: upstream.port, method, path, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            const status = answer.statusCode ?? 502;
            const body = Buffer.concat(parts).toString();
            const out = rules.rewrite ? rules.rewrite({ method, path, status, body }) : body;
            if (typeof out === 'string') {
              res.writeHead(status, { 'content-type': 'application/json' });
              res.end(out);
            } else {
              res.writeHead(out.status, { 'content-type': 'application/json' });
              res.end(JSON.stringify(out.body));
            }
          });
        },
      );
      forwarded.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'Bad Gateway', message: err.message, code: 502 }));
      });
      forwarded.end(Buffer.concat(chunks));
    });
  });
  return listenOnLoopback(server);
}
