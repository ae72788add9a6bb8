/** Public types of a distributed engine process (src/hosting/redis-node.ts). */
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import type { HomeserverConfigInput, PresenceConfig } from '../config.js';
import type { PresenceEvent } from '../domain/events.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { EngineStats, SyncHandle } from '../engine.js';
import { PresenceError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RedisLogStats } from '../log/redis-log.js';
import type { ReplicatorStats } from '../log/redis-replicator.js';
import type { DataLossStats } from './redis-recovery.js';

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
  /**
   * Connect to Redis (default `new Redis(url)`); the node also duplicates it for its
   * blocking reader. Return an ioredis `Cluster` (cast to Redis) to run on Redis
   * Cluster: partitions are read one XREAD per slot (polled every `clusterPollMs`).
   */
  readonly connect?: (url: string) => Redis;
  /** Give up start-up when Redis does not answer within this many ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /**
   * Acknowledge an input only after `WAIT` confirms this many Redis replicas
   * got its entry (0: the primary is enough). An append that fewer replicas
   * confirmed within `waitTimeoutMs` is refused to its caller (NotDurableError
   * `replicas`); it stays in the stream. Default 0.
   */
  readonly waitReplicas?: number;
  /** How long `WAIT` may take (ms). Default 1000. */
  readonly waitTimeoutMs?: number;
  /** Redis command timeout (ms) on the node's connections. Default `leaseTtlMs / 3` (at least 100). */
  readonly commandTimeoutMs?: number;
  /**
   * The Redis persistence settings checked at start-up (appendonly, appendfsync,
   * maxmemory-policy, min-replicas-to-write with `waitReplicas`): `warn` logs each
   * finding (default), `refuse` fails start-up with a ConfigError, `ignore` skips.
   */
  readonly redisSettings?: 'warn' | 'refuse' | 'ignore';
  /** Redis Cluster: how often the per-slot reads poll when every stream was empty (ms). Default 20. */
  readonly clusterPollMs?: number;
  /** Called with the events this process applied from other processes (and corrections after a loss), after the engine. */
  readonly onReplicated?: (events: readonly PresenceEvent[]) => void;
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

/** A sync handle of a distributed process: `written` acknowledges the sync start like `setPresence`. */
export interface DistributedSyncHandle extends SyncHandle {
  readonly written: Promise<void>;
}

export interface RedisNodeStats {
  readonly instanceId: string;
  /** Partitions run here with a lease certainly valid. */
  readonly ownedPartitions: readonly number[];
  /** Partitions whose lease this process has not been able to confirm for a TTL: not run (inputs refused) until a renewal succeeds or the loss is known. */
  readonly heldButUnconfirmed: readonly number[];
  readonly liveNodes: number;
  /** Milliseconds since the replicator last heard from Redis (an idle read answers about every second). */
  readonly replicationSilentMs: number;
  /** True when the view of other processes' partitions may be stale (no answer from Redis for longer than a lease TTL). */
  readonly stale: boolean;
  /** Events committed here and not yet settled (written or refused). */
  readonly unwrittenEvents: number;
  /** The deployment generation this process runs under (changes when Redis lost data and was re-seeded). */
  readonly generation: string;
  /** Redis data-loss detections and re-seeds (docs/distributed.md, "Redis data loss"). */
  readonly dataLoss: Readonly<DataLossStats>;
  readonly log: Readonly<RedisLogStats>;
  readonly replicator: Readonly<ReplicatorStats>;
  readonly engine: Readonly<EngineStats>;
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
