/**
 * The presence engine: the facade that wires the parts and holds the public
 * API. One input is processed per *turn* (src/engine/turns.ts): parse into a
 * command (src/engine/commands.ts) → actor step (machines/) → log append →
 * push fan-out (streams/push-fanout.ts) and federation routing
 * (src/engine/federation-routing.ts) → flush. docs/architecture.md follows one
 * update through these parts.
 */
import { Observable, Subject, type Subscription } from 'rxjs';
import { PresenceActorSystem } from '../machines/actor-system.js';
import type { PresenceMachineEvent } from '../machines/presence-machine.js';
import { ChangeIndex } from '../streams/change-index.js';
import { PushFanOut, type RoomWakeups } from '../streams/push-fanout.js';
import { syncStreamObservable, type PresenceBatch, type SyncNotifier } from '../streams/sync-notifier.js';
import { systemClock, type Clock } from './clock.js';
import { DEFAULT_MEMORY_LOG_RETAIN, ruleConfig, toPresenceConfig, type PresenceConfig } from './config.js';
import type { LogEntry, PresenceEvent } from './domain/events.js';
import { formatPresence, type PresenceContent } from './domain/format.js';
import { parseRoomId, parseUserId, type RoomId, type ServerName, type UserId } from './domain/ids.js';
import { type RuleConfig, type UserPresenceState, type UserRecord } from './domain/presence.js';
import { nextDeadline } from './domain/rules.js';
import type { EngineSnapshot } from './domain/snapshot.js';
import { CommandParser, type ActivityCommand, type MembershipCommand, type PolicySetCommand, type PresenceCommand, type SetPresenceCommand, type SyncStartCommand } from './engine/commands.js';
import { Delivery } from './engine/delivery.js';
import { explainFromLog, withDeliveries } from './engine/explain-log.js';
import { attachJournal, type DeliveryJournal } from './engine/delivery-journal.js';
import type { Explanation } from './domain/explain.js';
import { Memberships } from './engine/memberships.js';
import { PresenceSteps } from './engine/presence-steps.js';
import { StreamPosition } from './engine/stream-position.js';
import { FederationRouting } from './engine/federation-routing.js';
import { restoreState, takeSnapshot, type ReplayState } from './engine/replay.js';
import { RoomIndex } from './engine/room-index.js';
import { SyncReader } from './engine/sync-reader.js';
import { DEFAULT_TIMER_SLICE, TimerSlices } from './engine/timer-slices.js';
import { TurnBuffer } from './engine/turn-buffer.js';
import { TurnObserver } from './engine/turn-observer.js';
import { Turns } from './engine/turns.js';
import { SyncPairs } from './engine/sync-pairs.js';
import { applyEach, subscribeInputs } from './engine/input-stream.js';
import { StepJobs } from './engine/step-jobs.js';
import { inboundUpdates } from './engine/inbound-edu.js';
import type { EngineStats, GetNewEventsOptions, NewEvents, PresenceEngineOptions, SetPresenceInput, StreamToken, SyncHandle, UserInspection, UserSyncingInput } from './engine/types.js';
import { UserDirectory } from './engine/user-directory.js';
import type { LargeRoomStats } from './engine/large-rooms.js';
import { isLargeRoom } from './domain/large-room.js';
import type { DampingStats } from './engine/damping.js';
import { PolicyLayer } from './engine/policy-layer.js';
import type { PresencePolicy } from './domain/policy.js';
import { EngineStoppedError, ForbiddenError, InvalidInputError, RateLimitedError, isPresenceError } from './errors.js';
import {
  FederationOutbound,
  type FederationLink,
  type FederationOutboundStats,
  type FederationTransmission,
  type FederationTransport,
  type FederationTransportOptions,
} from './federation/outbound.js';
import type { PresenceInputEvent } from './inputs.js';
import { InMemoryEventLog, type EventLog } from './log/event-log.js';
import { consoleLogger, type Logger } from './logger.js';
import { RateLimiter } from './rate-limit.js';
import { PresenceRouter, type GetVisibility, type PresenceRouterCallbacks } from './router/presence-router.js';
import { TimerWheel } from './timer-wheel.js';

export type { PresenceBatch } from '../streams/sync-notifier.js';
export type { EngineSnapshot } from './domain/snapshot.js';
export type { EngineStats, GetNewEventsOptions, NewEvents, PresenceEngineOptions, SetPresenceInput, StreamToken, SyncHandle, TurnTiming, UserInspection, UserSyncingInput } from './engine/types.js';

