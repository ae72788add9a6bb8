/**
 * Spec §2 through the engine API: explicit presence (§2.5, §2.8), busy (§2.9),
 * syncs (§2.6), activity (§2.7), timeouts (§2.4), untracked and disabled modes
 * (§2.12, §4.9), rate limiting (§2.13) and input validation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EngineStoppedError,
  InvalidInputError,
  PresenceEngine,
  RateLimitedError,
  presenceConfig,
  type EngineSnapshot,
} from '../../src/index.js';
import { createTestEngine, InMemoryEventLog, MemoryLogger, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';
import { serverNameOf, type UserId } from '../../src/domain/ids.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const REMOTE = '@carol:remote.example';
const ROOM = '!room:test.local';

const granularity = 60_000;
const syncTimeout = 30_000;
const idle = 300_000;
const period = 5_000;

function expectInvalid(fn: () => unknown, field: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InvalidInputError);
  expect((caught as InvalidInputError).field).toBe(field);
  expect((caught as InvalidInputError).code).toBe('INVALID_INPUT');
}

/** Everything observable about the engine's state, to show an input changed nothing. */
function fingerprint(engine: PresenceEngine): string {
  return JSON.stringify({ token: engine.currentToken, position: engine.log.position, users: [...engine.knownUsers()] });
}

describe('§2.5 explicit presence (setPresence)', () => {
  it('online with a status message: online, currently active, last active now, notified', () => {
    const { engine, clock } = createTestEngine();
    const token = engine.currentToken;
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'hi' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({
      state: 'online',
      statusMsg: 'hi',
      currentlyActive: true,
      lastActiveTs: clock.now(),
      lastFederationUpdateTs: clock.now(),
    });
    expect(engine.currentToken).toBe(token + 1);
    expect(engine.stats.updates).toBe(1);
  });

  it('§2.8 a call without statusMsg clears the status message', () => {
    const { engine } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'hi' });
    engine.setPresence(ALICE, { presence: 'online' });
    expect(engine.getUserPresence(ALICE).statusMsg).toBeNull();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'again' });
    engine.setPresence(ALICE, { presence: 'online', statusMsg: null });
    expect(engine.getUserPresence(ALICE).statusMsg).toBeNull();
  });

  it('§2.8 going offline with a message keeps it and keeps last_active_ts', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    const t = clock.now();
    clock.advance(1000);
    engine.setPresence(ALICE, { presence: 'offline', statusMsg: 'on holiday' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'offline', statusMsg: 'on holiday', lastActiveTs: t });
  });

  it('unavailable does not bump last_active_ts', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    const t = clock.now();
    clock.advance(10_000);
    engine.setPresence(ALICE, { presence: 'unavailable' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'unavailable', lastActiveTs: t });
  });

  it('§2.3 repeating the same presence within the granularity is not notified', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'x' });
    const token = engine.currentToken;
    clock.advance(1000);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'x' });
    expect(engine.currentToken).toBe(token);
    expect(engine.getUserPresence(ALICE).lastActiveTs).toBe(clock.now());
  });

  it('per-device presence (§2.13): the user shows the highest-priority device', () => {
    const { engine } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'unavailable', deviceId: 'PHONE' });
    engine.setPresence(ALICE, { presence: 'online', deviceId: 'LAPTOP' });
    expect(engine.getUserPresence(ALICE).state).toBe('online');
    engine.setPresence(ALICE, { presence: 'offline', deviceId: 'LAPTOP' });
    expect(engine.getUserPresence(ALICE).state).toBe('unavailable');
    expect(Object.keys(engine.getUserRecord(ALICE).devices).sort()).toEqual(['LAPTOP', 'PHONE']);
  });
});

