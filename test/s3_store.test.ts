import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { Readable } from 'node:stream';
import { endpointUrl, withoutCredentials } from '../lib/endpoint.ts';
import { S3Store, createS3Client } from '../lib/s3_store.ts';
import { memoryLogger } from './support/pipeline_fixture.ts';
import { settingsFor, startS3Server, type S3Server } from './support/s3_server.ts';

let server: S3Server;
let store: S3Store;
let workDir: string;

before(async () => {
  server = await startS3Server({ buckets: ['in', 'big'] });
  store = new S3Store(createS3Client(settingsFor(server)));
  workDir = await mkdtemp(path.join(tmpdir(), 's3-store-test-'));
});

after(async () => {
  await server?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Runs work over items with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function folderKeys(bucket: string, folder: string): Promise<Set<string>> {
  const pages = await collect(store.folderPages(bucket, folder));
  assert.ok(pages.every((p) => p.objects.length <= 1000));
  assert.deepEqual(pages.map((p) => p.more), pages.map((_, i) => i < pages.length - 1), 'more: another page follows');
  return new Set(pages.flatMap((p) => p.objects.map((o) => o.key)));
}

test('endpointUrl: bare hosts mean HTTPS, URLs are kept, anything else is rejected', () => {
  assert.equal(endpointUrl('web.s3.wisc.edu'), 'https://web.s3.wisc.edu');
  assert.equal(endpointUrl('web.s3.wisc.edu:8443'), 'https://web.s3.wisc.edu:8443');
  assert.equal(endpointUrl('localhost:9000'), 'https://localhost:9000');
  assert.equal(endpointUrl('http://127.0.0.1:9000'), 'http://127.0.0.1:9000');
  assert.equal(endpointUrl('http://127.0.0.1:9000/'), 'http://127.0.0.1:9000');
  assert.equal(endpointUrl('https://web.s3.wisc.edu/'), 'https://web.s3.wisc.edu');

  for (const bad of ['', ' ', ' web.s3.wisc.edu', 'web s3.wisc.edu', 'ftp://web.s3.wisc.edu', 's3://bucket/key',
    'web.s3.wisc.edu:99999', 'web.s3.wisc.edu/path', 'http://user:pw@host', 'http://', '-bad-.edu']) {
    // Named in the message, credentials masked.
    assert.throws(() => endpointUrl(bad), (err: Error) => err.message.includes(JSON.stringify(withoutCredentials(bad))), `accepted ${JSON.stringify(bad)}`);
  }
});

test('createS3Client rejects empty credentials and bad endpoints', () => {
  const settings = settingsFor(server);
  assert.throws(() => createS3Client({ ...settings, accessKeyId: '' }), /accessKeyId is empty/);
  assert.throws(() => createS3Client({ ...settings, endpoint: 'gopher://x' }), /gopher:\/\/x/);
});

test('listObjects pages through more than 1000 keys; folderPages sees only direct children, a page at a time', async () => {
  const direct = Array.from({ length: 1205 }, (_, i) => `many/${String(i).padStart(5, '0')}.txt`);
  // Look-alike prefix "manyx/", not "many-x/": s3rver lists in directory-walk order
  // ("many/..." before "many-x/...") instead of S3's byte order ('-' < '/'), and
  // its continuation token then skips "many-x/..." on the next page.
  const others = ['many/sub/nested.txt', 'manyx/outside.txt', 'top.txt'];
  await eachLimited([...direct, ...others], 16, (key) => store.putText('big', key, key));

  const listed = await collect(store.listObjects('big', 'many/'));
  const keys = listed.map((o) => o.key);
  assert.equal(keys.length, 1206);
  assert.equal(new Set(keys).size, 1206, 'every key exactly once');
  assert.deepEqual(new Set(keys), new Set([...direct, 'many/sub/nested.txt']));
  const first = listed.find((o) => o.key === 'many/00000.txt');
  assert.equal(first?.size, Buffer.byteLength('many/00000.txt'));
  assert.ok(first?.lastModified instanceof Date && !Number.isNaN(first.lastModified.getTime()));

  assert.equal((await collect(store.listObjects('big'))).length, 1205 + others.length);

  assert.deepEqual(await folderKeys('big', 'many'), new Set(direct));
  assert.deepEqual(await folderKeys('big', 'many/'), new Set(direct));
  assert.deepEqual(await folderKeys('big', ''), new Set(['top.txt']));
});

test('folderPages: direct children only, not the folder marker, not look-alike prefixes', async () => {
  for (const key of ['folder/', 'folder/a.csv', 'folder/b c.tif', 'folder/sub/c.tif', 'folder/sub/deeper/d.tif', 'folderx/e.tif']) {
    await store.putText('in', key, 'x');
  }
  assert.deepEqual(await folderKeys('in', 'folder'), new Set(['folder/a.csv', 'folder/b c.tif']));
  assert.deepEqual(await folderKeys('in', 'folder/sub'), new Set(['folder/sub/c.tif']));
  assert.deepEqual(await folderKeys('in', 'nothing-here'), new Set());
});

test('rename moves objects whose keys hold spaces, +, #, ?, %, brackets and unicode', async () => {
  const keys = [
    'Counties/Eau Claire/a+b#1 [x] é.tif',
    'Counties/q?x&y=z;1 $@,:.tif',
    'Counties/100% done %41 %zz.csv',
    'Counties/日本/北海道 地図 (copy).tif',
  ];
  for (const [i, fromKey] of keys.entries()) {
    const bytes = randomBytes(4096);
    const source = path.join(workDir, `rename-${i}.bin`);
    await writeFile(source, bytes);
    await store.upload('in', fromKey, source);

    const toKey = `renamed/${fromKey}`;
    await store.rename('in', fromKey, toKey);

    assert.equal(await store.exists('in', fromKey), false, `old key still there: ${fromKey}`);
    assert.equal(await store.exists('in', toKey), true, `new key missing: ${toKey}`);
    const copy = path.join(workDir, `renamed-${i}.bin`);
    await store.download('in', toKey, copy);
    assert.deepEqual(await readFile(copy), bytes);
  }
  assert.deepEqual(new Set((await collect(store.listObjects('in', 'renamed/'))).map((o) => o.key)),
    new Set(keys.map((k) => `renamed/${k}`)));
});

test('copy sends CopySource fully URL-encoded, as S3 requires', async () => {
  // Pins the wire format: the test server is lenient about some raw characters, real S3 is not.
  const client = createS3Client(settingsFor(server));
  const sent: string[] = [];
  client.middlewareStack.add(
    (next) => async (args) => {
      const header = (args.request as { headers?: Record<string, string> }).headers?.['x-amz-copy-source'];
      if (header !== undefined) sent.push(header);
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordCopySource' },
  );
  const key = 'Counties/Eau Claire/a+b#1 [x] é?.tif';
  await store.putText('in', key, 'x');
  await new S3Store(client).copy('in', key, 'copied.tif');
  assert.deepEqual(sent, ['in/Counties/Eau%20Claire/a%2Bb%231%20%5Bx%5D%20%C3%A9%3F.tif']);
});

test('rename of a missing key throws naming the key and leaves nothing behind', async () => {
  await assert.rejects(store.rename('in', 'missing/no such.csv', 'missing/target.csv'), (err: Error) => {
    assert.match(err.message, /^S3 copy s3:\/\/in\/missing\/no such\.csv -> s3:\/\/in\/missing\/target\.csv failed: NoSuchKey/);
    assert.ok(err.cause instanceof Error);
    return true;
  });
  assert.deepEqual(await collect(store.listObjects('in', 'missing/')), []);
});

test('rename onto itself is refused and keeps the object', async () => {
  await store.putText('in', 'self.csv', 'keep me');
  await assert.rejects(store.rename('in', 'self.csv', 'self.csv'), /s3:\/\/in\/self\.csv.*same key/);
  assert.equal(await store.getText('in', 'self.csv'), 'keep me');
});

test('exists: true, false for a missing key, throws on other errors', async () => {
  await store.putText('in', 'exists/here.csv', 'a,b\n', 'text/csv');
  assert.equal(await store.exists('in', 'exists/here.csv'), true);
  assert.equal(await store.exists('in', 'exists/not-here.csv'), false);

  const stranger = new S3Store(createS3Client({ ...settingsFor(server), accessKeyId: 'NOT-A-KEY', secretAccessKey: 'secret-value' }));
  await assert.rejects(stranger.exists('in', 'exists/here.csv'), (err: Error) => {
    assert.match(err.message, /^S3 exists s3:\/\/in\/exists\/here\.csv failed: .*403/);
    assert.doesNotMatch(err.message, /secret-value/);
    return true;
  });
});

test('putText/getText and upload/download round trip', async () => {
  const text = 'county,file\nEau Claire,a+b é.tif\n';
  await store.putText('in', 'manifests/m 1.csv', text, 'text/csv');
  assert.equal(await store.getText('in', 'manifests/m 1.csv'), text);

  const bytes = randomBytes(300 * 1024);
  const source = path.join(workDir, 'source.tif');
  await writeFile(source, bytes);
  await store.upload('in', 'tifs/source.tif', source);
  const target = path.join(workDir, 'target.tif');
  await store.download('in', 'tifs/source.tif', target);
  assert.deepEqual(await readFile(target), bytes);
  assert.equal((await collect(store.listObjects('in', 'tifs/')))[0]?.size, bytes.length);
});

test('upload retries a transient failure with a fresh stream, but not a permanent one', async () => {
  const bytes = randomBytes(64 * 1024);
  const source = path.join(workDir, 'retry.tif');
  await writeFile(source, bytes);

  // Fails the first PUT after consuming its body, the way a dropped connection would.
  const client = createS3Client(settingsFor(server));
  let puts = 0;
  client.middlewareStack.add(
    (next) => async (args) => {
      const body = (args.request as { body?: unknown }).body;
      if (body instanceof Readable && ++puts === 1) {
        for await (const _ of body);
        throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
      }
      return next(args);
    },
    { step: 'deserialize', name: 'failFirstPut' },
  );
  await new S3Store(client).upload('in', 'retry/once.tif', source);
  assert.equal(puts, 2);
  await store.download('in', 'retry/once.tif', path.join(workDir, 'retry-back.tif'));
  assert.deepEqual(await readFile(path.join(workDir, 'retry-back.tif')), bytes);

  const stranger = createS3Client({ ...settingsFor(server), accessKeyId: 'NOT-A-KEY' });
  let strangerPuts = 0;
  stranger.middlewareStack.add((next) => async (args) => (strangerPuts++, next(args)), { step: 'deserialize', name: 'count' });
  await assert.rejects(new S3Store(stranger).upload('in', 'retry/denied.tif', source), /^Error: S3 upload .*retry\.tif -> s3:\/\/in\/retry\/denied\.tif failed: .*403/);
  assert.equal(strangerPuts, 1);
});

test('failed download names the key and leaves no file behind', async () => {
  const target = path.join(workDir, 'never.tif');
  await assert.rejects(store.download('in', 'tifs/absent.tif', target), /^Error: S3 download s3:\/\/in\/tifs\/absent\.tif -> .*never\.tif failed: NoSuchKey/);
  assert.deepEqual((await readdir(workDir)).filter((f) => f.startsWith('never')), []);
});

test('getText and delete failures name the bucket and key', async () => {
  await assert.rejects(store.getText('in', 'nope.csv'), /^Error: S3 get s3:\/\/in\/nope\.csv failed: NoSuchKey/);
  await assert.rejects(store.delete('no-such-bucket', 'a.csv'), /^Error: S3 delete s3:\/\/no-such-bucket\/a\.csv failed: NoSuchBucket/);
});

test('an endpoint that accepts connections and never answers fails in bounded time, saying it is waiting meanwhile', async () => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => void sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as net.AddressInfo;
  const log = memoryLogger();
  const client = createS3Client({ ...settingsFor(server), endpoint: `http://127.0.0.1:${port}` }, { connectionTimeoutMs: 200, socketTimeoutMs: 300 });
  try {
    const started = Date.now();
    await assert.rejects(
      (async () => {
        for await (const _ of new S3Store(client, { log, slowAfterMs: 250 }).listObjects('in')) break;
      })(),
      /^Error: S3 list s3:\/\/in\/ failed: /,
    );
    assert.ok(Date.now() - started < 10_000, 'it gave up within seconds, not minutes');
    assert.match(log.text(), /WARN  still waiting for S3 \(list s3:\/\/in\/\) after \d+ s: the endpoint is slow or not answering; retrying/);
  } finally {
    client.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});
