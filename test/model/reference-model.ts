/**
 * Reference model of the presence rules, written from the spec
 * (/work/shared/spec/synapse-presence-behaviour.md §1–4 and decisions.md), not
 * from the engine's code. Deliberately naive: plain maps and loops, every
 * user re-examined at every timer tick, no indexes, no streams, no actors.
 *
 * It computes, for every user, their current presence (the seven-field
 * `UserPresenceState`) and, for every subscriber, what they should have been
 * pushed and what `getNewEvents` should answer.
 *
 * Semantics followed (Synapse HEAD per decisions.md):
 * - per-device presence combined by priority busy > online > unavailable > offline (§2.13);
 * - `set_state` (§2.5/§2.13): device {state, last_active := now, last_sync := now if sync};
 *   user state = combination; user last_active := now iff combined online/busy;
 *   a sync sets last_user_sync_ts and never touches the status message; an explicit
 *   call replaces the status message (absent ⇒ null); a sync keeps busy (§2.9);
 * - `user_syncing` (§2.6): set_presence=offline does nothing; otherwise count the
 *   sync on the device and set_state(is_sync); the end uncounts it and sets
 *   last_user_sync_ts (user and device);
 * - bump (§2.7/§2.13): device last_active := now, unavailable device → online, recombine;
 * - handle_update (§2.2) and should_notify (§2.3);
 * - timeouts (§2.4 + §2.13) checked at every timer tick (multiples of the timer
 *   period: "a fired timer only means re-examine this user", §1.7);
 * - inbound federation (§3.9 + decisions.md validation);
 * - module set (§4.9): state and status replaced, always notified;
 * - routing (§3.1, §3.4, §4.3, §4.4) and the join rule (§3.5 step 4);
 * - send_local_online_presence_to (§4.6 with the decisions.md fixes, §1.6 full-presence rows).
 */

export type Presence = 'online' | 'unavailable' | 'offline' | 'busy';

/** Same shape as the engine's `UserPresenceState`, so the two compare with `toEqual`. */
export interface MState {
  userId: string;
  state: Presence;
  lastActiveTs: number;
  lastFederationUpdateTs: number;
  lastUserSyncTs: number;
  statusMsg: string | null;
  currentlyActive: boolean;
}

interface Device {
  state: Presence;
  lastActiveTs: number;
  lastSyncTs: number;
}

/** What the model needs from the configured presence router(s), already combined and validated (§4.3). */
export interface ModelRouter {
  /** Combined `get_interested_users`: a set of extra users, or 'ALL'. */
  interest(userId: string): ReadonlySet<string> | 'ALL';
  /** Combined `get_users_for_states` for one state: its recipients. */
  recipients(state: MState): ReadonlySet<string>;
}

export const NO_ROUTER: ModelRouter = {
  interest: () => new Set(),
  recipients: () => new Set(),
};

export interface ModelTimers {
  lastActiveGranularity: number;
  syncOnlineTimeout: number;
  idleTimeout: number;
  busyTimeout: number;
  federationTimeout: number;
  federationPingInterval: number;
}

export const SPEC_TIMERS: ModelTimers = {
  lastActiveGranularity: 60_000,
  syncOnlineTimeout: 30_000,
  idleTimeout: 300_000,
  busyTimeout: 3_600_000,
  federationTimeout: 1_800_000,
  federationPingInterval: 1_500_000,
};

type Entry = { kind: 'change'; user: string } | { kind: 'join'; user: string; room: string } | { kind: 'full' };

/** A visibility policy (docs/policies.md), as plain lists. */
export interface MPolicy {
  readonly invisible: boolean;
  /** null: no allow list. */
  readonly allow: { readonly users: readonly string[]; readonly servers: readonly string[] } | null;
  readonly deny: { readonly users: readonly string[]; readonly servers: readonly string[] };
}

export interface ModelSubscription {
  readonly user: string;
  /** Last pushed state per user, folded over everything pushed so far. */
  readonly delivered: Map<string, MState>;
}

