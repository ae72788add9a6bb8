/**
 * The presence engine: the composition root that wires the per-user actors
 * (machines/), the event log (src/log), the routing indexes and the sync
 * notifiers (streams/), the presence router and federation.
 *
 * One input is processed per *turn*: validate → actor step(s) → log append →
 * fan-out through indexes → flush notifiers and federation. Inputs arriving
 * while a turn runs (e.g. from a subscriber) wait in the mailbox and run next,
 * so turns never interleave. With `presence.turns: per_tick`, the first input
 * of an event-loop tick opens a turn that every later input of the tick joins
 * (its state changes at once, as in `batch`), and the turn commits at the end
 * of the tick: under load, the inputs that queued up while the engine was busy
 * share one log append and one flush.
 */
import { Observable, Subject, type Subscriber, type Subscription } from 'rxjs';
import { PresenceActorSystem } from '../machines/actor-system.js';
import type { PresenceMachineEvent } from '../machines/presence-machine.js';
import { ChangeIndex } from '../streams/change-index.js';
import { EMPTY_INTEREST, RoomSegment, SyncNotifier, syncStreamObservable, type PresenceBatch } from '../streams/sync-notifier.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { DEFAULT_MEMORY_LOG_RETAIN, parseConfig, type HomeserverConfigInput, type PresenceConfig } from './config.js';
import type { LogEntry, MembershipEvent, PresenceEvent } from './domain/events.js';
import { ComposedStep, diffRecords, evolveUser } from './domain/evolve.js';
import { formatPresence, type PresenceContent } from './domain/format.js';
import {
  DEFAULT_DEVICE,
  parseDeviceId,
  parseRoomId,
  parseUserId,
  serverNameOf,
  type DeviceId,
  type RoomId,
  type ServerName,
  type UserId,
} from './domain/ids.js';
import {
  defaultPresence,
  dormantRecord,
  defaultRecord,
  isDefaultRecord,
  isDormant,
  type PresenceValue,
  type RuleConfig,
  type UserPresenceState,
  type UserRecord,
} from './domain/presence.js';
import { nextDeadline } from './domain/rules.js';
import { EngineStoppedError, ForbiddenError, InvalidInputError, RateLimitedError, isPresenceError } from './errors.js';
import { parsePresenceEdu } from './federation/edu.js';
import {
  FederationOutbound,
  type FederationLink,
  type FederationOutboundStats,
  type FederationTransmission,
  type FederationTransport,
  type FederationTransportOptions,
} from './federation/outbound.js';
import { PresenceInputEventSchema, PresenceInputSchema, SetPresenceInSyncSchema, StatusMsgSchema, type PresenceInputEvent } from './inputs.js';
import { InMemoryEventLog, type EventLog } from './log/event-log.js';
import { consoleLogger, type Logger } from './logger.js';
import { RateLimiter } from './rate-limit.js';
import { ALL_USERS, PresenceRouter, type Interest, type PresenceRouterCallbacks, type RoutedStates } from './router/presence-router.js';
import { TimerWheel } from './timer-wheel.js';

export type { PresenceBatch } from '../streams/sync-notifier.js';

/** A stream token: the presence stream id a reader has seen up to. */
export type StreamToken = number;

/**
 * Fewest users re-examined per turn when a timer tick is processed in slices.
 * 16 changes reaching ~900 listeners each are ~15k deliveries: about 1 ms at the
 * per-turn delivery rate measured here (docs/performance.md).
 */
const TIMEOUT_SLICE = 16;
/** Most turns one timer tick is spread over (a large tick takes bigger slices). */
const TIMEOUT_SLICES_PER_TICK = 50;
/** Longest a turn's event or changed-user list is kept for reuse (a `batch(256)` turn fits). */
const TURN_LIST_KEEP = 4096;

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
   * own change only through {@link PresenceEngine.applyReplicated}. Default: all.
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
   * (default `setImmediate`, which runs after the I/O callbacks of this
   * iteration of the event loop). Tests pass their own to end ticks by hand.
   * It must call `closeTurn` once, soon: until it does, the tick's inputs
   * are applied and readable but not committed (no log append, no emission),
   * except by `snapshot()` or `stop()`, which commit the open tick first.
   */
  readonly endOfTick?: (closeTurn: () => void) => void;
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

/** The handle of every sync that does not count for presence (one object, not one per call). */
const INERT_SYNC: SyncHandle = Object.freeze({ affectsPresence: false, end: () => {} });

/** The default end of a per-tick turn: after the I/O callbacks of this event-loop iteration. */
const scheduleImmediate = (closeTurn: () => void): void => {
  setImmediate(closeTurn);
};

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

/** Serialisable engine state at a log position. */
export interface EngineSnapshot {
  readonly version: 1;
  readonly position: number;
  readonly streamId: number;
  readonly users: readonly (readonly [UserId, UserRecord, number])[];
  readonly rooms: readonly (readonly [RoomId, readonly UserId[]])[];
  readonly fullRequests: readonly (readonly [UserId, number])[];
}

interface Room {
  readonly id: RoomId;
  readonly index: number;
  readonly members: Set<number>;
  /** Members with an open sync stream (a subset of `members`): fan-out visits these, not every member. Change it only through `addListening`/`deleteListening`. */
  readonly listening: Set<number>;
  /**
   * The notifiers of `listening`, as an array (built on first use after
   * `listening` changes, see `listenersOf`): fan-out walks an array of the
   * notifiers themselves instead of iterating a set and looking each one up.
   */
  listeners: SyncNotifier[] | null;
  /** Joined remote users per server. */
  readonly remote: Map<ServerName, number>;
  readonly excluded: boolean;
  /** This turn's changed members, shared by the room's listeners (created on first use). */
  segment: RoomSegment | null;
}

type Job = () => void;

const EMPTY_ROOMS: readonly Room[] = [];
/** Room lists up to this length are kept exactly sized (see `addRoomOf`). */
const EXACT_ROOM_LISTS = 32;

function addListening(room: Room, user: number): void {
  room.listening.add(user);
  room.listeners = null;
}

function deleteListening(room: Room, user: number): void {
  if (room.listening.delete(user)) room.listeners = null;
}

export class PresenceEngine {
  readonly config: PresenceConfig;
  readonly clock: Clock;
  readonly log: EventLog;
  readonly logger: Logger;
  readonly router: PresenceRouter;
  /** Outbound federation transmissions; a transport subscribes. */
  readonly federationOutbound$: Observable<FederationTransmission>;
  private readonly counters: EngineStats = {
    updates: 0,
    deliveries: 0,
    rejectedInputs: 0,
    droppedInboundItems: 0,
    liveActors: 0,
    dormantRecords: 0,
    openSyncStreams: 0,
  };

  private readonly rules: RuleConfig;
  private readonly actors: PresenceActorSystem;
  /**
   * The current presence of each user by index: every live actor's, and each
   * dormant user's whose state differs from the default (`undefined` means the
   * default). A dormant user has no devices and no syncs, so their presence is
   * their whole record: one array slot and one object per known user instead
   * of a map entry and a record wrapper, and `stateAt` is one array read on the
   * delivery path. Live users' records are held by their actors.
   */
  private readonly presenceAt: (UserPresenceState | undefined)[] = [];
  private storedCount = 0;
  private readonly userIds: UserId[] = [];
  private readonly userIndex = new Map<UserId, number>();
  private readonly lastStreamId: number[] = [];
  /**
   * 1 for a user of this server, 0 for a remote one, by user index: `isMine`
   * once per user instead of a string scan at every membership and change
   * (at start-up, ~0.5 µs per membership on a 100k-user snapshot).
   */
  private mineAt = new Uint8Array(1024);
  /**
   * The rooms of each user, by user index, in join order: an array rather than
   * a `Set` (fan-out walks it for every changed user; a user in 5 rooms costs
   * ~88 bytes, where a `Set` of 5 cost ~230). A leave is a linear
   * search of the leaver's rooms.
   */
  private readonly roomsOf: (Room[] | undefined)[] = [];
  private readonly rooms = new Map<RoomId, Room>();
  private readonly roomList: Room[] = [];
  private readonly notifiers: (SyncNotifier | undefined)[] = [];
  /** Listening users whose cached router interest names a user: target → notifiers. */
  private readonly interestIndex = new Map<UserId, Set<SyncNotifier>>();
  private readonly allUsersListeners = new Set<SyncNotifier>();
  private readonly changes: ChangeIndex;
  private readonly fullRequests = new Map<UserId, number>();
  /** Scratch of `changedAndVisible` (incremental `getNewEvents`), per user index: `markGen` once answered, `-markGen` once found not visible. */
  private userMarks = new Int32Array(1024);
  /** Scratch of `changedAndVisible`, per user index: `markGen` for members of the reader's rooms that are not excluded. */
  private memberMarks = new Int32Array(1024);
  /** Scratch of `changedAndVisible`, per room index: `markGen` for the reader's rooms that are not excluded. */
  private roomMarks = new Int32Array(256);
  /** Generation of the marks (one per incremental read); the arrays are cleared when it would overflow. */
  private markGen = 0;
  /** Timers by user index. */
  private readonly wheel: TimerWheel;
  /**
   * Users whose timer fired, waiting for their re-examination: a tick is
   * processed in slices, one turn each, 1 ms apart (see `onTimers`).
   */
  private timeoutQueue: number[] = [];
  private timeoutHead = 0;
  /** Users per slice, set when a tick queues users: the queue is done in at most TIMEOUT_SLICES_PER_TICK turns. */
  private timeoutSliceSize = TIMEOUT_SLICE;
  private readonly timeoutSliceMin: number;
  /** Per user index: the tick time of their queued re-examination; 0 = none queued. */
  private timeoutAt = new Float64Array(1024);
  private drainHandle: TimerHandle | null = null;
  private readonly limiter: RateLimiter;
  private readonly federation: FederationOutbound;
  private readonly syncsByKey = new Map<string, SyncHandle>();
  private streamId = 0;
  private stopped = false;
  private readonly closeHooks: (() => void | Promise<void>)[] = [];
  private readonly owned: (userId: UserId) => boolean;

