/**
 * Federation routing: which remote servers hear of a local change. A change
 * of a local user goes to every server with a member in one of the user's
 * rooms that share presence, plus the servers of remote users a presence
 * router names for it; keep-alive pings go to the same servers; a join sends
 * presence to a server that gains its first member in the room (spec §3.8).
 * Only a user's owner federates their changes (distributed mode), and
 * nothing is sent unless presence is tracked. Remote users' presence is never
 * forwarded to third servers.
 */
import { serverNameOf, type ServerName, type UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { Audience } from '../domain/explain.js';
import type { FederationOutbound } from '../federation/outbound.js';
import { ALL_USERS, type Interest, type PresenceRouter, type RoutedStates } from '../router/presence-router.js';
import type { Room, RoomIndex } from './room-index.js';
import type { UserDirectory } from './user-directory.js';
import type { Visibility } from './visibility.js';

const WEEK_MS = 7 * 86_400_000;

/** A turn's local changes with somewhere to go: each state and its destination servers. */
export interface OutboundChanges {
  readonly states: UserPresenceState[];
  readonly destinations: Map<UserPresenceState, Set<ServerName>>;
}

export class FederationRouting {
  constructor(
    private readonly users: UserDirectory,
    private readonly rooms: RoomIndex,
    private readonly outbound: FederationOutbound,
    private readonly owned: (userId: UserId) => boolean,
    private readonly tracked: () => boolean,
    /** Visibility policies: each destination server is sent its view of a local state. */
    private readonly visibility?: Visibility,
  ) {}

  /**
   * The local, owned users among the first `count` of `changed` and the servers
   * sharing a room with each. With `all`, every such user is listed (a router
   * may add destinations); otherwise only those with a destination.
   */
  localChanges(changed: readonly number[], count: number, all: boolean): OutboundChanges | null {
    if (!all && !this.rooms.hasRemoteMembers) return null;
    let out: OutboundChanges | null = null;
    for (let c = 0; c < count; c++) {
      const u = changed[c] as number;
      if (!this.users.isMineAt(u) || !this.owned(this.users.idAt(u))) continue;
      const servers = this.rooms.serversSharingWith(u);
      if (servers === undefined && !all) continue;
      const state = this.users.stateAt(u);
      out ??= { states: [], destinations: new Map() };
      out.states.push(state);
      if (servers !== undefined) out.destinations.set(state, servers);
    }
    return out;
  }

  /** Add the servers of remote recipients a router named for these local states. */
  addRouted(changes: OutboundChanges, routed: RoutedStates): void {
    const local = new Set(changes.states);
    for (const [recipient, states] of routed) {
      if (this.users.isMine(recipient)) continue;
      const server = serverNameOf(recipient);
      for (const s of states) {
        if (!local.has(s)) continue; // remote users' presence is never forwarded to third servers
        let d = changes.destinations.get(s);
        if (d === undefined) changes.destinations.set(s, (d = new Set()));
        d.add(server);
      }
    }
  }

  /** Queue each state's current value for its destinations. */
  send(changes: OutboundChanges): void {
    if (!this.tracked()) return;
    for (const s of changes.states) {
      const d = changes.destinations.get(s);
      if (d !== undefined && d.size > 0) this.enqueue(d, [this.currentOf(s.userId)]);
    }
  }

  /** Queue local user `userId`'s current state for `server` (an operator callback's late "visible" answer). */
  sendTo(server: ServerName, userId: UserId): void {
    if (!this.tracked() || !this.users.isMine(userId) || !this.owned(userId)) return;
    this.enqueue([server], [this.currentOf(userId)]);
  }

  /** Queue local `states` for `servers`, each server getting its view of them when policies are set. */
  private enqueue(servers: Iterable<ServerName>, states: readonly UserPresenceState[]): void {
    const v = this.visibility;
    if (v === undefined || !v.active) return this.outbound.enqueue(servers, states);
    for (const server of servers) this.outbound.enqueue([server], states.map((st) => v.forServer(server, st)));
  }

  /** Keep-alive pings: every server sharing a room with each user (router recipients are added by the caller). */
  pings(states: readonly UserPresenceState[]): OutboundChanges {
    const destinations = new Map<UserPresenceState, Set<ServerName>>();
    for (const s of states) {
      const i = this.users.find(s.userId);
      if (i !== undefined) destinations.set(s, this.rooms.serversSharingWith(i) ?? new Set());
    }
    return { states: [...states], destinations };
  }

  /** Spec §3.8.4: presence on a live join, for servers gaining their first member and for local joiners. */
  joined(user: number, room: Room, now: number): void {
    if (!this.tracked() || room.excluded || !room.members.has(user)) return;
    const uid = this.users.idAt(user);
    if (!this.owned(uid)) return; // the joiner's owner records the join and federates it
    if (this.users.isMineAt(user)) {
      if (room.remote.size > 0) this.enqueue(room.remote.keys(), [this.users.stateAt(user)]);
      return;
    }
    const server = serverNameOf(uid);
    if (room.remote.get(server) !== 1) return; // the server already had a member
    const states: UserPresenceState[] = [];
    for (const m of room.members) {
      if (!this.users.isMineAt(m)) continue;
      const s = this.users.stateAt(m);
      // "Offline for over 7 days": since the later of last activity and the last send.
      const stale = s.state === 'offline' && now - Math.max(s.lastActiveTs, s.lastFederationUpdateTs) >= WEEK_MS && s.statusMsg === null;
      if (!stale) states.push(s);
    }
    this.enqueue([server], states);
  }

  /**
   * `send_local_online_presence_to` for remote targets (spec §4.6 step 4): what
   * an initial read by each target would return, with the routers consulted
   * with the remote id (ALL_USERS: the known non-offline states the routers
   * send to it; otherwise their interest plus the users it shares a room
   * with), kept to non-offline local users, one send per server. Async router
   * answers send in a later turn (`later`).
   */
  onlineTo(targets: readonly UserId[], router: PresenceRouter, later: (job: () => void) => void): void {
    if (!this.tracked() || targets.length === 0) return;
    const visible = targets.map((t) => this.visibleTo(t, router));
    if (visible.some((v) => v instanceof Promise)) {
      void Promise.all(visible).then((lists) => later(() => this.sendOnline(targets, lists)));
      return;
    }
    this.sendOnline(targets, visible as (readonly UserPresenceState[])[]);
  }

  /** The users an initial read by `target` (offline excluded) would show. */
  private visibleTo(target: UserId, router: PresenceRouter): readonly UserPresenceState[] | Promise<readonly UserPresenceState[]> {
    const interest = router.interestedUsers(target);
    return interest instanceof Promise ? interest.then((i) => this.visibleWith(target, i, router)) : this.visibleWith(target, interest, router);
  }

  private visibleWith(target: UserId, interest: Interest, router: PresenceRouter): readonly UserPresenceState[] | Promise<readonly UserPresenceState[]> {
    if (interest === ALL_USERS) {
      const candidates: UserPresenceState[] = [];
      for (const s of this.users.storedStates()) if (s.state !== 'offline') candidates.push(s);
      const routed = router.usersForStates(candidates);
      const pick = (r: RoutedStates): UserPresenceState[] => [...(r.get(target) ?? [])];
      return routed instanceof Promise ? routed.then(pick) : pick(routed);
    }
    const seen = new Set<number>();
    const i = this.users.find(target);
    if (i !== undefined) this.rooms.coMembers(i, seen);
    for (const u of interest) {
      const j = this.users.find(u);
      if (j !== undefined) seen.add(j);
    }
    return Array.from(seen, (m) => this.users.stateAt(m));
  }

  /** Queue, per target server, the current state of each non-offline local user visible to one of its targets. */
  private sendOnline(targets: readonly UserId[], visible: readonly (readonly UserPresenceState[])[]): void {
    if (!this.tracked()) return;
    const byServer = new Map<ServerName, Set<number>>();
    targets.forEach((t, k) => {
      const server = serverNameOf(t);
      let set = byServer.get(server);
      if (set === undefined) byServer.set(server, (set = new Set()));
      for (const s of visible[k] ?? []) {
        const m = this.users.find(s.userId);
        if (m !== undefined && this.users.isMineAt(m)) set.add(m);
      }
    });
    for (const [server, members] of byServer) {
      const states: UserPresenceState[] = [];
      const v = this.visibility;
      for (const m of members) {
        let s = this.users.stateAt(m);
        if (v !== undefined && v.active) s = v.forServer(server, s); // masked to offline: left out like an offline user
        if (s.state !== 'offline') states.push(s);
      }
      this.outbound.enqueue([server], states);
    }
  }

  /** Who hears of `userId`'s changes now: local users and remote servers sharing a room (explain's audience). */
  audience(userId: UserId, withIds: boolean, routers: readonly string[]): Audience {
    const i = this.users.find(userId);
    const local: UserId[] = [];
    let count = 0;
    if (i !== undefined) {
      for (const m of this.rooms.coMembers(i)) {
        if (m === i || !this.users.isMineAt(m)) continue;
        count++;
        if (withIds) local.push(this.users.idAt(m));
      }
    }
    const servers = i === undefined ? [] : [...(this.rooms.serversSharingWith(i) ?? [])].sort();
    return { localUsers: count, ...(withIds ? { localUserIds: local.sort() } : {}), remoteServers: servers, routers };
  }

  private currentOf(userId: UserId): UserPresenceState {
    return this.users.stateAt(this.users.indexOf(userId));
  }
}
