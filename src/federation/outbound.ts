/**
 * Outbound federation presence (spec §3.8.3, docs/federation.md).
 *
 * The engine enqueues local users' states per destination server during a
 * turn and calls {@link FederationOutbound.flush} at the end of it. Per
 * destination, pending states coalesce (latest state per user, oldest first)
 * until the next transmission; a transmission carries `m.presence` EDUs of at
 * most 50 states each, with `last_active_ago` computed when it is built.
 *
 * Two ways to consume transmissions:
 * - **Observe** `transmissions$` (the engine's `federationOutbound$`): every
 *   transmission is emitted there. Without an attached transport this is
 *   fire-and-forget: the destination is ready again at once.
 * - **Attach a {@link FederationTransport}** (`engine.attachFederationTransport`):
 *   the queue then calls `transport.send` itself and tracks each destination.
 *   While a send is in flight or the destination is backing off after a
 *   failure, its pending map keeps coalescing. A failed send puts its states
 *   back (unless a newer state for the same user is pending) and retries with
 *   exponential back-off on the injected clock. Once a destination has been
 *   failing for `dropAfterMs` (default one hour), each further failure drops
 *   its pending presence and counts it in `droppedStates` (presence is lossy).
 */
import { Subject } from 'rxjs';
import { z } from 'zod';
import type { Clock, TimerHandle } from '../clock.js';
import type { BusyWireValue } from '../domain/format.js';
import { serverNameOf, type ServerName, type UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import { FederationError, InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import { buildPresenceEdus, MAX_PRESENCE_STATES_PER_EDU, type PresenceEdu } from './edu.js';

/** One transmission to one destination server: the presence EDUs of one federation transaction. */
export interface FederationTransmission {
  readonly destination: ServerName;
  readonly edus: readonly PresenceEdu[];
}

/**
 * Delivers transmissions to remote servers. Implementations: the in-process
 * loopback (`connectLoopback`) and, in the service, an HTTP client that PUTs a
 * federation transaction `{ origin, origin_server_ts, edus }`.
 *
 * Contract:
 * - `send` resolves once the destination accepted the EDUs (e.g. HTTP 200 to
 *   `PUT /_matrix/federation/v1/send/{txnId}`) and rejects on any failure
 *   (network error, non-2xx status, its own timeout).
 * - The engine never has two sends to the same destination in flight; sends to
 *   different destinations run concurrently.
 * - `send` must not throw synchronously (if it does, it counts as a failure).
 * - EDUs are plain JSON-serialisable objects; do not mutate them.
 */
export interface FederationTransport {
  send(destination: ServerName, edus: readonly PresenceEdu[]): Promise<void>;
}

/** Back-off and size limits of an attached transport. All values in milliseconds except counts. */
export interface FederationTransportOptions {
  /** First retry delay after a failure. Default 5 s. */
  readonly initialBackoffMs?: number;
  /** Longest retry delay. Default 10 min. */
  readonly maxBackoffMs?: number;
  /** Growth factor of the retry delay per consecutive failure. Default 2. */
  readonly backoffMultiplier?: number;
  /** After a destination has been failing this long, failures drop its pending presence. Default 1 h. */
  readonly dropAfterMs?: number;
  /** A send that has not settled after this long counts as failed. Default 60 s. */
  readonly sendTimeoutMs?: number;
  /** EDUs per transmission (a Matrix transaction holds at most 100). Default 100. */
  readonly maxEdusPerTransmission?: number;
}

const positiveInt = z.number().int().positive();
export const FederationTransportOptionsSchema = z.strictObject({
  initialBackoffMs: positiveInt.default(5_000),
  maxBackoffMs: positiveInt.default(600_000),
  backoffMultiplier: z.number().min(1).default(2),
  dropAfterMs: positiveInt.default(3_600_000),
  sendTimeoutMs: positiveInt.default(60_000),
  maxEdusPerTransmission: positiveInt.max(100).default(100),
});
type ResolvedOptions = z.output<typeof FederationTransportOptionsSchema>;

/** Counters and sizes of the outbound queue. */
export interface FederationOutboundStats {
  /** Transmissions emitted (each one send when a transport is attached). */
  transmissions: number;
  /** States carried by those transmissions (re-sends included). */
  statesSent: number;
  /** Sends that failed or timed out. */
  sendFailures: number;
  /** States dropped because their destination had been failing for `dropAfterMs`. */
  droppedStates: number;
  /** States waiting, over all destinations. */
  pendingStates: number;
  /** Destinations with a send in flight. */
  destinationsInFlight: number;
  /** Destinations waiting for a retry. */
  destinationsBackingOff: number;
  /** Each destination the queue tracks (states waiting, a send in flight, or failing), by name. */
  destinations: readonly FederationDestinationState[];
}

/** `idle`: nothing in flight (states wait for the end of a turn); `sending`: one send in flight; `backoff`: waiting to retry after a failure. */
export type FederationDestinationPhase = 'idle' | 'sending' | 'backoff';

/** One destination's queue and back-off, as {@link FederationOutbound.stats} shows it. Times are engine-clock ms. */
export interface FederationDestinationState {
  readonly destination: ServerName;
  readonly phase: FederationDestinationPhase;
  /** States waiting (not counting the send in flight). */
  readonly pending: number;
  /** States in the send in flight (0 unless `sending`). */
  readonly inFlight: number;
  /** Failed sends in a row (0 after a success). */
  readonly consecutiveFailures: number;
  /** When the current run of failures began, or null. */
  readonly failingSince: number | null;
  /** When the next retry is due (in `backoff`), or null. */
  readonly retryAt: number | null;
  /** The current retry delay (0 when not failing). */
  readonly backoffMs: number;
}

/** Returned by `attachFederationTransport`. */
export interface FederationLink {
  readonly transport: FederationTransport;
  /** Stop using the transport: in-flight results are ignored, their states are queued again, timers are cancelled. */
  detach(): void;
}

type Phase = FederationDestinationPhase;

interface Destination {
  readonly name: ServerName;
  /** user → latest state; insertion order is the age of the latest state (oldest first). */
  pending: Map<UserId, UserPresenceState>;
  phase: Phase;
  /** Incremented per send, so a late answer of an abandoned send is ignored. */
  attempt: number;
  sending: readonly UserPresenceState[] | null;
  failingSince: number | null;
  failures: number;
  backoffMs: number;
  retryAt: number | null;
  timer: TimerHandle | null;
}

interface AttachedLink extends FederationLink {
  readonly options: ResolvedOptions;
}

export class FederationOutbound {
  readonly transmissions$ = new Subject<FederationTransmission>();
  private readonly destinations = new Map<ServerName, Destination>();
  private readonly dirty = new Set<ServerName>();
  private link: AttachedLink | null = null;
  private stopped = false;
  private readonly counters = { transmissions: 0, statesSent: 0, sendFailures: 0, droppedStates: 0 };

  constructor(
    private readonly ownServer: ServerName,
    private readonly busy: BusyWireValue,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Queue `states` for each destination except ourselves. Remote users' states are never forwarded (skipped). */
  enqueue(destinations: Iterable<ServerName>, states: readonly UserPresenceState[]): void {
    if (states.length === 0 || this.stopped) return;
    let local: readonly UserPresenceState[] = states;
    if (states.some((s) => serverNameOf(s.userId) !== this.ownServer)) {
      local = states.filter((s) => serverNameOf(s.userId) === this.ownServer);
      this.logger.error('federation: refusing to forward remote users\u2019 presence to other servers (a bug in the caller)');
      if (local.length === 0) return;
    }
    for (const d of destinations) {
      if (d === this.ownServer) continue;
      const dest = this.destination(d);
      for (const s of local) {
        dest.pending.delete(s.userId); // keep insertion order = age of the latest state
        dest.pending.set(s.userId, s);
      }
      this.dirty.add(d);
    }
  }

  /** Pending states for a destination (for tests and metrics). */
  pendingFor(destination: ServerName): number {
    return this.destinations.get(destination)?.pending.size ?? 0;
  }

  /** The destination's status: `idle`, `sending` (a send in flight) or `backoff` (waiting to retry). */
  phaseOf(destination: ServerName): Phase {
    return this.destinations.get(destination)?.phase ?? 'idle';
  }

  get stats(): FederationOutboundStats {
    let pendingStates = 0;
    let destinationsInFlight = 0;
    let destinationsBackingOff = 0;
    const destinations: FederationDestinationState[] = [];
    for (const d of this.destinations.values()) {
      pendingStates += d.pending.size;
      if (d.phase === 'sending') destinationsInFlight++;
      else if (d.phase === 'backoff') destinationsBackingOff++;
      destinations.push({
        destination: d.name,
        phase: d.phase,
        pending: d.pending.size,
        inFlight: d.sending?.length ?? 0,
        consecutiveFailures: d.failures,
        failingSince: d.failingSince,
        retryAt: d.phase === 'backoff' ? d.retryAt : null,
        backoffMs: d.backoffMs,
      });
    }
    return { ...this.counters, pendingStates, destinationsInFlight, destinationsBackingOff, destinations };
  }

  /** End of a turn: transmit to every destination that got states and is ready. */
  flush(now: number): void {
    if (this.dirty.size === 0 || this.stopped) return;
    const ready = [...this.dirty];
    this.dirty.clear();
    for (const name of ready) {
      const dest = this.destinations.get(name);
      if (dest === undefined || dest.phase !== 'idle') continue; // in flight or backing off: keep coalescing
      this.transmit(dest, now);
    }
  }

  /**
   * Send through `transport` from now on (replacing any attached transport).
   * @throws InvalidInputError for invalid options.
   */
  attach(transport: FederationTransport, options: FederationTransportOptions = {}): FederationLink {
    const parsed = FederationTransportOptionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidInputError(`federation transport options.${issue?.path.join('.') ?? ''}`, issue?.message ?? 'invalid');
    }
    if (parsed.data.maxBackoffMs < parsed.data.initialBackoffMs) {
      throw new InvalidInputError('federation transport options.maxBackoffMs', 'must be at least initialBackoffMs');
    }
    this.detachCurrent();
    const link: AttachedLink = {
      transport,
      options: parsed.data,
      detach: () => {
        if (this.link === link) this.detachCurrent();
      },
    };
    this.link = link;
    return link;
  }

  /** Complete the stream and cancel timers; nothing is sent afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.detachCurrent();
    this.stopped = true;
    this.destinations.clear();
    this.dirty.clear();
    this.transmissions$.complete();
  }

  private destination(name: ServerName): Destination {
    let dest = this.destinations.get(name);
    if (dest === undefined) {
      dest = { name, pending: new Map(), phase: 'idle', attempt: 0, sending: null, failingSince: null, failures: 0, backoffMs: 0, retryAt: null, timer: null };
      this.destinations.set(name, dest);
    }
    return dest;
  }

  /** Take the oldest pending states (up to one transmission) and send or emit them. */
  private transmit(dest: Destination, now: number): void {
    const link = this.link;
    const maxStates = (link?.options.maxEdusPerTransmission ?? 100) * MAX_PRESENCE_STATES_PER_EDU;
    do {
      const states: UserPresenceState[] = [];
      for (const [user, s] of dest.pending) {
        if (states.length >= maxStates) break;
        states.push(s);
        dest.pending.delete(user);
      }
      if (states.length === 0) break;
      const transmission: FederationTransmission = { destination: dest.name, edus: buildPresenceEdus(states, now, this.busy) };
      this.counters.transmissions++;
      this.counters.statesSent += states.length;
      if (link === null) {
        this.transmissions$.next(transmission); // fire-and-forget: ready again at once
        continue;
      }
      this.send(dest, link, states, transmission);
      return;
    } while (dest.pending.size > 0);
    this.forgetIfIdle(dest);
  }

  private send(dest: Destination, link: AttachedLink, states: readonly UserPresenceState[], t: FederationTransmission): void {
    dest.phase = 'sending';
    dest.sending = states;
    const attempt = ++dest.attempt;
    const settle = (error: unknown) => this.settle(dest, link, attempt, error);
    const timeout = this.clock.setTimer(link.options.sendTimeoutMs, () =>
      settle(new FederationError(dest.name, `no answer within ${link.options.sendTimeoutMs} ms`)),
    );
    this.transmissions$.next(t);
    let result: Promise<void>;
    try {
      result = Promise.resolve(link.transport.send(dest.name, t.edus));
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      () => {
        timeout.cancel();
        settle(null);
      },
      (error: unknown) => {
        timeout.cancel();
        settle(error ?? new FederationError(dest.name, 'send failed'));
      },
    );
  }

  private settle(dest: Destination, link: AttachedLink, attempt: number, error: unknown): void {
    if (this.link !== link || dest.attempt !== attempt || dest.phase !== 'sending' || this.stopped) return; // stale answer
    const sent = dest.sending ?? [];
    dest.sending = null;
    const now = this.clock.now();
    if (error === null) {
      dest.failingSince = null;
      dest.failures = 0;
      dest.backoffMs = 0;
      dest.phase = 'idle';
      this.transmit(dest, now); // more may have coalesced meanwhile
      return;
    }
    this.counters.sendFailures++;
    dest.failures++;
    dest.failingSince ??= now;
    const o = link.options;
    if (now - dest.failingSince >= o.dropAfterMs) {
      const users = new Set<UserId>(dest.pending.keys());
      for (const s of sent) users.add(s.userId);
      dest.pending.clear();
      this.counters.droppedStates += users.size;
      this.logger.warn(`federation: ${dest.name} has been failing for ${Math.round((now - dest.failingSince) / 60_000)} min; dropped ${users.size} pending presence state(s)`, {
        error: String(error),
      });
    } else {
      this.requeue(dest, sent);
      this.logger.debug(`federation: send to ${dest.name} failed; will retry`, { error: String(error) });
    }
    dest.backoffMs = dest.backoffMs === 0 ? o.initialBackoffMs : Math.min(o.maxBackoffMs, Math.round(dest.backoffMs * o.backoffMultiplier));
    dest.phase = 'backoff';
    dest.retryAt = now + dest.backoffMs;
    dest.timer = this.clock.setTimer(dest.backoffMs, () => {
      dest.timer = null;
      dest.retryAt = null;
      if (this.link !== link || this.stopped) return;
      dest.phase = 'idle';
      this.transmit(dest, this.clock.now());
    });
  }

  /** Put failed states back in front, unless a newer state for the same user is pending. */
  private requeue(dest: Destination, sent: readonly UserPresenceState[]): void {
    if (sent.length === 0) return;
    const merged = new Map<UserId, UserPresenceState>();
    for (const s of sent) if (!dest.pending.has(s.userId)) merged.set(s.userId, s);
    for (const [u, s] of dest.pending) merged.set(u, s);
    dest.pending = merged;
  }

  private detachCurrent(): void {
    if (this.link === null) return;
    this.link = null;
    for (const dest of this.destinations.values()) {
      dest.timer?.cancel();
      dest.timer = null;
      if (dest.sending !== null) this.requeue(dest, dest.sending);
      dest.sending = null;
      dest.phase = 'idle';
      dest.failingSince = null;
      dest.failures = 0;
      dest.backoffMs = 0;
      dest.retryAt = null;
      if (dest.pending.size > 0) this.dirty.add(dest.name);
    }
  }

  private forgetIfIdle(dest: Destination): void {
    if (dest.phase === 'idle' && dest.pending.size === 0 && dest.failingSince === null) this.destinations.delete(dest.name);
  }
}
