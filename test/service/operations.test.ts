/**
 * Running the service as an operator does: `npm start` stops cleanly when
 * the npm PID is signalled (not only the node PID), logs are JSON lines with
 * an access log, a file log reports its start-up and shutdown work, and
 * /_presence/health says whether the service is ready.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { healthOf } from '../../service/ops/health.js';
import { closeAll, http, presencePath, startService, testConfig, ALICE, TOKENS } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const children: ChildProcess[] = [];
/** Service PIDs read from the logs: a service orphaned by a failing test is still killed. */
const servicePids = new Set<number>();
const tempDirs: string[] = [];

afterEach(async () => {
  await closeAll();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of servicePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  servicePids.clear();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Proc {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function launch(command: string, args: string[]): Promise<Proc> {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, PRESENCE_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`did not start within 60 s:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      for (const pid of out.matchAll(/"pid":(\d+)/g)) servicePids.add(Number(pid[1]));
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, output: () => out, exited });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${String(code)} before listening:\n${out}`));
    });
  });
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), ms)))]);
  clearTimeout(timer);
  if (r === 'timeout') throw new Error(`timed out after ${ms} ms: ${what}`);
  return r as T;
}

async function refuses(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/_matrix/client/versions`, { signal: AbortSignal.timeout(2_000) });
    return false;
  } catch {
    return true;
  }
}

/** The JSON log lines of an output (every non-empty stdout line must be one). */
function jsonLines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const fileLogConfig = (dir: string) =>
  [
    'server_name: ops.test',
    'presence: { enabled: true }',
    'rc_presence: { per_user: { per_second: 100, burst_count: 100 } }',
    `log: { kind: file, path: ${JSON.stringify(join(dir, 'log'))}, fsync: always }`,
    'service:',
    '  listen: { host: 127.0.0.1, port: 0 }',
    '  users:',
    '    - { user_id: "@a:ops.test", access_token: a-token-0001 }',
    '    - { user_id: "@b:ops.test", access_token: b-token-0002 }',
    '  rooms:',
    '    - { room_id: "!r:ops.test", members: ["@a:ops.test", "@b:ops.test"] }',
    '',
  ].join('\n');

describe('operating the service', () => {
  it('the presence-engine command: --help lists the commands, serve --help its options, an unknown command exits 2', () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'service', 'start.mjs'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const help = cli('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/usage: presence-engine <command>[\s\S]*\n {2}serve {2}/);
    const serveHelp = cli('serve', '--help');
    expect(serveHelp.status).toBe(0);
    expect(serveHelp.stdout).toContain('--log-level');
    const unknown = cli('explode');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command "explode"');
    expect(cli('serve', '--port', 'eighty').status).toBe(2);
  });

  it('npm start: SIGTERM to the npm PID stops the service (nothing keeps serving)', async () => {
    const p = await launch('npm', ['start', '--', '--port', '0']);
    expect((await fetch(`${p.url}/_matrix/client/versions`)).status).toBe(200);
    p.child.kill('SIGTERM'); // the npm process, not the node process under it
    await within(p.exited, 15_000, `npm to exit:\n${p.output()}`);
    let gone = false;
    for (let i = 0; i < 50 && !gone; i++) {
      gone = await refuses(p.url);
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    expect(gone, `the service still answers after npm exited:\n${p.output()}`).toBe(true);
    expect(p.output()).toMatch(/SIGTERM: shutting down[\s\S]*stopped in/);
  }, 90_000);

  it('a file log: JSON logs, access log without tokens, shutdown snapshot on SIGINT, progress lines on restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-ops-'));
    tempDirs.push(dir);
    const config = join(dir, 'homeserver.yaml');
    writeFileSync(config, fileLogConfig(dir));
    const start = join(root, 'service', 'start.mjs');
    const first = await launch(process.execPath, [start, 'serve', config]);
    for (const presence of ['online', 'unavailable', 'online']) {
      const r = await http(first.url, 'PUT', `${presencePath('@a:ops.test')}?access_token=a-token-0001`, { json: { presence } });
      expect(r.status).toBe(200);
    }
    expect((await http(first.url, 'GET', '/_presence/health')).body).toMatchObject({ status: 'ready', log: { kind: 'file', lag_entries: 0 } });
    first.child.kill('SIGINT');
    expect(await within(first.exited, 15_000, 'the service to exit')).toBe(0);
    const lines = jsonLines(first.output());
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(typeof l.level === 'number' && typeof l.msg === 'string' && typeof l.time === 'number', JSON.stringify(l)).toBe(true);
    const access = lines.map((l) => l.access as Record<string, unknown> | undefined).filter((a) => a !== undefined && a.method === 'PUT');
    expect(access).toHaveLength(3);
    expect(access[0]).toMatchObject({ route: 'presence', status: 200, user: '@a:ops.test', path: presencePath('@a:ops.test') });
    expect(typeof access[0]?.durationMs).toBe('number');
    expect(first.output()).not.toContain('a-token-0001');
    expect(first.output()).toMatch(/writing the shutdown snapshot[\s\S]*shutdown snapshot written in/);
    expect(readdirSync(join(dir, 'log')).some((f) => f.startsWith('snapshot'))).toBe(true);

    const second = await launch(process.execPath, [start, 'serve', config]);
    expect(second.output()).toMatch(/snapshot at position \d+ loaded in [\d.]+ s \(\d+ users\); replaying \d+ entries/);
    expect(second.output()).toMatch(/engine restored in [\d.]+ s/);
    const got = await http(second.url, 'GET', presencePath('@a:ops.test'), { token: 'b-token-0002' });
    expect(got.body).toMatchObject({ presence: 'online' });
    second.child.kill('SIGTERM');
    expect(await within(second.exited, 15_000, 'the service to exit')).toBe(0);
  }, 120_000);

  it('/_presence/health: ready with a memory log; not ready while closing or once the engine stopped', async () => {
    const { service, url } = await startService(testConfig());
    await http(url, 'PUT', presencePath(ALICE), { token: TOKENS[ALICE] as string, json: { presence: 'online' } });
    const r = await http(url, 'GET', '/_presence/health');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ready', reasons: [], log: { kind: 'memory', position: service.engine.log.position, lag_entries: 0 } });
    expect(healthOf(service.engine, { closing: true, listening: true })).toMatchObject({ status: 'not_ready', reasons: ['the service is shutting down'] });
    service.engine.stop();
    expect(healthOf(service.engine, { closing: false, listening: true })).toMatchObject({ status: 'not_ready', reasons: ['the engine is stopped'] });
    const after = await http(url, 'GET', '/_presence/health');
    expect(after.status).toBe(503);
  });

  it('/_presence/health with a file log reports the fsync lag (fsync: never keeps entries unsynced)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-ops-'));
    tempDirs.push(dir);
    const { service, url } = await startService(testConfig({ top: { log: { kind: 'file', path: join(dir, 'log'), fsync: 'never' } } }));
    await http(url, 'PUT', presencePath(ALICE), { token: TOKENS[ALICE] as string, json: { presence: 'online' } });
    const r = await http(url, 'GET', '/_presence/health');
    expect(r.status).toBe(200);
    const log = (r.body as { log: { kind: string; position: number; synced_position: number; lag_entries: number } }).log;
    expect(log.kind).toBe('file');
    expect(log.position).toBe(service.engine.log.position);
    expect(log.lag_entries).toBe(log.position - log.synced_position);
    expect(log.lag_entries).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'log'))).toBe(true);
  });
});
