/**
 * The fold: `evolveUser(record, step)` applies one logged step to one user's
 * record with immer (small per-user records only: never the whole engine state,
 * see the performance traps); `composeSteps` merges two consecutive steps of one
 * user into one step with the same effect (replay composes a user's whole run of
 * steps, then folds it with a single `produce`); `diffRecords` produces the step
 * that turns one record into another. `evolveUser(a, diffRecords(a, b, …))` equals `b`.
 */
import { Immer, type Draft } from 'immer';
import type { DeviceId, UserId } from './ids.js';
import type { PresenceFields, StepCause, UserStepEvent } from './events.js';
import { EMPTY_MAP, defaultPresence, defaultRecord, ownEntry, type DevicePresence, type UserPresenceState, type UserRecord } from './presence.js';

// The fold's own immer: records are never mutated outside it, and freezing
// every produced record is a cost paid for nothing. A private instance leaves
// the host application's global immer settings alone.
const { produce } = new Immer({ autoFreeze: false });

/** Apply one logged step to a draft of the user's record (the reducer, run inside immer's `produce`). */
function applyStep(draft: Draft<UserRecord>, step: UserStepEvent): void {
  if (step.presence !== undefined) Object.assign(draft.presence, step.presence);
  if (step.devices !== undefined) {
    for (const key in step.devices) {
      const id = key as DeviceId;
      const d = step.devices[id];
      if (d === null || d === undefined) delete draft.devices[id];
      else draft.devices[id] = { state: d.state, lastActiveTs: d.lastActiveTs, lastSyncTs: d.lastSyncTs };
    }
  }
  if (step.syncs !== undefined) {
    for (const key in step.syncs) {
      const id = key as DeviceId;
      const n = step.syncs[id];
      if (n === null || n === undefined) delete draft.syncs[id];
      else draft.syncs[id] = n;
    }
  }
}

/** Fold one logged step into a user's record. */
export function evolveUser(record: UserRecord | undefined, step: UserStepEvent): UserRecord {
  if (record === undefined) return firstRecord(step);
  return produce(record, (draft) => applyStep(draft, step));
}

/**
 * A user's first step (replay without a snapshot meets one per user): nothing
 * shares the new record yet, so it is built in place instead of through a
 * draft. Equal to `produce(defaultRecord(id), …)`, empty maps shared as there.
 */
