import { isUtf8 } from 'node:buffer';
import { hasTiffExtension } from './naming.ts';

/**
 * Manifests: CSV files of `key,bands` rows, one image per line, no header
 * (`Counties/WI/Wood/1band.tif,1`). Every non-blank line becomes either an image row or a
 * rejected row that keeps the text exactly as the user wrote it, so it can go back to them
 * in the `failed` CSV and be fixed and resubmitted.
 *
 * A manifest is read in one pass over its bytes: each line is found, checked and split where it
 * lies, and keeps its bytes as a view of the manifest's buffer (no copy). Each line is CSV on
 * its own, so a stray quote spoils only its own row; the splitting follows csv-parse's rules
 * (RFC 4180 quoting, its error messages), which the project used before, one call per line.
 */

/**
 * One non-blank line of a manifest: its number, its bytes exactly as uploaded (so the state CSVs
 * give them back unchanged, whatever the encoding), and its text. `utf8` is false for a line that
 * is not UTF-8 (Latin-1 from spreadsheet software, stray binary): its text is then only a
 * rendering for messages.
 */
export type ManifestLine = { line: number; raw: string; bytes: Buffer; utf8: boolean };
export type ImageRow = ManifestLine & { key: string; bands: number };
export type RejectedRow = ManifestLine & { reason: string };
export type ParsedManifest = { rows: ImageRow[]; rejected: RejectedRow[] };

// Keys end up in DAG VARS values, submit-file macros, HTCondor argument lists and
// transfer_output_remaps, each with its own quoting; these characters break one of them.
const UNSAFE_IN_KEY: Array<[RegExp, string]> = [
  [/[\u0000-\u001f\u007f]/, 'a control character'],
  [/"/, 'a double quote'],
  [/'/, 'a single quote'],
  [/\\/, 'a backslash'],
  [/\$/, 'a "$" (HTCondor macro syntax)'],
  [/,/, 'a comma'],
  [/;/, 'a semicolon'],
  [/=/, 'an "="'],
];
/** Any of UNSAFE_IN_KEY: most keys hold none, and are checked once. */
const ANY_UNSAFE_IN_KEY = /[\u0000-\u001f\u007f"'\\$,;=]/;
const MAX_KEY_LENGTH = 1024;
const WRONG_COLUMNS = 'expected 2 columns (image key, band count)';

/** What is wrong with a row's fields, every problem in order; empty when it is an image row. */
function rowProblems(fields: string[]): string[] {
  if (fields.length < 2) return [WRONG_COLUMNS];
  const problems: string[] = [];
  if (fields.length > 2) problems.push(WRONG_COLUMNS);
  const key = fields[0]!;
  if (key.length < 1) problems.push('the image key is empty');
  if (key.length > MAX_KEY_LENGTH) problems.push(`the image key is longer than S3 allows (${MAX_KEY_LENGTH} bytes)`);
  if (key.startsWith('/')) problems.push('the image key starts with "/" (keys are relative to the bucket)');
  if (key.endsWith('/')) problems.push('the image key names a folder, not an image');
  if (!hasTiffExtension(key)) problems.push('the image key does not end in .tif');
  if (ANY_UNSAFE_IN_KEY.test(key)) {
    for (const [re, what] of UNSAFE_IN_KEY) if (re.test(key)) problems.push(`the image key contains ${what}`);
  }
  const bands = fields[1]!;
  if (!/^\d+$/.test(bands)) problems.push('the band count is not a whole number');
  else if (!(Number(bands) >= 1 && Number(bands) <= 255)) problems.push('the band count must be between 1 and 255');
  return problems.length > 1 ? [...new Set(problems)] : problems;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const LF = 0x0a;
const CR = 0x0d;

/** The first byte of the UTF-8 encoding of the character at `i`, as csv-parse names it in a message. */
function firstUtf8Byte(text: string, i: number): string {
  const cp = text.codePointAt(i)!;
  const byte = cp < 0x80 ? cp : cp < 0x800 ? 0xc0 | (cp >> 6) : cp < 0x10000 ? 0xe0 | (cp >> 12) : 0xf0 | (cp >> 18);
  return String.fromCharCode(byte);
}

/**
 * The fields of one line of CSV, as csv-parse gives them with its default options (`,` between
 * fields, `"` quoting, `""` a quote inside quotes, nothing trimmed), or its complaint, without
 * the line number (a line is parsed on its own: its number would always be 1).
 */
export function csvFields(text: string): string[] | { error: string } {
  if (!text.includes('"')) return text.split(',');
  const fields: string[] = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    let field = '';
    let quoted = false;
    if (text.charCodeAt(i) === QUOTE) {
      // A quoted field: up to the closing quote, which ends the line or comes before a comma.
      i++;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote < 0) return { error: 'Quote Not Closed: the parsing is finished with an opening quote' };
        field += text.slice(i, quote);
        i = quote + 1;
        if (text.charCodeAt(i) !== QUOTE) break;
        field += '"'; // `""`
        i++;
      }
      quoted = true;
    }
    // csv-parse takes a NUL byte after a closing quote for the end of its input, and goes on with
    // the field as if unquoted.
    if (!quoted || (i < n && text.charCodeAt(i) === 0)) {
      // Unquoted: up to the next comma; a quote inside it is an error.
      let end = text.indexOf(',', i);
      if (end < 0) end = n;
      const quote = text.indexOf('"', i);
      if (quote >= 0 && quote < end) {
        const before = field + text.slice(i, quote);
        return {
          error:
            `Invalid Opening Quote: a quote is found on field ${fields.length}, value is ${JSON.stringify(before)}` +
            (before === '\uFEFF' ? ' (utf8 bom)' : ''),
        };
      }
      field += text.slice(i, end);
      i = end;
    } else if (i < n && text.charCodeAt(i) !== COMMA) {
      return {
        error: `Invalid Closing Quote: got "${firstUtf8Byte(text, i)}" instead of delimiter, record delimiter, trimable character (if activated) or comment`,
      };
    }
    fields.push(field);
    if (i >= n) return fields;
    i++; // the comma
  }
}

/** Whether every byte is white space as String.prototype.trim sees it in Latin-1 (tab, LF, VT, FF, CR, space, NBSP). */
function isBlank(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (!((b >= 0x09 && b <= 0x0d) || b === 0x20 || b === 0xa0)) return false;
  }
  return true;
}

