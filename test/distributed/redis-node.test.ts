/**
 * Distributed presence on Redis Streams, in one process: partitioning, leases and
 * fencing, replication between two nodes, dedup, token scoping, hand-over.
 * Needs /usr/bin/redis-server (see support.ts); the suite starts its own.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstValueFrom, filter, take, timeout } from 'rxjs';
import { NotOwnerError, RedisPresenceNode, type RedisPresenceNodeOptions } from '../../src/hosting/redis-node.js';
import { compareStreamIds, decodeEntry, partitionOf, RedisKeys, routeEvent, withScripts } from '../../src/log/redis-partitions.js';
import { silentLogger } from '../../src/logger.js';
import type { RedisReplicator } from '../../src/log/redis-replicator.js';
import { ConfigError, LogError } from '../../src/errors.js';
import type { UserId } from '../../src/domain/ids.js';
import { startRedis, waitFor, type RedisServer } from './support.js';

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

function options(prefix: string, name: string, extra: Partial<RedisPresenceNodeOptions> = {}): RedisPresenceNodeOptions {
  return {
    config: {
      server_name: 'example.org',
      rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } },
      log: { kind: 'redis', url: redis.url, partitions: 8, stream_prefix: prefix },
    },
    name,
    leaseTtlMs: 900,
    renewIntervalMs: 150,
    logger: silentLogger,
    ...extra,
  };
}

const users = Array.from({ length: 40 }, (_, i) => `@u${i}:example.org`);

describe('partitioning and entries', () => {
  it('partitions user ids stably and spreads them', () => {
    expect(partitionOf('@alice:example.org', 16)).toBe(partitionOf('@alice:example.org', 16));
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[partitionOf(`@user${i}:example.org`, 8)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('keys of a partition share a cluster hash tag', () => {
    const k = new RedisKeys('presence', 4);
    const tag = (s: string) => /\{([^}]*)\}/.exec(s)?.[1];
    expect(tag(k.stream(3))).toBe(tag(k.lease(3)));
    expect(tag(k.stream(3))).toBe(tag(k.epoch(3)));
    expect(tag(k.stream(3))).not.toBe(tag(k.stream(2)));
  });

  it('splits a full-presence request per partition', () => {
    const ids = users.slice(0, 10) as UserId[];
    const routed = routeEvent({ type: 'presence.full_requested', userIds: ids, streamId: 3, at: 0 }, 4);
    const back = routed.flatMap(([p, e]) => (e.type === 'presence.full_requested' ? e.userIds.map((u) => [p, u] as const) : []));
    expect(back).toHaveLength(10);
    for (const [p, u] of back) expect(p).toBe(partitionOf(u, 4));
  });

  it('orders stream ids numerically and rejects malformed entries', () => {
    expect(compareStreamIds('10-0', '9-5')).toBeGreaterThan(0);
    expect(compareStreamIds('5-10', '5-9')).toBeGreaterThan(0);
    expect(compareStreamIds('5-1', '5-1')).toBe(0);
    expect(() => decodeEntry('1-1', ['x', 'y'])).toThrow(LogError);
    expect(() => decodeEntry('1-1', ['w', 'a/1', 's', '1', 'e', '{'])).toThrow(LogError);
  });
});

describe('leases and fenced appends', () => {
  it('one holder at a time; renew, release, and appends fenced once the lease moved', async () => {
    const k = new RedisKeys(`lease${++prefixN}`, 2);
    const r = withScripts(client);
    await client.set(k.gen(0), 'G1');
    const a = await r.presenceAcquire(k.lease(0), k.epoch(0), k.gen(0), 'A', 300, 'G1');
    expect(a).toBe('A/1');
    expect(await r.presenceAcquire(k.lease(0), k.epoch(0), k.gen(0), 'B', 300, 'G1')).toBeNull();
    expect(await r.presenceRenew(k.lease(0), k.gen(0), 'A/1', 300, 'G1')).toBe(1);
    expect(await r.presenceAppend(k.lease(0), k.stream(0), k.last(0), k.gen(0), 'A/1', 1, 'G1', '[]', '[]')).toMatch(/^\d+-\d+$/);
    // A resend of entries that landed (lost reply) appends nothing; a partly landed one appends the rest.
    expect(await r.presenceAppend(k.lease(0), k.stream(0), k.last(0), k.gen(0), 'A/1', 1, 'G1', '[]', '[]')).toBe('');
    expect(await client.xlen(k.stream(0))).toBe(2);
    expect(await r.presenceRenew(k.lease(0), k.gen(0), 'B/9', 300, 'G1')).toBe(0);
    expect(await r.presenceRelease(k.lease(0), 'A/1')).toBe(1);
    const b = await r.presenceAcquire(k.lease(0), k.epoch(0), k.gen(0), 'B', 300, 'G1');
    expect(b).toBe('B/2'); // the epoch is the fencing token
    await expect(r.presenceAppend(k.lease(0), k.stream(0), k.last(0), k.gen(0), 'A/1', 3, 'G1', '[]')).rejects.toThrow(/FENCED/);
    expect(await client.xlen(k.stream(0))).toBe(2);
    // …but a resend of what A wrote before it lost the lease is acknowledged (it is in the stream), not refused.
    expect(await r.presenceAppend(k.lease(0), k.stream(0), k.last(0), k.gen(0), 'A/1', 2, 'G1', '[]')).toBe('');
    // A generation key that is gone or changed (Redis lost data) refuses every lease script.
    await client.set(k.gen(0), 'G2');
    await expect(r.presenceRenew(k.lease(0), k.gen(0), 'B/2', 300, 'G1')).rejects.toThrow(/GENERATION/);
    await expect(r.presenceAppend(k.lease(0), k.stream(0), k.last(0), k.gen(0), 'B/2', 1, 'G1', '[]')).rejects.toThrow(/GENERATION/);
    await client.del(k.gen(0));
    await expect(r.presenceAcquire(k.lease(1), k.epoch(1), k.gen(0), 'C', 300, 'G1')).rejects.toThrow(/GENERATION/);
    await client.set(k.gen(0), 'G1');
    // expiry
    await waitFor('lease expiry', async () => (await client.exists(k.lease(0))) === 0, 3000);
    expect(await r.presenceRenew(k.lease(0), k.gen(0), 'B/2', 300, 'G1')).toBe(0);
  });
});

describe('two nodes in one process', () => {
  it('refuses a non-redis log config and an unreachable Redis with typed errors', async () => {
    await expect(RedisPresenceNode.start({ config: { server_name: 'example.org' } })).rejects.toThrow(ConfigError);
    const dead = options('x', 'x');
    await expect(
      RedisPresenceNode.start({ ...dead, config: { server_name: 'example.org', log: { kind: 'redis', url: 'redis://127.0.0.1:1', partitions: 2 } }, connectTimeoutMs: 500 }),
    ).rejects.toThrow(LogError);
  });

  it('replicates presence, balances partitions, scopes tokens, dedups and hands over', async () => {
    const prefix = `two${++prefixN}`;
    const a = await RedisPresenceNode.start(options(prefix, 'a'));
    await waitFor('a to own everything', () => a.ownedPartitions.length === 8, 5000);
    const b = await RedisPresenceNode.start(options(prefix, 'b'));
    try {
      await waitFor('a 4 / b 4', () => a.ownedPartitions.length === 4 && b.ownedPartitions.length === 4, 10_000);
      expect(new Set([...a.ownedPartitions, ...b.ownedPartitions]).size).toBe(8);
      const ua = users.find((u) => a.ownsUser(u))!;
      const ub = users.find((u) => b.ownsUser(u))!;
      expect(await a.ownerOf(ua)).toBe(a.instanceId);
      expect(await b.ownerOf(ua)).toBe(a.instanceId);

      // Inputs go to the owner.
      expect(() => b.setPresence(ua, { presence: 'online' })).toThrow(NotOwnerError);
      a.joinRoom('!r:example.org', ua);
      b.joinRoom('!r:example.org', ub);
      await waitFor('membership replicated', () => a.engine.getRoomMembers('!r:example.org').length === 2 && b.engine.getRoomMembers('!r:example.org').length === 2);

      const seen = firstValueFrom(
        b.syncStream(ub).pipe(
          filter((batch) => batch.events.some((s) => s.userId === ua && s.state === 'online')),
          take(1),
          timeout(5000),
        ),
      );
      a.setPresence(ua, { presence: 'online', statusMsg: 'hi' });
      const batch = await seen;
      expect(batch.events.find((s) => s.userId === ua)?.statusMsg).toBe('hi');
      // explain on a node: the history is in the streams, not in this process's log, so the answer says it is
      // incomplete instead of "offline, no steps"; the audience (who hears of ua now) is this process's view.
      const explained = b.engine.explain(ua, { recipients: true });
      expect(explained).toMatchObject({ state: null, steps: [], complete: false });
      expect(explained.audience?.localUserIds).toEqual([ub]);
      expect(b.getUserPresence(ua).state).toBe('online');
      expect(b.engine.getPresence(ub, ua).presence).toBe('online');

      // Tokens are process-scoped: b's token is incremental on b, full on a.
      const tb = b.currentToken;
      b.setPresence(ub, { presence: 'unavailable' });
      await waitFor('ub replicated to a', () => a.getUserPresence(ub).state === 'unavailable');
      const incr = await b.getNewEvents(ub, tb);
      expect(incr.full).toBe(false);
      expect(incr.events.map((s) => s.userId)).toEqual([ub]);
      const onA = await a.getNewEvents(ua, tb);
      expect(onA.full).toBe(true);
      expect(onA.nextToken.startsWith(a.instanceId)).toBe(true);

      // A resent entry (same writer tenure and sequence number) is applied once.
      await a.flush();
      const p = a.partitionOf(ua);
      const [[, last]] = (await client.xrevrange(a.keys.stream(p), '+', '-', 'COUNT', 1)) as [string, string[]][] as [[string, string[]]];
      const before = b.stats.engine.updates;
      const skipped = b.stats.replicator.duplicatesSkipped;
      await client.xadd(a.keys.stream(p), '*', ...last);
      await waitFor('duplicate skipped', () => b.stats.replicator.duplicatesSkipped === skipped + 1);
      expect(b.stats.engine.updates).toBe(before);

      // Graceful stop hands a's partitions to b at once; b keeps the state and runs a's users.
      await a.stop();
      await waitFor('b to own everything', () => b.ownedPartitions.length === 8, 5000);
      expect(b.getUserPresence(ua)).toMatchObject({ state: 'online', statusMsg: 'hi' });
      b.setPresence(ua, { presence: 'offline' });
      expect(b.getUserPresence(ua).state).toBe('offline');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('a process whose lease moved on undoes the changes it could not write', async () => {
    const prefix = `fenced${++prefixN}`;
    const a = await RedisPresenceNode.start(options(prefix, 'a'));
    try {
      await waitFor('a owns all', () => a.ownedPartitions.length === 8);
      const u = users[3]!;
      const p = a.partitionOf(u);
      const seen: (string | null | undefined)[] = [];
      a.syncStream(u).subscribe((b) => b.events.forEach((s) => s.userId === u && seen.push(s.statusMsg)));
      a.setPresence(u, { presence: 'online', statusMsg: 'kept' });
      a.joinRoom('!kept:example.org', u);
      await a.flush();
      // Another process holds the partition now (as after a stall longer than the TTL).
      await client.set(a.keys.lease(p), 'intruder-00000000/999', 'PX', 60_000);
      a.setPresence(u, { presence: 'unavailable', statusMsg: 'lost' });
      a.joinRoom('!lost:example.org', u);
      expect(a.getUserPresence(u).statusMsg).toBe('lost');
      await waitFor('partition lost', () => !a.ownedPartitions.includes(p), 5000);
      await waitFor('unwritten changes undone', () => a.getUserPresence(u).statusMsg === 'kept', 5000);
      expect(a.getUserPresence(u).state).toBe('online');
      expect(a.engine.getRoomsForUser(u)).toEqual(['!kept:example.org']);
      expect(a.stats.log.eventsDropped).toBeGreaterThan(0);
      expect(seen.slice(-2)).toEqual(['lost', 'kept']); // the local stream saw the correction
      expect(() => a.setPresence(u, { presence: 'online' })).toThrow(NotOwnerError);
      // When the other holder goes away, a takes the partition back and runs it.
      await client.del(a.keys.lease(p));
      await waitFor('a owns p again', () => a.ownedPartitions.includes(p), 5000);
      a.setPresence(u, { presence: 'online', statusMsg: 'back' });
    } finally {
      await a.stop();
    }
  });

  it('an event-loop stall longer than the lease TTL: inputs refused, unwritten changes undone, partitions retaken, timers still run', async () => {
    const prefix = `stall${++prefixN}`;
    const base = options(prefix, 'a');
    const a = await RedisPresenceNode.start({
      ...base,
      config: { ...(base.config as Record<string, unknown>), presence: { sync_online_timeout: '1s', timer_period: '100ms' } } as RedisPresenceNodeOptions['config'],
    });
    try {
      await waitFor('a owns all', () => a.ownedPartitions.length === 8);
      const u = users[7]!;
      a.setPresence(u, { presence: 'online', statusMsg: 'stall' }); // no sync: times out to offline after 1 s
      await a.flush();
      const v = users[8]!;
      a.setPresence(v, { presence: 'online', statusMsg: 'never written' }); // committed, not yet written when the stall starts
      const until = performance.now() + 1_300; // longer than the 900 ms TTL
      while (performance.now() < until) {
        /* a GC pause or a stuck turn */
      }
      expect(a.ownsUser(u)).toBe(false); // the lease can no longer be trusted locally
      expect(() => a.setPresence(u, { presence: 'busy' })).toThrow(NotOwnerError);
      await waitFor('a owns all again', () => a.ownedPartitions.length === 8, 5_000);
      await waitFor('u timed out to offline', () => a.getUserPresence(u).state === 'offline', 5_000);
      expect(a.getUserPresence(u).statusMsg).toBe('stall');
      // v's change was fenced (the lease had expired in Redis) and undone: the view matches the stream
      await waitFor('v undone', () => a.getUserPresence(v).statusMsg === null, 5_000);
      expect(a.getUserPresence(v).state).toBe('offline');
    } finally {
      await a.stop();
    }
  });

  it('compaction: a checkpoint replaces the history; running and late readers agree', async () => {
    const prefix = `compact${++prefixN}`;
    const a = await RedisPresenceNode.start(options(prefix, 'a', { compactEvery: 0 }));
    const b = await RedisPresenceNode.start(options(prefix, 'reader-b', { maxPartitions: 0 }));
    let c: RedisPresenceNode | undefined;
    try {
      await waitFor('a owns all', () => a.ownedPartitions.length === 8);
      const u1 = users[5]!;
      const p = a.partitionOf(u1);
      const u2 = users.find((u) => u !== u1 && a.partitionOf(u) === p)!;
      for (let k = 0; k < 20; k++) {
        a.setPresence(u1, { presence: k % 2 === 0 ? 'online' : 'unavailable', statusMsg: `v${k}` });
        await a.flush(); // one entry each
      }
      a.joinRoom('!c:example.org', u1);
      a.joinRoom('!c:example.org', u2);
      a.leaveRoom('!c:example.org', u2);
      a.joinRoom('!d:example.org', u2);
      a.setPresence(u2, { presence: 'online', statusMsg: 'u2' });
      a.userSyncing(u2, { deviceId: 'PHONE' }); // an in-flight sync is part of the record
      await a.flush();
      expect(await client.xlen(a.keys.stream(p))).toBeGreaterThan(20);
      await a.compact(p);
      expect(await client.xlen(a.keys.stream(p))).toBe(1);
      a.setPresence(u1, { presence: 'online', statusMsg: 'after' });
      await a.flush();
      // A reader that was running applies the checkpoint as a no-op and keeps following.
      await waitFor('b follows after the checkpoint', () => b.getUserPresence(u1).statusMsg === 'after');
      expect(b.engine.getUserRecord(u2)).toEqual(a.engine.getUserRecord(u2));
      expect(b.ownedPartitions).toEqual([]);
      // A process started after the trim folds the checkpoint and what follows.
      c = await RedisPresenceNode.start(options(prefix, 'reader-c', { maxPartitions: 0 }));
      expect(c.engine.getUserRecord(u1)).toEqual(a.engine.getUserRecord(u1));
      expect(c.engine.getUserRecord(u2)).toEqual(a.engine.getUserRecord(u2));
      expect(c.engine.getRoomsForUser(u2)).toEqual(['!d:example.org']);
      expect(c.engine.getRoomMembers('!c:example.org')).toEqual([u1]);
      // A non-owner cannot compact.
      expect(() => b.compact(p)).toThrow(NotOwnerError);

      // A reader that lags behind a trim: b stops following, a changes things and compacts again,
      // b then reads on from where it was and meets the checkpoint first: one "replace" step.
      const rb = (b as unknown as { replicator: RedisReplicator }).replicator;
      await rb.stop();
      a.leaveRoom('!d:example.org', u2);
      a.joinRoom('!e:example.org', u2);
      a.setPresence(u2, { presence: 'unavailable', statusMsg: 'lagged' });
      a.setPresence(u1, { presence: 'offline', statusMsg: null });
      await a.flush();
      await a.compact(p);
      expect(b.getUserPresence(u2).statusMsg).toBe('u2'); // b has not seen any of it
      await rb.catchUp(p);
      expect(b.engine.getUserRecord(u1)).toEqual(a.engine.getUserRecord(u1));
      expect(b.engine.getUserRecord(u2)).toEqual(a.engine.getUserRecord(u2));
      expect(b.engine.getRoomsForUser(u2)).toEqual(['!e:example.org']);
      expect(b.engine.getRoomMembers('!d:example.org')).toEqual([]);
    } finally {
      await c?.stop();
      await b.stop();
      await a.stop();
    }
  });

  it('a restarted cluster folds the streams back into the same state', async () => {
    const prefix = `restart${++prefixN}`;
    const a = await RedisPresenceNode.start(options(prefix, 'a'));
    await waitFor('a owns all', () => a.ownedPartitions.length === 8);
    for (const u of users.slice(0, 10)) {
      a.joinRoom('!room:example.org', u);
      a.setPresence(u, { presence: 'unavailable', statusMsg: `msg ${u}` });
    }
    // Half the partitions are compacted: the restart folds checkpoints and plain history alike.
    await Promise.all(a.ownedPartitions.filter((p) => p % 2 === 0).map((p) => a.compact(p)));
    await a.stop();
    const a2 = await RedisPresenceNode.start(options(prefix, 'a2'));
    try {
      // The view is folded before start() resolves.
      for (const u of users.slice(0, 10)) expect(a2.getUserPresence(u)).toMatchObject({ state: 'unavailable', statusMsg: `msg ${u}` });
      expect(a2.engine.getRoomMembers('!room:example.org')).toHaveLength(10);
      await waitFor('a2 owns all', () => a2.ownedPartitions.length === 8);
      a2.setPresence(users[0]!, { presence: 'online' });
    } finally {
      await a2.stop();
    }
  });
});