describe('§2.9 busy', () => {
  it('is rejected unless enabled, and nothing changes', () => {
    const { engine } = createTestEngine();
    const before = fingerprint(engine);
    expectInvalid(() => engine.setPresence(ALICE, { presence: 'busy' }), 'presence');
    expectInvalid(() => engine.setPresence(ALICE, { presence: 'org.matrix.msc3026.busy' }), 'presence');
    expect(fingerprint(engine)).toBe(before);
  });

  it('presence.busy_enabled or experimental_features.msc3026_enabled enables it; both wire values are accepted', () => {
    const a = createTestEngine({ config: { presence: { busy_enabled: true } } }).engine;
    a.setPresence(ALICE, { presence: 'busy' });
    expect(a.getUserPresence(ALICE).state).toBe('busy');
    const b = createTestEngine({ config: { experimental_features: { msc3026_enabled: true } } }).engine;
    b.setPresence(ALICE, { presence: 'org.matrix.msc3026.busy' });
    expect(b.getUserPresence(ALICE).state).toBe('busy');
  });

  it('busy bumps last_active_ts; on the wire it is the MSC3026 value unless the config names the stable one', () => {
    const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: true } } });
    engine.setPresence(ALICE, { presence: 'busy' });
    expect(engine.getUserPresence(ALICE).lastActiveTs).toBe(clock.now());
    expect(engine.getPresence(ALICE, ALICE)).toEqual({ presence: 'org.matrix.msc3026.busy', last_active_ago: 0 });
    const stable = createTestEngine({ config: { presence: { busy_enabled: true, busy_wire_value: 'busy' } } }).engine;
    stable.setPresence(ALICE, { presence: 'busy' });
    expect(stable.getPresence(ALICE, ALICE).presence).toBe('busy');
  });

  it('syncs and activity keep busy; busy does not idle; currently_active is not emitted', () => {
    const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: true } } });
    engine.setPresence(ALICE, { presence: 'busy' });
    const h = engine.userSyncing(ALICE, { setPresence: 'online' });
    expect(engine.getUserPresence(ALICE).state).toBe('busy');
    engine.bumpActive(ALICE);
    expect(engine.getUserPresence(ALICE).state).toBe('busy');
    clock.advance(idle * 2);
    expect(engine.getUserPresence(ALICE).state).toBe('busy');
    expect(engine.getPresence(ALICE, ALICE)).not.toHaveProperty('currently_active');
    h.end();
  });

  it('leaving busy needs an explicit call', () => {
    const { engine } = createTestEngine({ config: { presence: { busy_enabled: true } } });
    engine.setPresence(ALICE, { presence: 'busy' });
    engine.userSyncing(ALICE, { setPresence: 'unavailable' }).end();
    expect(engine.getUserPresence(ALICE).state).toBe('busy');
    engine.setPresence(ALICE, { presence: 'online' });
    expect(engine.getUserPresence(ALICE).state).toBe('online');
  });
});

