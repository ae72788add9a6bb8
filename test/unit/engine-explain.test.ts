/**
 * "Why is @alice online?": every logged step carries its cause, and
 * `engine.explain` reads them back. A day of simulated traffic for a user
 * with two devices (a laptop that long-polls, a phone), a module and timers;
 * the explanation must name the cause of every state transition, in order.
 */
import { describe, expect, it } from 'vitest';
import { InMemoryEventLog, PresenceEngine, createModuleApi, presenceConfig, type ExplainedStep } from '../../src/index.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const S = 1_000;
const MIN = 60 * S;
const DAY = Date.UTC(2026, 0, 5, 8); // 08:00

function engineFor(clock: SimulatedClock, retain = Infinity) {
  const log = new InMemoryEventLog(0, { retain });
  const config = presenceConfig('test.local', { presence: { busy_enabled: true }, rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } } });
  return new PresenceEngine({ config, clock, log, logger: new MemoryLogger() });
}

const at = (clock: SimulatedClock, hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  clock.advance(DAY + (h - 8) * 60 * MIN + m * MIN - clock.now());
};

const summary = (s: ExplainedStep) => [s.to, s.cause?.input, s.cause?.timer ?? s.cause?.module ?? s.cause?.origin ?? null, s.cause?.device ?? null];

