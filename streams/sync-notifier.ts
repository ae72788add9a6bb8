/**
 * Per-user sync notifier: the push side of /sync. The engine offers changed
 * users (dense indexes) to the notifiers of users who are listening; each
 * notifier keeps a set of pending changed users (so a user who changes many
 * times, or is seen through several shared rooms, appears once) and, when the
 * engine flushes at the end of a turn, emits one batch holding the *current*
 * state of each pending user. Memory per notifier is bounded by the number of
 * users visible to it, never by the number of changes.
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

export class SyncNotifier {
  readonly pending = new Set<number>();
  readonly subscribers: Subscriber<PresenceBatch>[] = [];
  /** Router interest, refreshed when the stream opens and on every pull. */
  interest: CachedInterest = EMPTY_INTEREST;
  dirty = false;

  constructor(readonly userId: UserId, readonly index: number) {}

  offer(changed: number): void {
    this.pending.add(changed);
  }

  /** Emit pending users' current states. Subscribers are snapshotted first, so (un)subscribing during emission is safe. */
  flush(stateOf: (index: number) => UserPresenceState, token: number): number {
    if (this.pending.size === 0) return 0;
    const events: UserPresenceState[] = [];
    for (const i of this.pending) events.push(stateOf(i));
    this.pending.clear();
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
