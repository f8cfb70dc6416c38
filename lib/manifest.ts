import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { hasTiffExtension } from './naming.ts';

/**
 * Manifests: CSV files of `key,bands` rows, one image per line, no header
 * (`Counties/WI/Wood/1band.tif,1`). Every non-blank line becomes either an image row or a
 * rejected row that keeps the text exactly as the user wrote it, so it can go back to them
 * in the `failed` CSV and be fixed and resubmitted.
 */

export type ManifestLine = { line: number; raw: string };
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

/** Splits into physical lines: BOM, CRLF/CR/LF and a missing final newline are all fine. */
export function readManifestLines(text: string): ManifestLine[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const out: ManifestLine[] = [];
  lines.forEach((raw, i) => {
    if (raw.trim() !== '') out.push({ line: i + 1, raw });
  });
  return out;
}

/** Checks one line; returns the image row or the reason it cannot be processed. */
export function parseManifestLine(l: ManifestLine): ImageRow | RejectedRow {
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

export function parseManifest(text: string): ParsedManifest {
  const rows: ImageRow[] = [];
  const rejected: RejectedRow[] = [];
  for (const l of readManifestLines(text)) {
    const r = parseManifestLine(l);
    if ('reason' in r) rejected.push(r);
    else rows.push(r);
  }
  return { rows, rejected };
}

/** A state CSV of the given lines, each exactly as the user wrote it. */
export function manifestCsv(lines: ManifestLine[]): string {
  return lines.map((l) => l.raw + '\n').join('');
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
  if (head.includes(0)) return { manifest: false, reason: 'it is not text: it holds NUL bytes, as images do' };
  const text = head.toString('latin1');
  if (text.trim() === '') return { manifest: true };
  // The last line of a partial read may be cut short; it still counts if it got as far as ".tif,".
  const namesAnImage = text.split(/\r\n|\r|\n/).some((line) => /^\s*"?[^,]*\.tiff?"?\s*(,|$)/i.test(line));
  return namesAnImage ? { manifest: true } : { manifest: false, reason: 'no line names a .tif image in its first column' };
}
