/**
 * Inputs as a stream (ingest), configuration errors, the event log
 * (replay, snapshot + restore) and memory (actors released when dormant).
 */
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  InvalidInputError,
  PresenceEngine,
  parseConfig,
  parseConfigYaml,
  type PresenceInputEvent,
} from '../../src/index.js';
import { createTestEngine, InMemoryEventLog, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { presenceConfig } from '../../src/config.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const REMOTE = '@erin:remote.example';
const ROOM = '!room:test.local';

describe('ingest(input$): zod-validated inputs from a stream', () => {
  it('applies valid inputs and reports invalid ones without applying them', () => {
    const { engine } = createTestEngine();
    const input$ = new Subject<PresenceInputEvent>();
    const errors: { error: Error; input: unknown }[] = [];
    const sub = engine.ingest(input$, (error, input) => errors.push({ error, input }));
    input$.next({ type: 'room.membership', roomId: ROOM, userId: ALICE, membership: 'join' });
    input$.next({ type: 'room.membership', roomId: ROOM, userId: BOB, membership: 'join' });
    input$.next({ type: 'presence.set', userId: ALICE, presence: 'online', statusMsg: 'hi' });
    input$.next({ type: 'sync.start', userId: BOB, syncId: 's1', deviceId: 'PHONE', setPresence: 'unavailable' });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', statusMsg: 'hi' });
    expect(engine.getUserRecord(BOB).syncs).toEqual({ PHONE: 1 });
    const before = JSON.stringify([...engine.knownUsers()]);
    input$.next({ type: 'presence.set', userId: 'not-a-user', presence: 'online' });
    input$.next({ type: 'presence.set', userId: ALICE, presence: 'sleeping' } as never);
    input$.next({ type: 'presence.set', userId: ALICE, presence: 'online', extra: 1 } as never);
    input$.next({ type: 'teleport' } as never);
    input$.next({ type: 'sync.end', userId: BOB, syncId: 'unknown' });
    input$.next({ type: 'sync.start', userId: BOB, syncId: 's1' });
    expect(errors).toHaveLength(6);
    for (const e of errors) expect(e.error).toBeInstanceOf(InvalidInputError);
    expect((errors[0]?.error as InvalidInputError).field).toBe('userId');
    expect((errors[1]?.error as InvalidInputError).field).toBe('presence');
    expect((errors[4]?.error as InvalidInputError).field).toBe('syncId');
    expect(JSON.stringify([...engine.knownUsers()])).toBe(before);
    input$.next({ type: 'sync.end', userId: BOB, syncId: 's1' });
    expect(engine.getUserRecord(BOB).syncs).toEqual({});
    input$.next({ type: 'activity', userId: BOB, deviceId: 'PHONE' });
    expect(engine.getUserPresence(BOB).state).toBe('online');
    input$.next({ type: 'federation.edu', origin: 'remote.example', content: { push: [{ user_id: REMOTE, presence: 'unavailable' }] } });
    expect(engine.getUserPresence(REMOTE).state).toBe('unavailable');
    sub.unsubscribe();
  });

  it('without onError, rejected inputs are logged as warnings', () => {
    const { engine, logger } = createTestEngine();
    const input$ = new Subject<PresenceInputEvent>();
    engine.ingest(input$);
    input$.next({ type: 'activity', userId: 'x' });
    expect(logger.warnings().some((m) => m.includes('ingest'))).toBe(true);
  });
});

describe('configuration errors (ConfigError with path and message)', () => {
  function configError(raw: unknown): ConfigError {
    try {
      parseConfig(raw);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error('expected a ConfigError');
  }

  it('unknown keys in the presence section are named', () => {
    const e = configError({ server_name: 'a.example', presence: { enabeld: true } });
    expect(e.path).toBe('presence');
    expect(e.message).toContain('"enabeld"');
    expect(e.code).toBe('CONFIG');
  });

  it('unknown top-level keys are ignored and reported', () => {
    const c = parseConfig({ server_name: 'a.example', listeners: [] });
    expect(c.ignoredKeys).toEqual(['listeners']);
  });

  it('wrong types name the path', () => {
    expect(configError({ server_name: 'a.example', presence: { enabled: 'yes' } }).path).toBe('presence.enabled');
    expect(configError({ server_name: 'a.example', presence: { include_offline_users_on_sync: 1 } }).path).toBe(
      'presence.include_offline_users_on_sync',
    );
    expect(configError({ server_name: 'a.example', exclude_rooms_from_presence: ['nope'] }).path).toBe('exclude_rooms_from_presence[0]');
    expect(configError({ server_name: 'a.example', rc_presence: { per_user: { per_second: 0, burst_count: 1 } } }).path).toBe(
      'rc_presence.per_user.per_second',
    );
    expect(configError({ server_name: 'not a host' }).path).toBe('server_name');
    expect(configError({}).path).toBe('server_name');
    expect(configError([]).path).toBe('');
  });

  it('durations: numbers of ms or strings with units; bad ones are rejected', () => {
    const c = parseConfig({ server_name: 'a.example', presence: { idle_timeout: '10m', sync_online_timeout: 45_000, busy_timeout: '2h' } });
    expect(c.timers).toMatchObject({ idleTimeout: 600_000, syncOnlineTimeout: 45_000, busyTimeout: 7_200_000 });
    const e = configError({ server_name: 'a.example', presence: { idle_timeout: 'soon' } });
    expect(e.path).toBe('presence.idle_timeout');
    expect(configError({ server_name: 'a.example', presence: { idle_timeout: -5 } }).path).toBe('presence.idle_timeout');
  });

  it('timer validation: granularity and sync timeout > 0, idle > granularity, ping < federation timeout', () => {
    expect(configError({ server_name: 'a.example', presence: { last_active_granularity: 0 } }).path).toBe('presence.last_active_granularity');
    expect(configError({ server_name: 'a.example', presence: { sync_online_timeout: '0s' } }).path).toBe('presence.sync_online_timeout');
    const idle = configError({ server_name: 'a.example', presence: { idle_timeout: '1m' } });
    expect(idle.path).toBe('presence.idle_timeout');
    expect(idle.message).toContain('last_active_granularity');
    expect(configError({ server_name: 'a.example', presence: { federation_ping_interval: '40m' } }).path).toBe('presence.federation_ping_interval');
    expect(configError({ server_name: 'a.example', presence: { timer_period: 0 } }).path).toBe('presence.timer_period');
  });

  it('defaults follow HEAD; YAML is parsed; enabled falls back to use_presence', () => {
    const c = parseConfigYaml('server_name: a.example\nuse_presence: false\n');
    expect(c.enabled).toBe(false);
    expect(c.timers).toEqual({
      lastActiveGranularity: 60_000,
      syncOnlineTimeout: 30_000,
      idleTimeout: 300_000,
      busyTimeout: 3_600_000,
      federationTimeout: 1_800_000,
      federationPingInterval: 1_500_000,
    });
    expect(c.rateLimit).toEqual({ perSecond: 0.1, burstCount: 1 });
    expect(c.busyEnabled).toBe(false);
    expect(parseConfigYaml('server_name: a.example\npresence:\n  enabled: untracked\n').enabled).toBe('untracked');
    expect(() => parseConfigYaml('server_name: [')).toThrow(ConfigError);
  });

  it('an engine given a raw config validates it', () => {
    expect(() => new PresenceEngine({ config: { server_name: 'a.example', presence: { idle_timeout: 1 } } as never })).toThrow(ConfigError);
  });
});

function scenario(engine: PresenceEngine, clock: SimulatedClock): void {
  engine.joinRoom(ROOM, ALICE);
  engine.joinRoom(ROOM, BOB);
  engine.joinRoom(ROOM, REMOTE);
  engine.setPresence(ALICE, { presence: 'online', statusMsg: 'hi', deviceId: 'A1' });
  const h = engine.userSyncing(BOB, { deviceId: 'B1' });
  clock.advance(20_000);
  engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online', last_active_ago: 5 }] });
  engine.sendLocalOnlinePresenceTo([BOB]);
  clock.advance(70_000); // Alice times out, Bob loses currently_active
  h.end();
  engine.leaveRoom(ROOM, REMOTE);
}

function stateOf(engine: PresenceEngine, users: readonly string[]) {
  return users.map((u) => engine.getUserRecord(u));
}

describe('the log: replay and snapshots', () => {
  it('a fresh engine over the same log has the same state, token and memberships', () => {
    const log = new InMemoryEventLog();
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, log });
    scenario(engine, clock);
    const config = presenceConfig('test.local', { rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } } });
    const replayed = new PresenceEngine({ config, clock, log, logger: new MemoryLogger() });
    expect(stateOf(replayed, [ALICE, BOB, REMOTE])).toEqual(stateOf(engine, [ALICE, BOB, REMOTE]));
    expect(replayed.currentToken).toBe(engine.currentToken);
    expect(replayed.getRoomMembers(ROOM).sort()).toEqual([ALICE, BOB].sort());
  });

  it('snapshot + tail replay equals full replay', () => {
    const log = new InMemoryEventLog();
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, log });
    engine.joinRoom(ROOM, ALICE);
    engine.userSyncing(ALICE, { deviceId: 'A1' });
    const snap = JSON.parse(JSON.stringify(engine.snapshot())) as ReturnType<PresenceEngine['snapshot']>;
    scenario(engine, clock);
    const tail = new InMemoryEventLog(snap.position);
    tail.append([...log.read(snap.position)].map((e) => e.event));
    const config = presenceConfig('test.local');
    const restored = new PresenceEngine({ config, clock, log: tail, snapshot: snap, logger: new MemoryLogger() });
    expect(stateOf(restored, [ALICE, BOB, REMOTE])).toEqual(stateOf(engine, [ALICE, BOB, REMOTE]));
    expect(restored.currentToken).toBe(engine.currentToken);
    expect(restored.getRoomMembers(ROOM).sort()).toEqual(engine.getRoomMembers(ROOM).sort());
  });

  it('a restored engine re-arms timers: an online user times out after restart', () => {
    const log = new InMemoryEventLog();
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, log });
    engine.setPresence(ALICE, { presence: 'online' });
    engine.stop();
    const restored = new PresenceEngine({ config: presenceConfig('test.local'), clock, log, logger: new MemoryLogger() });
    expect(restored.getUserPresence(ALICE).state).toBe('online');
    clock.advance(35_001);
    expect(restored.getUserPresence(ALICE).state).toBe('offline');
  });

  it('endRestoredSyncs ends syncs that died with the old process', () => {
    const log = new InMemoryEventLog();
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, log });
    engine.userSyncing(ALICE, { deviceId: 'D' });
    engine.stop();
    const restored = new PresenceEngine({ config: presenceConfig('test.local'), clock, log, logger: new MemoryLogger() });
    expect(restored.getUserRecord(ALICE).syncs).toEqual({ D: 1 });
    restored.endRestoredSyncs();
    expect(restored.getUserRecord(ALICE).syncs).toEqual({});
    clock.advance(35_001);
    expect(restored.getUserPresence(ALICE).state).toBe('offline');
  });

  it('a snapshot of an unsupported version is refused', () => {
    const snap = { version: 2, position: 0, streamId: 0, users: [], rooms: [], fullRequests: [] } as never;
    expect(() => new PresenceEngine({ config: presenceConfig('test.local'), snapshot: snap })).toThrow(InvalidInputError);
  });
});

