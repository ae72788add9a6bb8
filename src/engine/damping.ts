/**
 * Flap damping (docs/policies.md, rules in src/domain/damping.ts): between a
 * committed turn and its delivery. A local user's held change goes to their
 * own streams only; rooms, routers and federation are not woken, and every
 * other viewer's view of the user stays the state they were last shown
 * (through {@link Visibility}). When the hold ends, a release turn logs a
 * `presence.published` event (a stream id, so pulls from any token re-read
 * the user) and the truth is delivered everywhere.
 *
 * Damping state is not logged: a restarted engine shows everyone the truth.
 */
import type { TimerHandle, Clock } from '../clock.js';
import { dampDecision, noteTransition, type DampingRule } from '../domain/damping.js';
import type { PresenceEvent, PublishedEvent } from '../domain/events.js';
import type { UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { UserDirectory } from './user-directory.js';
import type { Visibility } from './visibility.js';

export interface DampingHost {
  /** Run a job as a turn of its own (a release). */
  run(job: () => void): void;
  /** A notified entry of user `idx` in this turn (stream id, change index, changed users); returns its stream id. */
  notify(idx: number): number;
  addEvent(event: PresenceEvent): void;
  /** Offer user `idx`'s current state to their own streams, if they listen. */
  offerOwn(idx: number): void;
  owned(userId: UserId): boolean;
}

interface Damped {
  /** What others were last shown. */
  shown: UserPresenceState;
  /** The hold's timer, when a change is held. */
  timer: TimerHandle | null;
  until: number;
  /** A release turn is delivering this user: show the truth. */
  releasing: boolean;
  transitions: number[];
}

/** Users whose change in `events` came from `PUT /presence` or a module: never held. */
export function explicitUsers(events: readonly PresenceEvent[] | null): ReadonlySet<UserId> {
  const out = new Set<UserId>();
  if (events !== null) for (const e of events) if (e.type === 'user.step' && (e.cause?.input === 'set' || e.cause?.input === 'module')) out.add(e.userId);
  return out;
}

export interface DampingStats {
  /** Changes held back from others. */
  held: number;
  /** Holds released (the truth shown after quiet). */
  released: number;
  /** Visible transitions (presence value changes shown to others). */
  transitions: number;
}

export class Damping {
  readonly stats: DampingStats = { held: 0, released: 0, transitions: 0 };
  private readonly byUser = new Map<UserId, Damped>();
  private scratch: number[] = [];

  constructor(
    private readonly rule: DampingRule,
    private readonly clock: Clock,
    private readonly users: UserDirectory,
    private readonly visibility: Visibility,
    private readonly host: DampingHost,
  ) {}

  /**
   * The first `count` of this turn's changed users, without those whose change
   * is held (those are offered to their own streams only). `explicit`: users
   * whose change came from `PUT /presence` or a module in this turn.
   */
  filter(changed: readonly number[], count: number, explicit: ReadonlySet<UserId>): { changed: readonly number[]; count: number } {
    const out = this.scratch;
    let n = 0;
    const now = this.clock.now();
    for (let c = 0; c < count; c++) {
      const u = changed[c] as number;
      if (this.users.isMineAt(u) && this.host.owned(this.users.idAt(u)) && this.held(u, explicit, now)) this.host.offerOwn(u);
      else out[n++] = u;
    }
    this.scratch = [];
    return { changed: out, count: n };
  }

  /** Stop every hold's timer (the engine stops). */
  stop(): void {
    for (const d of this.byUser.values()) d.timer?.cancel();
  }

  /** Decide for user `u`'s change: true when it is held. */
  private held(u: number, explicit: ReadonlySet<UserId>, now: number): boolean {
    const id = this.users.idAt(u);
    const truth = this.users.stateAt(u);
    const d = this.byUser.get(id);
    if (d === undefined) {
      // First change seen since start: nothing was damped, show it.
      this.byUser.set(id, { shown: truth, timer: null, until: 0, releasing: false, transitions: truth.state === 'offline' ? [] : [now] });
      return false;
    }
    const decision = dampDecision(this.rule, {
      shown: d.shown.state,
      next: truth.state,
      held: d.timer !== null,
      explicit: d.releasing || explicit.has(id),
      transitions: d.transitions,
      now,
    });
    d.releasing = false;
    if (decision.show) {
      this.show(id, d, truth, now);
      return false;
    }
    this.stats.held++;
    if (d.timer === null) this.visibility.setDamped(id, d.shown);
    if (d.timer === null || d.until !== decision.until) {
      d.timer?.cancel();
      d.until = decision.until;
      d.timer = this.clock.setTimer(decision.until - now, () => this.host.run(() => this.release(id)));
    }
    return true;
  }

  private show(id: UserId, d: Damped, truth: UserPresenceState, now: number): void {
    if (truth.state !== d.shown.state) {
      d.transitions = noteTransition(this.rule, d.transitions, now);
      this.stats.transitions++;
    }
    d.shown = truth;
    if (d.timer !== null) {
      d.timer.cancel();
      d.timer = null;
      this.visibility.setDamped(id, null);
    }
  }

  /** The hold ended: a logged, notified entry; the turn's delivery shows the truth to everyone. */
  private release(id: UserId): void {
    const d = this.byUser.get(id);
    if (d === undefined || d.timer === null) return;
    d.timer = null;
    this.visibility.setDamped(id, null);
    d.releasing = true;
    this.stats.released++;
    const idx = this.users.indexOf(id);
    const streamId = this.host.notify(idx);
    const event: PublishedEvent = { type: 'presence.published', userId: id, streamId, at: this.clock.now() };
    this.host.addEvent(event);
  }
}
