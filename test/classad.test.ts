import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClassAd,
  ClassAdSyntaxError,
  matchesConstraint,
  parseExpr,
  unparse,
  type Literal,
  type Value,
} from './standin/classad.ts';

const NOW = 1_700_000_000;

/** Evaluates `text` against an ad holding `attrs`, at a fixed clock. */
function ev(text: string, attrs: Record<string, Literal> = {}): Value {
  return new ClassAd(attrs).evaluateExpr(text, { now: NOW });
}

const T: Value = { type: 'boolean', value: true };
const F: Value = { type: 'boolean', value: false };
const UNDEF: Value = { type: 'undefined' };
const ERR: Value = { type: 'error' };
const int = (value: number): Value => ({ type: 'integer', value });
const real = (value: number): Value => ({ type: 'real', value });
const str = (value: string): Value => ({ type: 'string', value });

test('== compares strings case-insensitively, =?= case-sensitively', () => {
  const ad = new ClassAd({ JobBatchName: 'COG-Pipeline-DAG-*raw.csv' });
  assert.equal(matchesConstraint('JobBatchName == "cog-pipeline-dag-*RAW.csv"', ad), true);
  assert.equal(matchesConstraint('JobBatchName =?= "cog-pipeline-dag-*RAW.csv"', ad), false);
  assert.equal(matchesConstraint('JobBatchName =?= "COG-Pipeline-DAG-*raw.csv"', ad), true);
  assert.equal(matchesConstraint('JobBatchName != "COG-PIPELINE-DAG-*RAW.CSV"', ad), false);
  assert.equal(matchesConstraint('JobBatchName =!= "COG-PIPELINE-DAG-*RAW.CSV"', ad), true);
  assert.equal(matchesConstraint('jobbatchname is "COG-Pipeline-DAG-*raw.csv"', ad), true);
  // String ordering is case-insensitive too (strcasecmp).
  assert.deepEqual(ev('"abc" < "ABD"'), T);
});

test('=?= undefined distinguishes absent attributes; == undefined never matches', () => {
  const plain = new ClassAd({ ClusterId: 7 });
  const dagNode = new ClassAd({ ClusterId: 8, DAGManJobId: 3 });
  assert.equal(matchesConstraint('DAGManJobId =?= undefined', plain), true);
  assert.equal(matchesConstraint('DAGManJobId =?= undefined', dagNode), false);
  assert.equal(matchesConstraint('DAGManJobId isnt undefined', dagNode), true);
  assert.deepEqual(plain.evaluateExpr('DAGManJobId == undefined'), UNDEF);
  assert.equal(matchesConstraint('DAGManJobId == undefined', plain), false);
});

test('ClusterId == 5 && ProcId == 0 selects exactly that job', () => {
  const constraint = parseExpr('ClusterId == 5 && ProcId == 0');
  assert.equal(matchesConstraint(constraint, new ClassAd({ ClusterId: 5, ProcId: 0 })), true);
  assert.equal(matchesConstraint(constraint, new ClassAd({ ClusterId: 5, ProcId: 1 })), false);
  assert.equal(matchesConstraint(constraint, new ClassAd({ ClusterId: 6, ProcId: 0 })), false);
  assert.equal(matchesConstraint(constraint, new ClassAd({ ProcId: 0 })), false);
});

test('exponential hold back-off release expression', () => {
  const release = '(time() - EnteredCurrentStatus) >= ((((ClusterId % (100/10)) * 60) + 60) * pow(2, NumHolds))';
  // ClusterId 123: 123 % 10 = 3 -> (3*60 + 60) * 2^2 = 960 seconds.
  const ad = new ClassAd({ ClusterId: 123, NumHolds: 2, EnteredCurrentStatus: NOW - 960 });
  assert.deepEqual(ad.evaluateExpr('((((ClusterId % (100/10)) * 60) + 60) * pow(2, NumHolds))'), int(960));
  assert.equal(matchesConstraint(release, ad, { now: NOW }), true);
  assert.equal(matchesConstraint(release, ad, { now: NOW - 1 }), false);
  ad.set('NumHolds', 3); // now 1920 seconds are needed
  assert.equal(matchesConstraint(release, ad, { now: NOW }), false);
  assert.equal(matchesConstraint(release, ad, { now: NOW + 960 }), true);
  // Without EnteredCurrentStatus the comparison is undefined, which never matches.
  ad.delete('EnteredCurrentStatus');
  assert.deepEqual(ad.evaluateExpr(release, { now: NOW }), UNDEF);
  assert.equal(matchesConstraint(release, ad, { now: NOW }), false);
});

