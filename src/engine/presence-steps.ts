/**
 * One user's step: the user's actor (machines/) receives an event, and the
 * consequences are recorded in the turn: a notified change gets the next
 * stream id and enters the change index, the difference of the record is the
 * step's log event, the user's next deadline is filed on the timer wheel, and
 * a user who became dormant (offline, no devices, no syncs) drops their actor
 * and keeps only their presence in the user directory.
 */
import type { PresenceActorSystem } from '../../machines/actor-system.js';
import type { PresenceMachineEvent } from '../../machines/presence-machine.js';
import type { ChangeIndex } from '../../streams/change-index.js';
import type { StepCause, StepInput, UserStepEvent } from '../domain/events.js';
import { diffRecords, evolveUser } from '../domain/evolve.js';
import { DEFAULT_DEVICE, serverNameOf, type DeviceId, type UserId } from '../domain/ids.js';
import { EMPTY_MAP, defaultRecord, dormantRecord, isDefaultRecord, isDormant, type RuleConfig, type UserRecord } from '../domain/presence.js';
import { armedDeadlines, firedDeadline, nextDeadline, type DeadlineKind } from '../domain/rules.js';
import type { UserInspection } from './types.js';
import type { TimerWheel } from '../timer-wheel.js';
import type { StreamPosition } from './stream-position.js';
import type { TimerSlices } from './timer-slices.js';
import type { TurnBuffer } from './turn-buffer.js';
import type { UserDirectory } from './user-directory.js';

/** Users per turn in the disabled-presence flush (Synapse flushes in batches of 500). */
const FLUSH_BATCH = 500;
const FLUSH_CAUSE: StepCause = Object.freeze({ input: 'flush' });

/** Why `event` changed user `userId`: the input and its source, or the timer that was due (the step's log cause). */
function causeOf(userId: UserId, event: PresenceMachineEvent, before: UserRecord, mine: boolean, rules: RuleConfig): StepCause {
  switch (event.type) {
    case 'presence.set':
      return withDevice('set', event.deviceId);
    case 'sync.start':
      return withDevice('sync_start', event.deviceId);
    case 'sync.end':
      return withDevice('sync_end', event.deviceId);
    case 'activity':
      return withDevice('activity', event.deviceId);
    case 'remote.update':
      return { input: 'remote', origin: serverNameOf(userId) };
    case 'module.set':
      return event.module === undefined ? { input: 'module' } : { input: 'module', module: event.module };
    case 'timeout': {
      const fired = firedDeadline(before, event.now, mine, rules);
      if (fired === null) return { input: 'timer' };
      return fired.deviceId === undefined || fired.deviceId === DEFAULT_DEVICE ? { input: 'timer', timer: fired.kind } : { input: 'timer', timer: fired.kind, device: fired.deviceId };
    }
  }
}

/** The default device (no device id given) is left out: it is most inputs, and costs log bytes. */
function withDevice(input: StepInput, device: DeviceId): StepCause {
  return device === DEFAULT_DEVICE ? { input } : { input, device };
}

export interface StepContext {
  readonly users: UserDirectory;
  readonly actors: PresenceActorSystem;
  readonly turn: TurnBuffer;
  readonly changes: ChangeIndex;
  readonly stream: StreamPosition;
  readonly wheel: TimerWheel;
  readonly slices: TimerSlices;
  readonly rules: RuleConfig;
  /** Presence is tracked (`presence.enabled: true`): timers are armed. */
  readonly tracked: () => boolean;
  /** Distributed mode: this process owns the user (runs their timers). */
  readonly owned: (userId: UserId) => boolean;
  /** Counts notified changes. */
  readonly counters: { updates: number };
  /** Metrics hook: a timer of this kind made a timeout step change a user (absent: not computed). */
  readonly timerFired?: ((kind: DeadlineKind) => void) | undefined;
}

export class PresenceSteps {
  private readonly users: UserDirectory;
  private readonly actors: PresenceActorSystem;
  private readonly turn: TurnBuffer;
  private readonly changes: ChangeIndex;
  private readonly stream: StreamPosition;
  private readonly wheel: TimerWheel;
  private readonly slices: TimerSlices;
  private readonly rules: RuleConfig;
  private readonly tracked: () => boolean;
  private readonly owned: (userId: UserId) => boolean;
  private readonly counters: { updates: number };
  private readonly timerFired: ((kind: DeadlineKind) => void) | undefined;
  /** A user's record for their actor's first step (one function for all steps). */
  private readonly restoreRecord = (userId: UserId): UserRecord => this.recordOf(userId);

  constructor(ctx: StepContext) {
    this.users = ctx.users;
    this.actors = ctx.actors;
    this.turn = ctx.turn;
    this.changes = ctx.changes;
    this.stream = ctx.stream;
    this.wheel = ctx.wheel;
    this.slices = ctx.slices;
    this.rules = ctx.rules;
    this.tracked = ctx.tracked;
    this.owned = ctx.owned;
    this.counters = ctx.counters;
    this.timerFired = ctx.timerFired;
  }

