/**
 * The presence rules as pure functions of (record, input, time, config).
 * They follow Synapse HEAD (spec §2, per-device presence §2.13) with the
 * differences in decisions.md. Nothing here reads a clock or touches I/O.
 */
import type { DeviceId } from './ids.js';
import {
  EMPTY_MAP,
  PRESENCE_PRIORITY,
  ownEntry,
  samePresenceAs,
  type DevicePresence,
  type PresenceValue,
  type RuleConfig,
  type UserPresenceState,
  type UserRecord,
} from './presence.js';

/** Build a presence value with a fixed field order: one object shape for every presence value (docs/performance.md, V8 notes). */
export function withPresence(
  p: UserPresenceState,
  state: PresenceValue,
  lastActiveTs: number,
  lastFederationUpdateTs: number,
  lastUserSyncTs: number,
  statusMsg: string | null,
  currentlyActive: boolean,
): UserPresenceState {
  return { userId: p.userId, state, lastActiveTs, lastFederationUpdateTs, lastUserSyncTs, statusMsg, currentlyActive };
}

function withRecord(
  presence: UserPresenceState,
  devices: Readonly<Record<DeviceId, DevicePresence>>,
  syncs: Readonly<Record<DeviceId, number>>,
): UserRecord {
  return { presence, devices, syncs };
}

/** Result of one step: the next record and what the change means for the outside world. */
export interface StepResult {
  readonly record: UserRecord;
  /** Persist with a new stream id and deliver to interested users. */
  readonly notify: boolean;
  /** Not notified, but re-send to remote servers (federation keep-alive). */
  readonly ping: boolean;
}

/** Combine device states by priority; no devices means offline (Synapse `_combine_device_states`). */
export function combineDevices(devices: Readonly<Record<DeviceId, DevicePresence>>): PresenceValue {
  let best: PresenceValue = 'offline';
  let rank = 1;
  for (const id in devices) {
    const d = devices[id as DeviceId];
    if (d === undefined) continue;
    const r = PRESENCE_PRIORITY[d.state];
    if (r > rank) {
      rank = r;
      best = d.state;
    }
  }
  return best;
}

/** Spec §2.3: is the change from `old` to `next` worth telling anyone about? */
export function shouldNotify(old: UserPresenceState, next: UserPresenceState, cfg: RuleConfig): boolean {
  return notifies(old, next, next.currentlyActive, next.lastFederationUpdateTs, cfg);
}

/** {@link shouldNotify} for `next` = `c` with `currentlyActive` and `lastFed` in place of its own (no object built for it). */
function notifies(old: UserPresenceState, c: UserPresenceState, currentlyActive: boolean, lastFed: number, cfg: RuleConfig): boolean {
  if (samePresenceAs(old, c, currentlyActive, lastFed)) return false;
  if (old.statusMsg !== c.statusMsg) return true;
  if (old.state !== c.state) return true;
  const bumped = c.lastActiveTs - old.lastActiveTs > cfg.timers.lastActiveGranularity;
  if (old.state === 'online') {
    if (old.currentlyActive !== currentlyActive) return true;
    return bumped && !currentlyActive;
  }
  return bumped;
}

/**
 * Spec §2.2 `handle_update`: adjust the candidate presence (currently_active,
 * federation ping) and decide notification. `prev` is the record before the input.
 */
export function finishStep(
  prev: UserRecord,
  candidate: UserRecord,
  isMine: boolean,
  now: number,
  cfg: RuleConfig,
  forceNotify = false,
): StepResult {
  const c = candidate.presence;
  let currentlyActive = c.currentlyActive;
  let lastFed = c.lastFederationUpdateTs;
  let ping = false;
  if (isMine) {
    if (c.state === 'online') currentlyActive = now - c.lastActiveTs < cfg.timers.lastActiveGranularity;
    if (c.state !== 'offline' && now - lastFed > cfg.timers.federationPingInterval) {
      lastFed = now;
      ping = true;
    }
  }
  const old = prev.presence;
  const notify = forceNotify || notifies(old, c, currentlyActive, lastFed, cfg);
  if (notify) lastFed = now;
  // The record that is kept is built here, never taken from the rule: see settledRecord.
  const presence = samePresenceAs(old, c, currentlyActive, lastFed)
    ? old
    : settledPresence(c, currentlyActive, lastFed);
  return { record: settledRecord(presence, candidate.devices, candidate.syncs), notify, ping: ping && !notify };
}

/**
 * The presence a step keeps: the candidate `c` with the two fields
 * `finishStep` settles (the candidate itself is only read). Like
 * {@link settledRecord}, an allocation site of its own.
 */
