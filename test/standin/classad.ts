/**
 * HTCondor ClassAd expressions for the test stand-in schedd: a tokenizer, a
 * recursive-descent parser, an unparser, an evaluator and a job ad with the
 * golang-htcondor JSON form.
 *
 * Semantics follow HTCondor's ClassAd library (src/classad/operators.cpp,
 * fnCall.cpp) as HTCondor daemons run it, i.e. with STRICT_CLASSAD_EVALUATION
 * left at its default (false), which switches on "old ClassAd" compatibility:
 *  - integers and reals are boolean-equivalent (0 is false, anything else
 *    true) in `!`, `&&`, `||`, `?:`, ifThenElse() and in constraint checks,
 *    so `condor_q -constraint ClusterId` selects every job;
 *  - an unscoped `CurrentTime` the ad does not define evaluates to time().
 * Booleans act as 0/1 in arithmetic and in `==` `<` etc. (`true == 1` is
 * true, `true + 1` is 2); `=?=`/`=!=` never convert types (`true =?= 1` and
 * `10 =?= 10.0` are false). Evaluation is against one ad, as condor_q and the
 * schedd's job policy do (`MY.x` names the ad itself, `TARGET.x` is undefined),
 * or against an ad and a target ad, as matchmaking does (compat_classad.cpp
 * EvalBool(name, my, target), which the schedd's IsLocalJobEligibleToRun uses):
 * `TARGET.x` is looked up in the target ad, an unscoped name the ad does not
 * define falls back to the target ad, and an attribute of the target ad is
 * evaluated with the roles swapped (its `MY` is the target, its `TARGET` the ad).
 *
 * Deliberate simplifications: no nested ClassAds, subscripts, bitwise
 * operators or time values; real arithmetic that overflows or divides by zero
 * is error (HTCondor only catches +inf); reals unparse in JavaScript's
 * shortest round-trip form; integers are JavaScript numbers (exact to 2^53).
 */

// ---------------------------------------------------------------------------
// Values and syntax trees

export type Value =
  | { readonly type: 'undefined' }
  | { readonly type: 'error' }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'real'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'list'; readonly value: readonly Value[] };

/** A value a literal node can hold; list literals are `list` nodes. */
export type ScalarValue = Exclude<Value, { type: 'list' }>;

export type BinaryOp =
  | '*' | '/' | '%' | '+' | '-'
  | '<' | '<=' | '>' | '>='
  | '==' | '!=' | '=?=' | '=!='
  | '&&' | '||';

/**
 * Expression tree as produced by parseExpr. Parentheses are kept as `paren`
 * nodes (HTCondor does the same), so unparse() reproduces the user's grouping
 * and never needs to add any.
 */
export type Expr =
  | { readonly kind: 'literal'; readonly value: ScalarValue }
  | { readonly kind: 'attr'; readonly name: string; readonly scope?: 'MY' | 'TARGET' }
  | { readonly kind: 'list'; readonly items: readonly Expr[] }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[] }
  | { readonly kind: 'unary'; readonly op: '!' | '-' | '+'; readonly operand: Expr }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  /** `test ? ifTrue : ifFalse`, or `test ?: ifFalse` when ifTrue is absent. */
  | { readonly kind: 'cond'; readonly test: Expr; readonly ifTrue?: Expr; readonly ifFalse: Expr }
  | { readonly kind: 'paren'; readonly inner: Expr };

/** Plain JavaScript data accepted by ClassAd.set: null is `undefined`. */
export type Literal = null | boolean | number | string | readonly Literal[];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface EvalOptions {
  /** Seconds since the epoch used by time() and CurrentTime; defaults to the clock. */
  readonly now?: number;
  /** The other ad of a match (`TARGET`); without it `TARGET.x` is undefined. */
  readonly target?: ClassAd;
}

const UNDEFINED: ScalarValue = { type: 'undefined' };
const ERROR: ScalarValue = { type: 'error' };
const bool = (value: boolean): ScalarValue => ({ type: 'boolean', value });
// `+ 0` turns -0 (from Math.trunc or %) into 0 so equal integers compare equal.
const integer = (value: number): ScalarValue => ({ type: 'integer', value: value + 0 });
const real = (value: number): ScalarValue => ({ type: 'real', value });
const str = (value: string): ScalarValue => ({ type: 'string', value });
const literal = (value: ScalarValue): Expr => ({ kind: 'literal', value });

// ---------------------------------------------------------------------------
// Tokenizer

export class ClassAdSyntaxError extends SyntaxError {
  override readonly name = 'ClassAdSyntaxError';
  /** The whole expression text being parsed. */
  readonly input: string;
  /** 0-based character offset of the problem. */
  readonly position: number;
  /** The offending text ('' at end of input). */
  readonly near: string;

