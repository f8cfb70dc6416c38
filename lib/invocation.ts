import { fileURLToPath } from 'node:url';
import type { Invocation } from './submit_rendering.ts';

/**
 * How jobs run this program: this very Node.js binary, with tsx loaded by absolute URL, on the
 * absolute path of cog_pipeline.ts, so a job finds all three from its spool directory and
 * whatever its environment.
 */
export function selfInvocation(): Invocation {
  return {
    program: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../cog_pipeline.ts', import.meta.url))],
  };
}

/** The environment jobs need from the launcher's (only settings, never secrets). */
export function jobEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  return env.AWS_REGION ? { AWS_REGION: env.AWS_REGION } : {};
}
