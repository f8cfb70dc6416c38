import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPOSITORY_ROOT } from './build.ts';
import { submitValue } from './condor_syntax.ts';

/**
 * The folder of submit and DAG templates and the node executable, in the repository whether this
 * runs from the sources or from the build in dist/ (which holds no copy of them).
 */
const SUBMIT_DIR = path.join(REPOSITORY_ROOT, 'submit');

export function submitFilePath(name: string): string {
  return path.join(SUBMIT_DIR, name);
}

const PLACEHOLDER = /\{\{([A-Z_]+)\}\}/;
const LINE_BREAK = /[\r\n]/;

/** A template split once into its text and its `{{NAME}}` placeholders: `text[i]` comes before `keys[i]`. */
type Compiled = { name: string; text: string[]; keys: string[]; distinct: number };

function compile(template: string, name: string): Compiled {
  // split() with a capturing group alternates text and placeholder names.
  const pieces = template.split(PLACEHOLDER);
  const keys = pieces.filter((_, i) => i % 2 === 1);
  return { name, text: pieces.filter((_, i) => i % 2 === 0), keys, distinct: new Set(keys).size };
}

/**
 * Fills `{{NAME}}` placeholders. Every placeholder must be given and every value used, so a
 * template and its caller cannot drift apart silently. Values are single lines, because a
 * newline would start a new submit command or DAG statement, unless named in `blocks`.
 */
function fill(template: Compiled, values: Record<string, string>, blocks: string[] = []): string {
  const { name, text, keys } = template;
  let out = text[0]!;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const value = values[key];
    if (value === undefined) throw new Error(`${name}: no value for {{${key}}}`);
    if (LINE_BREAK.test(value) && !blocks.includes(key)) throw new Error(`${name}: the value of {{${key}}} spans lines`);
    out += value + text[i + 1]!;
  }
  // Every placeholder has its value: any more values are unused.
  let given = 0;
  for (const _ in values) given++;
  if (given > template.distinct) {
    const unused = Object.keys(values).filter((k) => !keys.includes(k));
    throw new Error(`${name}: unused values ${unused.join(', ')}`);
  }
  return out;
}

const cache = new Map<string, Compiled>();

function template(name: string): Compiled {
  let compiled = cache.get(name);
  if (compiled === undefined) {
    compiled = compile(readFileSync(submitFilePath(name), 'utf8'), `submit/${name}`);
    cache.set(name, compiled);
  }
  return compiled;
}

/**
 * Renders `submit/<name>` with the given values. Into a submit description (`.sub`) every value
 * is checked by submitValue, so nothing in it can act as a macro or end its line early.
 */
export function renderTemplate(name: string, values: Record<string, string>, blocks: string[] = []): string {
  if (name.endsWith('.sub')) {
    values = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, submitValue(v, `submit/${name}: the value of {{${k}}}`)]));
  }
  return fill(template(name), values, blocks);
}

/**
 * Renders `submit/<name>` but for the one placeholder `block`, which may span lines: the text
 * before it and the text after it, for a caller that writes a large block between the two as a
 * stream (the DAG's nodes) instead of making one string of it all.
 */
export function renderTemplateAround(name: string, values: Record<string, string>, block: string): [before: string, after: string] {
  if (name.endsWith('.sub')) throw new Error(`submit/${name}: a submit description is rendered whole`);
  const mark = '\u0000{{block}}\u0000';
  const parts = fill(template(name), { ...values, [block]: mark }, [block]).split(mark);
  if (parts.length !== 2) throw new Error(`submit/${name}: {{${block}}} must appear once`);
  return [parts[0]!, parts[1]!];
}
