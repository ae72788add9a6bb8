/**
 * The pure presence rules (src/domain/rules.ts), checked against the spec:
 * §2.2 handle_update, §2.3 should_notify, §2.4 timeouts, §2.5 set_state,
 * §2.6 user_syncing, §2.7 bump, §2.13 per-device presence (HEAD), §4.9 module set.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceId, UserId } from '../../src/domain/ids.js';
import {
  DEFAULT_TIMERS,
  defaultPresence,
  defaultRecord,
  type DevicePresence,
  type RuleConfig,
  type UserPresenceState,
  type UserRecord,
} from '../../src/domain/presence.js';
import {
  bumpActive,
  combineDevices,
  finishStep,
  localTimeout,
  moduleSet,
  nextDeadline,
  remoteTimeout,
  remoteUpdate,
  setState,
  shouldNotify,
  syncEnded,
  syncStarted,
} from '../../src/domain/rules.js';

const cfg: RuleConfig = { timers: DEFAULT_TIMERS, syncCountsAsActivity: true };
const noSyncActivity: RuleConfig = { timers: DEFAULT_TIMERS, syncCountsAsActivity: false };
const T = DEFAULT_TIMERS;
const ALICE = '@alice:test.local' as UserId;
const D1 = 'D1' as DeviceId;
const D2 = 'D2' as DeviceId;
const T0 = 1_700_000_000_000;

function presence(fields: Partial<UserPresenceState> = {}): UserPresenceState {
  return { ...defaultPresence(ALICE), ...fields };
}

function dev(state: DevicePresence['state'], lastActiveTs = T0, lastSyncTs = 0): DevicePresence {
  return { state, lastActiveTs, lastSyncTs };
}

function record(
  p: Partial<UserPresenceState> = {},
  devices: Record<string, DevicePresence> = {},
  syncs: Record<string, number> = {},
): UserRecord {
  return {
    presence: presence(p),
    devices: devices as Record<DeviceId, DevicePresence>,
    syncs: syncs as Record<DeviceId, number>,
  };
}

describe('§2.3 shouldNotify, in the spec order', () => {
  const online = presence({ state: 'online', lastActiveTs: T0, currentlyActive: true, statusMsg: 'hi' });

  it('1. identical states (all seven fields) are not notified', () => {
    expect(shouldNotify(online, { ...online }, cfg)).toBe(false);
  });

  it('2. a status message change is notified, null vs "" included', () => {
    expect(shouldNotify(online, { ...online, statusMsg: 'bye' }, cfg)).toBe(true);
    const none = presence({ statusMsg: null });
    expect(shouldNotify(none, { ...none, statusMsg: '' }, cfg)).toBe(true);
  });

  it('3. a state change is notified', () => {
    expect(shouldNotify(online, { ...online, state: 'unavailable' }, cfg)).toBe(true);
    expect(shouldNotify(presence(), presence({ state: 'busy' }), cfg)).toBe(true);
  });

  it('4a. old online: a currently_active change is notified', () => {
    expect(shouldNotify(online, { ...online, currentlyActive: false }, cfg)).toBe(true);
  });

  it('4b. old online: a bump of more than the granularity is notified only when not currently active', () => {
    const bumped = { ...online, lastActiveTs: T0 + T.lastActiveGranularity + 1 };
    expect(shouldNotify(online, bumped, cfg)).toBe(false); // still currently active
    const idle = { ...online, currentlyActive: false };
    expect(shouldNotify(idle, { ...idle, lastActiveTs: T0 + T.lastActiveGranularity + 1 }, cfg)).toBe(true);
    // exactly the granularity is not "more than"
    expect(shouldNotify(idle, { ...idle, lastActiveTs: T0 + T.lastActiveGranularity }, cfg)).toBe(false);
  });

  it('5. old not online: a bump of more than the granularity is notified, smaller ones are not', () => {
    const away = presence({ state: 'unavailable', lastActiveTs: T0 });
    expect(shouldNotify(away, { ...away, lastActiveTs: T0 + T.lastActiveGranularity + 1 }, cfg)).toBe(true);
    expect(shouldNotify(away, { ...away, lastActiveTs: T0 + T.lastActiveGranularity }, cfg)).toBe(false);
    // currently_active is not looked at when the old state is not online
    expect(shouldNotify(away, { ...away, currentlyActive: true }, cfg)).toBe(false);
  });

  it('6. changes to last_federation_update_ts or last_user_sync_ts alone are never notified', () => {
    expect(shouldNotify(online, { ...online, lastFederationUpdateTs: T0 + 10 }, cfg)).toBe(false);
    expect(shouldNotify(online, { ...online, lastUserSyncTs: T0 + 10 }, cfg)).toBe(false);
  });

  it('the granularity comes from the configuration', () => {
    const away = presence({ state: 'unavailable', lastActiveTs: T0 });
    const fine: RuleConfig = { timers: { ...T, lastActiveGranularity: 10 }, syncCountsAsActivity: true };
    expect(shouldNotify(away, { ...away, lastActiveTs: T0 + 11 }, fine)).toBe(true);
    expect(shouldNotify(away, { ...away, lastActiveTs: T0 + 11 }, cfg)).toBe(false);
  });
});

describe('§2.2 finishStep (handle_update)', () => {
  it('local online: currently_active is true strictly within the granularity', () => {
    const prev = record();
    const cand = record({ state: 'online', lastActiveTs: T0 });
    expect(finishStep(prev, cand, true, T0 + T.lastActiveGranularity - 1, cfg).record.presence.currentlyActive).toBe(true);
    expect(finishStep(prev, cand, true, T0 + T.lastActiveGranularity, cfg).record.presence.currentlyActive).toBe(false);
  });

  it('local non-online: currently_active is left as given', () => {
    const cand = record({ state: 'unavailable', lastActiveTs: T0, currentlyActive: true });
    expect(finishStep(record(), cand, true, T0 + 10 * T.lastActiveGranularity, cfg).record.presence.currentlyActive).toBe(true);
  });

  it('remote users: currently_active is never recomputed', () => {
    const cand = record({ state: 'online', lastActiveTs: T0 - 10 * T.lastActiveGranularity, currentlyActive: true });
    const r = finishStep(record(), cand, false, T0, cfg);
    expect(r.record.presence.currentlyActive).toBe(true);
  });

  it('a notified change sets last_federation_update_ts to now', () => {
    const r = finishStep(record(), record({ state: 'online', lastActiveTs: T0 }), true, T0, cfg);
    expect(r.notify).toBe(true);
    expect(r.ping).toBe(false);
    expect(r.record.presence.lastFederationUpdateTs).toBe(T0);
  });

  it('local non-offline user not federated for longer than the ping interval: ping, fed ts := now, no notify', () => {
    const now = T0 + T.federationPingInterval + 1;
    const prev = record({ state: 'unavailable', lastActiveTs: T0, lastFederationUpdateTs: T0 });
    const r = finishStep(prev, prev, true, now, cfg);
    expect(r.notify).toBe(false);
    expect(r.ping).toBe(true);
    expect(r.record.presence.lastFederationUpdateTs).toBe(now);
  });

  it('no ping at exactly the interval, and never for offline or remote users', () => {
    const p = record({ state: 'unavailable', lastFederationUpdateTs: T0 });
    expect(finishStep(p, p, true, T0 + T.federationPingInterval, cfg).ping).toBe(false);
    const off = record({ state: 'offline', lastFederationUpdateTs: T0 });
    expect(finishStep(off, off, true, T0 + 10 * T.federationPingInterval, cfg).ping).toBe(false);
    const remote = record({ state: 'online', lastFederationUpdateTs: T0 });
    expect(finishStep(remote, remote, false, T0 + T.federationPingInterval + 1, cfg).ping).toBe(false);
  });

  it('notify supersedes ping', () => {
    const prev = record({ state: 'unavailable', lastFederationUpdateTs: T0 });
    const now = T0 + T.federationPingInterval + 1;
    const r = finishStep(prev, record({ state: 'online', lastActiveTs: now, lastFederationUpdateTs: T0 }), true, now, cfg);
    expect(r.notify).toBe(true);
    expect(r.ping).toBe(false);
  });

  it('forceNotify notifies an unchanged record', () => {
    const prev = record({ state: 'online', lastActiveTs: T0, currentlyActive: true, lastFederationUpdateTs: T0 });
    expect(finishStep(prev, prev, true, T0, cfg).notify).toBe(false);
    expect(finishStep(prev, prev, true, T0, cfg, true).notify).toBe(true);
  });

  it('the record kept is built by finishStep, never the rule’s candidate (allocation sites of its own, see settledRecord)', () => {
    const prev = record({ state: 'unavailable', lastActiveTs: T0, lastFederationUpdateTs: T0 });
    const cand = record({ state: 'online', lastActiveTs: T0 + 5 }, { D1: dev('online', T0 + 5) });
    const r = finishStep(prev, cand, true, T0 + 5, cfg);
    expect(r.record).not.toBe(cand);
    expect(r.record.presence).not.toBe(cand.presence);
    expect(r.record.presence).toEqual({ ...cand.presence, currentlyActive: true, lastFederationUpdateTs: T0 + 5 });
    expect(r.record.devices).toBe(cand.devices);
    // a presence that ends up equal to the previous one is the previous object
    const same = finishStep(prev, record({ state: 'unavailable', lastActiveTs: T0, lastFederationUpdateTs: T0 }), true, T0 + 1, cfg);
    expect(same.notify).toBe(false);
    expect(same.record.presence).toBe(prev.presence);
  });

  it('should_notify sees the adjusted state: losing currently_active is notified', () => {
    const prev = record({ state: 'online', lastActiveTs: T0, currentlyActive: true, lastFederationUpdateTs: T0 });
    const r = finishStep(prev, prev, true, T0 + T.lastActiveGranularity + 1, cfg);
    expect(r.record.presence.currentlyActive).toBe(false);
    expect(r.notify).toBe(true);
  });
});

describe('combineDevices (§2.13 priority busy > online > unavailable > offline)', () => {
  it('no devices means offline', () => {
    expect(combineDevices({})).toBe('offline');
  });
  it('the highest-priority device wins', () => {
    expect(combineDevices({ a: dev('offline'), b: dev('unavailable') } as Record<DeviceId, DevicePresence>)).toBe('unavailable');
    expect(combineDevices({ a: dev('unavailable'), b: dev('online') } as Record<DeviceId, DevicePresence>)).toBe('online');
    expect(combineDevices({ a: dev('online'), b: dev('busy'), c: dev('unavailable') } as Record<DeviceId, DevicePresence>)).toBe('busy');
    expect(combineDevices({ a: dev('offline') } as Record<DeviceId, DevicePresence>)).toBe('offline');
  });
});

describe('§2.5/§2.13 setState', () => {
  const explicit = (presence: 'online' | 'unavailable' | 'offline' | 'busy', statusMsg: string | null = null, deviceId = D1) =>
    ({ deviceId, presence, statusMsg, isSync: false }) as const;

  it('explicit online: device and user active now, status message set', () => {
    const r = setState(record(), explicit('online', 'hi'), T0, cfg);
    expect(r.devices[D1]).toEqual({ state: 'online', lastActiveTs: T0, lastSyncTs: 0 });
    expect(r.presence).toMatchObject({ state: 'online', lastActiveTs: T0, statusMsg: 'hi', lastUserSyncTs: 0 });
  });

  it('an explicit call without a status message clears it', () => {
    const r = setState(record({ state: 'online', statusMsg: 'hi' }), explicit('online'), T0, cfg);
    expect(r.presence.statusMsg).toBeNull();
  });

  it('explicit unavailable/offline do not bump the user last_active_ts', () => {
    const before = record({ lastActiveTs: T0 - 1000 });
    expect(setState(before, explicit('unavailable'), T0, cfg).presence.lastActiveTs).toBe(T0 - 1000);
    const off = setState(before, explicit('offline', 'gone'), T0, cfg);
    expect(off.presence).toMatchObject({ state: 'offline', lastActiveTs: T0 - 1000, statusMsg: 'gone' });
  });

  it('explicit busy bumps last_active_ts', () => {
    expect(setState(record(), explicit('busy'), T0, cfg).presence).toMatchObject({ state: 'busy', lastActiveTs: T0 });
  });

  it('the user state is the combination of the devices', () => {
    let r = setState(record(), explicit('online', null, D1), T0, cfg);
    r = setState(r, explicit('unavailable', null, D2), T0 + 1, cfg);
    expect(r.presence.state).toBe('online');
    r = setState(r, explicit('offline', null, D1), T0 + 2, cfg);
    expect(r.presence.state).toBe('unavailable');
    r = setState(r, explicit('busy', null, D1), T0 + 3, cfg);
    expect(r.presence.state).toBe('busy');
  });

  it('a sync never touches the status message, bumps last_user_sync_ts and the device sync time', () => {
    const r = setState(record({ statusMsg: 'keep' }), { deviceId: D1, presence: 'online', statusMsg: null, isSync: true }, T0, cfg);
    expect(r.presence).toMatchObject({ state: 'online', statusMsg: 'keep', lastUserSyncTs: T0, lastActiveTs: T0 });
    expect(r.devices[D1]).toEqual({ state: 'online', lastActiveTs: T0, lastSyncTs: T0 });
  });

  it('a sync never overrides busy', () => {
    const busy = setState(record(), explicit('busy', null, D1), T0, cfg);
    const r = setState(busy, { deviceId: D2, presence: 'online', statusMsg: null, isSync: true }, T0 + 5, cfg);
    expect(r.presence.state).toBe('busy');
    expect(r.devices[D2]?.state).toBe('busy');
  });

  it('sync_counts_as_activity=false: a sync does not bump activity of an already-present device', () => {
    let r = setState(record(), { deviceId: D1, presence: 'online', statusMsg: null, isSync: true }, T0, noSyncActivity);
    // a fresh session (device was offline) is activity
    expect(r.presence.lastActiveTs).toBe(T0);
    r = setState(r, { deviceId: D1, presence: 'online', statusMsg: null, isSync: true }, T0 + 10_000, noSyncActivity);
    expect(r.presence.lastActiveTs).toBe(T0);
    expect(r.devices[D1]).toEqual({ state: 'online', lastActiveTs: T0, lastSyncTs: T0 + 10_000 });
  });

  it('sync_counts_as_activity=false: a sync does not bring an idle (unavailable) device back online', () => {
    const idle = record({ state: 'unavailable', lastActiveTs: T0 }, { D1: dev('unavailable', T0, T0) });
    const r = setState(idle, { deviceId: D1, presence: 'online', statusMsg: null, isSync: true }, T0 + 1000, noSyncActivity);
    expect(r.presence.state).toBe('unavailable');
    // with the default (Synapse-compatible) setting it does
    expect(setState(idle, { deviceId: D1, presence: 'online', statusMsg: null, isSync: true }, T0 + 1000, cfg).presence.state).toBe('online');
  });
});

describe('§2.6 syncStarted / syncEnded', () => {
  it('counts in-flight syncs per device and applies set_presence', () => {
    let r = syncStarted(record(), D1, 'online', T0, cfg);
    r = syncStarted(r, D1, 'online', T0 + 1, cfg);
    expect(r.syncs[D1]).toBe(2);
    expect(r.presence).toMatchObject({ state: 'online', lastActiveTs: T0 + 1, lastUserSyncTs: T0 + 1 });
    r = syncEnded(r, D1, T0 + 5);
    expect(r.syncs[D1]).toBe(1);
    r = syncEnded(r, D1, T0 + 9);
    expect(D1 in r.syncs).toBe(false);
    expect(r.presence.lastUserSyncTs).toBe(T0 + 9);
    expect(r.devices[D1]?.lastSyncTs).toBe(T0 + 9);
    expect(r.presence.state).toBe('online');
  });

  it('set_presence=unavailable: unavailable, no user activity bump', () => {
    const r = syncStarted(record({ lastActiveTs: T0 - 5 }), D1, 'unavailable', T0, cfg);
    expect(r.presence).toMatchObject({ state: 'unavailable', lastActiveTs: T0 - 5, lastUserSyncTs: T0 });
  });

  it('a sync keeps the status message', () => {
    expect(syncStarted(record({ statusMsg: 'x' }), D1, 'online', T0, cfg).presence.statusMsg).toBe('x');
  });
});

describe('§2.7/§2.13 bumpActive', () => {
  it('an unavailable device comes back online; the user follows', () => {
    const r = bumpActive(record({ state: 'unavailable', lastActiveTs: T0 }, { D1: dev('unavailable', T0) }), D1, T0 + 100);
    expect(r.devices[D1]?.state).toBe('online');
    expect(r.presence).toMatchObject({ state: 'online', lastActiveTs: T0 + 100 });
  });

  it('busy and offline users keep their state; last_active_ts moves', () => {
    const busy = bumpActive(record({ state: 'busy', lastActiveTs: T0 }, { D1: dev('busy', T0) }), D1, T0 + 100);
    expect(busy.presence).toMatchObject({ state: 'busy', lastActiveTs: T0 + 100 });
    const off = bumpActive(record(), D1, T0 + 100);
    expect(off.presence).toMatchObject({ state: 'offline', lastActiveTs: T0 + 100 });
  });
});

describe('§2.4/§2.13 localTimeout', () => {
  it('an online device idles to unavailable after the idle timeout (strictly), while syncing too', () => {
    const r = record({ state: 'online', lastActiveTs: T0, lastFederationUpdateTs: T0 }, { D1: dev('online', T0, T0) }, { D1: 1 });
    const atLimit = localTimeout(r, T0 + T.idleTimeout, cfg);
    expect(atLimit?.presence.state).toBe('online'); // re-examined (granularity) but not idle yet
    const after = localTimeout(r, T0 + T.idleTimeout + 1, cfg);
    expect(after?.devices[D1]?.state).toBe('unavailable');
    expect(after?.presence.state).toBe('unavailable');
  });

  it('a device neither syncing nor active for longer than the sync timeout is removed; the user goes offline', () => {
    const r = record({ state: 'online', lastActiveTs: T0, lastFederationUpdateTs: T0 }, { D1: dev('online', T0, 0) });
    expect(localTimeout(r, T0 + T.syncOnlineTimeout, cfg)).toBeNull();
    const after = localTimeout(r, T0 + T.syncOnlineTimeout + 1, cfg);
    expect(after?.devices).toEqual({});
    expect(after?.presence.state).toBe('offline');
  });

  it('the sync timeout counts from the later of last sync and last activity', () => {
    const r = record({ state: 'online', lastActiveTs: T0, lastFederationUpdateTs: T0 }, { D1: dev('online', T0, T0 + 20_000) });
    expect(localTimeout(r, T0 + T.syncOnlineTimeout + 1, cfg)).toBeNull();
    expect(localTimeout(r, T0 + 20_000 + T.syncOnlineTimeout + 1, cfg)?.presence.state).toBe('offline');
  });

  it('a device with an open sync is never removed', () => {
    const r = record({ state: 'online', lastActiveTs: T0, lastFederationUpdateTs: T0 }, { D1: dev('online', T0, T0) }, { D1: 1 });
    const after = localTimeout(r, T0 + 10 * T.idleTimeout, cfg);
    expect(after?.devices[D1]).toBeDefined();
    expect(after?.presence.state).toBe('unavailable');
  });

  it('busy devices do not idle and are removed only after the busy timeout (1 h)', () => {
    const r = record({ state: 'busy', lastActiveTs: T0, lastFederationUpdateTs: T0 }, { D1: dev('busy', T0, T0) });
    expect(localTimeout(r, T0 + T.idleTimeout + 1, cfg)?.presence.state).toBe('busy');
    expect(localTimeout(r, T0 + T.busyTimeout, cfg)?.presence.state).toBe('busy');
    expect(localTimeout(r, T0 + T.busyTimeout + 1, cfg)?.presence.state).toBe('offline');
  });

  it('one device timing out leaves the others: the user state is recombined', () => {
    const r = record({ state: 'online', lastActiveTs: T0 + 25_000, lastFederationUpdateTs: T0 }, {
      D1: dev('online', T0, 0),
      D2: dev('unavailable', T0 + 25_000, T0 + 25_000),
    });
    const after = localTimeout(r, T0 + T.syncOnlineTimeout + 1, cfg);
    expect(Object.keys(after?.devices ?? {})).toEqual([D2]);
    expect(after?.presence.state).toBe('unavailable');
  });

  it('the status message is kept by timeouts', () => {
    const r = record({ state: 'online', lastActiveTs: T0, statusMsg: 'brb' }, { D1: dev('online', T0) });
    expect(localTimeout(r, T0 + T.syncOnlineTimeout + 1, cfg)?.presence.statusMsg).toBe('brb');
  });

  it('changed when last active is older than the granularity (any non-offline state) or the ping is due', () => {
    const busy = record({ state: 'busy', lastActiveTs: T0, lastFederationUpdateTs: T0 + 1e9 }, { D1: dev('busy', T0, T0) });
    expect(localTimeout(busy, T0 + T.lastActiveGranularity, cfg)).toBeNull();
    expect(localTimeout(busy, T0 + T.lastActiveGranularity + 1, cfg)).not.toBeNull();
    const ping = record({ state: 'busy', lastActiveTs: T0 + 1e9, lastFederationUpdateTs: T0 }, { D1: dev('busy', T0 + 1e9, T0 + 1e9) });
    expect(localTimeout(ping, T0 + T.federationPingInterval, cfg)).toBeNull();
    expect(localTimeout(ping, T0 + T.federationPingInterval + 1, cfg)).not.toBeNull();
  });

  it('offline users without devices never time out', () => {
    expect(localTimeout(record({ lastActiveTs: T0 }), T0 + 1e12, cfg)).toBeNull();
  });
});

describe('§2.4 remoteTimeout and §3.9 remoteUpdate', () => {
  it('a remote user goes offline strictly after the federation timeout without an update', () => {
    const r = record({ state: 'online', lastFederationUpdateTs: T0, statusMsg: 'x' });
    expect(remoteTimeout(r, T0 + T.federationTimeout, cfg)).toBeNull();
    expect(remoteTimeout(r, T0 + T.federationTimeout + 1, cfg)?.presence).toMatchObject({ state: 'offline', statusMsg: 'x' });
    expect(remoteTimeout(record(), T0 + 1e12, cfg)).toBeNull();
  });

  it('a remote update replaces state, status message and currently_active', () => {
    const r = remoteUpdate(record({ statusMsg: 'old' }), { presence: 'online', lastActiveAgo: 500, statusMsg: null, currentlyActive: true }, T0);
    expect(r.presence).toMatchObject({ state: 'online', lastActiveTs: T0 - 500, statusMsg: null, currentlyActive: true, lastFederationUpdateTs: T0 });
  });
});

describe('§4.9 moduleSet', () => {
  it('replaces state and status message only', () => {
    const r = moduleSet(record({ state: 'online', lastActiveTs: T0, statusMsg: 'a' }), 'unavailable', null);
    expect(r.presence).toMatchObject({ state: 'unavailable', lastActiveTs: T0, statusMsg: null });
  });
});

describe('nextDeadline: the first moment a timeout could change the record', () => {
  it('remote users: federation timeout + 1; offline remote users: never', () => {
    expect(nextDeadline(record({ state: 'online', lastFederationUpdateTs: T0 }), false, cfg)).toBe(T0 + T.federationTimeout + 1);
    expect(nextDeadline(record(), false, cfg)).toBe(Infinity);
  });

  it('local online not syncing: the earliest of sync timeout, idle, currently-active window and ping', () => {
    const r = record({ state: 'online', lastActiveTs: T0, currentlyActive: true, lastFederationUpdateTs: T0 }, { D1: dev('online', T0) });
    expect(nextDeadline(r, true, cfg)).toBe(T0 + T.syncOnlineTimeout + 1);
  });

  it('local online with an open sync: the currently-active window, then idle', () => {
    const r = record({ state: 'online', lastActiveTs: T0, currentlyActive: true, lastFederationUpdateTs: T0 }, { D1: dev('online', T0, T0) }, { D1: 1 });
    expect(nextDeadline(r, true, cfg)).toBe(T0 + T.lastActiveGranularity + 1);
    const notActive = { ...r, presence: { ...r.presence, currentlyActive: false } };
    expect(nextDeadline(notActive, true, cfg)).toBe(T0 + T.idleTimeout + 1);
  });

  it('busy: the busy timeout', () => {
    const r = record({ state: 'busy', lastActiveTs: T0, lastFederationUpdateTs: T0 + T.busyTimeout }, { D1: dev('busy', T0, T0) });
    expect(nextDeadline(r, true, cfg)).toBe(T0 + T.busyTimeout + 1);
  });

  it('agrees with localTimeout: nothing changes before the deadline, something at it', () => {
    const r = record({ state: 'online', lastActiveTs: T0, currentlyActive: true, lastFederationUpdateTs: T0 }, { D1: dev('online', T0) });
    const d = nextDeadline(r, true, cfg);
    expect(localTimeout(r, d - 1, cfg)).toBeNull();
    expect(localTimeout(r, d, cfg)).not.toBeNull();
  });

  it('an offline user with no devices has no deadline', () => {
    expect(nextDeadline(defaultRecord(ALICE), true, cfg)).toBe(Infinity);
  });
});
