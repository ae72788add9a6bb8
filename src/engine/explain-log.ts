/**
 * `engine.explain`: read the log's retained window and explain one user
 * (src/domain/explain.ts). The window is what the log still holds: the
 * in-memory log's `retain` newest entries, or a file log's segments since its
 * oldest kept snapshot; the explanation says when older history is gone.
 */
import { explainUser, type ExplainedStep, type Explanation } from '../domain/explain.js';
import type { UserId } from '../domain/ids.js';
import type { PresenceTimers } from '../domain/presence.js';
import { InvalidInputError } from '../errors.js';
import type { EventLog } from '../log/event-log.js';
import type { DeliveryJournal } from './delivery-journal.js';

export function explainFromLog(log: EventLog, userId: UserId, since: number | undefined, timers: PresenceTimers): Explanation {
  if (since !== undefined && (!Number.isSafeInteger(since) || since < 0)) throw new InvalidInputError('since', 'a log position: a whole number ≥ 0');
  const first = firstReadable(log);
  return explainUser(userId, log.read(first), { readFrom: first, complete: first <= (since ?? 0), timers, ...(since !== undefined ? { since } : {}) });
}

/** Attach to each notified step who was handed that state while it was current (steps are newest first). */
export function withDeliveries(e: Explanation, journal: DeliveryJournal, withIds: boolean): Explanation {
  let upper = Number.POSITIVE_INFINITY;
  const steps: ExplainedStep[] = e.steps.map((step) => {
    if (step.streamId === undefined) return step;
    const deliveredTo = journal.deliveredBetween(e.userId, step.streamId, upper, withIds);
    upper = step.streamId;
    return { ...step, deliveredTo };
  });
  return { ...e, steps };
}

/** The position before the oldest entry `log` can still read (through decorators that expose `inner`). */
function firstReadable(log: EventLog): number {
  let l: unknown = log;
  for (let depth = 0; depth < 8 && typeof l === 'object' && l !== null; depth++) {
    const o = l as { firstReadable?: unknown; firstPosition?: unknown; inner?: unknown };
    if (typeof o.firstReadable === 'number') return o.firstReadable;
    if (typeof o.firstPosition === 'number') return o.firstPosition;
    l = o.inner;
  }
  return 0;
}
