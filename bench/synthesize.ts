/**
 * What a finished DAG leaves for the post step, made without running it (no GDAL, no DAGMan):
 * read the DAG the measured cycle wrote, and for each conversion node
 *  - put the COG (FULL_INFILE) and the JPEG (FULL_OUTFILE) into the output bucket (straight into
 *    s3rver's storage, s3_layout.ts), as HTCondor's file transfer would;
 *  - write the node's user log `<LOGNAME>.log` (submit with its DAG node name, execute,
 *    terminate) in HTCondor's format (the stand-in's formatEvent), and the same events to
 *    DAGMan's `dagfile.dag.nodes.log`: post counts an image as processed only when the nodes log
 *    says its node's job ended well in this workflow (lib/post.ts convertedImages).
 * Every `failEvery`-th node fails instead: exit code 1, no outputs, an `.err` with a GDAL-style
 * ERROR line, so post writes both a processed and a failed CSV.
 */
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { parseDag } from '../test/standin/dag_file.ts';
import { formatEvent } from '../test/standin/userlog.ts';
import type { DiskWriter } from './s3_layout.ts';

export type Synthesized = { nodes: number; converted: number; failed: number; postCommand: string[] };

const COG = Buffer.from('II*\0bench: a converted COG\n');
const JPEG = Buffer.from('\xff\xd8\xff bench: a preview\n', 'latin1');
const HOST = '<127.0.0.1:9618>';

export async function synthesizeFinishedDag(
  workflowDir: string,
  disk: DiskWriter,
  outputBucket: string,
  failEvery: number,
): Promise<Synthesized> {
  const dagFile = path.join(workflowDir, 'dagfile.dag');
  const dag = parseDag(readFileSync(dagFile, 'utf8'), dagFile, { useDagDir: true });
  const final = dag.nodes.find((n) => n.final);
  if (final?.post === undefined) throw new Error(`${dagFile} has no FINAL node with a POST script: the bench cannot run post as DAGMan would`);
  const nodesLog = createWriteStream(`${dagFile}.nodes.log`);
  const when = new Date();
  let cluster = 1000;
  const result: Synthesized = { nodes: 0, converted: 0, failed: 0, postCommand: final.post.trim().split(/\s+/) };
  for (const node of dag.nodes) {
    if (node.final || node.noop) continue;
    const vars = new Map(node.vars);
    const [infile, outfile, logName] = ['FULL_INFILE', 'FULL_OUTFILE', 'LOGNAME'].map((v) => vars.get(v));
    if (infile === undefined || outfile === undefined || logName === undefined) {
      throw new Error(`node ${node.name} of ${dagFile} lacks FULL_INFILE, FULL_OUTFILE or LOGNAME: update bench/synthesize.ts to the DAG's VARS`);
    }
    const fails = (result.nodes + 1) % failEvery === 0;
    result.nodes++;
    cluster++;
    const events =
      formatEvent(cluster, 0, when, { kind: 'submit', host: HOST, dagNode: node.name }) +
      formatEvent(cluster, 0, when, { kind: 'execute', host: HOST }) +
      formatEvent(cluster, 0, when, { kind: 'terminate', exitCode: fails ? 1 : 0, signal: null });
    writeFileSync(path.join(workflowDir, `${logName}.log`), events);
    if (!nodesLog.write(events)) await once(nodesLog, 'drain');
    if (fails) {
      writeFileSync(path.join(workflowDir, `${logName}.err`), `ERROR 4: ${path.basename(infile)}: bench: a synthetic conversion failure\n`);
      result.failed++;
    } else {
      disk.put(outputBucket, infile, COG);
      disk.put(outputBucket, outfile, JPEG);
      result.converted++;
    }
  }
  nodesLog.end();
  await once(nodesLog, 'finish');
  return result;
}
