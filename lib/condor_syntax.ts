/**
 * Quoting for the places HTCondor reads our values: submit-file argument lists (the manual's
 * "new syntax") and DAG file statements.
 */

/**
 * A submit-file `arguments` value in the new syntax: the whole list in double quotes, an
 * argument holding white space or a single quote wrapped in single quotes, `'` written `''`
 * and `"` written `""`.
 */
export function condorArguments(argv: string[]): string {
  const parts = argv.map((arg) => {
    const escaped = arg.replaceAll('"', '""');
    if (arg === '' || /[\s']/.test(arg)) return `'${escaped.replaceAll("'", "''")}'`;
    return escaped;
  });
  return `"${parts.join(' ')}"`;
}

/** A DAG `VARS` value: double-quoted, with `\` and `"` escaped as DAGMan expects. */
export function dagVarValue(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** DAG statements split on white space; refuse what they cannot carry instead of mangling it. */
export function dagWord(value: string, what: string): string {
  if (value === '' || /\s/.test(value)) {
    throw new Error(`${what} "${value}" contains white space, which a DAG file line cannot carry`);
  }
  return value;
}

/** A ClassAd string literal, for constraints such as `JobBatchName == "..."`. */
export function classAdString(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
