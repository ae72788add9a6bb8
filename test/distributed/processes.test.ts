/**
 * Three engine processes on one Redis: users spread over them, presence set on
 * one visible in the sync streams of the others; SIGKILL one and check failover
 * (bounded takeover, state kept, timers re-armed, the dead process's syncs
 * ended); restart everything and check the folded state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeSpec } from './fixtures/node.js';
import { NodeProcess, startRedis, waitFor, type RedisServer } from './support.js';

const PARTITIONS = 12;
const LEASE_TTL = 1_500;

let redis: RedisServer;
const procs: NodeProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  await redis?.stop();
});

function spawnNode(name: string): NodeProcess {
  const spec: NodeSpec = {
    url: redis.url,
    partitions: PARTITIONS,
    prefix: 'presence',
    name,
    leaseTtlMs: LEASE_TTL,
    presence: { sync_online_timeout: '1500ms', timer_period: '100ms' },
  };
  const p = new NodeProcess(spec);
  procs.push(p);
  return p;
}

async function owned(nodes: readonly NodeProcess[]): Promise<number[][]> {
  return Promise.all(nodes.map((n) => n.request<number[]>('owned')));
}

async function waitBalanced(nodes: readonly NodeProcess[], timeoutMs: number): Promise<number[][]> {
  const each = Math.ceil(PARTITIONS / nodes.length);
  return waitFor(
    `${nodes.length} nodes to share ${PARTITIONS} partitions`,
    async () => {
      const o = await owned(nodes);
      const all = new Set(o.flat());
      return all.size === PARTITIONS && o.flat().length === PARTITIONS && o.every((x) => x.length >= 1 && x.length <= each) ? o : false;
    },
    timeoutMs,
    50,
  );
}

const candidates = Array.from({ length: 120 }, (_, i) => `@user${i}:example.org`);
const ROOM = '!shared:example.org';

describe('three engine processes on Redis', () => {
  it('replicate presence across processes, fail over after a SIGKILL, and restart with the same state', async () => {
    // ── start three processes; partitions spread over them
    const nodes = [spawnNode('n0'), spawnNode('n1'), spawnNode('n2')];
    await Promise.all(nodes.map((n) => n.whenReady()));
    await waitBalanced(nodes, 15_000);

    const mine = await Promise.all(nodes.map((n) => n.request<string[]>('ownsUsers', { users: candidates })));
    const [x, y] = [mine.map((m) => m[0]!), mine.map((m) => m[1]!)];
    for (const m of mine) expect(m.length).toBeGreaterThanOrEqual(2);

    for (let i = 0; i < 3; i++) {
      await nodes[i]!.request('join', { room: ROOM, user: x[i] });
      await nodes[i]!.request('join', { room: ROOM, user: y[i] });
    }
    await waitFor('membership on every process', async () => (await Promise.all(nodes.map((n) => n.request<string[]>('members', { room: ROOM })))).every((m) => m.length === 6));
    for (let i = 0; i < 3; i++) await nodes[i]!.request('watch', { user: x[i] });

    // ── presence set on n0 reaches the sync streams of n1 and n2
    await nodes[0]!.request('setPresence', { user: x[0], presence: 'online', statusMsg: 'from n0' });
    await waitFor('x0 online on n1 and n2 streams', () =>
      nodes[1]!.seen(x[1]!, x[0]!)?.state === 'online' && nodes[2]!.seen(x[2]!, x[0]!)?.statusMsg === 'from n0',
    );
    // a non-owner refuses the input with a typed error
    await expect(nodes[1]!.request('setPresence', { user: x[0], presence: 'offline' })).rejects.toMatchObject({ code: 'NOT_OWNER' });

    // ── state owned by n1 before it dies: an explicit presence and an in-flight sync
    await nodes[1]!.request('setPresence', { user: x[1], presence: 'unavailable', statusMsg: 'n1 user' });
    await nodes[1]!.request('syncStart', { user: y[1], syncId: 's1', device: 'PHONE' });
    await nodes[1]!.request('flush');
    await waitFor('y1 online seen by n0', () => nodes[0]!.seen(x[0]!, y[1]!)?.state === 'online');
    await waitFor('x1 unavailable seen by n2', () => nodes[2]!.seen(x[2]!, x[1]!)?.state === 'unavailable');

    // ── SIGKILL n1: its leases expire and n0/n2 take its partitions over
    const killedAt = Date.now();
    await nodes[1]!.kill();
    const survivors = [nodes[0]!, nodes[2]!];
    await waitBalanced(survivors, 10_000);
    const failover = Date.now() - killedAt;
    console.info(`failover: the survivors own every partition ${failover} ms after the SIGKILL (lease TTL ${LEASE_TTL} ms)`);
    expect(failover).toBeLessThan(LEASE_TTL * 4);

    // the new owner of x1 has its state and runs it
    const newOwnerOfX1 = (await survivors[0]!.request<string[]>('ownsUsers', { users: [x[1]] })).length === 1 ? survivors[0]! : survivors[1]!;
    const other = newOwnerOfX1 === survivors[0] ? survivors[1]! : survivors[0]!;
    // (an explicit presence without a sync times out to offline after sync_online_timeout: the adopter's timer may already have run)
    expect(await newOwnerOfX1.request('presence', { user: x[1] })).toMatchObject({ statusMsg: 'n1 user' });
    await newOwnerOfX1.request('setPresence', { user: x[1], presence: 'online', statusMsg: 'moved' });
    const otherWatcher = other === nodes[0] ? x[0]! : x[2]!;
    await waitFor('x1 change after failover visible on the other survivor', () => other.seen(otherWatcher, x[1]!)?.statusMsg === 'moved');

    // the sync y1 had open on n1 died with it: the adopter ended it and its timer takes y1 offline
    await waitFor('y1 timed out to offline on both survivors', () => nodes[0]!.seen(x[0]!, y[1]!)?.state === 'offline' && nodes[2]!.seen(x[2]!, y[1]!)?.state === 'offline', 10_000);
    // and x1's new owner times x1 out too (no sync after the explicit online): everything is now at rest
    await waitFor('x1 timed out to offline', () => other.seen(otherWatcher, x[1]!)?.state === 'offline', 10_000);
    await waitFor('x0 offline', async () => (await other.request<{ state: string }>('presence', { user: x[0] })).state === 'offline', 10_000);

    // no duplicated deliveries: each change reached each remote sync stream once
    const emissions = (n: NodeProcess, watcher: string, target: string, state: string, msg: string | null) =>
      n.batches.filter((b) => b.user === watcher && b.events.some((e) => e.userId === target && e.state === state && e.statusMsg === msg)).length;
    expect(emissions(nodes[2]!, x[2]!, x[0]!, 'online', 'from n0')).toBe(1);
    expect(emissions(nodes[1]!, x[1]!, x[0]!, 'online', 'from n0')).toBe(1);
    expect(emissions(other, otherWatcher, x[1]!, 'online', 'moved')).toBe(1);
    expect(emissions(nodes[0]!, x[0]!, y[1]!, 'offline', null)).toBe(1);

    // ── restart everything: stop the survivors gracefully and start three fresh processes
    await Promise.all(survivors.map((n) => n.stop()));
    const again = [spawnNode('m0'), spawnNode('m1'), spawnNode('m2')];
    await Promise.all(again.map((n) => n.whenReady()));
    for (const n of again) {
      expect(await n.request('presence', { user: x[0] })).toMatchObject({ state: 'offline', statusMsg: 'from n0' });
      expect(await n.request('presence', { user: x[1] })).toMatchObject({ state: 'offline', statusMsg: 'moved' });
      expect(await n.request('presence', { user: x[2] })).toMatchObject({ state: 'offline' });
      expect(await n.request('presence', { user: y[1] })).toMatchObject({ state: 'offline' });
      expect(await n.request<string[]>('members', { room: ROOM })).toHaveLength(6);
    }
    await waitBalanced(again, 15_000);
    // and they keep working
    const ownerOfY0 = (await Promise.all(again.map((n) => n.request<string[]>('ownsUsers', { users: [y[0]] })))).findIndex((r) => r.length === 1);
    await again[(ownerOfY0 + 1) % 3]!.request('watch', { user: x[1] });
    await again[ownerOfY0]!.request('setPresence', { user: y[0], presence: 'unavailable', statusMsg: 'after restart' });
    await waitFor('post-restart change visible', () => again[(ownerOfY0 + 1) % 3]!.seen(x[1]!, y[0]!)?.statusMsg === 'after restart');
    await Promise.all(again.map((n) => n.stop()));
  }, 85_000);
});