const PRIORITY: Record<Presence, number> = { busy: 4, online: 3, unavailable: 2, offline: 1 };

export class PresenceModel {
  now: number;
  readonly serverName: string;
  readonly timers: ModelTimers;
  readonly period: number;
  readonly excludedRooms: ReadonlySet<string>;
  /** Large-room mode `shared_rooms_only` (docs/policies.md): rooms with at least this many members share no presence. */
  largeRoomThreshold: number | null = null;
  router: ModelRouter = NO_ROUTER;

  readonly presence = new Map<string, MState>();
  readonly devices = new Map<string, Map<string, Device>>();
  readonly syncing = new Map<string, Map<string, number>>();
  readonly rooms = new Map<string, Set<string>>();
  /** Every notified change, join and full-presence request, in order. A "position" is an index into it. */
  readonly entries: Entry[] = [];
  /** Full-presence requests: user → position before the request (§1.6). */
  readonly fullRequests = new Map<string, number>();
  readonly subscriptions = new Map<number, ModelSubscription>();
  /** Visibility policies by user (absent = visible to everyone rooms and routers choose). */
  readonly policies = new Map<string, MPolicy>();
  /** Pairs `viewer→target` an operator `getVisibility` callback hides (viewer: user id or server name). */
  operatorHides: ReadonlySet<string> = new Set();

  // the current turn
  private changed = new Set<string>();
  private joins: [string, string][] = [];

  constructor(opts: { now: number; serverName: string; timers?: ModelTimers; period?: number; excludedRooms?: Iterable<string> }) {
    this.now = opts.now;
    this.serverName = opts.serverName;
    this.timers = opts.timers ?? SPEC_TIMERS;
    this.period = opts.period ?? 5_000;
    this.excludedRooms = new Set(opts.excludedRooms ?? []);
  }

  // ─────────────── queries ───────────────

  isLocal(userId: string): boolean {
    return userId.slice(userId.indexOf(':') + 1) === this.serverName;
  }

  stateOf(userId: string): MState {
    return (
      this.presence.get(userId) ?? {
        userId,
        state: 'offline',
        lastActiveTs: 0,
        lastFederationUpdateTs: 0,
        lastUserSyncTs: 0,
        statusMsg: null,
        currentlyActive: false,
      }
    );
  }

  /** Current position (the number of stream entries so far). */
  get position(): number {
    return this.entries.length;
  }

  /** Excluded from presence: listed in the config, or large (judged now, by its current members). */
  isExcluded(room: string): boolean {
    if (this.excludedRooms.has(room)) return true;
    return this.largeRoomThreshold !== null && (this.rooms.get(room)?.size ?? 0) >= this.largeRoomThreshold;
  }

  /** Both joined to one room that is not excluded from presence. */
  shareRoom(a: string, b: string): boolean {
    for (const [room, members] of this.rooms) {
      if (this.isExcluded(room)) continue;
      if (members.has(a) && members.has(b)) return true;
    }
    return false;
  }

  /** A user id's server. */
  private serverOf(userId: string): string {
    return userId.slice(userId.indexOf(':') + 1);
  }

  /** docs/policies.md: does `target`'s policy hide the truth from local or remote user `viewer`? */
  hides(viewer: string, target: string): boolean {
    if (viewer === target) return false;
    if (this.isLocal(target) && this.operatorHides.has(`${viewer}→${target}`)) return true;
    const p = this.policies.get(target);
    if (p === undefined) return false;
    if (p.invisible) return true;
    const server = this.serverOf(viewer);
    if (p.deny.users.includes(viewer) || p.deny.servers.includes(server)) return true;
    if (p.allow !== null && !p.allow.users.includes(viewer) && !p.allow.servers.includes(server)) return true;
    return false;
  }

  /** docs/policies.md: a server gets the truth only if every one of its users may see it. */
  hidesFromServer(server: string, target: string): boolean {
    if (this.operatorHides.has(`${server}→${target}`)) return true;
    const p = this.policies.get(target);
    if (p === undefined) return false;
    if (p.invisible || p.deny.servers.includes(server) || p.deny.users.some((u) => this.serverOf(u) === server)) return true;
    return p.allow !== null && !p.allow.servers.includes(server);
  }

