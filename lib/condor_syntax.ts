/**
 * Quoting for the places HTCondor reads our values: submit-file argument lists (the manual's
 * "new syntax"), DAG file statements and ClassAd expressions.
 */

/**
 * One word of a new-syntax list: `"` written `""`, and a word holding white space or a single
 * quote (or an empty one) wrapped in single quotes, with `'` written `''`.
 */
function newSyntaxWord(value: string): string {
  const escaped = value.replaceAll('"', '""');
  return value === '' || /[\s']/.test(value) ? `'${escaped.replaceAll("'", "''")}'` : escaped;
}

/** `$(`, `$$` and `$NAME(`: macro syntax to both golang-htcondor's parser and condor_submit. */
export const MACRO_SYNTAX = /\$(\$|[A-Za-z_]*\()/;

/**
 * Checks a value written into a submit description. Neither parser has a way to write macro
 * syntax as plain text that the other reads the same (golang-htcondor expands again what
 * `$(DOLLAR)` gives), so `$(`, `$$` and `$NAME(` are refused; a lone `$` is text to both. A line
 * break would start a new command and a trailing backslash would join the next line.
 */
export function submitValue(value: string, what: string): string {
  if (/[\r\n\u2028\u2029]/.test(value)) throw new Error(`${what} spans lines, which a submit description cannot carry`);
  if (value.endsWith('\\')) throw new Error(`${what} ends in a backslash, which a submit description reads as "continued on the next line"`);
  const macro = MACRO_SYNTAX.exec(value);
  if (macro) throw new Error(`${what} holds "${macro[0]}", which HTCondor reads as a macro`);
  return value;
}

/** A submit-file `arguments` value in the new syntax: the whole list in double quotes. */
export function condorArguments(argv: string[]): string {
  return `"${argv.map(newSyntaxWord).join(' ')}"`;
}

/** Double quotes with `\` and `"` escaped by a backslash: DAG VARS values and ClassAd strings alike. */
function backslashQuoted(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** A DAG `VARS` value. */
export const dagVarValue = backslashQuoted;

/** A ClassAd string literal, for constraints such as `JobBatchName == "..."`. */
export const classAdString = backslashQuoted;

/** DAG statements split on white space; refuse what they cannot carry instead of mangling it. */
export function dagWord(value: string, what: string): string {
  if (value === '' || /\s/.test(value)) {
    throw new Error(`${what} "${value}" contains white space, which a DAG file line cannot carry`);
  }
  return value;
}
