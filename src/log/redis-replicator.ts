/**
 * The read side of the distributed log (docs/distributed.md): follows every
 * partition stream with a blocking XREAD on its own connection and hands the
 * events written by *other* processes to a sink (the engine's `applyReplicated`).
 *
 * Deduplication: per partition, the last applied stream id (entries at or below
 * it are skipped, so a catch-up read racing the follow loop applies nothing
 * twice) and, per writer tenure, the last applied sequence number (a resend of
 * an entry whose reply was lost carries the same number and is skipped).
 */
import type { Redis } from 'ioredis';
import type { PresenceEvent, UserStepEvent } from '../domain/events.js';
import { evolveUser } from '../domain/evolve.js';
import type { RoomId, UserId } from '../domain/ids.js';
import type { UserRecord } from '../domain/presence.js';
import type { Logger } from '../logger.js';
import { compareStreamIds, decodeEntry, type Checkpoint, type RedisKeys } from './redis-partitions.js';

type RawEntry = [id: string, fields: string[]];

/** Events per engine turn when applying a backlog. */
const APPLY_CHUNK = 200;
type XReadReply = [key: string, entries: RawEntry[]][] | null;

export interface RedisReplicatorOptions {
  /** Connection for catch-up reads (shared with other non-blocking commands). */
  readonly redis: Redis;
  /** A dedicated connection for the blocking XREAD. */
  readonly blocking: Redis;
  readonly keys: RedisKeys;
  /** This process's instance id: entries it wrote itself are already applied and skipped. */
  readonly instanceId: string;
  /** Receives foreign events, in order per partition. */
  readonly sink: (events: PresenceEvent[]) => void;
  readonly logger: Logger;
  /** Entries per read and stream. Default 200. */
  readonly count?: number;
  /** A foreign checkpoint of partition `p`: make the view of `p` equal to `fold` (replace). */
  readonly onCheckpoint?: (p: number, fold: PartitionFold) => void;
  /** XREAD BLOCK timeout (ms). Default 1000. */
  readonly blockMs?: number;
  /**
   * Redis Cluster: streams live in different slots, and one XREAD may not span
   * slots. Then every partition is read with its own non-blocking XREAD on the
   * shared connection (grouped per shard by auto-pipelining), every `pollMs`
   * when all were empty.
   */
  readonly perSlot?: { readonly pollMs: number };
}

/** A partition's stream folded from its start: the state every process agrees on. */
export interface PartitionFold {
  readonly records: Map<UserId, UserRecord>;
  /** Joined (room, member) pairs of the partition's users. */
  readonly joined: Map<RoomId, Set<UserId>>;
}

export interface ReplicatorStats {
  /** Entries read (all partitions, own entries included). */
  entriesRead: number;
  /** Foreign events handed to the sink. */
  eventsApplied: number;
  /** Entries skipped as duplicates (same writer tenure and sequence number seen before). */
  duplicatesSkipped: number;
  /** Malformed entries skipped. */
  malformed: number;
}

export class RedisReplicator {
  readonly stats: ReplicatorStats = { entriesRead: 0, eventsApplied: 0, duplicatesSkipped: 0, malformed: 0 };
  private readonly lastId: string[];
  /** Per partition: the tenure (lease value) of the last entry and its sequence number. */
  private readonly lastWriter: (string | undefined)[];
  private readonly lastSeq: number[];
  private readonly streamIndex = new Map<string, number>();
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly ownPrefix: string;
  /** When the follow loop last heard from Redis (performance.now). */
  private lastReadAt = performance.now();
  /** The application queue (see `deliver`). */
  private applying: Promise<void> = Promise.resolve();

  constructor(private readonly options: RedisReplicatorOptions) {
    const k = options.keys.partitions;
    this.lastId = new Array<string>(k).fill('0-0');
    this.lastWriter = new Array<string | undefined>(k).fill(undefined);
    this.lastSeq = new Array<number>(k).fill(0);
    for (let p = 0; p < k; p++) this.streamIndex.set(options.keys.stream(p), p);
    this.ownPrefix = `${options.instanceId}/`;
  }

  /**
   * Milliseconds since the follow loop last got an answer from Redis (an idle
   * blocking read answers every `blockMs`): how stale this process's view of
   * the other processes' partitions may be.
   */
  get silentForMs(): number {
    return this.running ? Math.max(0, performance.now() - this.lastReadAt) : 0;
  }

  /** XREAD BLOCK timeout (ms). */
  get blockMs(): number {
    return this.options.blockMs ?? 1000;
  }

