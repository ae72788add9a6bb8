/**
 * `coalesceWhileBusy(work)`: for slow consumers of a sync stream. While `work`
 * (a promise-returning handler) is running for one batch, later batches are
 * merged into one pending batch keyed by user id (latest state wins, latest
 * token wins), so memory stays bounded by the number of distinct users instead
 * of growing with every update. When `work` settles, the merged batch is handed
 * to it next. Errors from `work` are forwarded to the output.
 */
import { Observable, type OperatorFunction } from 'rxjs';
import type { UserId } from '../src/domain/ids.js';
import type { UserPresenceState } from '../src/domain/presence.js';
import type { PresenceBatch } from './sync-notifier.js';

export function mergeBatches(a: PresenceBatch, b: PresenceBatch): PresenceBatch {
  const byUser = new Map<UserId, UserPresenceState>();
  for (const s of a.events) byUser.set(s.userId, s);
  for (const s of b.events) {
    byUser.delete(s.userId); // re-insert so the order follows the latest change
    byUser.set(s.userId, s);
  }
  return { events: [...byUser.values()], token: Math.max(a.token, b.token) };
}

export function coalesceWhileBusy<R>(work: (batch: PresenceBatch) => Promise<R>): OperatorFunction<PresenceBatch, R> {
  return (source) =>
    new Observable<R>((out) => {
      let busy = false;
      let pending: PresenceBatch | null = null;
      let sourceDone = false;
      const run = (batch: PresenceBatch): void => {
        busy = true;
        work(batch).then(
          (r) => {
            out.next(r);
            busy = false;
            if (pending !== null) {
              const next = pending;
              pending = null;
              run(next);
            } else if (sourceDone) out.complete();
          },
          (err: unknown) => out.error(err),
        );
      };
      const sub = source.subscribe({
        next: (batch) => {
          if (busy) pending = pending === null ? batch : mergeBatches(pending, batch);
          else run(batch);
        },
        error: (err: unknown) => out.error(err),
        complete: () => {
          sourceDone = true;
          if (!busy && pending === null) out.complete();
        },
      });
      return () => sub.unsubscribe();
    });
}
