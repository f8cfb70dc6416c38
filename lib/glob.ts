import { minimatch } from 'minimatch';

/**
 * Object-key globs with the semantics of Python's `fnmatch.fnmatchcase`, which the office's
 * patterns were written for: `*` and `?` cross `/` (so `*raw.csv` matches
 * `Counties/WI/batch1-raw.csv`), `[...]`/`[!...]` are character sets, a backslash is an
 * ordinary character, a leading `.` is not special, braces and `!`-negation mean nothing,
 * and matching is case-sensitive.
 */

// minimatch treats `/` as a path separator that `*` never crosses; fnmatch has no separator.
// Mapping `/` to a private-use character on both sides gives minimatch one flat string.
const SLASH_STAND_IN = '\uE000';

const FNMATCH_OPTIONS = {
  dot: true,
  nobrace: true,
  noext: true,
  nonegate: true,
  nocomment: true,
  noglobstar: true,
  nocase: false,
  optimizationLevel: 0,
} as const;

/** Rewrites the parts of an fnmatch pattern that minimatch would read differently. */
function toMinimatchPattern(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      out += '[\\\\]'; // fnmatch: a literal backslash, never an escape
    } else if (c === '/') {
      out += SLASH_STAND_IN;
    } else if (c === '[') {
      const close = findSetEnd(pattern, i);
      if (close < 0) {
        out += '\\['; // fnmatch: an unclosed `[` is literal
        continue;
      }
      let body = pattern.slice(i + 1, close).replaceAll('/', SLASH_STAND_IN).replaceAll('\\', '\\\\');
      // fnmatch negates with `!` only; a leading `^` is an ordinary member, so move it.
      if (body.startsWith('^')) body = body === '^' ? '\\^' : body.slice(1) + '^';
      out += '[' + body + ']';
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

/** Index of the `]` closing the set opened at `open`, as fnmatch finds it, or -1. */
function findSetEnd(pattern: string, open: number): number {
  let j = open + 1;
  if (pattern[j] === '!') j++;
  if (pattern[j] === ']') j++; // a `]` right after `[` or `[!` is a member
  const close = pattern.indexOf(']', j);
  return close;
}

export type KeyMatcher = (key: string) => boolean;

/** Compiles a pattern once; the returned function tests object keys. */
export function compileGlob(pattern: string): KeyMatcher {
  const mm = new minimatch.Minimatch(toMinimatchPattern(pattern), FNMATCH_OPTIONS);
  return (key: string) => mm.match(key.replaceAll('/', SLASH_STAND_IN));
}

/**
 * What every key the pattern matches starts with: the pattern up to its first `*`, `?` or `[`
 * (fnmatch has no escapes). Listing only that prefix finds the same manifests.
 */
export function literalPrefix(pattern: string): string {
  const wild = pattern.search(/[*?[]/);
  return wild < 0 ? pattern : pattern.slice(0, wild);
}

export function matchesGlob(key: string, pattern: string): boolean {
  return compileGlob(pattern)(key);
}
