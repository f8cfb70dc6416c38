import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { acquireCycleLock, LOCK_FILE } from '../lib/cycle_lock.ts';
import { startPipelineFixture } from './support/pipeline_fixture.ts';
import { runCli } from './support/run_cli.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function launchDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cog-lock-'));
  dirs.push(dir);
  return dir;
}
const now = () => new Date('2026-11-25T10:15:00Z');

test('one cycle at a time: the second finds the first, and may go once it is released', async () => {
  const dir = launchDir();
  const first = await acquireCycleLock(dir, { now });
  assert.ok('lock' in first);
  const second = await acquireCycleLock(dir, { now });
  assert.ok('heldBy' in second);
  assert.equal(second.heldBy.pid, process.pid);
  assert.equal(second.heldBy.since, '2026-11-25T10:15:00.000Z');
  await first.lock.release();
  const third = await acquireCycleLock(dir, { now });
  assert.ok('lock' in third);
  await third.lock.release();
  assert.deepEqual(readdirSync(dir), []);
});

test('a lock left by a killed cycle does not hold: it is taken over', async () => {
  const dir = launchDir();
  // A process that really ran and is gone: its pid is free now.
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid!;
  await new Promise((resolve) => child.on('exit', resolve));
  writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), since: '2026-11-25T10:00:00.000Z' }));
  const taken = await acquireCycleLock(dir, { now });
  assert.ok('lock' in taken, 'the dead holder\'s lock was taken over');
  await taken.lock.release();
  // A half-written lock (killed between creating and writing it) is taken over too.
  writeFileSync(path.join(dir, LOCK_FILE), '');
  const again = await acquireCycleLock(dir, { now });
  assert.ok('lock' in again);
  await again.lock.release();
  assert.deepEqual(readdirSync(dir), []);
});

test('a lock held by another host on a shared file system is respected', async () => {
  const dir = launchDir();
  writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'other-ap.example.edu', since: '2026-11-25T10:00:00.000Z' }));
  const taken = await acquireCycleLock(dir, { now, alive: () => false });
  assert.ok('heldBy' in taken);
  assert.equal(taken.heldBy.host, 'other-ap.example.edu');
});

test('a crondor cycle that finds another one running says so and exits 0 without touching anything', async () => {
  const fx = await startPipelineFixture();
  try {
    await fx.reset();
    await fx.store.putText(fx.settings.inputBucket, 'a_raw.csv', 'a.tif,1\n');
    const held = await acquireCycleLock(fx.launchDir, { now });
    assert.ok('lock' in held);
    const r = await runCli(['crondor', ...fx.launchArgs(), '--launch-dir', fx.launchDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`another cycle is still running in ${fx.launchDir} \\(pid ${process.pid} on .*, since 2026-11-25T10:15:00\\.000Z\\); this one does nothing`));
    assert.deepEqual(await fx.store.getText(fx.settings.inputBucket, 'a_raw.csv'), 'a.tif,1\n', 'the manifest was not claimed');
    await held.lock.release();
    const next = await runCli(['crondor', ...fx.launchArgs(), '--launch-dir', fx.launchDir]);
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stdout, /found 1 new manifest/);
    assert.ok(!readdirSync(fx.launchDir).includes(LOCK_FILE), 'the cycle released its lock');
  } finally {
    await fx.stop();
  }
});
