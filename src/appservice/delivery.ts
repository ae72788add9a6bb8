/**
 * Presence delivery to one application service: MSC2409 ephemeral events in
 * `PUT {url}/_matrix/app/v1/transactions/{txnId}`.
 *
 * - **Source.** Committed log entries name the users whose presence may have
 *   changed (notified steps, joins that make users newly visible, full-presence
 *   requests). They wait in `pending` (one entry per user, the oldest log
 *   position that put them there), so a burst while a transaction is in flight
 *   costs one entry per user: the next transaction carries each user's state as
 *   it is when the transaction is built (latest state wins).
 * - **One in flight.** A failed transaction is retried unchanged (same txnId,
 *   same body, as the appservice API asks) after an exponential back-off with
 *   a cap; what arrives meanwhile waits for the next one.
 * - **Durable position.** After each acknowledged transaction the position
 *   below which every log entry has been delivered is saved to the store. On
 *   start-up the log is read from there; when it no longer holds those entries
 *   (compacted, or another log), the current state of every known interesting
 *   user is sent once. So a restart loses nothing, and resends at most the
 *   latest state of users whose transaction was not yet acknowledged.
 */
import type { Subscription } from 'rxjs';
import type { PresenceEngine } from '../engine.js';
import type { LogEntry } from '../domain/events.js';
import type { UserId } from '../domain/ids.js';
import { formatPresenceEvent, type PresenceEventJson } from '../domain/format.js';
import type { Logger } from '../logger.js';
import type { TimerHandle } from '../clock.js';
import { AppserviceInterest } from './interest.js';
import type { AppserviceRegistration } from './registration.js';
import type { AppservicePositionStore } from './position-store.js';

/** The JSON body of one transaction. */
export interface AppserviceTransactionBody {
  readonly events: readonly never[];
  readonly ephemeral?: readonly PresenceEventJson[];
  readonly 'de.sorunome.msc2409.ephemeral'?: readonly PresenceEventJson[];
}

/** Sends one transaction; resolves when the appservice answered 2xx, rejects otherwise. */
export type AppserviceTransport = (request: {
  readonly url: string;
  readonly txnId: string;
  readonly hsToken: string;
  readonly body: AppserviceTransactionBody;
  readonly signal: AbortSignal;
}) => Promise<void>;

export interface AppserviceDeliveryOptions {
  readonly engine: PresenceEngine;
  readonly registration: AppserviceRegistration;
  readonly store: AppservicePositionStore;
  /** Default: HTTP with `fetch` and `requestTimeoutMs`. */
  readonly transport?: AppserviceTransport;
  readonly logger?: Logger;
  /** Most presence events per transaction (Synapse sends at most 100 ephemeral events). Default 100. */
  readonly maxEventsPerTransaction?: number;
  /** First retry delay after a failure; doubles per consecutive failure. Default 1 000 ms. */
  readonly initialBackoffMs?: number;
  /** Longest retry delay. Default 300 000 ms. */
  readonly maxBackoffMs?: number;
  /** Deadline of one HTTP request (default transport). Default 30 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Called after every attempt (for latency histograms). */
  readonly onAttempt?: (result: { readonly ok: boolean; readonly ms: number; readonly events: number }) => void;
}

/** Counters and gauges of one appservice's delivery. */
export interface AppserviceDeliveryStats {
  /** Acknowledged transactions. */
  transactions: number;
  /** Presence events in acknowledged transactions. */
  events: number;
  /** Failed attempts. */
  failures: number;
  /** Failed attempts since the last success (0 when healthy). */
  consecutiveFailures: number;
  /** Milliseconds the last acknowledged transaction took. */
  lastLatencyMs: number;
  /** Log position below which everything was delivered (what the store holds). */
  position: number;
  /** Times the log could not answer from the saved position and every known user was resent. */
  fullResends: number;
}

interface Transaction {
  readonly txnId: string;
  readonly body: AppserviceTransactionBody;
  readonly events: number;
}

const DEFAULT_MAX_EVENTS = 100;
const DEFAULT_INITIAL_BACKOFF_MS = 1_000;
const DEFAULT_MAX_BACKOFF_MS = 300_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** With nothing queued, the position is saved once it is this many entries behind. */
const IDLE_SAVE_EVERY = 1_024;

/** A non-2xx answer or a network failure of one transaction. */
export class AppserviceTransactionError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'AppserviceTransactionError';
  }
}

