// lib/listing_xml.ts must read every ListObjectsV2 answer exactly as the AWS SDK's own reader
// does, or hand it to that reader. Each case here is read twice, by an S3Client with the SDK's
// protocol and by one with FastListingProtocol, and the outputs must be the same.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, PutObjectCommand, S3Client, type ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { readListObjectsV2 } from '../lib/listing_xml.ts';
import { FastListingProtocol, S3Store, createS3Client } from '../lib/s3_store.ts';
import { settingsFor, startS3Server, type S3Server } from './support/s3_server.ts';

let server: S3Server;

before(async () => {
  server = await startS3Server({ buckets: ['odd'] });
});

after(async () => {
  await server?.stop();
});

const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** A client whose every request is answered with `xml` (status 200), as an S3 server would. */
function cannedClient(xml: string, fast: boolean): S3Client {
  return new S3Client({
    endpoint: 'http://127.0.0.1:9',
    region: 'us-east-1',
    credentials: CREDENTIALS,
    forcePathStyle: true,
    maxAttempts: 1,
    ...(fast ? { protocol: FastListingProtocol } : {}),
    requestHandler: {
      handle: async () => ({
        response: { statusCode: 200, headers: { 'content-type': 'application/xml', 'x-amz-request-id': 'R1' }, body: Readable.from([Buffer.from(xml)]) },
      }),
    },
  });
}

/** The output, or the error's name and message, without the parts that differ per request. */
async function outcome(client: S3Client): Promise<unknown> {
  try {
    const { $metadata, ...rest } = await client.send(new ListObjectsV2Command({ Bucket: 'odd' }));
    return { status: $metadata.httpStatusCode, requestId: $metadata.requestId, ...rest };
  } catch (err) {
    return { error: (err as Error).name, message: (err as Error).message };
  }
}

async function assertSameAsSdk(xml: string): Promise<unknown> {
  const sdk = await outcome(cannedClient(xml, false));
  const ours = await outcome(cannedClient(xml, true));
  assert.deepStrictEqual(ours, sdk);
  return ours;
}

const HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';

function object(key: string, extra = ''): string {
  return `<Contents><Key>${key}</Key><LastModified>2026-12-07T22:45:59.714Z</LastModified><ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag>${extra}<Size>1024</Size><StorageClass>STANDARD</StorageClass></Contents>`;
}

/** Documents in the plain form: the fast reader must take them itself. */
const PLAIN: Record<string, string> = {
  'an empty bucket': `${HEAD}<Name>odd</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`,
  'a truncated page as AWS writes it (checksums, a token)':
    `${HEAD}<Name>odd</Name><Prefix>a/</Prefix><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>` +
    object('a/x.tif', '<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>') +
    object('a/y.tif', '<ChecksumAlgorithm>CRC32</ChecksumAlgorithm><ChecksumAlgorithm>SHA256</ChecksumAlgorithm>') +
    '</ListBucketResult>',
  'folders (a delimiter) with owners, and a start-after':
    `${HEAD}<Name>odd</Name><Prefix></Prefix><StartAfter>a</StartAfter><ContinuationToken>tok</ContinuationToken><Delimiter>/</Delimiter><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>` +
    object('top.csv', '<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>office</DisplayName></Owner>') +
    '<CommonPrefixes><Prefix>Counties/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>a&amp;b/</Prefix></CommonPrefixes></ListBucketResult>',
  'pretty-printed with CRLF line ends': [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    '  <Name>odd</Name>',
    '  <Prefix/>',
    '  <IsTruncated>FALSE</IsTruncated>',
    '  <Contents>',
    '    <Key>pretty.tif</Key>',
    '    <LastModified>2026-01-02T03:04:05Z</LastModified>',
    '    <ETag>"abc"</ETag>',
    '    <Size>0</Size>',
    '  </Contents>',
    '</ListBucketResult>',
    '',
  ].join('\r\n'),
  'keys with entities, character references and characters XML must escape': `${HEAD}<IsTruncated>false</IsTruncated>` +
    [
      'a &amp; b.tif', '&lt;tag&gt;.tif', 'quote &quot;x&quot; apos &apos;y&apos;.tif', 'tab&#9;and&#x9;.tif',
      'cr&#13;lf&#10;.tif', 'Fond du Lac/Ortho 2020 (leaf-off).tif', 'é/ü/日本/Ωmega.tif', ' spaced .tif', 'a>b]]>c.tif',
    ].map((k) => object(k)).join('') + '</ListBucketResult>',
  'a full page of 1000 objects, 250 KB (read in pieces of at most 64 KiB)': `${HEAD}<IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken>` +
    Array.from({ length: 1000 }, (_, i) => object(`Counties/WI/F${i % 7}/image_${String(i).padStart(6, '0')}_ortho_2020 é &amp; 日本.tif`)).join('\r\n') +
    '<KeyCount>1000</KeyCount></ListBucketResult>',
  'a page of 3000 folders and no objects (one piece: nowhere to cut)': `${HEAD}<IsTruncated>false</IsTruncated><Delimiter>/</Delimiter>` +
    Array.from({ length: 3000 }, (_, i) => `<CommonPrefixes><Prefix>Counties/WI/section_${String(i).padStart(5, '0')}/</Prefix></CommonPrefixes>`).join('') +
    '</ListBucketResult>',
  'a fraction of a second of one or two digits': `${HEAD}<IsTruncated>false</IsTruncated>` +
    object('x').replace('.714Z', '.7Z') + object('y').replace('.714Z', '.07Z') + '</ListBucketResult>',
};