/**
 * Calls `take` with each non-blank physical line, in one pass: BOM, CRLF/CR/LF and a missing
 * final newline are all fine. Each line's bytes are a view of `content`'s buffer.
 */
function eachManifestLine(content: Buffer | string, take: (line: ManifestLine) => void): void {
  let bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (bytes.subarray(0, 3).equals(UTF8_BOM)) bytes = bytes.subarray(3);
  // Lines end at ASCII bytes, which never fall inside a UTF-8 sequence: when the whole is UTF-8,
  // so is every line, and only a manifest that is not needs its lines checked one by one.
  const allUtf8 = isUtf8(bytes);
  const length = bytes.length;
  let nextCr = bytes.indexOf(CR);
  if (nextCr < 0) nextCr = length;
  let start = 0;
  for (let line = 1; start < length; line++) {
    let nextLf = bytes.indexOf(LF, start);
    if (nextLf < 0) nextLf = length;
    if (nextCr < start) {
      nextCr = bytes.indexOf(CR, start);
      if (nextCr < 0) nextCr = length;
    }
    const end = Math.min(nextLf, nextCr);
    if (!isBlank(bytes, start, end)) {
      const lineBytes = bytes.subarray(start, end);
      const utf8 = allUtf8 || isUtf8(lineBytes);
      let raw = lineBytes.toString('utf8');
      // As TextDecoder, which read the lines before: a BOM opening a line is not part of its text.
      if (utf8 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
      take({ line, raw, bytes: lineBytes, utf8 });
    }
    start = end < length && bytes[end] === CR && bytes[end + 1] === LF ? end + 2 : end + 1;
  }
}

/** Splits into physical lines: BOM, CRLF/CR/LF and a missing final newline are all fine. */
export function readManifestLines(content: Buffer | string): ManifestLine[] {
  const lines: ManifestLine[] = [];
  eachManifestLine(content, (l) => lines.push(l));
  return lines;
}

/** Checks one line; returns the image row or the reason it cannot be processed. */
export function parseManifestLine(l: ManifestLine): ImageRow | RejectedRow {
  const { line, raw, bytes, utf8 } = l;
  if (!utf8) return { line, raw, bytes, utf8, reason: 'the row is not UTF-8 text (saved as Latin-1?): save the manifest as "CSV UTF-8"' };
  const parsed = csvFields(raw);
  if (!Array.isArray(parsed)) return { line, raw, bytes, utf8, reason: `not valid CSV: ${parsed.error}` };
  const fields = parsed.map((f) => f.trim());
  // Spreadsheets often end rows with an empty column (`a.tif,1,`); the Python tool converted those.
  while (fields.length > 2 && fields[fields.length - 1] === '') fields.pop();
  const problems = rowProblems(fields);
  if (problems.length > 0) return { line, raw, bytes, utf8, reason: problems.join('; ') };
  return { line, raw, bytes, utf8, key: fields[0]!, bands: Number(fields[1]) };
}

/** Reads a manifest in one pass: its image rows and its rejected rows, each with its bytes. */
export function parseManifest(content: Buffer | string): ParsedManifest {
  const rows: ImageRow[] = [];
  const rejected: RejectedRow[] = [];
  eachManifestLine(content, (l) => {
    const r = parseManifestLine(l);
    if ('reason' in r) rejected.push(r);
    else rows.push(r);
  });
  return { rows, rejected };
}

/** A state CSV of the given lines, each with exactly the bytes the user wrote. */
export function manifestCsv(lines: ManifestLine[]): Buffer {
  return Buffer.concat(lines.flatMap((l) => [l.bytes, Buffer.from('\n')]));
}

/** How much of an object is read to tell whether it is a manifest. */
export const MANIFEST_SNIFF_BYTES = 64 * 1024;
/** The most a manifest may hold: 100 000 rows take about 6 MiB. */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

/**
 * Whether an object whose name matches the pattern is a manifest, from its size and its first
 * bytes: text (no NUL byte), and either blank or with a line whose first field names a `.tif`
 * image. Images, archives and ordinary data CSVs are not; a manifest with bad rows still is, so
 * its rows come back in the failed CSV.
 */
export function manifestVerdict(size: number, head: Buffer): { manifest: true } | { manifest: false; reason: string } {
  if (size > MAX_MANIFEST_BYTES) return { manifest: false, reason: `it holds ${size} bytes, more than a manifest may (${MAX_MANIFEST_BYTES})` };
  if (head[0] === 0xff && head[1] === 0xfe) return { manifest: false, reason: 'it is UTF-16 text: save the manifest as "CSV UTF-8"' };
  if (head[0] === 0xfe && head[1] === 0xff) return { manifest: false, reason: 'it is UTF-16 text: save the manifest as "CSV UTF-8"' };
  if (head.includes(0)) return { manifest: false, reason: 'it is not text: it holds NUL bytes, as images do' };
  const text = head.toString('latin1');
  if (text.trim() === '') return { manifest: true };
  // The last line of a partial read may be cut short; it still counts if it got as far as ".tif,".
  const namesAnImage = text.split(/\r\n|\r|\n/).some((line) => /^\s*"?[^,]*\.tiff?"?\s*(,|$)/i.test(line));
  return namesAnImage ? { manifest: true } : { manifest: false, reason: 'no line names a .tif image in its first column' };
}