function settledPresence(c: UserPresenceState, currentlyActive: boolean, lastFederationUpdateTs: number): UserPresenceState {
  return {
    userId: c.userId,
    state: c.state,
    lastActiveTs: c.lastActiveTs,
    lastFederationUpdateTs,
    lastUserSyncTs: c.lastUserSyncTs,
    statusMsg: c.statusMsg,
    currentlyActive,
  };
}

/**
 * The record a step keeps, built at an allocation site of its own: kept records
 * and throw-away candidates must not share a site (docs/performance.md, V8 notes).
 */
function settledRecord(
  presence: UserPresenceState,
  devices: Readonly<Record<DeviceId, DevicePresence>>,
  syncs: Readonly<Record<DeviceId, number>>,
): UserRecord {
  return { presence, devices, syncs };
}

/**
 * A copy of `map` with `key` set to `value`, or without `key` when `value` is
 * undefined. It starts as a literal with a key, never as `{}`, so that it can
 * live in the old generation with its record (docs/performance.md, V8 notes).
 */
function withEntry<V>(map: Readonly<Record<DeviceId, V>>, key: DeviceId, value: V | undefined): Readonly<Record<DeviceId, V>> {
  let out: Record<DeviceId, V> | undefined = value === undefined ? undefined : { [key]: value };
  for (const k in map) {
    if (k === key) continue;
    const v = map[k as DeviceId] as V;
    if (out === undefined) out = { [k]: v };
    else out[k as DeviceId] = v;
  }
  return out ?? EMPTY_MAP;
}

/** A copy of `syncs` with the device's count set to `n`, or without the device when `n` ≤ 0. */
function withSyncCount(syncs: Readonly<Record<DeviceId, number>>, deviceId: DeviceId, n: number): Readonly<Record<DeviceId, number>> {
  return withEntry(syncs, deviceId, n > 0 ? n : undefined);
}

function device(r: UserRecord, deviceId: DeviceId): DevicePresence {
  return ownEntry(r.devices, deviceId) ?? { state: 'offline', lastActiveTs: 0, lastSyncTs: 0 };
}

/**
 * Spec §2.5 / §2.13 `set_state`. `isSync` marks a sync-driven call (status message
 * untouched, busy kept, `last_user_sync_ts` bumped). An explicit call replaces the
 * status message (absent means cleared).
 */
export function setState(
  r: UserRecord,
  input: { deviceId: DeviceId; presence: PresenceValue; statusMsg: string | null; isSync: boolean },
  now: number,
  cfg: RuleConfig,
): UserRecord {
  const prev = r.presence;
  let presence = input.presence;
  if (input.isSync && prev.state === 'busy') presence = 'busy';
  const old = device(r, input.deviceId);
  // With sync_counts_as_activity=false a sync is not activity: it brings an
  // offline device online (a fresh session is activity) but never overrides a
  // device that idled to unavailable, and it does not bump last_active_ts.
  const syncIsActivity = !input.isSync || cfg.syncCountsAsActivity || old.state === 'offline';
  if (input.isSync && !cfg.syncCountsAsActivity && presence === 'online' && old.state === 'unavailable') {
    presence = 'unavailable';
  }
  const dev: DevicePresence = {
    state: presence,
    lastActiveTs: syncIsActivity ? now : old.lastActiveTs,
    lastSyncTs: input.isSync ? now : old.lastSyncTs,
  };
  const devices = withEntry(r.devices, input.deviceId, dev);
  const combined = combineDevices(devices);
  const presenceNext = withPresence(
    prev,
    combined,
    (combined === 'online' || combined === 'busy') && syncIsActivity ? now : prev.lastActiveTs,
    prev.lastFederationUpdateTs,
    input.isSync ? now : prev.lastUserSyncTs,
    input.isSync ? prev.statusMsg : input.statusMsg,
    prev.currentlyActive,
  );
  return withRecord(presenceNext, devices, r.syncs);
}

/** Spec §2.6: a sync request started on a device with `set_presence` online or unavailable. */
export function syncStarted(
  r: UserRecord,
  deviceId: DeviceId,
  presence: 'online' | 'unavailable',
  now: number,
  cfg: RuleConfig,
): UserRecord {
  const syncs = withSyncCount(r.syncs, deviceId, (ownEntry(r.syncs, deviceId) ?? 0) + 1);
  return setState(withRecord(r.presence, r.devices, syncs), { deviceId, presence, statusMsg: null, isSync: true }, now, cfg);
}

