/**
 * The dashboard's server side without a browser: the histogram's percentiles,
 * the latency probe (per-input and per-tick turns), users by state, rate-limit
 * refusals, and that stopping puts the engine's methods back.
 */
import { describe, expect, it } from 'vitest';
import { ALL_USERS, PresenceEngine, RateLimitedError, createModuleApi, createPresenceEngine, silentLogger } from '../../src/index.js';
import { DashboardSectionSchema } from '../../service/dashboard/config.js';
import { DashboardCollector } from '../../service/dashboard/collector.js';
import { DurationHistogram } from '../../service/dashboard/histogram.js';

const S = 'd.test';
const u = (n: number) => `@u${n}:${S}`;

function rig(turns: 'per_input' | 'per_tick', burst = 100) {
  const engine = createPresenceEngine({
    config: { server_name: S, presence: { enabled: true, turns }, rc_presence: { per_user: { per_second: 0.001, burst_count: burst } } },
    logger: silentLogger,
  });
  const collector = new DashboardCollector({ engine, settings: DashboardSectionSchema.parse(undefined), peers: [], transport: undefined, modules: [] });
  collector.start();
  return { engine, collector };
}

describe('DurationHistogram', () => {
  it('answers percentiles within 5 % and keeps count, max and mean', () => {
    const h = new DurationHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i / 100); // 0.01 … 10 ms
    expect(h.count).toBe(1000);
    expect(h.max).toBe(10);
    expect(h.mean).toBeCloseTo(5.005, 3);
    for (const [p, exact] of [[50, 5], [99, 9.9], [99.9, 9.99]] as const) {
      expect(h.percentile(p)).toBeGreaterThanOrEqual(exact * 0.999);
      expect(h.percentile(p)).toBeLessThanOrEqual(exact * 1.05);
    }
    const other = new DurationHistogram();
    other.record(500);
    h.merge(other);
    expect(h.count).toBe(1001);
    expect(h.percentile(100)).toBe(500);
    h.record(Number.NaN);
    h.record(-1);
    expect(h.count).toBe(1001);
  });
});