test('NumHolds > 5', () => {
  assert.equal(matchesConstraint('NumHolds > 5', new ClassAd({ NumHolds: 6 })), true);
  assert.equal(matchesConstraint('NumHolds > 5', new ClassAd({ NumHolds: 5 })), false);
  assert.equal(matchesConstraint('NumHolds > 5', new ClassAd({ NumHolds: 5.5 })), true);
  assert.equal(matchesConstraint('NumHolds > 5', new ClassAd({})), false);
  assert.equal(matchesConstraint('NumHolds > 5', new ClassAd({ NumHolds: 'six' })), false);
  assert.deepEqual(ev('NumHolds > 5', { NumHolds: 'six' }), ERR);
});

test('exit-code success expression', () => {
  const ok = 'ExitSignal =?= 11 || (ExitCode =!= UNDEFINED && ExitCode >=0 && ExitCode <= 2)';
  const cases: [Record<string, Literal>, boolean][] = [
    [{ ExitSignal: 11 }, true],
    [{ ExitSignal: 9 }, false],
    [{ ExitCode: 0 }, true],
    [{ ExitCode: 2 }, true],
    [{ ExitCode: 3 }, false],
    [{ ExitCode: -1 }, false],
    [{}, false],
    [{ ExitSignal: 11.0 + 0.5 }, false],
  ];
  for (const [attrs, expected] of cases) {
    assert.equal(matchesConstraint(ok, new ClassAd(attrs)), expected, JSON.stringify(attrs));
  }
  // Neither attribute: false || (false && ...) is a definite false, not undefined.
  assert.deepEqual(ev(ok), F);
});

test('&& and || are three-valued with short circuit', () => {
  assert.deepEqual(ev('false && undefined'), F);
  assert.deepEqual(ev('undefined && false'), F);
  assert.deepEqual(ev('true && undefined'), UNDEF);
  assert.deepEqual(ev('undefined && true'), UNDEF);
  assert.deepEqual(ev('true || undefined'), T);
  assert.deepEqual(ev('undefined || true'), T);
  assert.deepEqual(ev('undefined || false'), UNDEF);
  assert.deepEqual(ev('false || undefined'), UNDEF);
  assert.deepEqual(ev('false && error'), F);
  assert.deepEqual(ev('true || error'), T);
  assert.deepEqual(ev('error && false'), ERR);
  assert.deepEqual(ev('undefined && error'), ERR);
  // The short circuit skips the right operand entirely: no error from 1/0.
  assert.deepEqual(ev('false && (1/0 == 1)'), F);
  // Strings are not boolean-equivalent; numbers are (old ClassAd semantics).
  assert.deepEqual(ev('true && "yes"'), ERR);
  assert.deepEqual(ev('"yes" || true'), ERR);
  assert.deepEqual(ev('1 && true'), T);
  assert.deepEqual(ev('0 || 2.5'), T);
  assert.deepEqual(ev('0.0 && undefined'), F);
});

test('unary operators', () => {
  assert.deepEqual(ev('!true'), F);
  assert.deepEqual(ev('!undefined'), UNDEF);
  assert.deepEqual(ev('!error'), ERR);
  assert.deepEqual(ev('!"text"'), ERR);
  assert.deepEqual(ev('!0'), T);
  assert.deepEqual(ev('!7'), F);
  assert.deepEqual(ev('-(3)'), int(-3));
  assert.deepEqual(ev('-2.5'), real(-2.5));
  assert.deepEqual(ev('+4'), int(4));
  assert.deepEqual(ev('-"a"'), ERR);
  assert.deepEqual(ev('+true'), ERR);
});

