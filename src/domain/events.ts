/**
 * Domain events: what the log records. They are facts, JSON-serialisable, and
 * carry absolute values (never deltas), so folding them is idempotent per entry.
 */
import type { DeviceId, RoomId, UserId } from './ids.js';
import type { DevicePresence, UserPresenceState } from './presence.js';

export type PresenceFields = Omit<UserPresenceState, 'userId'>;

/** One user's state moved: only the parts that changed are present. */
export interface UserStepEvent {
  readonly type: 'user.step';
  readonly userId: UserId;
  /** Time of the step (ms since epoch). */
  readonly at: number;
  /** Present when the change was notified: the new presence stream id. */
  readonly streamId?: number;
  readonly presence?: Partial<PresenceFields>;
  /**
   * Devices set (object) or removed (`null`). Unchanged devices may be listed
   * too: a step that changes a device and removes none carries the user's
   * whole device map (the engine's steps share it with the record).
   */
  readonly devices?: Readonly<Record<DeviceId, DevicePresence | null>>;
  /** In-flight sync counts set (number) or cleared (`null`). */
  readonly syncs?: Readonly<Record<DeviceId, number | null>>;
}

export type Membership = 'join' | 'leave' | 'ban';

export interface MembershipEvent {
  readonly type: 'room.membership';
  readonly roomId: RoomId;
  readonly userId: UserId;
  readonly membership: Membership;
  readonly at: number;
  /** Joins advance the presence stream (the joiner becomes visible to the room): their stream id. */
  readonly streamId?: number;
}

/**
 * `sendLocalOnlinePresenceTo` for local targets: their next read is served as an
 * initial sync (offline users excluded). Advances the stream by one id.
 */
export interface FullPresenceRequestedEvent {
  readonly type: 'presence.full_requested';
  readonly userIds: readonly UserId[];
  readonly streamId: number;
  readonly at: number;
}

export type PresenceEvent = UserStepEvent | MembershipEvent | FullPresenceRequestedEvent;

/** An event as stored in a log, at its position (1, 2, 3, … with no gaps). */
export interface LogEntry {
  readonly position: number;
  readonly event: PresenceEvent;
}
