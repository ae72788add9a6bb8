/**
 * Per-user sync notifier: the push side of /sync. The engine hands each
 * listening user the room segments (a room's changed members this turn) and
 * the individual offers (dense user indexes) that concern them; when the
 * engine flushes at the end of the turn, each notifier emits one batch holding
 * the *current* state of each such user once (a user who changed several
 * times, or is seen through several shared rooms, appears once). Segments and
 * offers are emptied every turn, so memory is bounded by one turn's changes,
 * never by the history of changes; consumers slower than the engine coalesce
 * with `coalesceWhileBusy`. Batches are read-only (typed `readonly`): a batch
 * built once for a whole room is shared by its listeners, so a consumer must
 * copy `events` before changing it. They are not frozen (docs/performance.md).
 *
 * Only users with an open stream have a notifier; everyone else costs nothing
 * here and reads on demand with `getNewEvents`.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { UserPresenceState } from '../src/domain/presence.js';
import type { UserId } from '../src/domain/ids.js';

/** Told of each batch a notifier emits (the engine's delivery journal, when on). */
export type BatchSeen = (recipient: UserId, batch: PresenceBatch) => void;

/** One emission on a sync stream: at most one state per user, each the latest at emission time. */
export interface PresenceBatch {
  /** Changed presence, one entry per user. Read-only: listeners of one room may share the same array. */
  readonly events: readonly UserPresenceState[];
  /** The stream token this batch brings the subscriber up to (use as `since` for `getNewEvents`). */
  readonly token: number;
}

/** Router interest cached for a listening user: a set of extra users, or everyone. */
export type CachedInterest = ReadonlySet<UserId> | 'ALL';

/**
 * Marks by user index with generations: `next(userCount)` starts a new
 * generation (growing the array to cover `userCount` users) and
 * `marks[user] === generation` tests membership, so clearing is free. The
 * arrays below are shared by all notifiers of all engines in the process:
 * each is written and read within one `merge` call, which runs no outside
 * code (flushes of two engines can nest, through a subscriber that drives
 * another engine, but merges cannot), and the largest segment's marks are
 * keyed by the segment object itself. The arrays never shrink (they are sized
 * by the largest engine the process has run).
 */
class UserMarks {
  marks = new Int32Array(1024);
  generation = 0;

  next(userCount: number): number {
    if (userCount > this.marks.length) {
      const grown = new Int32Array(Math.max(userCount, this.marks.length * 2));
      grown.set(this.marks);
      this.marks = grown;
    }
    if (this.generation === 0x7fffffff) {
      this.marks.fill(0);
      this.generation = 0;
    }
    return ++this.generation;
  }
}

/** Flush-time de-duplication: users already in the batch being built. */
const seenMarks = new UserMarks();

/**
 * One room's changes in the current turn, shared by every listener in the room.
 * The engine appends each changed member once (`users`), then hands the segment
 * to each listening member: one push per (room, listener) per turn instead of
 * one per (change, listener). A listener whose only source this turn is one
 * room emits the room's batch itself, built once and shared, so a 50k-member
 * room costs one `next` per listener and no copying.
 */
export class RoomSegment {
  /**
   * Changed members this turn, each once, in change order: the first `size`
   * entries. The array keeps its capacity from turn to turn (clearing only
   * resets `size`), so a busy room allocates nothing per turn but its batch.
   * Only `add` and `clear` change the contents (`markLargest` relies on it).
   */
  readonly users: number[] = [];
  private count = 0;
  private shared: PresenceBatch | null = null;

  /** Changed members this turn. */
  get size(): number {
    return this.count;
  }

  add(user: number): void {
    this.users[this.count++] = user;
  }

  /** The batch every single-source listener receives (built on first use, shared: read-only). */
  batch(stateOf: (index: number) => UserPresenceState, token: number): PresenceBatch {
    let b = this.shared;
    if (b === null || b.token !== token) {
      const users = this.users;
      const n = this.count;
      const events: UserPresenceState[] = new Array<UserPresenceState>(n);
      for (let k = 0; k < n; k++) events[k] = stateOf(users[k] as number);
      b = this.shared = { events, token };
    }
    return b;
  }

  /** Forget this turn (after the flush). */
  clear(): void {
    this.count = 0;
    this.shared = null;
    // The marks `markLargest` keeps are of this turn's contents: forget them
    // (and hold no segment past its turn, nor its engine past its life).
    if (markedSegment === this) markedSegment = null;
  }
}

/**
 * Per-listener push state. The per-turn lists (`pending`, `segments`) are used
 * up to their counts and keep their capacity between turns: with hundreds of
 * listeners woken per change, re-growing them every turn was most of the
 * garbage of an input (and so of the minor-GC pauses in the latency tail).
 */