  /** The last stream id applied for a partition. */
  position(p: number): string {
    return this.lastId[p] ?? '0-0';
  }

  /** Read every partition to its end (start-up). */
  async catchUpAll(): Promise<void> {
    const parts = Array.from({ length: this.options.keys.partitions }, (_, p) => p);
    await Promise.all(parts.map((p) => this.catchUp(p)));
  }

  /** Read one partition to its current end and apply it (before taking over as its writer). */
  async catchUp(p: number): Promise<void> {
    const count = this.options.count ?? 200;
    for (;;) {
      const from = this.position(p);
      const entries = (await this.options.redis.xrange(this.options.keys.stream(p), `(${from}`, '+', 'COUNT', count)) as RawEntry[];
      if (entries.length === 0) return;
      await this.deliver([[p, entries]]);
      if (entries.length < count) return;
    }
  }

  /**
   * Fold partition `p` from its first entry up to the later of the last entry
   * applied here and `written` (the last entry this process wrote itself: its
   * own entries are never read back, so they may lie beyond the read position),
   * in the application queue, and hand the fold to `correct`. Used after this
   * process lost `p`: changes it applied locally but never wrote are undone,
   * while everything it did write stays. Retries until Redis answers, unless
   * `cancelled()` says the result is no longer wanted. A stream that now ends
   * before an entry this process read or wrote lost its tail (e.g. a lossy
   * replica fail-over): then `lost` is called instead of `correct`, since
   * correcting this view to the stream would adopt the loss.
   */
  resync(p: number, written: string | undefined, correct: (fold: PartitionFold) => void, cancelled: () => boolean = () => false, lost: (why: string) => void = () => {}): Promise<void> {
    this.applying = this.applying.then(async () => {
      let backoff = 100;
      while (!cancelled()) {
        try {
          const read = this.position(p);
          const upTo = written === undefined || (written !== '+' && compareStreamIds(written, read) <= 0) ? read : written;
          const { fold, last } = await this.fold(p, upTo);
          if (upTo !== '+' && compareStreamIds(last, upTo) < 0) lost(`partition ${p}'s stream ends at ${last}, before entry ${upTo} this process already saw`);
          else correct(fold);
          return;
        } catch (error) {
          this.options.logger.warn(`redis replicator: could not resync partition ${p}; retrying`, { error: String(error) });
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(backoff * 2, 2_000);
        }
      }
    });
    return this.applying;
  }

  /** Fold partition `p`'s stream from its start up to `upTo` (a stream id, or '+'); `last`: the last entry folded. */
  private async fold(p: number, upTo: string): Promise<{ fold: PartitionFold; last: string }> {
    let fold: PartitionFold = { records: new Map(), joined: new Map() };
    let last = '0-0';
    const count = 1_000;
    let from = '-';
    while (upTo !== '0-0') {
      const entries = (await this.options.redis.xrange(this.options.keys.stream(p), from, upTo, 'COUNT', count)) as RawEntry[];
      for (const [id, fields] of entries) {
        last = id;
        let rec;
        try {
          rec = decodeEntry(id, fields);
        } catch {
          continue;
        }
        if (rec.checkpoint !== undefined) fold = checkpointFold(rec.checkpoint);
        for (const e of rec.events) foldEvent(fold, e);
      }
      if (entries.length < count) break;
      from = `(${(entries[entries.length - 1] as RawEntry)[0]}`;
    }
    return { fold, last };
  }

  /** Forget every read position and dedup state (after Redis was re-seeded: read every stream from its start). */
  reset(): void {
    this.lastId.fill('0-0');
    this.lastWriter.fill(undefined);
    this.lastSeq.fill(0);
  }