/** Spec §2.6 exit: a sync request on a device finished. */
export function syncEnded(r: UserRecord, deviceId: DeviceId, now: number): UserRecord {
  const syncs = withSyncCount(r.syncs, deviceId, (ownEntry(r.syncs, deviceId) ?? 0) - 1);
  const old = device(r, deviceId);
  const p = r.presence;
  return withRecord(
    withPresence(p, p.state, p.lastActiveTs, p.lastFederationUpdateTs, now, p.statusMsg, p.currentlyActive),
    withEntry(r.devices, deviceId, { state: old.state, lastActiveTs: old.lastActiveTs, lastSyncTs: now }),
    syncs,
  );
}

/** Spec §2.7 / §2.13 `bump_presence_active_time`: unavailable devices come back online. */
export function bumpActive(r: UserRecord, deviceId: DeviceId, now: number): UserRecord {
  const old = device(r, deviceId);
  const devices = withEntry(r.devices, deviceId, {
    state: old.state === 'unavailable' ? 'online' : old.state,
    lastActiveTs: now,
    lastSyncTs: old.lastSyncTs,
  });
  const p = r.presence;
  return withRecord(
    withPresence(p, combineDevices(devices), now, p.lastFederationUpdateTs, p.lastUserSyncTs, p.statusMsg, p.currentlyActive),
    devices,
    r.syncs,
  );
}

/**
 * Spec §2.4 / §2.13 `handle_timeout` for a local user: idle online devices
 * become unavailable, devices neither syncing nor active within the sync timeout
 * (busy: busy timeout) are removed, and the user state is recombined. Returns
 * `null` when nothing needs re-examination by {@link finishStep}.
 */
export function localTimeout(r: UserRecord, now: number, cfg: RuleConfig): UserRecord | null {
  const t = cfg.timers;
  let devices: Record<DeviceId, DevicePresence> | null = null;
  for (const key in r.devices) {
    const id = key as DeviceId;
    let d = r.devices[id];
    if (d === undefined) continue;
    let changed = false;
    if (d.state === 'online' && now - d.lastActiveTs > t.idleTimeout) {
      d = { ...d, state: 'unavailable' };
      changed = true;
    }
    let removed = false;
    if ((ownEntry(r.syncs, id) ?? 0) === 0) {
      const limit = d.state === 'busy' ? t.busyTimeout : t.syncOnlineTimeout;
      if (now - Math.max(d.lastSyncTs, d.lastActiveTs) > limit) removed = true;
    }
    if (changed || removed) {
      devices ??= { ...r.devices };
      if (removed) delete devices[id];
      else devices[id] = d;
    }
  }
  let next = devices === null ? r : { ...r, devices };
  const p = r.presence;
  if (p.state === 'offline') return devices === null ? null : next;
  let changed = false;
  if (devices !== null) {
    const combined = combineDevices(devices);
    if (combined !== p.state) {
      next = { ...next, presence: { ...p, state: combined } };
      changed = true;
    }
  }
  if (now - p.lastActiveTs > t.lastActiveGranularity) changed = true;
  if (now - p.lastFederationUpdateTs > t.federationPingInterval) changed = true;
  return changed || devices !== null ? next : null;
}

/** Spec §2.4 for a remote user: offline after the federation timeout without an update. */
export function remoteTimeout(r: UserRecord, now: number, cfg: RuleConfig): UserRecord | null {
  const p = r.presence;
  if (p.state === 'offline') return null;
  if (now - p.lastFederationUpdateTs > cfg.timers.federationTimeout) {
    return { ...r, presence: { ...p, state: 'offline' } };
  }
  return null;
}

/** Fields of an accepted inbound federation presence item (spec §3.9, validated). */
export interface RemotePresenceUpdate {
  readonly presence: PresenceValue;
  readonly lastActiveAgo?: number | undefined;
  readonly statusMsg: string | null;
  readonly currentlyActive: boolean;
}

export function remoteUpdate(r: UserRecord, u: RemotePresenceUpdate, now: number): UserRecord {
  return {
    ...r,
    presence: {
      ...r.presence,
      state: u.presence,
      lastFederationUpdateTs: now,
      lastActiveTs: u.lastActiveAgo === undefined ? r.presence.lastActiveTs : now - u.lastActiveAgo,
      statusMsg: u.statusMsg,
      currentlyActive: u.currentlyActive,
    },
  };
}

/** Spec §4.9 `set_presence_for_users`: replace state and status message (always notified). */
export function moduleSet(r: UserRecord, presence: PresenceValue, statusMsg: string | null): UserRecord {
  return { ...r, presence: { ...r.presence, state: presence, statusMsg } };
}