function firstRecord(step: UserStepEvent): UserRecord {
  const fresh = { presence: defaultPresence(step.userId), devices: {}, syncs: {} };
  applyStep(fresh as Draft<UserRecord>, step);
  return {
    presence: fresh.presence,
    devices: hasKeys(fresh.devices) ? fresh.devices : EMPTY_MAP,
    syncs: hasKeys(fresh.syncs) ? fresh.syncs : EMPTY_MAP,
  };
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * Steps of one user composed into one, in place (replay keeps one per user).
 * Each presence field, device and sync count holds the value of the latest
 * step that mentions it, and that is all `applyStep` depends on: a step
 * writes absolute values, so for any one key the last write wins, whether a
 * value or a `null` (deletion); a deletion followed by a set is a set, a set
 * followed by a deletion is a deletion. The maps are this object's own copies
 * (device values are shared with the log and copied by `applyStep` when the
 * composition is folded), so the log's events are never written to.
 *
 * A class with every field set in the constructor: replay calls `add` once per
 * log entry, and one fixed shape keeps those accesses monomorphic.
 */
export class ComposedStep {
  /** The latest step's time, and the latest stream id given (the fold reads neither). */
  at: number;
  streamId: number | undefined = undefined;
  presence: Partial<Record<keyof PresenceFields, unknown>> | undefined = undefined;
  devices: Record<DeviceId, DevicePresence | null> | undefined = undefined;
  syncs: Record<DeviceId, number | null> | undefined = undefined;
  readonly userId: UserId;

  constructor(first: UserStepEvent) {
    this.userId = first.userId;
    this.at = first.at;
    this.add(first);
  }

  /** Compose a later step of the same user into this one. */
  add(step: UserStepEvent): void {
    this.at = step.at;
    if (step.streamId !== undefined) this.streamId = step.streamId;
    const presence = step.presence;
    if (presence !== undefined) {
      const out = (this.presence ??= {});
      for (const k in presence) out[k as keyof PresenceFields] = presence[k as keyof PresenceFields];
    }
    const devices = step.devices;
    if (devices !== undefined) {
      const out = (this.devices ??= {});
      for (const k in devices) out[k as DeviceId] = devices[k as DeviceId] as DevicePresence | null;
    }
    const syncs = step.syncs;
    if (syncs !== undefined) {
      const out = (this.syncs ??= {});
      for (const k in syncs) out[k as DeviceId] = syncs[k as DeviceId] as number | null;
    }
  }

  /** The composition as one step (the parts no composed step had are absent). */
  toStep(): UserStepEvent {
    return {
      type: 'user.step',
      userId: this.userId,
      at: this.at,
      ...(this.streamId !== undefined ? { streamId: this.streamId } : {}),
      ...(this.presence !== undefined ? { presence: this.presence as Partial<PresenceFields> } : {}),
      ...(this.devices !== undefined ? { devices: this.devices } : {}),
      ...(this.syncs !== undefined ? { syncs: this.syncs } : {}),
    };
  }
}

/**
 * One step with the effect of `a` then `b`: for every record `r`,
 * `evolveUser(evolveUser(r, a), b)` deep-equals `evolveUser(r, composeSteps(a, b))`.
 * Pure (neither argument is modified). Only the order of keys inside
 * `devices`/`syncs` of the folded record may differ (a device deleted then
 * set again keeps its old place), which no reader depends on.
 */
export function composeSteps(a: UserStepEvent, b: UserStepEvent): UserStepEvent {
  const c = new ComposedStep(a);
  c.add(b);
  return c.toStep();
}

/**
 * Fold several steps of one user, in log order: they are composed into one
 * step, then folded with a single `produce`. Equal to folding them one by one.
 */
export function evolveUserSteps(userId: UserId, record: UserRecord | undefined, steps: readonly UserStepEvent[]): UserRecord {
  const first = steps[0];
  if (first === undefined) return record ?? defaultRecord(userId);
  const composed = new ComposedStep(first);
  for (let i = 1; i < steps.length; i++) composed.add(steps[i] as UserStepEvent);
  return evolveUser(record, composed.toStep());
}

function sameDevice(a: DevicePresence | undefined, b: DevicePresence | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.state === b.state && a.lastActiveTs === b.lastActiveTs && a.lastSyncTs === b.lastSyncTs;
}

/**
 * The `devices` part of the step from `prev` to `next` (two different maps),
 * or undefined when no device changed. When a device changed and none was
 * removed, that is `next` itself: setting every device to its value in `next`
 * is the same step as setting only the changed ones (values are absolute), and
 * a map shared with the record costs nothing to keep in the log's window. A
 * removal needs its `null`, so then only the differences are listed.
 */
function devicesStep(
  prev: Readonly<Record<DeviceId, DevicePresence>>,
  next: Readonly<Record<DeviceId, DevicePresence>>,
): Readonly<Record<DeviceId, DevicePresence | null>> | undefined {
  let removed = false;
  for (const k in prev) {
    if (!Object.hasOwn(next, k)) {
      removed = true;
      break;
    }
  }
  if (!removed) {
    for (const k in next) {
      const d = next[k as DeviceId];
      if (d !== undefined && !sameDevice(ownEntry(prev, k), d)) return next;
    }
    return undefined;
  }
  return changedEntries(prev, next, sameDevice);
}

/**
 * The differences from map `prev` to map `next`: `null` for each key that
 * `next` lacks, `next`'s value for each one that `same` says changed;
 * undefined when there are none. The map starts as a literal with its first
 * key, never as `{}` (see the note on the step's shapes in {@link diffRecords}).
 */
function changedEntries<V>(
  prev: Readonly<Record<DeviceId, V>>,
  next: Readonly<Record<DeviceId, V>>,
  same: (a: V | undefined, b: V) => boolean,
): Record<DeviceId, V | null> | undefined {
  let out: Record<DeviceId, V | null> | undefined;
  for (const k in prev) {
    if (Object.hasOwn(next, k)) continue;
    if (out === undefined) out = { [k]: null };
    else out[k as DeviceId] = null;
  }
  for (const k in next) {
    const v = next[k as DeviceId];
    if (v === undefined || same(ownEntry(prev, k), v)) continue;
    if (out === undefined) out = { [k]: v };
    else out[k as DeviceId] = v;
  }
  return out;
}

const sameCount = (a: number | undefined, b: number): boolean => a === b;

/**
 * The presence fields that differ between `a` and `b`, with `b`'s values, or
 * undefined when none does. Written out field by field (a loop over the field
 * names made every read a keyed load by a varying name), and the part starts
 * as a literal with its first field, never as `{}` (see the note on the step's
 * shapes in {@link diffRecords}). The property tests of the fold write every
 * field, so a field missing here fails them.
 */
function presenceStep(a: UserPresenceState, b: UserPresenceState): Partial<PresenceFields> | undefined {
  let out: { -readonly [K in keyof PresenceFields]?: PresenceFields[K] } | undefined;
  if (a.state !== b.state) out = { state: b.state };
  if (a.lastActiveTs !== b.lastActiveTs) {
    if (out === undefined) out = { lastActiveTs: b.lastActiveTs };
    else out.lastActiveTs = b.lastActiveTs;
  }
  if (a.lastFederationUpdateTs !== b.lastFederationUpdateTs) {
    if (out === undefined) out = { lastFederationUpdateTs: b.lastFederationUpdateTs };
    else out.lastFederationUpdateTs = b.lastFederationUpdateTs;
  }
  if (a.lastUserSyncTs !== b.lastUserSyncTs) {
    if (out === undefined) out = { lastUserSyncTs: b.lastUserSyncTs };
    else out.lastUserSyncTs = b.lastUserSyncTs;
  }
  if (a.statusMsg !== b.statusMsg) {
    if (out === undefined) out = { statusMsg: b.statusMsg };
    else out.statusMsg = b.statusMsg;
  }
  if (a.currentlyActive !== b.currentlyActive) {
    if (out === undefined) out = { currentlyActive: b.currentlyActive };
    else out.currentlyActive = b.currentlyActive;
  }
  return out;
}

/** The step that turns `prev` into `next`, or `null` when nothing changed. */
export function diffRecords(
  userId: UserId,
  prev: UserRecord,
  next: UserRecord,
  at: number,
  streamId?: number,
  cause?: StepCause,
): UserStepEvent | null {
  const presence = prev.presence === next.presence ? undefined : presenceStep(prev.presence, next.presence);
  let devices: Readonly<Record<DeviceId, DevicePresence | null>> | undefined;
  if (prev.devices !== next.devices) devices = devicesStep(prev.devices, next.devices);
  const syncs = prev.syncs === next.syncs ? undefined : changedEntries(prev.syncs, next.syncs, sameCount);
  if (presence === undefined && devices === undefined && syncs === undefined && streamId === undefined) return null;
  // Only the parts that changed are present (no `undefined` keys). The usual
  // shapes are whole literals, and maps start with their first key, so a
  // logged step is as few objects as possible (docs/performance.md, V8 notes).
  if (presence !== undefined && devices !== undefined && syncs === undefined && cause !== undefined) {
    return streamId === undefined
      ? { type: 'user.step', userId, at, presence, devices, cause }
      : { type: 'user.step', userId, at, streamId, presence, devices, cause };
  }
  const step: { -readonly [K in keyof UserStepEvent]: UserStepEvent[K] } = { type: 'user.step', userId, at };
  if (streamId !== undefined) step.streamId = streamId;
  if (presence !== undefined) step.presence = presence;
  if (devices !== undefined) step.devices = devices;
  if (syncs !== undefined) step.syncs = syncs;
  if (cause !== undefined) step.cause = cause;
  return step;
}
