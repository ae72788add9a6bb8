/**
 * `presence_timers_fired_total{kind}` and `presence_turn_duration_seconds`
 * from the engine's `onTimerFired` / `onTurn` hooks, on a simulated clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/testing/index.js';
import { ALICE, TOKENS, closeAll, http, presencePath, startService } from './helpers.js';

afterEach(closeAll);

const sample = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

describe('timer and turn metrics', () => {
  it('a PUT without a sync counts one sync timeout 30 s later; every kind is exposed from the start', async () => {
    const clock = new SimulatedClock();
    const { url } = await startService(undefined, { clock });
    let text = (await http(url, 'GET', '/metrics')).text;
    for (const kind of ['idle', 'sync_timeout', 'busy_timeout', 'active_expiry', 'remote_expiry', 'federation_ping']) {
      expect(sample(text, `presence_timers_fired_total{kind="${kind}"}`), kind).toBe(0);
    }
    expect((await http(url, 'PUT', presencePath(ALICE), { token: TOKENS[ALICE] as string, json: { presence: 'online' } })).status).toBe(200);
    clock.advance(40_000); // no sync open: the device times out after 30 s (first tick after it: 35 s)
    text = (await http(url, 'GET', '/metrics')).text;
    expect(sample(text, 'presence_timers_fired_total{kind="sync_timeout"}')).toBe(1);
    expect(sample(text, 'presence_timers_fired_total{kind="idle"}')).toBe(0);
    expect(sample(text, 'presence_turn_duration_seconds_count')).toBeGreaterThanOrEqual(3);
  });
});
