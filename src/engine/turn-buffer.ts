/**
 * What the current turn has done, waiting for its commit: the events to
 * append, the users whose change was notified (each once), live joins,
 * keep-alive pings and full-presence requests. The lists keep their storage
 * from turn to turn, so a one-input turn allocates nothing here.
 */
import type { PresenceEvent } from '../domain/events.js';
import type { UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { Room } from './room-index.js';

/** Longest list kept for reuse after a turn (a `batch(256)` turn fits). */
const KEEP = 4096;
const NONE: readonly never[] = [];

export class TurnBuffer {
  private readonly events: (PresenceEvent | undefined)[] = [];
  private eventCount = 0;
  private changed: number[] = [];
  private changedSpare: number[] = [];
  private changedCount = 0;
  /**
   * The stream id at the last commit: a user whose last stream id is above it
   * was notified in this turn and is already listed (no per-turn set to clear).
   */
  base = 0;
  private joins: [number, Room][] = [];
  private pings: UserPresenceState[] = [];
  private full: UserId[] = [];

  addEvent(event: PresenceEvent): void {
    this.events[this.eventCount++] = event;
  }

  /** User `user` had a notified change; `lastStreamId` is their stream id before it. */
  notified(user: number, lastStreamId: number): void {
    if (lastStreamId <= this.base) this.changed[this.changedCount++] = user;
  }

  addJoin(user: number, room: Room): void {
    this.joins.push([user, room]);
  }

  addPing(state: UserPresenceState): void {
    this.pings.push(state);
  }

  addFullRequests(users: readonly UserId[]): void {
    this.full.push(...users);
  }

  /** The turn's events in a list of their own (the log keeps it), or null when none. */
  takeEvents(): PresenceEvent[] | null {
    const count = this.eventCount;
    if (count === 0) return null;
    const scratch = this.events;
    const events = new Array<PresenceEvent>(count);
    for (let k = 0; k < count; k++) {
      events[k] = scratch[k] as PresenceEvent;
      scratch[k] = undefined;
    }
    this.eventCount = 0;
    if (scratch.length > KEEP) scratch.length = 0; // after a huge turn, do not hold its size
    return events;
  }

  /** Number of users {@link takeChanged} will hand over. */
  get changedUsers(): number {
    return this.changedCount;
  }

  /**
   * The notified users (the first {@link changedUsers} entries), handed over
   * until the next call: the list is swapped with a spare, so a change recorded
   * while the caller walks it cannot overwrite it.
   */
  takeChanged(): readonly number[] {
    const changed = this.changed;
    if (this.changedCount > 0) {
      if (this.changedSpare.length > KEEP) this.changedSpare = [];
      this.changed = this.changedSpare;
      this.changedSpare = changed;
      this.changedCount = 0;
    }
    return changed;
  }

  takeJoins(): readonly (readonly [number, Room])[] {
    const joins = this.joins;
    if (joins.length === 0) return NONE;
    this.joins = [];
    return joins;
  }

  takePings(): readonly UserPresenceState[] {
    const pings = this.pings;
    if (pings.length === 0) return NONE;
    this.pings = [];
    return pings;
  }

  takeFullRequests(): readonly UserId[] {
    const full = this.full;
    if (full.length === 0) return NONE;
    this.full = [];
    return full;
  }
}