  /** The masked state: that of a user never seen. */
  masked(userId: string): MState {
    return { userId, state: 'offline', lastActiveTs: 0, lastFederationUpdateTs: 0, lastUserSyncTs: 0, statusMsg: null, currentlyActive: false };
  }

  /** What `viewer` sees of `s`. */
  seen(viewer: string, s: MState): MState {
    return this.hides(viewer, s.userId) ? this.masked(s.userId) : s;
  }

  /** Non-ALL visibility (§3.1/§3.4): self, a shared joined room, or router interest. */
  private sees(viewer: string, target: string, interest: ReadonlySet<string>): boolean {
    return viewer === target || this.shareRoom(viewer, target) || interest.has(target);
  }

  /** The initial-sync style answer for `viewer` (§3.4 step 7, §3.5). */
  fullAnswer(viewer: string, includeOffline: boolean, policies = true): MState[] {
    const truth = this.fullTruth(viewer, includeOffline);
    if (!policies) return truth;
    // Policies apply last; a user masked to offline is left out like an offline user.
    return truth.map((s) => this.seen(viewer, s)).filter((s) => includeOffline || s.state !== 'offline');
  }

  private fullTruth(viewer: string, includeOffline: boolean): MState[] {
    const interest = this.router.interest(viewer);
    const out: MState[] = [];
    if (interest === 'ALL') {
      for (const s of this.presence.values()) {
        if (!includeOffline && s.state === 'offline') continue;
        if (this.router.recipients(s).has(viewer)) out.push(s);
      }
      return out;
    }
    const users = new Set<string>([viewer, ...interest]);
    for (const [room, members] of this.rooms) {
      if (this.isExcluded(room) || !members.has(viewer)) continue;
      for (const m of members) users.add(m);
    }
    for (const u of users) {
      const s = this.stateOf(u);
      if (includeOffline || s.state !== 'offline') out.push(s);
    }
    return out;
  }

  /**
   * `get_new_events(viewer, from)` (§3.4, §3.5, §1.6), where `from` is a model
   * position (or null for an initial sync).
   */
  newEvents(viewer: string, from: number | null, includeOffline = false): MState[] {
    const requested = this.fullRequests.get(viewer);
    if (from !== null && requested !== undefined && from <= requested) return this.fullAnswer(viewer, false);
    if (from === null) return this.fullAnswer(viewer, includeOffline);
    const interest = this.router.interest(viewer);
    const users = new Set<string>();
    for (const e of this.entries.slice(from)) {
      if (e.kind === 'change') {
        if (interest === 'ALL' || this.sees(viewer, e.user, interest)) users.add(e.user);
      } else if (e.kind === 'join' && interest !== 'ALL') {
        // §3.5 step 4: members of rooms the viewer newly joined; a newly joined member of the viewer's rooms.
        const members = this.rooms.get(e.room);
        if (this.isExcluded(e.room) || members === undefined || !members.has(viewer) || !members.has(e.user)) continue;
        if (e.user === viewer) for (const m of members) users.add(m);
        else users.add(e.user);
      }
    }
    const states = [...users].map((u) => this.stateOf(u));
    const routed = interest === 'ALL' ? states.filter((s) => this.router.recipients(s).has(viewer)) : states;
    return routed.map((s) => this.seen(viewer, s));
  }

  // ─────────────── subscriptions (push side) ───────────────

  subscribe(id: number, user: string): void {
    this.subscriptions.set(id, { user, delivered: new Map() });
  }

  unsubscribe(id: number): void {
    this.subscriptions.delete(id);
  }

  // ─────────────── inputs ───────────────

  /** PUT /presence (§2.5): `statusMsg` undefined means absent (cleared). */
  setPresence(userId: string, presence: Presence, statusMsg: string | null | undefined, deviceId: string): void {
    this.turn(() => this.setState(userId, deviceId, presence, statusMsg ?? null, false));
  }

