/**
 * The reference service in distributed mode (docs/service.md, "Distributed
 * mode"): three real service processes (`node service/start.mjs serve`) on one
 * redis-server (AOF always), behind a failover proxy standing in for a load
 * balancer. Writes for users a process does not own are forwarded to the owner;
 * sessions from `/login` work on every process; stock matrix-js-sdk clients
 * keep syncing, setting and seeing presence while the process one of them uses
 * is SIGKILLed; no acknowledged (200) presence write is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientEvent, createClient, SetPresence, SyncState, type MatrixClient, type User } from 'matrix-js-sdk';
import { logger as sdkGlobalLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, describe, expect, it } from 'vitest';
import { http, presencePath, quietSdkLogger } from '../service/helpers.js';
import { freePort, startRedis, waitFor, type RedisServer } from './support.js';

(sdkGlobalLogger as unknown as { setLevel(level: 'silent'): void }).setLevel('silent');

const root = fileURLToPath(new URL('../../', import.meta.url));
const ALICE = '@alice:dist.test';
const BOB = '@bob:dist.test';
const ROOM = '!lobby:dist.test';
const BOB_TOKEN = 'bob-token-000000';
const users = Array.from({ length: 10 }, (_, i) => ({ id: `@u${i}:dist.test`, token: `u${i}-token-00000000` }));
const ADMIN = 'admin-token-0123456789';

interface Proc {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: () => string;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

function config(redisUrl: string, name: string, port: number): Record<string, unknown> {
  return {
    server_name: 'dist.test',
    presence: { enabled: true },
    rc_presence: { per_user: { per_second: 100, burst_count: 100 } },
    log: { kind: 'redis', url: redisUrl, partitions: 12, stream_prefix: 'svc' },
    service: {
      listen: { host: '127.0.0.1', port },
      admin_token: ADMIN,
      metrics: false,
      users: [{ user_id: ALICE, password: 'alice-password' }, { user_id: BOB, access_token: BOB_TOKEN }, ...users.map((u) => ({ user_id: u.id, access_token: u.token }))],
      rooms: [{ room_id: ROOM, members: [ALICE, BOB] }],
      distributed: { node_id: name, advertise_url: `http://127.0.0.1:${port}`, forward_secret: 'forward-secret-0123456789', lease_ttl_ms: 1500, renew_interval_ms: 250, forward_timeout_ms: 15_000 },
    },
  };
}

async function startProcess(dir: string, redisUrl: string, name: string): Promise<Proc> {
  const port = await freePort();
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, JSON.stringify(config(redisUrl, name, port))); // YAML is a superset of JSON
  const child = spawn(process.execPath, [join(root, 'service', 'start.mjs'), 'serve', path], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`${name} to listen`, () => {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${out.slice(-3000)}`);
    return /listening on http/.test(out);
  }, 45_000, 50);
  return { name, url: `http://127.0.0.1:${port}`, child, output: () => out };
}

/**
 * The "one address": forwards each request to the first backend that accepts a
 * connection (a refused connection tries the next; a connection that breaks
 * mid-request is answered 502, as a load balancer does).
 */
async function startFailoverProxy(backends: readonly string[]): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const attempt = (i: number): void => {
        const base = backends[i];
        if (base === undefined) {
          res.writeHead(502).end();
          return;
        }
        const target = new URL(req.url ?? '/', base);
        const up = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('error', () => res.destroy());
        });
        res.on('close', () => up.destroy());
        up.on('error', (error: NodeJS.ErrnoException) => {
          if (res.headersSent) res.destroy();
          else if (error.code === 'ECONNREFUSED') attempt(i + 1);
          else res.writeHead(502).end();
        });
        up.end(body);
      };
      attempt(0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { url: `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`, server };
}