describe('engine.explain', () => {
  it('a day of a user with two devices: every transition’s cause, in order', () => {
    const clock = new SimulatedClock(DAY);
    const engine = engineFor(clock);
    const calendar = createModuleApi(engine, 'calendar');
    const laptop = engine.userSyncing(ALICE, { deviceId: 'LAPTOP' }); // 08:00, held open until lunch
    at(clock, '09:00');
    engine.bumpActive(ALICE, 'LAPTOP');
    at(clock, '12:00');
    laptop.end();
    at(clock, '13:00');
    const phone = engine.userSyncing(ALICE, { deviceId: 'PHONE' });
    clock.advance(S);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'on the train', deviceId: 'PHONE' });
    at(clock, '13:30');
    phone.end();
    at(clock, '14:00');
    engine.setPresence(ALICE, { presence: 'busy', statusMsg: 'focus time', deviceId: 'LAPTOP' });
    at(clock, '16:00');
    calendar.setPresenceForUsers({ [ALICE]: { presence: 'unavailable', statusMsg: 'in a meeting' } });
    at(clock, '18:00');
    const evening = engine.userSyncing(ALICE, { deviceId: 'LAPTOP' });
    at(clock, '18:10');
    evening.end();
    at(clock, '23:59');

    const x = engine.explain(ALICE);
    expect(x).toMatchObject({ userId: ALICE, state: 'offline', complete: true, readFrom: 0 });
    for (const s of x.steps) {
      expect(s.cause, `step at ${s.position}`).not.toBeNull();
      expect(s.rule.length).toBeGreaterThan(0);
    }
    expect(x.steps.map((s) => s.position)).toEqual([...x.steps.map((s) => s.position)].sort((a, b) => b - a)); // newest first
    const transitions = x.steps.filter((s) => s.from !== s.to).reverse();
    expect(transitions.map(summary)).toEqual([
      ['online', 'sync_start', null, 'LAPTOP'],
      ['unavailable', 'timer', 'idle', 'LAPTOP'],
      ['online', 'activity', null, 'LAPTOP'],
      ['unavailable', 'timer', 'idle', 'LAPTOP'],
      ['offline', 'timer', 'sync_timeout', 'LAPTOP'],
      ['online', 'sync_start', null, 'PHONE'],
      ['unavailable', 'timer', 'idle', 'PHONE'],
      ['offline', 'timer', 'sync_timeout', 'PHONE'],
      ['busy', 'set', null, 'LAPTOP'],
      ['offline', 'timer', 'busy_timeout', 'LAPTOP'],
      ['unavailable', 'module', 'calendar', null],
      ['online', 'sync_start', null, 'LAPTOP'],
      ['unavailable', 'timer', 'idle', 'LAPTOP'],
      ['offline', 'timer', 'sync_timeout', 'LAPTOP'],
    ]);
    // the rule, in words, with the configured timers
    expect(transitions[1]?.rule).toBe('device LAPTOP idle for over 5 min → unavailable');
    expect(transitions[4]?.rule).toBe('device LAPTOP neither syncing nor active for over 30 s: removed → offline');
    expect(transitions[9]?.rule).toBe('busy device LAPTOP neither syncing nor active for over 60 min: removed → offline');
    expect(transitions[10]?.rule).toBe('set_presence_for_users by module calendar → unavailable');
    // status changes are named too; keep-alives and currently_active expiries are steps without a transition
    expect(x.steps.find((s) => s.statusMsg === 'on the train')?.cause).toEqual({ input: 'set', device: 'PHONE' });
    expect(x.steps.some((s) => s.cause?.timer === 'active_expiry')).toBe(true);
    // since: only later steps
    const late = engine.explain(ALICE, { since: transitions[10]?.position ?? 0 });
    expect(late.steps.filter((s) => s.from !== s.to).map((s) => s.to)).toEqual(['offline', 'unavailable', 'online']);
  });

  it('a remote user’s update names its origin server; a retained window says older history is gone', () => {
    const clock = new SimulatedClock(DAY);
    const engine = engineFor(clock, 3);
    engine.receiveFederationEdu('remote.example', { push: [{ user_id: '@bob:remote.example', presence: 'online' }] });
    for (let i = 0; i < 5; i++) engine.setPresence(ALICE, { presence: i % 2 === 0 ? 'online' : 'unavailable' });
    expect(engine.explain(ALICE)).toMatchObject({ complete: false, readFrom: engine.log.position - 3 });
    expect(engine.explain(ALICE).steps).toHaveLength(3);
    const big = engineFor(new SimulatedClock(DAY));
    big.receiveFederationEdu('remote.example', { push: [{ user_id: '@bob:remote.example', presence: 'online' }] });
    expect(big.explain('@bob:remote.example').steps[0]).toMatchObject({ cause: { input: 'remote', origin: 'remote.example' }, rule: 'federation update from remote.example → online' });
    expect(() => big.explain(ALICE, { since: -1 })).toThrow(/since/);
  });

  it('names who hears of the user now: local room members (by id on request), remote servers, routers', () => {
    const engine = engineFor(new SimulatedClock(DAY));
    for (const u of [ALICE, '@bob:test.local', '@carol:test.local', '@dan:far.example']) engine.joinRoom('!r:test.local', u);
    engine.joinRoom('!s:test.local', '@erin:near.example');
    engine.joinRoom('!s:test.local', ALICE);
    createModuleApi(engine, 'watch').registerPresenceRouterCallbacks({ getUsersForStates: () => new Map(), getInterestedUsers: () => new Set() });
    expect(engine.explain(ALICE).audience).toEqual({ localUsers: 2, remoteServers: ['far.example', 'near.example'], routers: ['watch'] });
    expect(engine.explain(ALICE, { recipients: true }).audience?.localUserIds).toEqual(['@bob:test.local', '@carol:test.local']);
  });

  it('records who was handed each visible change: streams, pulls, federation, routers (recordDeliveries)', async () => {
    const clock = new SimulatedClock(DAY);
    const config = presenceConfig('test.local', { rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } } });
    const engine = new PresenceEngine({ config, clock, log: new InMemoryEventLog(0, { retain: Infinity }), logger: new MemoryLogger(), recordDeliveries: 1000 });
    for (const u of [ALICE, '@bob:test.local', '@carol:test.local', '@dan:far.example']) engine.joinRoom('!r:test.local', u);
    // A module routes Alice's states to Zed, who shares no room with her and listens to ALL_USERS.
    createModuleApi(engine, 'watch').registerPresenceRouterCallbacks({
      getUsersForStates: (states) => new Map([['@zed:test.local', new Set([...states].filter((s) => s.userId === ALICE))]]),
      getInterestedUsers: (u) => (u === '@zed:test.local' ? 'ALL' : new Set()),
    });
    const seen = { bob: 0, zed: 0 };
    engine.syncStream('@bob:test.local').subscribe((b) => (seen.bob += b.events.filter((e) => e.userId === ALICE).length));
    engine.syncStream('@zed:test.local').subscribe((b) => (seen.zed += b.events.filter((e) => e.userId === ALICE).length));
    const before = engine.currentToken;
    engine.setPresence(ALICE, { presence: 'online' });
    clock.advance(S);
    await engine.getNewEvents('@carol:test.local', before); // Carol pulls the online state
    engine.setPresence(ALICE, { presence: 'unavailable' });
    clock.advance(S);
    expect(seen).toEqual({ bob: 2, zed: 2 });

    const [unavailable, online] = engine.explain(ALICE, { recipients: true }).steps.filter((s) => s.streamId !== undefined);
    expect(unavailable?.to).toBe('unavailable');
    expect(unavailable?.deliveredTo).toEqual({ localUsers: 2, localUserIds: ['@bob:test.local', '@zed:test.local'], remoteServers: ['far.example'], routers: ['watch'], complete: true });
    expect(online?.to).toBe('online');
    expect(online?.deliveredTo).toEqual({ localUsers: 3, localUserIds: ['@bob:test.local', '@carol:test.local', '@zed:test.local'], remoteServers: ['far.example'], routers: ['watch'], complete: true });
    // Counts only unless ids are asked for; Carol's later pull is filed under the state she was handed.
    await engine.getNewEvents('@carol:test.local', before);
    const again = engine.explain(ALICE).steps.filter((s) => s.streamId !== undefined);
    expect(again[0]?.deliveredTo).toEqual({ localUsers: 3, remoteServers: ['far.example'], routers: ['watch'], complete: true });
    expect(again[1]?.deliveredTo?.localUsers).toBe(3);
  });

  it('the delivery record is bounded: evicted history is flagged, and nothing is recorded unless asked', () => {
    const clock = new SimulatedClock(DAY);
    const config = presenceConfig('test.local', { rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } } });
    const listeners = ['@bob:test.local', '@carol:test.local', '@dan:test.local'];
    const small = new PresenceEngine({ config, clock, logger: new MemoryLogger(), recordDeliveries: 4 });
    const off = new PresenceEngine({ config, clock, logger: new MemoryLogger() });
    for (const e of [small, off]) {
      for (const u of [ALICE, ...listeners]) e.joinRoom('!r:test.local', u);
      for (const u of listeners) e.syncStream(u).subscribe();
      for (const p of ['online', 'unavailable', 'online'] as const) e.setPresence(ALICE, { presence: p });
    }
    const steps = small.explain(ALICE).steps.filter((s) => s.streamId !== undefined);
    expect(steps.map((s) => s.deliveredTo?.complete)).toEqual([true, false, false]);
    expect(steps[0]?.deliveredTo?.localUsers).toBe(3);
    expect(off.explain(ALICE).steps.every((s) => s.deliveredTo === undefined)).toBe(true);
    expect(() => new PresenceEngine({ config, logger: new MemoryLogger(), recordDeliveries: -1 })).toThrow(/recordDeliveries/);
  });
});