  constructor(problem: string, input: string, position: number, near: string) {
    const where = near === '' ? 'end of input' : `near ${JSON.stringify(near)}`;
    super(`${problem} at position ${position} (${where}) in ClassAd expression ${JSON.stringify(input)}`);
    this.input = input;
    this.position = position;
    this.near = near;
  }
}

type Token =
  | { readonly kind: 'number'; readonly pos: number; readonly text: string; readonly value: ScalarValue }
  | { readonly kind: 'string'; readonly pos: number; readonly text: string; readonly value: string }
  | { readonly kind: 'ident' | 'punct' | 'end'; readonly pos: number; readonly text: string };

// Longest first, so `=?=` wins over `==` and `<=` over `<`.
const PUNCTUATION = [
  '=?=', '=!=', '==', '!=', '<=', '>=', '&&', '||',
  '<', '>', '!', '+', '-', '*', '/', '%', '?', ':', '(', ')', '{', '}', ',', '.',
];
const NUMBER = /(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const IDENTIFIER = /[A-Za-z_][A-Za-z0-9_]*/y;
const STRING_ESCAPES: Record<string, string> = {
  '"': '"', "'": "'", '?': '?', '\\': '\\',
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const sticky = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    return re.exec(input)?.[0];
  };
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i;
    const number = sticky(NUMBER);
    if (number !== undefined) {
      const value = /[.eE]/.test(number) ? real(Number(number)) : integer(Number(number));
      tokens.push({ kind: 'number', pos, text: number, value });
      i += number.length;
      continue;
    }
    const ident = sticky(IDENTIFIER);
    if (ident !== undefined) {
      tokens.push({ kind: 'ident', pos, text: ident });
      i += ident.length;
      continue;
    }
    if (c === '"') {
      const [value, end] = readString(input, pos);
      tokens.push({ kind: 'string', pos, text: input.slice(pos, end), value });
      i = end;
      continue;
    }
    const punct = PUNCTUATION.find((p) => input.startsWith(p, i));
    if (punct === undefined) {
      const hint = c === '=' ? ' (use == to compare)' : c === '&' || c === '|' ? ` (use ${c}${c})` : '';
      throw new ClassAdSyntaxError(`Unexpected character${hint}`, input, pos, c);
    }
    tokens.push({ kind: 'punct', pos, text: punct });
    i += punct.length;
  }
  tokens.push({ kind: 'end', pos: input.length, text: '' });
  return tokens;
}

/** Reads the string literal opening at `start`; returns its value and the index after it. */
function readString(input: string, start: number): [string, number] {
  let value = '';
  let i = start + 1;
  while (i < input.length) {
    const c = input[i]!;
    if (c === '"') return [value, i + 1];
    if (c !== '\\' || i + 1 >= input.length) {
      value += c;
      i++;
      continue;
    }
    const next = input[i + 1]!;
    const octal = /^[0-7]{1,3}/.exec(input.slice(i + 1, i + 4))?.[0];
    if (octal !== undefined) {
      // Like HTCondor, a third octal digit only counts while the value stays below 0x100.
      const digits = octal.length === 3 && octal[0]! > '3' ? octal.slice(0, 2) : octal;
      const code = parseInt(digits, 8);
      if (code === 0) throw new ClassAdSyntaxError('A string may not contain \\0', input, i, `\\${digits}`);
      value += String.fromCharCode(code);
      i += 1 + digits.length;
    } else {
      // An unknown escape keeps the escaped character and drops the backslash, as HTCondor does.
      value += STRING_ESCAPES[next] ?? next;
      i += 2;
    }
  }
  throw new ClassAdSyntaxError('Unterminated string', input, start, input.slice(start, start + 20));
}

// ---------------------------------------------------------------------------
// Parser (recursive descent, C precedence: ?: < || < && < equality < relational < + - < * / % < unary)

const BINARY_LEVELS: readonly (readonly BinaryOp[])[] = [
  ['||'],
  ['&&'],
  ['==', '!=', '=?=', '=!='],
  ['<', '<=', '>', '>='],
  ['+', '-'],
  ['*', '/', '%'],
];
// Maps, not object literals, so names like "constructor" are not mistaken for keywords.
const WORD_OPERATORS = new Map<string, BinaryOp>([['is', '=?='], ['isnt', '=!=']]);
const KEYWORDS = new Map<string, ScalarValue>([
  ['true', bool(true)],
  ['false', bool(false)],
  ['undefined', UNDEFINED],
  ['error', ERROR],
]);

/** Parses one complete ClassAd expression; throws ClassAdSyntaxError. */
export function parseExpr(text: string): Expr {
  return new Parser(text).parseAll();
}