  /** Drive one user's actor with one event and record the consequences in the turn. */
  step(userId: UserId, event: PresenceMachineEvent): void {
    const { users, turn } = this;
    const idx = users.indexOf(userId);
    // a re-examination still queued from a timer tick comes first (see TimerSlices)
    if (event.type !== 'timeout' && this.slices.isQueued(idx)) this.slices.runQueued(idx);
    const mine = users.isMineAt(idx);
    const { before, after, outcome } = this.actors.send(userId, mine, this.restoreRecord, event);
    let streamId: number | undefined;
    if (outcome.notify) streamId = this.notified(idx);
    else if (outcome.ping && mine) turn.addPing(after.presence);
    const changed = before !== after || streamId !== undefined;
    const cause = changed ? causeOf(userId, event, before, mine, this.rules) : undefined;
    const ev = changed ? diffRecords(userId, before, after, event.now, streamId, cause) : null;
    if (ev !== null) turn.addEvent(ev);
    if (cause?.timer !== undefined && this.timerFired !== undefined) this.timerFired(cause.timer);
    if (this.tracked()) this.wheel.schedule(idx, nextDeadline(after, mine, this.rules));
    if (isDormant(after)) this.makeDormant(userId, idx, after);
    else if (after !== before) users.storePresence(idx, after.presence);
  }

  /** A timer re-examination of user `user` at tick time `at` (the owner's live or stored users only). */
  reexamine(user: number, at: number): void {
    const id = this.users.idAt(user);
    if ((this.actors.has(id) || this.users.presenceAt[user] !== undefined) && this.owned(id)) this.step(id, { type: 'timeout', now: at });
  }

  /** Distributed mode: a step logged by the user's owner, applied to the record as logged (no timers, no log event). */
  applyLogged(e: UserStepEvent): void {
    const idx = this.users.indexOf(e.userId);
    const after = evolveUser(this.recordOf(e.userId), e);
    if (isDormant(after)) this.makeDormant(e.userId, idx, after);
    else {
      this.users.storePresence(idx, after.presence);
      this.actors.spawn(e.userId, this.users.isMineAt(idx), after);
    }
    if (e.streamId !== undefined) this.notified(idx);
  }

  /** Re-arm a user's timers from their record (when tracked). */
  rearm(userId: UserId): void {
    if (!this.tracked()) return;
    this.wheel.schedule(this.users.indexOf(userId), nextDeadline(this.recordOf(userId), this.users.isMine(userId), this.rules));
  }

  /**
   * Presence disabled (`presence.enabled: false`, spec §2.13, Synapse #19948):
   * every owned user restored with a non-offline state is made offline, status
   * cleared, not currently active, devices and syncs dropped, and notified
   * (logged with a stream id), in turns of {@link FLUSH_BATCH} users.
   */
  flushStale(run: (job: () => void) => void, now: () => number): number {
    const stale: UserId[] = [];
    for (const p of this.users.storedStates()) if (p.state !== 'offline' && this.owned(p.userId)) stale.push(p.userId);
    for (let k = 0; k < stale.length; k += FLUSH_BATCH) {
      run(() => {
        const at = now();
        for (const id of stale.slice(k, k + FLUSH_BATCH)) this.forceOffline(id, at);
      });
    }
    return stale.length;
  }

  /** Each in-flight sync of `userIds`: (user, device, count). */
  openSyncs(userIds: Iterable<UserId>): [UserId, DeviceId, number][] {
    const open: [UserId, DeviceId, number][] = [];
    for (const id of userIds) for (const [d, n] of Object.entries(this.recordOf(id).syncs)) open.push([id, d as DeviceId, n]);
    return open;
  }

  /** `engine.inspect`: the user's record and every timer armed for them. */
  inspect(id: UserId): UserInspection {
    const record = this.recordOf(id);
    const local = this.users.isMine(id);
    const owned = this.owned(id);
    const i = this.users.find(id);
    const deadlines = this.tracked() && owned ? armedDeadlines(record, local, this.rules) : [];
    return { userId: id, local, owned, live: this.actors.has(id), record, openSyncs: record.syncs, deadlines, nextCheckAt: i === undefined ? null : this.wheel.firesAt(i) };
  }

  /** A user's current record: their actor's, else the stored presence of a dormant user, else the default. */
  recordOf(userId: UserId): UserRecord {
    const live = this.actors.record(userId);
    if (live !== undefined) return live;
    const p = this.users.storedPresence(userId);
    return p === undefined ? defaultRecord(userId) : dormantRecord(p);
  }

  private forceOffline(userId: UserId, now: number): void {
    const idx = this.users.indexOf(userId);
    const before = this.recordOf(userId);
    const p = before.presence;
    const presence = { ...p, state: 'offline' as const, lastFederationUpdateTs: now, statusMsg: null, currentlyActive: false };
    const after: UserRecord = { presence, devices: EMPTY_MAP, syncs: EMPTY_MAP };
    const ev = diffRecords(userId, before, after, now, this.notified(idx), FLUSH_CAUSE);
    if (ev !== null) this.turn.addEvent(ev);
    this.makeDormant(userId, idx, after);
  }

  /** A notified change of user `idx` in this turn: next stream id, change index, fan-out list. */
  private notified(idx: number): number {
    const lastStreamId = this.users.lastStreamId;
    this.turn.notified(idx, lastStreamId[idx] as number);
    const streamId = this.stream.next();
    lastStreamId[idx] = streamId;
    this.changes.add(streamId, idx);
    this.counters.updates++;
    return streamId;
  }

  /** Drop a dormant user's actor; keep their presence unless it is the default. */
  private makeDormant(userId: UserId, idx: number, record: UserRecord): void {
    this.actors.release(userId);
    this.users.storePresence(idx, isDefaultRecord(record) ? undefined : record.presence);
  }
}
