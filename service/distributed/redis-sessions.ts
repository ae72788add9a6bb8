/**
 * Sessions of a distributed deployment, shared by every service process in
 * Redis, so a token issued by `/login` on one process works on all of them
 * (a client moved by a load balancer after a failover keeps its token).
 *
 * Stored as in the sessions file: only the token's SHA-256, with the user,
 * device and creation time (`<P>:{<P>.service}:sessions`, a hash), plus a
 * sorted set per user for the per-user bound. `prepare(token)` reads the
 * token's entry before each request (one HGET), so a logout on one process
 * ends the session everywhere at once; while Redis does not answer, a token
 * this process has already seen keeps working and an unknown one gets 503
 * (not 401, which would log the client out).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { UserIdSchema, type Logger, type UserId } from '../../src/index.js';
import { MatrixHttpError } from '../http.js';
import { digest, type Session, type SessionBackend } from '../sessions.js';

const StoredSchema = z.strictObject({ user_id: UserIdSchema, device_id: z.string().min(1).max(255), created_at: z.number().int().nonnegative() });

export class RedisSessionStore implements SessionBackend {
  /** token digest → session (null: known not to exist), as last read from Redis. */
  private readonly cache = new Map<string, Session | null>();
  private readonly hash: string;
  private readonly tag: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly maxPerUser: number,
    private readonly logger: Logger,
  ) {
    // One hash tag: the hash and the per-user sets sit in one slot (one MULTI on Redis Cluster too).
    this.tag = `${prefix}:{${prefix}.service}`;
    this.hash = `${this.tag}:sessions`;
  }

  lookup(token: string): Session | undefined {
    return this.cache.get(digest(token)) ?? undefined;
  }

  async prepare(token: string): Promise<void> {
    const d = digest(token);
    let raw: string | null;
    try {
      raw = await this.redis.hget(this.hash, d);
    } catch (error) {
      if (this.cache.has(d)) return; // keep the last answer while Redis is away
      this.logger.warn(`sessions: Redis did not answer a session lookup: ${(error as Error).message}`);
      throw new MatrixHttpError(503, 'M_UNKNOWN', 'The session store (Redis) is unreachable; retry shortly.');
    }
    if (raw === null) {
      this.cache.delete(d);
      return;
    }
    const parsed = StoredSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) {
      this.logger.warn('sessions: a malformed session entry in Redis was ignored');
      this.cache.delete(d);
      return;
    }
    // Bounded: only tokens presented to this process are cached.
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(d, { userId: parsed.data.user_id, deviceId: parsed.data.device_id, createdAt: parsed.data.created_at });
  }

  async issue(userId: UserId, deviceId: string, now: number): Promise<string> {
    const token = `pe_${randomBytes(32).toString('base64url')}`;
    const d = digest(token);
    const perUser = this.userKey(userId);
    await this.redis
      .multi()
      .hset(this.hash, d, JSON.stringify({ user_id: userId, device_id: deviceId, created_at: now }))
      .zadd(perUser, now, d)
      .exec();
    // Bound each user's sessions: the oldest ones end first.
    const excess = await this.redis.zrange(perUser, '0', String(-(this.maxPerUser + 1)));
    if (excess.length > 0) await this.redis.multi().hdel(this.hash, ...excess).zrem(perUser, ...excess).exec();
    this.cache.set(d, { userId, deviceId, createdAt: now });
    return token;
  }

  async revoke(token: string): Promise<boolean> {
    const d = digest(token);
    const session = this.cache.get(d) ?? undefined;
    this.cache.delete(d);
    const removed = await this.redis.hdel(this.hash, d);
    if (session !== undefined) await this.redis.zrem(this.userKey(session.userId), d);
    return removed > 0;
  }

  async revokeAll(userId: UserId): Promise<number> {
    const perUser = this.userKey(userId);
    const all = await this.redis.zrange(perUser, '0', '-1');
    for (const d of all) this.cache.delete(d);
    if (all.length === 0) return 0;
    const [[, removed]] = ((await this.redis.multi().hdel(this.hash, ...all).del(perUser).exec()) ?? [[null, 0]]) as [[unknown, number]];
    return Number(removed);
  }

  private userKey(userId: string): string {
    return `${this.tag}:user:${userId}`;
  }
}