async function prepared(client: MatrixClient): Promise<void> {
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PREPARED (state ${client.getSyncState() ?? 'null'})`)), 30_000);
    client.on(ClientEvent.Sync, (state: SyncState) => {
      if (state !== SyncState.Prepared) return;
      clearTimeout(timer);
      resolve();
    });
  });
  await client.startClient({ initialSyncLimit: 10 });
  await ready;
}

/** Wait until `client` shows `userId` with `statusMsg` (polled: the SDK fires User.presence only when the state changes). */
async function sees(client: MatrixClient, userId: string, statusMsg: string, timeoutMs = 30_000): Promise<User> {
  return waitFor(`${client.getUserId() ?? '?'} to see ${userId} with "${statusMsg}"`, () => {
    const u = client.getUser(userId);
    return u?.presenceStatusMsg === statusMsg ? u : undefined;
  }, timeoutMs, 25);
}

describe('the service in distributed mode', () => {
  it('forwards writes, shares sessions, and keeps a matrix-js-sdk client working through a SIGKILL of its process', { timeout: 150_000 }, async () => {
    const redis: RedisServer = await startRedis({ aof: true });
    cleanup.push(() => redis.stop());
    const dir = mkdtempSync(join(tmpdir(), 'presence-dist-service-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const procs = await Promise.all(['a', 'b', 'c'].map((n) => startProcess(dir, redis.url, n)));
    const [a, b, c] = procs as [Proc, Proc, Proc];

    // The configured room is joined through its members' owners, on every process's view.
    await waitFor('the room on every process', async () => {
      const views = await Promise.all(procs.map((p) => http(p.url, 'GET', `/_presence/admin/v1/rooms/${encodeURIComponent(ROOM)}/members`, { token: ADMIN })));
      return views.every((v) => JSON.stringify((v.body as { joined?: string[] }).joined?.sort()) === JSON.stringify([ALICE, BOB]));
    }, 30_000, 100);

    // Every user's presence PUT through every process (two of three are not the owner: forwarded), read on every process.
    for (const u of users) {
      for (const p of procs) {
        const put = await http(p.url, 'PUT', presencePath(u.id), { token: u.token, json: { presence: 'online', status_msg: `${u.id} via ${p.name}` } });
        expect(put.status, `${p.name}: ${put.text}`).toBe(200);
      }
    }
    for (const u of users) {
      for (const p of procs) {
        await waitFor(`${u.id} on ${p.name}`, async () => ((await http(p.url, 'GET', presencePath(u.id), { token: u.token })).body as { status_msg?: string }).status_msg === `${u.id} via c`, 10_000, 50);
      }
    }
    // A forwarded write keeps the owner's answers: a bad presence value is the owner's 400.
    const bad = await Promise.all(procs.map((p) => http(p.url, 'PUT', presencePath(users[0]!.id), { token: users[0]!.token, json: { presence: 'sleepy' } })));
    expect(bad.map((r) => r.status)).toEqual([400, 400, 400]);
    // Visibility policies are refused here, plainly (checkpoints do not carry them yet), not written where they could be lost.
    const policy = await http(a.url, 'PUT', `/_matrix/client/v3/user/${encodeURIComponent(users[0]!.id)}/org.example.presence_policy`, { token: users[0]!.token, json: { invisible: true } });
    expect(policy.status).toBe(501);
    expect(policy.text).toMatch(/distributed mode/);
    // The internal endpoint refuses callers without the forward secret.
    expect((await http(a.url, 'POST', '/_presence/internal/v1/forward', { token: BOB_TOKEN, json: { op: 'sync_end', handle: 'x' } })).status).toBe(401);

    // alice logs in through the proxy (process a); her token works on every process (sessions live in Redis).
    const proxy = await startFailoverProxy([a.url, b.url, c.url]);
    cleanup.push(() => new Promise<void>((r) => proxy.server.close(() => r())));
    const login = await createClient({ baseUrl: proxy.url, logger: quietSdkLogger }).loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' }, password: 'alice-password' });
    for (const p of procs) expect((await http(p.url, 'GET', '/_matrix/client/v3/account/whoami', { token: login.access_token })).body).toMatchObject({ user_id: ALICE });
    const alice = createClient({ baseUrl: proxy.url, userId: ALICE, accessToken: login.access_token, deviceId: login.device_id, logger: quietSdkLogger });
    const bob = createClient({ baseUrl: c.url, userId: BOB, accessToken: BOB_TOKEN, logger: quietSdkLogger });
    cleanup.push(() => {
      alice.stopClient();
      bob.stopClient();
    });
    await Promise.all([prepared(alice), prepared(bob)]);
    await alice.setPresence({ presence: 'online', status_msg: 'before' });
    await sees(bob, ALICE, 'before');

    // Writers race the kill: one PUT per user per round, through the three processes in turn.
    const attempts = new Map<string, string[]>(users.map((u) => [u.id, []]));
    const lastAcked = new Map<string, number>();
    let acked = 0;
    let failed = 0;
    /** Writes answered other than 200 through a process that stayed up: should be none (they wait for the new owner). */
    const failedOnSurvivors: string[] = [];
    const ackedAfterKill = new Set<string>();
    let killed = false;
    let writing = true;
    let round = 0;
    const writers = (async () => {
      while (writing) {
        const r = round++;
        await Promise.all(
          users.map(async (u, k) => {
            const p = procs[(r + k) % 3] as Proc;
            const list = attempts.get(u.id) as string[];
            const msg = `${u.id} #${r}`;
            list.push(msg);
            const index = list.length - 1;
            try {
              const put = await http(p.url, 'PUT', presencePath(u.id), { token: u.token, json: { presence: 'online', status_msg: msg } });
              if (put.status === 200) {
                acked++;
                lastAcked.set(u.id, Math.max(lastAcked.get(u.id) ?? -1, index));
                if (killed) ackedAfterKill.add(u.id);
              } else {
                failed++;
                if (p !== a) failedOnSurvivors.push(`${msg} via ${p.name}: ${put.status} ${put.text}`);
              }
            } catch (error) {
              failed++; // the process was killed with the request in flight (or refused the connection): outcome unknown
              if (p !== a) failedOnSurvivors.push(`${msg} via ${p.name}: ${String(error)}`);
            }
          }),
        );
      }
    })();
    await new Promise((r) => setTimeout(r, 1_000));
    const states: string[] = [];
    alice.on(ClientEvent.Sync, (state: SyncState) => states.push(state));
    a.child.kill('SIGKILL');
    killed = true;
    await new Promise((r) => setTimeout(r, 5_000));
    writing = false;
    await writers;

    // alice's client moved to b through the proxy with the same token; her change reaches bob (on c), bob's reaches her.
    await waitFor('alice to notice the outage and sync again', () => states.some((x) => x !== SyncState.Syncing) && alice.getSyncState() === SyncState.Syncing, 30_000, 50);
    // Her own sync loop would otherwise set her online again (set_presence=online) in a race with the PUT.
    await alice.setSyncPresence(SetPresence.Unavailable);
    await alice.setPresence({ presence: 'unavailable', status_msg: 'after the kill' });
    expect((await sees(bob, ALICE, 'after the kill')).presence).toBe('unavailable');
    await bob.setPresence({ presence: 'online', status_msg: 'bob after the kill' });
    await sees(alice, BOB, 'bob after the kill');

    // Nothing acknowledged is lost: both survivors show, for every user, the last acknowledged status or a later attempt.
    const survivors = [b, c];
    let views: Record<string, string | undefined>[] = [];
    await waitFor('the survivors to agree', async () => {
      views = await Promise.all(survivors.map(async (p) => Object.fromEntries(await Promise.all(users.map(async (u) => [u.id, ((await http(p.url, 'GET', presencePath(u.id), { token: u.token })).body as { status_msg?: string }).status_msg] as const)))));
      return JSON.stringify(views[0]) === JSON.stringify(views[1]);
    }, 20_000, 200);
    const lost: string[] = [];
    for (const u of users) {
      const i = lastAcked.get(u.id);
      if (i === undefined) continue;
      const allowed = (attempts.get(u.id) as string[]).slice(i);
      if (!allowed.includes(views[0]![u.id] ?? '')) lost.push(`${u.id}: shows ${String(views[0]![u.id])}, acknowledged ${allowed[0]}`);
    }
    console.log(`distributed service: ${round} rounds, ${acked} writes acknowledged, ${failed} not (killed process or timeout), ${lost.length} acknowledged lost`);
    expect(lost).toEqual([]);
    expect(failedOnSurvivors).toEqual([]);
    // Every user (a's included, after its leases expired) had a write acknowledged after the kill.
    expect([...ackedAfterKill].sort()).toEqual(users.map((u) => u.id).sort());
    expect(acked).toBeGreaterThan(users.length * 3);
    expect(b.child.exitCode).toBeNull();
    expect(c.child.exitCode).toBeNull();
  });
});
