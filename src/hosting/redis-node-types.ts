/** Public types of a distributed engine process (src/hosting/redis-node.ts). */
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import type { HomeserverConfigInput, PresenceConfig } from '../config.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { EngineStats } from '../engine.js';
import { PresenceError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RedisLogStats } from '../log/redis-log.js';
import type { ReplicatorStats } from '../log/redis-replicator.js';

/** The user belongs to a partition this process does not own: route the request to `ownerOf(userId)`. */
export class NotOwnerError extends PresenceError {
  readonly code = 'NOT_OWNER' as const;
  constructor(
    readonly userId: string,
    readonly partition: number,
    readonly instanceId: string,
  ) {
    super(`${userId} (partition ${partition}) is not owned by presence process ${instanceId}; route the request to the owner (RedisPresenceNode.ownerOf)`);
  }
}

export interface RedisPresenceNodeOptions {
  /** A config whose `log` is `{ kind: redis, url, partitions, stream_prefix }`. */
  readonly config: PresenceConfig | HomeserverConfigInput;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** A readable name for this process; a random suffix makes each incarnation's instance id unique. */
  readonly name?: string;
  /** Writer lease time-to-live (ms): the failover bound is about this plus `renewIntervalMs`. Default 10 000. */
  readonly leaseTtlMs?: number;
  /** Lease renewal, heartbeat and balancing period (ms). Default `leaseTtlMs / 3`. */
  readonly renewIntervalMs?: number;
  /** Never own more than this many partitions (e.g. a read-only follower: 0). Default: no cap. */
  readonly maxPartitions?: number;
  /** Connect to Redis (default `new Redis(url)`); the node also duplicates it for its blocking reader. */
  readonly connect?: (url: string) => Redis;
  /** Give up start-up when Redis does not answer within this many ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** Compact an owned partition after this many events logged here since its last checkpoint (0: never). Default 100 000. */
  readonly compactEvery?: number;
}

/** A sync token of a distributed process: `<instance id>~<engine token>`. Tokens of another process (or incarnation) get a full answer. */
export type DistributedToken = string;

export interface DistributedNewEvents {
  readonly events: UserPresenceState[];
  readonly nextToken: DistributedToken;
  readonly full: boolean;
}

export interface OwnershipChange {
  readonly partition: number;
  /** `acquired`: replayed and running the partition's users; `released`: handed over on purpose; `lost`: the lease expired or was fenced. */
  readonly change: 'acquired' | 'released' | 'lost';
}

export interface RedisNodeStats {
  readonly instanceId: string;
  readonly ownedPartitions: readonly number[];
  readonly liveNodes: number;
  readonly log: Readonly<RedisLogStats>;
  readonly replicator: Readonly<ReplicatorStats>;
  readonly engine: Readonly<EngineStats>;
}


export function isParsedConfig(c: PresenceConfig | HomeserverConfigInput): c is PresenceConfig {
  return typeof (c as PresenceConfig).serverName === 'string' && (c as PresenceConfig).timers !== undefined;
}

/** `p`, or a rejection after `ms` milliseconds. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
