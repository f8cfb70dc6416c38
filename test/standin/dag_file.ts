/**
 * The DAG input file, as condor_dagman's parser (parse.cpp) reads it, for the stand-in's DAGMan:
 * keywords are case-insensitive, `#` starts a comment line, a trailing backslash continues a
 * line, and node definitions are read before everything else (so VARS may precede JOB).
 * Understood: JOB/NODE name file [DIR dir] [NOOP] [DONE]; FINAL name file [DIR dir] [NOOP];
 * VARS name [PREPEND] key="value" ... (`\"` and `\\` escapes); RETRY name N [UNLESS-EXIT v];
 * SCRIPT POST name program args... Every other statement is an error: those DAGMan knows are
 * named as unsupported by this stand-in, never skipped.
 */

export type NodeSpec = {
  name: string;
  submitFile: string;
  /** The node's DIR, as written (relative to DAGMan's working directory). */
  dir: string | undefined;
  noop: boolean;
  done: boolean;
  final: boolean;
  /** VARS in order; a later definition of a name wins. */
  vars: Array<[string, string]>;
  retry: number;
  unlessExit: number | undefined;
  /** The POST script's command line: program and arguments, split on white space when run. */
  post: string | undefined;
};

export type DagDefinition = { nodes: NodeSpec[]; warnings: string[] };

export class DagParseError extends Error {}

const KNOWN_UNSUPPORTED = new Set([
  'PARENT', 'SUBDAG', 'SPLICE', 'PROVISIONER', 'SERVICE', 'ABORT-DAG-ON', 'DOT', 'PRIORITY',
  'CATEGORY', 'MAXJOBS', 'CONFIG', 'SET_JOB_ATTR', 'ENV', 'NODE_STATUS_FILE', 'SAVE_POINT_FILE',
  'REJECT', 'JOBSTATE_LOG', 'PRE_SKIP', 'DONE', 'CONNECT', 'PIN_IN', 'PIN_OUT', 'INCLUDE',
  'SUBMIT-DESCRIPTION', 'DATA',
]);
const RESERVED = new Set(['PARENT', 'CHILD', 'ALL_NODES']);

type Line = { no: number; text: string };

function logicalLines(text: string): Line[] {
  const physical = text.split(/\r?\n/);
  const lines: Line[] = [];
  for (let i = 0; i < physical.length; i++) {
    const no = i + 1;
    let current = physical[i]!.trim();
    while (current.endsWith('\\') && !current.startsWith('#') && i + 1 < physical.length) {
      current = current.slice(0, -1) + physical[++i]!.trim();
    }
    if (current !== '' && !current.startsWith('#')) lines.push({ no, text: current });
  }
  return lines;
}

/** A token that may be double-quoted (submit file and DIR names), and the rest of the line. */
function possiblyQuoted(rest: string): [string | undefined, string] {
  const t = rest.trimStart();
  if (t === '') return [undefined, ''];
  if (t.startsWith('"')) {
    const end = t.indexOf('"', 1);
    return end < 0 ? [t.slice(1), ''] : [t.slice(1, end), t.slice(end + 1)];
  }
  const m = /^(\S+)(.*)$/s.exec(t)!;
  return [m[1], m[2]!];
}

