/**
 * The per-user XState machine (machines/presence-machine.ts): its named guards
 * and actions as pure functions, and the state value following presence.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { PresenceActorSystem } from '../../machines/actor-system.js';
import {
  NO_CHANGE,
  presenceGuards,
  presenceMachine,
  presenceSteps,
  type PresenceMachineContext,
} from '../../machines/presence-machine.js';
import type { DeviceId, UserId } from '../../src/domain/ids.js';
import { DEFAULT_TIMERS, defaultRecord, type RuleConfig, type UserRecord } from '../../src/domain/presence.js';
import { fcParams } from '../support/fc.js';
import { anyRecord } from '../support/records.js';

const rules: RuleConfig = { timers: DEFAULT_TIMERS, syncCountsAsActivity: true };
const ALICE = '@alice:test.local' as UserId;
const BOB = '@bob:remote.example' as UserId;
const D = 'D' as DeviceId;
const T0 = 1_700_000_000_000;

function ctx(record: UserRecord = defaultRecord(ALICE), isMine = true): PresenceMachineContext {
  return { record, isMine, rules, outcome: NO_CHANGE };
}

function withPatch(c: PresenceMachineContext, patch: Partial<PresenceMachineContext>): PresenceMachineContext {
  return { ...c, ...patch };
}

describe('named guards', () => {
  it('isLocal reads the context flag', () => {
    expect(presenceGuards.isLocal(ctx(undefined, true))).toBe(true);
    expect(presenceGuards.isLocal(ctx(undefined, false))).toBe(false);
  });

  it('presenceIs compares the combined presence', () => {
    const c = ctx();
    expect(presenceGuards.presenceIs(c, 'offline')).toBe(true);
    expect(presenceGuards.presenceIs(c, 'online')).toBe(false);
  });
});

describe('named actions (context patches)', () => {
  it('setPresence: online is a notified change', () => {
    const patch = presenceSteps.setPresence(ctx(), { type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: 'hi' });
    expect(patch.outcome).toEqual({ notify: true, ping: false });
    expect(patch.record?.presence).toMatchObject({ state: 'online', statusMsg: 'hi', currentlyActive: true, lastFederationUpdateTs: T0 });
  });

  it('setPresence with force notifies even without a change', () => {
    const c1 = withPatch(ctx(), presenceSteps.setPresence(ctx(), { type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: null }));
    const again = presenceSteps.setPresence(c1, { type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: null });
    expect(again.outcome?.notify).toBe(false);
    const forced = presenceSteps.setPresence(c1, { type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: null, force: true });
    expect(forced.outcome?.notify).toBe(true);
  });

  it('syncStart / syncEnd count the sync and only the first start is notified', () => {
    let c = ctx();
    const s1 = presenceSteps.syncStart(c, { type: 'sync.start', now: T0, deviceId: D, presence: 'online' });
    expect(s1.outcome?.notify).toBe(true);
    c = withPatch(c, s1);
    const s2 = presenceSteps.syncStart(c, { type: 'sync.start', now: T0 + 1000, deviceId: D, presence: 'online' });
    expect(s2.outcome?.notify).toBe(false);
    c = withPatch(c, s2);
    expect(c.record.syncs[D]).toBe(2);
    const e = presenceSteps.syncEnd(c, { type: 'sync.end', now: T0 + 2000, deviceId: D });
    expect(e.outcome?.notify).toBe(false);
    expect(e.record?.syncs[D]).toBe(1);
  });

  it('activity brings an unavailable user online (notified)', () => {
    let c = ctx();
    c = withPatch(c, presenceSteps.setPresence(c, { type: 'presence.set', now: T0, deviceId: D, presence: 'unavailable', statusMsg: null }));
    const a = presenceSteps.activity(c, { type: 'activity', now: T0 + 10, deviceId: D });
    expect(a.record?.presence.state).toBe('online');
    expect(a.outcome?.notify).toBe(true);
  });

  it('localTimeout with nothing due leaves the record and reports no change', () => {
    const c = withPatch(ctx(), presenceSteps.setPresence(ctx(), { type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: null }));
    const t = presenceSteps.localTimeout(c, { type: 'timeout', now: T0 + 1 });
    expect(t.record).toBeUndefined();
    expect(t.outcome).toBe(NO_CHANGE);
    const late = presenceSteps.localTimeout(c, { type: 'timeout', now: T0 + DEFAULT_TIMERS.syncOnlineTimeout + 1 });
    expect(late.record?.presence.state).toBe('offline');
    expect(late.outcome?.notify).toBe(true);
  });

  it('remoteUpdate and remoteTimeout', () => {
    let c = ctx(defaultRecord(BOB), false);
    const u = presenceSteps.remoteUpdate(c, { type: 'remote.update', now: T0, update: { presence: 'online', statusMsg: null, currentlyActive: true } });
    expect(u.outcome?.notify).toBe(true);
    c = withPatch(c, u);
    expect(presenceSteps.remoteTimeout(c, { type: 'timeout', now: T0 + DEFAULT_TIMERS.federationTimeout }).outcome).toBe(NO_CHANGE);
    const t = presenceSteps.remoteTimeout(c, { type: 'timeout', now: T0 + DEFAULT_TIMERS.federationTimeout + 1 });
    expect(t.record?.presence.state).toBe('offline');
  });

  it('moduleSet is always notified', () => {
    const m = presenceSteps.moduleSet(ctx(), { type: 'module.set', now: T0, presence: 'offline', statusMsg: null });
    expect(m.outcome?.notify).toBe(true);
  });
});

describe('the state value follows presence', () => {
  const system = () => new PresenceActorSystem(rules);

  it('a local user starts in local.offline and moves through the leaves', () => {
    const s = system();
    s.spawn(ALICE, true, defaultRecord(ALICE));
    expect(s.snapshot(ALICE)?.value).toEqual({ local: 'offline' });
    const send = (e: Parameters<PresenceActorSystem['send']>[3]) => s.send(ALICE, true, () => defaultRecord(ALICE), e);
    send({ type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: null });
    expect(s.snapshot(ALICE)?.value).toEqual({ local: 'online' });
    send({ type: 'presence.set', now: T0 + 1, deviceId: D, presence: 'unavailable', statusMsg: null });
    expect(s.snapshot(ALICE)?.value).toEqual({ local: 'unavailable' });
    send({ type: 'presence.set', now: T0 + 2, deviceId: D, presence: 'busy', statusMsg: null });
    expect(s.snapshot(ALICE)?.value).toEqual({ local: 'busy' });
    send({ type: 'timeout', now: T0 + 2 + DEFAULT_TIMERS.busyTimeout + 1 });
    expect(s.snapshot(ALICE)?.value).toEqual({ local: 'offline' });
  });

  it('spawn gives exactly the snapshot XState starts the machine with, for any record (initial snapshots are reused)', () => {
    const s = system(); // one system across runs, so later spawns reuse the initial snapshots of earlier ones
    fc.assert(
      fc.property(fc.boolean(), anyRecord(ALICE), (isMine, r) => {
        s.spawn(ALICE, isMine, r);
        const spawned = s.snapshot(ALICE);
        const actor = createActor(presenceMachine, { input: { record: r, isMine, rules } });
        expect(spawned).toStrictEqual(actor.getSnapshot());
        expect(spawned?.context.record).toBe(r);
        // and it moves on like a started actor
        const e = { type: 'timeout' as const, now: T0 };
        const next = s.send(ALICE, isMine, () => r, e);
        actor.start();
        actor.send(e);
        expect(next.after).toEqual(actor.getSnapshot().context.record);
        expect(s.snapshot(ALICE)?.value).toEqual(actor.getSnapshot().value);
        actor.stop();
      }),
      fcParams(200),
    );
  });

  it('a restored record starts in the leaf of its presence', () => {
    const s = system();
    const r = defaultRecord(ALICE);
    s.spawn(ALICE, true, { ...r, presence: { ...r.presence, state: 'unavailable' } });
    expect(s.snapshot(ALICE)?.value).toEqual({ local: 'unavailable' });
  });

  it('a remote user lives in the remote branch and ignores client inputs', () => {
    const s = system();
    s.spawn(BOB, false, defaultRecord(BOB));
    const r = s.send(BOB, false, () => defaultRecord(BOB), { type: 'presence.set', now: T0, deviceId: D, presence: 'online', statusMsg: null });
    expect(r.after).toBe(r.before);
    expect(s.snapshot(BOB)?.value).toEqual({ remote: 'offline' });
    s.send(BOB, false, () => defaultRecord(BOB), { type: 'remote.update', now: T0, update: { presence: 'unavailable', statusMsg: null, currentlyActive: false } });
    expect(s.snapshot(BOB)?.value).toEqual({ remote: 'unavailable' });
  });

  it('a local user ignores federation updates', () => {
    const s = system();
    const r = s.send(ALICE, true, () => defaultRecord(ALICE), {
      type: 'remote.update',
      now: T0,
      update: { presence: 'online', statusMsg: null, currentlyActive: true },
    });
    expect(r.after.presence.state).toBe('offline');
  });

  it('runs as a real XState actor too', () => {
    const actor = createActor(presenceMachine, { input: { record: defaultRecord(ALICE), isMine: true, rules } }).start();
    actor.send({ type: 'sync.start', now: T0, deviceId: D, presence: 'online' });
    expect(actor.getSnapshot().value).toEqual({ local: 'online' });
    expect(actor.getSnapshot().context.record.syncs[D]).toBe(1);
    actor.stop();
  });
});

describe('no hidden couplings', () => {
  it("leaves the host application's global immer settings alone (the fold has its own instance)", async () => {
    const { produce } = await import('immer');
    await import('../../src/domain/evolve.js');
    const made = produce({ a: { b: 1 } }, (d) => {
      d.a.b = 2;
    });
    expect(Object.isFrozen(made)).toBe(true);
  });
});
