// The project's one S3 module: client construction and the object operations the pipeline needs.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
} from '@aws-sdk/client-s3';
import { S3RestXmlProtocol } from '@aws-sdk/middleware-sdk-s3/s3';
import type { Logger } from './log.ts';
import { endpointUrl } from './endpoint.ts';
import { readListObjectsV2 } from './listing_xml.ts';

export type S3Settings = {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
};

/** `etag` identifies the object's content (S3 changes it when the object is written again). */
export type S3ObjectInfo = { key: string; size: number; lastModified: Date; etag: string };

/**
 * What HEAD tells of an object besides its content: its user metadata (`x-amz-meta-*`, names in
 * lower case without the prefix) and the headers a copy with `MetadataDirective: REPLACE` would
 * otherwise drop.
 */
export type ObjectHead = {
  etag: string;
  size: number;
  metadata: Record<string, string>;
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  expires?: Date;
};

/** How long S3 may stay silent in one request (connecting, then between bytes) before it is retried. */
export type S3Timeouts = { connectionTimeoutMs: number; socketTimeoutMs: number };
const DEFAULT_TIMEOUTS: S3Timeouts = { connectionTimeoutMs: 10_000, socketTimeoutMs: 30_000 };

type DeserializeArgs = Parameters<S3RestXmlProtocol['deserializeResponse']>;
type DeserializeOutput = Awaited<ReturnType<S3RestXmlProtocol['deserializeResponse']>>;

/**
 * The SDK's S3 protocol, except that a successful ListObjectsV2 answer is read by
 * lib/listing_xml.ts (the same output, read with a tenth of the CPU). What that reader leaves alone, and
 * every other operation and every error, goes through the SDK as it would without this class.
 */
export class FastListingProtocol extends S3RestXmlProtocol {
  override async deserializeResponse<Output extends DeserializeOutput>(...[operation, context, response]: DeserializeArgs): Promise<Output> {
    if (operation.name !== 'ListObjectsV2' || response.statusCode >= 300) {
      return super.deserializeResponse<Output>(operation, context, response);
    }
    const bytes = await bodyBytes(response.body);
    const page = readListObjectsV2(bytes);
    if (page === undefined) {
      response.body = bytes; // read once already: the SDK takes the bytes instead of the stream
      return super.deserializeResponse<Output>(operation, context, response);
    }
    const charged = response.headers['x-amz-request-charged'];
    const output: ListObjectsV2CommandOutput = {
      ...page,
      ...(charged === undefined ? {} : { RequestCharged: charged as ListObjectsV2CommandOutput['RequestCharged'] }),
      $metadata: this.deserializeMetadata(response),
    };
    return output as unknown as Output;
  }
}

