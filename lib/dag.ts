import { dagVarValue, dagWord } from './condor_syntax.ts';
import { baseName, previewKey } from './naming.ts';
import { renderTemplate } from './template.ts';

/**
 * The workflow's DAG (SPEC 3.3): one layer of conversion nodes named `<layer>_<index>`,
 * each retried 3 times, and a NOOP FINAL node whose POST script runs `post`.
 */

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

/**
 * Names for each image's node files (`<name>.log/.out/.err`): the base name, as users know it,
 * unless two images share a base name, in which case the whole key keeps them apart; a name
 * still taken (`a/x.tif` and a key `a_x.tif`) gets `~2`, `~3`, ... Every image gets its own.
 */
export function nodeFileNames(keys: string[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const k of keys) count.set(baseName(k), (count.get(baseName(k)) ?? 0) + 1);
  const taken = new Set<string>();
  const names = new Map<string, string>();
  for (const k of keys) {
    const wanted = count.get(baseName(k))! > 1 ? k.replaceAll('/', '_') : baseName(k);
    let name = wanted;
    for (let n = 2; taken.has(name); n++) name = `${wanted}~${n}`;
    taken.add(name);
    names.set(k, name);
  }
  return names;
}

export function renderDag(dag: WorkflowDag): string {
  const names = nodeFileNames(dag.images.map((i) => i.key));
  const nodes = dag.images.map((image, index) =>
    renderTemplate('dag_node.dag', {
      NODE_NAME: `${dag.layerName}_${index}`,
      SUBMIT_FILE: dag.nodeSubmitFile,
      FULL_INFILE: dagVarValue(image.key),
      INFILE: dagVarValue(baseName(image.key)),
      FULL_OUTFILE: dagVarValue(previewKey(image.key)),
      OUTFILE: dagVarValue(baseName(previewKey(image.key))),
      BANDS: dagVarValue(String(image.bands)),
      DISK_KIB: dagVarValue(String(nodeDiskKib(image.bytes))),
      LOGNAME: dagVarValue(names.get(image.key)!),
    }).trimEnd(),
  );
  return renderTemplate(
    'dagfile.dag',
    {
      TIMESTAMP: dag.timestamp,
      NODE_COUNT: String(dag.images.length),
      NODES: nodes.join('\n'),
      POST_COMMAND: dag.postCommand.map((w) => dagWord(w, 'POST script word')).join(' '),
    },
    ['NODES'],
  );
}