describe('§2.6 syncs (userSyncing)', () => {
  it('default set_presence: online, active now, counts the sync, status message untouched', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'offline', statusMsg: 'msg' });
    const h = engine.userSyncing(ALICE, { deviceId: 'D' });
    expect(h.affectsPresence).toBe(true);
    expect(engine.getUserPresence(ALICE)).toMatchObject({
      state: 'online',
      statusMsg: 'msg',
      lastActiveTs: clock.now(),
      lastUserSyncTs: clock.now(),
      currentlyActive: true,
    });
    expect(engine.getUserRecord(ALICE).syncs).toEqual({ D: 1 });
    clock.advance(2000);
    h.end();
    h.end(); // idempotent
    expect(engine.getUserRecord(ALICE).syncs).toEqual({});
    expect(engine.getUserPresence(ALICE).lastUserSyncTs).toBe(clock.now());
  });

  it("a handle's `end` works detached, as a callback (e.g. `res.on('close', handle.end)`)", () => {
    const { engine } = createTestEngine();
    const { end } = engine.userSyncing(ALICE, { deviceId: 'D' });
    expect(engine.getUserRecord(ALICE).syncs).toEqual({ D: 1 });
    end();
    expect(engine.getUserRecord(ALICE).syncs).toEqual({});
    const inert = engine.userSyncing(ALICE, { setPresence: 'offline' });
    expect(() => inert.end.call(undefined)).not.toThrow();
  });

  it('set_presence=unavailable: unavailable without an activity bump', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    const t = clock.now();
    clock.advance(10_000);
    engine.userSyncing(ALICE, { setPresence: 'unavailable' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'unavailable', lastActiveTs: t });
  });

  it('set_presence=offline: presence untouched and the user is not counted as syncing', () => {
    const { engine } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    const before = fingerprint(engine);
    const h = engine.userSyncing(ALICE, { setPresence: 'offline' });
    expect(h.affectsPresence).toBe(false);
    h.end();
    expect(fingerprint(engine)).toBe(before);
    expect(engine.getUserRecord(ALICE).syncs).toEqual({});
  });

  it('back-to-back syncs keep the user online past the idle timeout; offline sync-timeout after the last one ends', () => {
    const { engine, clock } = createTestEngine();
    let h = engine.userSyncing(ALICE);
    for (let i = 0; i < 20; i++) {
      clock.advance(25_000);
      h.end();
      h = engine.userSyncing(ALICE);
    }
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', currentlyActive: true });
    clock.advance(25_000);
    h.end();
    clock.advance(syncTimeout);
    expect(engine.getUserPresence(ALICE).state).toBe('online');
    clock.advance(period + 1);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });

  it('syncs are counted per device: another device ending its sync does not take the user offline', () => {
    const { engine, clock } = createTestEngine();
    const phone = engine.userSyncing(ALICE, { deviceId: 'PHONE' });
    const laptop = engine.userSyncing(ALICE, { deviceId: 'LAPTOP' });
    laptop.end();
    clock.advance(2 * syncTimeout);
    expect(engine.getUserPresence(ALICE).state).toBe('online');
    expect(Object.keys(engine.getUserRecord(ALICE).devices)).toEqual(['PHONE']);
    phone.end();
    clock.advance(syncTimeout + period + 1);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });

  it('ending a handle after stop() is harmless', () => {
    const { engine } = createTestEngine();
    const h = engine.userSyncing(ALICE);
    engine.stop();
    expect(() => h.end()).not.toThrow();
  });

  it('invalid set_presence (busy is not allowed in sync) is rejected', () => {
    const { engine } = createTestEngine({ config: { presence: { busy_enabled: true } } });
    expectInvalid(() => engine.userSyncing(ALICE, { setPresence: 'busy' as never }), 'setPresence');
  });
});

describe('§2.7 activity (bumpActive)', () => {
  it('unavailable → online with last_active_ts now', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'unavailable' });
    clock.advance(1000);
    engine.bumpActive(ALICE);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', lastActiveTs: clock.now(), currentlyActive: true });
  });

  it('offline users stay offline; last_active_ts moves', () => {
    const { engine, clock } = createTestEngine();
    engine.bumpActive(ALICE);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'offline', lastActiveTs: clock.now() });
  });

  it('activity within the currently-active window is not notified (§2.3)', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    const token = engine.currentToken;
    clock.advance(20_000);
    engine.bumpActive(ALICE);
    expect(engine.currentToken).toBe(token);
  });
});