describe('memory: actors exist only for users who are not dormant', () => {
  it('an actor is created on the first input and released when the user is offline with no devices and no syncs', () => {
    const { engine, clock } = createTestEngine();
    expect(engine.stats.liveActors).toBe(0);
    engine.setPresence(ALICE, { presence: 'online' });
    const h = engine.userSyncing(BOB);
    expect(engine.stats.liveActors).toBe(2);
    expect(engine.actorState(ALICE)).toEqual({ local: 'online' });
    clock.advance(40_000);
    expect(engine.stats.liveActors).toBe(1); // Alice timed out; Bob still syncing
    expect(engine.actorState(ALICE)).toBeUndefined();
    expect(engine.stats.dormantRecords).toBe(1); // Alice's record is not the default
    h.end();
    clock.advance(40_000);
    expect(engine.stats.liveActors).toBe(0);
    expect(engine.getUserPresence(ALICE).state).toBe('offline');
  });

  it('remote users are released when they expire', () => {
    const { engine, clock } = createTestEngine();
    engine.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online' }] });
    expect(engine.stats.liveActors).toBe(1);
    clock.advance(1_800_000 + 10_000);
    expect(engine.stats.liveActors).toBe(0);
  });

  it('a dormant user wakes up with their record', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'offline', statusMsg: 'gone fishing', deviceId: 'D' });
    clock.advance(40_000);
    expect(engine.stats.liveActors).toBe(0);
    engine.userSyncing(ALICE);
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'online', statusMsg: 'gone fishing' });
  });
});
