/**
 * The names users rely on (SPEC 3.2, 3.5, 4): workflow runs, manifest state files, output keys
 * and batch names. Pure functions only.
 */

/** Local time as `YYYYmmdd-HHMMSS`, the Python tool's `time.strftime("%Y%m%d-%H%M%S")`. */
export function workflowTimestamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-` +
    `${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`
  );
}

export function workflowDirName(timestamp: string): string {
  return `workflow-run-${timestamp}`;
}

export type ManifestState = 'processing' | 'processed' | 'failed';

// `s`: a name may hold a line break (or U+2028), and must still be known as a state file.
const STATE_FILE = /^(.*)(processing|processed|failed)-(\d{8}-\d{6})\.csv$/s;

/** The part of the file name kept in every state name: `batch1_` of `batch1_raw.csv`. */
function manifestStem(fileName: string): string {
  if (fileName.endsWith('raw.csv')) return fileName.slice(0, -'raw.csv'.length);
  // The Python tool cut the last 7 characters of any name; keep the whole name instead.
  const withoutCsv = fileName.replace(/\.csv$/i, '');
  return withoutCsv === '' ? '' : `${withoutCsv}-`;
}

export function baseName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** The folder part of a key, with its trailing `/` (`''` at the bucket root). */
export function folderOf(key: string): string {
  return key.slice(0, key.lastIndexOf('/') + 1);
}

/** `Counties/WI/batch1_raw.csv` → `Counties/WI/batch1_processing-<ts>.csv` (same folder). */
export function stateKey(manifestKey: string, state: ManifestState, timestamp: string): string {
  return folderOf(manifestKey) + stateFileName(baseName(manifestKey), state, timestamp);
}

function stateFileName(manifestFileName: string, state: ManifestState, timestamp: string): string {
  return `${manifestStem(manifestFileName)}${state}-${timestamp}.csv`;
}

/** Parses a state file name; null for anything else (e.g. a fresh manifest). */
function parseStateFileName(
  fileName: string,
): { stem: string; state: ManifestState; timestamp: string } | null {
  const m = STATE_FILE.exec(fileName);
  if (!m) return null;
  return { stem: m[1]!, state: m[2] as ManifestState, timestamp: m[3]! };
}

/** The pipeline's own files must never be taken for new manifests, whatever the pattern. */
export function isStateFileKey(key: string): boolean {
  return parseStateFileName(baseName(key)) !== null;
}

/** The folder, next to a manifest, of the entries that claim it (bucket_claim.ts). */
export const CLAIMS_FOLDER = '.cog-pipeline-claims';

/**
 * Whether the key is one of the pipeline's own objects (a state file or a claim entry): never a
 * new manifest, whatever the pattern.
 */
export function isPipelineKey(key: string): boolean {
  return isStateFileKey(key) || key.startsWith(`${CLAIMS_FOLDER}/`) || key.includes(`/${CLAIMS_FOLDER}/`);
}

/** Renames a state file to another state, keeping its stem, folder and timestamp. */
export function restate(stateFileKey: string, state: ManifestState): string {
  const parsed = parseStateFileName(baseName(stateFileKey));
  if (!parsed) throw new Error(`not a manifest state file: ${stateFileKey}`);
  return `${folderOf(stateFileKey)}${parsed.stem}${state}-${parsed.timestamp}.csv`;
}

const TIFF_EXTENSION = /\.tiff?$/i;

export function hasTiffExtension(key: string): boolean {
  return TIFF_EXTENSION.test(key);
}

/** The JPEG preview's key: only the extension changes (`a.tif.d/x.tif` → `a.tif.d/x.jpg`). */
export function previewKey(imageKey: string): string {
  if (!hasTiffExtension(imageKey)) throw new Error(`not a .tif key: ${imageKey}`);
  return imageKey.replace(TIFF_EXTENSION, '.jpg');
}

export function crondorBatchName(pattern: string): string {
  return `COG-Pipeline-Crondor-${pattern}`;
}

export function dagBatchName(pattern: string): string {
  return `COG-Pipeline-DAG-${pattern}`;
}
