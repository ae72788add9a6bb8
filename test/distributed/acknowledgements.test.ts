/**
 * Issue 23, D1/D4/D5: acknowledged means durable in Redis; the undo after a
 * loss keeps what was written; a process cut off from Redis stops claiming its
 * partitions, reports itself stale, and converges once reconnected.
 * Needs /usr/bin/redis-server (see support.ts); the suite starts its own.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotDurableError, NotOwnerError, RedisPresenceNode, type RedisPresenceNodeOptions } from '../../src/hosting/redis-node.js';
import type { RedisReplicator } from '../../src/log/redis-replicator.js';
import { silentLogger } from '../../src/logger.js';
import { startCutProxy, startRedis, waitFor, type RedisServer } from './support.js';

let redis: RedisServer;
let client: Redis;
let prefixN = 0;

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

function options(prefix: string, name: string, extra: Partial<RedisPresenceNodeOptions> = {}, url = redis.url): RedisPresenceNodeOptions {
  return {
    config: {
      server_name: 'example.org',
      rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } },
      log: { kind: 'redis', url, partitions: 8, stream_prefix: prefix },
    },
    name,
    leaseTtlMs: 900,
    renewIntervalMs: 150,
    logger: silentLogger,
    ...extra,
  };
}

const users = Array.from({ length: 40 }, (_, i) => `@u${i}:example.org`);

/** Every (user, presence) in partition `p`'s stream. */
async function streamStates(node: RedisPresenceNode, p: number): Promise<string[]> {
  const entries = (await client.xrange(node.keys.stream(p), '-', '+')) as [string, string[]][];
  const out: string[] = [];
  for (const [, f] of entries) {
    const e = JSON.parse(f[f.indexOf('e') + 1] as string) as { type: string; userId?: string; presence?: { state?: string } }[];
    if (Array.isArray(e)) for (const x of e) if (x.type === 'user.step' && x.presence?.state !== undefined) out.push(`${x.userId}:${x.presence.state}`);
  }
  return out;
}

