/**
 * Redis data loss in a distributed deployment (docs/distributed.md, "Redis data
 * loss"): the deployment's generation, detecting that Redis lost data, and the
 * re-seed that brings every process back to one state.
 *
 * Detection: every lease script checks the partition's generation key (written
 * when the generation starts); each tick compares `P:generation` with this
 * process's, and each partition stream's last id with what this process already
 * read or wrote there (a stream that ends before an entry seen lost its tail).
 *
 * Rule: each partition is re-seeded from the view of the process that ran it
 * when the loss was detected (it applied every acknowledged write of it);
 * partitions no process ran are seeded from the coordinator's view. The
 * coordinator is the first process to take the round's lock; it writes each
 * partition's stream anew as one checkpoint entry under a new generation, then
 * publishes the generation; every process then re-reads every stream from its
 * start and resumes.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { compareStreamIds, generationNumber, type PresenceScripts, type RedisKeys } from '../log/redis-partitions.js';

/** What every part of a RedisPresenceNode (leases, recovery, hosts) reads of the node. */
export interface RedisNodeBasics {
  readonly redis: Redis & PresenceScripts;
  readonly keys: RedisKeys;
  readonly instanceId: string;
  readonly logger: Logger;
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
}

export interface RecoveryHost extends RedisNodeBasics {
  /** Stop running every partition (no undo); returns those that were running. */
  freeze(): number[];
  /** Fail every write not yet settled (`data_loss`). */
  failWrites(): void;
  /** Partition `p` of this view as a checkpoint entry (`{"checkpoint": …}`). */
  checkpointOf(p: number): string;
  /** The last stream id this process read of `p`, and the last it wrote (undefined / '+' when unknown). */
  positions(p: number): { read: string; written: string | undefined };
  /** Re-read every stream from its start (after the re-seed). */
  reload(): Promise<void>;
  /** Take partitions again. */
  resume(): void;
  readonly stopping: boolean;
}

export interface DataLossStats {
  /** Times this process detected that Redis lost data. */
  detected: number;
  /** Re-seeds this process coordinated. */
  coordinated: number;
  /** The last detection: why and when (ms since epoch); undefined when none. */
  last: { reason: string; at: number } | undefined;
  /** True from detection until the deployment is re-seeded and this process has re-read it. */
  recovering: boolean;
}

export class DataLossRecovery {
  readonly stats: DataLossStats = { detected: 0, coordinated: 0, last: undefined, recovering: false };
  private gen = '';
  private round: { generation: string; held: number[] } | undefined;

  constructor(private readonly host: RecoveryHost) {}

  get generation(): string {
    return this.gen;
  }

  get recovering(): boolean {
    return this.round !== undefined;
  }

  /**
   * Start-up: adopt the deployment's generation, or start generation 1 when there
   * is none (a new deployment; also a Redis that lost everything before any
   * running process noticed, see the docs), and make sure every partition carries it.
   */
  async init(): Promise<void> {
    const { redis, keys } = this.host;
    await redis.set(keys.generation, `1-${randomUUID().slice(0, 8)}`, 'NX');
    this.gen = (await redis.get(keys.generation)) as string;
    const missing: number[] = [];
    const gens = await Promise.all(Array.from({ length: keys.partitions }, (_, p) => redis.get(keys.gen(p))));
    gens.forEach((g, p) => {
      if (g === null) missing.push(p);
    });
    // Missing copies on a deployment that has data mean a partial loss: detected by the first lease script.
    if (missing.length === keys.partitions) await Promise.all(missing.map((p) => redis.set(keys.gen(p), this.gen, 'NX')));
  }

  /** Redis lost data: stop writing, say so loudly, and start (or join) the re-seed. */
  detect(reason: string): void {
    if (this.round !== undefined || this.host.stopping) return;
    const held = this.host.freeze();
    this.host.failWrites();
    this.round = { generation: this.gen, held };
    this.stats.detected++;
    this.stats.last = { reason, at: Date.now() };
    this.stats.recovering = true;
    this.host.logger.error(
      `redis node ${this.host.instanceId}: REDIS LOST DATA (${reason}). All writes stopped; inputs are refused until the deployment is re-seeded from the processes' views (docs/distributed.md, "Redis data loss"). Check the Redis persistence settings (appendonly yes, appendfsync always, noeviction).`,
    );
    void this.recover();
  }

