/**
 * The production install, as a user gets it: `npm pack`, install the tarball
 * with `--omit=dev` into a scratch directory, then `npx presence-engine serve`
 * on the packaged example config serves /versions and presence, and a stock
 * matrix-js-sdk client logs in with a password and reaches PREPARED. Also: a
 * TypeScript consumer of the package type-checks with `skipLibCheck: false`
 * without ioredis installed (it is an optional peer of presence-engine/redis).
 *
 * Slow (a build and an npm install): runs in CI (CI=true) or with
 * PRESENCE_PACK_TEST=1.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientEvent, createClient, SyncState, type MatrixClient } from 'matrix-js-sdk';
import { logger as sdkGlobalLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, describe, expect, it } from 'vitest';

(sdkGlobalLogger as unknown as { setLevel(level: 'silent'): void }).setLevel('silent');

/** Log in as `user` with `password`, start the client's sync loop and resolve once it is PREPARED. */
async function preparedClient(baseUrl: string, user: string, password: string): Promise<MatrixClient> {
  const login = await createClient({ baseUrl }).loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password });
  const client = createClient({ baseUrl, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
  const prepared = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PREPARED (state ${client.getSyncState() ?? 'null'})`)), 20_000);
    client.on(ClientEvent.Sync, (state: SyncState) => {
      if (state !== SyncState.Prepared) return;
      clearTimeout(timer);
      resolve();
    });
  });
  await client.startClient({ initialSyncLimit: 10 });
  await prepared;
  return client;
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const enabled = process.env.CI === 'true' || process.env.PRESENCE_PACK_TEST === '1';
let scratch: string | undefined;
let child: ChildProcess | undefined;

afterAll(() => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

describe.runIf(enabled)('npm pack → install --omit=dev → npx presence-engine serve', () => {
  it('serves from the installed package and type-checks for a consumer without ioredis', async () => {
    scratch = mkdtempSync(join(tmpdir(), 'presence-pack-'));
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', scratch], root)) as { filename: string }[];
    const tarball = join(scratch, packed[0]?.filename ?? '');
    expect(existsSync(tarball)).toBe(true);
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', tarball], scratch);
    const pkg = join(scratch, 'node_modules', 'presence-engine');
    expect(existsSync(join(pkg, 'dist', 'service', 'cli.js'))).toBe(true);
    expect(existsSync(join(scratch, 'node_modules', 'ioredis'))).toBe(false);
    expect(existsSync(join(scratch, 'node_modules', 'tsx'))).toBe(false);

    expect(run('npx', ['--no-install', 'presence-engine', '--help'], scratch)).toContain('serve');

    child = spawn('npx', ['--no-install', 'presence-engine', 'serve', join(pkg, 'dist', 'examples', 'homeserver.yaml'), '--port', '0'], {
      cwd: scratch,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`did not start:\n${out}`)), 60_000);
      const onData = (c: Buffer) => {
        out += c.toString('utf8');
        const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(m[1] as string);
        }
      };
      child?.stdout?.on('data', onData);
      child?.stderr?.on('data', onData);
      child?.once('exit', (code) => reject(new Error(`exited with ${String(code)}:\n${out}`)));
    });
    expect((await fetch(`${url}/_matrix/client/versions`)).status).toBe(200);
    const path = `/_matrix/client/v3/presence/${encodeURIComponent('@alice:example.org')}/status`;
    const put = await fetch(`${url}${path}`, { method: 'PUT', headers: { authorization: 'Bearer alice-demo-token' }, body: JSON.stringify({ presence: 'online', status_msg: 'packed' }) });
    expect(put.status).toBe(200);
    const got = await fetch(`${url}${path}`, { headers: { authorization: 'Bearer bob-demo-token' } });
    expect(await got.json()).toMatchObject({ presence: 'online', status_msg: 'packed' });
    // A stock client: password login, then startClient() until PREPARED, seeing its room and a peer's presence.
    const bobPath = `/_matrix/client/v3/presence/${encodeURIComponent('@bob:example.org')}/status`;
    expect((await fetch(`${url}${bobPath}`, { method: 'PUT', headers: { authorization: 'Bearer bob-demo-token' }, body: JSON.stringify({ presence: 'online' }) })).status).toBe(200);
    const client = await preparedClient(url, 'alice', 'alice-demo-password');
    try {
      expect(client.getRooms().length).toBeGreaterThan(0);
      expect(client.getUser('@bob:example.org')?.presence).toBe('online');
    } finally {
      client.stopClient();
    }
    // SIGTERM to the npx PID: a shell between npx and node does not pass it on; the service sees its parent go and stops.
    child.kill('SIGTERM');
    const deadline = Date.now() + 15_000;
    while (!out.includes('stopped in') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('stopped in');
    await expect(fetch(`${url}/_matrix/client/versions`)).rejects.toThrow();

    // A consumer's strict type-check of the package (no ioredis installed).
    writeFileSync(
      join(scratch, 'consumer.ts'),
      [
        "import { createPresenceEngine, type PresenceEngine } from 'presence-engine';",
        "import { MemoryLogger } from 'presence-engine';",
        "const engine: PresenceEngine = createPresenceEngine({ config: { server_name: 'x.test' }, logger: new MemoryLogger() });",
        "engine.setPresence('@a:x.test', { presence: 'online' });",
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], scratch);
  }, 600_000);
});