  // Turn state
  private processing = false;
  private batching = false;
  /** `presence.turns: per_tick`: inputs open a turn that `closeTick` commits at the end of the event-loop tick. */
  private readonly perTick: boolean;
  private readonly endOfTick: (closeTurn: () => void) => void;
  /** A per-tick turn is open (inputs run in it; `closeTick` is scheduled). */
  private tickOpen = false;
  private readonly mailbox: Job[] = [];
  /**
   * This turn's events (the first `turnEventCount`) and changed users (the
   * first `turnChangedCount`). Both lists keep their capacity from turn to
   * turn: a fresh list per turn grew a 16-slot backing store for a single
   * entry, on every input. The changed-user list is swapped with a spare at
   * commit (as `dirty` is at flush), so a change recorded while the fan-out
   * walks the list (none is today: inputs from inside a turn wait in the
   * mailbox) could not overwrite it.
   */
  private readonly turnEvents: (PresenceEvent | undefined)[] = [];
  private turnEventCount = 0;
  private turnChanged: number[] = [];
  private turnChangedSpare: number[] = [];
  private turnChangedCount = 0;
  /**
   * The stream id at the last commit: a user whose `lastStreamId` is above it
   * was notified in this turn and is already in `turnChanged` (no per-turn set
   * to clear).
   */
  private turnBase = 0;
  private turnJoins: [number, Room][] = [];
  private turnPings: UserPresenceState[] = [];
  private turnFull: UserId[] = [];
  /**
   * Notifiers to flush this turn: the first `dirtyCount` entries. Two arrays
   * take turns (one is filled while the other is flushed) and keep their
   * capacity, so waking hundreds of listeners allocates no list per turn.
   */
  private dirty: (SyncNotifier | undefined)[] = [];
  private dirtySpare: (SyncNotifier | undefined)[] = [];
  private dirtyCount = 0;
  /** Rooms with a non-empty segment this turn: the first `dirtyRoomCount` (cleared by `flush`). */
  private readonly dirtyRooms: (Room | undefined)[] = [];
  private dirtyRoomCount = 0;
  private readonly committed = new Subject<readonly LogEntry[]>();
  /** A user's record for their actor's first step (one function for all steps). */
  private readonly restoreRecord = (userId: UserId): UserRecord => this.recordOf(userId);

  constructor(options: PresenceEngineOptions) {
    this.config = isParsed(options.config) ? options.config : parseConfig(options.config);
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? consoleLogger;
    // The default log is not durable: it keeps a bounded window (`log.retain`), not the whole history.
    const retain = (this.config.log.kind === 'memory' ? this.config.log.retain : undefined) ?? DEFAULT_MEMORY_LOG_RETAIN;
    this.log = options.log ?? new InMemoryEventLog(options.snapshot?.position ?? 0, { retain });
    this.rules = { timers: this.config.timers, syncCountsAsActivity: this.config.syncCountsAsActivity };
    this.actors = new PresenceActorSystem(this.rules);
    this.router = new PresenceRouter(this.clock, this.logger, this.config.routerTimeout);
    this.changes = new ChangeIndex(this.config.changeIndexSize, options.snapshot?.streamId ?? 0);
    this.wheel = new TimerWheel(this.clock, this.config.timerPeriod, (due, now) => this.onTimers(due, now));
    this.limiter = new RateLimiter(this.config.rateLimit.perSecond, this.config.rateLimit.burstCount);
    this.federation = new FederationOutbound(this.config.serverName, this.config.busyWireValue, this.clock, this.logger);
    this.federationOutbound$ = this.federation.transmissions$.asObservable();
    for (const key of this.config.ignoredKeys) this.logger.debug(`config key ${key} is not used by the presence engine`);
    this.owned = options.owns ?? (() => true);
    const slice = options.timerSlice ?? TIMEOUT_SLICE;
    if (!(slice >= 1)) throw new InvalidInputError('timerSlice', `must be a number of users ≥ 1 (or Infinity), got ${String(slice)}`);
    this.timeoutSliceMin = slice;
    this.perTick = this.config.turns === 'per_tick';
    const endOfTick = options.endOfTick ?? scheduleImmediate;
    if (typeof endOfTick !== 'function') throw new InvalidInputError('endOfTick', `must be a function that schedules a callback, got ${typeof endOfTick}`);
    this.endOfTick = endOfTick;
    this.restore(options.snapshot);
    this.turnBase = this.streamId;
  }

  // ───────────────────────────── queries ─────────────────────────────

  /** Counters and sizes, for metrics and benchmarks. */
  get stats(): Readonly<EngineStats> {
    this.counters.liveActors = this.actors.size;
    this.counters.dormantRecords = this.storedCount - this.actors.size;
    return this.counters;
  }

  /** The current presence stream token. */
  get currentToken(): StreamToken {
    return this.streamId;
  }

  /** Whether presence is tracked from client and federation inputs. */
  get tracked(): boolean {
    return this.config.enabled === true;
  }

  /** True when `userId` belongs to this server. */
  isMine(userId: string): boolean {
    // `serverNameOf(userId) === serverName` without slicing a string: this runs several times per input
    const server = this.config.serverName;
    const colon = userId.indexOf(':');
    return colon >= 0 && userId.length - colon - 1 === server.length && userId.endsWith(server);
  }

  /** A user's current presence (the default offline state for unknown users). */
  getUserPresence(userId: string): UserPresenceState {
    const id = parseUserId(userId);
    return this.recordOf(id).presence;
  }

  /** A user's full record (presence, devices, in-flight syncs). */
  getUserRecord(userId: string): UserRecord {
    return this.recordOf(parseUserId(userId));
  }

  /**
   * `GET /presence/{userId}/status`: the Matrix presence content of `targetId` as
   * seen by `requesterId`. Allowed for oneself and for users sharing a joined room
   * (router results do not grant visibility, spec §3.7).
   * @throws ForbiddenError when the two share no room.
   */
  getPresence(requesterId: string, targetId: string): PresenceContent {
    const requester = parseUserId(requesterId, 'requesterId');
    const target = parseUserId(targetId, 'targetId');
    if (this.config.enabled === false) return { presence: 'offline' };
    if (requester !== target && !this.shareRoom(requester, target)) {
      throw new ForbiddenError(`${requester} may not see the presence of ${target}: they share no joined room`);
    }
    return formatPresence(this.recordOf(target).presence, this.clock.now(), { busy: this.config.busyWireValue });
  }

  /** Joined members of a room. */
  getRoomMembers(roomId: string): UserId[] {
    const room = this.rooms.get(parseRoomId(roomId));
    return room === undefined ? [] : [...room.members].map((i) => this.userIds[i] as UserId);
  }

  /** Rooms a user is joined to. */
  getRoomsForUser(userId: string): RoomId[] {
    const i = this.userIndex.get(parseUserId(userId));
    return i === undefined ? [] : [...(this.roomsOf[i] ?? EMPTY_ROOMS)].map((r) => r.id);
  }

  /** Do the two users share a joined room that is not excluded from presence? */
  shareRoom(a: UserId, b: UserId): boolean {
    const ia = this.userIndex.get(a);
    const ib = this.userIndex.get(b);
    if (ia === undefined || ib === undefined) return false;
    return this.shareRoomIdx(ia, ib);
  }

  /** Every user with a non-default record (live or dormant). */
  *knownUsers(): IterableIterator<UserPresenceState> {
    for (const p of this.presenceAt) if (p !== undefined) yield p;
  }

  /** The XState snapshot value of a user's live actor (e.g. `{ local: 'online' }`), or undefined when dormant. */
  actorState(userId: string): unknown {
    return this.actors.snapshot(parseUserId(userId))?.value;
  }

  /** Entries appended to the log, per turn. */
  get committed$(): Observable<readonly LogEntry[]> {
    return this.committed.asObservable();
  }

  // ───────────────────────────── client inputs ─────────────────────────────

  /**
   * Set a user's presence explicitly (`PUT /presence/{userId}/status`). A missing
   * `statusMsg` clears the status message (Synapse semantics).
   * @throws InvalidInputError for bad ids, values or types; RateLimitedError over `rc_presence.per_user`.
   */
  setPresence(userId: string, input: SetPresenceInput): void {
    this.ensureRunning();
    const id = this.userIdArg(userId);
    // The common values skip the validation closures (one input = one call here).
    const raw = input?.presence;
    const presence = raw === 'online' || raw === 'unavailable' || raw === 'offline' ? raw : this.validate(() => this.parsePresence(raw));
    const msg = input?.statusMsg;
    const statusMsg = typeof msg === 'string' ? msg : this.validate(() => parseStatusMsg(msg));
    const deviceId = this.deviceArg(input?.deviceId);
    if (!this.isMine(id)) this.reject(new InvalidInputError('userId', `${id} is not a local user of ${this.config.serverName}`));
    if (this.config.enabled !== true) return;
    const wait = this.limiter.take(id, this.clock.now());
    if (wait > 0) this.reject(new RateLimitedError(id, wait));
    this.runStep(id, { type: 'presence.set', now: this.clock.now(), deviceId, presence, statusMsg });
  }

