import type { Clock, TimerHandle } from '../clock.js';

/**
 * A clock that only moves when told to. `advance(ms)` runs due timers in time
 * order (timers scheduled by timers included), so tests can cover days of
 * simulated time in milliseconds.
 */
export class SimulatedClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.time + Math.max(0, delayMs), fn });
    return { cancel: () => this.timers.delete(id) };
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.timers.size;
  }

  /** Move time forward by `ms`, running every timer that falls due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('advance() takes a non-negative number of milliseconds');
    const target = this.time + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, t] of this.timers) {
        if (t.at <= target && (t.at < nextAt || (t.at === nextAt && id < nextId))) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId < 0) break;
      const t = this.timers.get(nextId);
      this.timers.delete(nextId);
      this.time = Math.max(this.time, nextAt);
      t?.fn();
    }
    this.time = target;
  }

  /**
   * Advance and let promise callbacks (async router answers) run in between.
   * Pending callbacks run first, so an answer that is already available is not
   * overtaken by a deadline timer falling due during the advance.
   */
  async advanceAsync(ms: number, stepMs = ms): Promise<void> {
    await flushMicrotasks();
    let left = ms;
    while (left > 0) {
      const d = Math.min(stepMs, left);
      this.advance(d);
      left -= d;
      await flushMicrotasks();
    }
    await flushMicrotasks();
  }
}

/** Let pending promise callbacks run. */
export async function flushMicrotasks(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
