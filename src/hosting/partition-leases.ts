/**
 * Writer leases of a distributed process: which of the K partitions this
 * process may write. Every tick renews the held leases, heartbeats in the node
 * registry and balances: each live process aims at ceil(K / live processes),
 * taking free partitions or handing extra ones over. A lease is trusted only
 * while its last successful renewal was sent less than a TTL ago.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { PresenceScripts, RedisKeys } from '../log/redis-partitions.js';
import { partitionOf } from '../log/redis-partitions.js';

export interface Lease {
  readonly value: string;
  /** Local time (performance.now) at which the last successful renewal was *sent*. */
  renewedAt: number;
}

export interface PartitionLeaseHost {
  readonly redis: Redis & PresenceScripts;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  readonly logger: Logger;
  /** Replay partition `p` to its end; false when that failed (the lease is then given up). */
  replay(p: number): Promise<boolean>;
  /** Partition `p` is replayed and its lease held: run its users here. */
  adopted(p: number, lease: Lease): void;
  /** A lease that was not trusted for a while (a stall) was renewed: re-arm the partition's timers. */
  revalidated(p: number): void;
  /** A held lease is gone (`wasReady`: its users ran here). */
  lost(p: number, why: string, wasReady: boolean): void;
  /** A partition was handed over on purpose (after its writes were flushed). */
  released(p: number): void;
  /** Wait until everything logged is written. */
  flush(): Promise<void>;
  /** Once per balancing round (e.g. compaction). */
  upkeep(): void;
  /** The deployment generation leases are taken under. */
  generation(): string;
  /** A lease script found the generation key missing or changed: Redis lost data. */
  dataLoss(why: string): void;
}

export interface PartitionLeaseOptions {
  readonly partitions: number;
  readonly leaseTtlMs: number;
  readonly maxPartitions: number;
}

export class PartitionLeases {
  /** Leases held (possibly still replaying). */
  readonly leases = new Map<number, Lease>();
  /** Partitions replayed and running here: their users are owned. */
  readonly ready = new Set<number>();
  private readonly acquiring = new Set<number>();
  private ticking: Promise<void> | undefined;
  private renewing: Promise<void> | undefined;
  private stopping = false;
  /** Frozen after Redis lost data: no renewal, no balancing, until `resume`. */
  private frozen = false;
  /** Live processes in the registry at the last balancing round. */
  liveNodes = 1;
  private readonly offset: number;

  constructor(
    private readonly host: PartitionLeaseHost,
    private readonly options: PartitionLeaseOptions,
  ) {
    this.offset = partitionOf(host.instanceId, options.partitions);
  }

  /** Owned, and the lease certainly still valid (its last renewal was sent less than a TTL ago). */
  holds(p: number): boolean {
    if (!this.ready.has(p)) return false;
    const lease = this.leases.get(p);
    return lease !== undefined && performance.now() - lease.renewedAt < this.options.leaseTtlMs;
  }

  /** The lease value that fences appends to partition `p` (undefined when not running it). */
  writerFor(p: number): string | undefined {
    return this.ready.has(p) ? this.leases.get(p)?.value : undefined;
  }

  /**
   * Redis lost data: drop every lease at once without the loss callbacks (no
   * undo: this view is what the re-seed starts from) and stop until `resume`.
   * Returns the partitions that were running here.
   */
  freeze(): number[] {
    this.frozen = true;
    const held = [...this.ready];
    this.ready.clear();
    this.leases.clear();
    return held;
  }

  resume(): void {
    this.frozen = false;
  }

