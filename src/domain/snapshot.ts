/**
 * The serialisable state of an engine at a log position: what a snapshot file
 * holds. It lives in the domain so that logs can store it without knowing the engine.
 */
import type { RoomId, UserId } from './ids.js';
import type { PresencePolicy } from './policy.js';
import type { UserRecord } from './presence.js';

export interface EngineSnapshot {
  readonly version: 1;
  /** Log position the snapshot covers: replay continues after it. */
  readonly position: number;
  /** Presence stream id at that position. */
  readonly streamId: number;
  /** Every user with a non-default record or a stream id: id, record, last notified stream id. */
  readonly users: readonly (readonly [UserId, UserRecord, number])[];
  /** Joined members of each room. */
  readonly rooms: readonly (readonly [RoomId, readonly UserId[]])[];
  /** Users with a pending full-presence request, and the token it applies before. */
  readonly fullRequests: readonly (readonly [UserId, number])[];
  /** Users with a visibility policy other than the default (absent in snapshots taken before policies). */
  readonly policies?: readonly (readonly [UserId, PresencePolicy])[];
}