/**
 * The earliest time at which {@link localTimeout} / {@link remoteTimeout} could
 * change this record, or `Infinity`. Thresholds are strict (`>`), so each
 * deadline is the first millisecond after the limit.
 */
export function nextDeadline(r: UserRecord, isMine: boolean, cfg: RuleConfig): number {
  const t = cfg.timers;
  const p = r.presence;
  if (!isMine) return p.state === 'offline' ? Infinity : p.lastFederationUpdateTs + t.federationTimeout + 1;
  let due = Infinity;
  for (const key in r.devices) {
    const d = r.devices[key as DeviceId];
    if (d === undefined) continue;
    if (d.state === 'online') due = Math.min(due, d.lastActiveTs + t.idleTimeout + 1);
    if ((ownEntry(r.syncs, key) ?? 0) === 0) {
      const limit = d.state === 'busy' ? t.busyTimeout : t.syncOnlineTimeout;
      due = Math.min(due, Math.max(d.lastSyncTs, d.lastActiveTs) + limit + 1);
    }
  }
  if (p.state !== 'offline') {
    if (p.state === 'online' && p.currentlyActive) due = Math.min(due, p.lastActiveTs + t.lastActiveGranularity + 1);
    due = Math.min(due, p.lastFederationUpdateTs + t.federationPingInterval + 1);
  }
  return due;
}

/** The timers a record can arm (spec §2.4, §2.13): what makes a timeout step change a user. */
export type DeadlineKind = 'idle' | 'sync_timeout' | 'busy_timeout' | 'active_expiry' | 'remote_expiry' | 'federation_ping';

/** Every kind, most decisive first: when several fall due at once, the first names the step's cause. */
export const DEADLINE_KINDS: readonly DeadlineKind[] = ['remote_expiry', 'busy_timeout', 'sync_timeout', 'idle', 'active_expiry', 'federation_ping'];

/** One armed timer: its kind, the first millisecond it fires at, and the device it watches (device timers). */
export interface ArmedDeadline {
  readonly kind: DeadlineKind;
  readonly dueAt: number;
  readonly deviceId?: DeviceId;
}

/**
 * Every timer `r` arms, soonest first; the earliest is {@link nextDeadline}.
 * Local users: an online device's idle timer, a device's sync (or busy)
 * timeout while it has no sync open, the currently-active expiry of an
 * online, currently active user and the federation keep-alive of a user who
 * is not offline. Remote users: the federation timeout while not offline.
 */
export function armedDeadlines(r: UserRecord, isMine: boolean, cfg: RuleConfig): ArmedDeadline[] {
  const t = cfg.timers;
  const p = r.presence;
  const out: ArmedDeadline[] = [];
  if (!isMine) {
    if (p.state !== 'offline') out.push({ kind: 'remote_expiry', dueAt: p.lastFederationUpdateTs + t.federationTimeout + 1 });
    return out;
  }
  for (const key in r.devices) {
    const d = r.devices[key as DeviceId];
    if (d === undefined) continue;
    const deviceId = key as DeviceId;
    if (d.state === 'online') out.push({ kind: 'idle', dueAt: d.lastActiveTs + t.idleTimeout + 1, deviceId });
    if ((ownEntry(r.syncs, key) ?? 0) === 0) {
      const busy = d.state === 'busy';
      out.push({ kind: busy ? 'busy_timeout' : 'sync_timeout', dueAt: Math.max(d.lastSyncTs, d.lastActiveTs) + (busy ? t.busyTimeout : t.syncOnlineTimeout) + 1, deviceId });
    }
  }
  if (p.state !== 'offline') {
    if (p.state === 'online' && p.currentlyActive) out.push({ kind: 'active_expiry', dueAt: p.lastActiveTs + t.lastActiveGranularity + 1 });
    out.push({ kind: 'federation_ping', dueAt: p.lastFederationUpdateTs + t.federationPingInterval + 1 });
  }
  return out.sort((a, b) => a.dueAt - b.dueAt);
}

/** The timer that made a timeout step at `now` change record `r` (the most decisive of those due), or null if none was due. */
export function firedDeadline(r: UserRecord, now: number, isMine: boolean, cfg: RuleConfig): ArmedDeadline | null {
  let best: ArmedDeadline | null = null;
  for (const d of armedDeadlines(r, isMine, cfg)) {
    if (d.dueAt > now) break;
    if (best === null || DEADLINE_KINDS.indexOf(d.kind) < DEADLINE_KINDS.indexOf(best.kind)) best = d;
  }
  return best;
}