class Parser {
  private readonly tokens: Token[];
  private index = 0;

  constructor(private readonly input: string) {
    this.tokens = tokenize(input);
  }

  parseAll(): Expr {
    const expr = this.parseConditional();
    const rest = this.peek();
    if (rest.kind !== 'end') this.fail(rest, 'Expected an operator or end of expression');
    return expr;
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index++;
    return token;
  }

  private isPunct(text: string): boolean {
    const token = this.peek();
    return token.kind === 'punct' && token.text === text;
  }

  private expect(text: string): void {
    if (!this.isPunct(text)) this.fail(this.peek(), `Expected "${text}"`);
    this.next();
  }

  private fail(token: Token, problem: string): never {
    throw new ClassAdSyntaxError(problem, this.input, token.pos, token.text);
  }

  private parseConditional(): Expr {
    const test = this.parseBinary(0);
    if (!this.isPunct('?')) return test;
    this.next();
    if (this.isPunct(':')) {
      this.next();
      return { kind: 'cond', test, ifFalse: this.parseConditional() };
    }
    const ifTrue = this.parseConditional();
    this.expect(':');
    return { kind: 'cond', test, ifTrue, ifFalse: this.parseConditional() };
  }

  private parseBinary(level: number): Expr {
    const ops = BINARY_LEVELS[level];
    if (ops === undefined) return this.parseUnary();
    let left = this.parseBinary(level + 1);
    for (let op = this.binaryOperator(ops); op !== undefined; op = this.binaryOperator(ops)) {
      this.next();
      left = { kind: 'binary', op, left, right: this.parseBinary(level + 1) };
    }
    return left;
  }

  /** The operator at the cursor if it belongs to `ops` (`is`/`isnt` are spelled as words). */
  private binaryOperator(ops: readonly BinaryOp[]): BinaryOp | undefined {
    const token = this.peek();
    const op =
      token.kind === 'punct' ? token.text : token.kind === 'ident' ? WORD_OPERATORS.get(token.text.toLowerCase()) : undefined;
    return ops.find((candidate) => candidate === op);
  }

