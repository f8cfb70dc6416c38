import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { csvFields, manifestCsv, manifestVerdict, MAX_MANIFEST_BYTES, parseManifest, readManifestLines } from '../lib/manifest.ts';

test("the Python project's sample manifest parses into four image rows", () => {
  const text = readFileSync(new URL('./fixtures/manifests/test_raw.csv', import.meta.url), 'utf8');
  const { rows, rejected } = parseManifest(text);
  assert.deepEqual(rejected, []);
  assert.deepEqual(
    rows.map((r) => [r.key, r.bands]),
    [
      ['Counties/WI/Wood/1band.tif', 1],
      ['Counties/WI/Wood/4band.tif', 4],
      ['Counties/WI/Dane/1band.tif', 1],
      ['Counties/WI/Dane/4band.tif', 4],
    ],
  );
});

test('BOM, CRLF, blank lines, quoting and a missing final newline are all fine', () => {
  const { rows, rejected } = parseManifest('\uFEFFa/one.tif,1\r\n\r\n"a/two words.tif",3\r\n   \r\nb/three.TIF, 4 ');
  assert.deepEqual(rejected, []);
  assert.deepEqual(
    rows.map((r) => [r.line, r.key, r.bands]),
    [
      [1, 'a/one.tif', 1],
      [3, 'a/two words.tif', 3],
      [5, 'b/three.TIF', 4],
    ],
  );
});

test('bad rows are kept as written, with a reason, and do not stop the good rows', () => {
  const text = [
    'ok/a.tif,1',
    'ok/b.tif,1,extra',
    'bad"quote.tif,1',
    '"unclosed.tif,1',
    '/rooted.tif,1',
    'ok/c.png,1',
    'ok/d.tif,three',
    'ok/e.tif,0',
    'ok/$(Cluster).tif,1',
    "ok/it's.tif,1",
    'ok/f.tif',
    'ok/g.tif,3',
  ].join('\n');
  const { rows, rejected } = parseManifest(text);
  assert.deepEqual(rows.map((r) => r.key), ['ok/a.tif', 'ok/g.tif']);
  const reasons = Object.fromEntries(rejected.map((r) => [r.raw, r.reason]));
  assert.match(reasons['ok/b.tif,1,extra']!, /expected 2 columns/);
  assert.match(reasons['bad"quote.tif,1']!, /not valid CSV/);
  assert.match(reasons['"unclosed.tif,1']!, /not valid CSV/);
  assert.match(reasons['/rooted.tif,1']!, /starts with "\/"/);
  assert.match(reasons['ok/c.png,1']!, /does not end in \.tif/);
  assert.match(reasons['ok/d.tif,three']!, /not a whole number/);
  assert.match(reasons['ok/e.tif,0']!, /between 1 and 255/);
  assert.match(reasons['ok/$(Cluster).tif,1']!, /macro/);
  assert.match(reasons["ok/it's.tif,1"]!, /single quote/);
  assert.match(reasons['ok/f.tif']!, /expected 2 columns/);
  assert.deepEqual(rejected.map((r) => r.line), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
});

test('state CSVs hold the rows exactly as the user wrote them', () => {
  const lines = readManifestLines('"a/two words.tif", 3\r\n\r\n\nx.tif,1,extra');
  assert.deepEqual(lines.map((l) => l.line), [1, 4]);
  assert.equal(manifestCsv(lines).toString('utf8'), '"a/two words.tif", 3\nx.tif,1,extra\n');
});

test('rows that are not UTF-8 (Latin-1 from a spreadsheet, stray binary) come back byte for byte, with the reason', () => {
  const latin1 = Buffer.from('Comt\xe9s/caf\xe9.tif,1', 'latin1');
  const binary = Buffer.from([0x61, 0xff, 0xfe, 0x80, 0x2e, 0x74, 0x69, 0x66, 0x2c, 0x31]);
  const content = Buffer.concat([Buffer.from('\ufeffgood/é.tif,1\n'), latin1, Buffer.from('\r\n'), binary, Buffer.from('\n')]);
  const { rows, rejected } = parseManifest(content);
  assert.deepEqual(rows.map((r) => r.key), ['good/é.tif']);
  assert.deepEqual(rejected.map((r) => [r.line, r.reason]), [
    [2, 'the row is not UTF-8 text (saved as Latin-1?): save the manifest as "CSV UTF-8"'],
    [3, 'the row is not UTF-8 text (saved as Latin-1?): save the manifest as "CSV UTF-8"'],
  ]);
  assert.ok(manifestCsv(rejected).equals(Buffer.concat([latin1, Buffer.from('\n'), binary, Buffer.from('\n')])));
  // A UTF-16 file (spreadsheet "Unicode text") is not taken for a manifest at all, so it is never altered.
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a.tif,1\r\n', 'utf16le')]);
  assert.deepEqual(manifestVerdict(utf16.length, utf16), { manifest: false, reason: 'it is UTF-16 text: save the manifest as "CSV UTF-8"' });
});

test('an object is a manifest when it is text naming .tif images; images and data CSVs are not', () => {
  const verdict = (text: string | Buffer, size?: number) => {
    const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
    return manifestVerdict(size ?? bytes.length, bytes);
  };
  assert.deepEqual(verdict('Counties/WI/Wood/1band.tif,1\n'), { manifest: true });
  assert.deepEqual(verdict('a.TIF,3\r\nbad row\n'), { manifest: true }, 'bad rows still come back in the failed CSV');
  assert.deepEqual(verdict('"Eau Claire/a.tif",1'), { manifest: true });
  assert.deepEqual(verdict('Comté/caf\xe9.tif,1\n'), { manifest: true }, 'Latin-1 bytes are text too');
  assert.deepEqual(verdict('a.tif\n'), { manifest: true }, 'a missing band column is a bad row, not a reason to ignore the file');
  assert.deepEqual(verdict(''), { manifest: true }, 'an empty manifest is settled, not ignored');
  assert.deepEqual(verdict('\n  \n'), { manifest: true });
  assert.deepEqual(verdict('name,price\nwidget,3\n'), { manifest: false, reason: 'no line names a .tif image in its first column' });
  assert.deepEqual(verdict(Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00])), { manifest: false, reason: 'it is not text: it holds NUL bytes, as images do' });
  assert.equal(verdict('a.tif,1\n', MAX_MANIFEST_BYTES + 1).manifest, false);
});