export class SyncNotifier {
  /** Users offered one by one since the last flush (own changes, router interest, joins; may repeat): the first `pendingCount`. */
  readonly pending: number[] = [];
  pendingCount = 0;
  /**
   * Rooms whose changes this listener receives this turn, `segmentCount` of
   * them: the first in `firstSegment`, the others in `moreSegments` (the usual
   * listener gets one room per turn: a field is one memory access, an array two).
   */
  private firstSegment: RoomSegment | null = null;
  private readonly moreSegments: RoomSegment[] = [];
  segmentCount = 0;
  /** The subscribers, and the only one directly when there is exactly one (the usual case; same reason). */
  private readonly subscribers: Subscriber<PresenceBatch>[] = [];
  private sole: Subscriber<PresenceBatch> | null = null;
  /** Router interest, refreshed when the stream opens and on every pull. */
  interest: CachedInterest = EMPTY_INTEREST;
  dirty = false;
  /** The fan-out's one-room flush that already flushed this notifier (PushFanOut). */
  flushStamp = 0;

  constructor(readonly userId: UserId, readonly index: number) {}

  get subscriberCount(): number {
    return this.subscribers.length;
  }

  /** A copy of the subscribers (safe to iterate while they unsubscribe). */
  subscriberList(): Subscriber<PresenceBatch>[] {
    return this.subscribers.slice();
  }

  addSubscriber(s: Subscriber<PresenceBatch>): void {
    this.subscribers.push(s);
    this.sole = this.subscribers.length === 1 ? s : null;
  }

  /** @returns whether `s` was a subscriber. */
  removeSubscriber(s: Subscriber<PresenceBatch>): boolean {
    const k = this.subscribers.indexOf(s);
    if (k < 0) return false;
    this.subscribers.splice(k, 1);
    this.sole = this.subscribers.length === 1 ? (this.subscribers[0] as Subscriber<PresenceBatch>) : null;
    return true;
  }

  offer(changed: number): void {
    this.pending[this.pendingCount++] = changed;
  }

  addSegment(segment: RoomSegment): void {
    if (this.segmentCount === 0) this.firstSegment = segment;
    else this.moreSegments[this.segmentCount - 1] = segment;
    this.segmentCount++;
  }

  private segment(g: number): RoomSegment {
    return (g === 0 ? this.firstSegment : this.moreSegments[g - 1]) as RoomSegment;
  }

  /**
   * Emit pending users' current states, each user once: room segments first,
   * then individual offers. Subscribers are snapshotted first, so
   * (un)subscribing during emission is safe. `userCount` bounds the user indexes.
   * @returns deliveries made (events × subscribers).
   */
  flush(stateOf: (index: number) => UserPresenceState, token: number, userCount: number, view: BatchView | null, seen: BatchSeen | undefined): number {
    const pendingCount = this.pendingCount;
    const segmentCount = this.segmentCount;
    let batch: PresenceBatch;
    if (pendingCount === 0 && segmentCount === 1) {
      batch = (this.firstSegment as RoomSegment).batch(stateOf, token);
    } else if (pendingCount === 1 && segmentCount === 0) {
      batch = { events: [stateOf(this.pending[0] as number)], token };
    } else if (pendingCount === 0 && segmentCount === 0) {
      return 0;
    } else {
      batch = this.merge(stateOf, token, userCount);
    }
    this.pendingCount = 0;
    this.segmentCount = 0;
    this.firstSegment = null;
    if (view !== null || seen !== undefined) return this.emitObserved(batch, view, seen);
    return this.emit(batch);
  }

  /** Emit a room's shared batch as this listener's whole batch (it has nothing else this turn). */
  emitShared(batch: PresenceBatch, view: BatchView | null, seen: BatchSeen | undefined): number {
    if (view !== null || seen !== undefined) return this.emitObserved(batch, view, seen);
    return this.emit(batch);
  }

  /** Policies (docs/policies.md) may mask states for this viewer (a copy: the shared batch is left alone); the journal sees what is emitted. */
  private emitObserved(shared: PresenceBatch, view: BatchView | null, seen: BatchSeen | undefined): number {
    const batch = view === null ? shared : view(this.userId, shared);
    if (batch.events.length === 0) return 0;
    if (seen !== undefined) seen(this.userId, batch);
    return this.emit(batch);
  }

  private emit(batch: PresenceBatch): number {
    const sole = this.sole;
    if (sole !== null) {
      sole.next(batch);
      return batch.events.length;
    }
    const snapshot = this.subscribers.slice();
    for (const sub of snapshot) sub.next(batch);
    return batch.events.length * snapshot.length;
  }