test('arithmetic: integer division truncates, int op real promotes, zero divisors are error', () => {
  assert.deepEqual(ev('7 / 2'), int(3));
  assert.deepEqual(ev('-7 / 2'), int(-3));
  assert.deepEqual(ev('7 % 3'), int(1));
  assert.deepEqual(ev('-7 % 3'), int(-1));
  assert.deepEqual(ev('-6 % 3'), int(0));
  assert.deepEqual(ev('7 / 2.0'), real(3.5));
  assert.deepEqual(ev('2 * 1.5 + 1'), real(4));
  assert.deepEqual(ev('1 - 3 * 2'), int(-5));
  assert.deepEqual(ev('1 / 0'), ERR);
  assert.deepEqual(ev('1 % 0'), ERR);
  assert.deepEqual(ev('1.0 / 0'), ERR);
  assert.deepEqual(ev('5.5 % 2'), ERR); // HTCondor defines no real modulus
  assert.deepEqual(ev('"a" + 1'), ERR);
  assert.deepEqual(ev('{1} + 1'), ERR);
  assert.deepEqual(ev('undefined + 1'), UNDEF);
  assert.deepEqual(ev('undefined + error'), ERR);
  assert.deepEqual(ev('true + 1'), int(2)); // booleans act as 0/1
  assert.deepEqual(ev('true * 2.5'), real(2.5));
});

test('comparisons follow the manual tables', () => {
  assert.deepEqual(ev('10 == 10'), T);
  assert.deepEqual(ev('10 == 5'), F);
  assert.deepEqual(ev('10 == "ABC"'), ERR);
  assert.deepEqual(ev('"ABC" == "abc"'), T);
  assert.deepEqual(ev('10 == UNDEFINED'), UNDEF);
  assert.deepEqual(ev('UNDEFINED == UNDEFINED'), UNDEF);
  assert.deepEqual(ev('10 =?= 10'), T);
  assert.deepEqual(ev('10 =?= 5'), F);
  assert.deepEqual(ev('10 =?= "ABC"'), F);
  assert.deepEqual(ev('"ABC" =?= "abc"'), F);
  assert.deepEqual(ev('10 =?= UNDEFINED'), F);
  assert.deepEqual(ev('UNDEFINED =?= UNDEFINED'), T);
  assert.deepEqual(ev('error =?= error'), T);
  assert.deepEqual(ev('10 != "ABC"'), ERR);
  assert.deepEqual(ev('10 =!= "ABC"'), T);
  assert.deepEqual(ev('"ABC" =!= "abc"'), T);
  assert.deepEqual(ev('UNDEFINED =!= UNDEFINED'), F);
  // Numbers promote for ==, <, ...; booleans compare as 0/1; =?= never converts.
  assert.deepEqual(ev('10 == 10.0'), T);
  assert.deepEqual(ev('10 =?= 10.0'), F);
  assert.deepEqual(ev('true == 1'), T);
  assert.deepEqual(ev('true =?= 1'), F);
  assert.deepEqual(ev('false < 1'), T);
  assert.deepEqual(ev('2 >= 2.0'), T);
  assert.deepEqual(ev('3 < undefined'), UNDEF);
  assert.deepEqual(ev('{1} == {1}'), ERR);
});

test('ternary and elvis operators', () => {
  assert.deepEqual(ev('x > 1 ? "big" : "small"', { x: 2 }), str('big'));
  assert.deepEqual(ev('x > 1 ? "big" : "small"', { x: 0 }), str('small'));
  assert.deepEqual(ev('x > 1 ? "big" : "small"'), UNDEF);
  assert.deepEqual(ev('"s" ? 1 : 2'), ERR);
  assert.deepEqual(ev('1 ? 2 : 1/0'), int(2)); // only the chosen branch is evaluated
  assert.deepEqual(ev('Missing ?: 7'), int(7));
  assert.deepEqual(ev('Present ?: 7', { Present: 0 }), int(0));
});