  /** Start following all partitions. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastReadAt = performance.now();
    this.loop = this.follow();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.options.blocking.disconnect();
    await this.loop?.catch(() => {});
  }

  private async follow(): Promise<void> {
    const { keys } = this.options;
    const streams = Array.from({ length: keys.partitions }, (_, p) => keys.stream(p));
    let backoff = 100;
    while (this.running) {
      try {
        const ids = streams.map((_, p) => this.position(p));
        if (this.options.perSlot !== undefined) {
          const replies = await Promise.all(streams.map((s, p) => this.options.redis.xread('COUNT', this.options.count ?? 200, 'STREAMS', s, ids[p] as string) as Promise<XReadReply>));
          backoff = 100;
          this.lastReadAt = performance.now();
          if (!this.running) return;
          const batch: [number, RawEntry[]][] = [];
          replies.forEach((r, p) => {
            const entries = r?.[0]?.[1];
            if (entries !== undefined && entries.length > 0) batch.push([p, entries]);
          });
          if (batch.length > 0) await this.deliver(batch);
          else await new Promise((r) => setTimeout(r, this.options.perSlot?.pollMs));
          continue;
        }
        const reply = (await this.options.blocking.xread(
          'COUNT',
          this.options.count ?? 200,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          ...streams,
          ...ids,
        )) as XReadReply;
        backoff = 100;
        this.lastReadAt = performance.now();
        if (reply === null || !this.running) continue;
        const batch: [number, RawEntry[]][] = [];
        for (const [key, entries] of reply) {
          const p = this.streamIndex.get(key);
          if (p !== undefined) batch.push([p, entries]);
        }
        await this.deliver(batch);
      } catch (error) {
        if (!this.running) return;
        this.options.logger.warn('redis replicator: read failed; retrying', { error: String(error) });
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
  }

  /**
   * Decode (and dedup) synchronously, in read order, then queue the events for
   * the sink. Application is serialised through one queue (a catch-up read and
   * the follow loop never interleave within a partition) and chunked, yielding
   * to the event loop between chunks so a large backlog never stalls lease
   * renewals or client traffic. Resolves once these events are applied.
   */
  private deliver(batch: readonly [number, RawEntry[]][]): Promise<void> {
    const out: PresenceEvent[] = [];
    for (const [p, entries] of batch) {
      for (const [id, fields] of entries) {
        if (compareStreamIds(id, this.lastId[p] as string) <= 0) continue; // already applied
        this.lastId[p] = id;
        this.stats.entriesRead++;
        let rec;
        try {
          rec = decodeEntry(id, fields);
        } catch (error) {
          this.stats.malformed++;
          this.options.logger.error(`redis replicator: skipped entry ${id} of partition ${p}`, { error: String(error) });
          continue;
        }
        if (rec.writer === this.lastWriter[p] && rec.seq <= (this.lastSeq[p] as number)) {
          this.stats.duplicatesSkipped++;
          continue;
        }
        this.lastWriter[p] = rec.writer;
        this.lastSeq[p] = rec.seq;
        if (rec.writer.startsWith(this.ownPrefix)) continue; // written (and applied) by this process
        if (rec.checkpoint !== undefined) {
          // Apply what came before, then the checkpoint as "replace" for the partition.
          const before = out.splice(0);
          const fold = checkpointFold(rec.checkpoint);
          const partition = p;
          if (before.length > 0) this.applying = this.applying.then(() => this.applyChunked(before));
          this.applying = this.applying.then(() => this.applyCheckpoint(partition, fold));
          continue;
        }
        for (const e of rec.events) out.push(e);
      }
    }
    if (out.length === 0) return this.applying;
    this.applying = this.applying.then(() => this.applyChunked(out));
    return this.applying;
  }

  private applyCheckpoint(p: number, fold: PartitionFold): void {
    try {
      this.options.onCheckpoint?.(p, fold);
    } catch (error) {
      this.options.logger.error(`redis replicator: applying a checkpoint of partition ${p} failed`, { error: String(error) });
    }
  }

  private async applyChunked(events: PresenceEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += APPLY_CHUNK) {
      if (i > 0) await new Promise((r) => setImmediate(r));
      const chunk = events.length <= APPLY_CHUNK ? events : events.slice(i, i + APPLY_CHUNK);
      try {
        this.options.sink(chunk);
        this.stats.eventsApplied += chunk.length;
      } catch (error) {
        this.options.logger.error('redis replicator: applying replicated events failed', { error: String(error) });
      }
    }
  }
}

function foldEvent(fold: PartitionFold, e: PresenceEvent): void {
  switch (e.type) {
    case 'user.step':
      fold.records.set(e.userId, evolveUser(fold.records.get(e.userId), e as UserStepEvent));
      return;
    case 'room.membership': {
      let members = fold.joined.get(e.roomId);
      if (members === undefined) fold.joined.set(e.roomId, (members = new Set()));
      if (e.membership === 'join') members.add(e.userId);
      else members.delete(e.userId);
      return;
    }
    case 'presence.full_requested':
      return;
    case 'presence.published':
      return;
    case 'user.policy':
      return; // not part of a partition checkpoint yet (docs/policies.md, "Limits")
  }
}

/** The state a checkpoint describes. */
export function checkpointFold(c: Checkpoint): PartitionFold {
  const fold: PartitionFold = { records: new Map(), joined: new Map() };
  for (const [id, step] of c.records) fold.records.set(id, evolveUser(undefined, step));
  for (const [roomId, members] of c.joined) fold.joined.set(roomId, new Set(members));
  return fold;
}
