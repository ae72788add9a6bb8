/**
 * The Redis settings a distributed deployment relies on (docs/distributed.md,
 * "Deployment recipe"), checked once at start-up: each finding says what can go
 * wrong and which setting fixes it.
 */
import { Cluster, Redis } from 'ioredis';
import { ConfigError, LogError } from '../errors.js';
import { describeRedisTarget, parseRedisUrl } from '../redis-url.js';
import type { Logger } from '../logger.js';
import { withTimeout, type RedisPresenceNodeOptions } from './redis-node-types.js';

export interface SettingsCheck {
  /** Findings; empty when every setting is as recommended. */
  readonly findings: string[];
  /** False when `CONFIG GET` is not allowed (renamed or ACL): nothing could be checked. */
  readonly checked: boolean;
}

export async function checkRedisSettings(redis: Redis, waitReplicas: number): Promise<SettingsCheck> {
  const get = async (name: string): Promise<string | undefined> => {
    const reply = (await redis.config('GET', name)) as string[];
    return reply[1];
  };
  let appendonly: string | undefined;
  let appendfsync: string | undefined;
  let policy: string | undefined;
  let minReplicas: string | undefined;
  try {
    [appendonly, appendfsync, policy, minReplicas] = await Promise.all([get('appendonly'), get('appendfsync'), get('maxmemory-policy'), get('min-replicas-to-write')]);
  } catch {
    return { findings: ['CONFIG GET is not allowed, so the persistence settings could not be checked; see docs/distributed.md for the ones required'], checked: false };
  }
  const findings: string[] = [];
  if (appendonly !== 'yes') {
    findings.push('appendonly is not yes: a Redis restart loses the presence streams and leases (detected and re-seeded from the processes\' views, but a process that dies meanwhile takes its last changes with it); set appendonly yes');
  } else if (appendfsync !== 'always') {
    findings.push(`appendfsync is ${String(appendfsync)}: a Redis crash can lose acknowledged writes of the last second; set appendfsync always (or use waitReplicas with replicas)`);
  }
  if (policy !== undefined && policy !== 'noeviction') {
    findings.push(`maxmemory-policy is ${policy}: Redis may evict leases or streams under memory pressure; set maxmemory-policy noeviction`);
  }
  if (waitReplicas > 0 && Number(minReplicas ?? '0') < waitReplicas) {
    findings.push(`min-replicas-to-write is ${String(minReplicas)} with waitReplicas ${waitReplicas}: the primary accepts writes no replica has; set min-replicas-to-write ${waitReplicas}`);
  }
  return { findings, checked: true };
}

/**
 * Connect to the Redis of a distributed process: command timeout, start-up
 * within `connectTimeoutMs`, the persistence settings checked (`redisSettings`:
 * warn, refuse or ignore), and connection errors reported at most every 5 s.
 * @throws LogError when Redis cannot be reached; ConfigError when its settings are refused.
 */
export async function connectRedis(url: string, options: RedisPresenceNodeOptions, logger: Logger): Promise<{ redis: Redis; onError: (error: Error) => void }> {
  // A command timeout: a Redis that stops answering must not hang renewals, appends or reads (a silent
  // process would keep believing it owns its partitions).
  const redis = options.connect?.(url) ?? openRedis(url, commandTimeoutOf(options));
  redis.on('error', () => {}); // reported below once connected; start-up failures surface as LogError
  try {
    await withTimeout(redis.status === 'wait' ? redis.connect().then(() => redis.ping()) : redis.ping(), options.connectTimeoutMs ?? 10_000);
  } catch (error) {
    redis.disconnect();
    throw new LogError(`cannot reach Redis (${describeRedisTarget(parseRedisUrl(url))}): ${(error as Error).message}; check log.url and that Redis is running`, { cause: error });
  }
  let lastReport = 0;
  const onError = (error: Error): void => {
    // ioredis reconnects by itself; report at most once every 5 s.
    const now = Date.now();
    if (now - lastReport < 5_000) return;
    lastReport = now;
    logger.warn(`redis node: connection error (reconnecting): ${error.message}`);
  };
  redis.on('error', onError);
  const settings = options.redisSettings ?? 'warn';
  if (settings !== 'ignore') {
    const { findings } = await checkRedisSettings(redis, options.waitReplicas ?? 0);
    if (findings.length > 0 && settings === 'refuse') {
      redis.disconnect();
      throw new ConfigError('log.url', `the Redis at ${url} is not set up for durable presence: ${findings.join('; ')} (or start with redisSettings: 'warn')`);
    }
    for (const f of findings) logger.warn(`redis node: ${f}`);
  }
  return { redis, onError };
}

/**
 * A client for the Redis `log.url` names (src/redis-url.ts): one Redis, a
 * Sentinel-managed primary or a Cluster, not yet connected. The Cluster client
 * has no auto-pipelining (with it, ioredis reports MOVED after a fail-over as
 * an error instead of following it); it is typed as `Redis`, whose commands it
 * shares (RedisPresenceNode tells the two apart by `isCluster`).
 * @throws ConfigError for a URL that names none of them.
 */
export function openRedis(url: string, commandTimeout: number): Redis {
  const target = parseRedisUrl(url);
  switch (target.kind) {
    case 'single':
      return new Redis(url, { lazyConnect: true, enableAutoPipelining: true, commandTimeout });
    case 'sentinel':
      return new Redis({
        sentinels: target.sentinels.map((h) => ({ host: h.host, port: h.port })),
        name: target.primary,
        ...credentialsOf(target),
        lazyConnect: true,
        enableAutoPipelining: true,
        commandTimeout,
      });
    case 'cluster':
      return new Cluster(
        target.nodes.map((h) => ({ host: h.host, port: h.port })),
        { lazyConnect: true, redisOptions: { commandTimeout, ...credentialsOf(target) } },
      ) as unknown as Redis;
  }
}

/** The URL's credentials as ioredis options (only those given). */
function credentialsOf(target: { readonly username?: string; readonly password?: string }): { username?: string; password?: string } {
  return { ...(target.username !== undefined ? { username: target.username } : {}), ...(target.password !== undefined ? { password: target.password } : {}) };
}

/** A second connection like `redis` with another command timeout (a Cluster client's `duplicate` takes its options second). */
export function duplicateWithTimeout(redis: Redis, cluster: boolean, commandTimeout: number): Redis {
  if (!cluster) return redis.duplicate({ commandTimeout });
  const c = redis as unknown as Cluster;
  const { redisOptions } = c.options;
  return c.duplicate([], { redisOptions: { ...(redisOptions as Record<string, unknown>), commandTimeout } }) as unknown as Redis;
}

/** Each Redis command's timeout: a third of the lease unless set. */
export function commandTimeoutOf(options: Pick<RedisPresenceNodeOptions, 'commandTimeoutMs' | 'leaseTtlMs'>): number {
  return options.commandTimeoutMs ?? Math.max(100, Math.floor((options.leaseTtlMs ?? 10_000) / 3));
}