  /** A sync started. Returns whether it counts for presence. */
  syncStart(userId: string, deviceId: string, setPresence: 'online' | 'unavailable' | 'offline'): boolean {
    if (setPresence === 'offline') return false;
    this.turn(() => {
      const counts = this.syncCounts(userId);
      counts.set(deviceId, (counts.get(deviceId) ?? 0) + 1);
      this.setState(userId, deviceId, setPresence, null, true);
    });
    return true;
  }

  syncEnd(userId: string, deviceId: string): void {
    this.turn(() => {
      const counts = this.syncCounts(userId);
      const n = (counts.get(deviceId) ?? 0) - 1;
      if (n > 0) counts.set(deviceId, n);
      else counts.delete(deviceId);
      const devs = this.deviceMap(userId);
      const d = devs.get(deviceId) ?? { state: 'offline', lastActiveTs: 0, lastSyncTs: 0 };
      devs.set(deviceId, { ...d, lastSyncTs: this.now });
      const prev = this.stateOf(userId);
      this.update(prev, { ...prev, lastUserSyncTs: this.now }, false);
    });
  }

  /** bump_presence_active_time (§2.7, §2.13). */
  bump(userId: string, deviceId: string): void {
    this.turn(() => {
      const devs = this.deviceMap(userId);
      const d = devs.get(deviceId) ?? { state: 'offline', lastActiveTs: 0, lastSyncTs: 0 };
      devs.set(deviceId, { ...d, lastActiveTs: this.now, state: d.state === 'unavailable' ? 'online' : d.state });
      const prev = this.stateOf(userId);
      this.update(prev, { ...prev, lastActiveTs: this.now, state: combine(devs) }, false);
    });
  }

  join(room: string, userId: string): void {
    let members = this.rooms.get(room);
    if (members === undefined) this.rooms.set(room, (members = new Set()));
    if (members.has(userId)) return;
    this.turn(() => {
      (members as Set<string>).add(userId);
      this.entries.push({ kind: 'join', user: userId, room });
      this.joins.push([userId, room]);
    });
  }

  leave(room: string, userId: string): void {
    this.rooms.get(room)?.delete(userId);
  }

  /** Inbound federation items already known to be valid and from the right origin (§3.9). Last item per user wins. */
  receiveRemote(items: readonly RemoteItem[]): void {
    const last = new Map<string, RemoteItem>();
    for (const it of items) if (!this.isLocal(it.userId)) last.set(it.userId, it);
    if (last.size === 0) return;
    this.turn(() => {
      for (const [userId, it] of last) {
        const prev = this.stateOf(userId);
        this.update(
          prev,
          {
            ...prev,
            state: it.presence,
            lastFederationUpdateTs: this.now,
            lastActiveTs: it.lastActiveAgo === undefined ? prev.lastActiveTs : this.now - it.lastActiveAgo,
            statusMsg: it.statusMsg,
            currentlyActive: it.currentlyActive,
          },
          false,
        );
      }
    });
  }

  /** ModuleApi.set_presence_for_users (§4.9): always notified; devices untouched. */
  moduleSet(users: readonly (readonly [string, Presence, string | null])[]): void {
    this.turn(() => {
      for (const [userId, presence, statusMsg] of users) {
        const prev = this.stateOf(userId);
        this.update(prev, { ...prev, state: presence, statusMsg }, true);
      }
    });
  }

  /** send_local_online_presence_to (§4.6, decisions.md): local targets get a full answer once; nobody's presence changes. */
  sendLocalOnlinePresenceTo(userIds: readonly string[]): void {
    const local = userIds.filter((u) => this.isLocal(u));
    if (local.length === 0) return;
    for (const u of local) this.fullRequests.set(u, this.entries.length);
    this.entries.push({ kind: 'full' });
    for (const sub of this.subscriptions.values()) {
      if (!local.includes(sub.user)) continue;
      for (const s of this.fullAnswer(sub.user, false)) sub.delivered.set(s.userId, s);
    }
  }

