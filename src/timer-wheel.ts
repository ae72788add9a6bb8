/**
 * One coarse timer for all users (Synapse's wheel timer, spec §1.7). A user is
 * filed under the first bucket boundary at or after their deadline; one clock
 * timer is armed for the earliest bucket. A fired entry only means
 * "re-examine this user": the decision is made against current state.
 *
 * A deadline at or before the current time is filed under the next tick, so a
 * user whose re-examination changes nothing cannot make the wheel spin.
 *
 * Users are keys 0, 1, 2, … (the engine's dense user index). Each user sits in
 * at most one bucket (their earliest deadline): `bucketOf[key]` says which, and
 * a bucket is a plain array of keys with a live count. Moving a user leaves a
 * stale entry in the old bucket (skipped when it fires, because `bucketOf` no
 * longer names it) instead of deleting from a set; a bucket whose entries are
 * mostly stale is compacted, so a bucket holds at most about four entries per
 * live user. Cost: O(1) amortised to schedule, O(log B) to re-arm where B is
 * the number of distinct pending buckets; no allocation per schedule beyond
 * array growth.
 */
import type { Clock, TimerHandle } from './clock.js';

interface Bucket {
  readonly keys: number[];
  live: number;
}

export class TimerWheel {
  private readonly buckets = new Map<number, Bucket>();
  /** Bucket time of each key; 0 = none (bucket times are always after time 0). */
  private bucketOf = new Float64Array(1024);
  private live = 0;
  private armedFor = Infinity;
  private handle: TimerHandle | null = null;
  private readonly times: number[] = []; // min-heap of bucket times

  constructor(
    private readonly clock: Clock,
    private readonly period: number,
    private readonly onDue: (due: number[], now: number) => void,
  ) {}

  /** Number of users with a pending deadline. */
  get size(): number {
    return this.live;
  }

  /** File `key` (a non-negative integer) for re-examination at `deadline` (ms). `Infinity` cancels. */
  schedule(key: number, deadline: number): void {
    if (deadline === Infinity) {
      // a key past the end has nothing to cancel (and needs no slot)
      const current = key < this.bucketOf.length ? (this.bucketOf[key] as number) : 0;
      if (current !== 0) this.remove(key, current);
      return;
    }
    if (key >= this.bucketOf.length) this.grow(key);
    const current = this.bucketOf[key] as number;
    let at = Math.ceil(deadline / this.period) * this.period;
    // A deadline already due goes to the next tick, never the current instant:
    // a re-examination that changes nothing must not re-fire at the same time forever.
    const now = this.clock.now();
    if (at <= now) at = (Math.floor(now / this.period) + 1) * this.period;
    if (current === at) return;
    if (current !== 0) this.remove(key, current);
    let bucket = this.buckets.get(at);
    if (bucket === undefined) {
      bucket = { keys: [], live: 0 };
      this.buckets.set(at, bucket);
      this.push(at);
    }
    bucket.keys.push(key);
    bucket.live++;
    this.live++;
    this.bucketOf[key] = at;
    if (at < this.armedFor) this.arm(at);
  }

  /** The tick that will re-examine `key` (its deadline rounded up to the wheel period), or null when nothing is armed. */
  firesAt(key: number): number | null {
    const at = key < this.bucketOf.length ? (this.bucketOf[key] as number) : 0;
    return at === 0 ? null : at;
  }

  cancel(key: number): void {
    this.schedule(key, Infinity);
  }

  stop(): void {
    this.handle?.cancel();
    this.handle = null;
    this.armedFor = Infinity;
  }

  private grow(key: number): void {
    const next = new Float64Array(Math.max(key + 1, this.bucketOf.length * 2));
    next.set(this.bucketOf);
    this.bucketOf = next;
  }

  private remove(key: number, at: number): void {
    this.bucketOf[key] = 0;
    this.live--;
    const bucket = this.buckets.get(at);
    if (bucket === undefined) return;
    if (--bucket.live === 0) {
      this.buckets.delete(at); // its heap entry is skipped lazily
      return;
    }
    const keys = bucket.keys;
    if (keys.length > 32 && keys.length > 4 * bucket.live) {
      // Keep each live key once (a key that left and came back has two entries):
      // a kept key is marked with -at until the pass ends.
      const bucketOf = this.bucketOf;
      let w = 0;
      for (let r = 0; r < keys.length; r++) {
        const k = keys[r] as number;
        if (bucketOf[k] === at) {
          bucketOf[k] = -at;
          keys[w++] = k;
        }
      }
      keys.length = w;
      for (let r = 0; r < w; r++) bucketOf[keys[r] as number] = at;
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
    const due: number[] = [];
    while (this.times.length > 0 && (this.times[0] as number) <= now) {
      const at = this.pop();
      const bucket = this.buckets.get(at);
      if (bucket === undefined) continue;
      this.buckets.delete(at);
      for (const k of bucket.keys) {
        // stale entries (the key moved to another bucket, or was already taken from this one) are skipped
        if (this.bucketOf[k] !== at) continue;
        this.bucketOf[k] = 0;
        due.push(k);
      }
      this.live -= bucket.live;
    }
    // Re-arm before running callbacks: they schedule new deadlines.
    while (this.times.length > 0 && !this.buckets.has(this.times[0] as number)) this.pop();
    if (this.times.length > 0) this.arm(this.times[0] as number);
    if (due.length > 0) this.onDue(due, now);
  }

  private push(v: number): void {
    const h = this.times;
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
    const h = this.times;
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
