import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileGlob, literalPrefix, matchesGlob } from '../lib/glob.ts';

// Expected values were checked against Python's fnmatch.fnmatchcase, the old tool's matcher.
const cases: Array<[key: string, pattern: string, expected: boolean]> = [
  ['Counties/WI/batch1-raw.csv', '*raw.csv', true],
  ['raw.csv', '*raw.csv', true],
  ['Counties/WI/batch1-RAW.csv', '*raw.csv', false],
  ['a/b/c.csv', 'a/*.csv', true],
  ['a/x.csv', 'a/?.csv', true],
  ['a/xy.csv', 'a/?.csv', false],
  ['a/b', 'a?b', true],
  ['.hidden_raw.csv', '*raw.csv', true],
  ['Eau Claire/batch 1_raw.csv', '*raw.csv', true],
  ['batch [1]_raw.csv', 'batch [[]1]_raw.csv', true],
  ['batch [1]_raw.csv', 'batch [1]_raw.csv', false],
  ['batch 1_raw.csv', 'batch [1]_raw.csv', true],
  ['b2_raw.csv', 'b[!1]_raw.csv', true],
  ['b1_raw.csv', 'b[!1]_raw.csv', false],
  ['b^_raw.csv', 'b[^1]_raw.csv', true],
  ['b2_raw.csv', 'b[^1]_raw.csv', false],
  ['x]_raw.csv', 'x[]]_raw.csv', true],
  ['a[b.csv', 'a[b.csv', true],
  ['x{a,b}.csv', 'x{a,b}.csv', true],
  ['xa.csv', 'x{a,b}.csv', false],
  ['!x.csv', '!x.csv', true],
  ['a\\b.csv', 'a\\b.csv', true],
  ['a+b(1).csv', 'a+b(1).csv', true],
  ['a/c/b', 'a**b', true],
  ['a/c/b', 'a*/b', true],
  ['Counties/WI/x_raw.csv', 'Counties/*_raw.csv', true],
  ['Other/WI/x_raw.csv', 'Counties/*_raw.csv', false],
];

for (const [key, pattern, expected] of cases) {
  test(`fnmatch("${key}", "${pattern}") is ${expected}`, () => {
    assert.equal(matchesGlob(key, pattern), expected);
  });
}

test('a compiled glob can be reused across keys', () => {
  const m = compileGlob('*raw.csv');
  assert.deepEqual(
    ['a_raw.csv', 'a_raw.csv.bak', 'x/y/zraw.csv'].map(m),
    [true, false, true],
  );
});

test("the literal prefix is what every matching key starts with, so listing it finds every manifest", () => {
  const cases: Array<[string, string]> = [
    ['*raw.csv', ''],
    ['Counties/WI/*raw.csv', 'Counties/WI/'],
    ['Counties/W?/x.csv', 'Counties/W'],
    ['Counties/[WM]I/*.csv', 'Counties/'],
    ['a\\b*', 'a\\b'],
    ['exact/key_raw.csv', 'exact/key_raw.csv'],
  ];
  for (const [pattern, prefix] of cases) {
    assert.equal(literalPrefix(pattern), prefix, pattern);
  }
  for (const key of ['Counties/WI/batch_raw.csv', 'Counties/MI/a.csv', 'a\\bc', 'exact/key_raw.csv']) {
    for (const [pattern, prefix] of cases) if (matchesGlob(key, pattern)) assert.ok(key.startsWith(prefix), `${pattern} matches ${key}`);
  }
});