test('built-in functions', () => {
  assert.deepEqual(ev('time()'), int(NOW));
  assert.deepEqual(ev('TIME()'), int(NOW));
  assert.deepEqual(ev('CurrentTime'), int(NOW)); // implicit attribute under old semantics
  assert.deepEqual(ev('pow(2, 10)'), int(1024));
  assert.deepEqual(ev('pow(2, -1)'), real(0.5));
  assert.deepEqual(ev('pow(2.0, 2)'), real(4));
  assert.deepEqual(ev('pow(2, Missing)'), ERR);
  assert.deepEqual(ev('ifThenElse(x > 1, "a", 1/0)', { x: 5 }), str('a'));
  assert.deepEqual(ev('IFTHENELSE(Missing, 1, 2)'), UNDEF);
  assert.deepEqual(ev('ifThenElse(0.0, 1, 2)'), int(2));
  assert.deepEqual(ev('ifThenElse("x", 1, 2)'), ERR);
  assert.deepEqual(ev('ifThenElse(true, 1)'), ERR);

  assert.deepEqual(ev('isUndefined(Missing)'), T);
  assert.deepEqual(ev('isUndefined(0)'), F);
  assert.deepEqual(ev('isError(1/0)'), T);
  assert.deepEqual(ev('isString("s")'), T);
  assert.deepEqual(ev('isInteger(3)'), T);
  assert.deepEqual(ev('isInteger(3.0)'), F);
  assert.deepEqual(ev('isReal(3.0)'), T);
  assert.deepEqual(ev('isBoolean(1 == 1)'), T);
  assert.deepEqual(ev('isBoolean(1)'), F);
  assert.deepEqual(ev('isList({})'), T);
  assert.deepEqual(ev('isString()'), ERR);

  assert.deepEqual(ev('strcat("cog-", ClusterId, ".", true)', { ClusterId: 12 }), str('cog-12.true'));
  assert.deepEqual(ev('strcat("a", 1.5)'), str('a1.5'));
  assert.deepEqual(ev('StrCat("a", Missing)'), UNDEF);
  assert.deepEqual(ev('strcat("a", error)'), ERR);
  assert.deepEqual(ev('toLower("AbC")'), str('abc'));
  assert.deepEqual(ev('tolower(Missing)'), UNDEF);
  assert.deepEqual(ev('toUpper("AbC")'), str('ABC'));
  assert.deepEqual(ev('TOUPPER(12)'), str('12'));
  assert.deepEqual(ev('size("abc")'), int(3));
  assert.deepEqual(ev('size({1, 2})'), int(2));
  assert.deepEqual(ev('size(3)'), ERR);

  assert.deepEqual(ev('substr("abcdef", 2)'), str('cdef'));
  assert.deepEqual(ev('substr("abcdef", 1, 2)'), str('bc'));
  assert.deepEqual(ev('substr("abcdef", -2)'), str('ef'));
  assert.deepEqual(ev('substr("abcdef", 1, -2)'), str('bcd'));
  assert.deepEqual(ev('substr("abcdef", 10)'), str(''));
  assert.deepEqual(ev('substr("abcdef", 1, 0)'), str(''));
  assert.deepEqual(ev('substr(5, 1)'), ERR);

  assert.deepEqual(ev('int(3.9)'), int(3));
  assert.deepEqual(ev('int(-3.9)'), int(-3));
  assert.deepEqual(ev('int("42abc")'), int(42));
  assert.deepEqual(ev('int("abc")'), ERR);
  assert.deepEqual(ev('int(true)'), int(1));
  assert.deepEqual(ev('real(3)'), real(3));
  assert.deepEqual(ev('real("2.5e1")'), real(25));
  assert.deepEqual(ev('floor(2.7)'), int(2));
  assert.deepEqual(ev('floor(-2.5)'), int(-3));
  assert.deepEqual(ev('ceiling(2.1)'), int(3));
  assert.deepEqual(ev('round(2.5)'), int(2)); // rint: halves go to even
  assert.deepEqual(ev('round(3.5)'), int(4));
  assert.deepEqual(ev('round(4)'), int(4));
  assert.deepEqual(ev('floor(Missing)'), ERR);

  assert.deepEqual(ev('min({3, 1, 2})'), int(1));
  assert.deepEqual(ev('max({1, 2.5, 2})'), real(2.5));
  assert.deepEqual(ev('max({})'), UNDEF);
  assert.deepEqual(ev('min({1, "a"})'), ERR);
  assert.deepEqual(ev('min(1, 2)'), ERR); // HTCondor's min/max take a single list

  assert.deepEqual(ev('regexp("^cog-.*\\\\.csv$", "COG-batch.CSV", "i")'), T);
  assert.deepEqual(ev('regexp("^cog-.*\\\\.csv$", "COG-batch.CSV")'), F);
  assert.deepEqual(ev('regexp("raw", "x-raw-y")'), T); // unanchored search
  assert.deepEqual(ev('regexp("(", "x")'), ERR);
  assert.deepEqual(ev('regexp("a", Missing)'), UNDEF);
  assert.deepEqual(ev('regexp("a", 5)'), ERR);

  assert.deepEqual(ev('stringListMember("b", "a, b,c")'), T);
  assert.deepEqual(ev('stringListMember("B", "a,b")'), F);
  assert.deepEqual(ev('stringListIMember("B", "a,b")'), T);
  assert.deepEqual(ev('stringListMember("b", "a;b", ";")'), T);
  assert.deepEqual(ev('stringListMember("", "a,,b")'), F);
  assert.deepEqual(ev('stringListMember(1, "1,2")'), ERR);
  assert.deepEqual(ev('stringListMember(Missing, Other)'), UNDEF);
  assert.deepEqual(ev('member(2, {1, 2, 3})'), T);
  assert.deepEqual(ev('member("B", {"a", "b"})'), T); // == is case-insensitive
  assert.deepEqual(ev('member(4, {1, 2, 3})'), F);
  assert.deepEqual(ev('member(Missing, {1})'), UNDEF);
  assert.deepEqual(ev('member(1, 1)'), ERR);

  assert.deepEqual(ev('noSuchFunction(1)'), ERR);
  assert.equal(matchesConstraint('noSuchFunction(1)', new ClassAd()), false);
});