  /**
   * Several sources: mark the largest segment's users (or find them still
   * marked from the previous listener's merge), collect the users of
   * the other segments and of the individual offers not among them (indexes,
   * in the shared `extraAt` scratch), and emit the largest segment's shared
   * batch itself when there are none (the usual case when one user changed and
   * is seen through several rooms); otherwise one array sized exactly for the
   * shared states plus the new ones (no intermediate list, no regrowth: with
   * large batches these arrays are most of the allocation of a flush).
   */
  private merge(stateOf: (index: number) => UserPresenceState, token: number, userCount: number): PresenceBatch {
    const pending = this.pending;
    const segmentCount = this.segmentCount;
    let largest = -1;
    for (let g = 0, most = 0; g < segmentCount; g++) {
      const n = this.segment(g).size;
      if (n > most) (most = n), (largest = g);
    }
    const inLargest = largest >= 0 ? markLargest(this.segment(largest), userCount) : -1;
    const inSegment = segmentMarks.marks;
    const mark = seenMarks.next(userCount);
    const seen = seenMarks.marks;
    let extras = 0;
    let extra = extraAt;
    for (let g = 0; g < segmentCount; g++) {
      if (g === largest) continue;
      const segment = this.segment(g);
      const users = segment.users;
      for (let k = 0; k < segment.size; k++) {
        const i = users[k] as number;
        if (seen[i] === mark || inSegment[i] === inLargest) continue;
        seen[i] = mark;
        if (extras === extra.length) extra = growExtra();
        extra[extras++] = i;
      }
    }
    for (let k = 0; k < this.pendingCount; k++) {
      const i = pending[k] as number;
      if (seen[i] === mark || inSegment[i] === inLargest) continue;
      seen[i] = mark;
      if (extras === extra.length) extra = growExtra();
      extra[extras++] = i;
    }
    if (largest < 0) {
      const events = new Array<UserPresenceState>(extras);
      for (let k = 0; k < extras; k++) events[k] = stateOf(extra[k] as number);
      return { events, token };
    }
    const shared = this.segment(largest).batch(stateOf, token);
    if (extras === 0) return shared;
    const base = shared.events;
    const n = base.length;
    const events = new Array<UserPresenceState>(n + extras);
    for (let k = 0; k < n; k++) events[k] = base[k] as UserPresenceState;
    for (let k = 0; k < extras; k++) events[n + k] = stateOf(extra[k] as number);
    return { events, token };
  }
}

/**
 * Membership of one segment, the last one a merge started from. Consecutive
 * listeners mostly share their largest room (the busiest room of the turn), so
 * it is marked once per flush instead of once per listener.
 */
const segmentMarks = new UserMarks();
/** The segment whose users `segmentMarks` holds (reset by its `clear`), and its size when marked. */
let markedSegment: RoomSegment | null = null;
let markedSize = -1;

/** Mark `segment`'s users in `segmentMarks` (unless it is already the marked one) and return their generation. */
function markLargest(segment: RoomSegment, userCount: number): number {
  if (segment === markedSegment && segment.size === markedSize && userCount <= segmentMarks.marks.length) {
    return segmentMarks.generation;
  }
  const stamp = segmentMarks.next(userCount);
  const marks = segmentMarks.marks;
  const users = segment.users;
  for (let k = 0; k < segment.size; k++) marks[users[k] as number] = stamp;
  markedSegment = segment;
  markedSize = segment.size;
  return stamp;
}

/** Scratch of `merge`: indexes of the users a merged batch adds to its largest segment's (shared: used within one `merge` call). */
let extraAt: Int32Array = new Int32Array(1024);

function growExtra(): Int32Array {
  const grown = new Int32Array(extraAt.length * 2);
  grown.set(extraAt);
  return (extraAt = grown);
}

/** What one viewer may see of a batch (masked or removed states); returns the batch itself when nothing changes. */
export type BatchView = (viewer: UserId, batch: PresenceBatch) => PresenceBatch;

export const EMPTY_INTEREST: ReadonlySet<UserId> = new Set();

/**
 * Build the Observable for one user's stream over a notifier registry.
 * `open` registers the subscriber (creating the notifier on first use);
 * `close` removes it (dropping the notifier when the last one leaves).
 */
export function syncStreamObservable(
  open: (s: Subscriber<PresenceBatch>) => void,
  close: (s: Subscriber<PresenceBatch>) => void,
): Observable<PresenceBatch> {
  return new Observable<PresenceBatch>((subscriber) => {
    open(subscriber);
    return () => close(subscriber);
  });
}
