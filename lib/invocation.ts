import { BUILT_ENTRY, buildProblem, RUNNING_BUILT } from './build.ts';
import type { Invocation } from './submit_rendering.ts';

/** The build the jobs would run is missing or not of these sources. */
export class StaleBuildError extends Error {
  override name = 'StaleBuildError';
}

/**
 * How jobs run this program: this very Node.js binary on the absolute path of the build,
 * `dist/cog_pipeline.js` (lib/build.ts), plain JavaScript: no tsx, nothing compiled at each run.
 *
 * Run from the build (the crondor job, the post step) this is the build itself. Run from the
 * sources (`npx tsx cog_pipeline.ts`, the tests), the build must be of these very sources, or
 * the jobs would run other code than the one launched: when it is missing or older, this throws,
 * saying to run `npm run build`. It does not build by itself: a launch must not rewrite the
 * program under the jobs of other launches that run it, nor need the compiler and its time;
 * scripts/install.sh builds at install, as `npm test` does before the tests.
 */
export function selfInvocation(): Invocation {
  if (!RUNNING_BUILT) {
    const problem = buildProblem();
    if (problem !== undefined) {
      throw new StaleBuildError(`${problem}; the jobs run the build: run "npm run build" (scripts/install.sh does), then try again`);
    }
  }
  return { program: process.execPath, args: [BUILT_ENTRY] };
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
