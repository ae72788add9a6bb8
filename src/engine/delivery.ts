/**
 * Delivery of a committed turn: the turn's notified changes, live joins and
 * keep-alive pings go to the push fan-out (listening users), to the presence
 * routers (one `getUsersForStates` call per turn, whose answer adds ALL_USERS
 * listeners and remote destinations) and to federation routing. A router that
 * answers asynchronously delivers in a later turn.
 */
import type { Subscriber } from 'rxjs';
import type { PushFanOut } from '../../streams/push-fanout.js';
import type { PresenceBatch, SyncNotifier } from '../../streams/sync-notifier.js';
import type { UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { FederationOutbound } from '../federation/outbound.js';
import { ALL_USERS, type Interest, type PresenceRouter, type RoutedStates } from '../router/presence-router.js';
import type { FederationRouting, OutboundChanges } from './federation-routing.js';
import type { Room } from './room-index.js';
import type { UserDirectory } from './user-directory.js';
import type { Visibility } from './visibility.js';

export interface DeliveryHost {
  /** Run a job as a turn of its own (late router answers, full-presence pushes). */
  run(job: () => void): void;
  now(): number;
  readonly tracked: boolean;
  /** The current presence stream token (what a flush brings listeners up to). */
  readonly token: number;
}

export class Delivery {
  /** Per-recipient events emitted on sync streams. */
  deliveries = 0;
  private readonly stateOf = (i: number): UserPresenceState => this.users.stateAt(i);
  private readonly idAt = (i: number): UserId => this.users.idAt(i);

  constructor(
    private readonly users: UserDirectory,
    private readonly push: PushFanOut,
    private readonly routing: FederationRouting,
    private readonly router: PresenceRouter,
    private readonly federation: FederationOutbound,
    private readonly host: DeliveryHost,
    /** Visibility policies: each emitted batch is the viewer's view of it. */
    private readonly visibility?: Visibility,
  ) {}

  /** This turn's notified changes (the first `count` of `changed`). */
  changes(changed: readonly number[], count: number): void {
    this.push.changed(changed, count, this.idAt);
    const routing = this.router.active;
    const outbound = this.routing.localChanges(changed, count, routing);
    if (!routing) {
      if (outbound !== null) this.routing.send(outbound);
      return;
    }
    const states = new Array<UserPresenceState>(count);
    for (let c = 0; c < count; c++) states[c] = this.users.stateAt(changed[c] as number);
    const routed = this.router.usersForStates(states);
    const out = outbound ?? { states: [], destinations: new Map() };
    if (routed instanceof Promise) void routed.then((r) => this.host.run(() => this.routed(r, out, true)));
    else this.routed(routed, out, false);
  }

  /** Live joins: the room's listeners see the joiner, the joiner sees the room, servers gaining a member are told. */
  joins(joins: readonly (readonly [number, Room])[]): void {
    const now = this.host.now();
    for (const [user, room] of joins) {
      this.push.joinedLive(user, room);
      this.routing.joined(user, room, now);
    }
  }

  /** Keep-alive pings go to every server sharing a room, and to router recipients' servers. */
  pings(states: readonly UserPresenceState[]): void {
    if (!this.host.tracked) return;
    const out = this.routing.pings(states);
    if (!this.router.active) return this.routing.send(out);
    const addRouted = (r: RoutedStates) => {
      this.routing.addRouted(out, r);
      this.routing.send(out);
    };
    const routed = this.router.usersForStates(states);
    if (routed instanceof Promise) void routed.then((r) => this.host.run(() => addRouted(r)));
    else addRouted(routed);
  }

  /** Offer `states` to user `userId`'s stream, if open, as a turn of its own (a full-presence push). */
  offerLater(userId: UserId, states: readonly UserPresenceState[]): void {
    if (states.length === 0) return;
    const n = this.notifierOf(userId);
    if (n === undefined) return;
    this.host.run(() => {
      for (const s of states) this.push.offer(n, this.users.indexOf(s.userId));
    });
  }

  /** Offer user `user`'s current state to their own streams only (a change damping holds from others). */
  offerOwn(user: number): void {
    const n = this.push.notifierAt(user);
    if (n !== undefined && n.interest !== ALL_USERS) this.push.offer(n, user);
  }

  /** End of turn: every woken stream emits once, at the current token; federation sends what it queued. */
  flush(): void {
    const v = this.visibility;
    this.deliveries += this.push.flush(this.stateOf, this.host.token, this.users.size, v !== undefined && v.active ? v.viewBatch : null);
    this.federation.flush(this.host.now());
  }

  open(userId: UserId, s: Subscriber<PresenceBatch>): void {
    const created = this.push.open(userId, this.users.indexOf(userId), s);
    if (created !== null) this.refreshInterest(created);
  }

  close(userId: UserId, s: Subscriber<PresenceBatch>): void {
    const i = this.users.find(userId);
    if (i !== undefined) this.push.close(i, s);
  }

  isListening(userId: UserId): boolean {
    return this.notifierOf(userId) !== undefined;
  }

  /** Re-ask the routers for every listener's interest (a module registered). */
  refreshAll(): void {
    for (const n of this.push.allNotifiers()) this.refreshInterest(n);
  }

  /** Re-ask the routers for user `user`'s interest, if they listen (their rooms changed). */
  refreshUser(user: number): void {
    const n = this.push.notifierAt(user);
    if (n !== undefined) this.refreshInterest(n);
  }

  /** Cache a listener's router interest (answered by a pull or a refresh). */
  cacheInterest(userId: UserId, interest: Interest): void {
    const n = this.notifierOf(userId);
    if (n !== undefined) this.push.setInterest(n, interest);
  }

  private refreshInterest(n: SyncNotifier): void {
    if (!this.router.active) return;
    const r = this.router.interestedUsers(n.userId);
    if (r instanceof Promise) void r.then((v) => this.cacheInterest(n.userId, v));
    else this.push.setInterest(n, r);
  }

  /** Router results: ALL_USERS listeners get their states; remote recipients' servers become destinations. */
  private routed(routed: RoutedStates, out: OutboundChanges, late: boolean): void {
    for (const [recipient, states] of routed) {
      if (!this.users.isMine(recipient)) continue;
      const n = this.notifierOf(recipient);
      if (n !== undefined && n.interest === ALL_USERS) for (const s of states) this.push.offer(n, this.users.indexOf(s.userId));
    }
    this.routing.addRouted(out, routed);
    this.routing.send(out);
    if (late) this.flush();
  }

  private notifierOf(userId: UserId): SyncNotifier | undefined {
    const i = this.users.find(userId);
    return i === undefined ? undefined : this.push.notifierAt(i);
  }
}