  /**
   * send_local_online_presence_to for remote targets (§4.6 step 4): per target
   * server, the non-offline local users an initial read by one of its targets
   * would show (routers asked with the remote id, else shared rooms).
   */
  onlineSentTo(userIds: readonly string[]): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const u of userIds) {
      if (this.isLocal(u)) continue;
      const server = u.slice(u.indexOf(':') + 1);
      let set = out.get(server);
      if (set === undefined) out.set(server, (set = new Set()));
      for (const s of this.fullAnswer(u, false, false)) if (this.isLocal(s.userId) && !this.hidesFromServer(server, s.userId)) set.add(s.userId);
    }
    for (const [server, set] of out) if (set.size === 0) out.delete(server);
    return out;
  }

  /** A local user's visibility policy replaced (docs/policies.md): logged and notified like a change. */
  setPolicy(userId: string, policy: MPolicy): void {
    this.turn(() => {
      const isDefault = !policy.invisible && policy.allow === null && policy.deny.users.length === 0 && policy.deny.servers.length === 0;
      if (isDefault) this.policies.delete(userId);
      else this.policies.set(userId, policy);
      this.entries.push({ kind: 'change', user: userId });
      this.changed.add(userId);
    });
  }

  /** Move time forward, re-examining every user at every timer tick on the way (§1.7, §2.4). */
  advance(ms: number): void {
    const target = this.now + ms;
    let tick = Math.floor(this.now / this.period) * this.period + this.period;
    while (tick <= target) {
      this.now = tick;
      this.turn(() => this.timeouts());
      tick += this.period;
    }
    this.now = target;
  }

  // ─────────────── rules ───────────────

  /** §2.5 / §2.13 set_state. */
  private setState(userId: string, deviceId: string, requested: Presence, statusMsg: string | null, isSync: boolean): void {
    const prev = this.stateOf(userId);
    const presence: Presence = isSync && prev.state === 'busy' ? 'busy' : requested;
    const devs = this.deviceMap(userId);
    const old = devs.get(deviceId) ?? { state: 'offline', lastActiveTs: 0, lastSyncTs: 0 };
    devs.set(deviceId, { state: presence, lastActiveTs: this.now, lastSyncTs: isSync ? this.now : old.lastSyncTs });
    const combined = combine(devs);
    const next: MState = { ...prev, state: combined };
    if (combined === 'online' || combined === 'busy') next.lastActiveTs = this.now;
    if (isSync) next.lastUserSyncTs = this.now;
    else next.statusMsg = statusMsg;
    this.update(prev, next, false);
  }

  /** §2.4 handle_timeout for every user, at one tick. */
  private timeouts(): void {
    const t = this.timers;
    const now = this.now;
    for (const [userId, p] of [...this.presence]) {
      if (!this.isLocal(userId)) {
        if (p.state !== 'offline' && now - p.lastFederationUpdateTs > t.federationTimeout) this.update(p, { ...p, state: 'offline' }, false);
        continue;
      }
      const devs = this.deviceMap(userId);
      const counts = this.syncCounts(userId);
      let deviceChanged = false;
      for (const [id, d0] of [...devs]) {
        let d = d0;
        if (d.state === 'online' && now - d.lastActiveTs > t.idleTimeout) {
          d = { ...d, state: 'unavailable' };
          devs.set(id, d);
          deviceChanged = true;
        }
        if ((counts.get(id) ?? 0) === 0) {
          const limit = d.state === 'busy' ? t.busyTimeout : t.syncOnlineTimeout;
          if (now - Math.max(d.lastSyncTs, d.lastActiveTs) > limit) {
            devs.delete(id);
            deviceChanged = true;
          }
        }
      }
      // Offline never times out (§2.4). Expired devices are dropped even then: the
      // engine's documented choice (docs/configuration.md), invisible in presence.
      if (p.state === 'offline') continue;
      let next = p;
      let changed = false;
      if (deviceChanged) {
        const c = combine(devs);
        if (c !== p.state) {
          next = { ...p, state: c };
          changed = true;
        }
      }
      if (now - p.lastActiveTs > t.lastActiveGranularity) changed = true;
      if (now - p.lastFederationUpdateTs > t.federationPingInterval) changed = true;
      if (changed) this.update(p, next, false);
    }
  }

  /** §2.2 handle_update + §2.1 storing and noting the change. */
  private update(prev: MState, candidate: MState, forceNotify: boolean): void {
    const t = this.timers;
    const now = this.now;
    const next = { ...candidate };
    if (this.isLocal(next.userId)) {
      if (next.state === 'online') next.currentlyActive = now - next.lastActiveTs < t.lastActiveGranularity;
      if (next.state !== 'offline' && now - next.lastFederationUpdateTs > t.federationPingInterval) next.lastFederationUpdateTs = now;
    }
    const notify = forceNotify || shouldNotify(prev, next, t);
    if (notify) next.lastFederationUpdateTs = now;
    this.presence.set(next.userId, next);
    if (notify) {
      this.entries.push({ kind: 'change', user: next.userId });
      this.changed.add(next.userId);
    }
  }

  /** Run a turn's work, then push what it changed to the open subscriptions (§3.1, §3.2, §4.4). */
  private turn(work: () => void): void {
    work();
    const changed = [...this.changed];
    const joins = this.joins;
    this.changed = new Set();
    this.joins = [];
    for (const sub of this.subscriptions.values()) {
      const viewer = sub.user;
      const interest = this.router.interest(viewer);
      for (const u of changed) {
        const s = this.stateOf(u);
        const visible = interest === 'ALL' ? this.router.recipients(s).has(viewer) : this.sees(viewer, u, interest);
        if (visible) sub.delivered.set(u, this.seen(viewer, s));
      }
      if (interest === 'ALL') continue; // joins reach ALL_USERS listeners only through the router
      for (const [u, room] of joins) {
        const members = this.rooms.get(room);
        if (this.isExcluded(room) || members === undefined || !members.has(u) || !members.has(viewer)) continue;
        if (u === viewer) for (const m of members) sub.delivered.set(m, this.seen(viewer, this.stateOf(m)));
        else sub.delivered.set(u, this.seen(viewer, this.stateOf(u)));
      }
    }
  }

  private deviceMap(userId: string): Map<string, Device> {
    let m = this.devices.get(userId);
    if (m === undefined) this.devices.set(userId, (m = new Map()));
    return m;
  }

  private syncCounts(userId: string): Map<string, number> {
    let m = this.syncing.get(userId);
    if (m === undefined) this.syncing.set(userId, (m = new Map()));
    return m;
  }
}