describe('DashboardCollector', () => {
  it('per-input turns: samples each input once its commit is done, counts users by state and changes', () => {
    const { engine, collector } = rig('per_input');
    engine.joinRoom(`!r:${S}`, u(9));
    engine.setPresence(u(1), { presence: 'online' });
    engine.setPresence(u(2), { presence: 'online' });
    engine.setPresence(u(3), { presence: 'unavailable' });
    const f = collector.tick();
    expect(f.users).toEqual({ online: 2, unavailable: 1, busy: 0, offline: 1 });
    expect(f.latency.n).toBe(4); // the join and three PUTs
    expect(f.latency.max).toBeLessThan(1_000);
    expect(f.totals.updates).toBe(engine.stats.updates);
    expect(f.log.appends).toBe(4);
    expect(f.rates.inputs).toBeGreaterThan(0);
    expect(collector.lookup(u(3) as never).state).toBe('unavailable');
    expect(collector.lookup(u(3) as never).recent.length).toBe(1);
    collector.stop();
    void engine.close();
  });

  it('per-tick turns: inputs of one tick are sampled at the tick’s commit, not before', async () => {
    const { engine, collector } = rig('per_tick');
    engine.setPresence(u(1), { presence: 'online' });
    engine.setPresence(u(2), { presence: 'online' });
    expect(collector.tick().latency.n).toBe(0); // the tick has not ended: nothing emitted yet
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const f = collector.tick();
    expect(f.latency.n).toBe(2);
    expect(f.users.online).toBe(2);
    collector.stop();
    void engine.close();
  });

  it('counts rate-limit refusals and does not sample them', () => {
    const { engine, collector } = rig('per_input', 1);
    engine.setPresence(u(1), { presence: 'online' });
    expect(() => engine.setPresence(u(1), { presence: 'unavailable' })).toThrow(RateLimitedError);
    const f = collector.tick();
    expect(f.rateLimited.engine).toBe(1);
    expect(f.latency.n).toBe(1);
    collector.stop();
    void engine.close();
  });

  it('stop() puts the engine’s and the log’s own methods back', () => {
    const { engine, collector } = rig('per_input');
    expect(engine.setPresence).not.toBe(PresenceEngine.prototype.setPresence);
    collector.stop();
    expect(engine.setPresence).toBe(PresenceEngine.prototype.setPresence);
    expect(engine.userSyncing).toBe(PresenceEngine.prototype.userSyncing);
    expect(Object.prototype.hasOwnProperty.call(engine.log, 'append')).toBe(false);
    void engine.close();
  });

  it('top rooms: the sync streams each room woke, as the fan-out counted them, over the last minute', () => {
    const { engine, collector } = rig('per_input');
    for (const m of [1, 2, 3, 4]) engine.joinRoom(`!big:${S}`, u(m));
    for (const m of [1, 5]) engine.joinRoom(`!small:${S}`, u(m));
    engine.joinRoom(`!silent:${S}`, u(6));
    for (const m of [2, 3, 4, 5]) engine.syncStream(u(m)).subscribe(() => {});
    engine.setPresence(u(1), { presence: 'online' }); // !big wakes 2, 3, 4; !small wakes 5
    engine.setPresence(u(2), { presence: 'online' }); // !big wakes 2, 3, 4
    engine.setPresence(u(6), { presence: 'online' }); // nobody listens in !silent
    expect(collector.tick().rooms).toEqual([
      { roomId: `!big:${S}`, members: 4, changes: 2, wakeups: 6 },
      { roomId: `!small:${S}`, members: 2, changes: 1, wakeups: 1 },
    ]);
    engine.setPresence(u(5), { presence: 'online' }); // !small wakes 5
    expect(collector.tick().rooms.map((r) => [r.roomId, r.wakeups])).toEqual([[`!big:${S}`, 6], [`!small:${S}`, 2]]);
    collector.stop();
    engine.setPresence(u(1), { presence: 'unavailable' });
    expect(engine.roomWakeups.take().size).toBe(0); // counting stops with the dashboard
    void engine.close();
  });

  it('router calls per module: rates this second and totals', () => {
    const { engine, collector } = rig('per_input');
    createModuleApi(engine, 'quiet').registerPresenceRouterCallbacks({ getUsersForStates: () => new Map(), getInterestedUsers: () => new Set<string>() });
    createModuleApi(engine, 'broken').registerPresenceRouterCallbacks({
      getUsersForStates: () => {
        throw new Error('kaput');
      },
      getInterestedUsers: () => ALL_USERS,
    });
    engine.setPresence(u(1), { presence: 'online' });
    engine.setPresence(u(2), { presence: 'online' });
    const f = collector.tick();
    const byName = Object.fromEntries(f.router.modules.map((m) => [m.module, m]));
    expect(Object.keys(byName)).toEqual(['quiet', 'broken']);
    expect(byName.quiet).toMatchObject({ totalCalls: 2, totalFailures: 0, failures: 0 });
    expect(byName.broken).toMatchObject({ totalCalls: 2, totalFailures: 2, failures: 2 });
    expect(byName.quiet?.calls).toBeGreaterThan(0);
    const next = collector.tick();
    expect(next.router.modules.map((m) => [m.module, m.failures, m.totalFailures])).toEqual([['quiet', 0, 0], ['broken', 0, 2]]);
    collector.stop();
    void engine.close();
  });

  it('federation: each destination’s phase, failures in a row and next retry come from the engine', async () => {
    const { engine, collector } = rig('per_input');
    engine.attachFederationTransport({ send: () => Promise.reject(new Error('refused')) }, { initialBackoffMs: 30_000 });
    engine.joinRoom(`!fed:${S}`, u(1));
    engine.joinRoom(`!fed:${S}`, '@far:remote.test');
    engine.setPresence(u(1), { presence: 'online' });
    await new Promise((r) => setImmediate(r));
    const row = collector.tick().federation.destinations.find((d) => d.destination === 'remote.test');
    expect(row).toMatchObject({ phase: 'backoff', pending: 1, inFlight: 0, consecutiveFailures: 1 });
    expect(row?.failingForMs).toBeGreaterThanOrEqual(0);
    expect(row?.failingForMs).toBeLessThan(5_000);
    expect(row?.retryInMs).toBeGreaterThan(25_000);
    expect(row?.retryInMs).toBeLessThanOrEqual(30_000);
    collector.stop();
    void engine.close();
  });
});