describe('§2.4 timeouts', () => {
  it('PUT online without syncs: offline after the sync timeout (within one timer period), status kept', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'hi' });
    clock.advance(syncTimeout);
    expect(engine.getUserPresence(ALICE).state).toBe('online');
    clock.advance(period + 1);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'offline', statusMsg: 'hi' });
  });

  it('a syncing user who is not active goes unavailable after the idle timeout when syncs are not activity', () => {
    const { engine, clock } = createTestEngine({ config: { presence: { sync_counts_as_activity: false } } });
    engine.userSyncing(ALICE);
    // keep syncing: each new sync request does not count as activity
    for (let i = 0; i < 13; i++) {
      clock.advance(25_000);
      engine.userSyncing(ALICE).end();
    }
    expect(engine.getUserPresence(ALICE).state).toBe('unavailable');
    engine.bumpActive(ALICE);
    expect(engine.getUserPresence(ALICE).state).toBe('online');
  });

  it('currently_active turns false after the granularity and that is notified', () => {
    const { engine, clock } = createTestEngine();
    engine.userSyncing(ALICE);
    const token = engine.currentToken;
    clock.advance(granularity + period + 1);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', currentlyActive: false });
    expect(engine.currentToken).toBe(token + 1);
  });

  it('timers are configurable', () => {
    const { engine, clock } = createTestEngine({ config: { presence: { sync_online_timeout: '5s', timer_period: 1000 } } });
    engine.setPresence(ALICE, { presence: 'online' });
    clock.advance(5000);
    expect(engine.getUserPresence(ALICE).state).toBe('online');
    clock.advance(1001);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });

  it('a remote user goes offline after the federation timeout without updates', () => {
    const { engine, clock } = createTestEngine();
    engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online', last_active_ago: 0 }] });
    expect(engine.getUserPresence(REMOTE).state).toBe('online');
    clock.advance(1_800_000);
    expect(engine.getUserPresence(REMOTE).state).toBe('online');
    clock.advance(period + 1);
    expect(engine.getUserPresence(REMOTE).state).toBe('offline');
  });
});

describe('§4.9 untracked mode', () => {
  const untracked = () => createTestEngine({ config: { presence: { enabled: 'untracked' } }, rooms: { [ROOM]: [ALICE, BOB] } });

  it('client and federation inputs do not affect presence', () => {
    const { engine } = untracked();
    const before = fingerprint(engine);
    engine.setPresence(ALICE, { presence: 'online' });
    expect(engine.userSyncing(ALICE).affectsPresence).toBe(false);
    engine.bumpActive(ALICE);
    expect(engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online' }] })).toEqual({ applied: 0, dropped: 0 });
    expect(fingerprint(engine)).toBe(before);
    expect(engine.tracked).toBe(false);
  });

  it('module-set presence is applied, always notified, readable, and never times out', async () => {
    const { engine, clock } = untracked();
    engine.setPresenceForUsers({ [ALICE]: { presence: 'online', statusMsg: 'set by module' } });
    const token = engine.currentToken;
    engine.setPresenceForUsers({ [ALICE]: { presence: 'online', statusMsg: 'set by module' } });
    expect(engine.currentToken).toBe(token + 1); // forced notification
    clock.advance(86_400_000);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', statusMsg: 'set by module' });
    expect(engine.getPresence(BOB, ALICE)).toMatchObject({ presence: 'online', status_msg: 'set by module' });
    const r = await engine.getNewEvents(BOB, null);
    expect(r.events.map((s) => s.userId)).toEqual([ALICE]);
  });
});

describe('§2.12 presence disabled', () => {
  const disabled = (config: Record<string, unknown>) => createTestEngine({ config, rooms: { [ROOM]: [ALICE, BOB] } });

  it.each([{ presence: { enabled: false } }, { use_presence: false }])('every entry point is a no-op (%j)', async (config) => {
    const { engine, clock } = disabled(config);
    const before = fingerprint(engine);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'x' });
    expect(engine.userSyncing(ALICE).affectsPresence).toBe(false);
    engine.bumpActive(ALICE);
    engine.setPresenceForUsers({ [ALICE]: { presence: 'online' } });
    engine.sendLocalOnlinePresenceTo([BOB]);
    expect(engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online' }] }).applied).toBe(0);
    clock.advance(60_000);
    expect(fingerprint(engine)).toBe(before);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });

  it('GET answers offline without a visibility check; sync gets no presence', async () => {
    const { engine } = disabled({ presence: { enabled: false } });
    expect(engine.getPresence(ALICE, '@stranger:test.local')).toEqual({ presence: 'offline' });
    expect((await engine.getNewEvents(ALICE, null)).events).toEqual([]);
  });
});

