/**
 * Timer slicing over the wheel. When a wheel bucket falls due, its users are
 * queued and re-examined in slices, one turn each, the next slice 1 ms later
 * (the shortest timer Node has), so inputs arriving meanwhile wait for one
 * slice, not a whole tick. A slice takes at least `sliceMin` users and a tick
 * is done in at most {@link SLICES_PER_TICK} slices however large it is. Each
 * re-examination uses the tick's time, as an unsliced tick would; a user who
 * sends an input while still queued is re-examined just before it
 * ({@link TimerSlices.runQueued}), so every user's own steps keep their order.
 */
import type { Clock, TimerHandle } from '../clock.js';

/** Fewest users re-examined per turn by default (sized in docs/performance.md). */
export const DEFAULT_TIMER_SLICE = 16;
/** Most turns one timer tick is spread over (a large tick takes bigger slices). */
const SLICES_PER_TICK = 50;

export interface TimerSliceHost {
  /** Run `job` as a turn (or queue it behind the running one). */
  run(job: () => void): void;
  /** Re-examine user `user` at tick time `at` (their `timeout` step). */
  reexamine(user: number, at: number): void;
  /** Number of user indexes in use. */
  readonly userCount: number;
}

export class TimerSlices {
  private queue: number[] = [];
  private head = 0;
  private sliceSize: number;
  /** Per user index: the tick time of their queued re-examination; 0 = none queued. */
  private queuedAt = new Float64Array(1024);
  private drainHandle: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly sliceMin: number,
    private readonly host: TimerSliceHost,
  ) {
    this.sliceSize = sliceMin;
  }

  /** Whether user `user` has a queued re-examination. */
  isQueued(user: number): boolean {
    return user < this.queuedAt.length && this.queuedAt[user] !== 0;
  }

  /** The tick time of user `user`'s queued re-examination, or undefined. */
  queuedTime(user: number): number | undefined {
    return this.isQueued(user) ? (this.queuedAt[user] as number) : undefined;
  }

  /** A wheel tick: queue the due users and start slicing. */
  readonly onTimers = (due: readonly number[], now: number): void => {
    if (this.stopped) return;
    if (this.queuedAt.length < this.host.userCount) {
      const grown = new Float64Array(Math.max(this.host.userCount, this.queuedAt.length * 2));
      grown.set(this.queuedAt);
      this.queuedAt = grown;
    }
    for (const user of due) {
      if (this.queuedAt[user] !== 0) continue; // still queued from an earlier tick
      this.queuedAt[user] = now;
      this.queue.push(user);
    }
    const left = this.queue.length - this.head;
    this.sliceSize = Math.max(this.sliceMin, Math.ceil(left / SLICES_PER_TICK));
    this.host.run(this.slice);
  };

  /** Run user `user`'s queued re-examination now, unless it already ran. */
  runQueued(user: number): void {
    const at = this.queuedAt[user] as number;
    if (at === 0) return;
    this.queuedAt[user] = 0;
    this.host.reexamine(user, at);
  }

  stop(): void {
    this.stopped = true;
    this.drainHandle?.cancel();
    this.drainHandle = null;
  }

  /** The next slice of queued re-examinations; schedules the one after. */
  private readonly slice = (): void => {
    const queue = this.queue;
    const left = queue.length - this.head;
    if (left <= 0) return;
    const end = this.head + Math.min(left, this.sliceSize);
    while (this.head < end) this.runQueued(queue[this.head++] as number);
    if (this.head >= queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.drainHandle === null) {
      this.drainHandle = this.clock.setTimer(1, () => {
        this.drainHandle = null;
        if (!this.stopped) this.host.run(this.slice);
      });
    }
  };
}