test('attribute references: case-insensitive, MY. scope, TARGET. undefined, cycles are error', () => {
  const ad = new ClassAd({ RequestMemory: 2048, Factor: 2 });
  ad.setExpr('Doubled', 'requestmemory * FACTOR');
  ad.setExpr('A', 'B + 1');
  ad.setExpr('B', 'A + 1');
  ad.setExpr('Self', 'Self');
  assert.deepEqual(ad.evaluate('doubled'), int(4096));
  assert.deepEqual(ad.evaluateExpr('MY.RequestMemory'), int(2048));
  assert.deepEqual(ad.evaluateExpr('my.Doubled > 4000'), T);
  assert.deepEqual(ad.evaluateExpr('TARGET.RequestMemory'), UNDEF);
  assert.deepEqual(ad.evaluate('A'), ERR);
  assert.deepEqual(ad.evaluate('Self'), ERR);
  assert.deepEqual(ad.evaluate('Missing'), UNDEF);
  // A value referenced twice in one expression is not a cycle.
  assert.deepEqual(ad.evaluateExpr('Factor + Factor * Factor'), int(6));
});

test('ClassAd keeps the first spelling of a name and looks names up case-insensitively', () => {
  const ad = new ClassAd({ JobStatus: 1 });
  ad.set('JOBSTATUS', 5).set('HoldReason', 'disk full');
  assert.deepEqual(ad.names(), ['JobStatus', 'HoldReason']);
  assert.equal(ad.has('jobstatus'), true);
  assert.deepEqual(ad.evaluate('jobStatus'), int(5));
  assert.deepEqual(ad.get('HOLDREASON'), parseExpr('"disk full"'));
  assert.equal(ad.delete('holdreason'), true);
  assert.equal(ad.delete('holdreason'), false);
  assert.equal(ad.has('HoldReason'), false);
  assert.equal(ad.get('HoldReason'), undefined);
});

test('parse and unparse produce canonical, stable text', () => {
  const cases: [string, string][] = [
    ['ClusterId==5&&ProcId==0', 'ClusterId == 5 && ProcId == 0'],
    [
      '(time() - EnteredCurrentStatus) >= ((((ClusterId % (100/10)) * 60) + 60) * pow(2, NumHolds))',
      '(time() - EnteredCurrentStatus) >= ((((ClusterId % (100 / 10)) * 60) + 60) * pow(2,NumHolds))',
    ],
    ['a is UNDEFINED || b isnt Error', 'a =?= undefined || b =!= error'],
    ['TRUE && False', 'true && false'],
    ['my.x + Target.y', 'MY.x + TARGET.y'],
    ['{ 1, 2.5, "s" }', '{ 1,2.5,"s" }'],
    ['x ?: -y', 'x ?: -y'],
    ['c ? 1 : 2', 'c ? 1 : 2'],
    ['!(a)', '!(a)'],
    ['1.0 + 1e3 + .5', '1.0 + 1000.0 + 0.5'],
    ['"tab\\there \\"q\\" back\\\\slash \\101"', '"tab\\there \\"q\\" back\\\\slash A"'],
  ];
  for (const [input, canonical] of cases) {
    const text = unparse(parseExpr(input));
    assert.equal(text, canonical);
    assert.deepEqual(parseExpr(text), parseExpr(input), `re-parse of ${text}`);
  }
  // Escapes decode to the real characters.
  assert.deepEqual(ev('"a\\nb\\\\c\\"d"'), str('a\nb\\c"d'));
  // Precedence: * binds tighter than +, && tighter than ||, ?: is right-associative.
  assert.deepEqual(ev('1 + 2 * 3'), int(7));
  assert.deepEqual(ev('true || false && false'), T);
  assert.deepEqual(ev('false ? 1 : false ? 2 : 3'), int(3));
  assert.deepEqual(ev('2 < 3 == true'), T);
});

