import type { PipelineSettings } from '../../lib/submit_rendering.ts';

/** Pipeline settings as an access point would have them (fixed paths), for tests of rendering and submission. */
export function sampleSettings(overrides: Partial<PipelineSettings> = {}): PipelineSettings {
  return {
    inputBucket: 'sco-in',
    outputBucket: 'sco-out',
    pattern: '*raw.csv',
    maxRunning: 10000,
    s3: { accessKeyFile: '/home/sco/keyid', secretKeyFile: '/home/sco/secret', endpoint: 'web.s3.wisc.edu' },
    api: { url: 'https://ap.example.edu:8080', tokenFile: '/home/sco/.condor/tokens.d/ap' },
    dagman: '/usr/bin/condor_dagman',
    ...overrides,
  };
}
