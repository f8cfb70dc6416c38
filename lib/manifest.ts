import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { hasTiffExtension } from './naming.ts';

/**
 * Manifests: CSV files of `key,bands` rows, one image per line, no header
 * (`Counties/WI/Wood/1band.tif,1`). Every non-blank line becomes either an image row or a
 * rejected row that keeps the text exactly as the user wrote it, so it can go back to them
 * in the `failed` CSV and be fixed and resubmitted.
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

const imageKey = z
  .string()
  .min(1, 'the image key is empty')
  .max(1024, 'the image key is longer than S3 allows (1024 bytes)')
  .refine((k) => !k.startsWith('/'), 'the image key starts with "/" (keys are relative to the bucket)')
  .refine((k) => !k.endsWith('/'), 'the image key names a folder, not an image')
  .refine(hasTiffExtension, 'the image key does not end in .tif')
  .superRefine((k, ctx) => {
    for (const [re, what] of UNSAFE_IN_KEY) {
      if (re.test(k)) ctx.addIssue({ code: 'custom', message: `the image key contains ${what}` });
    }
  });

const bandCount = z
  .string()
  .regex(/^\d+$/, 'the band count is not a whole number')
  .transform(Number)
  .refine((n) => n >= 1 && n <= 255, 'the band count must be between 1 and 255');

const manifestRow = z.tuple([imageKey, bandCount], {
  error: (issue) =>
    issue.code === 'too_small' || issue.code === 'too_big'
      ? 'expected 2 columns (image key, band count)'
      : undefined,
});

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const LF = 0x0a;
const CR = 0x0d;

/** Splits into physical lines: BOM, CRLF/CR/LF and a missing final newline are all fine. */
export function readManifestLines(content: Buffer | string): ManifestLine[] {
  let bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (bytes.subarray(0, 3).equals(UTF8_BOM)) bytes = bytes.subarray(3);
  const out: ManifestLine[] = [];
  let start = 0;
  let line = 1;
  const take = (end: number) => {
    const lineBytes = bytes.subarray(start, end);
    if (lineBytes.toString('latin1').trim() !== '') {
      let raw: string;
      let utf8 = true;
      try {
        raw = STRICT_UTF8.decode(lineBytes);
      } catch {
        raw = lineBytes.toString('utf8');
        utf8 = false;
      }
      out.push({ line, raw, bytes: Buffer.from(lineBytes), utf8 });
    }
    line++;
  };
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== LF && bytes[i] !== CR) continue;
    take(i);
    if (bytes[i] === CR && bytes[i + 1] === LF) i++;
    start = i + 1;
  }
  if (start < bytes.length) take(bytes.length);
  return out;
}

/** Checks one line; returns the image row or the reason it cannot be processed. */
export function parseManifestLine(l: ManifestLine): ImageRow | RejectedRow {
  if (!l.utf8) return { ...l, reason: 'the row is not UTF-8 text (saved as Latin-1?): save the manifest as "CSV UTF-8"' };
  let fields: string[];
  try {
    // One line at a time, so a stray quote spoils only its own row.
    const records = parse(l.raw, { relax_column_count: true }) as string[][];
    fields = (records[0] ?? []).map((f) => f.trim());
  } catch (err) {
    return { ...l, reason: `not valid CSV: ${(err as Error).message.replace(/ at line \d+/, "")}` };
  }
  // Spreadsheets often end rows with an empty column (`a.tif,1,`); the Python tool converted those.
  while (fields.length > 2 && fields[fields.length - 1] === '') fields.pop();
  const result = manifestRow.safeParse(fields);
  if (!result.success) {
    const reasons = [...new Set(result.error.issues.map((i) => i.message))];
    return { ...l, reason: reasons.join('; ') };
  }
  const [key, bands] = result.data;
  return { ...l, key, bands };
}

export function parseManifest(text: Buffer | string): ParsedManifest {
  const rows: ImageRow[] = [];
  const rejected: RejectedRow[] = [];
  for (const l of readManifestLines(text)) {
    const r = parseManifestLine(l);
    if ('reason' in r) rejected.push(r);
    else rows.push(r);
  }
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
