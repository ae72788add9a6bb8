/**
 * The write side of the distributed log (docs/distributed.md): an {@link EventLog}
 * whose `append` stays synchronous for the engine and ships the events to the
 * partition streams in the background, with fenced appends (a Lua script that
 * checks the writer's lease before each XADD batch).
 *
 * Acknowledgement: every event queued gets an index; `ack(from, to)` and
 * `flush()` resolve once those events are in the stream under the lease they
 * were written for (and, with `waitReplicas`, confirmed by that many replicas),
 * and reject with {@link NotDurableError} when any of them was fenced, dropped
 * or not replicated: a caller is never told "done" for a write that is not.
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
import { LogError } from '../errors.js';
import { routeEvent, withScripts, type PresenceScripts, type RedisKeys } from './redis-partitions.js';
import { inOrderPerPartition } from './redis-append-order.js';

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
  /** The deployment generation appends are made under. */
  readonly generation: () => string;
  /** An append found the partition's generation key missing or changed: Redis lost data. */
  readonly onDataLoss: (why: string) => void;
  readonly logger: Logger;
  /** After each successful append, `WAIT` for this many replicas (0: do not wait). */
  readonly waitReplicas?: number;
  /** How long `WAIT` may take (ms). Default 1000. */
  readonly waitTimeoutMs?: number;
  /** Redis Cluster: send each script call on its own (a pipeline may not span slots). */
  readonly perSlot?: boolean;
}

/** Why acknowledged events were not made durable. */
export type NotDurableReason = 'fenced' | 'not_owner' | 'replicas' | 'closed' | 'data_loss';

/**
 * A write the caller waited for is not durable in Redis: its partition's lease
 * moved on (`fenced`; the change is undone on this process), the process did
 * not own the partition (`not_owner`), fewer replicas than configured confirmed
 * it (`replicas`: it is on the primary and stays, but may be lost on a failover),
 * the log was closed (`closed`), or Redis lost data (`data_loss`: the deployment
 * is re-seeded, docs/distributed.md). Retry the input on the user's current owner.
 */
export class NotDurableError extends LogError {
  constructor(
    readonly reason: NotDurableReason,
    readonly partition: number,
    message: string,
  ) {
    super(message);
  }
}

interface Failure {
  readonly index: number;
  readonly partition: number;
  readonly reason: NotDurableReason;
}

interface Waiter {
  /** Resolve once every event up to `to` is settled. */
  readonly to: number;
  /** Reject when an event in (from, to] failed (of `partition` only, when set). */
  readonly from: number;
  readonly partition: number | undefined;
  readonly resolve: () => void;
  readonly reject: (e: NotDurableError) => void;
}

interface Batch {
  readonly partition: number;
  readonly writer: string;
  readonly events: PresenceEvent[];
  /** The acknowledgement index of each event (of the checkpoint: one). */
  readonly indices: number[];
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
  readonly indices: number[];
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
  /** Appends that were on the primary but not confirmed by `waitReplicas` replicas in time. */
  underReplicated: number;
}

export class RedisPartitionedLog implements EventLog {
  readonly stats: RedisLogStats = { entriesWritten: 0, eventsWritten: 0, eventsDropped: 0, retries: 0, underReplicated: 0 };
  private readonly redis: Redis & PresenceScripts;
  private readonly listeners = new Set<(e: LogEntry) => void>();
  private pending: Batch[] = [];
  private readonly retryCalls: Call[] = [];
  /** The calls of the pipeline in flight. */
  private inFlight: Call[] = [];
  private readonly sinceCheckpoint: number[] = [];
  /** Next sequence number per partition and writer (lease value). */
  private readonly seqs = new Map<string, number>();
  private appended = 0;
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private closed = false;
  private waiters: Waiter[] = [];
  /** Acknowledgement indices: the last one given, every one up to `settledUpTo` settled, and those settled above it. */
  private queued = 0;
  private settledUpTo = 0;
  private readonly settledAbove = new Set<number>();
  /** Failed indices a waiter may still ask about (pruned below the lowest `from`). */
  private failures: Failure[] = [];
  /** Per partition: the stream id of the last entry this process wrote ('+' when a resend found it landed, id unknown). */
  private readonly writtenIds = new Map<number, string>();
  /** Per partition: the highest failed index (gates outbound federation). */
  private readonly lastFailed = new Map<number, number>();
  /** The `to` of the previous `flush()`: each failure is reported by at least one flush. */
  private flushedTo = 0;

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

