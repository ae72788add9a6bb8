/**
 * Who was told: an opt-in, bounded record of actual deliveries (engine option
 * `recordDeliveries`), read back by `engine.explain`. Each delivery of user T's
 * state at stream token k is filed under (T, k): the local users whose sync
 * stream emitted it or whose `getNewEvents` returned it, the servers a
 * federation transmission carried it to, and the router modules that routed
 * it. A visible change at stream id s was received by whoever was handed T's
 * state at a token in [s, the next change's stream id): the engine always
 * hands out the current state.
 */
import type { Observable } from 'rxjs';
import type { BatchSeen } from '../../streams/sync-notifier.js';
import type { Delivered } from '../domain/explain.js';
import type { ServerName, UserId } from '../domain/ids.js';
import { InvalidInputError } from '../errors.js';
import type { FederationTransmission } from '../federation/outbound.js';

interface Entry {
  readonly target: UserId;
  readonly token: number;
  readonly local: Set<UserId>;
  readonly servers: Set<ServerName>;
  readonly routers: Set<string>;
  /** False once evicted (a later delivery at the same token starts a new entry). */
  live: boolean;
}

export class DeliveryJournal {
  private readonly byTarget = new Map<UserId, Entry[]>();
  /** Entries oldest first; `head` is the oldest still held. */
  private readonly order: Entry[] = [];
  private head = 0;
  /** Recipients held over all entries (the capacity bound). */
  private held = 0;
  /** Deliveries at tokens below this may have been evicted. */
  private horizon = 0;

  /** @param capacity recipients (users, servers, modules) held before the oldest entries go. */
  constructor(private readonly capacity: number) {}

  /** Local user `recipient` was handed the states of `targets` at `token` (a stream emission or a pull). */
  local(recipient: UserId, targets: Iterable<UserId>, token: number): void {
    for (const t of targets) if (t !== recipient) this.add(this.entry(t, token).local, recipient);
    this.evict();
  }

  /** A federation transmission carried `targets` to `server` at `token`. */
  remote(server: ServerName, targets: Iterable<UserId>, token: number): void {
    for (const t of targets) this.add(this.entry(t, token).servers, server);
    this.evict();
  }

  /** Router module `module` routed `targets` (to anyone) at `token`. */
  routed(module: string, targets: Iterable<UserId>, token: number): void {
    for (const t of targets) this.add(this.entry(t, token).routers, module);
    this.evict();
  }

  /**
   * Who was handed `target`'s state at a token in [from, to).
   * `complete` is false when part of that range may have been evicted.
   */
  deliveredBetween(target: UserId, from: number, to: number, withIds: boolean): Delivered {
    const local = new Set<UserId>();
    const servers = new Set<ServerName>();
    const routers = new Set<string>();
    for (const e of this.byTarget.get(target) ?? []) {
      if (e.token < from || e.token >= to) continue;
      for (const u of e.local) local.add(u);
      for (const s of e.servers) servers.add(s);
      for (const r of e.routers) routers.add(r);
    }
    return {
      localUsers: local.size,
      ...(withIds ? { localUserIds: [...local].sort() } : {}),
      remoteServers: [...servers].sort(),
      routers: [...routers].sort(),
      complete: from >= this.horizon,
    };
  }

  private entry(target: UserId, token: number): Entry {
    let list = this.byTarget.get(target);
    if (list === undefined) this.byTarget.set(target, (list = []));
    const last = list[list.length - 1];
    if (last !== undefined && last.token === token && last.live) return last;
    const e: Entry = { target, token, local: new Set(), servers: new Set(), routers: new Set(), live: true };
    list.push(e);
    this.order.push(e);
    return e;
  }

  private add<T>(set: Set<T>, value: T): void {
    if (set.has(value)) return;
    set.add(value);
    this.held++;
  }

  private evict(): void {
    while (this.held > this.capacity && this.head < this.order.length) {
      const e = this.order[this.head] as Entry;
      this.order[this.head++] = undefined as unknown as Entry;
      e.live = false;
      this.held -= e.local.size + e.servers.size + e.routers.size;
      this.horizon = Math.max(this.horizon, e.token + 1);
      const list = this.byTarget.get(e.target);
      if (list !== undefined) {
        const at = list.indexOf(e);
        if (at >= 0) list.splice(at, 1);
        if (list.length === 0) this.byTarget.delete(e.target);
      }
    }
    // Compact the queue once its evicted prefix dominates.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** What the journal listens to. */
export interface JournalSources {
  readonly push: { seen: BatchSeen | undefined };
  readonly router: { routedBy: ((module: string, targets: readonly UserId[]) => void) | undefined };
  readonly transmissions$: Observable<FederationTransmission>;
  /** The current stream token. */
  token(): number;
  /** Register the unsubscription to run when the engine closes. */
  onClose(hook: () => void): void;
}

/**
 * A journal fed by the push fan-out, the routers and federation transmissions
 * (pulls are recorded by the caller); undefined when `capacity` is 0 or unset.
 * @throws InvalidInputError when `capacity` is not a whole number ≥ 0.
 */
export function attachJournal(capacity: number | undefined, src: JournalSources): DeliveryJournal | undefined {
  if (capacity === undefined || capacity === 0) return undefined;
  if (!Number.isSafeInteger(capacity) || capacity < 0) throw new InvalidInputError('recordDeliveries', `must be a whole number of recipients ≥ 0, got ${String(capacity)}`);
  const journal = new DeliveryJournal(capacity);
  src.push.seen = (recipient, batch) => journal.local(recipient, userIdsOf(batch.events), batch.token);
  src.router.routedBy = (module, targets) => journal.routed(module, targets, src.token());
  const sub = src.transmissions$.subscribe((t) => {
    const targets: UserId[] = [];
    for (const edu of t.edus) for (const p of edu.content.push) targets.push(p.user_id as UserId);
    journal.remote(t.destination, targets, src.token());
  });
  src.onClose(() => sub.unsubscribe());
  return journal;
}

function* userIdsOf(events: readonly { readonly userId: UserId }[]): Iterable<UserId> {
  for (const e of events) yield e.userId;
}
