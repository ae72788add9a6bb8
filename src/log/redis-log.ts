/**
 * The write side of the distributed log (docs/distributed.md): an {@link EventLog}
 * whose `append` stays synchronous for the engine and ships the events to the
 * partition streams in the background, with fenced appends (a Lua script that
 * checks the writer's lease before each XADD batch).
 *
 * Order: one flush is in flight at a time and batches keep append order, so each
 * partition's entries are in the order the engine committed them. Entries carry
 * the writer's lease value and a sequence number per tenure; a resend after a
 * lost reply writes the same sequence number again and readers skip it.
 */
import type { Redis } from 'ioredis';
import { Observable } from 'rxjs';
import type { LogEntry, PresenceEvent } from '../domain/events.js';
import type { EventLog } from './event-log.js';
import type { Logger } from '../logger.js';
import { routeEvent, withScripts, type PresenceScripts, type RedisKeys } from './redis-partitions.js';

/** Events per stream entry (one XADD). */
const EVENTS_PER_ENTRY = 256;
/** Entries per script call. */
const ENTRIES_PER_CALL = 64;

export interface RedisPartitionedLogOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  /** The lease value this process writes partition `p` under, or undefined when it does not own it. */
  readonly writerFor: (p: number) => string | undefined;
  /** An append was refused because the lease moved on: the partition is lost. */
  readonly onFenced: (p: number, writer: string) => void;
  readonly logger: Logger;
}

interface Batch {
  readonly partition: number;
  readonly writer: string;
  readonly events: PresenceEvent[];
  /** A checkpoint entry (its own entry and call); `events` is empty. */
  readonly checkpoint?: string;
  readonly onWritten?: (id: string) => void;
}

/** One script call: consecutive entries of one partition and tenure. */
interface Call {
  readonly partition: number;
  readonly writer: string;
  /** Sequence number of the first entry: assigned when first sent, reused on resend. */
  firstSeq: number;
  readonly payloads: string[];
  events: number;
  sent: boolean;
  readonly onWritten?: ((id: string) => void) | undefined;
}

export interface RedisLogStats {
  /** Stream entries written. */
  entriesWritten: number;
  /** Events written. */
  eventsWritten: number;
  /** Events dropped: appended for a partition this process did not own, or fenced. */
  eventsDropped: number;
  /** Script calls retried after an error. */
  retries: number;
}

export class RedisPartitionedLog implements EventLog {
  readonly stats: RedisLogStats = { entriesWritten: 0, eventsWritten: 0, eventsDropped: 0, retries: 0 };
  private readonly redis: Redis & PresenceScripts;
  private readonly listeners = new Set<(e: LogEntry) => void>();
  private pending: Batch[] = [];
  private readonly retryCalls: Call[] = [];
  private readonly sinceCheckpoint: number[] = [];
  /** Next sequence number per writer (lease value). */
  private readonly seqs = new Map<string, number>();
  private appended = 0;
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private closed = false;
  /** Flush waiters: resolved once `settled` reaches their target. */
  private waiters: { target: number; resolve: () => void }[] = [];
  /** Events queued for Redis so far, and events written or dropped so far. */
  private queued = 0;
  private settled = 0;

  constructor(private readonly options: RedisPartitionedLogOptions) {
    this.redis = withScripts(options.redis);
  }

  get position(): number {
    return this.appended;
  }

  /** Events not yet acknowledged by Redis. */
  get backlog(): number {
    let n = 0;
    for (const b of this.pending) n += b.events.length;
    return n;
  }

  append(events: readonly PresenceEvent[]): readonly LogEntry[] {
    const out: LogEntry[] = [];
    for (const event of events) {
      out.push({ position: ++this.appended, event });
      for (const [p, e] of routeEvent(event, this.options.keys.partitions)) {
        const writer = this.options.writerFor(p);
        if (writer === undefined) {
          this.stats.eventsDropped++;
          this.options.logger.warn(`redis log: dropped a ${e.type} event for partition ${p}, which this process does not own`);
          continue;
        }
        // Extend the partition's newest batch (order matters per partition only; batches of other partitions may sit after it).
        let target: Batch | undefined;
        for (let i = this.pending.length - 1; i >= 0; i--) {
          const b = this.pending[i] as Batch;
          if (b.partition === p) {
            if (b.writer === writer && b.checkpoint === undefined && b.events.length < EVENTS_PER_ENTRY) target = b;
            break;
          }
        }
        if (target !== undefined) target.events.push(e);
        else this.pending.push({ partition: p, writer, events: [e] });
        this.queued++;
        this.sinceCheckpoint[p] = (this.sinceCheckpoint[p] ?? 0) + 1;
      }
    }
    if (this.listeners.size > 0) for (const e of out) for (const l of [...this.listeners]) l(e);
    this.schedule();
    return out;
  }

  /** The distributed log is read by the replicator (per partition), not through this interface. */
  read(): Iterable<LogEntry> {
    return [];
  }

