/**
 * Where each service process can be reached: `<P>:{<P>.service}:url:<instance id>`
 * holds the process's `advertise_url`, refreshed while it runs (a key with a
 * TTL, so a dead process's entry goes away by itself, and a Redis that lost its
 * data is filled in again by the next refresh). The lease of a partition names
 * its owner's instance id (RedisPresenceNode.ownerOf); this turns it into a URL.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../src/index.js';

export class OwnerDirectory {
  private readonly cache = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly tag: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly refreshMs: number,
    private readonly logger: Logger,
  ) {
    this.tag = `${prefix}:{${prefix}.service}`;
  }

  /** Publish this process's address now and keep it fresh. */
  async publish(instanceId: string, url: string): Promise<void> {
    const write = () => this.redis.set(this.key(instanceId), url, 'PX', this.refreshMs * 6);
    await write();
    this.timer = setInterval(() => {
      write().catch((error: unknown) => this.logger.warn(`distributed: could not refresh this process's address in Redis: ${String(error)}`));
    }, this.refreshMs);
    this.timer.unref?.();
  }

  /** The address of a process, or undefined when it published none (not started yet, or gone). */
  async urlOf(instanceId: string): Promise<string | undefined> {
    const cached = this.cache.get(instanceId);
    if (cached !== undefined) return cached;
    const url = await this.redis.get(this.key(instanceId)).catch(() => null);
    if (url === null) return undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(instanceId, url);
    return url;
  }

  /** Stop refreshing and remove this process's entry. */
  async withdraw(instanceId: string): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.redis.del(this.key(instanceId)).catch(() => {});
  }

  private key(instanceId: string): string {
    return `${this.tag}:url:${instanceId}`;
  }
}
