/**
 * A counting HTTP proxy on loopback: the bench points the measured processes at it (S3 endpoint,
 * htcondor-api URL), so every request they make is counted from the real traffic, whatever
 * client library or process made it. Requests are forwarded unchanged (the Host header too, so
 * SigV4 signatures still match what the client signed) and streamed both ways, not buffered:
 * a 1 000-page listing or a 6 MB manifest passes through without the proxy holding it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Names the kind of a request (`ListObjectsV2`, `PATCH /api/v1/jobs/{id}`...). */
export type Classifier = (method: string, url: URL, headers: http.IncomingHttpHeaders) => string;

export type Counts = Record<string, number>;

export type Traffic = {
  /** Requests by kind. */
  requests: Counts;
  /** Response body bytes by kind (what the client had to read). */
  responseBytes: Counts;
  /** Request body bytes by kind (what the client sent). */
  requestBytes: Counts;
};

export type CountingProxy = {
  url: string;
  /** What passed since the last take(), and starts counting afresh. */
  take(): Traffic;
  close(): Promise<void>;
};

// Headers that describe one connection, not the request: not forwarded as they are.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer'];

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...headers };
  for (const h of HOP_BY_HOP) delete out[h];
  // This proxy already answered "100 Continue" to the client (Node's server does so by itself);
  // the body follows at once, so the upstream need not be asked again.
  delete out.expect;
  return out;
}

const add = (counts: Counts, kind: string, n: number) => void (counts[kind] = (counts[kind] ?? 0) + n);

export async function startCountingProxy(target: string, classify: Classifier): Promise<CountingProxy> {
  const upstream = new URL(target);
  // Keep-alive to the upstream, so the proxy adds no connection set-up of its own per request.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let traffic: Traffic = { requests: {}, responseBytes: {}, requestBytes: {} };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const kind = classify(method, url, req.headers);
    const counted = traffic; // a request belongs to the window it started in
    add(counted.requests, kind, 1);
    req.on('data', (chunk: Buffer) => add(counted.requestBytes, kind, chunk.length));

    const forwarded = http.request(
      { host: upstream.hostname, port: upstream.port, method, path: req.url, headers: forwardable(req.headers), agent },
      (answer) => {
        const headers = { ...answer.headers };
        for (const h of HOP_BY_HOP) delete headers[h];
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.on('data', (chunk: Buffer) => add(counted.responseBytes, kind, chunk.length));
        answer.pipe(res);
      },
    );
    forwarded.on('error', (err) => {
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`counting proxy: ${err.message}`);
    });
    req.pipe(forwarded);
  });
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    take() {
      const taken = traffic;
      traffic = { requests: {}, responseBytes: {}, requestBytes: {} };
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        agent.destroy();
      }),
  };
}

/**
 * S3 operations from path-style requests (`/bucket/key?query`), as the S3 API reference names
 * them: the method, whether a key is addressed, the sub-resource in the query, and for PUT the
 * copy-source header.
 */
export const classifyS3: Classifier = (method, url, headers) => {
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const hasKey = rest.join('/') !== '';
  const q = url.searchParams;
  if (bucket === '') return method === 'GET' ? 'ListBuckets' : `${method} /`;
  if (!hasKey) {
    if (method === 'GET') {
      if (q.get('list-type') === '2') return 'ListObjectsV2';
      if (q.has('location')) return 'GetBucketLocation';
      if (q.has('uploads')) return 'ListMultipartUploads';
      if (q.has('versions')) return 'ListObjectVersions';
      return 'ListObjects';
    }
    if (method === 'HEAD') return 'HeadBucket';
    if (method === 'PUT') return 'CreateBucket';
    if (method === 'DELETE') return 'DeleteBucket';
    if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
    return `${method} bucket`;
  }
  switch (method) {
    case 'GET':
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      if (q.has('partNumber')) return headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart';
      return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
    case 'DELETE':
      return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      return 'POST object';
    default:
      return `${method} object`;
  }
};

/** htcondor-api requests as `METHOD /path`, job ids written `{id}`, a listing's query as `?query`. */
export const classifyRest: Classifier = (method, url) => {
  const route = url.pathname.replace(/\/\d+(\.\d+)?(?=\/|$)/g, '/{id}');
  return `${method} ${route}${url.search === '' ? '' : '?query'}`;
};