  /** The acknowledgement index of the last event queued (see `ack`). */
  get lastIndex(): number {
    return this.queued;
  }

  /** The stream id of the last entry this process wrote to partition `p` (undefined: none; '+': unknown). */
  lastWrittenId(p: number): string | undefined {
    return this.writtenIds.get(p);
  }

  /** Forget the ids written (the streams were re-seeded). */
  forgetWritten(): void {
    this.writtenIds.clear();
    this.seqs.clear();
  }

  /** Partitions with writes queued or in flight. */
  unsettledPartitions(): Set<number> {
    const ps = new Set<number>();
    for (const b of this.pending) ps.add(b.partition);
    for (const c of this.retryCalls) ps.add(c.partition);
    return ps;
  }

  /** The highest index of partition `p` that was not written (0: none). */
  lastFailure(p: number): number {
    return this.lastFailed.get(p) ?? 0;
  }

  /** Every index up to this one is settled (written, or failed). */
  get settledIndex(): number {
    return this.settledUpTo;
  }

  append(events: readonly PresenceEvent[]): readonly LogEntry[] {
    const out: LogEntry[] = [];
    for (const event of events) {
      out.push({ position: ++this.appended, event });
      for (const [p, e] of routeEvent(event, this.options.keys.partitions)) {
        const index = ++this.queued;
        const writer = this.closed ? undefined : this.options.writerFor(p);
        if (writer === undefined) {
          this.stats.eventsDropped++;
          this.options.logger.warn(`redis log: dropped a ${e.type} event for partition ${p}, which this process does not own${this.closed ? ' (log closed)' : ''}`);
          this.settle([index], p, this.closed ? 'closed' : 'not_owner');
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
        if (target !== undefined) {
          target.events.push(e);
          target.indices.push(index);
        } else this.pending.push({ partition: p, writer, events: [e], indices: [index] });
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

  /** Nothing is readable through `read` (the history is in the streams): `engine.explain` then says its answer is incomplete. */
  get firstReadable(): number {
    return this.appended;
  }

  subscribe(): Observable<LogEntry> {
    return new Observable<LogEntry>((subscriber) => {
      const l = (e: LogEntry) => subscriber.next(e);
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  /**
   * Resolves when everything appended *before the call* is durable in Redis;
   * rejects with {@link NotDurableError} when something appended since the
   * previous `flush()` call was fenced or dropped instead. Later appends do not
   * delay it.
   */
  flush(): Promise<void> {
    const from = this.flushedTo;
    this.flushedTo = this.queued;
    return this.ack(from, this.queued);
  }

  /** Resolves once everything queued so far is settled, written or not (internal waits: hand-over, stop). */
  settledAll(): Promise<void> {
    return this.ack(this.queued, this.queued);
  }

  /**
   * Resolves once every event up to index `to` is settled, if none in
   * `(from, to]` (of `partition`, when given) failed; rejects with
   * {@link NotDurableError} otherwise. An input's events are `(lastIndex before,
   * lastIndex after]`; with `from` at `settledIndex` before the input, an input
   * that logged nothing is still refused when an earlier unwritten change of its
   * partition (which it relied on) fails.
   */
  ack(from: number, to: number, partition?: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { from, to, partition, resolve, reject };
      if (!this.check(w)) {
        this.waiters.push(w);
        this.schedule();
      }
    });
  }

  /** Settle a waiter if it can be; true when it was. */
  private check(w: Waiter): boolean {
    const failed = this.failures.find((f) => f.index > w.from && f.index <= w.to && (w.partition === undefined || f.partition === w.partition));
    if (failed !== undefined) {
      w.reject(new NotDurableError(failed.reason, failed.partition, notDurableMessage(failed)));
      return true;
    }
    if (this.settledUpTo < w.to) return false;
    w.resolve();
    return true;
  }

  private settle(indices: readonly number[], partition: number, failure?: NotDurableReason): void {
    for (const i of indices) {
      if (failure !== undefined) {
        this.failures.push({ index: i, partition, reason: failure });
        if (failure !== 'replicas') this.lastFailed.set(partition, Math.max(i, this.lastFailed.get(partition) ?? 0));
      }
      if (i === this.settledUpTo + 1) this.settledUpTo = i;
      else this.settledAbove.add(i);
    }
    while (this.settledAbove.delete(this.settledUpTo + 1)) this.settledUpTo++;
    if (this.waiters.length > 0) this.waiters = this.waiters.filter((w) => !this.check(w));
    // Failures below every possible future `from` can no longer be asked about.
    if (this.failures.length > 0) {
      let floor = Math.min(this.settledUpTo, this.flushedTo);
      for (const w of this.waiters) floor = Math.min(floor, w.from);
      if (this.failures.some((f) => f.index <= floor)) this.failures = this.failures.filter((f) => f.index > floor);
    }
  }

  /** Flush, then refuse further writes (they fail with `closed`). */
  async close(): Promise<void> {
    await this.flush().catch(() => {});
    this.closed = true;
    // Whatever is still queued now (Redis unreachable) is not durable: say so.
    for (const b of this.pending.splice(0)) this.settle(b.indices, b.partition, 'closed');
    for (const c of this.retryCalls.splice(0)) this.settle(c.indices, c.partition, 'closed');
  }

  /**
   * Queue a checkpoint entry for partition `p`, ordered after everything appended
   * so far. `onWritten` gets its stream id. False when this process does not own `p`.
   */
  appendCheckpoint(p: number, checkpoint: string, onWritten: (id: string) => void): boolean {
    const writer = this.options.writerFor(p);
    if (writer === undefined || this.closed) return false;
    this.pending.push({ partition: p, writer, events: [], indices: [++this.queued], checkpoint, onWritten });
    this.sinceCheckpoint[p] = 0;
    this.schedule();
    return true;
  }

  /** Events appended for partition `p` since its last checkpoint (by this process). */
  eventsSinceCheckpoint(p: number): number {
    return this.sinceCheckpoint[p] ?? 0;
  }

  /** Drop pending events of a partition this process lost (they are fenced anyway): their waiters fail. */
  discard(partition: number, reason: NotDurableReason = 'fenced'): void {
    const keep: Batch[] = [];
    const dropped: Batch[] = [];
    for (const b of this.pending) (b.partition === partition ? dropped : keep).push(b);
    this.pending = keep;
    for (const b of dropped) {
      this.stats.eventsDropped += b.events.length;
      this.settle(b.indices, partition, reason);
    }
  }

  /** Resolves when nothing of partition `p` is queued or in flight (a lost partition's writes all settled). */
  async quiesce(p: number): Promise<void> {
    for (;;) {
      let last = 0;
      for (const b of this.pending) if (b.partition === p) last = Math.max(last, ...b.indices);
      for (const c of this.retryCalls) if (c.partition === p) last = Math.max(last, ...c.indices);
      for (const c of this.inFlight) if (c.partition === p) last = Math.max(last, ...c.indices);
      if (last === 0 || this.closed) return;
      await this.ack(last, last).catch(() => {});
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing !== undefined || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.drain().finally(() => {
        this.flushing = undefined;
        if ((this.pending.length > 0 || this.retryCalls.length > 0) && !this.closed) this.schedule();

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
          for (const i of b.indices) prev.indices.push(i);
        } else if (b.checkpoint !== undefined) {
          // A checkpoint is a call of its own: its reply is the checkpoint's stream id.
          calls.push({ partition: b.partition, writer: b.writer, firstSeq: 0, payloads: [b.checkpoint], events: 1, indices: b.indices, sent: false, onWritten: b.onWritten });
        } else {
          calls.push({ partition: b.partition, writer: b.writer, firstSeq: 0, payloads: [JSON.stringify(b.events)], events: b.events.length, indices: [...b.indices], sent: false });
        }
      }
      const pipeline = (this.options.perSlot === true ? undefined : this.redis.pipeline()) as unknown as PresenceScripts & { exec(): Promise<[Error | null, unknown][] | null> };
      const k = this.options.keys;
      for (const call of calls) {
        if (!call.sent) {
          call.firstSeq = this.nextSeq(call.partition, call.writer, call.payloads.length);
          call.sent = true;
        }
        if (this.options.perSlot !== true) void pipeline.presenceAppend(k.lease(call.partition), k.stream(call.partition), k.last(call.partition), k.gen(call.partition), call.writer, call.firstSeq, this.options.generation(), ...call.payloads);
      }
      const replicas = this.options.waitReplicas ?? 0;
      let results: [Error | null, unknown][] | null;
      let confirmed = Infinity;
      this.inFlight = calls;
      try {
        results =
          this.options.perSlot === true
            ? await inOrderPerPartition(calls, (call) =>
                this.redis
                  .presenceAppendInOrder(k.lease(call.partition), k.stream(call.partition), k.last(call.partition), k.gen(call.partition), call.writer, call.firstSeq, this.options.generation(), ...call.payloads)
                  .then(
                    (v): [Error | null, unknown] => [null, v],
                    (e: unknown): [Error | null, unknown] => [e instanceof Error ? e : new Error(String(e)), null],
                  ),
              )
            : await pipeline.exec();
        // WAIT on the same connection covers every write sent on it so far.
        if (replicas > 0) confirmed = Number(await this.redis.wait(replicas, this.options.waitTimeoutMs ?? 1_000));
      } catch (error) {
        results = null;
        this.options.logger.warn('redis log: append failed; retrying', { error: String(error) });
      } finally {
        this.inFlight = [];
      }
      const retry: Call[] = [];
      calls.forEach((call, i) => {
        const r = results?.[i];
        const err = results === null ? new Error('pipeline failed') : (r?.[0] ?? null);
        if (err === null) {
          this.stats.entriesWritten += call.payloads.length;
          this.stats.eventsWritten += call.events;
          if (confirmed < replicas) {
            this.stats.underReplicated++;
            this.options.logger.warn(`redis log: partition ${call.partition}: ${confirmed} of ${replicas} replica(s) confirmed the append in time`);
            this.settle(call.indices, call.partition, 'replicas');
          } else this.settle(call.indices, call.partition);
          const id = typeof r?.[1] === 'string' && r[1] !== '' ? r[1] : '+';
          this.writtenIds.set(call.partition, id);
          if (call.onWritten !== undefined && id !== '+') call.onWritten(id);
        } else if (err.message.includes('GENERATION') || err.message.startsWith('LOST ')) {
          this.stats.eventsDropped += call.events;
          this.settle(call.indices, call.partition, 'data_loss');
          this.options.onDataLoss(`an append to partition ${call.partition} was refused: ${err.message}`);
        } else if (err.message.includes('FENCED')) {
          this.stats.eventsDropped += call.events;
          this.settle(call.indices, call.partition, 'fenced');
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
  private nextSeq(partition: number, writer: string, count: number): number {
    // Per partition: lease values (`<instance>/<epoch>`) repeat across partitions, and each partition's numbers must have no gaps.
    // And per generation: after a wipe epochs restart, so a lease value may come back in the next generation.
    const key = `${partition} ${writer} ${this.options.generation()}`;
    const n = this.seqs.get(key) ?? 1;
    this.seqs.set(key, n + count);
    return n;
  }
}

function notDurableMessage(f: Failure): string {
  switch (f.reason) {
    case 'fenced':
      return `partition ${f.partition} was taken over by another process before this write reached Redis: it was not applied; retry on the user's current owner`;
    case 'not_owner':
      return `partition ${f.partition} is not owned by this process: the write was dropped; route it to the owner`;
    case 'replicas':
      return `the write to partition ${f.partition} is on the Redis primary but fewer replicas than configured (wait_replicas) confirmed it in time; it may be lost on a failover`;
    case 'closed':
      return `the log was closed before the write to partition ${f.partition} reached Redis`;
    case 'data_loss':
      return `Redis lost data (partition ${f.partition}'s generation key is gone or changed): the write was refused; retry once the deployment is re-seeded`;
  }
}
