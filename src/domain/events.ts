/**
 * Domain events: what the log records. They are facts, JSON-serialisable, and
 * carry absolute values (never deltas), so folding them is idempotent per entry.
 */
import type { DeviceId, RoomId, ServerName, UserId } from './ids.js';
import type { PresencePolicy } from './policy.js';
import type { DevicePresence, UserPresenceState } from './presence.js';
import type { DeadlineKind } from './rules.js';

export type PresenceFields = Omit<UserPresenceState, 'userId'>;

/** What made a step: the input, or the timer that fired (`flush`: the start-up flush with presence disabled). */
export type StepInput = 'set' | 'sync_start' | 'sync_end' | 'activity' | 'remote' | 'module' | 'timer' | 'flush';

/** Why a step happened: its input and where it came from (the device, the origin server, the module, or the timer). */
export interface StepCause {
  readonly input: StepInput;
  readonly device?: DeviceId;
  /** `remote`: the server the update came from. */
  readonly origin?: ServerName;
  /** `module`: the module that called `setPresenceForUsers`, when known. */
  readonly module?: string;
  /** `timer`: the most decisive timer that was due (rules.ts `firedDeadline`). */
  readonly timer?: DeadlineKind;
}

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
  /** Why (engine steps; absent in logs written before causes were recorded, and in composed or checkpoint steps). Replay ignores it. */
  readonly cause?: StepCause;
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

/**
 * A user's visibility policy was set (docs/policies.md): the whole policy, so
 * the last one replayed wins. Advances the stream by one id: who sees the
 * user's truth changed, so every path re-reads them.
 */
export interface UserPolicyEvent {
  readonly type: 'user.policy';
  readonly userId: UserId;
  readonly policy: PresencePolicy;
  readonly streamId: number;
  readonly at: number;
}

/**
 * Flap damping released a held change (docs/policies.md): others are shown the
 * user's truth again. Carries no state (the user's steps hold the truth);
 * advances the stream by one id so readers from any token re-read the user.
 */
export interface PublishedEvent {
  readonly type: 'presence.published';
  readonly userId: UserId;
  readonly streamId: number;
  readonly at: number;
}

export type PresenceEvent = UserStepEvent | MembershipEvent | FullPresenceRequestedEvent | UserPolicyEvent | PublishedEvent;

/** An event as stored in a log, at its position (1, 2, 3, … with no gaps). */
export interface LogEntry {
  readonly position: number;
  readonly event: PresenceEvent;
}