  private parseUnary(): Expr {
    const token = this.peek();
    if (token.kind === 'punct' && (token.text === '!' || token.text === '-' || token.text === '+')) {
      this.next();
      return { kind: 'unary', op: token.text, operand: this.parseUnary() };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Expr {
    const token = this.next();
    switch (token.kind) {
      case 'number':
        return literal(token.value);
      case 'string':
        return literal({ type: 'string', value: token.value });
      case 'ident':
        return this.parseIdentifier(token);
      case 'punct':
        if (token.text === '(') {
          const inner = this.parseConditional();
          this.expect(')');
          return { kind: 'paren', inner };
        }
        if (token.text === '{') return { kind: 'list', items: this.parseSequence('}') };
    }
    return this.fail(token, 'Expected an expression');
  }

  private parseIdentifier(token: Token): Expr {
    const lower = token.text.toLowerCase();
    const keyword = KEYWORDS.get(lower);
    if (keyword !== undefined) return literal(keyword);
    if (WORD_OPERATORS.has(lower)) this.fail(token, 'Expected an expression');
    if (this.isPunct('(')) {
      this.next();
      return { kind: 'call', name: token.text, args: this.parseSequence(')') };
    }
    if (!this.isPunct('.')) return { kind: 'attr', name: token.text };
    if (lower !== 'my' && lower !== 'target') this.fail(token, 'Only MY. and TARGET. scopes are supported');
    this.next();
    const name = this.next();
    if (name.kind !== 'ident' || KEYWORDS.has(name.text.toLowerCase())) {
      this.fail(name, `Expected an attribute name after ${token.text}.`);
    }
    return { kind: 'attr', name: name.text, scope: lower === 'my' ? 'MY' : 'TARGET' };
  }

  /** Comma-separated expressions up to `close`; like HTCondor, a trailing comma is allowed. */
  private parseSequence(close: string): Expr[] {
    const items: Expr[] = [];
    while (!this.isPunct(close)) {
      items.push(this.parseConditional());
      if (this.isPunct(',')) this.next();
      else if (!this.isPunct(close)) this.fail(this.peek(), `Expected "," or "${close}"`);
    }
    this.next();
    return items;
  }
}

// ---------------------------------------------------------------------------
// Unparser (HTCondor's canonical layout: spaces around binary operators,
// `f(a,b)`, `{ a,b }`, `=?=`/`=!=` rather than is/isnt, lower-case keywords)

const OUT_ESCAPES: Record<string, string> = {
  '"': '\\"', '\\': '\\\\', '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v',
};

function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const escape = OUT_ESCAPES[ch];
    if (escape !== undefined) out += escape;
    else if (ch < ' ' || ch === '\x7f') out += `\\${ch.charCodeAt(0).toString(8).padStart(3, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function formatReal(r: number): string {
  if (Number.isNaN(r)) return 'real("NaN")';
  if (!Number.isFinite(r)) return r > 0 ? 'real("INF")' : 'real("-INF")';
  const text = String(r);
  // Keep a '.' or exponent so the text reads back as a real, not an integer.
  return /[.eE]/.test(text) ? text : `${text}.0`;
}

function unparseValue(v: Value): string {
  switch (v.type) {
    case 'undefined':
    case 'error':
      return v.type;
    case 'boolean':
      return String(v.value);
    case 'integer':
      return BigInt(v.value).toString(); // never exponent notation
    case 'real':
      return formatReal(v.value);
    case 'string':
      return quote(v.value);
    case 'list':
      return `{ ${v.value.map(unparseValue).join(',')} }`;
  }
}

/** Canonical text of an expression; parseExpr(unparse(e)) yields an equivalent tree. */
export function unparse(expr: Expr): string {
  switch (expr.kind) {
    case 'literal':
      return unparseValue(expr.value);
    case 'attr':
      return expr.scope ? `${expr.scope}.${expr.name}` : expr.name;
    case 'list':
      return `{ ${expr.items.map(unparse).join(',')} }`;
    case 'call':
      return `${expr.name}(${expr.args.map(unparse).join(',')})`;
    case 'unary':
      return `${expr.op}${unparse(expr.operand)}`;
    case 'binary':
      return `${unparse(expr.left)} ${expr.op} ${unparse(expr.right)}`;
    case 'cond':
      return expr.ifTrue
        ? `${unparse(expr.test)} ? ${unparse(expr.ifTrue)} : ${unparse(expr.ifFalse)}`
        : `${unparse(expr.test)} ?: ${unparse(expr.ifFalse)}`;
    case 'paren':
      return `(${unparse(expr.inner)})`;
  }
}

// ---------------------------------------------------------------------------
// Evaluator

interface EvalContext {
  readonly ad: ClassAd;
  /** The match's other ad, if any. */
  readonly target: ClassAd | undefined;
  readonly now: number;
  /** Per ad, lower-cased names of attributes being evaluated, to turn cycles into error. */
  readonly active: Map<ClassAd, Set<string>>;
}

function evaluate(expr: Expr, ctx: EvalContext): Value {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'paren':
      return evaluate(expr.inner, ctx);
    case 'list':
      return { type: 'list', value: expr.items.map((item) => evaluate(item, ctx)) };
    case 'attr':
      return lookup(expr.name, expr.scope, ctx);
    case 'call': {
      const builtin = BUILTINS.get(expr.name.toLowerCase());
      return builtin ? builtin(expr.args, ctx) : ERROR;
    }
    case 'unary':
      return unaryOp(expr.op, evaluate(expr.operand, ctx));
    case 'binary':
      return expr.op === '&&' || expr.op === '||'
        ? logical(expr.op, expr.left, expr.right, ctx)
        : binaryOp(expr.op, evaluate(expr.left, ctx), evaluate(expr.right, ctx));
    case 'cond':
      return conditional(expr.test, expr.ifTrue, expr.ifFalse, ctx);
  }
}

function lookup(name: string, scope: 'MY' | 'TARGET' | undefined, ctx: EvalContext): Value {
  if (scope === 'TARGET') return ctx.target ? resolve(ctx.target, ctx.ad, name, ctx) : UNDEFINED;
  if (scope === 'MY' || ctx.ad.has(name)) return resolve(ctx.ad, ctx.target, name, ctx);
  // An unscoped name this ad does not define: the target ad's, then CurrentTime.
  if (ctx.target?.has(name)) return resolve(ctx.target, ctx.ad, name, ctx);
  return name.toLowerCase() === 'currenttime' ? integer(ctx.now) : UNDEFINED;
}

/** The value of `ad`'s attribute `name`, evaluated with `ad` as MY and `other` as TARGET. */
function resolve(ad: ClassAd, other: ClassAd | undefined, name: string, ctx: EvalContext): Value {
  const bound = ad.get(name);
  if (bound === undefined) return UNDEFINED;
  const key = name.toLowerCase();
  let active = ctx.active.get(ad);
  if (!active) ctx.active.set(ad, (active = new Set()));
  if (active.has(key)) return ERROR;
  active.add(key);
  try {
    return evaluate(bound, { ad, target: other, now: ctx.now, active: ctx.active });
  } finally {
    active.delete(key);
  }
}

/** Old-ClassAd boolean equivalence: booleans and numbers have a truth value, other values are reported by kind. */
function truth(v: Value): boolean | 'undefined' | 'error' | 'other' {
  switch (v.type) {
    case 'boolean':
      return v.value;
    case 'integer':
    case 'real':
      return v.value !== 0;
    case 'undefined':
    case 'error':
      return v.type;
    default:
      return 'other';
  }
}

function unaryOp(op: '!' | '-' | '+', v: Value): Value {
  if (v.type === 'undefined' || v.type === 'error') return v;
  if (op === '!') {
    const t = truth(v);
    return typeof t === 'boolean' ? bool(!t) : ERROR;
  }
  if (v.type === 'integer') return op === '-' ? integer(-v.value) : v;
  if (v.type === 'real') return op === '-' ? real(-v.value) : v;
  // HTCondor quirk: unary minus negates a boolean; unary plus rejects it.
  return op === '-' && v.type === 'boolean' ? bool(!v.value) : ERROR;
}

/** `&&` / `||`: non-strict three-valued logic with HTCondor's short circuit. */
function logical(op: '&&' | '||', leftExpr: Expr, rightExpr: Expr, ctx: EvalContext): Value {
  // The operand value that decides the result on its own: false for &&, true for ||.
  const decisive = op === '||';
  const left = truth(evaluate(leftExpr, ctx));
  if (left === decisive) return bool(decisive);
  const right = truth(evaluate(rightExpr, ctx));
  if (left === 'other' || right === 'other' || left === 'error') return ERROR;
  if (left === !decisive) return typeof right === 'boolean' ? bool(right) : right === 'error' ? ERROR : UNDEFINED;
  // left is undefined: only a decisive right operand settles it.
  if (right === decisive) return bool(decisive);
  return right === 'error' ? ERROR : UNDEFINED;
}

function conditional(testExpr: Expr, ifTrue: Expr | undefined, ifFalse: Expr, ctx: EvalContext): Value {
  const test = evaluate(testExpr, ctx);
  if (ifTrue === undefined) return test.type === 'undefined' ? evaluate(ifFalse, ctx) : test;
  const t = truth(test);
  if (typeof t === 'boolean') return evaluate(t ? ifTrue : ifFalse, ctx);
  return t === 'undefined' ? UNDEFINED : ERROR;
}

/** Numeric view of a value for arithmetic and comparison; booleans count as 0/1. */
function numeric(v: Value): number | undefined {
  if (v.type === 'integer' || v.type === 'real') return v.value;
  if (v.type === 'boolean') return v.value ? 1 : 0;
  return undefined;
}

function binaryOp(op: Exclude<BinaryOp, '&&' | '||'>, a: Value, b: Value): Value {
  if (op === '=?=' || op === '=!=') {
    const same = identical(a, b);
    return same === 'error' ? ERROR : bool(same === (op === '=?='));
  }
  // Every other operator is strict: error first, then undefined.
  if (a.type === 'error' || b.type === 'error') return ERROR;
  if (a.type === 'undefined' || b.type === 'undefined') return UNDEFINED;
  switch (op) {
    case '*':
    case '/':
    case '%':
    case '+':
    case '-':
      return arithmetic(op, a, b);
    default:
      return compare(op, a, b);
  }
}

/** `=?=`: same type and same value, case-sensitive, no numeric promotion. */
function identical(a: Value, b: Value): boolean | 'error' {
  if (a.type !== b.type) return false;
  if (a.type === 'undefined' || a.type === 'error') return true;
  if (a.type === 'list') return 'error'; // HTCondor does not compare lists
  return a.value === (b as typeof a).value;
}

function arithmetic(op: '*' | '/' | '%' | '+' | '-', a: Value, b: Value): Value {
  const x = numeric(a);
  const y = numeric(b);
  if (x === undefined || y === undefined) return ERROR;
  const isReal = a.type === 'real' || b.type === 'real';
  // HTCondor has no real modulus; integer division or modulus by zero is error.
  if (isReal ? op === '%' : (op === '/' || op === '%') && y === 0) return ERROR;
  const r = compute(op, x, y);
  if (!Number.isFinite(r)) return ERROR; // real division by zero or overflow
  return isReal ? real(r) : integer(op === '/' ? Math.trunc(r) : r);
}

function compute(op: '*' | '/' | '%' | '+' | '-', x: number, y: number): number {
  switch (op) {
    case '*':
      return x * y;
    case '/':
      return x / y;
    case '%':
      return x % y; // truncating, sign of the dividend, like C
    case '+':
      return x + y;
    case '-':
      return x - y;
  }
}

function compare(op: '<' | '<=' | '>' | '>=' | '==' | '!=', a: Value, b: Value): Value {
  if (a.type === 'list' || b.type === 'list') return ERROR;
  if (a.type === 'string' || b.type === 'string') {
    if (a.type !== 'string' || b.type !== 'string') return ERROR;
    return bool(relate(op, asciiLower(a.value), asciiLower(b.value))); // strcasecmp
  }
  return bool(relate(op, numeric(a)!, numeric(b)!));
}

function relate<T extends number | string>(op: '<' | '<=' | '>' | '>=' | '==' | '!=', x: T, y: T): boolean {
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
    case '==':
      return x === y;
    case '!=':
      return x !== y;
  }
}

const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

// ---------------------------------------------------------------------------
// Built-in functions (names are case-insensitive; wrong argument counts give error)

type Builtin = (args: readonly Expr[], ctx: EvalContext) => Value;

function withArgs(min: number, max: number, body: (values: Value[]) => Value): Builtin {
  return (args, ctx) => (args.length < min || args.length > max ? ERROR : body(args.map((a) => evaluate(a, ctx))));
}

const oneArg = (body: (v: Value) => Value): Builtin => withArgs(1, 1, (values) => body(values[0]!));
const typeTest = (type: Value['type']): Builtin => oneArg((v) => bool(v.type === type));

/** C strtod on a prefix of `s`, as HTCondor's int()/real() use; undefined when nothing parses. */
function strtod(s: string): number | undefined {
  const m = /^\s*([+-]?)(?:(inf(?:inity)?|nan)|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/i.exec(s);
  if (!m) return undefined;
  const sign = m[1] === '-' ? -1 : 1;
  const special = m[2]?.toLowerCase();
  if (special !== undefined) return special === 'nan' ? NaN : sign * Infinity;
  return Number(m[0].trim());
}

function toStringValue(v: Value): Value {
  if (v.type === 'undefined' || v.type === 'error' || v.type === 'string') return v;
  return str(unparseValue(v));
}

function toReal(v: Value): Value {
  switch (v.type) {
    case 'undefined':
    case 'real':
      return v;
    case 'integer':
      return real(v.value);
    case 'boolean':
      return real(v.value ? 1 : 0);
    case 'string': {
      const r = strtod(v.value);
      return r === undefined ? ERROR : real(r);
    }
    default:
      return ERROR;
  }
}

function toInteger(v: Value): Value {
  if (v.type === 'integer' || v.type === 'undefined') return v;
  const r = toReal(v);
  return r.type === 'real' && Number.isFinite(r.value) ? integer(Math.trunc(r.value)) : ERROR;
}

/** floor/ceiling/round: integers pass through; anything else goes via real(), where undefined is error. */
function rounding(method: (x: number) => number): Builtin {
  return oneArg((v) => {
    if (v.type === 'integer') return v;
    const r = toReal(v);
    return r.type === 'real' && Number.isFinite(r.value) ? integer(method(r.value)) : ERROR;
  });
}

/** C rint(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** min/max take one list of numbers and return the winning element unchanged. */
function bound(better: (x: number, y: number) => boolean): Builtin {
  return oneArg((list) => {
    if (list.type === 'undefined') return UNDEFINED;
    if (list.type !== 'list') return ERROR;
    let best: Value = UNDEFINED;
    for (const item of list.value) {
      if (item.type !== 'integer' && item.type !== 'real') return ERROR;
      if (best.type === 'undefined' || better(item.value, numeric(best)!)) best = item;
    }
    return best;
  });
}

function pow(base: Value, exponent: Value): Value {
  if (base.type === 'integer' && exponent.type === 'integer' && exponent.value >= 0) {
    const r = base.value ** exponent.value;
    return Number.isFinite(r) ? integer(r) : ERROR;
  }
  const b = toReal(base);
  const e = toReal(exponent);
  return b.type === 'real' && e.type === 'real' ? real(b.value ** e.value) : ERROR;
}

/** strcat: left to right, stopping at the first undefined (result undefined) or error argument. */
function strcat(values: Value[]): Value {
  let out = '';
  for (const v of values) {
    const s = toStringValue(v);
    if (s.type !== 'string') return s;
    out += s.value;
  }
  return str(out);
}

function changeCase(convert: (s: string) => string): Builtin {
  return oneArg((v) => {
    const s = toStringValue(v);
    return s.type === 'string' ? str(convert(s.value)) : s;
  });
}

function size(v: Value): Value {
  if (v.type === 'undefined') return UNDEFINED;
  if (v.type === 'string' || v.type === 'list') return integer(v.value.length);
  return ERROR;
}

/** Perl-like substr: negative offset counts from the end, negative length trims the end. */
function substr(values: Value[]): Value {
  const [s, offset, length] = values;
  if (values.some((v) => v.type === 'undefined')) return UNDEFINED;
  if (s?.type !== 'string' || offset?.type !== 'integer' || (length && length.type !== 'integer')) return ERROR;
  const n = s.value.length;
  const start = Math.max(offset.value < 0 ? n + offset.value : Math.min(offset.value, n), 0);
  const len = length?.value;
  const end = len === undefined ? n : len > 0 ? Math.min(start + len, n) : len === 0 ? start : Math.max(n + len, start);
  return str(s.value.slice(start, end));
}

function regexp(values: Value[]): Value {
  if (values.some((v) => v.type === 'error')) return ERROR;
  if (values.some((v) => v.type === 'undefined')) return UNDEFINED;
  const [pattern, target, options] = values;
  if (pattern?.type !== 'string' || target?.type !== 'string' || (options && options.type !== 'string')) return ERROR;
  // PCRE options i, m, s map onto JavaScript flags; others are ignored, as HTCondor ignores unknown ones.
  const flags = [...new Set((options?.value ?? '').toLowerCase())].filter((f) => 'ims'.includes(f)).join('');
  try {
    return bool(new RegExp(pattern.value, flags).test(target.value));
  } catch {
    return ERROR; // invalid pattern
  }
}

/** stringListMember(item, "a, b, c"[, delimiters]); undefined arguments act as "" unless both are undefined. */
function stringListMember(caseSensitive: boolean): Builtin {
  return withArgs(2, 3, (values) => {
    if (values.some((v) => v.type !== 'string' && v.type !== 'undefined')) return ERROR;
    const [item, list, delims] = values.map((v) => (v.type === 'string' ? v.value : undefined));
    if (item === undefined && list === undefined) return UNDEFINED;
    const separators = delims ?? ', \t\r\n';
    const fold = caseSensitive ? (s: string) => s : asciiLower;
    const members: string[] = [];
    let current = '';
    for (const ch of list ?? '') {
      if (separators.includes(ch)) {
        members.push(current);
        current = '';
      } else {
        current += ch;
      }
    }
    members.push(current);
    const wanted = fold(item ?? '');
    return bool(members.some((m) => m.trim() !== '' && fold(m.trim()) === wanted));
  });
}

/** member(x, list): is some element `==` to x (so strings match case-insensitively). */
function member(x: Value, list: Value): Value {
  if (list.type === 'undefined' || x.type === 'undefined') return UNDEFINED;
  if (list.type !== 'list' || x.type === 'list' || x.type === 'error') return ERROR;
  return bool(
    list.value.some((item) => {
      const equal = binaryOp('==', item, x);
      return equal.type === 'boolean' && equal.value;
    }),
  );
}

const BUILTINS = new Map<string, Builtin>([
  ['time', (args, ctx) => (args.length === 0 ? integer(ctx.now) : ERROR)],
  // Lazy like `?:`: only the chosen branch is evaluated.
  ['ifthenelse', (args, ctx) => (args.length === 3 ? conditional(args[0]!, args[1]!, args[2]!, ctx) : ERROR)],
  ['isundefined', typeTest('undefined')],
  ['iserror', typeTest('error')],
  ['isstring', typeTest('string')],
  ['isinteger', typeTest('integer')],
  ['isreal', typeTest('real')],
  ['isboolean', typeTest('boolean')],
  ['islist', typeTest('list')],
  ['pow', withArgs(2, 2, ([base, exponent]) => pow(base!, exponent!))],
  ['strcat', withArgs(0, Infinity, strcat)],
  ['string', oneArg(toStringValue)],
  ['tolower', changeCase((s) => s.toLowerCase())],
  ['toupper', changeCase((s) => s.toUpperCase())],
  ['size', oneArg(size)],
  ['substr', withArgs(2, 3, substr)],
  ['int', oneArg(toInteger)],
  ['real', oneArg(toReal)],
  ['floor', rounding(Math.floor)],
  ['ceiling', rounding(Math.ceil)],
  ['ceil', rounding(Math.ceil)],
  ['round', rounding(roundHalfEven)],
  ['min', bound((x, y) => x < y)],
  ['max', bound((x, y) => x > y)],
  ['regexp', withArgs(2, 3, regexp)],
  ['stringlistmember', stringListMember(true)],
  ['stringlistimember', stringListMember(false)],
  ['member', withArgs(2, 2, ([x, list]) => member(x!, list!))],
]);

// ---------------------------------------------------------------------------
// Job ad

function literalToExpr(v: Literal): Expr {
  if (v === null) return literal({ type: 'undefined' });
  if (typeof v === 'object') return { kind: 'list', items: v.map(literalToExpr) };
  if (typeof v === 'boolean') return literal({ type: 'boolean', value: v });
  if (typeof v === 'string') return literal({ type: 'string', value: v });
  return literal(Number.isInteger(v) ? { type: 'integer', value: v } : { type: 'real', value: v });
}

/** golang-htcondor JSON: literals as JSON values, lists as arrays, anything else as "/Expr(text)/". */
function exprToJson(expr: Expr): JsonValue {
  if (expr.kind === 'list') return expr.items.map(exprToJson);
  if (expr.kind === 'literal') {
    const v = expr.value;
    if (v.type === 'undefined') return null;
    if (v.type === 'boolean' || v.type === 'integer' || v.type === 'string') return v.value;
    if (v.type === 'real' && Number.isFinite(v.value)) return v.value;
  }
  return `/Expr(${unparse(expr)})/`;
}

function jsonToExpr(json: JsonValue): Expr {
  if (typeof json === 'string') {
    const quoted = /^\/Expr\((.*)\)\/$/s.exec(json);
    return quoted ? parseExpr(quoted[1]!) : literalToExpr(json);
  }
  if (Array.isArray(json)) return { kind: 'list', items: json.map(jsonToExpr) };
  if (json !== null && typeof json === 'object') throw new TypeError('Nested ClassAds are not supported');
  // JSON has one number type: integral numbers read back as integers, as in golang-htcondor.
  return literalToExpr(json);
}

/**
 * A job ad: attribute names are case-insensitive, and the spelling used when an
 * attribute was first set is kept (HTCondor keeps the original key on replace).
 */
export class ClassAd {
  readonly #attrs = new Map<string, { readonly name: string; expr: Expr }>();

  constructor(attrs: Readonly<Record<string, Literal | Expr>> = {}) {
    for (const [name, value] of Object.entries(attrs)) this.set(name, value);
  }

  static fromJSON(json: Readonly<Record<string, JsonValue>>): ClassAd {
    const ad = new ClassAd();
    for (const [name, value] of Object.entries(json)) ad.set(name, jsonToExpr(value));
    return ad;
  }

  /** Binds `name` to a literal (JavaScript data) or an expression tree. */
  set(name: string, value: Literal | Expr): this {
    const expr = typeof value === 'object' && value !== null && 'kind' in value ? value : literalToExpr(value);
    const key = name.toLowerCase();
    const existing = this.#attrs.get(key);
    if (existing) existing.expr = expr;
    else this.#attrs.set(key, { name, expr });
    return this;
  }

  /** Binds `name` to the parsed expression `text`; throws ClassAdSyntaxError. */
  setExpr(name: string, text: string): this {
    return this.set(name, parseExpr(text));
  }

  get(name: string): Expr | undefined {
    return this.#attrs.get(name.toLowerCase())?.expr;
  }

  has(name: string): boolean {
    return this.#attrs.has(name.toLowerCase());
  }

  delete(name: string): boolean {
    return this.#attrs.delete(name.toLowerCase());
  }

  /** Attribute names in their original spelling, in insertion order. */
  names(): string[] {
    return [...this.#attrs.values()].map((a) => a.name);
  }

  /** Value of attribute `name` in this ad (undefined when absent). */
  evaluate(name: string, options?: EvalOptions): Value {
    return this.evaluateExpr({ kind: 'attr', name }, options);
  }

  /** Value of `expr` (a tree or its text) with attribute references resolved in this ad. */
  evaluateExpr(expr: Expr | string, options?: EvalOptions): Value {
    const tree = typeof expr === 'string' ? parseExpr(expr) : expr;
    const now = options?.now ?? Math.floor(Date.now() / 1000);
    return evaluate(tree, { ad: this, target: options?.target, now, active: new Map() });
  }

  /**
   * golang-htcondor JSON form. `projection` keeps only the named attributes
   * (case-insensitive; unknown names are omitted).
   */
  toJSON(projection?: readonly string[]): Record<string, JsonValue> {
    // JSON.stringify calls toJSON(key) with a string key; only an array is a projection.
    const wanted = Array.isArray(projection) ? new Set(projection.map((n) => n.toLowerCase())) : undefined;
    const out: Record<string, JsonValue> = {};
    for (const [key, { name, expr }] of this.#attrs) {
      if (!wanted || wanted.has(key)) out[name] = exprToJson(expr);
    }
    return out;
  }
}

/**
 * Whether `ad` satisfies `constraint` the way condor_q / condor_rm select jobs:
 * the value must be boolean true or, under HTCondor's default old-ClassAd
 * semantics (Value::IsBooleanValueEquiv), a non-zero number. Undefined, error,
 * strings and lists never match. Throws ClassAdSyntaxError for bad text.
 */
export function matchesConstraint(constraint: string | Expr, ad: ClassAd, options?: EvalOptions): boolean {
  return truth(ad.evaluateExpr(constraint, options)) === true;
}
