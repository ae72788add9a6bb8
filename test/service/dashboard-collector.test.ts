/**
 * The dashboard's server side without a browser: the histogram's percentiles,
 * the latency probe (per-input and per-tick turns), users by state, rate-limit
 * refusals, and that stopping puts the engine's methods back.
 */
import { describe, expect, it } from 'vitest';
import { PresenceEngine, RateLimitedError, createPresenceEngine, silentLogger } from '../../src/index.js';
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
});