test('syntax errors name the position and the offending text', () => {
  const cases: [string, number, string][] = [
    ['ClusterId ==', 12, ''],
    ['JobStatus = 5', 10, '='],
    ['(a', 2, ''],
    ['"unterminated', 0, '"unterminated'],
    ['a @ b', 2, '@'],
    ['f(1,', 4, ''],
    ['{1 2}', 3, '2'],
    ['a && && b', 5, '&&'],
    ['ClusterId == 5 & ProcId == 0', 15, '&'],
    ['a b', 2, 'b'],
    ['', 0, ''],
    ['Job.Status', 0, 'Job'],
    ['"bad \\0 nul"', 5, '\\0'],
  ];
  for (const [input, position, near] of cases) {
    assert.throws(
      () => parseExpr(input),
      (e: unknown) => {
        assert.ok(e instanceof ClassAdSyntaxError, `${input}: ${String(e)}`);
        assert.equal(e.position, position, input);
        assert.equal(e.near, near, input);
        assert.equal(e.input, input);
        assert.match(e.message, new RegExp(`at position ${position} `));
        assert.ok(e.message.includes(near === '' ? 'end of input' : JSON.stringify(near)), e.message);
        return true;
      },
    );
  }
  assert.throws(() => new ClassAd().setExpr('X', 'a ='), ClassAdSyntaxError);
  assert.throws(() => matchesConstraint('ClusterId ==', new ClassAd()), ClassAdSyntaxError);
});

test('matchesConstraint treats non-zero numbers as true and everything else non-boolean as false', () => {
  const ad = new ClassAd({ ClusterId: 5, Zero: 0, Ratio: 0.5, Name: 'x', Items: [1] });
  assert.equal(matchesConstraint('ClusterId', ad), true);
  assert.equal(matchesConstraint('Ratio', ad), true);
  assert.equal(matchesConstraint('Zero', ad), false);
  assert.equal(matchesConstraint('Name', ad), false);
  assert.equal(matchesConstraint('Items', ad), false);
  assert.equal(matchesConstraint('Missing', ad), false);
  assert.equal(matchesConstraint('1/0', ad), false);
  assert.equal(matchesConstraint('true', ad), true);
});

test('toJSON gives the golang-htcondor form and honours a projection', () => {
  const ad = new ClassAd({
    ClusterId: 12,
    Rank: 0.5,
    Owner: 'cog',
    OnExitRemove: true,
    DAGManJobId: null,
    Args: ['a', 2],
  });
  ad.setExpr('Requirements', 'TARGET.Memory >= RequestMemory && OpSys == "LINUX"');
  ad.setExpr('Scaled', '-1');
  ad.setExpr('Broken', 'error');
  ad.set('Mixed', parseExpr('{ 1, x + 1 }'));
  assert.deepEqual(ad.toJSON(), {
    ClusterId: 12,
    Rank: 0.5,
    Owner: 'cog',
    OnExitRemove: true,
    DAGManJobId: null,
    Args: ['a', 2],
    Requirements: '/Expr(TARGET.Memory >= RequestMemory && OpSys == "LINUX")/',
    Scaled: '/Expr(-1)/',
    Broken: '/Expr(error)/',
    Mixed: [1, '/Expr(x + 1)/'],
  });
  assert.deepEqual(ad.toJSON(['owner', 'CLUSTERID', 'NoSuchAttr']), { ClusterId: 12, Owner: 'cog' });
  assert.deepEqual(ad.toJSON([]), {});
  // JSON.stringify passes a key string to toJSON, which must not act as a projection.
  assert.deepEqual(JSON.parse(JSON.stringify({ job: ad })).job, ad.toJSON());
});

