import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileGlob } from '../lib/glob.ts';
import {
  crondorBatchName,
  dagBatchName,
  isPipelineKey,
  isStateFileKey,
  previewKey,
  restate,
  stateKey,
  workflowDirName,
  workflowTimestamp,
} from '../lib/naming.ts';

test('the workflow timestamp is local time as YYYYmmdd-HHMMSS', () => {
  assert.equal(workflowTimestamp(new Date(2026, 0, 5, 7, 8, 9)), '20260105-070809');
  assert.equal(workflowDirName('20260105-070809'), 'workflow-run-20260105-070809');
});

test('a raw.csv manifest moves through processing, processed and failed in its own folder', () => {
  const ts = '20261125-101500';
  assert.equal(stateKey('Counties/WI/batch1_raw.csv', 'processing', ts), 'Counties/WI/batch1_processing-20261125-101500.csv');
  assert.equal(restate('Counties/WI/batch1_processing-20261125-101500.csv', 'processed'), 'Counties/WI/batch1_processed-20261125-101500.csv');
  assert.equal(restate('Counties/WI/batch1_processing-20261125-101500.csv', 'failed'), 'Counties/WI/batch1_failed-20261125-101500.csv');
});

test('a manifest at the bucket root gets keys without a leading slash', () => {
  const processing = stateKey('test_raw.csv', 'processing', '20261125-101500');
  assert.equal(processing, 'test_processing-20261125-101500.csv');
  assert.equal(restate(processing, 'failed'), 'test_failed-20261125-101500.csv');
});

test('names not ending in raw.csv keep their whole name instead of losing 7 characters', () => {
  const ts = '20261125-101500';
  assert.equal(stateKey('in/batch.csv', 'processing', ts), 'in/batch-processing-20261125-101500.csv');
  assert.equal(stateKey('in/manifest', 'processing', ts), 'in/manifest-processing-20261125-101500.csv');
  assert.equal(stateKey('in/raw.csv', 'processing', ts), 'in/processing-20261125-101500.csv');
});

test('state files are recognised so that no pattern picks them up again', () => {
  const everything = compileGlob('*.csv');
  for (const key of [
    'a/b_processing-20261125-101500.csv',
    'a/b_processed-20261125-101500.csv',
    'b-failed-20261125-101500.csv',
  ]) {
    assert.ok(everything(key));
    assert.ok(isStateFileKey(key), key);
  }
  assert.ok(!isStateFileKey('a/b_raw.csv'));
  assert.ok(!isStateFileKey('a/processing-notes.csv'));
});

test("the pipeline's claim entries are its own objects too, at the root or in a folder, and nothing else is", () => {
  const everything = compileGlob('*');
  for (const key of ['.cog-pipeline-claims/b_raw.csv/0a1b', 'a/.cog-pipeline-claims/b_raw.csv/0a1b', 'a/b_failed-20261125-101500.csv']) {
    assert.ok(everything(key));
    assert.ok(isPipelineKey(key), key);
  }
  for (const key of ['a/b_raw.csv', 'a/my.cog-pipeline-claims/x', 'a/.cog-pipeline-claims', 'x.tif']) assert.ok(!isPipelineKey(key), key);
});

test('the preview key replaces only the extension', () => {
  assert.equal(previewKey('Counties/WI/Wood/1band.tif'), 'Counties/WI/Wood/1band.jpg');
  assert.equal(previewKey('maps.tif/old.tif.d/x.tif'), 'maps.tif/old.tif.d/x.jpg');
  assert.equal(previewKey('a/B.TIFF'), 'a/B.jpg');
  assert.throws(() => previewKey('a/b.png'), /not a \.tif key/);
});

test('batch names keep the pattern as typed', () => {
  assert.equal(crondorBatchName('*raw.csv'), 'COG-Pipeline-Crondor-*raw.csv');
  assert.equal(dagBatchName('*raw.csv'), 'COG-Pipeline-DAG-*raw.csv');
});

test('a state file whose name holds a line break or a Unicode line separator is still known as one', () => {
  for (const sep of ['\n', '\r', '\u2028', '\u2029']) {
    const key = stateKey(`Counties/batch${sep}1_raw.csv`, 'processing', '20261125-101500');
    assert.equal(key, `Counties/batch${sep}1_processing-20261125-101500.csv`);
    assert.ok(isStateFileKey(key), JSON.stringify(key));
    assert.equal(restate(key, 'failed'), `Counties/batch${sep}1_failed-20261125-101500.csv`);
  }
});
