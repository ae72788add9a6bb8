/**
 * Per-user sync notifier: the push side of /sync. The engine offers changed
 * users (dense indexes) to the notifiers of users who are listening; each
 * notifier appends them to a pending list and, when the engine flushes at the
 * end of the turn, emits one batch holding the *current* state of each pending
 * user once (a user who changed several times, or is seen through several
 * shared rooms, appears once). Pending lists are emptied every turn, so memory
 * is bounded by one turn's offers, never by the history of changes; consumers
 * slower than the engine coalesce with `coalesceWhileBusy`.
 *
 * Only users with an open stream have a notifier; everyone else costs nothing
 * here and reads on demand with `getNewEvents`.
 */
import { Observable, type Subscriber } from 'rxjs';
import type { UserPresenceState } from '../src/domain/presence.js';
import type { UserId } from '../src/domain/ids.js';

/** One emission on a sync stream: at most one state per user, each the latest at emission time. */
export interface PresenceBatch {
  /** Changed presence, one entry per user. */
  readonly events: readonly UserPresenceState[];
  /** The stream token this batch brings the subscriber up to (use as `since` for `getNewEvents`). */
  readonly token: number;
}

/** Router interest cached for a listening user: a set of extra users, or everyone. */
export type CachedInterest = ReadonlySet<UserId> | 'ALL';

/**
 * Flush-time de-duplication: `seenAt[user] === stamp` marks a user already
 * emitted in the batch being built. One shared array for all notifiers (flushes
 * never interleave) instead of a Set per notifier: with large fan-outs a plain
 * array push per offer is ~4× cheaper than `Set.add` (benchmarks, docs/performance.md).
 */
let seenAt = new Int32Array(1024);
let stamp = 0;

function nextStamp(maxIndex: number): number {
  if (maxIndex >= seenAt.length) {
    const grown = new Int32Array(Math.max(maxIndex + 1, seenAt.length * 2));
    grown.set(seenAt);
    seenAt = grown;
  }
  if (stamp === 0x7fffffff) {
    seenAt.fill(0);
    stamp = 0;
  }
  return ++stamp;
}

export class SyncNotifier {
  /** Offered users since the last flush, in offer order; may repeat (de-duplicated at flush). */
  readonly pending: number[] = [];
  private maxPending = -1;
  readonly subscribers: Subscriber<PresenceBatch>[] = [];
  /** Router interest, refreshed when the stream opens and on every pull. */
  interest: CachedInterest = EMPTY_INTEREST;
  dirty = false;

  constructor(readonly userId: UserId, readonly index: number) {}

  offer(changed: number): void {
    this.pending.push(changed);
    if (changed > this.maxPending) this.maxPending = changed;
  }

  /**
   * Emit pending users' current states, each user once (first-offer order).
   * Subscribers are snapshotted first, so (un)subscribing during emission is safe.
   */
  flush(stateOf: (index: number) => UserPresenceState, token: number): number {
    const pending = this.pending;
    if (pending.length === 0) return 0;
    const events: UserPresenceState[] = [];
    if (pending.length === 1) events.push(stateOf(pending[0] as number));
    else {
      const mark = nextStamp(this.maxPending);
      const seen = seenAt;
      for (let k = 0; k < pending.length; k++) {
        const i = pending[k] as number;
        if (seen[i] === mark) continue;
        seen[i] = mark;
        events.push(stateOf(i));
      }
    }
    pending.length = 0;
    this.maxPending = -1;
    const batch: PresenceBatch = { events, token };
    const subs = this.subscribers.slice();
    for (const s of subs) s.next(batch);
    return events.length * subs.length;
  }
}

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
