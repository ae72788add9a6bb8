/**
 * Cross-process benchmark of distributed presence on Redis Streams
 * (docs/distributed.md): 1 to 3 engine processes on one local redis-server.
 *
 *   npx tsx benchmarks/redis-cluster.ts [--quick] [--processes 1,2,3] [--changes N]
 *
 * Per process count it measures
 *  - throughput: every process applies presence changes to its own users as fast
 *    as it is fed (batches of 1000 `setPresence` calls); the clock stops when
 *    *every* process has applied *every* change (its own and the replicated ones);
 *  - latency: `setPresence` on process 0 → the change emitted on a sync stream
 *    of a room-mate on process 1 (process 0 itself when alone), one probe at a
 *    time, idle cluster. Includes the stdin/stdout hops to the driver (~0.1 ms).
 *  - CPU per change: each engine process's CPU time (user + system) during the
 *    throughput phase divided by the changes in the cluster, and redis-server's
 *    (INFO cpu), so the cost of a change on every process can be read per N.
 * Needs /usr/bin/redis-server (or REDIS_SERVER); starts its own on a free port.
 */
import { Redis } from 'ioredis';
import { NodeProcess, startRedis, waitFor, type RedisServer } from '../test/distributed/support.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const processCounts = (arg('--processes') ?? '1,2,3').split(',').map(Number);
const CHANGES_PER_PROCESS = Number(arg('--changes') ?? (quick ? 5_000 : 30_000));
const USERS = quick ? 1_500 : 6_000;
const ROOM_SIZE = 20;
const PROBES = quick ? 100 : 300;
const PARTITIONS = 12;

interface Counters {
  updates: number;
  deliveries: number;
  batches: number;
  applied: number;
  written: number;
  maxLagMs: number;
  cpuUs: number;
}

interface Result {
  processes: number;
  changes: number;
  seconds: number;
  changesPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  deliveriesPerProcess: number;
  /** Worst event-loop lag seen in any engine process (ms). */
  maxEventLoopLagMs: number;
  /** CPU µs per change (of the cluster's total) of each engine process, during the throughput phase. */
  cpuUsPerChangePerProcess: number[];
  /** The same for redis-server. */
  redisCpuUsPerChange: number;
}

