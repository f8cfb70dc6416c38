/**
 * Bulk objects for s3rver, written straight into its storage directory instead of through
 * PUT requests: a million PUTs through s3rver take far longer than writing the files.
 *
 * s3rver 3.7's FilesystemStore (node_modules/s3rver/lib/stores/filesystem.js) keeps object
 * `a/b/c.tif` of bucket B as `<root>/B/a/b/c.tif._S3rver_object` (the content), with
 * `c.tif._S3rver_object.md5` (hex MD5, the ETag; computed and written on first read when
 * missing) and an optional `c.tif._S3rver_metadata.json` (Content-Type and x-amz-meta-*; absent
 * means binary/octet-stream). It reads the disk on every request and keeps no index, so files
 * written while it runs are served at once. A bucket is a directory under the root.
 * checkLayout() puts one object through the API and checks these names, so a different s3rver
 * fails loudly here instead of serving an empty bucket.
 *
 * Objects with the same content are hard links to one file (and one .md5): creating and, above
 * all, deleting a million small files on a disk costs minutes (each frees a block; with online
 * discard far more), links cost almost nothing. Safe because nothing writes to these keys: the
 * pipeline only PUTs and copies manifests and its CSVs, which go through the API as their own
 * files (s3rver truncates the file it PUTs to, which would change every linked object).
 */
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const OBJECT_SUFFIX = '._S3rver_object';

export function objectFile(root: string, bucket: string, key: string): string {
  return path.join(root, bucket, ...key.split('/')) + OBJECT_SUFFIX;
}

/** ext4 allows 65 000 links to one file: a new source file is started before that. */
const LINKS_PER_SOURCE = 60_000;

type Source = { object: string; md5: string; links: number };

/** Writes objects (key → content) into bucket's directory under s3rver's root, as hard links. */
export class DiskWriter {
  private readonly dirs = new Set<string>();
  private readonly sources = new Map<Buffer, Source>();
  private made = 0;
  written = 0;

  /** `poolDir`: where the linked-to files live, on the same file system as `root`. */
  constructor(
    private readonly root: string,
    private readonly poolDir: string,
  ) {
    mkdirSync(poolDir, { recursive: true });
  }

  put(bucket: string, key: string, body: Buffer): void {
    const file = objectFile(this.root, bucket, key);
    const dir = path.dirname(file);
    if (!this.dirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.dirs.add(dir);
    }
    const source = this.sourceFor(body);
    linkSync(source.object, file);
    linkSync(source.md5, `${file}.md5`);
    source.links++;
    this.written++;
  }

  /** Bodies are shared Buffers (all fake images alike): one source file per body, renewed before the link limit. */
  private sourceFor(body: Buffer): Source {
    let source = this.sources.get(body);
    if (source === undefined || source.links >= LINKS_PER_SOURCE) {
      const base = path.join(this.poolDir, `source-${++this.made}`);
      writeFileSync(base, body);
      writeFileSync(`${base}.md5`, createHash('md5').update(body).digest('hex'));
      source = { object: base, md5: `${base}.md5`, links: 0 };
      this.sources.set(body, source);
    }
    return source;
  }
}

/** Checks that an object put through the API landed where DiskWriter writes (see above). */
export function checkLayout(root: string, bucket: string, key: string, body: Buffer): void {
  const file = objectFile(root, bucket, key);
  if (!existsSync(file) || !readFileSync(file).equals(body) || !existsSync(`${file}.md5`)) {
    throw new Error(
      `s3rver's storage layout is not the one this bench writes (no ${file} with its .md5 beside it): ` +
        'check node_modules/s3rver/lib/stores/filesystem.js and bench/s3_layout.ts',
    );
  }
  const md5 = readFileSync(`${file}.md5`, 'utf8');
  if (md5 !== createHash('md5').update(body).digest('hex')) throw new Error(`s3rver's ${file}.md5 does not hold the MD5 in hex`);
}