export function parseDag(text: string, file: string, opts: { useDagDir: boolean }): DagDefinition {
  const lines = logicalLines(text);
  const nodes = new Map<string, NodeSpec>();
  const warnings: string[] = [];
  const fail = (line: Line, message: string): never => {
    throw new DagParseError(`ERROR: ${file} (line ${line.no}): ${message}`);
  };
  const keyword = (line: Line) => (/^\S+/.exec(line.text)?.[0] ?? '').toUpperCase();

  // Pass 1: the nodes.
  for (const line of lines) {
    const kw = keyword(line);
    if (kw !== 'JOB' && kw !== 'NODE' && kw !== 'FINAL') continue;
    const final = kw === 'FINAL';
    const example = `${final ? 'FINAL' : 'JOB'} <nodename> <submitfile> [DIR directory] [NOOP]${final ? '' : ' [DONE]'}`;
    const afterKeyword = line.text.slice(kw.length);
    const nameMatch = /^\s*(\S+)(.*)$/s.exec(afterKeyword);
    if (!nameMatch) fail(line, `no node name specified (example syntax is: ${example})`);
    const name = nameMatch![1]!;
    if (RESERVED.has(name.toUpperCase())) fail(line, `JobName cannot be a reserved word (${name})`);
    if (name.includes('+')) fail(line, `JobName ${name} contains one or more illegal characters ('+')`);
    const [submitFile, afterFile] = possiblyQuoted(nameMatch![2]!);
    if (submitFile === undefined) fail(line, `no submit file or submit description specified (example syntax is: ${example})`);
    if (submitFile!.startsWith('{')) fail(line, 'inline submit descriptions are not supported by this stand-in');
    let rest = afterFile;
    let dir: string | undefined;
    let token: string | undefined;
    [token, rest] = possiblyQuoted(rest);
    if (token?.toUpperCase() === 'DIR') {
      if (opts.useDagDir) throw new DagParseError('ERROR: DIR specification in node lines not allowed with -UseDagDir command-line argument');
      [dir, rest] = possiblyQuoted(rest);
      if (dir === undefined) fail(line, `no directory specified after DIR keyword (example syntax is: ${example})`);
      [token, rest] = possiblyQuoted(rest);
    }
    let noop = false;
    if (token?.toUpperCase() === 'NOOP') {
      noop = true;
      [token, rest] = possiblyQuoted(rest);
    }
    let done = false;
    if (token?.toUpperCase() === 'DONE') {
      if (final) fail(line, `DONE is not allowed for FINAL node ${name}`);
      done = true;
      [token, rest] = possiblyQuoted(rest);
    }
    if (token !== undefined) fail(line, `invalid parameter "${token}" (example syntax is: ${example})`);
    if (nodes.has(name)) fail(line, `node name ${name} is already used in this DAG`);
    if (final && [...nodes.values()].some((n) => n.final)) fail(line, `a DAG may have only one FINAL node (found ${name})`);
    nodes.set(name, { name, submitFile: submitFile!, dir, noop, done, final, vars: [], retry: 0, unlessExit: undefined, post: undefined });
  }

  const nodeNamed = (line: Line, name: string | undefined, what: string): NodeSpec => {
    if (name === undefined) fail(line, `missing node name in ${what}`);
    if (name!.toUpperCase() === 'ALL_NODES') fail(line, `${what} ALL_NODES is not supported by this stand-in`);
    const node = nodes.get(name!);
    if (!node) fail(line, `Unknown Job ${name}`);
    return node!;
  };

  // Pass 2: everything else.
  for (const line of lines) {
    const kw = keyword(line);
    const words = line.text.split(/[ \t]+/);
    if (kw === 'JOB' || kw === 'NODE' || kw === 'FINAL') continue;
    if (kw === 'VARS') {
      const node = nodeNamed(line, words[1], 'VARS');
      let rest = line.text.replace(/^\S+\s+\S+/, '').trimStart();
      if (/^PREPEND\b/i.test(rest)) rest = rest.slice(7);
      else if (/^APPEND\b/i.test(rest)) fail(line, 'VARS ... APPEND is not supported by this stand-in (its VARS are prepended, the DAGMan default)');
      const pairs = parseVars(rest, (why) => fail(line, why));
      if (pairs.length === 0) fail(line, 'No valid name-value pairs');
      for (const [varName, value] of pairs) {
        if (node.vars.some(([n]) => n === varName)) {
          warnings.push(`Warning: VAR ${varName} is already defined in job ${node.name}\nDiscovered at file "${file}", line ${line.no}`);
        }
        node.vars.push([varName, value]);
      }
    } else if (kw === 'RETRY') {
      const node = nodeNamed(line, words[1], 'RETRY');
      if (node.final) fail(line, `Final job ${node.name} cannot have RETRY specification`);
      if (words[2] === undefined || !/^\d+$/.test(words[2])) fail(line, `Invalid Retry value "${words[2] ?? ''}" (example syntax is: Retry JobName 3 [UNLESS-EXIT 42])`);
      node.retry = Number(words[2]);
      if (words[3] !== undefined) {
        if (words[3].toUpperCase() !== 'UNLESS-EXIT' || words[4] === undefined || !/^-?\d+$/.test(words[4]) || words.length > 5) {
          fail(line, `Invalid retry option "${words.slice(3).join(' ')}" (example syntax is: Retry JobName 3 [UNLESS-EXIT 42])`);
        }
        node.unlessExit = Number(words[4]);
      }
    } else if (kw === 'SCRIPT') {
      const type = words[1]?.toUpperCase();
      if (type === 'DEFER' || type === 'DEBUG') fail(line, `SCRIPT ${type} is not supported by this stand-in`);
      if (type === 'PRE' || type === 'HOLD') fail(line, `${type} scripts are not supported by this stand-in`);
      if (type !== 'POST') fail(line, 'After specifying "SCRIPT", you must indicate if you want "PRE", "POST", "HOLD" (or DEFER)');
      const node = nodeNamed(line, words[2], 'SCRIPT POST');
      const command = line.text.replace(/^\S+\s+\S+\s+\S+/, '').trim();
      if (command === '') fail(line, `You named a POST script for node ${node.name} but didn't provide a script filename`);
      if (node.post !== undefined) fail(line, `node ${node.name} already has a POST script`);
      node.post = command;
    } else if (KNOWN_UNSUPPORTED.has(kw)) {
      fail(line, `${kw} is a DAGMan command this stand-in does not support`);
    } else {
      fail(line, `expected JOB, FINAL, SCRIPT, RETRY or VARS token (found ${words[0]})`);
    }
  }
  return { nodes: [...nodes.values()], warnings };
}