test('fromJSON inverts toJSON', () => {
  const ad = new ClassAd({ ClusterId: 12, Rank: 0.5, Owner: 'cog', Done: false, Gone: null, Tags: ['x', 1] });
  ad.setExpr('PeriodicRelease', '(NumHolds < 3) && (time() - EnteredCurrentStatus > 600)');
  ad.setExpr('Label', 'strcat("job-", ClusterId)');
  const wire = JSON.stringify(ad);
  const back = ClassAd.fromJSON(JSON.parse(wire) as Record<string, never>);
  assert.deepEqual(back.toJSON(), ad.toJSON());
  assert.equal(JSON.stringify(back), wire);
  assert.deepEqual(back.names(), ad.names());
  assert.deepEqual(back.evaluate('Label'), str('job-12'));
  assert.deepEqual(back.evaluate('Rank'), real(0.5));
  assert.deepEqual(back.evaluate('Gone'), UNDEF);
  assert.deepEqual(back.get('PeriodicRelease'), ad.get('PeriodicRelease'));
  // A JSON number without a fraction reads back as an integer, as in golang-htcondor.
  assert.deepEqual(ClassAd.fromJSON({ X: 2.0 }).evaluate('X'), int(2));
  assert.throws(() => ClassAd.fromJSON({ X: '/Expr(a ==)/' }), ClassAdSyntaxError);
  assert.throws(() => ClassAd.fromJSON({ X: { nested: 1 } }), TypeError);
});

test('with a target ad: TARGET.x is the target\'s, unscoped names fall back to it, MY.x does not', () => {
  const job = new ClassAd({ RequestMemory: 512, Name: 'job' });
  job.setExpr('Requirements', '(TARGET.Arch =!= UNDEFINED) && TARGET.Memory >= RequestMemory && Memory >= 1024');
  job.setExpr('Mine', 'MY.Memory');
  job.setExpr('TheirName', 'TARGET.Name');
  job.setExpr('UnscopedName', 'Name');
  const schedd = new ClassAd({ Arch: 'X86_64', Memory: 2048, Name: 'schedd' });
  assert.deepEqual(job.evaluate('Requirements', { now: NOW, target: schedd }), T);
  assert.deepEqual(job.evaluate('Mine', { target: schedd }), UNDEF);
  assert.deepEqual(job.evaluate('TheirName', { target: schedd }), str('schedd'));
  assert.deepEqual(job.evaluate('UnscopedName', { target: schedd }), str('job'), 'the ad\'s own attribute wins');
  // Without a target (condor_q, job policy) TARGET is undefined, as before.
  assert.deepEqual(job.evaluate('Requirements', { now: NOW }), F, 'UNDEFINED =!= UNDEFINED is false');
  assert.deepEqual(job.evaluateExpr('TARGET.Memory >= RequestMemory', { now: NOW }), UNDEF);
  // A missing target attribute is undefined: HasFileTransfer is not in a schedd's ad.
  assert.deepEqual(job.evaluateExpr('TARGET.HasFileTransfer', { target: schedd }), UNDEF);
  assert.deepEqual(job.evaluateExpr('(TARGET.Arch =!= UNDEFINED) && TARGET.HasFileTransfer', { target: schedd }), UNDEF);
  assert.equal(matchesConstraint('TARGET.Memory > 1000', job, { target: schedd }), true);
});

test('an attribute of the target ad is evaluated with the roles swapped; cycles across the two ads are errors', () => {
  const job = new ClassAd({ RequestCpus: 4, Owner: 'cog' });
  job.setExpr('Check', 'TARGET.Start');
  job.setExpr('Loop', 'TARGET.Back');
  const schedd = new ClassAd({ Cpus: 8, TotalLocalJobsRunning: 3 });
  // In the schedd's expression MY is the schedd and TARGET the job.
  schedd.setExpr('Start', 'TotalLocalJobsRunning < 200 && MY.Cpus >= TARGET.RequestCpus && Owner == "cog"');
  schedd.setExpr('Back', 'TARGET.Loop');
  assert.deepEqual(job.evaluate('Check', { target: schedd }), T);
  assert.deepEqual(schedd.evaluate('Start', { target: job }), T);
  assert.deepEqual(job.evaluate('Loop', { target: schedd }), ERR);
  assert.deepEqual(schedd.evaluate('Start'), UNDEF, 'without the job as target, TARGET.RequestCpus is undefined');
});
