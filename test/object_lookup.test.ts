import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { lookUpObjects } from '../lib/object_lookup.ts';
import { createS3Client, S3Store } from '../lib/s3_store.ts';
import { settingsFor, startS3Server, type S3Server } from './support/s3_server.ts';

/**
 * Issue 10, "Memory independent of the bucket": the images a manifest names (and the outputs post
 * expects) are looked up where they would be, with whichever of HEAD and folder listings costs
 * fewer requests; requests counted from the SDK's real traffic.
 */

let s3: S3Server;
before(async () => {
  s3 = await startS3Server({ buckets: ['in'] });
  const store = new S3Store(createS3Client(settingsFor(s3)));
  const keys = [
    ...Array.from({ length: 2100 }, (_, i) => `big/${String(i).padStart(5, '0')}.tif`),
    'small/a.tif',
    'small/b.tif',
    'small/c.tif',
    'small/sub/d.tif',
    ...Array.from({ length: 20 }, (_, i) => `one/s${i}/t.tif`),
    ...Array.from({ length: 20 }, (_, i) => `big/s${i}/t.tif`),
  ];
  for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => store.putText('in', k, `${k}\n`)));
});
after(async () => {
  await s3.stop();
});

/** A store whose requests are counted by command, with the most in flight at once. */
function countingStore() {
  const client = createS3Client(settingsFor(s3));
  const counts: Record<string, number> = {};
  const load = { inFlight: 0, most: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName).replace(/Command$/, '');
      counts[name] = (counts[name] ?? 0) + 1;
      load.most = Math.max(load.most, ++load.inFlight);
      try {
        return await next(args);
      } finally {
        load.inFlight--;
      }
    },
    { step: 'initialize' },
  );
  return { store: new S3Store(client), counts, load };
}

const size = (key: string) => Buffer.byteLength(`${key}\n`);

test('several keys in a small folder: one listing, sizes as stored, the missing ones absent, subfolders not mistaken', async () => {
  const { store, counts } = countingStore();
  const found = await lookUpObjects(store, 'in', ['small/a.tif', 'small/c.tif', 'small/d.tif', 'small/a.tif']);
  assert.deepEqual(found, new Map([['small/a.tif', size('small/a.tif')], ['small/c.tif', size('small/c.tif')]]));
  assert.deepEqual(counts, { ListObjectsV2: 1 });
});

test('keys in many folders of a common folder that holds little else: one listing of it', async () => {
  const { store, counts } = countingStore();
  const keys = Array.from({ length: 20 }, (_, i) => `one/s${i}/t.tif`);
  const found = await lookUpObjects(store, 'in', [...keys, 'one/s99/t.tif']);
  assert.deepEqual([...found.keys()].sort(), [...keys].sort());
  assert.equal(found.get('one/s3/t.tif'), size('one/s3/t.tif'));
  assert.deepEqual(counts, { ListObjectsV2: 1 });
});

test('one key per folder in a common folder full of other objects: its listing is given up after a page, then one HEAD each, 8 at a time at most', async () => {
  const { store, counts, load } = countingStore();
  // big/ lists its 2 100 other objects first.
  const keys = Array.from({ length: 20 }, (_, i) => `big/s${i}/t.tif`);
  const found = await lookUpObjects(store, 'in', [...keys, 'big/s99/t.tif']);
  assert.deepEqual([...found.keys()].sort(), [...keys].sort());
  assert.deepEqual(counts, { ListObjectsV2: 1, HeadObject: 21 });
  assert.ok(load.most > 1 && load.most <= 8, `${load.most} in flight at once`);
});

test('a few keys in a large folder: listing stops once it costs more than HEAD requests would', async () => {
  const { store, counts } = countingStore();
  const wanted = ['big/02099.tif', 'big/01500.tif', 'big/09999.tif'];
  const found = await lookUpObjects(store, 'in', wanted);
  assert.deepEqual(found, new Map([['big/02099.tif', size('big/02099.tif')], ['big/01500.tif', size('big/01500.tif')]]));
  // 2100 objects are 3 pages; with 3 keys wanted the listing may read at most 3 pages, then HEAD
  // what it has not found: never more than 2 requests per key.
  assert.ok((counts.ListObjectsV2 ?? 0) + (counts.HeadObject ?? 0) <= 2 * wanted.length, JSON.stringify(counts));
});

test('every key of a large folder: one listing pass, no HEAD', async () => {
  const { store, counts } = countingStore();
  const wanted = Array.from({ length: 2100 }, (_, i) => `big/${String(i).padStart(5, '0')}.tif`);
  const found = await lookUpObjects(store, 'in', wanted);
  assert.equal(found.size, 2100);
  assert.deepEqual(counts, { ListObjectsV2: 3 });
});

test('keys in more folders than a listing the caller just made took pages: one listing of their common folder instead', async () => {
  const { store, counts } = countingStore();
  const keys = Array.from({ length: 20 }, (_, i) => `one/s${i}/t.tif`);
  // The cycle listed the whole bucket (2 144 objects: 3 pages) to find its manifests.
  const found = await lookUpObjects(store, 'in', [...keys, 'one/s99/t.tif'], { listed: { prefix: '', objects: 2144 } });
  assert.deepEqual([...found.keys()].sort(), [...keys].sort());
  assert.equal(found.get('one/s3/t.tif'), size('one/s3/t.tif'));
  assert.deepEqual(counts, { ListObjectsV2: 1 });
  // A listing of another part of the bucket says nothing of these folders' size: one request per folder.
  const other = countingStore();
  await lookUpObjects(other.store, 'in', keys, { listed: { prefix: 'small/', objects: 4 } });
  assert.deepEqual(other.counts, { HeadObject: 20 });
});