export interface RemoteItem {
  userId: string;
  presence: Presence;
  lastActiveAgo: number | undefined;
  statusMsg: string | null;
  currentlyActive: boolean;
}

/** §2.13: combine devices by priority; no devices ⇒ offline. */
function combine(devices: Map<string, Device>): Presence {
  let best: Presence = 'offline';
  for (const d of devices.values()) if (PRIORITY[d.state] > PRIORITY[best]) best = d.state;
  return best;
}

/** §2.3 should_notify, in the spec's order. */
export function shouldNotify(old: MState, next: MState, t: ModelTimers): boolean {
  const same =
    old.state === next.state &&
    old.lastActiveTs === next.lastActiveTs &&
    old.lastFederationUpdateTs === next.lastFederationUpdateTs &&
    old.lastUserSyncTs === next.lastUserSyncTs &&
    old.statusMsg === next.statusMsg &&
    old.currentlyActive === next.currentlyActive;
  if (same) return false;
  if (old.statusMsg !== next.statusMsg) return true;
  if (old.state !== next.state) return true;
  const bumped = next.lastActiveTs - old.lastActiveTs > t.lastActiveGranularity;
  if (old.state === 'online') {
    if (old.currentlyActive !== next.currentlyActive) return true;
    return bumped && !next.currentlyActive;
  }
  return bumped;
}
