import { closeSync, openSync, readSync } from 'node:fs';

/**
 * DAGMan's nodes log (`dagfile.dag.nodes.log`): every event of every node job of the DAG, in the
 * user-log format (`NNN (cluster.proc.subproc) date text`, detail lines, `...`). DAGMan follows
 * it to decide which nodes succeeded; post reads it once, at the end, for the same answer.
 *
 * A node's jobs are known by their submit events, which name the node on their second line
 * (`    DAG Node: <name>`: condor_dagman submits every node job with `submit_event_notes = DAG
 * Node: <name>` and `dagman_log = <the nodes log>`, src/condor_dagman/dagman_submit.cpp). A
 * node's outcome is that of its last "Job terminated" event: a normal termination with return
 * value 0, or not (RETRY submits the node again, so a later attempt overrides an earlier one).
 */

/** Node name -> whether the node's last terminated job ended normally with return value 0. */
export type NodeOutcomes = Map<string, boolean>;

const EVENT_END = Buffer.from('\n...\n');
const SUBMIT = Buffer.from('000 (');
const TERMINATE = Buffer.from('005 (');
/** The second line of a node job's submit event: DAGMan's note naming the node. */
const DAG_NODE = Buffer.from('    DAG Node: ');
/** The second line of a terminate event, when the job exited by itself with 0. */
const SUCCESS = Buffer.from('\t(1) Normal termination (return value 0)\n');
/** The log is read a piece at a time (it is about 600 bytes per node job: 60 MB at 100 000). */
const PIECE = 64 * 1024;

/** The outcomes in the log; an empty map when there is no log (no node job ever ran). */
export function readNodeOutcomes(file: string): NodeOutcomes {
  const outcomes: NodeOutcomes = new Map();
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return outcomes;
    throw err;
  }
  const nodeOfJob = new Map<string, string>();
  try {
    let buffer = Buffer.allocUnsafe(PIECE);
    let held = 0; // bytes of an event cut off by the last read, moved to the buffer's start
    for (;;) {
      if (held === buffer.length) {
        // One event longer than the buffer (a long hold reason, say): make room for it.
        const larger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(larger);
        buffer = larger;
      }
      const read = readSync(fd, buffer, held, buffer.length - held, null);
      const filled = held + read;
      // Whole events only; at the end of the file, whatever is left (a last event being written).
      // (A negative offset would count from the buffer's end, into bytes of an earlier read.)
      const lastEnd = filled < EVENT_END.length ? -1 : buffer.lastIndexOf(EVENT_END, filled - EVENT_END.length);
      const cut = read === 0 ? filled : lastEnd < 0 ? 0 : lastEnd + EVENT_END.length;
      readEvents(buffer, cut, nodeOfJob, outcomes);
      if (read === 0) return outcomes;
      held = filled - cut;
      buffer.copy(buffer, 0, filled - held, filled);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The events in buffer[0, end), read from the bytes where they are: the only strings made are job
 * ids and node names, the only objects the maps' entries (100 000 node jobs are 300 000 events).
 */
function readEvents(buffer: Buffer, end: number, nodeOfJob: Map<string, string>, outcomes: NodeOutcomes): void {
  let start = 0;
  while (start < end) {
    const found = buffer.indexOf(EVENT_END, start);
    const eventEnd = found < 0 || found >= end ? end : found + 1;
    const event = start;
    start = eventEnd === end ? end : found + EVENT_END.length;
    // Only submit (000) and terminate (005) events matter; the job's id is in the parentheses,
    // what matters of them on their second line.
    const submit = startsWith(buffer, event, eventEnd, SUBMIT);
    if (!submit && !startsWith(buffer, event, eventEnd, TERMINATE)) continue;
    const close = buffer.indexOf(0x29 /* ) */, event);
    const line2 = buffer.indexOf(0x0a /* \n */, event) + 1;
    if (close < 0 || close >= eventEnd || line2 <= 0 || line2 >= eventEnd) continue;
    const job = buffer.toString('latin1', event + SUBMIT.length, close);
    if (submit) {
      if (!startsWith(buffer, line2, eventEnd, DAG_NODE)) continue;
      const name = line2 + DAG_NODE.length;
      const nameEnd = buffer.indexOf(0x0a, name);
      nodeOfJob.set(job, buffer.toString('utf8', name, nameEnd < 0 || nameEnd > eventEnd ? eventEnd : nameEnd).trim());
    } else {
      const node = nodeOfJob.get(job);
      if (node === undefined) continue;
      outcomes.set(node, startsWith(buffer, line2, eventEnd, SUCCESS));
      nodeOfJob.delete(job);
    }
  }
}

/** Whether buffer[at, end) starts with `prefix`. */
function startsWith(buffer: Buffer, at: number, end: number, prefix: Buffer): boolean {
  return end - at >= prefix.length && buffer.compare(prefix, 0, prefix.length, at, at + prefix.length) === 0;
}