  /** Per tick: has the generation moved, or a stream gone backwards? */
  async check(): Promise<void> {
    if (this.round !== undefined || this.host.stopping) return;
    const { redis, keys } = this.host;
    const k = keys.partitions;
    // Positions are taken before the reads: they only grow, so a stream read after them can only be ahead.
    const seenBefore = Array.from({ length: k }, (_, p) => {
      const { read, written } = this.host.positions(p);
      return written !== undefined && written !== '+' && compareStreamIds(written, read) > 0 ? written : read;
    });
    // One command each (a pipeline may not span Redis Cluster slots; auto-pipelining batches them anyway).
    const settle = <T>(p: Promise<T>): Promise<[Error | null, T | null]> =>
      p.then(
        (v): [Error | null, T | null] => [null, v],
        (e: unknown): [Error | null, T | null] => [e instanceof Error ? e : new Error(String(e)), null],
      );
    const results: [Error | null, unknown][] = await Promise.all([
      settle<unknown>(redis.get(keys.generation)),
      ...Array.from({ length: k }, (_, p) => settle<unknown>(redis.xrevrange(keys.stream(p), '+', '-', 'COUNT', 1))),
    ]);
    if (this.round !== undefined) return;
    const [genError, genReply] = results[0] ?? [new Error('no reply'), null];
    if (genError !== null) return; // Redis unreachable or silent: nothing can be concluded
    const gen = genReply as string | null;
    if (gen !== this.gen) {
      this.detect(`the deployment generation is ${gen ?? 'missing'}, this process runs ${this.gen}`);
      return;
    }
    for (let p = 0; p < k; p++) {
      const [error, reply] = results[p + 1] ?? [null, null];
      if (error !== null) continue;
      const top = (reply as [string, string[]][])[0]?.[0] ?? '0-0';
      const seen = seenBefore[p] as string;
      if (compareStreamIds(top, seen) < 0) {
        this.detect(`partition ${p}'s stream ends at ${top}, before entry ${seen} this process already saw`);
        return;
      }
    }
  }

  private async recover(): Promise<void> {
    const round = this.round;
    if (round === undefined) return;
    const { redis, keys, instanceId, logger } = this.host;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Publish this view of the partitions this process ran: the coordinator seeds them from it.
    for (;;) {
      if (this.host.stopping) return;
      try {
        await Promise.all(round.held.map((p) => redis.set(keys.seed(p, round.generation), this.host.checkpointOf(p), 'PX', 10 * 60_000)));
        break;
      } catch (error) {
        logger.warn('redis node: could not publish a recovery seed; retrying', { error: String(error) });
        await sleep(this.host.renewIntervalMs);
      }
    }
    for (;;) {
      if (this.host.stopping) return;
      try {
        const current = await redis.get(keys.generation);
        if (current !== null && generationNumber(current) > generationNumber(round.generation) && (await redis.exists(keys.recovery(round.generation))) === 0) {
          await this.finish(current);
          return;
        }
        const won = await redis.set(keys.recovery(round.generation), instanceId, 'PX', 30_000, 'NX');
        if (won === 'OK') {
          // Make every process notice on its next tick (a partial loss may be visible to this one only)
          // and give them time to publish their seeds.
          await redis.set(keys.generation, `${generationNumber(round.generation)}-recovering`);
          await sleep(this.host.leaseTtlMs + this.host.renewIntervalMs);
          const next = `${Math.max(generationNumber(round.generation), generationNumber(current)) + 1}-${randomUUID().slice(0, 8)}`;
          let own = 0;
          for (let p = 0; p < keys.partitions; p++) {
            const seed = await redis.get(keys.seed(p, round.generation));
            if (seed === null) own++;
            await redis.presenceReseed(keys.stream(p), keys.lease(p), keys.last(p), keys.gen(p), next, `recovery-${instanceId}/${generationNumber(next)}`, seed ?? this.host.checkpointOf(p));
          }
          await redis.set(keys.generation, next);
          await redis.del(keys.recovery(round.generation));
          this.stats.coordinated++;
          logger.error(`redis node ${instanceId}: re-seeded ${keys.partitions} partition(s) under generation ${next} (${own} from this view, the others from their last owners)`);
          await this.finish(next);
          return;
        }
      } catch (error) {
        logger.warn('redis node: recovery step failed; retrying', { error: String(error) });
      }
      await sleep(this.host.renewIntervalMs);
    }
  }

  private async finish(generation: string): Promise<void> {
    this.gen = generation;
    await this.host.reload();
    this.round = undefined;
    this.stats.recovering = false;
    this.host.logger.warn(`redis node ${this.host.instanceId}: recovered: generation ${generation}; taking partitions again`);
    this.host.resume();
  }
}
