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

/**
 * The variables the pipeline's jobs take from the environment of the launch. The schedd starts
 * local and scheduler universe jobs with no inherited environment, and htcondor-api ignores
 * `getenv`, so the launch captures these and every later job passes them on (the crondor job to
 * DAGMan, DAGMan to the post step). Settings only: HTCondor's configuration and the tools'
 * search path (as condor_submit_dag's getenv list), the AWS region and a private CA.
 */
const JOB_ENVIRONMENT = [
  'CONDOR_CONFIG',
  'PATH',
  'HOME',
  'USER',
  'LANG',
  'LC_ALL',
  'TZ',
  'AWS_REGION',
  'AWS_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
];

export function jobEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of JOB_ENVIRONMENT) {
    const value = env[name];
    // A value on several lines cannot be carried in a job's environment; leave it out.
    if (value !== undefined && value !== '' && !/[\r\n]/.test(value)) picked[name] = value;
  }
  return picked;
}
