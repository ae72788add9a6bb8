/**
 * Restore and inspect through the public API: `snapshotFromStates` starts an
 * engine from plain user states, `presence-engine/rules` exports the pure
 * rules, and `engine.inspect` lists the timers each kind of update arms
 * (spec §2.4, §2.13: idle 5 min, sync timeout 30 s, busy timeout 1 h,
 * currently-active expiry 60 s, federation keep-alive 25 min, remote
 * expiry 30 min).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, PresenceEngine, presenceConfig, snapshotFromStates, type DeadlineKind } from '../../src/index.js';
import { armedDeadlines, nextDeadline, ruleConfig } from '../../src/rules.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { ALL_USERS_IN_TEST, Driver, commands, propertyConfig } from '../property/engine-commands.js';
import { createTestEngine } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const REMOTE = '@carol:remote.example';
const S = 1_000;
const MIN = 60 * S;

function engineAt(clock = new SimulatedClock(), config: Record<string, unknown> = {}) {
  return new PresenceEngine({
    config: presenceConfig('test.local', { presence: { busy_enabled: true }, rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }, ...config }),
    clock,
    logger: new MemoryLogger(),
  });
}
const kinds = (e: PresenceEngine, u: string) => e.inspect(u).deadlines.map((d) => [d.kind, d.dueAt - 0] as [DeadlineKind, number]);

describe('engine.inspect: the deadlines each kind of update arms', () => {
  it('an explicit online (no sync open): idle, sync timeout, currently-active expiry, federation keep-alive', () => {
    const clock = new SimulatedClock();
    const e = engineAt(clock);
    const t = clock.now();
    e.setPresence(ALICE, { presence: 'online', statusMsg: 'hi', deviceId: 'PHONE' });
    const i = e.inspect(ALICE);
    expect(i).toMatchObject({ userId: ALICE, local: true, owned: true, live: true, openSyncs: {} });
    expect(i.record.devices).toHaveProperty('PHONE');
    expect(i.deadlines).toEqual([
      { kind: 'sync_timeout', dueAt: t + 30 * S + 1, deviceId: 'PHONE' },
      { kind: 'active_expiry', dueAt: t + MIN + 1 },
      { kind: 'idle', dueAt: t + 5 * MIN + 1, deviceId: 'PHONE' },
      { kind: 'federation_ping', dueAt: t + 25 * MIN + 1 },
    ]);
    // the wheel re-examines the user at the first tick after the soonest deadline (5 s period)
    expect(i.nextCheckAt).toBe(Math.ceil((t + 30 * S + 1) / 5000) * 5000);
  });

  it('an open sync: no sync timeout for that device while it is open; one when it ends', () => {
    const clock = new SimulatedClock();
    const e = engineAt(clock);
    const t = clock.now();
    const h = e.userSyncing(ALICE, { deviceId: 'LAPTOP' });
    expect(e.inspect(ALICE).openSyncs).toEqual({ LAPTOP: 1 });
    expect(kinds(e, ALICE).map((k) => k[0])).toEqual(['active_expiry', 'idle', 'federation_ping']);
    clock.advance(10 * S);
    h.end();
    expect(e.inspect(ALICE).deadlines[0]).toEqual({ kind: 'sync_timeout', dueAt: t + 10 * S + 30 * S + 1, deviceId: 'LAPTOP' });
  });

  it('unavailable: sync timeout and keep-alive, no idle timer, no active expiry', () => {
    const clock = new SimulatedClock();
    const e = engineAt(clock);
    e.setPresence(ALICE, { presence: 'unavailable' });
    expect(kinds(e, ALICE).map((k) => k[0])).toEqual(['sync_timeout', 'federation_ping']);
  });

  it('busy: the device times out after the busy timeout (1 h), not the sync timeout', () => {
    const clock = new SimulatedClock();
    const e = engineAt(clock);
    const t = clock.now();
    e.setPresence(ALICE, { presence: 'busy', deviceId: 'DESK' });
    expect(e.inspect(ALICE).deadlines).toEqual([
      { kind: 'federation_ping', dueAt: t + 25 * MIN + 1 },
      { kind: 'busy_timeout', dueAt: t + 60 * MIN + 1, deviceId: 'DESK' },
    ]);
  });

  it('a remote update: the remote expiry (30 min without an update); offline remote users arm nothing', () => {
    const clock = new SimulatedClock();
    const e = engineAt(clock);
    const t = clock.now();
    e.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'online' }] });
    expect(e.inspect(REMOTE)).toMatchObject({ local: false, deadlines: [{ kind: 'remote_expiry', dueAt: t + 30 * MIN + 1 }] });
    e.receiveFederationEdu('remote.example', { push: [{ user_id: REMOTE, presence: 'offline' }] });
    expect(e.inspect(REMOTE).deadlines).toEqual([]);
  });

  it('offline users, unknown users, and engines that do not track presence arm nothing', () => {
    const e = engineAt();
    expect(e.inspect(BOB)).toMatchObject({ live: false, deadlines: [], nextCheckAt: null });
    e.setPresence(ALICE, { presence: 'online' });
    e.setPresence(ALICE, { presence: 'offline' });
    expect(e.inspect(ALICE).deadlines.map((d) => d.kind)).toEqual(['sync_timeout']); // the offline device is forgotten after 30 s
    const untracked = engineAt(new SimulatedClock(), { presence: { enabled: 'untracked' } });
    untracked.setPresenceForUsers({ [ALICE]: { presence: 'online' } });
    expect(untracked.inspect(ALICE).deadlines).toEqual([]);
    expect(() => e.inspect('nobody')).toThrow(InvalidInputError);
  });

  it('the soonest armed deadline is nextDeadline, for every user after any workload (property)', () => {
    fc.assert(
      fc.property(commands(), fc.boolean(), (cmds, syncIsActivity) => {
        const clock = new SimulatedClock();
        const { engine } = createTestEngine({ clock, config: propertyConfig(syncIsActivity) });
        const d = new Driver(engine, clock);
        for (const c of cmds) d.apply(c);
        const rules = ruleConfig(engine.config);
        for (const u of ALL_USERS_IN_TEST) {
          const i = engine.inspect(u);
          const soonest = i.deadlines[0]?.dueAt ?? Infinity;
          expect(soonest).toBe(nextDeadline(i.record, i.local, rules));
          expect(i.deadlines).toEqual(armedDeadlines(i.record, i.local, rules));
          if (soonest !== Infinity) expect(i.nextCheckAt).not.toBeNull();
        }
        engine.stop();
      }),
      fcParams(100),
    );
  });
});

describe('snapshotFromStates: start from plain user states', () => {
  it('restores states, status messages and rooms; local users keep a pseudo-device that times out as after a restart', async () => {
    const clock = new SimulatedClock();
    const t = clock.now();
    const snapshot = snapshotFromStates({
      serverName: 'test.local',
      users: [
        { userId: ALICE, state: 'online', lastActiveTs: t - 10 * S, statusMsg: 'back soon', currentlyActive: true },
        { userId: BOB, state: 'unavailable', lastActiveTs: t - 10 * MIN },
        { userId: REMOTE, state: 'online', lastFederationUpdateTs: t - MIN },
      ],
      rooms: { '!r:test.local': [ALICE, BOB, REMOTE] },
    });
    const e = new PresenceEngine({ config: presenceConfig('test.local', {}), clock, logger: new MemoryLogger(), snapshot });
    expect(e.getUserPresence(ALICE)).toMatchObject({ state: 'online', statusMsg: 'back soon', currentlyActive: true });
    expect(e.getRoomMembers('!r:test.local').sort()).toEqual([ALICE, BOB, REMOTE].sort());
    expect((await e.getNewEvents(BOB, null)).events.map((s) => s.userId).sort()).toEqual([ALICE, BOB, REMOTE].sort());
    expect(e.inspect(ALICE).deadlines.map((d) => d.kind)).toContain('sync_timeout');
    expect(e.inspect(REMOTE).deadlines).toEqual([{ kind: 'remote_expiry', dueAt: t - MIN + 30 * MIN + 1 }]);
    clock.advance(40 * S); // nobody synced: the restored devices time out, as Synapse's pseudo-device does
    expect(e.getUserPresence(ALICE).state).toBe('offline');
    expect(e.getUserPresence(ALICE).statusMsg).toBe('back soon');
  });

  it('says which field is wrong', () => {
    expect(() => snapshotFromStates({ serverName: 'test.local', users: [{ userId: 'alice', state: 'online' }] })).toThrow(InvalidInputError);
    expect(() => snapshotFromStates({ serverName: 'test.local', users: [{ userId: ALICE, state: 'away' as never }] })).toThrow(/users\.0\.state/);
    expect(() => snapshotFromStates({ serverName: 'test.local', users: [{ userId: ALICE, state: 'online' }, { userId: ALICE, state: 'offline' }] })).toThrow(/listed twice/);
  });
});