  /** Renew, then balance (renewals never wait behind a slow balancing step). */
  tick(): Promise<void> {
    if (this.frozen) return Promise.resolve();
    if (this.renewing === undefined && !this.stopping) {
      this.renewing = this.renewAll()
        .catch((error: unknown) => this.host.logger.warn('redis node: lease renewal failed; retrying', { error: String(error) }))
        .finally(() => {
          this.renewing = undefined;
        });
    }
    if (this.ticking !== undefined || this.stopping) return this.ticking ?? Promise.resolve();
    this.ticking = this.balance()
      .catch((error: unknown) => {
        if (String(error).includes('GENERATION')) this.host.dataLoss(String(error));
        else this.host.logger.warn('redis node: lease upkeep failed; retrying', { error: String(error) });
      })
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  /** Stop renewing and balancing; wait for the round in flight. Returns the leases still held. */
  async stop(): Promise<[number, Lease][]> {
    this.stopping = true;
    await this.ticking?.catch(() => {});
    await this.renewing;
    const held = [...this.leases];
    this.ready.clear();
    return held;
  }

  /** Forget every lease (after releasing them). */
  clear(): void {
    this.leases.clear();
  }

  /** Give up partition `p` (fenced, taken over, or not renewed in time). */
  lose(p: number, why: string): void {
    if (!this.leases.delete(p)) return;
    const wasReady = this.ready.delete(p);
    this.host.lost(p, why, wasReady && !this.stopping);
  }

  private async balance(): Promise<void> {
    const { redis, keys } = this.host;
    await this.renewing;
    const [sec, usec] = (await redis.time()) as [string | number, string | number];
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    // A read-only process (maxPartitions 0) does not register: it must not lower the others' targets.
    const heartbeat = this.options.maxPartitions > 0 ? redis.zadd(keys.nodes, now, this.host.instanceId) : Promise.resolve(0);
    const [, , live] = await Promise.all([heartbeat, redis.zremrangebyscore(keys.nodes, '-inf', now - this.options.leaseTtlMs), redis.zcard(keys.nodes)]);
    if (this.stopping || this.frozen) return;
    this.host.upkeep();
    this.liveNodes = Math.max(1, live);
    const target = Math.min(this.options.maxPartitions, Math.ceil(this.options.partitions / this.liveNodes));
    const held = this.leases.size;
    if (held > target && this.liveNodes > 1) {
      const extra = [...this.ready].sort((a, b) => b - a).slice(0, held - target);
      for (const p of extra) await this.handOver(p);
    } else if (held < target) {
      await this.acquireFree(target - held);
    }
  }

  private async renewAll(): Promise<void> {
    const ttl = this.options.leaseTtlMs;
    const sentAt = performance.now();
    const held = [...this.leases];
    const gen = this.host.generation();
    const results = await Promise.allSettled(held.map(([p, l]) => this.host.redis.presenceRenew(this.host.keys.lease(p), this.host.keys.gen(p), l.value, ttl, gen)));
    const lostData = results.find((r) => r.status === 'rejected' && String(r.reason).includes('GENERATION'));
    if (lostData !== undefined && lostData.status === 'rejected') {
      this.host.dataLoss(`a lease renewal was refused: ${String(lostData.reason)}`);
      return;
    }
    results.forEach((r, i) => {
      const [p, l] = held[i] as [number, Lease];
      if (this.leases.get(p) !== l || this.frozen) return;
      if (r.status === 'fulfilled') {
        if (r.value === 1) {
          // The lease survived a stretch in which this process did not trust it: timers skipped then are re-armed.
          const wasStale = sentAt - l.renewedAt >= ttl;
          l.renewedAt = sentAt;
          if (wasStale && this.ready.has(p)) this.host.revalidated(p);
        } else this.lose(p, 'the lease was taken over');
      } else if (performance.now() - l.renewedAt >= ttl) {
        this.lose(p, `the lease could not be renewed for ${ttl} ms (${String(r.reason)})`);
      }
    });
  }

  private async acquireFree(want: number): Promise<void> {
    const { redis, keys } = this.host;
    const partitions = this.options.partitions;
    const candidates: number[] = [];
    for (let k = 0; k < partitions; k++) {
      const p = (this.offset + k) % partitions;
      if (!this.leases.has(p) && !this.acquiring.has(p)) candidates.push(p);
    }
    const exists = await Promise.all(candidates.map((p) => redis.exists(keys.lease(p))));
    for (let i = 0; i < candidates.length && want > 0; i++) {
      if (exists[i] !== 0 || this.stopping || this.frozen) continue;
      const p = candidates[i] as number;
      const sentAt = performance.now();
      const value = await redis.presenceAcquire(keys.lease(p), keys.epoch(p), keys.gen(p), this.host.instanceId, this.options.leaseTtlMs, this.host.generation());
      if (value === null) continue;
      want--;
      const lease: Lease = { value, renewedAt: sentAt };
      this.leases.set(p, lease);
      this.acquiring.add(p);
      void this.takeOver(p, lease).finally(() => this.acquiring.delete(p));
    }
  }

  /** Replay the partition to its end (no other writer can append now), then run its users here. */
  private async takeOver(p: number, lease: Lease): Promise<void> {
    if (!(await this.host.replay(p))) {
      this.leases.delete(p);
      await this.host.redis.presenceRelease(this.host.keys.lease(p), lease.value).catch(() => {});
      return;
    }
    if (this.leases.get(p) !== lease || this.stopping || this.frozen) return;
    this.ready.add(p);
    this.host.adopted(p, lease);
  }

  /** Rebalancing: stop running the partition, write what it logged, release the lease for another process. */
  private async handOver(p: number): Promise<void> {
    const lease = this.leases.get(p);
    if (lease === undefined) return;
    this.ready.delete(p);
    await this.host.flush();
    this.leases.delete(p);
    await this.host.redis.presenceRelease(this.host.keys.lease(p), lease.value);
    this.host.released(p);
  }
}
