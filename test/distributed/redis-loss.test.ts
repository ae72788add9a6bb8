/**
 * Issue 23, D2/D3: Redis restarted with and without persistence under running
 * processes. Without persistence the processes detect the loss, stop writing,
 * re-seed Redis from their views under a new generation and end up identical
 * (a fresh process too); with AOF (`appendfsync always`) nothing is lost and
 * nothing is re-seeded. Needs /usr/bin/redis-server (see support.ts).
 */
import { describe, expect, it } from 'vitest';
import { RedisPresenceNode, type RedisPresenceNodeOptions } from '../../src/hosting/redis-node.js';
import { ConfigError } from '../../src/errors.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import { startRedis, waitFor, type RedisServer } from './support.js';

function options(url: string, name: string): RedisPresenceNodeOptions {
  return {
    config: {
      server_name: 'example.org',
      rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } },
      log: { kind: 'redis', url, partitions: 8, stream_prefix: 'loss' },
    },
    name,
    leaseTtlMs: 900,
    renewIntervalMs: 150,
    logger: silentLogger,
  };
}

const users = Array.from({ length: 24 }, (_, i) => `@u${i}:example.org`);
const rooms = ['!a:example.org', '!b:example.org'];

/** What every process must agree on: each user's presence and message, and each room's members. */
function view(n: RedisPresenceNode): string {
  const out: string[] = [];
  for (const u of users) {
    const s = n.getUserPresence(u);
    out.push(`${u}=${s.state}/${s.statusMsg ?? ''}`);
  }
  for (const r of rooms) out.push(`${r}:${[...n.engine.getRoomMembers(r)].sort().join(',')}`);
  return out.join('\n');
}

/** Write a round of changes through each user's owner; resolves with the acknowledged ones. */
async function writeRound(nodes: RedisPresenceNode[], tag: string): Promise<number> {
  let acked = 0;
  const acks: Promise<void>[] = [];
  users.forEach((u, i) => {
    const owner = nodes.find((n) => n.ownsUser(u));
    if (owner === undefined) return;
    acks.push(owner.setPresence(u, { presence: i % 2 === 0 ? 'online' : 'unavailable', statusMsg: `${tag}-${i}` }).then(() => void acked++));
    if (i % 3 === 0) acks.push(owner.joinRoom(rooms[i % 2]!, u).then(() => void acked++));
  });
  await Promise.allSettled(acks);
  return acked;
}

async function withCluster(redis: RedisServer, run: (a: RedisPresenceNode, b: RedisPresenceNode) => Promise<void>): Promise<void> {
  const a = await RedisPresenceNode.start(options(redis.url, 'a'));
  const b = await RedisPresenceNode.start(options(redis.url, 'b'));
  try {
    await waitFor('a and b share the partitions', () => a.ownedPartitions.length + b.ownedPartitions.length === 8 && a.ownedPartitions.length > 0 && b.ownedPartitions.length > 0, 10_000);
    await run(a, b);
  } finally {
    await a.stop();
    await b.stop();
  }
}

describe('Redis settings at start-up', () => {
  it('warns about, or refuses, a Redis without AOF, with eviction, or without min-replicas-to-write', async () => {
    const redis = await startRedis({ args: ['--maxmemory-policy', 'allkeys-lru'] });
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (m) => void warnings.push(m) };
    try {
      await expect(RedisPresenceNode.start({ ...options(redis.url, 'strict'), redisSettings: 'refuse' })).rejects.toThrow(ConfigError);
      await expect(RedisPresenceNode.start({ ...options(redis.url, 'strict'), redisSettings: 'refuse' })).rejects.toThrow(/appendonly yes.*noeviction/);
      const n = await RedisPresenceNode.start({ ...options(redis.url, 'lax'), logger, waitReplicas: 1 });
      await n.stop();
      expect(warnings.filter((w) => /appendonly|maxmemory-policy|min-replicas-to-write/.test(w))).toHaveLength(3);
    } finally {
      await redis.stop();
    }
    const good = await startRedis({ aof: true });
    try {
      const n = await RedisPresenceNode.start({ ...options(good.url, 'ok'), redisSettings: 'refuse' });
      await n.stop();
    } finally {
      await good.stop();
    }
  });
});

describe('Redis data loss (D2, D3)', () => {
  it('a restart without persistence is detected, writes stop, and the processes re-seed Redis and agree', async () => {
    const redis = await startRedis();
    try {
      await withCluster(redis, async (a, b) => {
        expect(await writeRound([a, b], 'r1')).toBe(24 + 8);
        await waitFor('a and b agree', () => view(a) === view(b));
        const before = view(a);
        const gen = a.stats.generation;

        await redis.restart(); // empty: no AOF, no RDB
        await waitFor('both detect the loss', () => a.stats.dataLoss.detected > 0 && b.stats.dataLoss.detected > 0, 10_000);
        // While recovering nothing is acknowledged: no split-brain writes.
        const u = users[0]!;
        const during = [a, b].find((n) => n.ownsUser(u));
        expect(during).toBeUndefined();

        await waitFor('re-seeded and running again', () => !a.stats.dataLoss.recovering && !b.stats.dataLoss.recovering && a.ownedPartitions.length + b.ownedPartitions.length === 8, 20_000);
        expect(a.stats.generation).not.toBe(gen);
        expect(b.stats.generation).toBe(a.stats.generation);
        expect(a.stats.dataLoss.coordinated + b.stats.dataLoss.coordinated).toBe(1);
        expect(view(a)).toBe(before);
        expect(view(b)).toBe(before);
        // A fresh process reads the re-seeded streams into the same state.
        const c = await RedisPresenceNode.start({ ...options(redis.url, 'c'), maxPartitions: 0 });
        try {
          expect(view(c)).toBe(before);
          // And the deployment keeps working: a new round is replicated everywhere.
          expect(await writeRound([a, b], 'r2')).toBe(24 + 8);
          await waitFor('all three agree after r2', () => view(a) === view(b) && view(c) === view(a), 10_000);
          expect(view(c)).toContain('r2-5');
        } finally {
          await c.stop();
        }
      });
    } finally {
      await redis.stop();
    }
  });

  it('a restart with AOF (appendfsync always) loses nothing and re-seeds nothing', async () => {
    const redis = await startRedis({ aof: true });
    try {
      await withCluster(redis, async (a, b) => {
        expect(await writeRound([a, b], 'r1')).toBe(24 + 8);
        await waitFor('a and b agree', () => view(a) === view(b));
        const before = view(a);
        await redis.restart();
        await new Promise((r) => setTimeout(r, 1_500));
        expect(await writeRound([a, b], 'r2')).toBe(24 + 8);
        await waitFor('a and b agree after r2', () => view(a) === view(b), 10_000);
        expect(view(a)).not.toBe(before);
        expect(a.stats.dataLoss.detected + b.stats.dataLoss.detected).toBe(0);
        const c = await RedisPresenceNode.start({ ...options(redis.url, 'c'), maxPartitions: 0 });
        try {
          expect(view(c)).toBe(view(a));
        } finally {
          await c.stop();
        }
      });
    } finally {
      await redis.stop();
    }
  });
});