  subscribe(): Observable<LogEntry> {
    return new Observable<LogEntry>((subscriber) => {
      const l = (e: LogEntry) => subscriber.next(e);
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  /**
   * Resolves when everything appended *before the call* is in Redis (or was
   * dropped as fenced or discarded); later appends do not delay it.
   */
  flush(): Promise<void> {
    if (this.settled >= this.queued || this.closed) return Promise.resolve();
    this.schedule();
    const target = this.queued;
    return new Promise((resolve) => this.waiters.push({ target, resolve }));
  }

  private settle(events: number): void {
    this.settled += events;
    if (this.waiters.length === 0) return;
    const still: { target: number; resolve: () => void }[] = [];
    for (const w of this.waiters) {
      if (this.settled >= w.target) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Flush, then refuse further writes (they are dropped with a warning). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /**
   * Queue a checkpoint entry for partition `p`, ordered after everything appended
   * so far. `onWritten` gets its stream id. False when this process does not own `p`.
   */
  appendCheckpoint(p: number, checkpoint: string, onWritten: (id: string) => void): boolean {
    const writer = this.options.writerFor(p);
    if (writer === undefined || this.closed) return false;
    this.pending.push({ partition: p, writer, events: [], checkpoint, onWritten });
    this.queued++;
    this.sinceCheckpoint[p] = 0;
    this.schedule();
    return true;
  }

  /** Events appended for partition `p` since its last checkpoint (by this process). */
  eventsSinceCheckpoint(p: number): number {
    return this.sinceCheckpoint[p] ?? 0;
  }

  /** Drop pending events of a partition this process lost (they are fenced anyway). */
  discard(partition: number): void {
    const keep: Batch[] = [];
    for (const b of this.pending) {
      if (b.partition === partition) {
        this.stats.eventsDropped += b.events.length;
        this.settle(b.checkpoint !== undefined ? 1 : b.events.length);
      }
      else keep.push(b);
    }
    this.pending = keep;
  }

  private schedule(): void {
    if (this.scheduled || this.flushing !== undefined || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.drain().finally(() => {
        this.flushing = undefined;
        if ((this.pending.length > 0 || this.retryCalls.length > 0) && !this.closed) this.schedule();
        else if (this.closed) for (const w of this.waiters.splice(0)) w.resolve();
      });
    });
  }

  private async drain(): Promise<void> {
    let backoff = 50;
    while (this.retryCalls.length > 0 || this.pending.length > 0) {
      // Calls that failed are resent first, intact (same sequence numbers: readers skip what did land).
      const calls = this.retryCalls.splice(0);
      for (const b of this.pending.splice(0, ENTRIES_PER_CALL * 4)) {
        const prev = calls[calls.length - 1];
        if (
          prev !== undefined &&
          !prev.sent &&
          prev.onWritten === undefined &&
          b.checkpoint === undefined &&
          prev.partition === b.partition &&
          prev.writer === b.writer &&
          prev.payloads.length < ENTRIES_PER_CALL
        ) {
          prev.payloads.push(JSON.stringify(b.events));
          prev.events += b.events.length;
        } else if (b.checkpoint !== undefined) {
          // A checkpoint is a call of its own: its reply is the checkpoint's stream id.
          calls.push({ partition: b.partition, writer: b.writer, firstSeq: 0, payloads: [b.checkpoint], events: 1, sent: false, onWritten: b.onWritten });
        } else {
          calls.push({ partition: b.partition, writer: b.writer, firstSeq: 0, payloads: [JSON.stringify(b.events)], events: b.events.length, sent: false });
        }
      }
      const pipeline = this.redis.pipeline() as unknown as PresenceScripts & { exec(): Promise<[Error | null, unknown][] | null> };
      const k = this.options.keys;
      for (const call of calls) {
        if (!call.sent) {
          call.firstSeq = this.nextSeq(call.writer, call.payloads.length);
          call.sent = true;
        }
        void pipeline.presenceAppend(k.lease(call.partition), k.stream(call.partition), call.writer, call.firstSeq, ...call.payloads);
      }
      let results: [Error | null, unknown][] | null;
      try {
        results = await pipeline.exec();
      } catch (error) {
        results = null;
        this.options.logger.warn('redis log: append failed; retrying', { error: String(error) });
      }
      const retry: Call[] = [];
      calls.forEach((call, i) => {
        const r = results?.[i];
        const err = results === null ? new Error('pipeline failed') : (r?.[0] ?? null);
        if (err === null) {
          this.stats.entriesWritten += call.payloads.length;
          this.stats.eventsWritten += call.events;
          this.settle(call.events);
          if (call.onWritten !== undefined && typeof r?.[1] === 'string') call.onWritten(r[1]);
        } else if (err.message.includes('FENCED')) {
          this.stats.eventsDropped += call.events;
          this.settle(call.events);
          this.options.logger.warn(`redis log: partition ${call.partition} was taken over; ${call.events} event(s) dropped`);
          this.options.onFenced(call.partition, call.writer);
        } else {
          retry.push(call);
        }
      });
      if (retry.length > 0) {
        this.stats.retries++;
        this.retryCalls.push(...retry);
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 2_000);
      } else backoff = 50;
    }
  }

  /** Reserve `count` consecutive sequence numbers of a tenure. */
  private nextSeq(writer: string, count: number): number {
    const n = this.seqs.get(writer) ?? 1;
    this.seqs.set(writer, n + count);
    return n;
  }
}