async function redisCpuUs(url: string): Promise<number> {
  const r = new Redis(url);
  try {
    const info = await r.info('cpu');
    const v = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
    return (v('used_cpu_user') + v('used_cpu_sys')) * 1e6;
  } finally {
    r.disconnect();
  }
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function runWith(redis: RedisServer, n: number, run: number): Promise<Result> {
  const prefix = `bench${run}`;
  const nodes = Array.from(
    { length: n },
    (_, i) => new NodeProcess({ url: redis.url, partitions: PARTITIONS, prefix, name: `b${i}`, leaseTtlMs: 5_000, presence: { timer_period: '1s' } }),
  );
  try {
    await Promise.all(nodes.map((x) => x.whenReady()));
    await waitFor('balanced', async () => {
      const o = await Promise.all(nodes.map((x) => x.request<number[]>('owned')));
      return new Set(o.flat()).size === PARTITIONS && o.flat().length === PARTITIONS && o.every((x) => x.length <= Math.ceil(PARTITIONS / n));
    }, 30_000, 50);
    const users = Array.from({ length: USERS }, (_, i) => `@bench${i}:example.org`);
    const owned = await Promise.all(nodes.map((x) => x.request<string[]>('ownsUsers', { users })));
    // Rooms of ROOM_SIZE consecutive users (mixing owners); joins recorded by each member's owner.
    const ownerIdx = new Map<string, number>();
    owned.forEach((list, i) => list.forEach((u) => ownerIdx.set(u, i)));
    const joins: [string, string][][] = nodes.map(() => []);
    users.forEach((u, i) => joins[ownerIdx.get(u)!]!.push([`!room${Math.floor(i / ROOM_SIZE)}:example.org`, u]));
    await Promise.all(nodes.map((x, i) => x.request('joinMany', { items: joins[i] })));
    // Each process listens for a tenth of its users (sync streams open).
    await Promise.all(nodes.map((x, i) => x.request('watchMany', { users: owned[i]!.filter((_, k) => k % 10 === 0) })));
    await Promise.all(nodes.map((x) => x.request('flush')));
    await waitFor('joins replicated', async () => {
      const c = await Promise.all(nodes.map((x) => x.request<Counters>('counters')));
      return c.every((x) => x.updates >= 0) && (await Promise.all(nodes.map((x) => x.request<string[]>('members', { room: '!room0:example.org' })))).every((m) => m.length === ROOM_SIZE);
    }, 30_000, 50);

    // ── latency probes: process 0 user → room-mate watched on process 1 (or 0)
    const watcherNode = nodes[n > 1 ? 1 : 0]!;
    const probeUser = owned[0]![0]!;
    const probeWatcher = owned[n > 1 ? 1 : 0]![1]!; // index 1: not among the watchMany users (every 10th from 0)
    await nodes[0]!.request('joinMany', { items: [['!probe:example.org', probeUser]] });
    await watcherNode.request('joinMany', { items: [['!probe:example.org', probeWatcher]] });
    await watcherNode.request('watch', { user: probeWatcher });
    await waitFor('probe room', async () => (await watcherNode.request<string[]>('members', { room: '!probe:example.org' })).length === 2, 10_000);
    const lat: number[] = [];
    for (let k = 0; k < PROBES; k++) {
      const msg = `probe ${run} ${k}`;
      const t0 = Date.now() + performance.timeOrigin % 1; // wall clock, comparable with the child's Date.now()
      await nodes[0]!.request('setPresence', { user: probeUser, presence: k % 2 === 0 ? 'online' : 'unavailable', statusMsg: msg });
      const b = await waitFor('probe delivery', () => watcherNode.batches.find((x) => x.user === probeWatcher && x.events.some((e) => e.userId === probeUser && e.statusMsg === msg)), 10_000, 0.2);
      lat.push(Math.max(0, b.t - Math.floor(t0)));
    }
    lat.sort((a, b) => a - b);

    // ── throughput
    const before = await Promise.all(nodes.map((x) => x.request<Counters>('counters')));
    const redisBefore = await redisCpuUs(redis.url);
    const total = n * CHANGES_PER_PROCESS;
    const t0 = performance.now();
    await Promise.all(
      nodes.map(async (x, i) => {
        const mine = owned[i]!;
        for (let start = 0; start < CHANGES_PER_PROCESS; start += 1_000) {
          const items: [string, string, string][] = [];
          for (let k = start; k < Math.min(CHANGES_PER_PROCESS, start + 1_000); k++) {
            items.push([mine[k % mine.length]!, k % 2 === 0 ? 'online' : 'unavailable', `m${k}`]);
          }
          await x.request('setMany', { items });
        }
      }),
    );
    let after: Counters[] = before;
    await waitFor('all changes applied everywhere', async () => {
      after = await Promise.all(nodes.map((x) => x.request<Counters>('counters')));
      return after.every((c, i) => c.updates - before[i]!.updates >= total);
    }, 300_000, 5);
    const seconds = (performance.now() - t0) / 1000;
    const redisAfter = await redisCpuUs(redis.url);
    const deliveries = after.reduce((s, c, i) => s + (c.deliveries - before[i]!.deliveries), 0) / n;
    return {
      processes: n,
      changes: total,
      seconds,
      changesPerSecond: total / seconds,
      latencyMs: { p50: pct(lat, 0.5), p90: pct(lat, 0.9), p99: pct(lat, 0.99), max: lat[lat.length - 1] ?? NaN },
      deliveriesPerProcess: deliveries,
      maxEventLoopLagMs: Math.max(...after.map((c) => c.maxLagMs)),
      cpuUsPerChangePerProcess: after.map((c, i) => Math.round(((c.cpuUs - before[i]!.cpuUs) / total) * 10) / 10),
      redisCpuUsPerChange: Math.round(((redisAfter - redisBefore) / total) * 10) / 10,
    };
  } catch (error) {
    for (const x of nodes) console.error(`process ${x.instanceId}: counters ${JSON.stringify(await x.request('counters').catch(() => null))}`);
    for (const x of nodes) {
      console.error(`process ${x.instanceId}: ownership ${JSON.stringify(x.ownership)}`);
      for (const l of x.logs) if (l.level !== 'info') console.error(`  ${l.level}: ${l.message}`);
    }
    throw error;
  } finally {
    await Promise.all(nodes.map((x) => x.stop()));
  }
}

const redis = await startRedis();
const results: Result[] = [];
try {
  let run = 0;
  for (const n of processCounts) {
    const r = await runWith(redis, n, run++);
    results.push(r);
    console.log(
      `${n} process(es): ${r.changes} changes applied on every process in ${r.seconds.toFixed(2)} s = ${Math.round(r.changesPerSecond)} changes/s; ` +
        `cross-process latency p50 ${r.latencyMs.p50} ms, p90 ${r.latencyMs.p90} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms; ` +
        `${Math.round(r.deliveriesPerProcess)} sync deliveries per process; worst event-loop lag ${r.maxEventLoopLagMs} ms; ` +
        `CPU per change: engine processes ${r.cpuUsPerChangePerProcess.join(' / ')} µs, redis-server ${r.redisCpuUsPerChange} µs`,
    );
  }
} finally {
  await redis.stop();
}
console.log(JSON.stringify({ benchmark: 'redis-cluster', quick, usersTotal: USERS, partitions: PARTITIONS, results }, null, 2));