/** A response body as bytes, copied only when it came in several chunks. */
async function bodyBytes(body: unknown): Promise<Buffer> {
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const chunks = (await (body as Readable).toArray()) as Buffer[];
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

export function createS3Client(settings: S3Settings, timeouts: S3Timeouts = DEFAULT_TIMEOUTS): S3Client {
  for (const field of ['accessKeyId', 'secretAccessKey', 'region'] as const) {
    // Names the empty field only; the values are secrets.
    if (settings[field] === '') throw new Error(`S3 settings: ${field} is empty`);
  }
  return new S3Client({
    endpoint: endpointUrl(settings.endpoint),
    region: settings.region,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Non-AWS servers (campus S3, s3rver) serve buckets as paths, not subdomains.
    forcePathStyle: true,
    protocol: FastListingProtocol,
    // Standard retry mode: exponential backoff with jitter, 3 attempts in total.
    maxAttempts: 3,
    // Send/validate checksums only where the API requires them: the SDK's default
    // (aws-chunked uploads with trailing CRC checksums) is not supported by many
    // S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A dead server or stalled transfer fails (and is retried) instead of hanging
    // forever: at most about 1.5 minutes over 3 attempts. socketTimeout is idle time,
    // so long GeoTIFF transfers that keep moving are fine.
    requestHandler: { connectionTimeout: timeouts.connectionTimeoutMs, socketTimeout: timeouts.socketTimeoutMs },
  });
}

/**
 * CopySource as S3 expects it: "bucket/key", URL-encoded (CopyObject API). The
 * SDK sends it verbatim and S3 URL-decodes it, so everything but unreserved
 * characters is percent-encoded, as botocore and the AWS CLI do: a raw "?" would
 * start a versionId query, a raw "%41" would decode to "A", non-ASCII is not
 * valid in a header. Slashes stay literal, which S3 accepts.
 */
function copySource(bucket: string, key: string): string {
  return `${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** HTTP status of an SDK error; undefined when no response arrived (network failure, timeout). */
function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null | undefined)?.$metadata?.httpStatusCode;
}

function errorSummary(err: unknown): string {
  if (!(err instanceof Error)) return oneLine(String(err));
  const status = httpStatus(err);
  // An answer that is not S3's XML (a gateway's or a proxy's HTML page, say): the SDK's parse
  // error only says so at length, over several lines, about its own internals.
  if (/Deserialization error/.test(err.message)) {
    return `the answer is not an S3 error document${status === undefined ? '' : ` (HTTP ${status})`}`;
  }
  // SDK errors carry the S3 error code as name ("NoSuchKey"); bodiless responses
  // (HEAD) have only a name or the placeholder message "UnknownError".
  const text =
    err.message === '' || err.message === err.name || err.message === 'UnknownError'
      ? err.name
      : err.name === 'Error'
        ? err.message
        : `${err.name}: ${err.message}`;
  return oneLine(status === undefined ? text : `${text} (HTTP ${status})`);
}

/** Log files are read a line at a time: a message is one line. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

const UPLOAD_ATTEMPTS = 3;

/** Worth retrying: throttling, server errors, and failures with no HTTP response (network, timeouts). */
function isTransient(err: unknown): boolean {
  const status = httpStatus(err);
  return status === undefined || status === 429 || status >= 500;
}

function isNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const status = httpStatus(err);
  return err.name === 'NotFound' || err.name === 'NoSuchKey' || status === 404;
}

type ListedObject = NonNullable<ListObjectsV2CommandOutput['Contents']>[number];

/** A listed object whose Key is known to be there. */
function objectInfo(o: ListedObject): S3ObjectInfo {
  return { key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag ?? '' };
}

export type S3StoreOptions = {
  /** Told every `slowAfterMs` while one operation is still waiting (a slow or silent endpoint). */
  log?: Logger;
  slowAfterMs?: number;
};

export class S3Store {
  constructor(
    private readonly client: S3Client,
    private readonly opts: S3StoreOptions = {},
  ) {}

  /**
   * Runs one S3 operation; failures say which operation on which object failed, and a long
   * wait says so while it lasts, so that nobody watches a silent terminal for minutes.
   */
  private async attempt<T>(what: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const every = this.opts.slowAfterMs ?? 15_000;
    const waiting = this.opts.log
      ? setInterval(() => {
          const seconds = Math.round((Date.now() - started) / 1000);
          this.opts.log!.warn(`still waiting for S3 (${what}) after ${seconds} s: the endpoint is slow or not answering; retrying`);
        }, every)
      : undefined;
    try {
      return await work();
    } catch (err) {
      throw new Error(`S3 ${what} failed: ${errorSummary(err)}`, { cause: err });
    } finally {
      clearInterval(waiting);
    }
  }

  /** Every object under prefix, in key order, across as many pages as it takes. */
  async *listObjects(bucket: string, prefix = ''): AsyncGenerator<S3ObjectInfo> {
    for await (const page of this.pages(bucket, prefix)) {
      for (const object of page.Contents ?? []) if (object.Key !== undefined) yield objectInfo(object);
    }
  }

  /**
   * Every object under prefix, subfolders included, a page (up to 1000) at a time, so that a
   * caller can stop early; `more` tells whether another page follows.
   */
  async *objectPages(bucket: string, prefix: string): AsyncGenerator<{ objects: S3ObjectInfo[]; more: boolean }> {
    for await (const page of this.pages(bucket, prefix)) {
      yield { objects: (page.Contents ?? []).filter((o) => o.Key !== undefined).map(objectInfo), more: page.NextContinuationToken !== undefined };
    }
  }

  /**
   * The objects directly inside one "folder" (not in its subfolders), a page (up to 1000) at a
   * time, so that a caller can stop early; `more` tells whether another page follows. A
   * folderPrefix without a trailing slash is taken as that folder; '' is the bucket root.
   */
  async *folderPages(bucket: string, folderPrefix: string): AsyncGenerator<{ objects: S3ObjectInfo[]; more: boolean }> {
    const prefix = folderPrefix === '' || folderPrefix.endsWith('/') ? folderPrefix : `${folderPrefix}/`;
    for await (const page of this.pages(bucket, prefix, '/')) {
      const objects = (page.Contents ?? [])
        // The zero-byte "folder/" marker some tools create is the folder itself, not a file in it.
        .filter((o) => o.Key !== undefined && o.Key !== prefix)
        .map(objectInfo);
      yield { objects, more: page.NextContinuationToken !== undefined };
    }
  }

  private async *pages(
    bucket: string,
    prefix: string,
    delimiter?: string,
  ): AsyncGenerator<ListObjectsV2CommandOutput> {
    const where = `list s3://${bucket}/${prefix}`;
    let token: string | undefined;
    do {
      const page = await this.attempt(where, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }),
        ),
      );
      yield page;
      token = page.NextContinuationToken;
      // A truncated page without a token would otherwise end the listing silently short.
      if (page.IsTruncated === true && token === undefined) {
        throw new Error(`S3 ${where} failed: page is truncated but has no continuation token`);
      }
    } while (token !== undefined);
  }

  /** The whole object as UTF-8 text. */
  async getText(bucket: string, key: string): Promise<string> {
    return (await this.getBytes(bucket, key)).toString('utf8');
  }

  /** The first `bytes` bytes of an object (all of it when it is shorter): enough to tell what it is. */
  async getHead(bucket: string, key: string, bytes: number): Promise<Buffer> {
    return this.attempt(`get the start of s3://${bucket}/${key}`, async () => {
      const { Body } = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${bytes - 1}` }));
      if (Body === undefined) throw new Error('response has no body');
      return Buffer.from(await Body.transformToByteArray()).subarray(0, bytes);
    });
  }

  /** Streams the object to filePath; on failure filePath is left untouched (no partial file). */
  async download(bucket: string, key: string, filePath: string): Promise<void> {
    const partial = `${filePath}.partial`;
    await this.attempt(`download s3://${bucket}/${key} -> ${filePath}`, async () => {
      try {
        const { Body } = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        if (!(Body instanceof Readable)) throw new Error('response body is not a stream');
        await pipeline(Body, createWriteStream(partial));
        await rename(partial, filePath);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
    });
  }

  /** The whole object, as bytes (a manifest comes back byte for byte, whatever its encoding). */
  async getBytes(bucket: string, key: string): Promise<Buffer> {
    return this.attempt(`get s3://${bucket}/${key}`, async () => {
      const { Body } = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (Body === undefined) throw new Error('response has no body');
      return Buffer.from(await Body.transformToByteArray());
    });
  }

  async putText(bucket: string, key: string, text: string | Buffer, contentType = 'text/plain; charset=utf-8'): Promise<void> {
    await this.attempt(`put s3://${bucket}/${key}`, () =>
      this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: text, ContentType: contentType })),
    );
  }

  /**
   * Single PUT streamed from the file; S3 caps a single PUT at 5 GiB. The SDK
   * never retries a request with a stream body (it cannot rewind it), so
   * transient failures are retried here, each time with a fresh stream.
   */
  async upload(bucket: string, key: string, filePath: string): Promise<void> {
    await this.attempt(`upload ${filePath} -> s3://${bucket}/${key}`, async () => {
      // The length must be known up front: a stream body cannot be measured by the SDK.
      const { size } = await stat(filePath);
      for (let attempt = 1; ; attempt++) {
        try {
          await this.client.send(
            new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(filePath), ContentLength: size }),
          );
          return;
        } catch (err) {
          if (attempt >= UPLOAD_ATTEMPTS || !isTransient(err)) throw err;
          await sleep(200 * 2 ** attempt);
        }
      }
    });
  }

  /**
   * HEAD the object: false when it does not exist, an error for anything else
   * (e.g. access denied). A HEAD 404 has no body, so a missing bucket also reads as false.
   */
  async exists(bucket: string, key: string): Promise<boolean> {
    return (await this.headOrNull(bucket, key, `exists s3://${bucket}/${key}`)) !== null;
  }

  /** HEAD the object: its metadata and headers, or null when it does not exist. */
  async head(bucket: string, key: string): Promise<ObjectHead | null> {
    const out = await this.headOrNull(bucket, key, `head s3://${bucket}/${key}`);
    if (out === null) return null;
    return {
      etag: out.ETag ?? '',
      size: out.ContentLength ?? 0,
      metadata: Object.fromEntries(Object.entries(out.Metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      contentType: out.ContentType,
      cacheControl: out.CacheControl,
      contentDisposition: out.ContentDisposition,
      contentEncoding: out.ContentEncoding,
      contentLanguage: out.ContentLanguage,
      expires: out.Expires,
    };
  }

  /** One HEAD request; null for a missing object, an error (naming `what`) for anything else. */
  private async headOrNull(bucket: string, key: string, what: string): Promise<HeadObjectCommandOutput | null> {
    try {
      return await this.attempt(what, () => this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
    } catch (err) {
      if (isNotFound((err as Error).cause)) return null;
      throw err;
    }
  }

  /**
   * Server-side copy that sets the copy's user metadata to `metadata` (`MetadataDirective:
   * REPLACE`) and keeps the other headers of `source` (the source's HEAD): Content-Type,
   * Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires.
   */
  async copyWithMetadata(bucket: string, fromKey: string, toKey: string, source: ObjectHead, metadata: Record<string, string>): Promise<void> {
    await this.attempt(`copy s3://${bucket}/${fromKey} -> s3://${bucket}/${toKey}`, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: toKey,
          CopySource: copySource(bucket, fromKey),
          MetadataDirective: 'REPLACE',
          Metadata: metadata,
          ContentType: source.contentType,
          CacheControl: source.cacheControl,
          ContentDisposition: source.contentDisposition,
          ContentEncoding: source.contentEncoding,
          ContentLanguage: source.contentLanguage,
          Expires: source.expires,
        }),
      ),
    );
  }

  /** Server-side copy within the bucket; S3 caps a single CopyObject at 5 GiB. */
  async copy(bucket: string, fromKey: string, toKey: string): Promise<void> {
    await this.attempt(`copy s3://${bucket}/${fromKey} -> s3://${bucket}/${toKey}`, () =>
      this.client.send(new CopyObjectCommand({ Bucket: bucket, Key: toKey, CopySource: copySource(bucket, fromKey) })),
    );
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.attempt(`delete s3://${bucket}/${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
    );
  }

  /**
   * S3 has no rename: copy, then delete the original. A failed copy throws before
   * anything is deleted; a failed delete leaves both keys in place (and throws).
   */
  async rename(bucket: string, fromKey: string, toKey: string): Promise<void> {
    // Copy-to-self then delete would destroy the only copy.
    if (fromKey === toKey) {
      throw new Error(`S3 rename s3://${bucket}/${fromKey} failed: source and destination are the same key`);
    }
    await this.copy(bucket, fromKey, toKey);
    await this.delete(bucket, fromKey);
  }
}
