/** Per-user token bucket (Synapse `rc_presence.per_user`): `burstCount` tokens, refilled at `perSecond`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private pruneAt = 10_000;
  constructor(private readonly perSecond: number, private readonly burst: number) {}

  /** Take one token; returns 0 when allowed, else the milliseconds until one is available. */
  take(key: string, now: number): number {
    const b = this.buckets.get(key);
    let tokens = this.burst;
    if (b !== undefined) tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    if (tokens >= 1) {
      if (b !== undefined) {
        b.tokens = tokens - 1;
        b.at = now;
      } else {
        this.buckets.set(key, { tokens: tokens - 1, at: now });
        this.prune(now);
      }
      return 0;
    }
    return Math.ceil(((1 - tokens) / this.perSecond) * 1000);
  }

  /**
   * Forget buckets that have refilled completely (keeps memory bounded by recent callers).
   * The scan runs when the map has doubled since the last one, so its cost is
   * amortised O(1) per take (a scan on every take was O(n²) when more than 10k
   * users called within one refill period: minutes at 100k users, benchmarks).
   */
  private prune(now: number): void {
    if (this.buckets.size < this.pruneAt) return;
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
    }
    this.pruneAt = Math.max(10_000, this.buckets.size * 2);
  }
}