/** The handle of every sync that does not count for presence (one object, not one per call). */
const INERT_SYNC: SyncHandle = Object.freeze({ affectsPresence: false, end: () => {} });

const scheduleImmediate = (closeTurn: () => void): void => {
  setImmediate(closeTurn);
};

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
  private readonly users: UserDirectory;
  private readonly rooms: RoomIndex;
  private readonly push: PushFanOut;
  private readonly reader: SyncReader;
  private readonly changes: ChangeIndex;
  private readonly wheel: TimerWheel;
  private readonly slices: TimerSlices;
  private readonly turns: Turns<PresenceMachineEvent>;
  private readonly turn = new TurnBuffer();
  private readonly federation: FederationOutbound;
  private readonly routing: FederationRouting;
  private readonly delivery: Delivery;
  private readonly memberships: Memberships;
  private readonly jobs: StepJobs;
  private readonly commands: CommandParser;
  /** `rc_presence`: one bucket per input, as Synapse's presence and sync servlets each own a limiter. */
  private readonly setLimiter: RateLimiter;
  private readonly syncLimiter: RateLimiter;
  private readonly fullRequests = new Map<UserId, number>();
  private readonly syncPairs = new SyncPairs();
  private readonly committed = new Subject<readonly LogEntry[]>();
  private readonly closeHooks: (() => void | Promise<void>)[] = [];
  private readonly owned: (userId: UserId) => boolean;
  private readonly stream = new StreamPosition();
  private readonly steps: PresenceSteps;
  /** Visibility policies, `getVisibility` callbacks, damping and large-room mode (docs/policies.md). */
  private readonly policies: PolicyLayer;
  private readonly visibility: PolicyLayer['visibility'];
  /** The metrics hooks (`onTurn`, `onTimerFired`), when set. */
  private readonly observer: TurnObserver | undefined;
  /** Who was handed which state (option `recordDeliveries`), when on. */
  private readonly journal: DeliveryJournal | undefined;
  private stopped = false;
  private readonly idAt = (i: number): UserId => this.users.idAt(i);
  private readonly deliverChanges = (changed: readonly number[], count: number): void => this.delivery.changes(changed, count);

  constructor(options: PresenceEngineOptions) {
    this.config = toPresenceConfig(options.config);
    const config = this.config;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? consoleLogger;
    // The default log is not durable: it keeps a bounded window (`log.retain`), not the whole history.
    const retain = (config.log.kind === 'memory' ? config.log.retain : undefined) ?? DEFAULT_MEMORY_LOG_RETAIN;
    this.log = options.log ?? new InMemoryEventLog(options.snapshot?.position ?? 0, { retain });
    this.rules = ruleConfig(config);
    this.observer = options.onTurn !== undefined || options.onTimerFired !== undefined ? new TurnObserver(options.onTurn, options.onTimerFired) : undefined;
    this.actors = new PresenceActorSystem(this.rules, { interpretEveryEvent: options.interpretEveryEvent === true });
    this.router = new PresenceRouter(this.clock, this.logger, config.routerTimeout);
    this.changes = new ChangeIndex(config.changeIndexSize, options.snapshot?.streamId ?? 0);
    this.users = new UserDirectory(config.serverName);
    const large = config.largeRooms;
    this.rooms = new RoomIndex(this.users, config.excludeRoomsFromPresence, large?.mode === 'shared_rooms_only' ? (id, n) => isLargeRoom(large, id, n) : null);
    this.push = new PushFanOut(this.rooms, this.users.column<SyncNotifier>());
    const slice = options.timerSlice ?? DEFAULT_TIMER_SLICE;
    if (!(slice >= 1)) throw new InvalidInputError('timerSlice', `must be a number of users ≥ 1 (or Infinity), got ${String(slice)}`);
    const users = this.users;
    this.slices = new TimerSlices(this.clock, slice, {
      run: (job) => this.turns.run(job),
      reexamine: (user, at) => this.steps.reexamine(user, at),
      get userCount() {
        return users.size;
      },
    });
    this.wheel = new TimerWheel(this.clock, config.timerPeriod, this.slices.onTimers);
    this.steps = new PresenceSteps({
      users,
      actors: this.actors,
      turn: this.turn,
      changes: this.changes,
      stream: this.stream,
      wheel: this.wheel,
      slices: this.slices,
      rules: this.rules,
      tracked: () => this.config.enabled === true,
      owned: (id) => this.owned(id),
      counters: this.counters,
      timerFired: this.observer?.timerFired,
    });
    this.setLimiter = new RateLimiter(config.rateLimit.perSecond, config.rateLimit.burstCount);
    this.syncLimiter = new RateLimiter(config.rateLimit.perSecond, config.rateLimit.burstCount);
    this.owned = options.owns ?? (() => true);
    this.federation = new FederationOutbound(config.serverName, config.busyWireValue, this.clock, this.logger);
    this.federationOutbound$ = this.federation.transmissions$.asObservable();
    this.policies = new PolicyLayer({
      config,
      clock: this.clock,
      users,
      changes: this.changes,
      stream: this.stream,
      turn: this.turn,
      push: this.push,
      router: this.router,
      run: (job) => this.turns.run(job),
      owned: (id) => this.owned(id),
      offerOwn: (idx) => this.delivery.offerOwn(idx),
      visibleLater: (viewer, target) => {
        if (this.stopped) return;
        if (viewer.startsWith('@')) this.delivery.offerLater(viewer as UserId, [this.getUserPresence(target)]);
        else this.turns.run(() => this.routing.sendTo(viewer as ServerName, target));
      },
    });
    this.visibility = this.policies.visibility;
    this.routing = new FederationRouting(this.users, this.rooms, this.federation, this.owned, () => this.tracked, this.visibility);
    const engine = this;
    this.delivery = new Delivery(this.users, this.push, this.routing, this.router, this.federation, {
      run: (job) => this.turns.run(job),
      now: () => this.clock.now(),
      get tracked() {
        return engine.tracked;
      },
      get token() {
        return engine.stream.id;
      },
    }, this.visibility);
    this.journal = attachJournal(options.recordDeliveries, { push: this.push, router: this.router, transmissions$: this.federationOutbound$, token: () => this.stream.id, onClose: (h) => this.closeHooks.push(h) });
    this.memberships = new Memberships(this.users, this.rooms, this.push, this.changes, this.stream, this.turn, (u) => this.delivery.refreshUser(u));
    this.jobs = new StepJobs(this.steps, this.memberships, {
      run: (job) => this.turns.run(job),
      now: () => this.clock.now(),
      fullRequested: (ids) => this.requestFull(ids, this.stream.next()),
      notifiedReplicated: (e) => this.policies.inputs.replicated(e),
    });
    this.reader = new SyncReader(this.users, this.rooms, this.changes, {
      router: this.router,
      fullRequests: this.fullRequests,
      interestAnswered: (id, interest) => this.delivery.cacheInterest(id, interest),
      visibility: this.visibility,
    });
    this.commands = new CommandParser({
      serverName: config.serverName,
      busyEnabled: config.busyEnabled,
      isMine: (id) => users.isMine(id),
      isKnownUser: (id) => users.has(id as UserId),
    });
    for (const key of config.ignoredKeys) this.logger.debug(`config key ${key} is not used by the presence engine`);
    const endOfTick = options.endOfTick ?? scheduleImmediate;
    if (typeof endOfTick !== 'function') throw new InvalidInputError('endOfTick', `must be a function that schedules a callback, got ${typeof endOfTick}`);
    this.turns = new Turns<PresenceMachineEvent>(
      { step: (id, event) => this.steps.step(id, event), commit: () => this.commit(), now: () => this.clock.now(), opened: this.observer?.opened },
      this.logger,
      config.turns === 'per_tick',
      endOfTick,
    );
    const after = options.snapshot?.position ?? 0;
    this.stream.advanceTo(restoreState(this.replayState(), options.snapshot, this.log.read(after)));
    this.turn.base = this.stream.id;
    if (config.enabled === false) this.steps.flushStale((job) => this.turns.run(job), () => this.clock.now());
  }

  // ───────────────────────────── queries ─────────────────────────────

  /** Counters and sizes, for metrics and benchmarks. */
  get stats(): Readonly<EngineStats> {
    this.counters.liveActors = this.actors.size;
    this.counters.dormantRecords = this.users.storedCount - this.actors.size;
    this.counters.openSyncStreams = this.push.listening;
    this.counters.deliveries = this.delivery.deliveries;
    return this.counters;
  }

  /** The current presence stream token. */
  get currentToken(): StreamToken {
    return this.stream.id;
  }

  /** Whether presence is tracked from client and federation inputs. */
  get tracked(): boolean {
    return this.config.enabled === true;
  }

  /** True when `userId` belongs to this server. */
  isMine(userId: string): boolean {
    return this.users.isMine(userId);
  }

  /** A user's current presence (the default offline state for unknown users). */
  getUserPresence(userId: string): UserPresenceState {
    return this.steps.recordOf(this.parsed(() => parseUserId(userId))).presence;
  }

  /** A user's full record (presence, devices, in-flight syncs). */
  getUserRecord(userId: string): UserRecord {
    return this.steps.recordOf(this.parsed(() => parseUserId(userId)));
  }

  /**
   * `GET /presence/{userId}/status`: the Matrix presence content of `targetId` as
   * seen by `requesterId`. Allowed for oneself and for users sharing a joined room
   * (router results do not grant visibility).
   * @throws ForbiddenError when the two share no room.
   */
  getPresence(requesterId: string, targetId: string): PresenceContent {
    const requester = parseUserId(requesterId, 'requesterId');
    const target = parseUserId(targetId, 'targetId');
    if (this.config.enabled === false) return { presence: 'offline' };
    if (requester !== target && !this.shareRoom(requester, target)) {
      throw new ForbiddenError(`${requester} may not see the presence of ${target}: they share no joined room`);
    }
    const truth = this.steps.recordOf(target).presence;
    const seen = this.visibility.active ? this.visibility.view(requester, truth) : truth;
    return formatPresence(seen, this.clock.now(), { busy: this.config.busyWireValue });
  }

  /** Joined members of a room. */
  getRoomMembers(roomId: string): UserId[] {
    const room = this.rooms.get(parseRoomId(roomId));
    return room === undefined ? [] : [...room.members].map(this.idAt);
  }

  /** Rooms a user is joined to. */
  getRoomsForUser(userId: string): RoomId[] {
    const i = this.users.find(parseUserId(userId));
    return i === undefined ? [] : this.rooms.roomsOf(i).map((r) => r.id);
  }

  /** Do the two users share a joined room that is not excluded from presence? */
  shareRoom(a: UserId, b: UserId): boolean {
    const ia = this.users.find(a);
    const ib = this.users.find(b);
    return ia !== undefined && ib !== undefined && this.rooms.shareRoom(ia, ib);
  }

  /** Every user with a non-default record (live or dormant). */
  knownUsers(): IterableIterator<UserPresenceState> {
    return this.users.storedStates();
  }

  /** The XState snapshot value of a user's live actor (e.g. `{ local: 'online' }`), or undefined when dormant. */
  actorState(userId: string): unknown {
    return this.actors.snapshot(parseUserId(userId))?.value;
  }

  /** Opt-in counts of sync streams each room woke (for dashboards; off until `count(true)`). */
  get roomWakeups(): RoomWakeups {
    return this.push.roomWakeups;
  }

  /** Entries appended to the log, per turn. */
  get committed$(): Observable<readonly LogEntry[]> {
    return this.committed.asObservable();
  }

  /** A user's record, open syncs and every armed timer with its kind and due time (docs/modules.md, "Inspect"). */
  inspect(userId: string): UserInspection {
    return this.steps.inspect(this.parsed(() => parseUserId(userId)));
  }

  /** Why `userId` is in their state: their logged steps, newest first, each with its cause and rule (docs/modules.md, "Explain"). */
  explain(userId: string, options?: { readonly since?: number; readonly recipients?: boolean }): Explanation {
    const id = this.parsed(() => parseUserId(userId));
    const withIds = options?.recipients === true;
    const e = explainFromLog(this.log, id, options?.since, this.config.timers);
    return { ...(this.journal === undefined ? e : withDeliveries(e, this.journal, withIds)), audience: this.routing.audience(id, withIds, this.router.modules) };
  }

  // ───────────────────────────── client inputs ─────────────────────────────

  /**
   * Set a user's presence explicitly (`PUT /presence/{userId}/status`). A missing
   * `statusMsg` clears the status message (Synapse semantics).
   * @throws InvalidInputError for bad ids, values or shapes; RateLimitedError over `rc_presence.per_user`.
   */
  setPresence(userId: string, input: SetPresenceInput): void {
    this.ensureRunning();
    let command: SetPresenceCommand;
    try {
      command = this.commands.setPresence(userId, input);
    } catch (error) {
      throw this.rejected(error);
    }
    this.execSetPresence(command);
  }

  /**
   * A sync request started (`GET /sync`). Returns a handle; call `end()` when the
   * request finishes. `setPresence: 'offline'` does not affect presence.
   */
  userSyncing(userId: string, input?: UserSyncingInput): SyncHandle {
    this.ensureRunning();
    let command: SyncStartCommand;
    try {
      command = this.commands.userSyncing(userId, input);
    } catch (error) {
      throw this.rejected(error);
    }
    return this.execSyncStart(command);
  }

  /** The user did something active (sent a message, receipt, typing): `bump_presence_active_time`. */
  bumpActive(userId: string, deviceId?: string): void {
    this.ensureRunning();
    let command: ActivityCommand;
    try {
      command = this.commands.activity(userId, deviceId);
    } catch (error) {
      throw this.rejected(error);
    }
    if (this.config.enabled !== true) return;
    this.turns.runStep(command.userId, { type: 'activity', now: this.clock.now(), deviceId: command.deviceId });
  }

  joinRoom(roomId: string, userId: string): void {
    this.setMembership(roomId, userId, 'join');
  }

  leaveRoom(roomId: string, userId: string): void {
    this.setMembership(roomId, userId, 'leave');
  }

  /** Record a membership change (local or remote user). Only `join` counts as membership for presence. */
  setMembership(roomId: string, userId: string, membership: 'join' | 'leave' | 'ban'): void {
    this.ensureRunning();
    this.execMembership(this.parsed(() => this.commands.membership(roomId, userId, membership)));
  }

  /**
   * Set a local user's visibility policy, replacing the previous one (docs/policies.md):
   * `{ invisible?, allow?: { users?, servers? } | null, deny?: { users?, servers? } }`.
   * Logged and notified: every viewer re-reads the user through the new policy.
   */
  setPresencePolicy(userId: string, policy: unknown): void {
    this.ensureRunning();
    this.execPolicy(this.parsed(() => this.commands.policy(userId, policy)));
  }

  /** A user's visibility policy (the default, visible to all, when none is set). */
  getPresencePolicy(userId: string): PresencePolicy {
    return this.policies.get(this.parsed(() => parseUserId(userId)));
  }

  // ───────────────────────────── streams ─────────────────────────────

  /**
   * Drive the engine from a stream of inputs. Invalid inputs are reported to
   * `onError` (default: logged) and change nothing. Sync starts and ends are
   * paired by `syncId`.
   */
  ingest(input$: Observable<PresenceInputEvent>, onError?: (error: Error, input: unknown) => void): Subscription {
    return subscribeInputs(input$, (raw) => this.apply(raw), this.logger, onError);
  }

  /** Apply one input event (the same shapes `ingest` accepts), validated once. */
  apply(raw: PresenceInputEvent): void {
    this.ensureRunning();
    let command: PresenceCommand;
    try {
      command = this.commands.event(raw);
    } catch (error) {
      throw this.rejected(error);
    }
    this.execute(command);
  }

  /**
   * Run several inputs as one turn: one log append, one fan-out per changed user
   * and at most one emission per listening user, holding every change the batch
   * made (latest state per user). Input errors still throw from the call that
   * caused them; inputs applied before it stay applied. Calls from inside a turn
   * join it; with `presence.turns: per_tick`, a batch made while the tick's turn
   * is open commits with it at the end of the tick.
   */
  batch<T>(fn: () => T): T {
    this.ensureRunning();
    return this.turns.batch(fn);
  }

  /** Apply many input events in one turn (see {@link batch}); invalid ones go to `onError` (default: thrown). */
  applyAll(inputs: readonly PresenceInputEvent[], onError?: (error: Error, input: unknown) => void): void {
    if (!Array.isArray(inputs)) throw this.rejected(new InvalidInputError('inputs', 'expected an array of input events'));
    if (onError !== undefined && typeof onError !== 'function') throw this.rejected(new InvalidInputError('onError', 'expected a function'));
    this.batch(() => applyEach(inputs, (input) => this.apply(input), onError));
  }

  /**
   * The push side of sync for one user: each emission is a batch with at most
   * one state per changed user (the latest at emission time) and the token it
   * brings the subscriber up to. Only listening users get pushed work.
   */
  syncStream(userId: string): Observable<PresenceBatch> {
    const id = this.parsed(() => parseUserId(userId));
    return syncStreamObservable(
      (s) => this.delivery.open(id, s),
      (s) => this.delivery.close(id, s),
    );
  }

  /**
   * Presence for a sync: no token → everyone the user is interested in (offline
   * excluded unless configured); a token → the latest state of each interested
   * user changed since it, offline transitions included, plus members of newly
   * shared rooms; the current token → nothing.
   */
  async getNewEvents(userId: string, since?: StreamToken | null, options?: GetNewEventsOptions): Promise<NewEvents> {
    const id = parseUserId(userId);
    if (since !== undefined && since !== null && (!Number.isSafeInteger(since) || since < 0)) {
      throw new InvalidInputError('since', 'a stream token is a non-negative integer returned by this engine');
    }
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new InvalidInputError('options', 'expected an object { includeOffline? }');
    // Presence off: only a token behind the stream is answered (the start-up flush of stale states, spec §2.13).
    if (this.config.enabled === false && (since === undefined || since === null || since >= this.stream.id)) return { events: [], nextToken: this.stream.id, full: false };
    const read = this.reader.read(id, since ?? null, options?.includeOffline ?? this.config.includeOfflineUsersOnSync, this.stream.id);
    if (this.journal === undefined) return read;
    const r = await read;
    this.journal.local(id, r.events.map((e) => e.userId), r.nextToken);
    return r;
  }

  // ───────────────────────────── module API ─────────────────────────────

  /**
   * Register a module's `getVisibility(viewer, target)` policy callback
   * (docs/policies.md): it can only hide a local user's truth from a viewer
   * (a user id, or a server name for federation). Same deadline and isolation as routers.
   */
  registerPresencePolicyCallback(moduleName: string, getVisibility: GetVisibility): void {
    this.policies.registerCallback(moduleName, getVisibility);
  }

  /** Forget the cached answers of modules' `getVisibility` callbacks (their decisions changed). */
  invalidateVisibility(): void {
    this.policies.invalidate();
  }

  /** Register presence router callbacks for a module (the module API's `registerPresenceRouterCallbacks`). */
  registerPresenceRouter(moduleName: string, callbacks: PresenceRouterCallbacks): void {
    this.router.register(moduleName, callbacks);
    this.delivery.refreshAll();
  }

  /** `set_presence_for_users`: set state and status message for local or remote users, always notified. */
  setPresenceForUsers(users: Readonly<Record<string, { presence: string; statusMsg?: string | null | undefined }>>, moduleName?: string): void {
    this.ensureRunning();
    if (this.config.enabled === false) return;
    this.jobs.moduleSet(this.parsed(() => this.commands.moduleUpdates(users)), moduleName);
  }

  /**
   * `send_local_online_presence_to`: local targets get, on their next read, the
   * current presence of every non-offline user they are interested in (once);
   * remote targets' servers are sent the non-offline local users their users can
   * see (presence routers asked with the remote id, else shared rooms), one send
   * per server. Nobody's presence changes.
   */
  sendLocalOnlinePresenceTo(userIds: readonly string[]): void {
    this.ensureRunning();
    const ids = this.parsed(() => this.commands.userList(userIds));
    if (this.config.enabled === false) return;
    const local = ids.filter((u) => this.users.isMine(u));
    const remote = ids.filter((u) => !this.users.isMine(u));
    this.turns.run(() => {
      if (local.length > 0) {
        const streamId = this.stream.next();
        this.turn.addEvent({ type: 'presence.full_requested', userIds: local, streamId, at: this.clock.now() });
        this.requestFull(local, streamId);
      }
      this.routing.onlineTo(remote, this.router, (job) => this.turns.run(job));
    });
  }

  // ───────────────────────────── federation ─────────────────────────────

  /**
   * An inbound `m.presence` EDU from `origin`. Items are validated one by one;
   * invalid items and items for users of another server are dropped and counted.
   */
  receiveFederationEdu(origin: string, content: unknown): { applied: number; dropped: number } {
    this.ensureRunning();
    if (this.config.enabled !== true) return { applied: 0, dropped: 0 };
    const { updates: lastPerUser, dropped } = inboundUpdates(origin, content, (u) => this.users.isMine(u), this.config.serverName);
    if (dropped.length > 0) {
      this.counters.droppedInboundItems += dropped.length;
      this.logger.warn(`dropped ${dropped.length} invalid presence item(s) from ${origin}`, { reasons: dropped.slice(0, 5) });
    }
    this.jobs.remoteUpdates(lastPerUser);
    return { applied: lastPerUser.size, dropped: dropped.length };
  }

  /** Flap damping counters (docs/policies.md), or undefined when `presence.damping` is off. */
  get dampingStats(): Readonly<DampingStats> | undefined {
    return this.policies.dampingStats;
  }

  /** Large-room mode counters (docs/policies.md), or undefined when `presence.large_rooms` is off. */
  get largeRoomStats(): Readonly<LargeRoomStats> | undefined {
    return this.policies.largeRoomStats;
  }

  /** Number of presence states pending for a destination server. */
  federationPending(destination: string): number {
    return this.federation.pendingFor(destination as ServerName);
  }

  /**
   * Send outbound federation through `transport` (docs/federation.md): one send in
   * flight per destination, pending states coalesce meanwhile, failures retry with
   * back-off. Transmissions are still emitted on `federationOutbound$`.
   */
  attachFederationTransport(transport: FederationTransport, options: FederationTransportOptions = {}): FederationLink {
    this.ensureRunning();
    return this.federation.attach(transport, options);
  }

  /** Outbound federation counters and queue sizes. */
  get federationStats(): Readonly<FederationOutboundStats> {
    return this.federation.stats;
  }

  // ───────────────────────────── lifecycle and distributed mode ─────────────────────────────

  /** Serialisable state at the current log position (an open per-tick turn is committed first). */
  snapshot(): EngineSnapshot {
    this.turns.closeTick();
    return takeSnapshot(this.replayState(), this.log.position, this.stream.id);
  }

  /** End in-flight syncs restored from a log (their requests died with the old process). */
  endRestoredSyncs(): void {
    this.jobs.endSyncs(Array.from(this.actors.records(), ([id]) => id));
  }

  /**
   * Distributed mode (docs/distributed.md): apply events logged by the owner of
   * their users, in log order, as one turn. Stream ids are this engine's own;
   * local listeners are woken; nothing is appended, armed or federated.
   */
  applyReplicated(events: readonly PresenceEvent[]): void {
    this.ensureRunning();
    this.jobs.replicated(events);
  }

  /** Distributed mode: this process now owns `userIds`: arm their timers and end the syncs the previous owner recorded. */
  adopt(userIds: Iterable<UserId>): void {
    this.ensureRunning();
    const ids = [...userIds];
    this.rearmTimers(ids);
    this.jobs.endSyncs(ids);
  }

  /** Distributed mode: re-arm the timers of `userIds` from their records (no other effect). */
  rearmTimers(userIds: Iterable<UserId>): void {
    if (this.stopped) return;
    for (const id of userIds) this.steps.rearm(id);
  }

  /** Stop, run the {@link onClose} hooks (e.g. a final snapshot), then flush and close the log. */
  async close(): Promise<void> {
    this.stop();
    for (const hook of this.closeHooks.splice(0)) await hook();
    await this.log.flush?.();
    await this.log.close?.();
  }

  /** Run `hook` when {@link close} is called. */
  onClose(hook: () => void | Promise<void>): void {
    this.closeHooks.push(hook);
  }

  /** Stop timers and complete every stream (an open per-tick turn is committed first). Further inputs are refused. */
  stop(): void {
    if (this.stopped) return;
    this.turns.closeTick();
    this.stopped = true;
    this.wheel.stop();
    this.slices.stop();
    this.policies.stop();
    this.push.completeAll();
    this.federation.stop();
    this.committed.complete();
  }

  // ───────────────────────────── internals ─────────────────────────────

  private execute(command: PresenceCommand): void {
    switch (command.type) {
      case 'presence.set':
        return this.execSetPresence(command);
      case 'sync.start':
        return this.parsed(() => this.syncPairs.start(command.userId, command.syncId ?? '', () => this.execSyncStart(command)));
      case 'sync.end':
        return this.parsed(() => this.syncPairs.end(command.userId, command.syncId));
      case 'activity':
        if (this.config.enabled !== true) return;
        return this.turns.runStep(command.userId, { type: 'activity', now: this.clock.now(), deviceId: command.deviceId });
      case 'room.membership':
        return this.execMembership(command);
      case 'federation.edu':
        this.receiveFederationEdu(command.origin, command.content);
        return;
      case 'policy.set':
        return this.execPolicy(command);
    }
  }

  private execSetPresence(c: SetPresenceCommand): void {
    if (this.config.enabled !== true) return;
    const now = this.clock.now();
    const wait = this.setLimiter.take(c.userId, now);
    if (wait > 0) throw this.rejected(new RateLimitedError(c.userId, wait));
    this.turns.runStep(c.userId, { type: 'presence.set', now, deviceId: c.deviceId, presence: c.presence, statusMsg: c.statusMsg });
  }

  private execSyncStart(c: SyncStartCommand): SyncHandle {
    if (this.config.enabled !== true || c.setPresence === 'offline') return INERT_SYNC;
    if (this.syncLimiter.take(c.userId, this.clock.now()) > 0) return INERT_SYNC; // served, but presence unaffected
    const { userId, deviceId } = c;
    this.turns.runStep(userId, { type: 'sync.start', now: this.clock.now(), deviceId, presence: c.setPresence });
    let ended = false;
    return {
      affectsPresence: true,
      // a closure, not a method: servers pass `handle.end` around as a callback
      end: () => {
        if (ended || this.stopped) return;
        ended = true;
        this.turns.runStep(userId, { type: 'sync.end', now: this.clock.now(), deviceId });
      },
    };
  }

  private execPolicy(c: PolicySetCommand): void {
    this.turns.run(() => this.policies.set(c.userId, c.policy));
  }

  private execMembership(c: MembershipCommand): void {
    this.turns.run(() => this.memberships.change(c.roomId, c.userId, c.membership, this.clock.now()));
  }

  /** Full-presence requests of `userIds` at stream id `streamId`: their next read or push is a full one. */
  private requestFull(userIds: readonly UserId[], streamId: number): void {
    for (const u of userIds) this.fullRequests.set(u, streamId - 1);
    this.turn.addFullRequests(userIds);
  }

  /** End of a turn: append to the log, then deliver (push, routers, federation) and flush. */
  private commit(): void {
    const events = this.turn.takeEvents();
    if (events !== null) {
      const entries = this.log.append(events);
      if (this.committed.observed) this.committed.next(entries);
    }
    this.observer?.appended();
    const count = this.turn.changedUsers;
    const changed = this.turn.takeChanged();
    const joins = this.turn.takeJoins();
    const pings = this.turn.takePings();
    const full = this.turn.takeFullRequests();
    this.turn.base = this.stream.id;
    if (count > 0) this.policies.deliverChanges(changed, count, events, this.deliverChanges);
    if (joins.length > 0) this.delivery.joins(joins);
    if (pings.length > 0) this.delivery.pings(pings);
    for (const u of full) this.pushFull(u);
    this.delivery.flush();
    const inputs = this.turns.takeInputs();
    this.observer?.ended(inputs, events === null ? 0 : events.length);
  }

  /** A full-presence request for a listening user: push everything they would read in full. */
  private pushFull(userId: UserId): void {
    if (!this.delivery.isListening(userId)) return;
    void this.getNewEvents(userId, null, { includeOffline: false }).then((r) => this.delivery.offerLater(userId, r.events));
  }

  private replayState(): ReplayState {
    return {
      users: this.users,
      rooms: this.rooms,
      changes: this.changes,
      actors: this.actors,
      fullRequests: this.fullRequests,
      visibility: this.visibility,
      arm: (i, id, record) => {
        if (this.config.enabled === true && this.owned(id)) this.wheel.schedule(i, nextDeadline(record, this.users.isMineAt(i), this.rules));
      },
    };
  }

  /** Run a parse; count a typed rejection. */
  private parsed<T>(parse: () => T): T {
    try {
      return parse();
    } catch (error) {
      throw this.rejected(error);
    }
  }

  private rejected(error: unknown): unknown {
    if (isPresenceError(error)) this.counters.rejectedInputs++;
    return error;
  }

  private ensureRunning(): void {
    if (this.stopped) throw new EngineStoppedError();
  }
}

/** Create an engine (replaying `options.log` if it has entries). */
export function createPresenceEngine(options: PresenceEngineOptions): PresenceEngine {
  return new PresenceEngine(options);
}

