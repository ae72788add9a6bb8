/**
 * `npm start` as a process: the entry point loads examples/homeserver.yaml (or
 * a config named by argument or PRESENCE_CONFIG), logs where it listens, serves
 * requests and exits cleanly on SIGTERM/SIGINT. Also: config validation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { parseServiceConfig, parseServiceConfigYaml } from '../../service/config.js';
import { testConfig } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
// `npm start` runs `node service/start.mjs serve` (tsx registered in-process).
const start = join(root, 'service', 'start.mjs');
const children: ChildProcess[] = [];
const tempDirs: string[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startMain(args: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, [start, 'serve', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start within 30 s:\n${out}`)), 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, output: () => out, exited });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${String(code)} before listening:\n${out}`));
    });
  });
}

async function waitExit(s: Started, ms = 10_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([s.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]);
  clearTimeout(timer);
  if (code === 'timeout') throw new Error(`service did not exit within ${ms} ms:\n${s.output()}`);
  return code;
}

describe('service entry point (npm start)', () => {
  it('starts with examples/homeserver.yaml, serves the example users and stops cleanly on SIGTERM', async () => {
    const s = await startMain(['--port', '0']);
    expect(s.output()).toContain('presence service for example.org listening on http://127.0.0.1:');
    const versions = await fetch(`${s.url}/_matrix/client/versions`);
    expect(versions.status).toBe(200);
    const put = await fetch(`${s.url}/_matrix/client/v3/presence/${encodeURIComponent('@alice:example.org')}/status`, {
      method: 'PUT',
      headers: { authorization: 'Bearer alice-demo-token', 'content-type': 'application/json' },
      body: JSON.stringify({ presence: 'online', status_msg: 'demo' }),
    });
    expect(put.status).toBe(200);
    const got = await fetch(`${s.url}/_matrix/client/v3/presence/${encodeURIComponent('@alice:example.org')}/status`, {
      headers: { authorization: 'Bearer bob-demo-token' },
    });
    expect(await got.json()).toMatchObject({ presence: 'online', status_msg: 'demo' });
    s.child.kill('SIGTERM');
    expect(await waitExit(s)).toBe(0);
    expect(s.output()).toMatch(/SIGTERM: shutting down[\s\S]*stopped/);
  }, 120_000);

  it('takes the config path from PRESENCE_CONFIG and stops on SIGINT; refuses a bad config with exit code 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-service-'));
    tempDirs.push(dir);
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'server_name: env.test\nservice:\n  listen: { port: 0 }\n  users:\n    - { user_id: "@x:env.test", access_token: x-token-123 }\n');
    const s = await startMain([], { PRESENCE_CONFIG: good });
    expect(s.output()).toContain('presence service for env.test listening on');
    s.child.kill('SIGINT');
    expect(await waitExit(s)).toBe(0);

    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server_name: env.test\nservice:\n  listen: { port: 0 }\n  userz: []\n');
    const child = spawn(process.execPath, [start, 'serve', bad], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(out).toContain('service');
    expect(out).toContain('userz');
  }, 120_000);
});

describe('service config validation', () => {
  it('accepts the example config and the test config', async () => {
    const { readFile } = await import('node:fs/promises');
    const loaded = parseServiceConfigYaml(await readFile(join(root, 'examples', 'homeserver.yaml'), 'utf8'));
    expect(loaded.settings.serverName).toBe('example.org');
    expect(loaded.settings.port).toBe(8008);
    expect(loaded.settings.host).toBe('127.0.0.1');
    expect(loaded.settings.tokens.get('alice-demo-token')?.userId).toBe('@alice:example.org');
    expect(parseServiceConfig(testConfig()).settings.tokens.size).toBe(3);
  });

  it.each([
    ['a user of another server', { users: [{ user_id: '@eve:other.test', access_token: 'eve-token-123' }] }, 'service.users[0].user_id'],
    [
      'duplicate tokens',
      {
        users: [
          { user_id: '@a:test.local', access_token: 'same-token-123' },
          { user_id: '@b:test.local', access_token: 'same-token-123' },
        ],
      },
      'service.users[1].access_token',
    ],
    ['an unknown key', { listen: { port: 0, hots: 'x' } }, 'service.listen'],
    ['a peer without a URL scheme', { federation: { peers: [{ server_name: 'p.test', url: 'p.test:8448', shared_secret: 'x'.repeat(20) }] } }, 'service.federation.peers[0].url'],
    ['a short shared secret', { federation: { peers: [{ server_name: 'p.test', url: 'http://p.test', shared_secret: 'short' }] } }, 'service.federation.peers[0].shared_secret'],
    ['ourselves as a peer', { federation: { peers: [{ server_name: 'test.local', url: 'http://x.test', shared_secret: 'x'.repeat(20) }] } }, 'service.federation.peers[0].server_name'],
    ['a bad room id', { rooms: [{ room_id: 'lobby', members: [] }] }, 'service.rooms[0].room_id'],
  ])('rejects %s', (_name, service, path) => {
    const config = { server_name: 'test.local', service };
    let error: unknown;
    try {
      parseServiceConfig(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe(path);
  });
});
