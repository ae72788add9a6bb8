/**
 * One coarse timer for all users (Synapse's wheel timer, spec §1.7). A user is
 * filed under the first bucket boundary at or after their deadline; one clock
 * timer is armed for the earliest bucket. A fired entry only means
 * "re-examine this user": the decision is made against current state.
 *
 * A deadline at or before the current time is filed under the next tick, so a
 * user whose re-examination changes nothing cannot make the wheel spin.
 *
 * Each user sits in at most one bucket (their earliest deadline), so memory is
 * one map entry per user with a pending deadline. Cost: O(1) to schedule,
 * O(log B) to re-arm where B is the number of distinct pending buckets.
 */
import type { Clock, TimerHandle } from './clock.js';

export class TimerWheel<K> {
  private readonly buckets = new Map<number, Set<K>>();
  private readonly bucketOf = new Map<K, number>();
  private armedFor = Infinity;
  private handle: TimerHandle | null = null;
  private readonly keys: number[] = []; // min-heap of bucket times

  constructor(
    private readonly clock: Clock,
    private readonly period: number,
    private readonly onDue: (due: K[], now: number) => void,
  ) {}

  /** Number of users with a pending deadline. */
  get size(): number {
    return this.bucketOf.size;
  }

  /** File `key` for re-examination at `deadline` (ms). `Infinity` cancels. */
  schedule(key: K, deadline: number): void {
    const current = this.bucketOf.get(key);
    if (deadline === Infinity) {
      if (current !== undefined) this.remove(key, current);
      return;
    }
    let at = Math.ceil(deadline / this.period) * this.period;
    // A deadline already due goes to the next tick, never the current instant:
    // a re-examination that changes nothing must not re-fire at the same time forever.
    const now = this.clock.now();
    if (at <= now) at = (Math.floor(now / this.period) + 1) * this.period;
    if (current === at) return;
    if (current !== undefined) this.remove(key, current);
    let set = this.buckets.get(at);
    if (set === undefined) {
      set = new Set();
      this.buckets.set(at, set);
      this.push(at);
    }
    set.add(key);
    this.bucketOf.set(key, at);
    if (at < this.armedFor) this.arm(at);
  }

  cancel(key: K): void {
    this.schedule(key, Infinity);
  }

  stop(): void {
    this.handle?.cancel();
    this.handle = null;
    this.armedFor = Infinity;
  }

  private remove(key: K, at: number): void {
    this.bucketOf.delete(key);
    const set = this.buckets.get(at);
    if (set !== undefined) {
      set.delete(key);
      if (set.size === 0) this.buckets.delete(at); // its heap key is skipped lazily
    }
  }

  private arm(at: number): void {
    this.handle?.cancel();
    this.armedFor = at;
    this.handle = this.clock.setTimer(at - this.clock.now(), () => this.fire());
  }

  private fire(): void {
    this.handle = null;
    this.armedFor = Infinity;
    const now = this.clock.now();
    const due: K[] = [];
    while (this.keys.length > 0 && (this.keys[0] as number) <= now) {
      const at = this.pop();
      const set = this.buckets.get(at);
      if (set === undefined) continue;
      this.buckets.delete(at);
      for (const k of set) {
        this.bucketOf.delete(k);
        due.push(k);
      }
    }
    // Re-arm before running callbacks: they schedule new deadlines.
    while (this.keys.length > 0 && !this.buckets.has(this.keys[0] as number)) this.pop();
    if (this.keys.length > 0) this.arm(this.keys[0] as number);
    if (due.length > 0) this.onDue(due, now);
  }

  private push(v: number): void {
    const h = this.keys;
    h.push(v);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as number) <= v) break;
      h[i] = h[p] as number;
      i = p;
    }
    h[i] = v;
  }

  private pop(): number {
    const h = this.keys;
    const top = h[0] as number;
    const last = h.pop() as number;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && (h[r] as number) < (h[l] as number) ? r : l;
        if ((h[c] as number) >= last) break;
        h[i] = h[c] as number;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
