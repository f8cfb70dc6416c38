import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { readNodeOutcomes } from '../lib/nodes_log.ts';
import { formatEvent } from './standin/userlog.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'nodes-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const when = new Date('2026-11-25T10:15:00Z');
const HOST = '<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=submit.example.edu>';

/** One node job's events as the schedd writes them to DAGMan's nodes log. */
function job(cluster: number, node: string, returnValue: number | 'signal'): string {
  return (
    formatEvent(cluster, 0, when, { kind: 'submit', host: HOST, dagNode: node }) +
    formatEvent(cluster, 0, when, { kind: 'execute', host: HOST }) +
    formatEvent(cluster, 0, when, returnValue === 'signal' ? { kind: 'terminate', exitCode: null, signal: 9 } : { kind: 'terminate', exitCode: returnValue, signal: null })
  );
}

test('no nodes log (DAGMan never ran a node job): no outcomes', () => {
  assert.deepEqual(readNodeOutcomes(path.join(dir, 'absent.nodes.log')), new Map());
});

test('each node is known by its submit event; its last termination decides, retries included', () => {
  const file = path.join(dir, 'retries.nodes.log');
  writeFileSync(
    file,
    job(11, 'L_0', 0) +
      job(12, 'L_1', 1) +
      job(13, 'L_2', 1) +
      job(14, 'L_2', 0) + // DAGMan's RETRY: the second attempt succeeded
      job(15, 'L_3', 'signal') +
      // Submitted and held, then removed: aborted, never terminated.
      formatEvent(16, 0, when, { kind: 'submit', host: HOST, dagNode: 'L_4' }) +
      formatEvent(16, 0, when, { kind: 'hold', reason: 'Transfer input files failure', code: 13, subcode: 2 }) +
      formatEvent(16, 0, when, { kind: 'abort', reason: 'via condor_rm (by user cog)' }) +
      // A job that is not a node's (no DAG Node note): ignored.
      formatEvent(17, 0, when, { kind: 'submit', host: HOST }) +
      formatEvent(17, 0, when, { kind: 'terminate', exitCode: 0, signal: null }) +
      // The FINAL NOOP node: DAGMan's fake submit and termination, told apart by subproc.
      formatEvent(0, -1, when, { kind: 'submit', host: '<dummy-submit-for-noop-job>', dagNode: 'final' }, 1) +
      formatEvent(0, -1, when, { kind: 'terminate', exitCode: 0, signal: null }, 1),
  );
  assert.deepEqual(
    readNodeOutcomes(file),
    new Map([['L_0', true], ['L_1', false], ['L_2', true], ['L_3', false], ['final', true]]),
  );
});

test('the submit event as HTCondor writes it, with more notes after the node name', () => {
  const file = path.join(dir, 'notes.nodes.log');
  writeFileSync(
    file,
    '000 (2041.000.000) 2026-11-25 10:15:01 Job submitted from host: <128.104.100.1:9618?addrs=128.104.100.1-9618&noUDP>\n' +
      '    DAG Node: COG-Pipeline-DAG-*raw.csv_7\n' +
      '    WARNING: Committed job submission into the queue with the following warning(s):\n' +
      '...\n' +
      '005 (2041.000.000) 2026-11-25 10:19:09 Job terminated.\n' +
      '\t(1) Normal termination (return value 0)\n' +
      '\t\tUsr 0 00:03:10, Sys 0 00:00:02  -  Run Remote Usage\n' +
      '...\n',
  );
  assert.deepEqual(readNodeOutcomes(file), new Map([['COG-Pipeline-DAG-*raw.csv_7', true]]));
});

test('a log of many MB, read in pieces: events cut by a piece boundary, one event longer than a piece, non-ASCII names', () => {
  const file = path.join(dir, 'large.nodes.log');
  writeFileSync(file, '');
  const expected = new Map<string, boolean>();
  let cluster = 1000;
  for (let i = 0; i < 6000; i++) {
    // Names of varying length and width, so that events land across boundaries at every offset.
    const node = `COG-Pipeline-DAG-Südwest_ä${'é'.repeat(i % 13)}*raw.csv_${i}`;
    const ok = i % 17 !== 0;
    appendFileSync(file, job(++cluster, node, ok ? 0 : 2));
    expected.set(node, ok);
    if (i === 2500) {
      // A hold reason of 200 KB: one event longer than the reader's buffer.
      appendFileSync(file, formatEvent(cluster, 0, when, { kind: 'hold', reason: `Error from slot1: ${'x'.repeat(200_000)}`, code: 12, subcode: 0 }));
      appendFileSync(file, job(cluster, node, 0)); // released and run again, to success
      expected.set(node, true);
    }
  }
  assert.deepEqual(readNodeOutcomes(file), expected);
});

test('a last event still being written is read as far as it goes', () => {
  const file = path.join(dir, 'partial.nodes.log');
  const whole = job(21, 'L_0', 0);
  writeFileSync(file, job(20, 'L_9', 0) + whole.slice(0, whole.indexOf('\n...\n', whole.lastIndexOf('005 ('))));
  assert.deepEqual(readNodeOutcomes(file), new Map([['L_9', true], ['L_0', true]]));
});
