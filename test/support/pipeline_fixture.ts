import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { HtcondorApi } from '../../lib/htcondor_api.ts';
import { createLogger, type Logger } from '../../lib/log.ts';
import { createS3Client, S3Store } from '../../lib/s3_store.ts';
import { ApiSchedd } from '../../lib/schedd.ts';
import type { PipelineSettings } from '../../lib/submit_rendering.ts';
import { startStandin, type Standin, type StandinOptions } from '../standin/standin.ts';
import { settingsFor, startS3Server } from './s3_server.ts';

export const FIXTURES = new URL('../fixtures/', import.meta.url);
export const fixturePath = (name: string) => fileURLToPath(new URL(`images/${name}`, FIXTURES));

/** A real S3 server and the htcondor-api stand-in on loopback, key files, and a launch directory. */
export type PipelineFixture = Awaited<ReturnType<typeof startPipelineFixture>>;

export async function startPipelineFixture(opts: { buckets?: string[]; standin?: StandinOptions } = {}) {
  const buckets = opts.buckets ?? ['sco-in', 'sco-out'];
  const s3 = await startS3Server({ buckets });
  let standin: Standin | undefined;
  try {
    standin = await startStandin(opts.standin);
  } catch (err) {
    await s3.stop();
    throw err;
  }
  const home = mkdtempSync(path.join(os.tmpdir(), 'cog-pipeline-test-'));
  const accessKeyFile = path.join(home, 'keyid');
  const secretKeyFile = path.join(home, 'secret');
  writeFileSync(accessKeyFile, `  ${s3.accessKeyId}\n`);
  writeFileSync(secretKeyFile, `${s3.secretAccessKey}\n\n`);
  const launchDir = path.join(home, 'launch');
  const store = new S3Store(createS3Client(settingsFor(s3)));
  const settings: PipelineSettings = {
    inputBucket: buckets[0]!,
    outputBucket: buckets[1] ?? buckets[0]!,
    pattern: '*raw.csv',
    maxRunning: 50,
    s3: { accessKeyFile, secretKeyFile, endpoint: s3.endpoint },
    api: { url: standin.url, tokenFile: standin.tokenFile },
    dagman: '/usr/bin/condor_dagman',
  };
  const schedd = new ApiSchedd(new HtcondorApi({ url: standin.url, token: readFileSync(standin.tokenFile, 'utf8').trim() }));
  const started = standin;
  return {
    s3,
    standin: started,
    store,
    settings,
    schedd,
    home,
    launchDir,
    /** The launch command's flags for this fixture, as a user would type them. */
    launchArgs(): string[] {
      return [
        '-a', accessKeyFile, '-s', secretKeyFile, '-e', s3.endpoint,
        '--input-bucket', settings.inputBucket, '--output-bucket', settings.outputBucket, '-p', settings.pattern,
        '--api-url', started.url, '--api-token-file', started.tokenFile,
      ];
    },
    /** Empties both buckets and the launch directory, so each test starts clean. */
    async reset() {
      for (const bucket of new Set([settings.inputBucket, settings.outputBucket])) {
        for (const key of await keysOf(store, bucket)) await store.delete(bucket, key);
      }
      rmSync(launchDir, { recursive: true, force: true });
      mkdirSync(launchDir, { recursive: true });
    },
    async stop() {
      await schedd.close();
      await started.stop();
      await s3.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A logger that keeps what it was told, for assertions. */
export function memoryLogger(): Logger & { text(): string } {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const log = createLogger(out, out);
  return { ...log, text: () => text };
}

export async function keysOf(store: S3Store, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.listObjects(bucket)) keys.push(o.key);
  return keys.sort();
}