describe('§2.13 presence disabled after a run with presence (Synapse #19948)', () => {
  /** A log left by a run with presence on: alice online with a status on two devices, bob unavailable, carol (remote) online. */
  const previousRun = () => {
    const log = new InMemoryEventLog();
    const { engine, clock } = createTestEngine({ log, rooms: { [ROOM]: [ALICE, BOB, REMOTE] } });
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'at my desk', deviceId: 'PHONE' });
    engine.userSyncing(ALICE, { deviceId: 'LAPTOP' }); // left open: the process died mid-sync
    engine.setPresence(BOB, { presence: 'unavailable', statusMsg: 'brb' });
    engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online', status_msg: 'far away' }] });
    const token = engine.currentToken;
    const snapshot = engine.snapshot();
    engine.stop();
    clock.advance(1_000);
    return { log, clock, token, snapshot };
  };
  const restart = (log: InMemoryEventLog, clock: SimulatedClock, snapshot?: EngineSnapshot) =>
    new PresenceEngine({
      config: presenceConfig('test.local', { presence: { enabled: false } }),
      clock,
      log,
      logger: new MemoryLogger(),
      ...(snapshot === undefined ? {} : { snapshot }),
    });

  it.each(['log', 'snapshot'])('restored users are flushed to offline with no status, logged and notified (from the %s)', async (from) => {
    const { log, clock, token, snapshot } = previousRun();
    const tail = new InMemoryEventLog(snapshot.position);
    const engine = from === 'log' ? restart(log, clock) : restart(tail, clock, snapshot);
    for (const u of [ALICE, BOB, REMOTE]) {
      expect(engine.getUserRecord(u)).toMatchObject({ presence: { state: 'offline', statusMsg: null, currentlyActive: false }, devices: {}, syncs: {} });
    }
    expect(engine.currentToken).toBe(token + 3);
    const logged = [...engine.log.read(from === 'log' ? 0 : snapshot.position)].map((e) => e.event).filter((e) => e.type === 'user.step' && e.streamId !== undefined && e.streamId > token);
    expect(logged.map((e) => (e.type === 'user.step' ? e.userId : '')).sort()).toEqual([ALICE, BOB, REMOTE].sort());
    // a client holding a token from the previous run is told; a current token or an initial sync gets nothing
    const told = await engine.getNewEvents(BOB, token);
    expect(told.events.map((e) => [e.userId, e.state, e.statusMsg]).sort()).toEqual([
      [ALICE, 'offline', null],
      [BOB, 'offline', null],
      [REMOTE, 'offline', null],
    ].sort());
    expect((await engine.getNewEvents(BOB, told.nextToken)).events).toEqual([]);
    expect((await engine.getNewEvents(BOB, null)).events).toEqual([]);
    // replaying the flushed log again flushes nothing more
    const again = restart(engine.log as InMemoryEventLog, clock, from === 'log' ? undefined : snapshot);
    expect(again.currentToken).toBe(engine.currentToken);
  });
});

