/**
 * Redis Sentinel (docs/distributed.md, "Sentinel"): a master and a replica with
 * the settings the deployment recipe requires (AOF always, noeviction,
 * min-replicas-to-write 1), one redis-sentinel (`redis-server --sentinel`,
 * quorum 1, down-after 1 s), and two engine processes configured with a
 * `redis-sentinel://` URL (ioredis' Sentinel client), with `waitReplicas: 1`
 * and `redisSettings: 'refuse'` (the start-up
 * check passes through Sentinel). The master is SIGKILLed: Sentinel promotes
 * the replica; with no replica left, `min-replicas-to-write` refuses writes, so
 * nothing is acknowledged until the old master is back (Sentinel turns it into
 * a replica of the new master). Then writes are acknowledged again, and every
 * input acknowledged before, during or after the failover is there on both
 * processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisPresenceNode, type RedisPresenceNodeOptions } from '../../src/hosting/redis-node.js';
import { silentLogger } from '../../src/logger.js';
import { http, presencePath } from '../service/helpers.js';
import { freePort, REDIS_SERVER, waitFor } from './support.js';

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'presence-sentinel-'));
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(args: string[]): ChildProcess {
  const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
  children.push(child);
  return child;
}

function dataServer(port: number, replicaOf?: number): ChildProcess {
  return start([
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appenddirname', `aof-${port}`,
    '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction',
    '--min-replicas-to-write', '1', '--min-replicas-max-lag', '10', '--repl-diskless-sync-delay', '0',
    ...(replicaOf !== undefined ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
  ]);
}

async function answers(port: number): Promise<Redis> {
  const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  c.on('error', () => {});
  await waitFor(`redis on ${port}`, () => c.connect().then(() => true, () => false), 10_000, 50);
  return c;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error('timeout')), ms).unref())]);
}

const step = (s: string): void => void (process.env.SENTINEL_DEBUG === '1' && console.log(`${new Date().toISOString()} ${s}`));
const users = Array.from({ length: 12 }, (_, i) => `@s${i}:example.org`);

describe('Redis Sentinel', () => {
  it('runs through a Sentinel, passes the settings check, and survives a SIGKILLed master with nothing acknowledged lost; the service runs there too', { timeout: 120_000 }, async () => {
    const [masterPort, replicaPort, sentinelPort] = [await freePort(), await freePort(), await freePort()];
    let master = dataServer(masterPort);
    dataServer(replicaPort, masterPort);
    const probe = await answers(replicaPort);
    await waitFor('the replica in sync', async () => (await probe.info('replication')).includes('master_link_status:up'), 20_000, 100);
    probe.disconnect();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor presence 127.0.0.1 ${masterPort} 1`, 'sentinel down-after-milliseconds presence 1000', 'sentinel failover-timeout presence 5000', ''].join('\n'));
    start([conf, '--sentinel']);
    (await answers(sentinelPort)).disconnect();

    const options = (name: string): RedisPresenceNodeOptions => ({
      // The primary named `presence`, found through the sentinel (src/redis-url.ts).
      config: { server_name: 'example.org', rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }, log: { kind: 'redis', url: `redis-sentinel://127.0.0.1:${sentinelPort}/presence`, partitions: 6, stream_prefix: 'st' } },
      name,
      leaseTtlMs: 1_200,
      renewIntervalMs: 200,
      commandTimeoutMs: 1_000,
      logger: silentLogger,
      waitReplicas: 1,
      redisSettings: 'refuse',
    });
    // The settings check reads the master through Sentinel: asking for more replicas than min-replicas-to-write is refused.
    await expect(RedisPresenceNode.start({ ...options('x'), waitReplicas: 2 })).rejects.toThrow(/min-replicas-to-write is 1 with waitReplicas 2/);
    const nodes = [await RedisPresenceNode.start(options('a')), await RedisPresenceNode.start(options('b'))];
    // Per user: inputs attempted in order and the index of the last acknowledged one.
    const attempts = new Map<string, string[]>(users.map((u) => [u, []]));
    const lastAcked = new Map<string, number>();
    const set = async (u: string, msg: string): Promise<boolean> => {
      const owner = nodes.find((n) => n.ownsUser(u));
      if (owner === undefined) return false;
      const list = attempts.get(u)!;
      list.push(msg);
      const index = list.length - 1;
      try {
        // An append whose outcome Redis cannot tell yet stays pending (it lands or is fenced later): give up waiting.
        await withTimeout(owner.setPresence(u, { presence: 'online', statusMsg: msg }), 3_000);
        lastAcked.set(u, Math.max(lastAcked.get(u) ?? 0, index));
        return true;
      } catch {
        return false;
      }
    };
    /** `n` shows `u`'s last acknowledged status or a later attempt. */
    const keeps = (n: RedisPresenceNode, u: string): boolean => attempts.get(u)!.slice(lastAcked.get(u) ?? 0).includes(n.getUserPresence(u).statusMsg ?? '');
    try {
      await waitFor('3 / 3', () => nodes.every((n) => n.ownedPartitions.length === 3), 20_000);
      step('before');
      for (const u of users) expect(await set(u, `${u} before`)).toBe(true);

      // The master dies with writes racing it; Sentinel promotes the replica.
      const racing = Promise.all(users.map((u) => set(u, `${u} racing`)));
      const exited = new Promise((r) => master.once('exit', r));
      master.kill('SIGKILL');
      await exited;
      await racing;
      step('killed');
      const sentinel = await answers(sentinelPort);
      await waitFor('the replica promoted', async () => ((await sentinel.call('SENTINEL', 'get-master-addr-by-name', 'presence')) as string[])[1] === String(replicaPort), 30_000, 100);
      step('promoted');
      // Alone, the new master refuses writes (min-replicas-to-write 1) and WAIT finds no replica: nothing is acknowledged.
      expect(await Promise.all(users.slice(0, 3).map((u) => set(u, `${u} alone`)))).toEqual([false, false, false]);

      // The old master returns; Sentinel makes it a replica of the new one; writes are acknowledged again.
      master = dataServer(masterPort);
      // Sentinel closes clients when it reconfigures a server: ask on a fresh connection each time.
      await waitFor('the old master to be a replica in sync', async () => {
        const old = await answers(masterPort);
        try {
          return /role:slave[\s\S]*master_link_status:up/.test(await old.info('replication'));
        } finally {
          old.disconnect();
        }
      }, 30_000, 200);
      sentinel.disconnect();
      step('old master back');
      await waitFor('both processes show every acknowledged input', () => nodes.every((n) => users.every((u) => keeps(n, u))), 30_000, 100);
      const done = new Set<string>();
      await waitFor('a write acknowledged for every user', async () => {
        await Promise.all(users.filter((u) => !done.has(u)).map(async (u) => (await set(u, `${u} after`)) && done.add(u)));
        return done.size === users.length;
      }, 45_000, 200);
      step('after');
      await waitFor('both processes show every acknowledged input', () => nodes.every((n) => users.every((u) => keeps(n, u) && n.getUserPresence(u).statusMsg === `${u} after`)), 20_000, 100);
      console.log(`sentinel: data-loss detections ${nodes.map((n) => n.stats.dataLoss.detected).join('/')}, acknowledged ${[...lastAcked.values()].length} users`);

      // The reference service on the same Sentinel deployment, from its config: the URL, wait_replicas 1 and
      // the settings check refusing anything short of the recipe. A PUT is answered 200 (written and on a replica).
      const port = await freePort();
      const path = join(dir, 'service.yaml');
      writeFileSync(path, JSON.stringify({
        server_name: 'example.org',
        rc_presence: { per_user: { per_second: 100, burst_count: 100 } },
        log: { kind: 'redis', url: `redis-sentinel://127.0.0.1:${sentinelPort}/presence`, partitions: 6, stream_prefix: 'svc' },
        service: {
          listen: { host: '127.0.0.1', port },
          metrics: false,
          users: [{ user_id: '@svc:example.org', access_token: 'svc-token-0123456789' }],
          distributed: { node_id: 'svc', advertise_url: `http://127.0.0.1:${port}`, forward_secret: 'forward-secret-0123456789', lease_ttl_ms: 1500, renew_interval_ms: 250, wait_replicas: 1, redis_settings: 'refuse' },
        },
      }));
      const root = fileURLToPath(new URL('../../', import.meta.url));
      const service = spawn(process.execPath, [join(root, 'service', 'start.mjs'), 'serve', path], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(service);
      let out = '';
      service.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      service.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('the service to listen', () => {
        if (service.exitCode !== null) throw new Error(`the service exited: ${out.slice(-3000)}`);
        return /listening on http/.test(out);
      }, 45_000, 50);
      const base = `http://127.0.0.1:${port}`;
      const token = 'svc-token-0123456789';
      await waitFor('a PUT acknowledged through Sentinel', async () => (await http(base, 'PUT', presencePath('@svc:example.org'), { token, json: { presence: 'online', status_msg: 'via sentinel' } })).status === 200, 30_000, 200);
      expect((await http(base, 'GET', presencePath('@svc:example.org'), { token })).body).toMatchObject({ presence: 'online', status_msg: 'via sentinel' });
      expect(out).not.toMatch(/LOST DATA/);
    } finally {
      await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    }
  });
});
