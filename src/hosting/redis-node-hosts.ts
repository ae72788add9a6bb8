/**
 * The hosts a distributed process hands to its lease upkeep
 * (partition-leases.ts) and its data-loss recovery (redis-recovery.ts): what
 * each of them may ask of the process, built from the process's internals.
 */
import type { Subject } from 'rxjs';
import type { UserId } from '../domain/ids.js';
import type { PresenceEngine } from '../engine.js';
import type { RedisPartitionedLog } from '../log/redis-log.js';
import type { RedisReplicator } from '../log/redis-replicator.js';
import type { PartitionLeaseHost, PartitionLeases } from './partition-leases.js';
import { partitionCheckpoint } from './redis-checkpoint.js';
import type { OwnershipChange } from './redis-node-types.js';
import type { DataLossRecovery, RecoveryHost, RedisNodeBasics } from './redis-recovery.js';

/** What a RedisPresenceNode shares with its lease and recovery hosts. */
export interface NodeInternals extends RedisNodeBasics {
  readonly partitions: number;
  readonly engine: PresenceEngine;
  readonly log: RedisPartitionedLog;
  readonly replicator: RedisReplicator;
  readonly ownership: Subject<OwnershipChange>;
  /** Undo after a loss still running, per partition. */
  readonly undoing: ReadonlyMap<number, Promise<void>>;
  readonly stopping: boolean;
  leases(): PartitionLeases;
  recovery(): DataLossRecovery;
  usersOf(p: number): UserId[];
  undoUnwritten(p: number): void;
  autoCompact(): void;
}

export function leaseHostOf(n: NodeInternals): PartitionLeaseHost {
  return {
    redis: n.redis,
    keys: n.keys,
    instanceId: n.instanceId,
    logger: n.logger,
    replay: async (p) => {
      try {
        // A retake after a loss waits until the loss's undo is done (else the undo could be skipped).
        await n.undoing.get(p);
        await n.replicator.catchUp(p);
        return true;
      } catch (error) {
        n.logger.warn(`redis node: could not replay partition ${p}; giving it up`, { error: String(error) });
        return false;
      }
    },
    adopted: (p, lease) => {
      const users = n.usersOf(p);
      n.engine.adopt(users);
      n.logger.info(`redis node ${n.instanceId}: took over partition ${p} (${users.length} known users)`, { lease: lease.value });
      n.ownership.next({ partition: p, change: 'acquired' });
    },
    revalidated: (p) => n.engine.rearmTimers(n.usersOf(p)),
    lost: (p, why, resync) => {
      n.log.discard(p);
      n.logger.warn(`redis node ${n.instanceId}: lost partition ${p}: ${why}`);
      n.ownership.next({ partition: p, change: 'lost' });
      // Changes made here that never reached the stream must not linger in this view.
      if (resync) n.undoUnwritten(p);
    },
    released: (p) => {
      n.logger.info(`redis node ${n.instanceId}: handed partition ${p} over`);
      n.ownership.next({ partition: p, change: 'released' });
    },
    flush: () => n.log.settledAll(),
    upkeep: () => n.autoCompact(),
    generation: () => n.recovery().generation,
    dataLoss: (why) => n.recovery().detect(why),
  };
}

export function recoveryHostOf(n: NodeInternals): RecoveryHost {
      return {
    redis: n.redis,
    keys: n.keys,
    instanceId: n.instanceId,
    logger: n.logger,
    leaseTtlMs: n.leaseTtlMs,
    renewIntervalMs: n.renewIntervalMs,
    get stopping() {
      return n.stopping;
    },
    freeze: () => {
      const held = n.leases().freeze();
      for (const p of held) n.ownership.next({ partition: p, change: 'lost' });
      return held;
    },
    failWrites: () => {
      for (const p of n.log.unsettledPartitions()) n.log.discard(p, 'data_loss');
    },
    checkpointOf: (p) => JSON.stringify({ checkpoint: partitionCheckpoint(n.engine.snapshot(), p, n.partitions, n.engine.clock.now()) }),
    positions: (p) => ({ read: n.replicator.position(p), written: n.log.lastWrittenId(p) }),
    reload: async () => {
      n.log.forgetWritten();
      n.replicator.reset();
      await n.replicator.catchUpAll();
    },
    resume: () => n.leases().resume(),
  };
}