  /**
   * A sync request started (`GET /sync`). Returns a handle; call `end()` when the
   * request finishes. `setPresence: 'offline'` does not affect presence.
   */
  userSyncing(userId: string, input: UserSyncingInput = {}): SyncHandle {
    this.ensureRunning();
    const id = this.userIdArg(userId);
    const deviceId = this.deviceArg(input.deviceId);
    const set = this.validate(() => {
      const r = SetPresenceInSyncSchema.safeParse(input.setPresence ?? 'online');
      if (!r.success) throw new InvalidInputError('setPresence', r.error.issues[0]?.message ?? 'invalid');
      return r.data;
    });
    if (!this.isMine(id)) this.reject(new InvalidInputError('userId', `${id} is not a local user of ${this.config.serverName}`));
    if (this.config.enabled !== true || set === 'offline') return INERT_SYNC;
    if (this.limiter.take(id, this.clock.now()) > 0) return INERT_SYNC; // served, but presence unaffected
    this.runStep(id, { type: 'sync.start', now: this.clock.now(), deviceId, presence: set });
    let ended = false;
    return {
      affectsPresence: true,
      // a closure, not a method: servers pass `handle.end` around as a callback
      end: () => {
        if (ended || this.stopped) return;
        ended = true;
        this.runStep(id, { type: 'sync.end', now: this.clock.now(), deviceId });
      },
    };
  }

  /** The user did something active (sent a message, receipt, typing): `bump_presence_active_time`. */
  bumpActive(userId: string, deviceId?: string): void {
    this.ensureRunning();
    const id = this.userIdArg(userId);
    const device = this.deviceArg(deviceId);
    if (!this.isMine(id)) this.reject(new InvalidInputError('userId', `${id} is not a local user of ${this.config.serverName}`));
    if (this.config.enabled !== true) return;
    this.runStep(id, { type: 'activity', now: this.clock.now(), deviceId: device });
  }

  // ───────────────────────────── rooms ─────────────────────────────

  joinRoom(roomId: string, userId: string): void {
    this.setMembership(roomId, userId, 'join');
  }

  leaveRoom(roomId: string, userId: string): void {
    this.setMembership(roomId, userId, 'leave');
  }

  /** Record a membership change (local or remote user). Only `join` counts as membership for presence. */
  setMembership(roomId: string, userId: string, membership: 'join' | 'leave' | 'ban'): void {
    this.ensureRunning();
    const room = this.validate(() => parseRoomId(roomId));
    const user = this.userIdArg(userId);
    if (membership !== 'join' && membership !== 'leave' && membership !== 'ban') {
      this.reject(new InvalidInputError('membership', 'must be join, leave or ban'));
    }
    this.run(() => {
      const joined = this.isJoined(room, user);
      if ((membership === 'join') === joined) return; // no change
      const at = this.clock.now();
      const event: MembershipEvent =
        membership === 'join'
          ? { type: 'room.membership', roomId: room, userId: user, membership, at, streamId: ++this.streamId }
          : { type: 'room.membership', roomId: room, userId: user, membership, at };
      this.turnEvents[this.turnEventCount++] = event;
      this.applyMembership(event, true);
    });
  }

  // ───────────────────────────── streams ─────────────────────────────

  /**
   * Drive the engine from a stream of inputs. Invalid inputs are reported to
   * `onError` (default: logged) and change nothing. Sync starts and ends are
   * paired by `syncId`.
   */
  ingest(input$: Observable<PresenceInputEvent>, onError?: (error: Error, input: unknown) => void): Subscription {
    const report = onError ?? ((error: Error) => this.logger.warn(`ingest: rejected input: ${error.message}`));
    return input$.subscribe({
      next: (raw) => {
        try {
          this.apply(raw);
        } catch (error) {
          report(error instanceof Error ? error : new Error(String(error)), raw);
        }
      },
      error: (error: unknown) => this.logger.error('ingest: input stream failed', { error: String(error) }),
    });
  }