/** Documents outside the plain form: the SDK's reader must take them, as before. */
const FOR_THE_SDK: Record<string, string> = {
  'a comment': `${HEAD}<!-- note --><IsTruncated>false</IsTruncated>${object('x')}</ListBucketResult>`,
  'CDATA': `${HEAD}<IsTruncated>false</IsTruncated>${object('<![CDATA[a<b]]>')}</ListBucketResult>`,
  'an archived object (RestoreStatus)': `${HEAD}<IsTruncated>false</IsTruncated>${object('x', '<RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus>')}</ListBucketResult>`,
  'an element the reader does not know': `${HEAD}<IsTruncated>false</IsTruncated><Future>1</Future></ListBucketResult>`,
  'an attribute below the root': `${HEAD}<IsTruncated>false</IsTruncated><Contents><Key a="1">x</Key></Contents></ListBucketResult>`,
  'a timestamp with an offset': `${HEAD}<IsTruncated>false</IsTruncated>${object('x').replace('.714Z', '.714+02:00')}</ListBucketResult>`,
  'a timestamp with microseconds': `${HEAD}<IsTruncated>false</IsTruncated>${object('x').replace('.714Z', '.714123Z')}</ListBucketResult>`,
  'a 31 June': `${HEAD}<IsTruncated>false</IsTruncated>${object('x').replace('2026-12-07', '2026-06-31')}</ListBucketResult>`,
  'an entity XML does not define': `${HEAD}<IsTruncated>false</IsTruncated>${object('&nbsp;')}</ListBucketResult>`,
  'an entity named like an object property': `${HEAD}<IsTruncated>false</IsTruncated>${object('&toString;')}</ListBucketResult>`,
  'a character reference beyond Unicode': `${HEAD}<IsTruncated>false</IsTruncated>${object('&#x110000;')}</ListBucketResult>`,
  'a bare ampersand': `${HEAD}<IsTruncated>false</IsTruncated>${object('a & b')}</ListBucketResult>`,
  'text beside elements': `${HEAD}stray<IsTruncated>false</IsTruncated></ListBucketResult>`,
  'an error document sent with 200': '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>',
  'mismatched tags': `${HEAD}<IsTruncated>false</Truncated></ListBucketResult>`,
  'a document cut short': `${HEAD}<IsTruncated>false</IsTruncated>${object('x').slice(0, 40)}`,
  'not XML at all': '<html><body>502 Bad Gateway</body></html>',
};