describe('acknowledgements (D1)', () => {
  it('a fenced write rejects its input and flush, is undone, and is never federated', async () => {
    const prefix = `ack${++prefixN}`;
    // Slow renewals: the steal below is not noticed before the input runs.
    const a = await RedisPresenceNode.start(options(prefix, 'a', { leaseTtlMs: 6_000, renewIntervalMs: 2_000 }));
    const sent: string[] = [];
    a.attachFederationTransport({
      send: async (_dest, edus) => {
        for (const edu of edus) for (const item of edu.content.push) sent.push(`${String(item.user_id)}:${String(item.presence)}`);
      },
    });
    try {
      await waitFor('a owns all', () => a.ownedPartitions.length === 8, 5_000);
      const u = users[3]!;
      const p = a.partitionOf(u);
      await a.joinRoom('!fed:example.org', u);
      await a.joinRoom('!fed:example.org', '@bob:remote.org');
      await expect(a.setPresence(u, { presence: 'online' })).resolves.toBeUndefined();
      await waitFor('online federated', () => sent.includes(`${u}:online`));
      await expect(a.flush()).resolves.toBeUndefined();

      await client.set(a.keys.lease(p), 'thief/999', 'PX', 60_000); // another writer took the partition
      const ack = a.setPresence(u, { presence: 'unavailable' });
      const flushed = a.flush();
      await expect(ack).rejects.toBeInstanceOf(NotDurableError);
      await expect(ack).rejects.toMatchObject({ reason: 'fenced', partition: p });
      await expect(flushed).rejects.toBeInstanceOf(NotDurableError);
      await waitFor('the unwritten change undone', () => a.getUserPresence(u).state === 'online', 5_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(sent).not.toContain(`${u}:unavailable`);
      expect(await streamStates(a, p)).not.toContain(`${u}:unavailable`);
      expect(() => a.setPresence(u, { presence: 'offline' })).toThrow(NotOwnerError);
      // Once the partition is free, a retakes it and its inputs are acknowledged again.
      await client.del(a.keys.lease(p));
      await a['leaseSet'].tick();
      await waitFor('a owns p again', () => a.ownedPartitions.includes(p), 5_000);
      await expect(a.setPresence(u, { presence: 'unavailable' })).resolves.toBeUndefined();
      expect(await streamStates(a, p)).toContain(`${u}:unavailable`);
    } finally {
      await a.stop();
    }
  });

  it('waitReplicas: an append no replica confirmed is refused to its caller (and stays on the primary)', async () => {
    const prefix = `wait${++prefixN}`;
    const a = await RedisPresenceNode.start(options(prefix, 'a', { waitReplicas: 1, waitTimeoutMs: 100 }));
    try {
      await waitFor('a owns all', () => a.ownedPartitions.length === 8, 5_000);
      const u = users[5]!;
      await expect(a.setPresence(u, { presence: 'online' })).rejects.toMatchObject({ reason: 'replicas' });
      expect(a.stats.log.underReplicated).toBeGreaterThan(0);
      expect(await streamStates(a, a.partitionOf(u))).toContain(`${u}:online`);
    } finally {
      await a.stop();
    }
  });
});

describe('undo only what was not written (D4)', () => {
  it('a loss keeps the changes this process wrote but had not read back', async () => {
    const prefix = `undo${++prefixN}`;
    const a = await RedisPresenceNode.start(options(prefix, 'a', { leaseTtlMs: 6_000, renewIntervalMs: 2_000 }));
    try {
      await waitFor('a owns all', () => a.ownedPartitions.length === 8, 5_000);
      // Freeze the follow loop: a's own entries stay beyond its read position (as when the loop lags).
      await (a as unknown as { replicator: RedisReplicator }).replicator.stop();
      const u = users[9]!;
      const v = users.find((x) => x !== u && a.partitionOf(x) === a.partitionOf(u))!;
      const p = a.partitionOf(u);
      await a.setPresence(u, { presence: 'online', statusMsg: 'written' });
      await client.set(a.keys.lease(p), 'thief/999', 'PX', 60_000);
      await expect(a.setPresence(v, { presence: 'online', statusMsg: 'fenced' })).rejects.toBeInstanceOf(NotDurableError);
      await waitFor('v undone', () => a.getUserPresence(v).statusMsg === null, 5_000);
      expect(a.getUserPresence(v).state).toBe('offline');
      // u's change is in the stream: it must stay.
      expect(a.getUserPresence(u)).toMatchObject({ state: 'online', statusMsg: 'written' });
    } finally {
      await a.stop();
    }
  });
});

describe('a process cut off from Redis (D5)', () => {
  it('stops claiming ownership within the lease, reports staleness, refuses the unknown write, and converges after', async () => {
    const prefix = `cut${++prefixN}`;
    const proxy = await startCutProxy(redis.port);
    const a = await RedisPresenceNode.start(options(prefix, 'a', {}, proxy.url));
    await waitFor('a owns all', () => a.ownedPartitions.length === 8, 5_000);
    const b = await RedisPresenceNode.start(options(prefix, 'b'));
    try {
      await waitFor('a 4 / b 4', () => a.ownedPartitions.length === 4 && b.ownedPartitions.length === 4, 10_000);
      const ua = users.find((x) => a.ownsUser(x))!;
      await a.setPresence(ua, { presence: 'online', statusMsg: 'before' });
      await waitFor('b sees it', () => b.getUserPresence(ua).statusMsg === 'before');

      proxy.blackhole();
      const cutAt = performance.now();
      const unknown = a.setPresence(ua, { presence: 'unavailable', statusMsg: 'during the cut' });
      await waitFor('a stops claiming', () => a.ownedPartitions.length === 0, 5_000);
      const stoppedAfter = performance.now() - cutAt;
      expect(stoppedAfter).toBeLessThan(900 + 2 * 150 + 300); // TTL + renewal period + slack
      expect(() => a.setPresence(ua, { presence: 'online' })).toThrow(NotOwnerError);
      await waitFor('a reports a stale view', () => a.stats.stale, 5_000);
      await waitFor('b owns all', () => b.ownedPartitions.length === 8, 10_000);
      await b.setPresence(ua, { presence: 'online', statusMsg: 'after' });

      proxy.restore();
      await expect(unknown).rejects.toBeInstanceOf(NotDurableError);
      // b's step carries only what changed in b's view (the message); a's undo brings the state back.
      await waitFor('a converges on the stream', () => a.getUserPresence(ua).statusMsg === 'after' && a.getUserPresence(ua).state === 'online' && !a.stats.stale, 10_000);
      await waitFor('rebalanced', () => a.ownedPartitions.length === 4 && b.ownedPartitions.length === 4, 10_000);
    } finally {
      await b.stop();
      await a.stop();
      await proxy.close();
    }
  });
});
