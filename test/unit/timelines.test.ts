/**
 * Spec §2.14: the seven derived timelines, run on the simulated clock with the
 * default timers (HEAD semantics where they differ: busy lasts 1 h). A "tick"
 * is the timer wheel's period (5 s), so transitions land at most one period
 * after their threshold.
 */
import { describe, expect, it } from 'vitest';
import type { PresenceEngine } from '../../src/index.js';
import { createTestEngine, recordSyncStream, type SimulatedClock } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const REMOTE = '@rita:remote.example';
const ROOM = '!room:test.local';
const TICK = 5_000;
const SYNC_TIMEOUT = 30_000;

/** Advance second by second until `userId` reaches `state`; returns the elapsed ms (or Infinity). */
function timeUntil(engine: PresenceEngine, clock: SimulatedClock, userId: string, state: string, maxMs: number): number {
  const start = clock.now();
  while (clock.now() - start <= maxMs) {
    if (engine.getUserPresence(userId).state === state) return clock.now() - start;
    clock.advance(1000);
  }
  return Infinity;
}

describe('§2.14 timelines', () => {
  it('1. PUT only: online and currently active, then offline after the sync timeout, status kept, notified', () => {
    const { engine, clock } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    const bob = recordSyncStream(engine, BOB);
    const t0 = clock.now();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'hi' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', currentlyActive: true, lastActiveTs: t0, statusMsg: 'hi' });
    expect(bob.view().get(ALICE as never)?.state).toBe('online');
    const elapsed = timeUntil(engine, clock, ALICE, 'offline', 10 * 60_000);
    expect(elapsed).toBeGreaterThan(SYNC_TIMEOUT);
    expect(elapsed).toBeLessThanOrEqual(SYNC_TIMEOUT + TICK + 1000);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'offline', statusMsg: 'hi', lastActiveTs: t0 });
    expect(bob.view().get(ALICE as never)).toMatchObject({ state: 'offline', statusMsg: 'hi' });
    clock.advance(60_000);
    expect(engine.getPresence(ALICE, ALICE).last_active_ago).toBe(clock.now() - t0);
  });

  it('2. continuous /sync: online and currently active, nothing notified after the first change, offline after the last sync', () => {
    const { engine, clock } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    const bob = recordSyncStream(engine, BOB);
    let h = engine.userSyncing(ALICE);
    const afterFirst = engine.currentToken;
    for (let i = 0; i < 40; i++) {
      // 20-minute session of 30 s long-polls with short gaps
      clock.advance(29_000);
      h.end();
      clock.advance(1_000);
      h = engine.userSyncing(ALICE);
      expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', currentlyActive: true });
    }
    expect(engine.currentToken).toBe(afterFirst);
    expect(bob.batches).toHaveLength(1);
    h.end();
    const elapsed = timeUntil(engine, clock, ALICE, 'offline', 10 * 60_000);
    expect(elapsed).toBeGreaterThan(SYNC_TIMEOUT);
    expect(elapsed).toBeLessThanOrEqual(SYNC_TIMEOUT + TICK + 1000);
  });

  it('3. /sync with set_presence=unavailable: unavailable, no bump; a message makes it online, the next sync unavailable again', () => {
    const { engine, clock } = createTestEngine();
    let h = engine.userSyncing(ALICE, { setPresence: 'unavailable' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'unavailable', lastActiveTs: 0 });
    for (let i = 0; i < 20; i++) {
      clock.advance(25_000);
      h.end();
      h = engine.userSyncing(ALICE, { setPresence: 'unavailable' });
      expect(engine.getUserPresence(ALICE).state).toBe('unavailable');
    }
    engine.bumpActive(ALICE);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', lastActiveTs: clock.now() });
    h.end();
    h = engine.userSyncing(ALICE, { setPresence: 'unavailable' });
    expect(engine.getUserPresence(ALICE).state).toBe('unavailable');
    h.end();
    const elapsed = timeUntil(engine, clock, ALICE, 'offline', 10 * 60_000);
    expect(elapsed).toBeGreaterThan(SYNC_TIMEOUT);
    expect(elapsed).toBeLessThanOrEqual(SYNC_TIMEOUT + TICK + 1000);
  });

  it('4. /sync with set_presence=offline: presence untouched; a PUT-online user goes offline 30 s after the PUT', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    const start = clock.now();
    let h = engine.userSyncing(ALICE, { setPresence: 'offline' });
    while (engine.getUserPresence(ALICE).state !== 'offline' && clock.now() - start < 120_000) {
      clock.advance(2_000);
      h.end();
      h = engine.userSyncing(ALICE, { setPresence: 'offline' });
    }
    h.end();
    const elapsed = clock.now() - start;
    expect(elapsed).toBeGreaterThan(SYNC_TIMEOUT);
    expect(elapsed).toBeLessThanOrEqual(SYNC_TIMEOUT + TICK + 2000);
  });

  it('5. activity only: messages every 20 s keep a PUT-online user online and currently active; stopping ⇒ offline, not unavailable', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    for (let i = 0; i < 30; i++) {
      clock.advance(20_000);
      engine.bumpActive(ALICE);
      expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', currentlyActive: true });
    }
    const states: string[] = [];
    for (let i = 0; i < 60; i++) {
      clock.advance(1000);
      states.push(engine.getUserPresence(ALICE).state);
    }
    expect(states).not.toContain('unavailable');
    expect(states.at(-1)).toBe('offline');
    expect(states.indexOf('offline')).toBeGreaterThanOrEqual(30); // not before 30 s
  });

  it('6. remote user: stored and delivered to local co-members; offline 30 min later without refresh; local users are re-sent to remotes', () => {
    const { engine, clock } = createTestEngine({ rooms: { [ROOM]: [ALICE, REMOTE] } });
    const alice = recordSyncStream(engine, ALICE);
    const sent: { destination: string; users: string[] }[] = [];
    engine.federationOutbound$.subscribe((t) =>
      sent.push({ destination: t.destination, users: t.edus.flatMap((e) => e.content.push.map((p) => p.user_id ?? '')) }),
    );
    engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online', last_active_ago: 0 }] });
    expect(alice.view().get(REMOTE as never)?.state).toBe('online');
    let h = engine.userSyncing(ALICE);
    sent.length = 0;
    const start = clock.now();
    while (engine.getUserPresence(REMOTE).state !== 'offline' && clock.now() - start < 3_600_000) {
      clock.advance(20_000);
      h.end();
      h = engine.userSyncing(ALICE);
    }
    const elapsed = clock.now() - start;
    expect(elapsed).toBeGreaterThan(1_800_000);
    expect(elapsed).toBeLessThanOrEqual(1_800_000 + TICK + 20_000);
    expect(alice.view().get(REMOTE as never)?.state).toBe('offline');
    // Alice stayed online the whole time without a notified change, yet was pinged to remote.example within 25 min (+ a tick)
    const pings = sent.filter((s) => s.destination === 'remote.example' && s.users.includes(ALICE));
    expect(pings.length).toBeGreaterThanOrEqual(1);
    h.end();
  });

  it('7. busy (HEAD): PUT busy bumps activity; syncs keep it busy; stop syncing ⇒ offline after 1 h, not 30 s', () => {
    const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: true } } });
    engine.setPresence(ALICE, { presence: 'busy' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'busy', lastActiveTs: clock.now() });
    let h = engine.userSyncing(ALICE);
    for (let i = 0; i < 20; i++) {
      clock.advance(25_000);
      h.end();
      h = engine.userSyncing(ALICE);
      expect(engine.getUserPresence(ALICE).state).toBe('busy');
    }
    h.end();
    clock.advance(SYNC_TIMEOUT + TICK + 1000);
    expect(engine.getUserPresence(ALICE).state).toBe('busy');
    clock.advance(3_600_000 - (SYNC_TIMEOUT + TICK + 1000) - 1000);
    expect(engine.getUserPresence(ALICE).state).toBe('busy');
    clock.advance(TICK + 2000);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });
});
