/**
 * What the pipeline's two long-lived jobs (the crondor job and DAGMan) need on the schedd that a
 * submit description cannot say through htcondor-api.
 *
 * htcondor-api does not run condor_submit: golang-htcondor's own parser makes the job ad, and it
 * copies `on_exit_remove` and `environment` as strings (quotes and all), drops `+Attr` lines,
 * ignores `getenv`, and the schedd cuts the user log to its base name in the spool directory
 * (README, "How it talks to HTCondor"). So the descriptions in `submit/` hold only lines that
 * golang-htcondor and condor_submit read the same way, start with `requirements = false` (the
 * job cannot start yet), and the rest is set on the job right after submission, in this order:
 *   1. the ad the description produced is checked (`expected`);
 *   2. the settings are written and read back (`settings`);
 *   3. only then `Requirements = true` lets the job start ({@link START}).
 * Pure: values in, attribute maps out.
 */

/** One attribute value: a ClassAd literal, or an expression (its text). */
export type AttributeValue = string | number | boolean | { expression: string };

export type JobAttributes = Record<string, AttributeValue>;

/** What a description must produce: values, or for `Arguments` the words the job gets. */
export type ExpectedValue = AttributeValue | { argv: string[] };

/** A job to submit and configure. */
export type JobSubmission = {
  description: string;
  /** Attributes the description must have produced, checked before anything else is set. */
  expected(clusterId: number): Record<string, ExpectedValue>;
  /** Attributes set once the cluster id is known, before the job may start. */
  settings(clusterId: number): JobAttributes;
  /**
   * An attribute the description sets to a value no other job has: when the reply to the
   * submission is lost, the schedd is asked whether a job with it is there.
   */
  identity?: { attribute: string; value: string };
};

/** The last edit: the descriptions say `requirements = false`, so nothing runs before this. */
export const START: JobAttributes = { Requirements: true };

/** condor_submit_dag's on_exit_remove: DAGMan is requeued unless it exits normally (0-2) or segfaults. */
export const DAGMAN_ON_EXIT_REMOVE = '(ExitSignal =?= 11 || (ExitCode =!= UNDEFINED && ExitCode >= 0 && ExitCode <= 2))';

/** The crondor job: runs again at every quarter hour for as long as it is in the queue. */
export function crondorSettings(launchDir: string, environment: Record<string, string>): (clusterId: number) => JobAttributes {
  return (clusterId) => ({
    OnExitRemove: false,
    Environment: environmentV2(environment),
    UserLog: `${launchDir}/crondor_${clusterId}.log`,
  });
}

/** DAGMan, as condor_submit_dag would have it: its log, environment, requeue rule and node removal. */
export function dagmanSettings(dagFile: string, environment: Record<string, string>): (clusterId: number) => JobAttributes {
  return (clusterId) => ({
    OnExitRemove: { expression: DAGMAN_ON_EXIT_REMOVE },
    Environment: environmentV2({ ...environment, _CONDOR_DAGMAN_LOG: `${dagFile}.dagman.out`, _CONDOR_MAX_DAGMAN_LOG: '0' }),
    // Removing the DAGMan job (condor_rm) also removes its node jobs.
    OtherJobRemoveRequirements: `DAGManJobId =?= ${clusterId}`,
    UserLog: `${dagFile}.dagman.log`,
  });
}

/**
 * An `Environment` attribute value (HTCondor's V2 raw form, no outer double quotes): `NAME=value`
 * words separated by spaces, a value holding white space or `'` wrapped in single quotes with
 * `'` written `''`.
 */
export function environmentV2(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not an environment variable name: ${name}`);
      if (/[\r\n]/.test(value)) throw new Error(`environment variable ${name} spans lines, which a job's environment cannot carry`);
      return `${name}=${/[\s']/.test(value) || value === '' ? `'${value.replaceAll("'", "''")}'` : value}`;
    })
    .join(' ');
}

/** The words of a V2 `Arguments` value, as the starter splits them. */
export function argumentsV2(raw: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === "'") {
      word ??= '';
      // Inside quotes `''` is a literal quote; otherwise a quote opens or closes a quoted run.
      let j = i + 1;
      for (; j < raw.length; j++) {
        if (raw[j] === "'" && raw[j + 1] === "'") {
          word += "'";
          j++;
        } else if (raw[j] === "'") break;
        else word += raw[j];
      }
      i = j;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/**
 * Whether a value read back from the server (golang-htcondor's JSON form of the ad: literals as
 * JSON values, expressions as `/Expr(text)/`) is the value the pipeline set or expects.
 * Expressions are compared after normalising how servers print them (spacing, parentheses,
 * `is`/`isnt` for `=?=`/`=!=`, keyword case).
 */
export function sameAttributeValue(expected: ExpectedValue, actual: unknown): boolean {
  if (typeof expected !== 'object') return actual === expected;
  if ('argv' in expected) {
    return typeof actual === 'string' && JSON.stringify(argumentsV2(actual)) === JSON.stringify(expected.argv);
  }
  const text = typeof actual === 'string' ? /^\/Expr\((.*)\)\/$/s.exec(actual)?.[1] : undefined;
  return text !== undefined && normaliseExpression(text) === normaliseExpression(expected.expression);
}

function normaliseExpression(text: string): string {
  return text
    .replace(/\bisnt\b/gi, '=!=')
    .replace(/\bis\b/gi, '=?=')
    .replace(/\b(undefined|true|false)\b/gi, (k) => k.toLowerCase())
    .replace(/[\s()]/g, '');
}

/** How an attribute value reads in a message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return '(absent)';
  if (typeof value === 'object' && value !== null && 'expression' in value) return String((value as { expression: string }).expression);
  if (typeof value === 'object' && value !== null && 'argv' in value) return `arguments ${JSON.stringify((value as { argv: string[] }).argv)}`;
  return JSON.stringify(value);
}
