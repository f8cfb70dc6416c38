import { readFileSync } from 'node:fs';
import { submitValue } from './condor_syntax.ts';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The folder of submit and DAG templates and the node executable. */
const SUBMIT_DIR = fileURLToPath(new URL('../submit/', import.meta.url));

export function submitFilePath(name: string): string {
  return path.join(SUBMIT_DIR, name);
}

const PLACEHOLDER = /\{\{([A-Z_]+)\}\}/g;

/**
 * Fills `{{NAME}}` placeholders. Every placeholder must be given and every value used, so a
 * template and its caller cannot drift apart silently. Values are single lines, because a
 * newline would start a new submit command or DAG statement, unless named in `blocks`.
 */
function fillTemplate(
  template: string,
  values: Record<string, string>,
  name = 'template',
  blocks: string[] = [],
): string {
  const used = new Set<string>();
  const out = template.replace(PLACEHOLDER, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`${name}: no value for {{${key}}}`);
    if (!blocks.includes(key) && /[\r\n]/.test(value)) throw new Error(`${name}: the value of {{${key}}} spans lines`);
    used.add(key);
    return value;
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`${name}: unused values ${unused.join(', ')}`);
  return out;
}

const cache = new Map<string, string>();

/**
 * Renders `submit/<name>` with the given values. Into a submit description (`.sub`) every value
 * is checked by submitValue, so nothing in it can act as a macro or end its line early.
 */
export function renderTemplate(name: string, values: Record<string, string>, blocks: string[] = []): string {
  if (name.endsWith('.sub')) {
    values = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, submitValue(v, `submit/${name}: the value of {{${k}}}`)]));
  }
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(submitFilePath(name), 'utf8');
    cache.set(name, text);
  }
  return fillTemplate(text, values, `submit/${name}`, blocks);
}
