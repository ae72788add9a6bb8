/**
 * The fold: `evolveUser(record, step)` applies one logged step to one user's
 * record with immer (small per-user records only: never the whole engine state,
 * see the performance traps); `evolveUserSteps` applies a run of one user's
 * steps in a single `produce` (replay); `diffRecords` produces the step that
 * turns one record into another. `evolveUser(a, diffRecords(a, b, …))` equals `b`.
 */
import { produce, setAutoFreeze, type Draft } from 'immer';
import type { DeviceId, UserId } from './ids.js';
import type { PresenceFields, UserStepEvent } from './events.js';
import { defaultRecord, type DevicePresence, type UserRecord } from './presence.js';

// Records are never mutated outside immer; freezing every produced record would
// only cost time on the hot path.
setAutoFreeze(false);

const PRESENCE_KEYS = [
  'state',
  'lastActiveTs',
  'lastFederationUpdateTs',
  'lastUserSyncTs',
  'statusMsg',
  'currentlyActive',
] as const satisfies readonly (keyof PresenceFields)[];

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
  return produce(record ?? defaultRecord(step.userId), (draft) => applyStep(draft, step));
}

/**
 * Fold several steps of one user, in log order, with a single `produce`. A
 * user's record depends only on that user's own steps, so replay groups each
 * chunk of the log by user and pays immer's fixed cost once per user and chunk
 * instead of once per event. Equal to folding the steps one by one.
 */
export function evolveUserSteps(userId: UserId, record: UserRecord | undefined, steps: readonly UserStepEvent[]): UserRecord {
  const base = record ?? defaultRecord(userId);
  if (steps.length === 0) return base;
  return produce(base, (draft) => {
    for (const step of steps) applyStep(draft, step);
  });
}

function sameDevice(a: DevicePresence | undefined, b: DevicePresence | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.state === b.state && a.lastActiveTs === b.lastActiveTs && a.lastSyncTs === b.lastSyncTs;
}

/** The step that turns `prev` into `next`, or `null` when nothing changed. */
export function diffRecords(
  userId: UserId,
  prev: UserRecord,
  next: UserRecord,
  at: number,
  streamId?: number,
): UserStepEvent | null {
  let presence: Partial<Record<keyof PresenceFields, unknown>> | undefined;
  if (prev.presence !== next.presence) {
    for (const k of PRESENCE_KEYS) {
      if (prev.presence[k] !== next.presence[k]) (presence ??= {})[k] = next.presence[k];
    }
  }
  let devices: Record<DeviceId, DevicePresence | null> | undefined;
  if (prev.devices !== next.devices) {
    for (const k in prev.devices) if (!(k in next.devices)) (devices ??= {})[k as DeviceId] = null;
    for (const k in next.devices) {
      const d = next.devices[k as DeviceId];
      if (d !== undefined && !sameDevice(prev.devices[k as DeviceId], d)) (devices ??= {})[k as DeviceId] = d;
    }
  }
  let syncs: Record<DeviceId, number | null> | undefined;
  if (prev.syncs !== next.syncs) {
    for (const k in prev.syncs) if (!(k in next.syncs)) (syncs ??= {})[k as DeviceId] = null;
    for (const k in next.syncs) {
      const n = next.syncs[k as DeviceId];
      if (n !== undefined && prev.syncs[k as DeviceId] !== n) (syncs ??= {})[k as DeviceId] = n;
    }
  }
  if (presence === undefined && devices === undefined && syncs === undefined && streamId === undefined) return null;
  // Only the parts that changed are present (no `undefined` keys); assigned one
  // by one rather than spread from temporary objects on this per-input path.
  const step: { -readonly [K in keyof UserStepEvent]: UserStepEvent[K] } = { type: 'user.step', userId, at };
  if (streamId !== undefined) step.streamId = streamId;
  if (presence !== undefined) step.presence = presence as Partial<PresenceFields>;
  if (devices !== undefined) step.devices = devices;
  if (syncs !== undefined) step.syncs = syncs;
  return step;
}