test('rows ending in empty columns, as spreadsheets write them, convert like any other', () => {
  const { rows, rejected } = parseManifest('a.tif,1,\nb.tif,3,,\nc.tif,4, \nd.tif,1,extra\n');
  assert.deepEqual(rows.map((r) => [r.key, r.bands, r.raw]), [['a.tif', 1, 'a.tif,1,'], ['b.tif', 3, 'b.tif,3,,'], ['c.tif', 4, 'c.tif,4, ']]);
  assert.deepEqual(rejected.map((r) => [r.raw, r.reason]), [['d.tif,1,extra', 'expected 2 columns (image key, band count)']]);
});

test('each line is split into fields as csv-parse splits it, with its messages', () => {
  // What the manifest reader called for each line before it read a manifest in one pass.
  const csvParse = (line: string): string[] | { error: string } => {
    try {
      return (parse(line, { relax_column_count: true }) as string[][])[0] ?? [];
    } catch (err) {
      return { error: (err as Error).message.replace(/ at line \d+/, '') };
    }
  };
  const cases = [
    'a.tif,1', 'a,b,c', ',', ',,', 'a,', '"a.tif",1', '"a, b.tif",1', '"a""b",1', '""', '""""', '"""', '"a""',
    '"a"b,1', '"a" ,1', 'a"b,1', 'a,b"c', 'a,"b', '"a,1', 'x,"y"z', '"é"é,1', '"😀"😀,1', 'a,\uFEFF"b"', '\uFEFF"a"',
    '"a"\u0000b,1', '"a"\u0000"b', '""\u0000"x"', 'a,"",b', '"a",,"b"',
  ];
  // And lines made at random of the characters that matter (a fixed seed: the same lines every run).
  let seed = 20261125;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  const atoms = ['"', '"', '""', ',', ',', 'a', 'b.tif', ' ', '1', '\u0000', 'é', '😀', '\uFEFF'];
  for (let i = 0; i < 20000; i++) {
    let line = '';
    for (let n = Math.floor(random() * 10) + 1; n > 0; n--) line += atoms[Math.floor(random() * atoms.length)];
    cases.push(line);
  }
  for (const line of cases) assert.deepEqual(csvFields(line), csvParse(line), JSON.stringify(line));
});

test('lines are numbered as written, whatever ends them, and keep their bytes', () => {
  const content = Buffer.from('a.tif,1\r\rb.tif,2\r\n\nc.tif,3\n\r\ufeffd.tif,4\r\n\t \ne.tif,5', 'utf8');
  const { rows, rejected } = parseManifest(content);
  assert.deepEqual(rejected, []);
  assert.deepEqual(rows.map((r) => [r.line, r.key, r.bands]), [[1, 'a.tif', 1], [3, 'b.tif', 2], [5, 'c.tif', 3], [7, 'd.tif', 4], [9, 'e.tif', 5]]);
  // A BOM opening a later line is not part of its text, but stays in its bytes.
  assert.equal(rows[3]!.raw, 'd.tif,4');
  assert.ok(rows[3]!.bytes.equals(Buffer.from('\ufeffd.tif,4')));
  assert.ok(manifestCsv(rows).equals(Buffer.from('a.tif,1\nb.tif,2\nc.tif,3\n\ufeffd.tif,4\ne.tif,5\n')));
});
