/** The engine's public option, input and result types. */
import type { Clock } from '../clock.js';
import type { HomeserverConfigInput, PresenceConfig } from '../config.js';
import type { DeviceId, UserId } from '../domain/ids.js';
import type { UserPresenceState, UserRecord } from '../domain/presence.js';
import type { ArmedDeadline, DeadlineKind } from '../domain/rules.js';
import type { EngineSnapshot } from '../domain/snapshot.js';
import type { EventLog } from '../log/event-log.js';
import type { Logger } from '../logger.js';

/** A stream token: the presence stream id a reader has seen up to. */
export type StreamToken = number;

export interface PresenceEngineOptions {
  /** A parsed config (`parseConfig`) or a raw homeserver config object. */
  readonly config: PresenceConfig | HomeserverConfigInput;
  /** Defaults to the system clock. Tests pass a `SimulatedClock`. */
  readonly clock?: Clock;
  /**
   * Defaults to a new in-memory log keeping the newest `log.retain` entries of
   * the config (default 10 000). An existing log is replayed on start-up.
   */
  readonly log?: EventLog;
  /** Start from this snapshot, then replay log entries after its position. */
  readonly snapshot?: EngineSnapshot;
  readonly logger?: Logger;
  /**
   * Distributed mode (docs/distributed.md): whether this process owns a user, i.e.
   * runs their inputs and timers and federates their changes. Users it does not
   * own change only through `applyReplicated`. Default: all.
   */
  readonly owns?: (userId: UserId) => boolean;
  /**
   * Fewest users re-examined per turn when a timer tick is processed in slices
   * 1 ms apart (default 16; a tick still takes at most 50 slices). `Infinity`
   * re-examines a whole tick in one turn. Each user's history is the same
   * either way (property-tested); only how long other inputs may wait changes.
   */
  readonly timerSlice?: number;
  /**
   * With `presence.turns: per_tick`: schedules the end of the current
   * event-loop tick, where the engine commits every input the tick brought
   * (default `setImmediate`). Tests pass their own to end ticks by hand. It
   * must call `closeTurn` once, soon: until it does, the tick's inputs are
   * applied and readable but not committed, except by `snapshot()` or
   * `stop()`, which commit the open tick first.
   */
  readonly endOfTick?: (closeTurn: () => void) => void;
  /**
   * Run every event through XState's interpreter (`transition`) instead of
   * the compiled path: the reference behaviour, slower. Default false.
   */
  readonly interpretEveryEvent?: boolean;
  /**
   * Record who was handed each user's state (sync streams, `getNewEvents`,
   * federation transmissions, router modules) so `engine.explain` can say who
   * received each visible change: the number of recipients held before the
   * oldest records are dropped. 0 (the default) records nothing.
   */
  readonly recordDeliveries?: number;
  /**
   * Called at the end of every committed turn with its `performance.now()`
   * times (opened, after the log append, after fan-out and flush), the inputs
   * it ran and the log events it appended. For metrics; unset, it costs nothing.
   */
  readonly onTurn?: ((turn: TurnTiming) => void) | undefined;
  /** Called at the end of a turn, per kind, with how many timeout steps that kind of timer made change a user. */
  readonly onTimerFired?: ((kind: DeadlineKind, count: number) => void) | undefined;
}

/** One committed turn, for {@link PresenceEngineOptions.onTurn}. Times are `performance.now()` milliseconds. */
export interface TurnTiming {
  /** The turn opened (its first input started). */
  readonly startedAt: number;
  /** The turn's events were appended to the log. */
  readonly committedAt: number;
  /** Fan-out and flush finished. */
  readonly endedAt: number;
  /** Inputs (API calls, mailbox jobs, timer slices) the turn ran. */
  readonly inputs: number;
  /** Log events the turn appended. */
  readonly events: number;
}

export interface SetPresenceInput {
  readonly presence: string;
  readonly statusMsg?: string | null | undefined;
  readonly deviceId?: string | undefined;
}

export interface UserSyncingInput {
  readonly deviceId?: string | undefined;
  /** The `/sync` `set_presence` parameter; default `online`. */
  readonly setPresence?: 'online' | 'unavailable' | 'offline' | undefined;
}

/** Returned by `userSyncing`: call `end()` when the sync request finishes. Idempotent. */
export interface SyncHandle {
  /** Whether this sync counts for presence (false when presence is off, untracked, rate-limited or `set_presence=offline`). */
  readonly affectsPresence: boolean;
  end(): void;
}

/** `engine.inspect(userId)`: a user's record and the timers armed for them. */
export interface UserInspection {
  readonly userId: UserId;
  /** A user of this server. */
  readonly local: boolean;
  /** This process runs the user's inputs and timers (always, outside distributed mode). */
  readonly owned: boolean;
  /** The user has a live actor (not dormant). */
  readonly live: boolean;
  readonly record: UserRecord;
  /** Open sync requests per device. */
  readonly openSyncs: Readonly<Record<DeviceId, number>>;
  /** Every timer armed for the user, soonest first (none when presence is not tracked or the user is not owned). */
  readonly deadlines: readonly ArmedDeadline[];
  /** The timer tick that will re-examine the user (the soonest deadline rounded up to `timer_period`), or null. */
  readonly nextCheckAt: number | null;
}

export interface GetNewEventsOptions {
  /** Initial syncs only: include offline users (defaults to `include_offline_users_on_sync`). */
  readonly includeOffline?: boolean;
}

export interface NewEvents {
  readonly events: UserPresenceState[];
  readonly nextToken: StreamToken;
  /** True when the answer is a full (initial-style) one: no token, a full-presence request, or a token too old to answer incrementally. */
  readonly full: boolean;
}

export interface EngineStats {
  /** Notified presence changes (each got a stream id). */
  updates: number;
  /** (recipient, changed user) pairs emitted on sync streams. */
  deliveries: number;
  /** Inputs rejected with a typed error. */
  rejectedInputs: number;
  /** Inbound federation items dropped by validation. */
  droppedInboundItems: number;
  /** Live per-user actors. */
  liveActors: number;
  /** Dormant users kept as compact records. */
  dormantRecords: number;
  /** Users with at least one open sync stream. */
  openSyncStreams: number;
}