describe('rate limiting (rc_presence.per_user, §2.13)', () => {
  const limited = () => createTestEngine({ config: { rc_presence: { per_user: { per_second: 0.1, burst_count: 1 } } } });

  it('an explicit change over the limit throws RateLimitedError with retryAfterMs and changes nothing', () => {
    const { engine, clock } = limited();
    engine.setPresence(ALICE, { presence: 'online' });
    const before = fingerprint(engine);
    let caught: unknown;
    try {
      engine.setPresence(ALICE, { presence: 'unavailable' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RateLimitedError);
    expect((caught as RateLimitedError).code).toBe('RATE_LIMITED');
    expect((caught as RateLimitedError).retryAfterMs).toBe(10_000);
    expect(fingerprint(engine)).toBe(before);
    expect(engine.stats.rejectedInputs).toBe(1);
    clock.advance(4000);
    expect(() => engine.setPresence(ALICE, { presence: 'unavailable' })).toThrow(RateLimitedError);
    clock.advance(6000);
    engine.setPresence(ALICE, { presence: 'unavailable' });
    expect(engine.getUserPresence(ALICE).state).toBe('unavailable');
  });

  it('the limit is per user', () => {
    const { engine } = limited();
    engine.setPresence(ALICE, { presence: 'online' });
    engine.setPresence(BOB, { presence: 'online' });
    expect(engine.getUserPresence(BOB).state).toBe('online');
  });

  it('a sync over the limit is served but does not affect presence', () => {
    const { engine } = limited();
    const first = engine.userSyncing(ALICE, { setPresence: 'unavailable' });
    first.end();
    const before = fingerprint(engine);
    const h = engine.userSyncing(ALICE, { setPresence: 'online' });
    expect(h.affectsPresence).toBe(false);
    h.end();
    expect(fingerprint(engine)).toBe(before);
    expect(engine.getUserRecord(ALICE).syncs).toEqual({});
  });

  it('explicit changes and syncs take from separate buckets, as Synapse gives each servlet its own limiter', () => {
    const { engine, clock } = limited();
    // a sync, then a PUT a second later: both accepted (one shared bucket answered 429)
    engine.userSyncing(ALICE, { setPresence: 'online' }).end();
    clock.advance(1000);
    engine.setPresence(ALICE, { presence: 'unavailable', statusMsg: 'lunch' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'unavailable', statusMsg: 'lunch' });
    // a PUT, then a sync right after it: the sync still counts for presence (one shared bucket ignored it)
    engine.setPresence(BOB, { presence: 'unavailable' });
    const h = engine.userSyncing(BOB, { setPresence: 'online' });
    expect(h.affectsPresence).toBe(true);
    expect(Object.keys(engine.getUserRecord(BOB).syncs)).toHaveLength(1);
    h.end();
    // each bucket still limits its own input
    expect(() => engine.setPresence(ALICE, { presence: 'online' })).toThrow(RateLimitedError);
    expect(engine.userSyncing(BOB, { setPresence: 'online' }).affectsPresence).toBe(false);
  });
});

describe('invalid inputs give typed errors and change nothing', () => {
  it('bad user ids, remote users, presence values, status messages and device ids', () => {
    const { engine } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'ok' });
    const before = fingerprint(engine);
    expectInvalid(() => engine.setPresence('alice', { presence: 'online' }), 'userId');
    expectInvalid(() => engine.setPresence('@alice:', { presence: 'online' }), 'userId');
    expectInvalid(() => engine.setPresence(REMOTE, { presence: 'online' }), 'userId');
    expectInvalid(() => engine.setPresence(ALICE, { presence: 'away' }), 'presence');
    expectInvalid(() => engine.setPresence(ALICE, {} as never), 'presence');
    expectInvalid(() => engine.setPresence(ALICE, { presence: 'online', statusMsg: 42 as never }), 'statusMsg');
    expectInvalid(() => engine.setPresence(ALICE, { presence: 'online', deviceId: '' }), 'deviceId');
    // device ids key plain objects in records: "__proto__" would replace their prototype
    expectInvalid(() => engine.setPresence(ALICE, { presence: 'online', deviceId: '__proto__' }), 'deviceId');
    expectInvalid(() => engine.userSyncing(ALICE, { deviceId: '__proto__' }), 'deviceId');
    expectInvalid(() => engine.bumpActive(ALICE, '__proto__'), 'deviceId');
    expectInvalid(() => engine.userSyncing('nope'), 'userId');
    expectInvalid(() => engine.userSyncing(REMOTE), 'userId');
    expectInvalid(() => engine.bumpActive(REMOTE), 'userId');
    expectInvalid(() => engine.joinRoom('room', ALICE), 'roomId');
    expectInvalid(() => engine.setMembership(ROOM, ALICE, 'invite' as never), 'membership');
    expectInvalid(() => engine.setPresenceForUsers({ [ALICE]: { presence: 'gone' } }), 'presence');
    expectInvalid(() => engine.setPresenceForUsers({ nobody: { presence: 'online' } }), 'userId');
    expectInvalid(() => engine.getPresence('x', ALICE), 'requesterId');
    expectInvalid(() => engine.getPresence(ALICE, 'y'), 'targetId');
    expect(fingerprint(engine)).toBe(before);
    expect(engine.getUserPresence(ALICE).statusMsg).toBe('ok');
    expect(engine.stats.rejectedInputs).toBeGreaterThanOrEqual(14);
  });

  it('a module call with one invalid user applies nothing', () => {
    const { engine } = createTestEngine();
    const before = fingerprint(engine);
    expectInvalid(() => engine.setPresenceForUsers({ [ALICE]: { presence: 'online' }, [BOB]: { presence: 'nope' } }), 'presence');
    expect(fingerprint(engine)).toBe(before);
  });

  it('getNewEvents rejects tokens that are not non-negative integers', async () => {
    const { engine } = createTestEngine();
    await expect(engine.getNewEvents(ALICE, -1)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(engine.getNewEvents(ALICE, 1.5)).rejects.toMatchObject({ field: 'since' });
  });

  it('a stopped engine refuses inputs with EngineStoppedError', () => {
    const { engine } = createTestEngine();
    engine.stop();
    expect(() => engine.setPresence(ALICE, { presence: 'online' })).toThrow(EngineStoppedError);
    expect(() => engine.userSyncing(ALICE)).toThrow(EngineStoppedError);
  });
});

describe('inputs made while a turn is emitting (a sync-stream subscriber reacting)', () => {
  it('wait for the turn to end, then run in order as turns of their own, at the time they run', () => {
    const { engine, clock } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    const t0 = clock.now();
    const alice = recordSyncStream(engine, ALICE);
    const seenInside: string[] = [];
    let reacted = false;
    engine.syncStream(BOB).subscribe((b) => {
      if (reacted || !b.events.some((s) => s.userId === ALICE)) return;
      reacted = true;
      engine.bumpActive(BOB);
      engine.setPresence(BOB, { presence: 'unavailable', statusMsg: 'brb' });
      seenInside.push(engine.getUserPresence(BOB).state); // not applied yet: this turn is still emitting
      clock.advance(1_000); // the queued steps run after this, and read the clock then
    });
    engine.setPresence(ALICE, { presence: 'online' });
    expect(seenInside).toEqual(['offline']);
    expect(engine.getUserPresence(BOB)).toMatchObject({ state: 'unavailable', statusMsg: 'brb', lastActiveTs: t0 + 1_000 });
    const last = [...engine.log.read(engine.log.position - 3)].map((e) => (e.event.type === 'user.step' ? e.event.userId : e.event.type));
    expect(last).toEqual([ALICE, BOB, BOB]);
    expect(alice.view().get(BOB as UserId)).toMatchObject({ state: 'unavailable', statusMsg: 'brb' });
    expect(alice.batches.findIndex((b) => b.events.some((s) => s.userId === BOB))).toBeGreaterThan(0);
  });
});

describe('isMine', () => {
  it('is true exactly when the part after the first colon is the server name', () => {
    const { engine } = createTestEngine();
    const piece = fc.constantFrom('@a', 'test.local', 'test.loca', 'xtest.local', ':', '', '8448', 'remote.example', '.');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 5 }), (parts) => {
        const id = parts.join('');
        expect(engine.isMine(id)).toBe(serverNameOf(id) === 'test.local');
      }),
      { numRuns: 2_000 },
    );
    expect(engine.isMine('@alice:test.local')).toBe(true);
    expect(engine.isMine('@alice:xtest.local')).toBe(false);
    expect(engine.isMine('@alice:test.local:8448')).toBe(false);
  });
});
