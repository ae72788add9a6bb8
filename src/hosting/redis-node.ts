/**
 * One engine process of a distributed deployment (docs/distributed.md).
 *
 * A {@link RedisPresenceNode} runs a normal {@link PresenceEngine} and:
 *  - holds writer leases on some of the K partitions (users are partitioned by a
 *    hash of their id); it runs inputs and timers only for users of the
 *    partitions it owns, and appends their events to the partition streams;
 *  - follows every partition stream and applies the other processes' events
 *    to its engine (`applyReplicated`), so every process has the full view and
 *    can serve any user's sync stream and reads;
 *  - heartbeats in a node registry and balances partitions: each live process
 *    aims at ceil(K / live processes); a dead process's leases expire and the
 *    others take its partitions over (replay the stream, then `adopt`: timers
 *    re-armed, the dead process's in-flight syncs ended).
 *
 * Requests that change a user's presence must reach the user's owner: the
 * methods here throw {@link NotOwnerError} otherwise; `ownerOf` tells the
 * embedding where to route them.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { Subject, type Observable } from 'rxjs';
import { toPresenceConfig, type PresenceConfig } from '../config.js';
import { parseUserId, type UserId } from '../domain/ids.js';
import type { PresenceEvent } from '../domain/events.js';
import type { UserPresenceState } from '../domain/presence.js';
import {
  PresenceEngine,
  type GetNewEventsOptions,
  type PresenceBatch,
  type SetPresenceInput,
  type SyncHandle,
  type UserSyncingInput,
} from '../engine.js';
import { ConfigError, InvalidInputError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import type { FederationLink, FederationTransport, FederationTransportOptions } from '../federation/outbound.js';
import { RedisPartitionedLog } from '../log/redis-log.js';
import { leaseHolder, partitionOf, RedisKeys, withScripts, type PresenceScripts } from '../log/redis-partitions.js';
import { RedisReplicator, type PartitionFold } from '../log/redis-replicator.js';
import { PartitionLeases } from './partition-leases.js';
import { appendAndTrim, correctionsTo, partitionCheckpoint } from './redis-checkpoint.js';
import { durableTransport } from './redis-node-federation.js';
import { leaseHostOf, recoveryHostOf, type NodeInternals } from './redis-node-hosts.js';
import { DataLossRecovery } from './redis-recovery.js';
import { commandTimeoutOf, connectRedis, duplicateWithTimeout } from './redis-settings.js';
import {
  NotOwnerError,
  type DistributedNewEvents,
  type DistributedSyncHandle,
  type DistributedToken,
  type OwnershipChange,
  type RedisNodeStats,
  type RedisPresenceNodeOptions,
} from './redis-node-types.js';

export { NotOwnerError } from './redis-node-types.js';
export { NotDurableError, type NotDurableReason } from '../log/redis-log.js';
export type { DistributedNewEvents, DistributedSyncHandle, DistributedToken, OwnershipChange, RedisNodeStats, RedisPresenceNodeOptions } from './redis-node-types.js';

export class RedisPresenceNode {
  readonly engine: PresenceEngine;
  readonly instanceId: string;
  readonly keys: RedisKeys;
  readonly partitions: number;
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  private readonly redis: Redis & PresenceScripts;
  private readonly blocking: Redis;
  private readonly log: RedisPartitionedLog;
  private readonly replicator: RedisReplicator;
  private readonly logger: Logger;
  private readonly maxPartitions: number;
  private readonly compactEvery: number;
  private readonly leaseSet: PartitionLeases;
  private readonly recovery: DataLossRecovery;
  private readonly ownership = new Subject<OwnershipChange>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Per partition: the undo of unwritten changes after a loss, still running (a retake waits for it). */
  private readonly undoing = new Map<number, Promise<void>>();
  private readonly onReplicated: ((events: readonly PresenceEvent[]) => void) | undefined;

  private constructor(options: RedisPresenceNodeOptions, config: PresenceConfig, redis: Redis) {
    if (config.log.kind !== 'redis') throw new ConfigError('log.kind', 'a RedisPresenceNode needs log: { kind: redis, url, partitions }');
    this.logger = options.logger ?? consoleLogger;
    this.onReplicated = options.onReplicated;
    this.instanceId = `${(options.name ?? 'presence').replace(/[/~\s]/g, '_')}-${randomUUID().slice(0, 8)}`;
    this.partitions = config.log.partitions;
    this.keys = new RedisKeys(config.log.stream_prefix, this.partitions);
    this.leaseTtlMs = options.leaseTtlMs ?? 10_000;
    this.renewIntervalMs = options.renewIntervalMs ?? Math.max(50, Math.floor(this.leaseTtlMs / 3));
    if (this.renewIntervalMs >= this.leaseTtlMs) throw new ConfigError('renewIntervalMs', 'must be less than leaseTtlMs');
    this.maxPartitions = options.maxPartitions ?? Infinity;
    this.compactEvery = options.compactEvery ?? 100_000;
    this.redis = withScripts(redis);
    // ioredis' Cluster client: streams sit in different slots, so no multi-slot XREAD or pipeline.
    const cluster = (redis as { isCluster?: boolean }).isCluster === true;
    if (cluster && (redis as { options?: { enableAutoPipelining?: boolean } }).options?.enableAutoPipelining === true) {
      this.logger.warn('redis node: the Cluster client has enableAutoPipelining on: ioredis then reports MOVED after a failover as an error instead of following it; create the Cluster without it');
    }
    if (cluster && (options.waitReplicas ?? 0) > 0) throw new ConfigError('waitReplicas', 'is not supported on Redis Cluster yet (WAIT is per shard); use min-replicas-to-write on the shards');
    // The blocking reader may wait `blockMs` for an answer; give it that much on top of the command timeout.
    this.blocking = options.connect !== undefined ? redis.duplicate() : duplicateWithTimeout(redis, cluster, commandTimeoutOf(options) + 1_000);
    this.recovery = new DataLossRecovery(recoveryHostOf(this.internals()));
    this.leaseSet = new PartitionLeases(leaseHostOf(this.internals()), { partitions: this.partitions, leaseTtlMs: this.leaseTtlMs, maxPartitions: this.maxPartitions });
    this.log = new RedisPartitionedLog({
      redis: this.redis,
      keys: this.keys,
      writerFor: (p) => this.leaseSet.writerFor(p),
      onFenced: (p, writer) => {
        if (this.leaseSet.leases.get(p)?.value === writer) this.leaseSet.lose(p, 'an append was fenced');
      },
      logger: this.logger,
      generation: () => this.recovery.generation,
      onDataLoss: (why) => this.recovery.detect(why),
      perSlot: cluster,
      ...(options.waitReplicas !== undefined ? { waitReplicas: options.waitReplicas } : {}),
      ...(options.waitTimeoutMs !== undefined ? { waitTimeoutMs: options.waitTimeoutMs } : {}),
    });
    this.engine = new PresenceEngine({
      config,
      log: this.log,
      logger: this.logger,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      owns: (userId) => this.holds(partitionOf(userId, this.partitions)),
    });
    this.replicator = new RedisReplicator({
      redis: this.redis,
      blocking: this.blocking,
      keys: this.keys,
      instanceId: this.instanceId,
      sink: (events) => this.applyForeign(events),
      onCheckpoint: (p, fold) => this.correct(p, fold, 'checkpoint'),
      ...(cluster ? { perSlot: { pollMs: options.clusterPollMs ?? 20 } } : {}),
      logger: this.logger,
    });
  }

  /**
   * Connect, replay every partition, start following them and start taking
   * partitions. Resolves once the view is caught up (partitions are then taken
   * over in the background: watch `ownership$` or `ownedPartitions`).
   * @throws ConfigError for a non-redis `log`; LogError when Redis cannot be reached.
   */
  static async start(options: RedisPresenceNodeOptions): Promise<RedisPresenceNode> {
    const config = toPresenceConfig(options.config);
    if (config.log.kind !== 'redis') throw new ConfigError('log.kind', 'a RedisPresenceNode needs log: { kind: redis, url, partitions }');
    // A tick still open when a partition is handed over or the node stops would be appended after its partitions stopped being writable.
    if (config.turns !== 'per_input') throw new ConfigError('presence.turns', 'a RedisPresenceNode commits after each input: remove presence.turns or set it to per_input');
    const logger = options.logger ?? consoleLogger;
    const { redis, onError } = await connectRedis(config.log.url, options, logger);
    const node = new RedisPresenceNode(options, config, redis);
    node.blocking.on('error', onError);
    await node.recovery.init();
    await node.replicator.catchUpAll();
    node.replicator.start();
    await node.leaseSet.tick();
    node.timer = setInterval(() => {
      void node.leaseSet.tick();
      node.recovery.check().catch(() => {}); // Redis unreachable: the lease logic reports it
    }, node.renewIntervalMs);
    node.timer.unref?.();
    return node;
  }

  // ───────────────────────────── ownership ─────────────────────────────

  /** The partition of a user id. */
  partitionOf(userId: string): number {
    return partitionOf(userId, this.partitions);
  }

  /** Does this process run the user's inputs and timers now? */
  ownsUser(userId: string): boolean {
    return this.holds(this.partitionOf(userId));
  }

  /**
   * Partitions replayed and running here whose lease is certainly valid, ascending.
   * A process that cannot renew (Redis unreachable or silent) stops listing a
   * partition one TTL after its last renewal was sent.
   */
  get ownedPartitions(): number[] {
    return [...this.leaseSet.ready].filter((p) => this.holds(p)).sort((a, b) => a - b);
  }

  /** Partition ownership changes of this process. */
  get ownership$(): Observable<OwnershipChange> {
    return this.ownership.asObservable();
  }

  /** The instance id of the process holding the user's partition lease (null when none does, e.g. mid-failover). */
  async ownerOf(userId: string): Promise<string | null> {
    const value = await this.redis.get(this.keys.lease(this.partitionOf(userId)));
    return value === null ? null : leaseHolder(value);
  }

  /**
   * Wait until everything this process logged so far is durable in Redis.
   * Rejects with NotDurableError when something logged since the previous
   * `flush()` was fenced or dropped (it was undone here, not written).
   */
  flush(): Promise<void> {
    return this.log.flush();
  }

  get stats(): RedisNodeStats {
    const silentForMs = this.replicator.silentForMs;
    return {
      instanceId: this.instanceId,
      ownedPartitions: this.ownedPartitions,
      heldButUnconfirmed: [...this.leaseSet.ready].filter((p) => !this.holds(p)).sort((a, b) => a - b),
      liveNodes: this.leaseSet.liveNodes,
      replicationSilentMs: Math.round(silentForMs),
      stale: silentForMs > this.replicator.blockMs + this.leaseTtlMs,
      unwrittenEvents: this.log.lastIndex - this.log.settledIndex,
      generation: this.recovery.generation,
      dataLoss: { ...this.recovery.stats },
      log: this.log.stats,
      replicator: this.replicator.stats,
      engine: this.engine.stats,
    };
  }

  // ───────────────────────────── inputs (owner only) ─────────────────────────────

  /**
   * `PUT /presence/{userId}/status` for an owned user. The promise is the
   * acknowledgement: it resolves once the change is in the partition's stream
   * under a valid lease, and rejects with NotDurableError when it was fenced
   * (then it is undone here and was not federated). Ignoring it is safe.
   * @throws NotOwnerError (synchronously), and what the engine throws.
   */
  setPresence(userId: string, input: SetPresenceInput): Promise<void> {
    const p = this.requireOwner(userId);
    return this.acknowledged(p, () => this.engine.setPresence(userId, input));
  }

  /**
   * A sync request of an owned user started (`written`: its acknowledgement).
   * If the partition changes hands before `end()`, the end is dropped: the new
   * owner ended the sync when it took over (docs/distributed.md).
   */
  userSyncing(userId: string, input: UserSyncingInput = {}): DistributedSyncHandle {
    const p = this.requireOwner(userId);
    const tenure = this.leaseSet.leases.get(p)?.value;
    let handle: SyncHandle | undefined;
    const written = this.acknowledged(p, () => {
      handle = this.engine.userSyncing(userId, input);
    });
    const h = handle as SyncHandle;
    if (!h.affectsPresence) return { affectsPresence: false, end: () => h.end(), written };
    return {
      affectsPresence: true,
      written,
      end: () => {
        if (this.leaseSet.ready.has(p) && this.leaseSet.leases.get(p)?.value === tenure && !this.stopping) h.end();
      },
    };
  }

  bumpActive(userId: string, deviceId?: string): Promise<void> {
    const p = this.requireOwner(userId);
    return this.acknowledged(p, () => this.engine.bumpActive(userId, deviceId));
  }

  /** Membership changes are recorded by the owner of the member (local or remote user). Acknowledged like `setPresence`. */
  setMembership(roomId: string, userId: string, membership: 'join' | 'leave' | 'ban'): Promise<void> {
    const p = this.requireOwner(userId);
    return this.acknowledged(p, () => this.engine.setMembership(roomId, userId, membership));
  }

  joinRoom(roomId: string, userId: string): Promise<void> {
    return this.setMembership(roomId, userId, 'join');
  }

  leaveRoom(roomId: string, userId: string): Promise<void> {
    return this.setMembership(roomId, userId, 'leave');
  }

  /**
   * Module API `send_local_online_presence_to`: local targets must be owned here
   * (their full-presence marker is logged in their partitions); remote targets'
   * servers are sent this process's view.
   */
  sendLocalOnlinePresenceTo(userIds: readonly string[]): Promise<void> {
    for (const u of userIds) if (this.engine.isMine(parseUserId(u))) this.requireOwner(u);
    return this.acknowledged(undefined, () => this.engine.sendLocalOnlinePresenceTo(userIds));
  }

  /** Module API `set_presence_for_users`; every user must be owned here. */
  setPresenceForUsers(users: Readonly<Record<string, { presence: string; statusMsg?: string | null | undefined }>>, moduleName?: string): Promise<void> {
    for (const u of Object.keys(users)) this.requireOwner(u);
    return this.acknowledged(undefined, () => this.engine.setPresenceForUsers(users, moduleName));
  }

  /**
   * Send this process's outbound federation through `transport`, only once
   * durable: a transmission waits until everything committed before it is
   * written, and leaves out the users of a partition where a write failed
   * since the previous transmission to that destination (their change was
   * undone; the remote keeps the state it had, which is the stream's).
   */
  attachFederationTransport(transport: FederationTransport, options: FederationTransportOptions = {}): FederationLink {
    return this.engine.attachFederationTransport(durableTransport(transport, this.log, (u) => this.partitionOf(u)), options);
  }

  /**
   * An inbound `m.presence` EDU: items for users this process owns are applied;
   * the others are returned (`notOwned`) for the embedding to pass to their owners.
   */
  receiveFederationEdu(origin: string, content: unknown): { applied: number; dropped: number; notOwned: unknown[] } {
    const push = (content as { push?: unknown } | null)?.push;
    if (!Array.isArray(push)) return { ...this.engine.receiveFederationEdu(origin, content), notOwned: [] };
    const mine: unknown[] = [];
    const notOwned: unknown[] = [];
    for (const item of push) {
      const u = (item as { user_id?: unknown } | null)?.user_id;
      if (typeof u === 'string' && !this.ownsUser(u)) notOwned.push(item);
      else mine.push(item);
    }
    const r = mine.length > 0 ? this.engine.receiveFederationEdu(origin, { push: mine }) : { applied: 0, dropped: 0 };
    return { ...r, notOwned };
  }

  // ───────────────────────────── reads (any process) ─────────────────────────────

  /** The push side of sync for any user (every process has the full view). Batch tokens are this process's engine tokens. */
  syncStream(userId: string): Observable<PresenceBatch> {
    return this.engine.syncStream(userId);
  }

  getUserPresence(userId: string): UserPresenceState {
    return this.engine.getUserPresence(userId);
  }

  /** This process's current sync token. */
  get currentToken(): DistributedToken {
    return `${this.instanceId}~${this.engine.currentToken}`;
  }

  /** Turn an engine token (e.g. from a `syncStream` batch) into a distributed token. */
  token(engineToken: number): DistributedToken {
    return `${this.instanceId}~${engineToken}`;
  }

  /**
   * Presence for a sync. Tokens are process-scoped: a token minted by another
   * process or incarnation (a client that moved after a failover) gets a full
   * answer, offline users included, exactly like a token too old to answer.
   */
  async getNewEvents(userId: string, since?: DistributedToken | null, options: GetNewEventsOptions = {}): Promise<DistributedNewEvents> {
    let engineSince: number | null = null;
    let opts = options;
    if (since !== undefined && since !== null) {
      const i = since.lastIndexOf('~');
      const n = Number(since.slice(i + 1));
      if (i < 0 || !Number.isSafeInteger(n) || n < 0) throw new InvalidInputError('since', 'not a token of this deployment');
      if (since.slice(0, i) === this.instanceId) engineSince = n;
      else opts = { includeOffline: true, ...options };
    }
    const r = await this.engine.getNewEvents(userId, engineSince, opts);
    return { events: r.events, nextToken: this.token(r.nextToken), full: r.full };
  }

  // ───────────────────────────── compaction ─────────────────────────────

  /**
   * Compact an owned partition: append a checkpoint entry (the full records and
   * joined rooms of the partition's users, ordered after everything logged so
   * far), then trim every entry before it (`XTRIM MINID`). Readers apply a
   * checkpoint as "replace"; a process starting later replays from it.
   * Resolves with the checkpoint's stream id once trimmed.
   * @throws NotOwnerError when this process does not own `p`.
   */
  compact(p: number): Promise<string> {
    if (!this.holds(p) || this.stopping) throw new NotOwnerError(`partition ${p}`, p, this.instanceId);
    const checkpoint = partitionCheckpoint(this.engine.snapshot(), p, this.partitions, this.engine.clock.now());
    return appendAndTrim(this.log, this.redis, this.keys.stream(p), p, checkpoint, () => new NotOwnerError(`partition ${p}`, p, this.instanceId)).then(({ id, trimmed }) => {
      this.logger.info(`redis node ${this.instanceId}: compacted partition ${p}: ${checkpoint.records.length} records, ${trimmed} entries trimmed`);
      return id;
    });
  }

  private autoCompact(): void {
    if (this.compactEvery <= 0) return;
    for (const p of this.leaseSet.ready) {
      if (this.log.eventsSinceCheckpoint(p) >= this.compactEvery && this.holds(p)) {
        this.compact(p).catch((error: unknown) => this.logger.warn(`redis node: compaction of partition ${p} failed`, { error: String(error) }));
      }
    }
  }

  // ───────────────────────────── lifecycle ─────────────────────────────

  /**
   * Graceful stop: stop taking inputs, write everything logged, release every
   * lease (others take over at once, without waiting for expiry), leave the
   * registry, stop the engine and close the connections.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    const owned = await this.leaseSet.stop();
    // Refused writes were reported to their callers (their acknowledgements); stopping goes on.
    await this.log.settledAll();
    try {
      await Promise.all(owned.map(([p, l]) => this.redis.presenceRelease(this.keys.lease(p), l.value)));
      await this.redis.zrem(this.keys.nodes, this.instanceId);
    } catch (error) {
      this.logger.warn('redis node: could not release leases on stop; they will expire', { error: String(error) });
    }
    for (const [p] of owned) this.ownership.next({ partition: p, change: 'released' });
    this.leaseSet.clear();
    await this.replicator.stop();
    this.engine.stop();
    await this.log.close();
    this.ownership.complete();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  // ───────────────────────────── internals ─────────────────────────────

  private requireOwner(userId: string): number {
    const id: UserId = parseUserId(userId);
    const p = this.partitionOf(id);
    if (!this.holds(p) || this.stopping) throw new NotOwnerError(id, p, this.instanceId);
    return p;
  }

  private holds(p: number): boolean {
    return this.leaseSet.holds(p);
  }

  /**
   * Run an input and return its acknowledgement: every event it logged, and any
   * earlier unwritten event of its partition (which it built on), durable. The
   * promise is marked handled so callers may ignore it.
   */
  private acknowledged(p: number | undefined, run: () => void): Promise<void> {
    const from = this.log.settledIndex;
    run();
    const ack = this.log.ack(from, this.log.lastIndex, p);
    ack.catch(() => {});
    return ack;
  }

  /** After losing `p`: once its writes in flight settled, undo in this view what never reached the stream. */
  private undoUnwritten(p: number): void {
    const run = (async () => {
      await this.log.quiesce(p);
      await this.replicator.resync(p, this.log.lastWrittenId(p), (fold) => this.correct(p, fold, 'loss'), () => this.stopping, (why) => this.recovery.detect(why));
    })().finally(() => {
      if (this.undoing.get(p) === run) this.undoing.delete(p);
    });
    this.undoing.set(p, run);
  }

  /** The node's parts; engine, log and replicator are read when used (the hosts are built before them). */
  private internals(): NodeInternals {
    const node = this;
    return {
      redis: this.redis,
      keys: this.keys,
      instanceId: this.instanceId,
      logger: this.logger,
      leaseTtlMs: this.leaseTtlMs,
      renewIntervalMs: this.renewIntervalMs,
      partitions: this.partitions,
      get engine() {
        return node.engine;
      },
      get log() {
        return node.log;
      },
      get replicator() {
        return node.replicator;
      },
      ownership: this.ownership,
      undoing: this.undoing,
      get stopping() {
        return node.stopping;
      },
      leases: () => this.leaseSet,
      recovery: () => this.recovery,
      usersOf: (p) => this.usersOf(p),
      undoUnwritten: (p) => this.undoUnwritten(p),
      autoCompact: () => this.autoCompact(),
    };
  }

  private usersOf(p: number): UserId[] {
    const users: UserId[] = [];
    for (const s of this.engine.knownUsers()) if (this.partitionOf(s.userId) === p) users.push(s.userId);
    return users;
  }

  /** Make this engine's view of partition `p` equal to `fold`: after a loss, or on a foreign checkpoint. */
  private correct(p: number, fold: PartitionFold, why: 'loss' | 'checkpoint'): void {
    if (this.stopping || (why === 'checkpoint' && this.leaseSet.ready.has(p))) return;
    const events = correctionsTo(fold, this.engine.snapshot(), p, this.partitions, (id) => this.engine.getUserRecord(id), Date.now());
    if (events.length === 0) return;
    if (why === 'loss') this.logger.warn(`redis node ${this.instanceId}: undid ${events.length} unwritten change(s) in partition ${p}`);
    this.applyForeign(events);
  }

  /** Events of other processes (or corrections): into the engine, then to `onReplicated`. */
  private applyForeign(events: PresenceEvent[]): void {
    this.engine.applyReplicated(events);
    this.onReplicated?.(events);
  }
}
