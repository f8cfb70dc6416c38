import { open, rm } from 'node:fs/promises';
import { dagVarValue, dagWord } from './condor_syntax.ts';
import { baseName, previewKey } from './naming.ts';
import { renderTemplate, renderTemplateAround } from './template.ts';

/**
 * The workflow's DAG (SPEC 3.3): one layer of conversion nodes named `<layer>_<index>`,
 * each retried 3 times, and a NOOP FINAL node whose POST script runs `post`.
 */

/** The DAG file's name in the workflow directory; DAGMan names its own files after it. */
export const DAG_FILE = 'dagfile.dag';

/** An image to convert: its key, the manifest's band count, and its size in bytes. */
export type DagImage = { key: string; bands: number; bytes: number };

const KIB = 1024;
const MIN_DISK_KIB = 2 * 1024 * 1024; // 2 GiB, what every node asked for before

/**
 * The scratch disk a node needs, in KiB (request_disk's unit): the input, the COG written beside
 * it and GDAL's temporary overviews, about three times the input, and never less than 2 GiB.
 */
export function nodeDiskKib(bytes: number): number {
  return Math.max(MIN_DISK_KIB, Math.ceil((3 * bytes) / KIB));
}

export type WorkflowDag = {
  timestamp: string;
  /** `COG-Pipeline-DAG-<pattern>`, white space made `_` so node names stay one word. */
  layerName: string;
  images: DagImage[];
  /** The node submit file, relative to the workflow directory. */
  nodeSubmitFile: string;
  /** The POST script of the FINAL node: program and arguments. */
  postCommand: string[];
};

export function layerName(batchName: string): string {
  return batchName.replace(/\s/g, '_');
}

/** The conversion node of the image at `index` of the DAG's images. */
function nodeName(layer: string, index: number): string {
  return `${layer}_${index}`;
}

/** The index of the image a conversion node converts, from the node's name; undefined for other nodes. */
export function imageIndexOfNode(name: string): number | undefined {
  const index = /_(\d+)$/.exec(name)?.[1];
  return index === undefined ? undefined : Number(index);
}

/**
 * Names for each image's node files (`<name>.log/.out/.err`): the base name, as users know it,
 * unless two images share a base name, in which case the whole key keeps them apart; a name
 * still taken (`a/x.tif` and a key `a_x.tif`) gets `~2`, `~3`, ... Every image gets its own.
 */
export function nodeFileNames(keys: string[]): Map<string, string> {
  const bases = keys.map(baseName);
  const count = new Map<string, number>();
  for (const b of bases) count.set(b, (count.get(b) ?? 0) + 1);
  const taken = new Set<string>();
  const names = new Map<string, string>();
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const wanted = count.get(bases[i]!)! > 1 ? k.replaceAll('/', '_') : bases[i]!;
    let name = wanted;
    for (let n = 2; taken.has(name); n++) name = `${wanted}~${n}`;
    taken.add(name);
    names.set(k, name);
  }
  return names;
}

/** About how much of the DAG file is held at once while it is written (UTF-16 code units). */
const CHUNK = 1 << 16;

/**
 * The DAG file's text in pieces of about `chunk` characters, the nodes rendered as the pieces
 * are taken: at 100 000 images (30 MB) the file never exists whole in memory.
 */
export function* dagPieces(dag: WorkflowDag, chunk = CHUNK): Generator<string> {
  const [head, tail] = renderTemplateAround(
    'dagfile.dag',
    {
      TIMESTAMP: dag.timestamp,
      NODE_COUNT: String(dag.images.length),
      POST_COMMAND: dag.postCommand.map((w) => dagWord(w, 'POST script word')).join(' '),
    },
    'NODES',
  );
  const names = nodeFileNames(dag.images.map((i) => i.key));
  let piece = head;
  for (let index = 0; index < dag.images.length; index++) {
    const image = dag.images[index]!;
    if (index > 0) piece += '\n';
    piece += renderTemplate('dag_node.dag', {
      NODE_NAME: nodeName(dag.layerName, index),
      SUBMIT_FILE: dag.nodeSubmitFile,
      FULL_INFILE: dagVarValue(image.key),
      INFILE: dagVarValue(baseName(image.key)),
      FULL_OUTFILE: dagVarValue(previewKey(image.key)),
      OUTFILE: dagVarValue(baseName(previewKey(image.key))),
      BANDS: dagVarValue(String(image.bands)),
      DISK_KIB: dagVarValue(String(nodeDiskKib(image.bytes))),
      LOGNAME: dagVarValue(names.get(image.key)!),
    }).trimEnd();
    if (piece.length >= chunk) {
      yield piece;
      piece = '';
    }
  }
  yield piece + tail;
}

/**
 * Writes the DAG file as a stream, a piece at a time, each written before the next is rendered;
 * returns its size in bytes. A DAG that cannot be rendered (a value DAGMan could not read) leaves
 * no file behind, as before.
 */
export async function writeDag(file: string, dag: WorkflowDag): Promise<number> {
  const out = await open(file, 'w');
  let bytes = 0;
  try {
    for (const piece of dagPieces(dag)) {
      const buffer = Buffer.from(piece, 'utf8');
      for (let offset = 0; offset < buffer.length; ) offset += (await out.write(buffer, offset)).bytesWritten;
      bytes += buffer.length;
    }
  } catch (err) {
    await out.close();
    await rm(file, { force: true });
    throw err;
  }
  await out.close();
  return bytes;
}