for (const [what, xml] of Object.entries(PLAIN)) {
  test(`listing read by our reader, as the SDK reads it: ${what}`, async () => {
    assert.notEqual(readListObjectsV2(Buffer.from(xml)), undefined, 'the fast reader takes this document itself');
    await assertSameAsSdk(xml);
  });
}

for (const [what, xml] of Object.entries(FOR_THE_SDK)) {
  test(`listing left to the SDK's reader, with the same outcome: ${what}`, async () => {
    assert.equal(readListObjectsV2(Buffer.from(xml)), undefined, 'the fast reader hands this document on');
    await assertSameAsSdk(xml);
  });
}

test('the values a user sees: keys, sizes, dates and ETags come out decoded and typed', async () => {
  const out = (await assertSameAsSdk(PLAIN['keys with entities, character references and characters XML must escape']!)) as ListObjectsV2CommandOutput;
  const keys = out.Contents!.map((o) => o.Key);
  assert.deepEqual(keys.slice(0, 5), ['a & b.tif', '<tag>.tif', 'quote "x" apos \'y\'.tif', 'tab\tand\t.tif', 'cr\rlf\n.tif']);
  assert.equal(keys[7], ' spaced .tif');
  assert.equal(out.Contents![0]!.ETag, '"0f343b0931126a20f133d67c2b018a3b"');
  assert.equal(out.Contents![0]!.Size, 1024);
  assert.equal(out.Contents![0]!.LastModified!.toISOString(), '2026-12-07T22:45:59.714Z');
});

test("where the SDK's reader is wrong, ours is right: characters beyond 16 bits, texts of only white space", () => {
  const xml = `${HEAD}<IsTruncated>false</IsTruncated>${object('smile &#x1F600; &#128512;.tif')}${object('\n')}</ListBucketResult>`;
  // The SDK reads a reference with String.fromCharCode (16 bits), and drops a text that is only
  // white space with a line break: a key "\n" (legal in S3) would come back as "".
  assert.deepEqual(readListObjectsV2(Buffer.from(xml))!.Contents!.map((o) => o.Key), ['smile 😀 😀.tif', '\n']);
});

test('a real S3 server: odd keys over several pages read the same through both protocols', async () => {
  const settings = settingsFor(server);
  const fast = createS3Client(settings);
  const sdk = new S3Client({ endpoint: settings.endpoint, region: settings.region, credentials: CREDENTIALS, forcePathStyle: true });
  const keys = [
    'Fond du Lac/2020/ortho & lidar <v2>.tif', "O'Brien \"quoted\".tif", 'é/日本/Ωmega 😀.tif', ' leading and trailing ',
    'percent%20and+plus.tif', 'brackets[1]*?.tif', 'tab\there.tif', 'semi;colon=equals.tif',
    ...Array.from({ length: 25 }, (_, i) => `many/${String(i).padStart(3, '0')}.tif`),
  ];
  for (const key of keys) await fast.send(new PutObjectCommand({ Bucket: 'odd', Key: key, Body: key }));

  for (const request of [{}, { Delimiter: '/' }, { Prefix: 'many/', MaxKeys: 10 }]) {
    let token: string | undefined;
    let pages = 0;
    do {
      const input = { Bucket: 'odd', ...request, ContinuationToken: token };
      const { $metadata: m1, NextContinuationToken: next1, ...ours } = await fast.send(new ListObjectsV2Command(input));
      const { $metadata: m2, NextContinuationToken: next2, ...theirs } = await sdk.send(new ListObjectsV2Command(input));
      assert.deepStrictEqual(ours, theirs, `page ${pages + 1} of ${JSON.stringify(request)}`);
      // s3rver encrypts each token afresh, so the two answers carry different ones.
      assert.equal(typeof next1, typeof next2);
      assert.equal(m1.httpStatusCode, 200);
      assert.equal(m2.httpStatusCode, 200);
      token = next1;
      pages++;
    } while (token !== undefined);
    if ('MaxKeys' in request) assert.equal(pages, 3, '25 keys, 10 to a page');
  }

  const listed = [];
  for await (const o of new S3Store(fast).listObjects('odd')) listed.push(o.key);
  assert.deepEqual(listed.sort(), [...keys].sort());
});
