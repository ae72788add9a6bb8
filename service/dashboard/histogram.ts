/**
 * A log-bucketed histogram of durations in milliseconds: O(1) per sample, a
 * fixed 400-slot array, percentiles within 5 % (each bucket is 5 % wider than
 * the one below). The dashboard keeps one per second and merges them for
 * longer windows.
 */

const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
/** Lower edge of bucket 0: 1 µs. Anything shorter counts as 1 µs. */
const FLOOR_MS = 0.001;
/** 1 µs × 1.05^400 ≈ 300 s: longer samples land in the last bucket. */
const BUCKETS = 400;

export class DurationHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private n = 0;
  private maxMs = 0;
  private sumMs = 0;

  get count(): number {
    return this.n;
  }

  get max(): number {
    return this.maxMs;
  }

  get mean(): number {
    return this.n === 0 ? 0 : this.sumMs / this.n;
  }

  record(ms: number): void {
    if (!(ms >= 0)) return; // NaN or negative (a clock step): not a duration
    const k = ms <= FLOOR_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / FLOOR_MS) / LOG_GROWTH));
    this.counts[k] = (this.counts[k] as number) + 1;
    this.n++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** Add another histogram's samples to this one. */
  merge(other: DurationHistogram): void {
    for (let k = 0; k < BUCKETS; k++) this.counts[k] = (this.counts[k] as number) + (other.counts[k] as number);
    this.n += other.n;
    this.sumMs += other.sumMs;
    if (other.maxMs > this.maxMs) this.maxMs = other.maxMs;
  }

  /** The `p`-th percentile (0 < p ≤ 100), as the upper edge of its bucket (capped at the largest sample); 0 when empty. */
  percentile(p: number): number {
    if (this.n === 0) return 0;
    const rank = Math.ceil((p / 100) * this.n);
    let seen = 0;
    for (let k = 0; k < BUCKETS; k++) {
      seen += this.counts[k] as number;
      if (seen >= rank) return Math.min(this.maxMs, FLOOR_MS * GROWTH ** (k + 1));
    }
    return this.maxMs;
  }

  clear(): void {
    this.counts.fill(0);
    this.n = 0;
    this.maxMs = 0;
    this.sumMs = 0;
  }
}