  /** Apply one input event (the same shapes `ingest` accepts). */
  apply(raw: PresenceInputEvent): void {
    const r = PresenceInputEventSchema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      this.reject(new InvalidInputError(issue?.path.join('.') || 'input', issue?.message ?? 'invalid input'));
    }
    const e = r.data;
    switch (e.type) {
      case 'presence.set':
        return this.setPresence(e.userId, { presence: e.presence, statusMsg: e.statusMsg, deviceId: e.deviceId });
      case 'sync.start': {
        const key = `${e.userId}\u0000${e.syncId}`;
        if (this.syncsByKey.has(key)) this.reject(new InvalidInputError('syncId', `sync ${e.syncId} of ${e.userId} is already open`));
        this.syncsByKey.set(key, this.userSyncing(e.userId, { deviceId: e.deviceId, setPresence: e.setPresence }));
        return;
      }
      case 'sync.end': {
        const key = `${e.userId}\u0000${e.syncId}`;
        const h = this.syncsByKey.get(key);
        if (h === undefined) this.reject(new InvalidInputError('syncId', `no open sync ${e.syncId} for ${e.userId}`));
        this.syncsByKey.delete(key);
        h.end();
        return;
      }
      case 'activity':
        return this.bumpActive(e.userId, e.deviceId);
      case 'room.membership':
        return this.setMembership(e.roomId, e.userId, e.membership);
      case 'federation.edu':
        this.receiveFederationEdu(e.origin, e.content);
        return;
    }
  }

  /**
   * Run several inputs as one turn: one log append, one fan-out per changed user
   * and at most one emission per listening user, holding every change the batch
   * made (latest state per user). Input errors still throw from the call that
   * caused them; inputs applied before it stay applied. Calls from inside a turn
   * (e.g. a subscriber) run as part of the current batch or turn queue; with
   * `presence.turns: per_tick`, a batch made while the tick's turn is open
   * joins it and commits with it at the end of the tick.
   */
  batch<T>(fn: () => T): T {
    this.ensureRunning();
    if (this.processing) return fn();
    this.processing = true;
    this.batching = true;
    try {
      return fn();
    } finally {
      this.batching = false;
      try {
        this.commit();
        this.drainMailbox();
      } finally {
        this.processing = false;
      }
    }
  }

  /** Apply many input events in one turn (see {@link batch}); invalid ones go to `onError` (default: thrown). */
  applyAll(inputs: readonly PresenceInputEvent[], onError?: (error: Error, input: unknown) => void): void {
    this.batch(() => {
      for (const input of inputs) {
        if (onError === undefined) this.apply(input);
        else
          try {
            this.apply(input);
          } catch (error) {
            onError(error instanceof Error ? error : new Error(String(error)), input);
          }
      }
    });
  }

  /**
   * The push side of sync for one user: each emission is a batch with at most
   * one state per changed user (the latest at emission time) and the token it
   * brings the subscriber up to. Only listening users get pushed work.
   */
  syncStream(userId: string): Observable<PresenceBatch> {
    const id = parseUserId(userId);
    return syncStreamObservable(
      (s) => this.openStream(id, s),
      (s) => this.closeStream(id, s),
    );
  }

  // ───────────────────────────── pull API ─────────────────────────────

  /**
   * Presence for a sync (spec §3.4): no token → everyone the user is interested
   * in (offline excluded unless configured); a token → the latest state of each
   * interested user changed since it, offline transitions included, plus members
   * of newly shared rooms; the current token → nothing.
   */
  async getNewEvents(userId: string, since?: StreamToken | null, options: GetNewEventsOptions = {}): Promise<NewEvents> {
    const id = parseUserId(userId);
    if (since !== undefined && since !== null && (!Number.isSafeInteger(since) || since < 0)) {
      throw new InvalidInputError('since', 'a stream token is a non-negative integer returned by this engine');
    }
    const nextToken = this.streamId;
    if (this.config.enabled === false) return { events: [], nextToken, full: false };
    let from = since ?? null;
    let includeOffline = options.includeOffline ?? this.config.includeOfflineUsersOnSync;
    const requested = this.fullRequests.get(id);
    if (from !== null && requested !== undefined && from <= requested) {
      from = null;
      includeOffline = false;
    }
    if (from !== null && from === nextToken) return { events: [], nextToken, full: false };
    if (from !== null && (from > nextToken || !this.changes.covers(from))) {
      from = null; // too old (or from another engine): answer in full, offline transitions included
      includeOffline = true;
    }
    const interest = await this.router.interestedUsers(id);
    this.cacheInterest(id, interest);
    if (interest === ALL_USERS) {
      const candidates: UserPresenceState[] = [];
      if (from !== null) {
        // Presence changes only: joins make users newly visible through rooms, which ALL_USERS readers bypass.
        for (const i of this.presenceChangedSince(from)) candidates.push(this.stateAt(i));
      } else {
        for (const s of this.knownUsers()) if (includeOffline || s.state !== 'offline') candidates.push(s);
      }
      const routed = await this.router.usersForStates(candidates);
      return { events: [...(routed.get(id) ?? [])], nextToken, full: from === null };
    }
    const self = this.indexOf(id);
    const out: UserPresenceState[] = [];
    if (from === null) {
      const seen = new Set<number>([self]);
      for (const room of this.roomsOf[self] ?? EMPTY_ROOMS) {
        if (room.excluded) continue;
        for (const m of room.members) seen.add(m);
      }
      for (const u of interest) seen.add(this.indexOf(u));
      for (const i of seen) {
        const s = this.stateAt(i);
        if (includeOffline || s.state !== 'offline') out.push(s);
      }
      return { events: out, nextToken, full: true };
    }
    return { events: this.changedAndVisible(self, from, interest), nextToken, full: false };
  }

  // ───────────────────────────── module API ─────────────────────────────

  /** Register presence router callbacks for a module (the module API's `registerPresenceRouterCallbacks`). */
  registerPresenceRouter(moduleName: string, callbacks: PresenceRouterCallbacks): void {
    this.router.register(moduleName, callbacks);
    for (const n of this.notifiers) if (n !== undefined) this.refreshInterest(n);
  }

  /**
   * Spec §4.9 `set_presence_for_users`: set state and status message for local or
   * remote users, always notified. The way to drive presence in `untracked` mode.
   */
  setPresenceForUsers(users: Readonly<Record<string, { presence: string; statusMsg?: string | null | undefined }>>): void {
    this.ensureRunning();
    if (this.config.enabled === false) return;
    const parsed = Object.entries(users).map(([u, v]) => {
      const id = this.validate(() => parseUserId(u));
      return [id, this.validate(() => this.parsePresence(v?.presence)), this.validate(() => parseStatusMsg(v?.statusMsg))] as const;
    });
    this.run(() => {
      const now = this.clock.now();
      for (const [id, presence, statusMsg] of parsed) this.step(id, { type: 'module.set', now, presence, statusMsg });
    });
  }

  /**
   * Module API `send_local_online_presence_to` (spec §4.6, decisions.md): local
   * targets get, on their next read, the current presence of every non-offline
   * user they are interested in (once); remote targets' servers are sent the
   * non-offline local users their users can see, one send per server. Nobody's
   * presence changes.
   */
  sendLocalOnlinePresenceTo(userIds: readonly string[]): void {
    this.ensureRunning();
    const ids = userIds.map((u) => this.validate(() => parseUserId(u)));
    if (this.config.enabled === false) return;
    const local = ids.filter((u) => this.isMine(u));
    const remote = ids.filter((u) => !this.isMine(u));
    this.run(() => {
      if (local.length > 0) {
        const event = { type: 'presence.full_requested' as const, userIds: local, streamId: ++this.streamId, at: this.clock.now() };
        this.turnEvents[this.turnEventCount++] = event;
        for (const u of local) this.fullRequests.set(u, event.streamId - 1);
        this.turnFull.push(...local);
      }
      const byServer = new Map<ServerName, Set<number>>();
      for (const u of this.config.enabled === true ? remote : []) {
        // outbound federation is gated on tracking (spec §4.9)
        const server = serverNameOf(u);
        let set = byServer.get(server);
        if (set === undefined) byServer.set(server, (set = new Set()));
        const i = this.userIndex.get(u);
        if (i === undefined) continue;
        for (const room of this.roomsOf[i] ?? EMPTY_ROOMS) {
          if (room.excluded) continue;
          for (const m of room.members) set.add(m);
        }
      }
      for (const [server, members] of byServer) {
        const states: UserPresenceState[] = [];
        for (const m of members) {
          const id = this.userIds[m] as UserId;
          if (!this.isMine(id)) continue;
          const s = this.stateAt(m);
          if (s.state !== 'offline') states.push(s);
        }
        this.federation.enqueue([server], states);
      }
    });
  }

  // ───────────────────────────── federation ─────────────────────────────

  /**
   * An inbound `m.presence` EDU from `origin`. Items are validated one by one;
   * invalid items and items for users of another server are dropped and counted.
   * @returns how many items were applied and dropped.
   */
  receiveFederationEdu(origin: string, content: unknown): { applied: number; dropped: number } {
    this.ensureRunning();
    if (this.config.enabled !== true) return { applied: 0, dropped: 0 };
    const { accepted, dropped } = parsePresenceEdu(origin, content);
    // Another server cannot speak for our users (an origin naming this server is spoofed).
    accepted.forEach((a, index) => {
      if (this.isMine(a.userId)) dropped.push({ index, reason: `user ${a.userId} is local to ${this.config.serverName}` });
    });
    if (dropped.length > 0) {
      this.counters.droppedInboundItems += dropped.length;
      this.logger.warn(`dropped ${dropped.length} invalid presence item(s) from ${origin}`, { reasons: dropped.slice(0, 5) });
    }
    const lastPerUser = new Map(accepted.filter((a) => !this.isMine(a.userId)).map((a) => [a.userId, a.update]));
    if (lastPerUser.size > 0) {
      this.run(() => {
        const now = this.clock.now();
        for (const [userId, update] of lastPerUser) this.step(userId, { type: 'remote.update', now, update });
      });
    }
    return { applied: lastPerUser.size, dropped: dropped.length };
  }

  /** Number of presence states pending for a destination server. */
  federationPending(destination: string): number {
    return this.federation.pendingFor(destination as ServerName);
  }

  /**
   * Send outbound federation through `transport` (docs/federation.md): one send in
   * flight per destination, pending states coalesce meanwhile, failures retry with
   * exponential back-off on the engine clock, and after `dropAfterMs` (1 h) of
   * failures a destination's pending presence is dropped and counted. Transmissions
   * are still emitted on `federationOutbound$`. Replaces any attached transport.
   * @throws InvalidInputError for invalid options.
   */
  attachFederationTransport(transport: FederationTransport, options: FederationTransportOptions = {}): FederationLink {
    this.ensureRunning();
    return this.federation.attach(transport, options);
  }

  /** Outbound federation counters and queue sizes. */
  get federationStats(): Readonly<FederationOutboundStats> {
    return this.federation.stats;
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /** Serialisable state at the current log position. */
  snapshot(): EngineSnapshot {
    this.closeTick(); // per-tick turns: the snapshot's position must cover every input it holds
    const users: [UserId, UserRecord, number][] = [];
    for (let i = 0; i < this.userIds.length; i++) {
      const id = this.userIds[i] as UserId;
      const p = this.presenceAt[i];
      const sid = this.lastStreamId[i] ?? 0;
      if (p !== undefined) users.push([id, this.actors.record(id) ?? dormantRecord(p), sid]);
      else if (sid > 0) users.push([id, defaultRecord(id), sid]);
    }
    const rooms: [RoomId, UserId[]][] = [];
    for (const room of this.roomList) if (room.members.size > 0) rooms.push([room.id, [...room.members].map((m) => this.userIds[m] as UserId)]);
    return {
      version: 1,
      position: this.log.position,
      streamId: this.streamId,
      users,
      rooms,
      fullRequests: [...this.fullRequests],
    };
  }

  /**
   * End in-flight syncs restored from a log (their requests died with the old
   * process): each restored sync is ended now, so its device times out normally.
   */
  endRestoredSyncs(): void {
    const open: [UserId, DeviceId, number][] = [];
    for (const [id, record] of this.actors.records()) {
      for (const [d, n] of Object.entries(record.syncs)) open.push([id, d as DeviceId, n]);
    }
    if (open.length === 0) return;
    this.run(() => {
      const now = this.clock.now();
      for (const [id, d, n] of open) for (let k = 0; k < n; k++) this.step(id, { type: 'sync.end', now, deviceId: d });
    });
  }

  // ───────────────────────────── distributed mode ─────────────────────────────

  /**
   * Distributed mode (docs/distributed.md): apply events logged by the process
   * that owns their users, in their log order, as one turn. A notified step or a
   * join gets a stream id of *this* engine (stream tokens are process-local);
   * local listeners are woken as for a local change. Nothing is appended to this
   * engine's log, no timer is armed and nothing is federated (the owner does it).
   */
  applyReplicated(events: readonly PresenceEvent[]): void {
    this.ensureRunning();
    if (events.length === 0) return;
    this.run(() => {
      for (const e of events) this.applyForeign(e);
    });
  }

  /**
   * Distributed mode: this process now owns `userIds` (it took over their
   * partition after replaying it). Arms their timers from their records and ends
   * the in-flight syncs the previous owner recorded (those requests died with it),
   * so their devices time out normally.
   */
  adopt(userIds: Iterable<UserId>): void {
    this.ensureRunning();
    const open: [UserId, DeviceId, number][] = [];
    for (const id of userIds) {
      const record = this.recordOf(id);
      if (this.config.enabled === true) this.wheel.schedule(this.indexOf(id), nextDeadline(record, this.isMine(id), this.rules));
      for (const [d, n] of Object.entries(record.syncs)) open.push([id, d as DeviceId, n]);
    }
    if (open.length === 0) return;
    this.run(() => {
      const now = this.clock.now();
      for (const [id, d, n] of open) for (let k = 0; k < n; k++) this.step(id, { type: 'sync.end', now, deviceId: d });
    });
  }

  /**
   * Distributed mode: re-arm the timers of `userIds` from their records (no other
   * effect). For an owner whose ownership check was briefly false (timers that
   * fell due then were skipped) and is true again.
   */
  rearmTimers(userIds: Iterable<UserId>): void {
    if (this.config.enabled !== true || this.stopped) return;
    for (const id of userIds) this.wheel.schedule(this.indexOf(id), nextDeadline(this.recordOf(id), this.isMine(id), this.rules));
  }

  private applyForeign(e: PresenceEvent): void {
    switch (e.type) {
      case 'user.step': {
        const id = e.userId;
        const idx = this.indexOf(id);
        const after = evolveUser(this.recordOf(id), e);
        if (isDormant(after)) this.makeDormant(id, idx, after);
        else {
          this.storePresence(idx, after.presence);
          this.actors.spawn(id, this.isMine(id), after);
        }
        if (e.streamId !== undefined) this.recordNotified(idx);
        return;
      }
      case 'room.membership': {
        if ((e.membership === 'join') === this.isJoined(e.roomId, e.userId)) return;
        const { roomId, userId, membership, at } = e;
        this.applyMembership(
          membership === 'join' ? { type: 'room.membership', roomId, userId, membership, at, streamId: ++this.streamId } : { type: 'room.membership', roomId, userId, membership, at },
          true,
        );
        return;
      }
      case 'presence.full_requested': {
        const streamId = ++this.streamId;
        for (const u of e.userIds) this.fullRequests.set(u, streamId - 1);
        this.turnFull.push(...e.userIds);
        return;
      }
    }
  }

  /**
   * Stop the engine, run the hooks registered with {@link onClose} (e.g. a
   * final snapshot), then make the log durable and close it (`log.flush`,
   * `log.close`). Use this on shutdown; `stop()` alone leaves the log open.
   */
  async close(): Promise<void> {
    this.stop();
    for (const hook of this.closeHooks.splice(0)) await hook();
    await this.log.flush?.();
    await this.log.close?.();
  }

  /** Run `hook` when {@link close} is called (e.g. a final snapshot, closing a replicator). */
  onClose(hook: () => void | Promise<void>): void {
    this.closeHooks.push(hook);
  }

  /** Stop timers and complete every stream. The engine refuses further inputs. */
  stop(): void {
    if (this.stopped) return;
    this.closeTick(); // per-tick turns: commit the inputs this tick brought
    this.stopped = true;
    this.wheel.stop();
    this.drainHandle?.cancel();
    this.drainHandle = null;
    for (const n of this.notifiers) if (n !== undefined) for (const s of n.subscriberList()) s.complete();
    this.federation.stop();
    this.committed.complete();
  }

  // ───────────────────────────── internals: turns ─────────────────────────────

  private run(job: Job): void {
    if (this.batching) {
      this.runJob(job);
      return;
    }
    if (this.processing) {
      this.mailbox.push(job);
      return;
    }
    if (this.perTick) {
      this.openTick();
      this.runJob(job);
      this.scheduleTickEnd();
      return;
    }
    this.processing = true;
    try {
      this.runTurn(job);
      this.drainMailbox();
    } finally {
      this.processing = false;
    }
  }

  /**
   * `run(() => this.step(userId, event))` without allocating the closure on the
   * usual paths (in a batch, or as a turn of its own): one per input otherwise.
   * A step that has to wait in the mailbox (an input from inside a turn) reads
   * the clock when it runs, as a queued job does.
   */
  private runStep(userId: UserId, event: PresenceMachineEvent): void {
    if (this.batching) {
      this.stepSafely(userId, event);
      return;
    }
    if (this.processing) {
      this.mailbox.push(() => this.step(userId, { ...event, now: this.clock.now() }));
      return;
    }
    if (this.perTick) {
      this.openTick();
      this.stepSafely(userId, event);
      this.scheduleTickEnd();
      return;
    }
    this.processing = true;
    try {
      this.stepSafely(userId, event);
      this.commit();
      this.drainMailbox();
    } finally {
      this.processing = false;
    }
  }

  /** {@link step} as a job: a failure is logged, not thrown (see {@link runJob}). */
  private stepSafely(userId: UserId, event: PresenceMachineEvent): void {
    try {
      this.step(userId, event);
    } catch (error) {
      this.turnFailed(error);
    }
  }

  /**
   * `presence.turns: per_tick`: start a turn that stays open (inputs join it
   * as in {@link batch}) until the end of the event-loop tick.
   */
  private openTick(): void {
    this.processing = true;
    this.batching = true;
    this.tickOpen = true;
  }

  /**
   * Have `endOfTick` close the turn just opened (after its first input ran,
   * so an `endOfTick` that calls back at once commits that input, as a turn
   * per input would). If `endOfTick` throws, the turn is committed now and
   * the error logged: the input was accepted, and the engine must not stay
   * inside a turn nobody will close.
   */
  private scheduleTickEnd(): void {
    try {
      this.endOfTick(this.closeTick);
    } catch (error) {
      this.logger.error('presence engine: endOfTick threw; committing the turn at once', { error: error instanceof Error ? error.message : String(error) });
      this.closeTick();
    }
  }

  /**
   * Commit the open per-tick turn (scheduled by {@link openTick}; also run
   * by `snapshot` and `stop`, so neither sees inputs the log does not hold).
   * A failure is logged, not thrown: this runs from the event loop.
   */
  private readonly closeTick = (): void => {
    if (!this.tickOpen) return;
    this.tickOpen = false;
    this.batching = false;
    try {
      this.commit();
      this.drainMailbox();
    } catch (error) {
      this.turnFailed(error);
    } finally {
      this.processing = false;
    }
  };

  /** Run the turns that were queued while one was running. */
  private drainMailbox(): void {
    while (this.mailbox.length > 0) this.runTurn(this.mailbox.shift() as Job);
  }

  private runTurn(job: Job): void {
    this.runJob(job);
    this.commit();
  }

  private runJob(job: Job): void {
    try {
      job();
    } catch (error) {
      this.turnFailed(error);
    }
  }

  /** Inputs are validated before they reach a turn: anything thrown in one is a bug. Log it; keep the engine alive. */
  private turnFailed(error: unknown): void {
    this.logger.error('presence engine: a turn failed', { error: error instanceof Error ? error.stack : String(error) });
  }

  /** Drive one user's actor with one event and record the consequences in the turn. */
  private step(userId: UserId, event: PresenceMachineEvent): void {
    const idx = this.indexOf(userId);
    // a re-examination still queued from a tick comes first (see `onTimers`)
    if (idx < this.timeoutAt.length && this.timeoutAt[idx] !== 0 && event.type !== 'timeout') this.runQueuedTimeout(idx);
    const mine = this.isMineAt(idx);
    const { before, after, outcome } = this.actors.send(userId, mine, this.restoreRecord, event);
    let streamId: number | undefined;
    if (outcome.notify) {
      streamId = this.recordNotified(idx);
    } else if (outcome.ping && mine) {
      this.turnPings.push(after.presence);
    }
    const ev = before === after && streamId === undefined ? null : diffRecords(userId, before, after, event.now, streamId);
    if (ev !== null) this.turnEvents[this.turnEventCount++] = ev;
    if (this.config.enabled === true) this.wheel.schedule(idx, nextDeadline(after, mine, this.rules));
    if (isDormant(after)) this.makeDormant(userId, idx, after);
    else if (after !== before) this.storePresence(idx, after.presence);
  }

  /** A notified change of user `idx` in this turn: next stream id, change index, fan-out list. */
  private recordNotified(idx: number): number {
    if ((this.lastStreamId[idx] as number) <= this.turnBase) this.turnChanged[this.turnChangedCount++] = idx;
    const streamId = ++this.streamId;
    this.lastStreamId[idx] = streamId;
    this.changes.add(streamId, idx);
    this.counters.updates++;
    return streamId;
  }

  /** Drop a dormant user's actor; keep their presence unless it is the default. */
  private makeDormant(userId: UserId, idx: number, record: UserRecord): void {
    this.actors.release(userId);
    this.storePresence(idx, isDefaultRecord(record) ? undefined : record.presence);
  }

  private storePresence(idx: number, presence: UserPresenceState | undefined): void {
    const had = this.presenceAt[idx] !== undefined;
    this.presenceAt[idx] = presence;
    if (had !== (presence !== undefined)) this.storedCount += had ? -1 : 1;
  }

  /**
   * A wheel tick: queue the due users and re-examine them in slices, one turn
   * per slice, the next slice 1 ms later (the shortest timer Node has), so
   * inputs arriving meanwhile are not held behind a whole tick. A slice takes
   * at least `timerSlice` users (default {@link TIMEOUT_SLICE}) and a tick is done in at most
   * {@link TIMEOUT_SLICES_PER_TICK} slices, however large. Each re-examination
   * uses the tick's time, as if run at the tick; a user with a queued
   * re-examination who sends an input first has it run just before the input,
   * so each user's own steps keep their order.
   */
  private onTimers(due: number[], now: number): void {
    if (this.stopped) return;
    if (this.timeoutAt.length < this.userIds.length) {
      const grown = new Float64Array(Math.max(this.userIds.length, this.timeoutAt.length * 2));
      grown.set(this.timeoutAt);
      this.timeoutAt = grown;
    }
    for (const idx of due) {
      if (this.timeoutAt[idx] !== 0) continue; // still queued from an earlier tick
      this.timeoutAt[idx] = now;
      this.timeoutQueue.push(idx);
    }
    const left = this.timeoutQueue.length - this.timeoutHead;
    this.timeoutSliceSize = Math.max(this.timeoutSliceMin, Math.ceil(left / TIMEOUT_SLICES_PER_TICK));
    this.run(() => this.timeoutSlice());
  }

  /** Run the next slice of queued re-examinations; schedule the one after. */
  private timeoutSlice(): void {
    const queue = this.timeoutQueue;
    const left = queue.length - this.timeoutHead;
    if (left <= 0) return;
    const end = this.timeoutHead + Math.min(left, this.timeoutSliceSize);
    while (this.timeoutHead < end) this.runQueuedTimeout(queue[this.timeoutHead++] as number);
    if (this.timeoutHead >= queue.length) {
      this.timeoutQueue = [];
      this.timeoutHead = 0;
    } else if (this.drainHandle === null) {
      this.drainHandle = this.clock.setTimer(1, () => {
        this.drainHandle = null;
        if (!this.stopped) this.run(() => this.timeoutSlice());
      });
    }
  }

  /** The queued re-examination of user `idx`, unless it already ran (ahead of an input). */
  private runQueuedTimeout(idx: number): void {
    const at = this.timeoutAt[idx] as number;
    if (at === 0) return;
    this.timeoutAt[idx] = 0;
    const id = this.userIds[idx] as UserId;
    if ((this.actors.has(id) || this.storedPresence(id) !== undefined) && this.owned(id)) this.step(id, { type: 'timeout', now: at });
  }

  /** End of a turn: append to the log, fan out, flush streams and federation. */
  private commit(): void {
    const eventCount = this.turnEventCount;
    if (eventCount > 0) {
      // The log gets a list of its own, sized exactly; the scratch lets go of the events.
      const scratch = this.turnEvents;
      const events = new Array<PresenceEvent>(eventCount);
      for (let k = 0; k < eventCount; k++) {
        events[k] = scratch[k] as PresenceEvent;
        scratch[k] = undefined;
      }
      this.turnEventCount = 0;
      if (scratch.length > TURN_LIST_KEEP) scratch.length = 0; // after a huge turn (applyAll, a restart), do not hold its size
      const entries = this.log.append(events);
      if (this.committed.observed) this.committed.next(entries);
    }
    // Each list is handed on and replaced only when it holds something (most
    // turns have no joins, pings or full-presence requests: no garbage for them).
    const changedCount = this.turnChangedCount;
    const changed = this.turnChanged;
    if (changedCount > 0) {
      this.turnChanged = this.turnChangedSpare;
      this.turnChangedSpare = changed;
      this.turnChangedCount = 0;
    }
    const joins = this.turnJoins;
    const pings = this.turnPings;
    const full = this.turnFull;
    if (joins.length > 0) this.turnJoins = [];
    if (pings.length > 0) this.turnPings = [];
    if (full.length > 0) this.turnFull = [];
    this.turnBase = this.streamId;
    if (changedCount > 0) {
      this.fanOut(changed, changedCount);
      if (changed.length > TURN_LIST_KEEP) changed.length = 0; // now the spare
    }
    for (const [user, room] of joins) this.fanOutJoin(user, room);
    if (pings.length > 0) this.federatePings(pings);
    for (const u of full) this.pushFull(u);
    this.flush();
  }

  /** Fan out the first `count` users of `changed` (this turn's notified changes). */
  private fanOut(changed: readonly number[], count: number): void {
    const notifiers = this.notifiers;
    // Local changes and their servers: the router needs every local change;
    // without one, only changes with somewhere to go are kept (no garbage
    // for a turn that federates nothing).
    const routing = this.router.active;
    let localStates: UserPresenceState[] | null = routing ? [] : null;
    let destinations: Map<UserPresenceState, Set<ServerName>> | null = routing ? new Map() : null;
    for (let c = 0; c < count; c++) {
      const u = changed[c] as number;
      const uid = this.userIds[u] as UserId;
      const own = notifiers[u];
      if (own !== undefined && own.interest !== ALL_USERS) this.offer(own, u);
      const mine = this.isMineAt(u) && this.owned(uid); // only a user's owner federates their changes
      const state = mine ? this.stateAt(u) : undefined;
      let dests: Set<ServerName> | undefined;
      for (const room of this.roomsOf[u] ?? EMPTY_ROOMS) {
        if (room.excluded) continue;
        if (room.listening.size > 0) {
          const segment = (room.segment ??= new RoomSegment());
          if (segment.size === 0) this.dirtyRooms[this.dirtyRoomCount++] = room;
          segment.add(u);
        }
        if (state !== undefined && room.remote.size > 0) {
          dests ??= new Set();
          for (const server of room.remote.keys()) dests.add(server);
        }
      }
      const interested = this.interestIndex.get(uid);
      if (interested !== undefined) for (const n of interested) this.offer(n, u);
      if (state !== undefined && (routing || dests !== undefined)) {
        (localStates ??= []).push(state);
        if (dests !== undefined) (destinations ??= new Map()).set(state, dests);
      }
    }
    // One push per (room, listener): the listener reads the room's changes from its shared segment.
    for (let r = 0; r < this.dirtyRoomCount; r++) {
      const room = this.dirtyRooms[r] as Room;
      const segment = room.segment as RoomSegment;
      const listeners = this.listenersOf(room);
      for (let k = 0; k < listeners.length; k++) {
        const n = listeners[k] as SyncNotifier;
        if (n.interest === ALL_USERS) continue;
        this.markDirty(n);
        n.addSegment(segment);
      }
    }
    if (routing) {
      const states = new Array<UserPresenceState>(count);
      for (let c = 0; c < count; c++) states[c] = this.stateAt(changed[c] as number);
      const routed = this.router.usersForStates(states);
      const local = localStates ?? [];
      const dests = destinations ?? new Map<UserPresenceState, Set<ServerName>>();
      if (routed instanceof Promise) {
        void routed.then((r) => this.run(() => this.deliverRouted(r, local, dests, true)));
        return;
      }
      this.deliverRouted(routed, local, dests, false);
      return;
    }
    if (localStates !== null && destinations !== null) this.federateLocal(localStates, destinations);
  }

  /** Router results: deliver to ALL_USERS listeners and add remote recipients' servers as destinations. */
  private deliverRouted(
    routed: RoutedStates,
    localStates: readonly UserPresenceState[],
    destinations: Map<UserPresenceState, Set<ServerName>>,
    late: boolean,
  ): void {
    const local = new Set(localStates);
    for (const [recipient, states] of routed) {
      if (this.isMine(recipient)) {
        const i = this.userIndex.get(recipient);
        const n = i === undefined ? undefined : this.notifiers[i];
        if (n !== undefined && n.interest === ALL_USERS) for (const s of states) this.offer(n, this.indexOf(s.userId));
      } else {
        const server = serverNameOf(recipient);
        for (const s of states) {
          if (!local.has(s)) continue; // remote users' presence is never forwarded to third servers
          let d = destinations.get(s);
          if (d === undefined) destinations.set(s, (d = new Set()));
          d.add(server);
        }
      }
    }
    this.federateLocal(localStates, destinations);
    if (late) this.flush();
  }

  private federateLocal(states: readonly UserPresenceState[], destinations: Map<UserPresenceState, Set<ServerName>>): void {
    if (this.config.enabled !== true) return;
    for (const s of states) {
      const d = destinations.get(s);
      if (d !== undefined) this.federation.enqueue(d, [this.stateAt(this.indexOf(s.userId))]);
    }
  }

  /** Keep-alive: re-send to every server sharing a room with the user (no client notification). */
  private federatePings(states: readonly UserPresenceState[]): void {
    if (this.config.enabled !== true) return;
    const destinations = new Map<UserPresenceState, Set<ServerName>>();
    for (const s of states) {
      const i = this.userIndex.get(s.userId);
      if (i === undefined) continue;
      const dests = new Set<ServerName>();
      for (const room of this.roomsOf[i] ?? EMPTY_ROOMS) if (!room.excluded) for (const server of room.remote.keys()) dests.add(server);
      destinations.set(s, dests);
    }
    if (!this.router.active) return this.federateLocal(states, destinations);
    // Spec §2.1 step 6: pings go to all interested remotes (§3.8.1), router recipients' servers included.
    const addRouted = (routed: RoutedStates) => {
      for (const [recipient, routedStates] of routed) {
        if (this.isMine(recipient)) continue;
        for (const s of routedStates) destinations.get(s)?.add(serverNameOf(recipient));
      }
      this.federateLocal(states, destinations);
    };
    const routed = this.router.usersForStates(states);
    if (routed instanceof Promise) void routed.then((r) => this.run(() => addRouted(r)));
    else addRouted(routed);
  }

  private fanOutJoin(user: number, room: Room): void {
    if (room.excluded || !room.members.has(user)) return;
    for (const n of this.listenersOf(room)) if (n.index !== user && n.interest !== ALL_USERS) this.offer(n, user);
    const own = this.notifiers[user];
    if (own !== undefined && own.interest !== ALL_USERS) for (const m of room.members) this.offer(own, m);
    this.federateJoin(user, room);
  }

  /** Spec §3.8.4: presence on joins, for servers that gain their first member and for local joiners. */
  private federateJoin(user: number, room: Room): void {
    if (this.config.enabled !== true) return;
    const uid = this.userIds[user] as UserId;
    if (!this.owned(uid)) return; // the owner of the joiner recorded the join and federates it
    const now = this.clock.now();
    if (this.isMineAt(user)) {
      if (room.remote.size > 0) this.federation.enqueue(room.remote.keys(), [this.stateAt(user)]);
      return;
    }
    const server = serverNameOf(uid);
    if (room.remote.get(server) !== 1) return; // the server already had a member
    const states: UserPresenceState[] = [];
    for (const m of room.members) {
      if (!this.isMineAt(m)) continue;
      const s = this.stateAt(m);
      // "Offline for over 7 days": since the later of last activity and the last send (a notified change such as going offline sets it).
      const stale = s.state === 'offline' && now - Math.max(s.lastActiveTs, s.lastFederationUpdateTs) >= 7 * 86_400_000 && s.statusMsg === null;
      if (!stale) states.push(s);
    }
    this.federation.enqueue([server], states);
  }

  /** A full-presence request for a listening user: push everything they would read in full. */
  private pushFull(userId: UserId): void {
    const i = this.userIndex.get(userId);
    const n = i === undefined ? undefined : this.notifiers[i];
    if (n === undefined) return;
    void this.getNewEvents(userId, null, { includeOffline: false }).then((r) => {
      if (r.events.length === 0) return;
      this.run(() => {
        for (const s of r.events) this.offer(n, this.indexOf(s.userId));
      });
    });
  }

  /** The room's listening members' notifiers (cached until `listening` changes). */
  private listenersOf(room: Room): readonly SyncNotifier[] {
    let list = room.listeners;
    if (list === null) {
      list = [];
      for (const m of room.listening) {
        const n = this.notifiers[m];
        if (n !== undefined) list.push(n);
      }
      room.listeners = list;
    }
    return list;
  }

  private offer(n: SyncNotifier, changed: number): void {
    this.markDirty(n);
    n.offer(changed);
  }

  /** The notifier has something to emit at this turn's flush. */
  private markDirty(n: SyncNotifier): void {
    if (!n.dirty) {
      n.dirty = true;
      this.dirty[this.dirtyCount++] = n;
    }
  }

  private flush(): void {
    if (this.dirtyCount > 0) {
      // Swap lists first: a notifier marked while this one is emitted (none is
      // today: inputs from subscribers wait in the mailbox) lands in the other.
      const dirty = this.dirty;
      const count = this.dirtyCount;
      this.dirty = this.dirtySpare;
      this.dirtySpare = dirty;
      this.dirtyCount = 0;
      const token = this.streamId;
      const users = this.userIds.length;
      const stateOf = this.stateOf;
      for (let k = 0; k < count; k++) {
        const n = dirty[k] as SyncNotifier;
        dirty[k] = undefined; // a closed stream's notifier must not linger here
        n.dirty = false;
        this.counters.deliveries += n.flush(stateOf, token, users);
      }
    }
    if (this.dirtyRoomCount > 0) {
      for (let r = 0; r < this.dirtyRoomCount; r++) {
        (this.dirtyRooms[r] as Room).segment?.clear();
        this.dirtyRooms[r] = undefined;
      }
      this.dirtyRoomCount = 0;
    }
    this.federation.flush(this.clock.now());
  }

  // ───────────────────────────── internals: streams ─────────────────────────────

  private openStream(userId: UserId, s: Subscriber<PresenceBatch>): void {
    const i = this.indexOf(userId);
    let n = this.notifiers[i];
    if (n === undefined) {
      n = new SyncNotifier(userId, i);
      this.notifiers[i] = n;
      for (const room of this.roomsOf[i] ?? EMPTY_ROOMS) addListening(room, i);
      this.counters.openSyncStreams++;
      this.refreshInterest(n);
    }
    n.addSubscriber(s);
  }

  private closeStream(userId: UserId, s: Subscriber<PresenceBatch>): void {
    const i = this.userIndex.get(userId);
    const n = i === undefined ? undefined : this.notifiers[i];
    if (n === undefined || i === undefined) return;
    n.removeSubscriber(s);
    if (n.subscriberCount === 0) {
      this.setInterest(n, EMPTY_INTEREST);
      this.notifiers[i] = undefined;
      for (const room of this.roomsOf[i] ?? EMPTY_ROOMS) deleteListening(room, i);
      this.counters.openSyncStreams--;
    }
  }

  private refreshInterest(n: SyncNotifier): void {
    if (!this.router.active) return;
    const r = this.router.interestedUsers(n.userId);
    if (r instanceof Promise) void r.then((v) => this.cacheInterest(n.userId, v));
    else this.setInterest(n, r);
  }

  private cacheInterest(userId: UserId, interest: Interest): void {
    const i = this.userIndex.get(userId);
    const n = i === undefined ? undefined : this.notifiers[i];
    if (n !== undefined) this.setInterest(n, interest);
  }

  private setInterest(n: SyncNotifier, interest: Interest): void {
    if (n.interest === ALL_USERS) this.allUsersListeners.delete(n);
    else for (const u of n.interest) this.interestIndex.get(u)?.delete(n);
    n.interest = interest;
    if (interest === ALL_USERS) this.allUsersListeners.add(n);
    else
      for (const u of interest) {
        let set = this.interestIndex.get(u);
        if (set === undefined) this.interestIndex.set(u, (set = new Set()));
        set.add(n);
      }
  }

  // ───────────────────────────── internals: state ─────────────────────────────

  private indexOf(userId: UserId): number {
    let i = this.userIndex.get(userId);
    if (i === undefined) {
      i = this.userIds.length;
      if (i === this.mineAt.length) {
        const grown = new Uint8Array(i * 2);
        grown.set(this.mineAt);
        this.mineAt = grown;
      }
      this.mineAt[i] = this.isMine(userId) ? 1 : 0;
      this.userIds.push(userId);
      this.userIndex.set(userId, i);
      this.lastStreamId.push(0);
      this.presenceAt.push(undefined);
      this.roomsOf.push(undefined);
      this.notifiers.push(undefined);
    }
    return i;
  }

  /** `isMine` of the user at index `i` (an array read). */
  private isMineAt(i: number): boolean {
    return this.mineAt[i] === 1;
  }

  /** A known user's non-default presence (live or dormant), else undefined. */
  private storedPresence(userId: UserId): UserPresenceState | undefined {
    const i = this.userIndex.get(userId);
    return i === undefined ? undefined : this.presenceAt[i];
  }

  private recordOf(userId: UserId): UserRecord {
    const live = this.actors.record(userId);
    if (live !== undefined) return live;
    const p = this.storedPresence(userId);
    return p === undefined ? defaultRecord(userId) : dormantRecord(p);
  }

  private readonly stateOf = (i: number): UserPresenceState => this.stateAt(i);

  private stateAt(i: number): UserPresenceState {
    return this.presenceAt[i] ?? defaultPresence(this.userIds[i] as UserId);
  }

  private isJoined(room: RoomId, user: UserId): boolean {
    const r = this.rooms.get(room);
    const i = this.userIndex.get(user);
    return r !== undefined && i !== undefined && r.members.has(i);
  }

  private shareRoomIdx(a: number, b: number): boolean {
    if (a === b) return true;
    const ra = this.roomsOf[a];
    const rb = this.roomsOf[b];
    if (ra === undefined || rb === undefined) return false;
    // Walk the shorter list; the other user's membership is a look-up in each room.
    const [rooms, other] = ra.length <= rb.length ? [ra, b] : [rb, a];
    for (const room of rooms) if (!room.excluded && room.members.has(other)) return true;
    return false;
  }

  /**
   * The incremental answer of `getNewEvents` for reader `self` (not an ALL_USERS
   * reader) from a token the change index covers: the latest state of each user,
   * in order of first appearance after `from`, who changed presence and is the
   * reader, shares a room that is not excluded with the reader, or is in the
   * reader's router interest; plus, for a join into such a room where both are
   * still members, the joiner (or every member, when the joiner is the reader).
   *
   * One pass over the entries, no callback: `userMarks` answers each user once
   * (visibility depends only on the present, so a user found not visible is not
   * checked again), and the reader's rooms are marked once per read when that
   * costs less than the walk: then "shares a room" is a scan of the changed
   * user's rooms for a mark, or, when the members of the reader's rooms are few
   * compared to the entries, one look-up in `memberMarks`. States are read after
   * the walk, in one tight loop.
   */
  private changedAndVisible(self: number, from: number, interest: ReadonlySet<UserId>): UserPresenceState[] {
    const changes = this.changes;
    const first = changes.firstAfter(from);
    const end = changes.length;
    if (first < 0 || first >= end) return [];
    const gen = this.nextMarkGeneration();
    const marks = this.userMarks;
    const own = this.roomsOf[self] ?? EMPTY_ROOMS;
    // Marking a room or a member is a few ns; checking an entry without marks is
    // tens (a walk over the user's rooms): mark when the marking is a fraction of the walk.
    const useRoomMarks = own.length <= 4 * (end - first);
    if (useRoomMarks) this.markRooms(own, gen);
    const useMemberMarks = useRoomMarks && this.membersOf(own) <= 16 * (end - first);
    if (useMemberMarks) this.markMembers(own, gen);
    const roomMarks = this.roomMarks;
    const memberMarks = this.memberMarks;
    const withInterest = interest.size > 0;
    const picked: number[] = [];
    for (let k = first; k < end; k++) {
      const user = changes.userAt(k);
      const roomIdx = changes.roomAt(k);
      if (roomIdx < 0) {
        const m = marks[user];
        if (m === gen || m === -gen) continue;
        const visible =
          user === self ||
          (useMemberMarks ? memberMarks[user] === gen : useRoomMarks ? this.inMarkedRoom(self, user, gen) : this.shareRoomIdx(self, user)) ||
          (withInterest && interest.has(this.userIds[user] as UserId));
        if (visible) {
          marks[user] = gen;
          picked.push(user);
        } else marks[user] = -gen;
        continue;
      }
      const room = this.roomList[roomIdx] as Room;
      if (useRoomMarks ? roomMarks[roomIdx] !== gen : room.excluded || !room.members.has(self)) continue;
      if (user === self) {
        for (const m of room.members)
          if (marks[m] !== gen) {
            marks[m] = gen;
            picked.push(m);
          }
      } else if (marks[user] !== gen && room.members.has(user)) {
        marks[user] = gen;
        picked.push(user);
      }
    }
    const out: UserPresenceState[] = [];
    for (let k = 0; k < picked.length; k++) out.push(this.stateAt(picked[k] as number));
    return out;
  }

  /**
   * A fresh generation for the marks of `changedAndVisible`, sized for every
   * user and room index: marks of earlier generations read as unmarked.
   */
  private nextMarkGeneration(): number {
    if (this.userMarks.length < this.userIds.length) {
      const size = Math.max(this.userIds.length, this.userMarks.length * 2);
      this.userMarks = new Int32Array(size);
      this.memberMarks = new Int32Array(size);
    }
    if (this.roomMarks.length < this.roomList.length) this.roomMarks = new Int32Array(Math.max(this.roomList.length, this.roomMarks.length * 2));
    if (this.markGen === 0x7fffffff) {
      this.userMarks.fill(0);
      this.memberMarks.fill(0);
      this.roomMarks.fill(0);
      this.markGen = 0;
    }
    return ++this.markGen;
  }

  /** Mark `rooms` that are not excluded with `gen` in `roomMarks`. */
  private markRooms(rooms: readonly Room[], gen: number): void {
    const roomMarks = this.roomMarks;
    for (const room of rooms) if (!room.excluded) roomMarks[room.index] = gen;
  }

  /** Number of members of `rooms` that are not excluded (counted once per room). */
  private membersOf(rooms: readonly Room[]): number {
    let n = 0;
    for (const room of rooms) if (!room.excluded) n += room.members.size;
    return n;
  }

  /** Mark the members of `rooms` that are not excluded with `gen` in `memberMarks`. */
  private markMembers(rooms: readonly Room[], gen: number): void {
    const memberMarks = this.memberMarks;
    for (const room of rooms) if (!room.excluded) for (const m of room.members) memberMarks[m] = gen;
  }

  /** `shareRoomIdx(self, user)` when the reader's rooms that are not excluded are marked `gen` in `roomMarks`. */
  private inMarkedRoom(self: number, user: number, gen: number): boolean {
    const theirs = this.roomsOf[user];
    if (theirs === undefined) return false;
    if (theirs.length > (this.roomsOf[self]?.length ?? 0)) return this.shareRoomIdx(self, user);
    const roomMarks = this.roomMarks;
    for (const room of theirs) if (roomMarks[room.index] === gen) return true;
    return false;
  }

  /** Indexes of users whose presence changed since `from` (room joins are not presence changes). */
  private presenceChangedSince(from: number): Set<number> {
    const out = new Set<number>();
    this.changes.forEachSince(from, (user, room) => {
      if (room < 0) out.add(user);
    });
    return out;
  }

  /** The room's indexes, created on first use. */
  private roomFor(roomId: RoomId): Room {
    let room = this.rooms.get(roomId);
    if (room === undefined) {
      room = {
        id: roomId,
        index: this.roomList.length,
        members: new Set(),
        listening: new Set(),
        listeners: null,
        remote: new Map(),
        excluded: this.config.excludeRoomsFromPresence.has(roomId),
        segment: null,
      };
      this.rooms.set(roomId, room);
      this.roomList.push(room);
    }
    return room;
  }

  /**
   * A snapshot's members of one room: what a join of each would do to the
   * indexes at start-up (no stream is open yet, the joins carry no stream id),
   * without a membership event per member and with one room look-up per room.
   */
  private loadMembers(roomId: RoomId, members: readonly UserId[]): void {
    const room = this.roomFor(roomId);
    const joined = room.members;
    for (const m of members) {
      const u = this.indexOf(m);
      if (joined.has(u)) continue;
      joined.add(u);
      const rooms = this.roomsOf[u];
      if (rooms === undefined) this.roomsOf[u] = [room];
      else rooms.push(room); // sized exactly once every room is loaded (`restore`)
      this.countRemote(room, u, m, 1);
    }
  }

  /** A remote member joined (+1) or left (-1) `room`: keep the room's count per server. */
  private countRemote(room: Room, u: number, userId: UserId, delta: 1 | -1): void {
    if (this.isMineAt(u)) return;
    const server = serverNameOf(userId);
    const c = (room.remote.get(server) ?? 0) + delta;
    if (c > 0) room.remote.set(server, c);
    else room.remote.delete(server);
  }

  /**
   * Add `room` to user `u`'s rooms. Up to {@link EXACT_ROOM_LISTS} rooms the
   * list is replaced by an exactly sized copy (`concat`; after a `push`, a
   * list of 2 rooms has room for 17): most users are in a few rooms, and at a million
   * users that slack was ~100 bytes each. Longer lists grow by `push`.
   */
  private addRoomOf(u: number, room: Room): void {
    const rooms = this.roomsOf[u];
    if (rooms === undefined) this.roomsOf[u] = [room];
    else if (rooms.length < EXACT_ROOM_LISTS) this.roomsOf[u] = rooms.concat(room);
    else rooms.push(room);
  }

  /** Apply a membership event to the indexes (live and replay share this code). */
  private applyMembership(e: MembershipEvent, live: boolean): void {
    const room = this.roomFor(e.roomId);
    const u = this.indexOf(e.userId);
    if (e.membership === 'join') {
      if (room.members.has(u)) return;
      room.members.add(u);
      if (this.notifiers[u] !== undefined) addListening(room, u);
      this.addRoomOf(u, room);
      this.countRemote(room, u, e.userId, 1);
      if (e.streamId !== undefined) {
        this.streamId = Math.max(this.streamId, e.streamId);
        this.changes.add(e.streamId, u, room.index);
      }
      if (live) this.turnJoins.push([u, room]);
    } else {
      if (!room.members.delete(u)) return;
      deleteListening(room, u);
      const rooms = this.roomsOf[u];
      const at = rooms?.indexOf(room) ?? -1;
      if (at >= 0) rooms?.splice(at, 1); // keeps the join order of the others
      this.countRemote(room, u, e.userId, -1);
    }
    // A router's interest may depend on the listener's rooms (e.g. users_to_rooms): re-ask it.
    const listener = this.notifiers[u];
    if (live && listener !== undefined) this.refreshInterest(listener);
  }

  /** Load a snapshot, then fold the log after its position (spec: replay equals live). */
  private restore(snapshot: EngineSnapshot | undefined): void {
    // Records by user index (not a map by id: at a million users a second map
    // built next to `userIndex` cost seconds of start-up). Index order is the
    // order users were first met: the snapshot's users, then the log's.
    const recordAt: (UserRecord | undefined)[] = [];
    let after = 0;
    if (snapshot !== undefined) {
      if (snapshot.version !== 1) throw new InvalidInputError('snapshot', `unsupported snapshot version ${String(snapshot.version)}`);
      after = snapshot.position;
      this.streamId = snapshot.streamId;
      for (const [id, record, sid] of snapshot.users) {
        const i = this.indexOf(id);
        while (recordAt.length < i) recordAt.push(undefined); // dense: a hole would make it a slow dictionary
        recordAt[i] = record;
        this.lastStreamId[i] = sid;
      }
      for (const [roomId, members] of snapshot.rooms) this.loadMembers(roomId, members);
      const roomsOf = this.roomsOf;
      for (let u = 0; u < roomsOf.length; u++) {
        const rooms = roomsOf[u];
        if (rooms !== undefined && rooms.length > 1 && rooms.length <= EXACT_ROOM_LISTS) roomsOf[u] = rooms.slice();
      }
      for (const [u, sid] of snapshot.fullRequests) this.fullRequests.set(u, sid);
    }
    // Fold the log: indexes in log order; each user's steps are composed into one
    // step per user (dense, by user index), folded with one immer `produce` at the end.
    const pending: (ComposedStep | undefined)[] = [];
    for (const entry of this.log.read(after)) this.fold(entry.event, pending);
    for (let i = 0; i < pending.length; i++) {
      const step = pending[i];
      if (step === undefined) continue;
      while (recordAt.length < i) recordAt.push(undefined);
      recordAt[i] = evolveUser(recordAt[i], step.toStep());
    }
    for (let i = 0; i < recordAt.length; i++) {
      const record = recordAt[i];
      if (record === undefined) continue;
      const id = this.userIds[i] as UserId;
      const mine = this.isMineAt(i);
      const dormant = isDormant(record);
      if (!dormant || !isDefaultRecord(record)) this.storePresence(i, record.presence);
      if (!dormant) this.actors.spawn(id, mine, record);
      if (this.config.enabled === true && this.owned(id)) this.wheel.schedule(i, nextDeadline(record, mine, this.rules));
    }
  }

  /**
   * Apply one replayed event to the indexes. A user step is composed into the
   * user's pending step (`pending[user index]`) instead of being folded now: a
   * user's record depends only on that user's own steps, so folding the
   * composition once at the end equals folding each step (see `composeSteps`).
   * Every stepping user gets an index, as in the live engine's `step`.
   */
  private fold(e: PresenceEvent, pending: (ComposedStep | undefined)[]): void {
    switch (e.type) {
      case 'user.step': {
        const i = this.indexOf(e.userId);
        // Grow densely: a first write far past the end (users indexed by memberships
        // come first) would turn the array into a slow dictionary.
        while (pending.length <= i) pending.push(undefined);
        const step = pending[i];
        if (step === undefined) pending[i] = new ComposedStep(e);
        else step.add(e);
        if (e.streamId !== undefined) {
          this.lastStreamId[i] = e.streamId;
          this.streamId = Math.max(this.streamId, e.streamId);
          this.changes.add(e.streamId, i);
        }
        return;
      }
      case 'room.membership':
        this.applyMembership(e, false);
        return;
      case 'presence.full_requested':
        for (const u of e.userIds) this.fullRequests.set(u, e.streamId - 1);
        this.streamId = Math.max(this.streamId, e.streamId);
        return;
    }
  }

  // ───────────────────────────── internals: validation ─────────────────────────────

  private parsePresence(value: unknown): PresenceValue {
    if (value === 'online' || value === 'unavailable' || value === 'offline') return value;
    const r = PresenceInputSchema.safeParse(value);
    if (!r.success) throw new InvalidInputError('presence', `${JSON.stringify(value) ?? String(value)} ${r.error.issues[0]?.message ?? ''}`);
    const v = r.data === 'org.matrix.msc3026.busy' ? 'busy' : r.data;
    if (v === 'busy' && !this.config.busyEnabled) {
      throw new InvalidInputError('presence', 'busy is not enabled; set presence.busy_enabled (or experimental_features.msc3026_enabled) to true');
    }
    return v;
  }

  /**
   * A user id argument. Ids the engine already knows were validated when it
   * first met them (inputs, snapshots and logs are all parsed), so they skip
   * the schema: one map lookup instead of a zod parse per input.
   */
  private userIdArg(raw: unknown): UserId {
    if (typeof raw === 'string' && this.userIndex.has(raw as UserId)) return raw as UserId;
    return this.validate(() => parseUserId(raw));
  }

  private deviceArg(raw: unknown): DeviceId {
    if (raw === undefined || raw === null) return DEFAULT_DEVICE;
    return this.validate(() => parseDeviceId(raw));
  }

  private validate<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (isPresenceError(error)) this.counters.rejectedInputs++;
      throw error;
    }
  }

  private reject(error: Error): never {
    this.counters.rejectedInputs++;
    throw error;
  }

  private ensureRunning(): void {
    if (this.stopped) throw new EngineStoppedError();
  }
}

function parseStatusMsg(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const r = StatusMsgSchema.safeParse(value);
  if (!r.success) throw new InvalidInputError('statusMsg', 'status_msg must be a string (or null/absent to clear it)');
  return r.data ?? null;
}

function isParsed(c: PresenceConfig | HomeserverConfigInput): c is PresenceConfig {
  return typeof (c as PresenceConfig).serverName === 'string' && (c as PresenceConfig).timers !== undefined;
}

/** Create an engine (replaying `options.log` if it has entries). */
export function createPresenceEngine(options: PresenceEngineOptions): PresenceEngine {
  return new PresenceEngine(options);
}

export { DEFAULT_DEVICE };