/** The default transport: `PUT` with the hs_token as a bearer token. */
export function httpAppserviceTransport(requestTimeoutMs: number, fetchFn: typeof fetch = fetch): AppserviceTransport {
  return async ({ url, txnId, hsToken, body, signal }) => {
    const target = `${url}/_matrix/app/v1/transactions/${encodeURIComponent(txnId)}`;
    let res: Response;
    try {
      res = await fetchFn(target, {
        method: 'PUT',
        headers: { authorization: `Bearer ${hsToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)]),
      });
    } catch (error) {
      throw new AppserviceTransactionError(`PUT ${target} failed: ${(error as Error).message}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new AppserviceTransactionError(`PUT ${target} answered ${res.status}`, res.status);
  };
}

export class AppserviceDelivery {
  readonly interest: AppserviceInterest;
  readonly stats: AppserviceDeliveryStats = { transactions: 0, events: 0, failures: 0, consecutiveFailures: 0, lastLatencyMs: 0, position: 0, fullResends: 0 };
  /** Users to look at → the oldest log position that put them here (insertion order is position order). */
  private readonly pending = new Map<UserId, number>();
  /** The last log position examined. */
  private seen = 0;
  private inFlight: Transaction | undefined;
  private building = false;
  private retryTimer: TimerHandle | undefined;
  private subscription: Subscription | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  private txnCounter = 0;
  private readonly runId: string;
  private readonly transport: AppserviceTransport;
  private readonly maxEvents: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: AppserviceDeliveryOptions) {
    this.interest = new AppserviceInterest(options.engine, options.registration);
    this.transport = options.transport ?? httpAppserviceTransport(options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.maxEvents = options.maxEventsPerTransaction ?? DEFAULT_MAX_EVENTS;
    this.initialBackoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.maxBackoffMs = Math.max(this.initialBackoffMs, options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
    // Transaction ids must not repeat across restarts, or the appservice would drop them as duplicates.
    this.runId = `${options.engine.clock.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  }

  get id(): string {
    return this.options.registration.id;
  }

  /** Users waiting for a transaction. */
  get queued(): number {
    return this.pending.size;
  }

  /** Whether a transaction is being sent or waits for its retry. */
  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /**
   * Resume from the stored position and follow the log. Call once, after the
   * engine has replayed its log.
   */
  async start(): Promise<void> {
    const { engine } = this.options;
    const saved = await this.options.store.load();
    const head = engine.log.position;
    // Subscribing and reading the backlog in one synchronous stretch: no entry is missed or seen twice.
    this.subscription = engine.committed$.subscribe((entries) => this.onEntries(entries));
    if (saved === undefined) this.seen = head; // a new appservice starts from now, as in Synapse
    else if (saved > head) this.resendAll(head, `the saved position ${saved} is past the log's end ${head} (another log?)`);
    else {
      try {
        this.seen = saved;
        this.onEntries(engine.log.read(saved), false);
      } catch (error) {
        this.resendAll(head, (error as Error).message);
      }
    }
    this.stats.position = saved ?? head;
    if (saved === undefined) await this.options.store.save(head);
    this.kick();
  }

  /** Resolves once nothing is queued or in flight (tests, benchmarks, shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop following the log and abort the transaction in flight; the stored position stays. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.subscription?.unsubscribe();
    this.retryTimer?.cancel();
    this.abort.abort();
    await this.options.store.close?.();
  }

  // ───────────────────────────── source ─────────────────────────────

  private onEntries(entries: Iterable<LogEntry>, kick = true): void {
    const interest = this.interest;
    for (const { position, event } of entries) {
      if (position <= this.seen) continue;
      this.seen = position;
      switch (event.type) {
        case 'user.step':
          if (event.streamId !== undefined) {
            interest.noteUser(event.userId);
            this.add(event.userId, position);
          }
          break;
        case 'room.membership':
          interest.roomChanged(event.roomId);
          interest.noteUser(event.userId);
          if (event.membership === 'join' && event.streamId !== undefined) {
            // The joiner is newly visible to the room; a namespace joiner newly sees every member.
            this.add(event.userId, position);
            if (interest.inNamespace(event.userId)) for (const m of this.options.engine.getRoomMembers(event.roomId)) this.add(m, position);
          }
          break;
        case 'presence.full_requested':
          if (event.userIds.some((u) => interest.inNamespace(u))) this.resendAll(position, 'a full presence send was requested for a namespace user');
          break;
      }
    }
    if (kick) this.kick();
  }

  private add(userId: UserId, position: number): void {
    if (!this.pending.has(userId)) this.pending.set(userId, position);
  }

  /** Queue every user with a stored presence; interest is checked when the transactions are built. */
  private resendAll(position: number, why: string): void {
    this.stats.fullResends++;
    this.options.logger?.info(`appservice ${this.id}: sending the current presence of every interesting user: ${why}`);
    for (const s of this.options.engine.knownUsers()) this.add(s.userId, position);
    this.seen = Math.max(this.seen, position);
  }

  // ───────────────────────────── transactions ─────────────────────────────

  private kick(): void {
    if (this.stopped || this.inFlight !== undefined || this.building) return;
    if (this.pending.size === 0) {
      // Entries that concerned nobody (e.g. steps that were not notified) still move the position, now and then.
      if (this.seen - this.stats.position >= IDLE_SAVE_EVERY) void this.acknowledged();
      this.settle();
      return;
    }
    this.building = true;
    void this.build().then(
      (txn) => {
        this.building = false;
        if (this.stopped) return;
        if (txn === undefined) {
          void this.acknowledged().then(() => this.kick());
          return;
        }
        this.inFlight = txn;
        void this.attempt(txn);
      },
      (error: unknown) => {
        this.building = false;
        this.options.logger?.error(`appservice ${this.id}: building a transaction failed`, { error: String(error) });
      },
    );
  }

  /** Take interesting users from `pending`, oldest first, up to the cap; undefined when none is interesting. */
  private async build(): Promise<Transaction | undefined> {
    const { engine } = this.options;
    const interest = this.interest;
    await interest.refreshRouterInterest();
    const picked: UserId[] = [];
    while (picked.length < this.maxEvents && this.pending.size > 0) {
      const rest: UserId[] = [];
      for (const userId of this.pending.keys()) {
        if (picked.length + rest.length >= this.maxEvents) break;
        this.pending.delete(userId);
        if (interest.interestedNow(userId)) picked.push(userId);
        else rest.push(userId);
      }
      if (rest.length > 0 && engine.router.active) {
        const routed = await interest.routedToNamespace(rest.map((u) => engine.getUserPresence(u)));
        for (const u of rest) if (routed.has(u)) picked.push(u);
      }
    }
    if (picked.length === 0) return undefined;
    const now = engine.clock.now();
    const busy = engine.config.busyWireValue;
    const events = picked.map((u) => formatPresenceEvent(engine.getUserPresence(u), now, busy));
    const { stable, unstable } = this.options.registration.ephemeral;
    const body: AppserviceTransactionBody = {
      events: [],
      ...(stable || !unstable ? { ephemeral: events } : {}),
      ...(unstable ? { 'de.sorunome.msc2409.ephemeral': events } : {}),
    };
    return { txnId: `${this.runId}.${++this.txnCounter}`, body, events: events.length };
  }

  private async attempt(txn: Transaction): Promise<void> {
    const { registration } = this.options;
    const started = performance.now();
    if (registration.url === null) {
      // No URL: the appservice takes no transactions (Synapse skips it too).
      this.inFlight = undefined;
      await this.acknowledged();
      this.kick();
      return;
    }
    try {
      await this.transport({ url: registration.url, txnId: txn.txnId, hsToken: registration.hsToken, body: txn.body, signal: this.abort.signal });
    } catch (error) {
      if (this.stopped) return;
      const ms = performance.now() - started;
      this.stats.failures++;
      this.stats.consecutiveFailures++;
      this.options.onAttempt?.({ ok: false, ms, events: txn.events });
      const delay = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** Math.min(30, this.stats.consecutiveFailures - 1));
      this.options.logger?.warn(`appservice ${this.id}: transaction ${txn.txnId} failed (${(error as Error).message}); retrying in ${delay} ms`);
      this.retryTimer = this.options.engine.clock.setTimer(delay, () => {
        this.retryTimer = undefined;
        if (!this.stopped) void this.attempt(txn);
      });
      return;
    }
    if (this.stopped) return;
    const ms = performance.now() - started;
    this.stats.transactions++;
    this.stats.events += txn.events;
    this.stats.consecutiveFailures = 0;
    this.stats.lastLatencyMs = ms;
    this.options.onAttempt?.({ ok: true, ms, events: txn.events });
    this.inFlight = undefined;
    await this.acknowledged();
    this.kick();
  }

  /** Everything before the oldest pending user (or everything seen) is delivered: save it. */
  private async acknowledged(): Promise<void> {
    let position = this.seen;
    for (const p of this.pending.values()) {
      position = p - 1;
      break;
    }
    if (position <= this.stats.position) return;
    this.stats.position = position;
    try {
      await this.options.store.save(position);
    } catch (error) {
      this.options.logger?.error(`appservice ${this.id}: could not save the delivered position ${position}`, { error: String(error) });
    }
  }

  private isIdle(): boolean {
    return this.pending.size === 0 && this.inFlight === undefined && !this.building;
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
