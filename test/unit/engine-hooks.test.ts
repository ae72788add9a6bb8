/**
 * The metrics hooks: `onTurn` (one call per committed turn, with its times,
 * inputs and log events) and `onTimerFired` (per turn and kind, the timeout
 * steps that changed a user).
 */
import { describe, expect, it } from 'vitest';
import { PresenceEngine, presenceConfig, type DeadlineKind, type TurnTiming } from '../../src/index.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const REMOTE = '@carol:remote.example';
const MIN = 60_000;

function hooked() {
  const clock = new SimulatedClock();
  const turns: TurnTiming[] = [];
  const fired: [DeadlineKind, number, number][] = [];
  const engine = new PresenceEngine({
    config: presenceConfig('test.local', { presence: { busy_enabled: true }, rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } } }),
    clock,
    logger: new MemoryLogger(),
    onTurn: (t) => turns.push(t),
    onTimerFired: (kind, count) => fired.push([kind, count, clock.now()]),
  });
  return { engine, clock, turns, fired };
}

describe('onTurn', () => {
  it('fires once per committed turn, in order, with its inputs and log events', () => {
    const { engine, turns } = hooked();
    engine.setPresence(ALICE, { presence: 'online' });
    expect(turns).toHaveLength(1);
    expect(turns[0]).toMatchObject({ inputs: 1, events: 1 });
    engine.batch(() => {
      engine.setPresence(ALICE, { presence: 'unavailable' });
      engine.setPresence(BOB, { presence: 'online' });
      engine.joinRoom('!r:test.local', ALICE);
    });
    expect(turns).toHaveLength(2);
    expect(turns[1]).toMatchObject({ inputs: 3, events: 3 });
    engine.setPresence(ALICE, { presence: 'unavailable' }); // no change: a turn with no event
    expect(turns[2]).toMatchObject({ inputs: 1, events: 0 });
    for (const t of turns) {
      expect(t.startedAt).toBeLessThanOrEqual(t.committedAt);
      expect(t.committedAt).toBeLessThanOrEqual(t.endedAt);
    }
  });
});

describe('onTimerFired', () => {
  it('names the timer that changed each user: sync timeout, busy timeout, active expiry, idle, federation keep-alive, remote expiry', () => {
    const { engine, clock, fired } = hooked();
    const start = clock.now();
    engine.setPresence(ALICE, { presence: 'online' }); // no sync open: the device times out after 30 s
    clock.advance(40_000);
    expect(fired).toEqual([['sync_timeout', 1, start + 35_000]]);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');

    fired.length = 0;
    const sync = engine.userSyncing(BOB); // an open sync: online until idle
    clock.advance(2 * MIN);
    expect(fired.map((f) => f[0])).toEqual(['active_expiry']);
    clock.advance(4 * MIN);
    expect(fired.map((f) => f[0])).toEqual(['active_expiry', 'idle']);
    expect(engine.getUserPresence(BOB).state).toBe('unavailable');
    clock.advance(26 * MIN); // 25 min after the last notified change (the idle one): a keep-alive
    expect(fired.map((f) => f[0])).toEqual(['active_expiry', 'idle', 'federation_ping']);
    sync.end();

    fired.length = 0;
    engine.setPresence(ALICE, { presence: 'busy' });
    engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online' }] });
    clock.advance(31 * MIN); // the remote user expires after 30 min without an update
    expect(fired.filter((f) => f[0] === 'remote_expiry')).toHaveLength(1);
    clock.advance(30 * MIN); // the busy device (no sync) times out after 1 h
    expect(fired.filter((f) => f[0] === 'busy_timeout')).toHaveLength(1);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });

  it('counts users per kind in one turn', () => {
    const { engine, clock, fired } = hooked();
    engine.batch(() => {
      for (const u of ['a', 'b', 'c']) engine.setPresence(`@${u}:test.local`, { presence: 'online' });
    });
    clock.advance(40_000);
    expect(fired.reduce((n, f) => n + (f[0] === 'sync_timeout' ? f[1] : 0), 0)).toBe(3);
  });
});
