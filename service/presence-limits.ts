/**
 * `rc_presence.per_user`, applied by the service as Synapse applies it: the
 * presence servlet (`PUT /presence/{userId}/status`) and the sync servlet
 * (`/sync?set_presence=`) each own a limiter, so they do not take from one
 * bucket. (With the production default of 0.1/s and a burst of 1, one
 * shared bucket turned a sync followed a second later by a PUT into a 429,
 * and silently ignored a sync's presence right after a PUT.)
 *
 * The engine applies `rc_presence` too, from one bucket for both inputs; the
 * service builds its engine with that limit lifted (engine-factory.ts) so only
 * these two apply.
 */
import { RateLimitedError, type Clock, type UserId } from '../src/index.js';
import { RateLimiter } from '../src/rate-limit.js';

export class PresenceRateLimits {
  private readonly set: RateLimiter;
  private readonly sync: RateLimiter;

  constructor(
    rate: { readonly perSecond: number; readonly burstCount: number },
    private readonly clock: Clock,
  ) {
    this.set = new RateLimiter(rate.perSecond, rate.burstCount);
    this.sync = new RateLimiter(rate.perSecond, rate.burstCount);
  }

  /** Take a token for an explicit change. @throws RateLimitedError (429) over the limit. */
  takeForSet(userId: UserId): void {
    const wait = this.set.take(userId, this.clock.now());
    if (wait > 0) throw new RateLimitedError(userId, wait);
  }

  /** Take a token for a sync that would affect presence; false over the limit (the sync is served without affecting presence). */
  takeForSync(userId: UserId): boolean {
    return this.sync.take(userId, this.clock.now()) === 0;
  }
}