/** `name="value" name2 = "value2"`: DAGMan's VARS pairs; `\"` is `"` and `\\` is `\`. */
function parseVars(text: string, fail: (why: string) => never): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let i = 0;
  const skip = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  for (;;) {
    skip();
    if (i >= text.length) return pairs;
    const nameMatch = /^[^\s="]+/.exec(text.slice(i));
    if (!nameMatch) fail(`Unexpected character ${text[i]} in VARS; expected name="value"`);
    const name = nameMatch![0];
    i += name.length;
    if (name.startsWith('+') || /^my\./i.test(name)) fail(`VARS ${name}: ClassAd attributes in VARS are not supported by this stand-in`);
    if (!/^[A-Za-z0-9_]+$/.test(name)) fail(`Illegal variable name ${name}; names use letters, digits and _`);
    if (/^queue/i.test(name)) fail(`Illegal variable name: ${name}; variable names cannot begin with "queue"`);
    skip();
    if (text[i] !== '=') fail(`No "=" for variable ${name}`);
    i++;
    skip();
    if (text[i] !== '"') fail(`${name}'s value must be quoted`);
    i++;
    let value = '';
    for (;;) {
      if (i >= text.length) fail(`Missing end quote for variable ${name}`);
      const c = text[i]!;
      if (c === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) {
        value += text[i + 1];
        i += 2;
      } else if (c === '"') {
        i++;
        break;
      } else {
        value += c;
        i++;
      }
    }
    pairs.push([name, value]);
  }
}

/** A partial rescue DAG (`DONE` and `RETRY` lines under a comment header) applied to the nodes. */
export function applyRescue(text: string, file: string, nodes: NodeSpec[]): void {
  for (const line of logicalLines(text)) {
    const words = line.text.split(/[ \t]+/);
    const kw = words[0]!.toUpperCase();
    const node = nodes.find((n) => n.name === words[1]);
    if (kw === 'DONE' && node && !node.final) node.done = true;
    else if (kw === 'RETRY' && node) continue; // retries are reset upon rescue (DAGMAN_RESET_RETRIES_UPON_RESCUE)
    else throw new DagParseError(`ERROR: ${file} (line ${line.no}): a partial rescue DAG has DONE and RETRY lines for nodes of the DAG, not "${line.text}"`);
  }
}
