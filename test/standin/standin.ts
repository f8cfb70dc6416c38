import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApiServer } from './http_api.ts';
import { StandinSchedd } from './schedd.ts';

/**
 * TEST AND DEMO STAND-IN for htcondor-api and the schedd behind it. Production runs on a real
 * HTCondor pool; this exists because none can be installed here. Binds 127.0.0.1 on a free port.
 */
export type Standin = {
  /** Base URL, as given to `--api-url`. */
  url: string;
  /** A file holding the token, as given to `--api-token-file`. */
  tokenFile: string;
  schedd: StandinSchedd;
  /** Where the stand-in keeps its spool and token. */
  directory: string;
  stop(): Promise<void>;
};

export async function startStandin(opts: { directory?: string; owner?: string } = {}): Promise<Standin> {
  const directory = opts.directory ?? mkdtempSync(path.join(os.tmpdir(), 'htcondor-standin-'));
  mkdirSync(directory, { recursive: true });
  const token = randomBytes(24).toString('base64url');
  const tokenFile = path.join(directory, 'token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const workingDir = path.join(directory, 'server');
  mkdirSync(workingDir, { recursive: true });
  const schedd = new StandinSchedd({ spoolDir: path.join(directory, 'spool'), owner: opts.owner ?? os.userInfo().username, host: '<127.0.0.1:9618>' });
  const server = await startApiServer({ schedd, token, workingDir });
  return {
    url: server.url,
    tokenFile,
    schedd,
    directory,
    async stop() {
      await server.close();
      if (!opts.directory) rmSync(directory, { recursive: true, force: true });
    },
  };
}
