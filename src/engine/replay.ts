/**
 * Replay and snapshots: the log is the source of truth. An engine starts by
 * loading a snapshot (if any) and folding the log after its position: room
 * indexes, stream ids and the change index are rebuilt entry by entry in log
 * order, while each user's steps are composed into one step per user and
 * folded into their record once at the end (a user's record depends only on
 * their own steps, and steps carry absolute values). Replay equals live
 * (property-tested).
 */
import type { PresenceActorSystem } from '../../machines/actor-system.js';
import type { ChangeIndex } from '../../streams/change-index.js';
import type { MembershipEvent, PresenceEvent } from '../domain/events.js';
import { ComposedStep, evolveUser } from '../domain/evolve.js';
import type { RoomId, UserId } from '../domain/ids.js';
import { defaultRecord, dormantRecord, isDefaultRecord, isDormant, type UserRecord } from '../domain/presence.js';
import type { EngineSnapshot } from '../domain/snapshot.js';
import { InvalidInputError } from '../errors.js';
import type { LogEntry } from '../domain/events.js';
import type { RoomIndex } from './room-index.js';
import type { UserDirectory } from './user-directory.js';
import type { Visibility } from './visibility.js';

/** The parts replay rebuilds. */
export interface ReplayState {
  readonly users: UserDirectory;
  readonly rooms: RoomIndex;
  readonly changes: ChangeIndex;
  readonly actors: PresenceActorSystem;
  /** Users with a pending full-presence request → the token it applies before. */
  readonly fullRequests: Map<UserId, number>;
  /** Visibility policies (`user.policy` events, the snapshot's `policies`). */
  readonly visibility?: Visibility;
  /** Arm a restored user's timers (their owner only, when presence is tracked). */
  arm(user: number, userId: UserId, record: UserRecord): void;
}

/**
 * Load `snapshot`, then fold `entries` (the log after the snapshot's position).
 * @returns the presence stream id reached.
 */
export function restoreState(state: ReplayState, snapshot: EngineSnapshot | undefined, entries: Iterable<LogEntry>): number {
  const { users } = state;
  // Records by user index (a second map by id cost seconds of start-up at a million users).
  const recordAt: (UserRecord | undefined)[] = [];
  let streamId = 0;
  if (snapshot !== undefined) {
    if (snapshot.version !== 1) throw new InvalidInputError('snapshot', `unsupported snapshot version ${String(snapshot.version)}`);
    streamId = snapshot.streamId;
    for (const [id, record, sid] of snapshot.users) {
      const i = users.indexOf(id);
      while (recordAt.length < i) recordAt.push(undefined); // dense: a hole would make it a slow dictionary
      recordAt[i] = record;
      users.lastStreamId[i] = sid;
    }
    for (const [roomId, members] of snapshot.rooms) state.rooms.load(roomId, members);
    state.rooms.compact();
    for (const [u, sid] of snapshot.fullRequests) state.fullRequests.set(u, sid);
    for (const [u, policy] of snapshot.policies ?? []) state.visibility?.set(u, policy);
  }
  const pending: (ComposedStep | undefined)[] = [];
  for (const entry of entries) streamId = fold(state, entry.event, pending, streamId);
  for (let i = 0; i < pending.length; i++) {
    const step = pending[i];
    if (step === undefined) continue;
    while (recordAt.length < i) recordAt.push(undefined);
    recordAt[i] = evolveUser(recordAt[i], step.toStep());
  }
  for (let i = 0; i < recordAt.length; i++) {
    const record = recordAt[i];
    if (record === undefined) continue;
    const id = users.idAt(i);
    const dormant = isDormant(record);
    if (!dormant || !isDefaultRecord(record)) users.storePresence(i, record.presence);
    if (!dormant) state.actors.spawn(id, users.isMineAt(i), record);
    state.arm(i, id, record);
  }
  return streamId;
}

/** The state at log `position` and presence stream id `streamId`. */
export function takeSnapshot(state: ReplayState, position: number, streamId: number): EngineSnapshot {
  const { users } = state;
  const out: [UserId, UserRecord, number][] = [];
  for (let i = 0; i < users.size; i++) {
    const id = users.idAt(i);
    const p = users.presenceAt[i];
    const sid = users.lastStreamId[i] ?? 0;
    if (p !== undefined) out.push([id, state.actors.record(id) ?? dormantRecord(p), sid]);
    else if (sid > 0) out.push([id, defaultRecord(id), sid]);
  }
  const rooms: [RoomId, UserId[]][] = [];
  for (const room of state.rooms.all()) if (room.members.size > 0) rooms.push([room.id, [...room.members].map((m) => users.idAt(m))]);
  const policies = state.visibility?.entries() ?? [];
  return { version: 1, position, streamId, users: out, rooms, fullRequests: [...state.fullRequests], ...(policies.length > 0 ? { policies } : {}) };
}

/**
 * One replayed event. A user step is composed into the user's pending step
 * instead of folded now (folding the composition once equals folding each step).
 */
function fold(state: ReplayState, e: PresenceEvent, pending: (ComposedStep | undefined)[], streamId: number): number {
  switch (e.type) {
    case 'user.step': {
      const i = state.users.indexOf(e.userId);
      while (pending.length <= i) pending.push(undefined); // dense, as above
      const step = pending[i];
      if (step === undefined) pending[i] = new ComposedStep(e);
      else step.add(e);
      if (e.streamId === undefined) return streamId;
      state.users.lastStreamId[i] = e.streamId;
      state.changes.add(e.streamId, i);
      return Math.max(streamId, e.streamId);
    }
    case 'room.membership':
      return foldMembership(state, e, streamId);
    case 'presence.full_requested':
      for (const u of e.userIds) state.fullRequests.set(u, e.streamId - 1);
      return Math.max(streamId, e.streamId);
    case 'user.policy':
    case 'presence.published': {
      if (e.type === 'user.policy') state.visibility?.set(e.userId, e.policy);
      const u = state.users.indexOf(e.userId);
      state.users.lastStreamId[u] = e.streamId;
      state.changes.add(e.streamId, u);
      return Math.max(streamId, e.streamId);
    }
  }
}

function foldMembership(state: ReplayState, e: MembershipEvent, streamId: number): number {
  const room = state.rooms.roomFor(e.roomId);
  const u = state.users.indexOf(e.userId);
  if (e.membership !== 'join') {
    state.rooms.leave(u, room);
    return streamId;
  }
  if (!state.rooms.join(u, room) || e.streamId === undefined) return streamId;
  state.changes.add(e.streamId, u, room.index);
  return Math.max(streamId, e.streamId);
}
