/**
 * The fenced append scripts against a real redis-server: what a writer is told
 * when its lease was taken over (FENCED), when Redis lost some of its entries
 * (LOST: data loss), and when a resend finds its entries already written.
 *
 * A stale writer whose lease was taken over finds the new writer's entry in the
 * partition's `last` key; under the in-order (Redis Cluster) script that must
 * read as a takeover, not as lost data (a CI run under load once took a plain
 * takeover during a cluster failover for data loss and re-seeded the cluster).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, withScripts, type PresenceScripts } from '../../src/log/redis-partitions.js';
import { startRedis, type RedisServer } from './support.js';

let server: RedisServer;
let redis: Redis & PresenceScripts;
const GEN = '1-test';

beforeAll(async () => {
  server = await startRedis();
  redis = withScripts(new Redis(server.url));
});

afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

/** A fresh partition `p` of its own key prefix, with the generation written. */
async function partition(prefix: string): Promise<{ k: RedisKeys; take: (who: string) => Promise<string> }> {
  const k = new RedisKeys(prefix, 1);
  await redis.set(k.gen(0), GEN);
  const take = async (who: string): Promise<string> => {
    await redis.del(k.lease(0)); // the previous holder's lease expired
    const value = await redis.presenceAcquire(k.lease(0), k.epoch(0), k.gen(0), who, 60_000, GEN);
    if (value === null) throw new Error('lease not taken');
    return value;
  };
  return { k, take };
}

describe.each([
  ['in order (Redis Cluster)', 'presenceAppendInOrder'],
  ['pipelined', 'presenceAppend'],
] as const)('append script, %s', (_name, script) => {
  const append = (k: RedisKeys, writer: string, seq: number, ...payloads: string[]) =>
    redis[script](k.lease(0), k.stream(0), k.last(0), k.gen(0), writer, seq, GEN, ...payloads);

  it('a writer whose lease was taken over is fenced, not told that Redis lost data', async () => {
    const { k, take } = await partition(`fence-${script}`);
    const a = await take('a');
    await append(k, a, 1, '[]', '[]'); // a's entries 1..2
    const b = await take('b');
    await append(k, b, 1, '[]'); // b writes: `last` is now b's
    // a's next call (entries 3..) arrives late: another writer's `last` is a takeover.
    await expect(append(k, a, 3, '[]')).rejects.toThrow(/^FENCED/);
    expect(await redis.xlen(k.stream(0))).toBe(3);
  });

  it('a resend of entries that already landed succeeds even after a takeover (its data is in the stream)', async () => {
    const { k, take } = await partition(`resend-${script}`);
    const a = await take('a');
    expect(await append(k, a, 1, '[]', '[]')).not.toBe('');
    await take('b');
    expect(await append(k, a, 1, '[]', '[]')).toBe('');
    expect(await redis.xlen(k.stream(0))).toBe(2);
  });

  it('the generation key gone is data loss (GENERATION)', async () => {
    const { k, take } = await partition(`gen-${script}`);
    const a = await take('a');
    await redis.del(k.gen(0));
    await expect(append(k, a, 1, '[]')).rejects.toThrow(/^GENERATION/);
  });
});

describe('append script, in order: lost entries of the lease holder', () => {
  it('a gap in the holder\'s own sequence numbers is LOST, and nothing is appended', async () => {
    const { k, take } = await partition('gap');
    const a = await take('a');
    await redis.presenceAppendInOrder(k.lease(0), k.stream(0), k.last(0), k.gen(0), a, 1, GEN, '[]', '[]');
    // Entries 3..4 never reached this Redis (a lossy fail-over), then 5 arrives.
    await expect(redis.presenceAppendInOrder(k.lease(0), k.stream(0), k.last(0), k.gen(0), a, 5, GEN, '[]')).rejects.toThrow(/^LOST .* lacks entries 3\.\.4/);
    // `last` itself lost (its entries with it): the holder's entry 3 finds no record of 1..2.
    await redis.del(k.last(0));
    await expect(redis.presenceAppendInOrder(k.lease(0), k.stream(0), k.last(0), k.gen(0), a, 3, GEN, '[]')).rejects.toThrow(/^LOST .* lacks entries 1\.\.2/);
    expect(await redis.xlen(k.stream(0))).toBe(2);
    // The pipelined script has no gap check (a reconnect may reorder its calls).
    expect(await redis.presenceAppend(k.lease(0), k.stream(0), k.last(0), k.gen(0), a, 3, GEN, '[]')).not.toBe('');
  });
});
