import type { DeviceId, UserId } from './ids.js';

/** The four presence states. `busy` is only accepted when the config enables it. */
export type PresenceValue = 'online' | 'unavailable' | 'offline' | 'busy';
export const PRESENCE_VALUES: readonly PresenceValue[] = ['online', 'unavailable', 'offline', 'busy'];

/** Priority used to combine devices (Synapse HEAD): busy > online > unavailable > offline. */
export const PRESENCE_PRIORITY: Readonly<Record<PresenceValue, number>> = {
  busy: 4,
  online: 3,
  unavailable: 2,
  offline: 1,
};

/**
 * A user's presence as persisted, streamed and federated: Synapse's seven-field
 * `UserPresenceState`. Immutable; equality is field-wise on all seven fields.
 */
export interface UserPresenceState {
  readonly userId: UserId;
  readonly state: PresenceValue;
  /** Last time the user did something active, ms since epoch; 0 = never. */
  readonly lastActiveTs: number;
  /** Local user: last federation send; remote user: last update received. 0 = never. */
  readonly lastFederationUpdateTs: number;
  /** Last time a sync by this user started or finished. 0 = never. */
  readonly lastUserSyncTs: number;
  readonly statusMsg: string | null;
  /** Local users: active within the last-active granularity (only meaningful when online). */
  readonly currentlyActive: boolean;
}

/** One device's presence (Synapse HEAD per-device presence). */
export interface DevicePresence {
  readonly state: PresenceValue;
  readonly lastActiveTs: number;
  readonly lastSyncTs: number;
}

/**
 * Everything the engine keeps per user. `devices` and `syncs` are only used for
 * local users. (The stream id of a user's last notified change is kept by the
 * engine beside the record, because the machine that computes records does not
 * allocate stream ids.)
 */
export interface UserRecord {
  readonly presence: UserPresenceState;
  readonly devices: Readonly<Record<DeviceId, DevicePresence>>;
  /** In-flight sync requests per device (only devices with a count > 0 appear). */
  readonly syncs: Readonly<Record<DeviceId, number>>;
}

export function defaultPresence(userId: UserId): UserPresenceState {
  return {
    userId,
    state: 'offline',
    lastActiveTs: 0,
    lastFederationUpdateTs: 0,
    lastUserSyncTs: 0,
    statusMsg: null,
    currentlyActive: false,
  };
}

/** The empty device or sync map records share (frozen: records are never written to). */
export const EMPTY_MAP: Readonly<Record<DeviceId, never>> = Object.freeze({});

export function defaultRecord(userId: UserId): UserRecord {
  return { presence: defaultPresence(userId), devices: EMPTY_MAP, syncs: EMPTY_MAP };
}

/**
 * Whether `a` equals `b` with `currentlyActive` and `lastFederationUpdateTs`
 * in place of `b`'s own: the rules compare against a presence before building
 * it (pass `b`'s own two fields to compare `a` and `b` as they are).
 */
export function samePresenceAs(a: UserPresenceState, b: UserPresenceState, currentlyActive: boolean, lastFederationUpdateTs: number): boolean {
  return (
    a.userId === b.userId &&
    a.state === b.state &&
    a.lastActiveTs === b.lastActiveTs &&
    a.lastFederationUpdateTs === lastFederationUpdateTs &&
    a.lastUserSyncTs === b.lastUserSyncTs &&
    a.statusMsg === b.statusMsg &&
    a.currentlyActive === currentlyActive
  );
}

/** The whole record of a dormant user (no devices, no syncs) from their presence. */
export function dormantRecord(presence: UserPresenceState): UserRecord {
  return { presence, devices: EMPTY_MAP, syncs: EMPTY_MAP };
}

/** True when the record carries nothing beyond the default state (it can be dropped from memory). */
export function isDefaultRecord(r: UserRecord): boolean {
  const p = r.presence;
  return (
    p.state === 'offline' &&
    p.lastActiveTs === 0 &&
    p.lastFederationUpdateTs === 0 &&
    p.lastUserSyncTs === 0 &&
    p.statusMsg === null &&
    !p.currentlyActive &&
    isEmpty(r.devices) &&
    isEmpty(r.syncs)
  );
}

/** True when the user needs no live actor: offline, no devices, no open syncs. */
export function isDormant(r: UserRecord): boolean {
  return r.presence.state === 'offline' && isEmpty(r.devices) && isEmpty(r.syncs);
}

/**
 * `map[key]` when `map` has `key` as its own property, else undefined. Device
 * ids are chosen by clients, so a plain read would find inherited members for
 * ids such as `constructor` or `toString`; records may also come from JSON
 * (snapshots, logs) with the usual prototype, so every keyed read goes here.
 */
export function ownEntry<V>(map: Readonly<Record<DeviceId, V>>, key: DeviceId | string): V | undefined {
  return Object.hasOwn(map, key) ? map[key as DeviceId] : undefined;
}

export function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/** Timer values in milliseconds (validated by the config schema). */
export interface PresenceTimers {
  readonly lastActiveGranularity: number;
  readonly syncOnlineTimeout: number;
  readonly idleTimeout: number;
  readonly busyTimeout: number;
  readonly federationTimeout: number;
  readonly federationPingInterval: number;
}

export const DEFAULT_TIMERS: PresenceTimers = {
  lastActiveGranularity: 60_000,
  syncOnlineTimeout: 30_000,
  idleTimeout: 300_000,
  busyTimeout: 3_600_000,
  federationTimeout: 1_800_000,
  federationPingInterval: 1_500_000,
};

/** The parts of the configuration the pure rules depend on. */
export interface RuleConfig {
  readonly timers: PresenceTimers;
  /** When false, syncs keep a device online but do not count as activity (decisions.md). */
  readonly syncCountsAsActivity: boolean;
}
