/**
 * A Python client from Debian (python3-matrix-nio, installed by .ci/run)
 * against the service: it logs in with a password, sets its presence, lists
 * its room and members, and sees a room peer's presence through /sync
 * (fixtures/nio_client.py). Skipped only outside CI when nio is missing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ALICE, BOB, SHARED_ROOM, TOKENS, closeAll, http, presencePath, startService, testConfig, waitFor } from './helpers.js';

afterEach(closeAll);

const script = fileURLToPath(new URL('./fixtures/nio_client.py', import.meta.url));

/** Debian's python3 first: a python3 earlier on PATH (pyenv, venv) does not see Debian's packages. */
function pythonWithNio(): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    if (python.startsWith('/') && !existsSync(python)) continue;
    const r = spawnSync(python, ['-c', 'import nio'], { stdio: 'ignore', cwd: '/' });
    if (r.status === 0) return python;
  }
  return undefined;
}

const python = pythonWithNio();
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

describe.skipIf(python === undefined && !inCi)('matrix-nio (Debian python3-matrix-nio) against the service', () => {
  it('logs in with a password, sets presence, lists its room and sees a peer’s presence', async () => {
    expect(python, 'python3-matrix-nio is not installed: apt-get install python3-matrix-nio (.ci/run does)').toBeDefined();
    const { url } = await startService(
      testConfig({
        service: {
          users: [
            { user_id: ALICE, password: 'nio-password' },
            { user_id: BOB, access_token: TOKENS[BOB] },
          ],
        },
      }),
    );
    // cwd '/': the script's directory must not shadow nio's modules.
    const child = spawn(python as string, [script, url, 'alice', 'nio-password', BOB, 'from js'], { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
        buffered = buffered.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const event = (name: string) => lines.find((l) => l.event === name);
    try {
      await waitFor(() => event('ready') !== undefined || event('error') !== undefined || child.exitCode !== null, 30_000, 'the nio client to log in and sync');
      expect(event('error'), `${JSON.stringify(lines)}\n${stderr}`).toBeUndefined();
      expect(event('logged_in')).toMatchObject({ user_id: ALICE });
      expect(event('ready')).toMatchObject({ rooms: { [SHARED_ROOM]: [ALICE, BOB] } });

      // nio's own PUT reached the engine.
      const alice = await http(url, 'GET', presencePath(ALICE), { token: TOKENS[BOB] as string });
      expect(alice.body).toMatchObject({ presence: 'online', status_msg: 'from nio' });

      const put = await http(url, 'PUT', presencePath(BOB), { token: TOKENS[BOB] as string, json: { presence: 'unavailable', status_msg: 'from js' } });
      expect(put.status, put.text).toBe(200);
      const code = await exited;
      expect(code, `${JSON.stringify(lines)}\n${stderr}`).toBe(0);
      expect(event('peer_presence')).toEqual({ event: 'peer_presence', user_id: BOB, presence: 'unavailable', status_msg: 'from js' });
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
  }, 60_000);
});
