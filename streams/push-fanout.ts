/**
 * Push fan-out: who is woken by a turn's changes. Each listening user (one
 * with an open sync stream) has a {@link SyncNotifier}; each room keeps the
 * subset of its members who listen, and a turn's changed members of a room
 * form one {@link RoomSegment} handed to every listener of that room: one push
 * per (room, listener) per turn, however many members changed. A user's own
 * changes and router interest (`interestIndex`) are offered one by one. At the
 * end of the turn {@link PushFanOut.flush} makes each woken notifier emit once.
 *
 * Users and rooms are dense indexes owned by the engine; this part reads the
 * memberships through {@link PushTopology} and owns only what listens.
 */
import type { Subscriber } from 'rxjs';
import type { RoomId, UserId } from '../src/domain/ids.js';
import type { UserPresenceState } from '../src/domain/presence.js';
import { EMPTY_INTEREST, RoomSegment, SyncNotifier, type BatchSeen, type BatchView, type CachedInterest, type PresenceBatch } from './sync-notifier.js';

/** The router's "every user" interest. */
const ALL = 'ALL' as const satisfies CachedInterest;

/** A room as the fan-out sees it: its id and index, whether it shares presence, its members. */
export interface PushRoom {
  readonly id: RoomId;
  readonly index: number;
  readonly excluded: boolean;
  readonly members: ReadonlySet<number>;
}

/** The memberships the fan-out reads (the engine's room index). */
export interface PushTopology {
  roomsOf(user: number): readonly PushRoom[];
  /** The room with this index. */
  at(index: number): PushRoom;
}

/**
 * Wake-ups per room, for dashboards: how many listeners each room's segment
 * woke. Off by default; while off, the fan-out pays one branch per room with
 * changes per turn and nothing else.
 */
export interface RoomWakeups {
  /** Start (true) or stop (false) counting; either way the counts start again from zero. */
  count(on: boolean): void;
  /** Rooms that woke listeners since the last `take` (or since counting started), with their counts; the counts are zeroed. */
  take(): Map<RoomId, RoomWakeupCount>;
}

export interface RoomWakeupCount {
  /** Listeners the room's segment reached, summed over turns. */
  readonly wakeups: number;
  /** The room's changed members in those turns, summed over turns. */
  readonly changes: number;
}

/**
 * Large-room summary mode (docs/policies.md): a room it names does not wake its
 * listeners per turn; its changed members are held and handed over by
 * {@link PushFanOut.summaryDue}, at most once per interval (the engine's timer).
 */
export interface SummaryRooms {
  isSummary(room: PushRoom): boolean;
  /** Room `room` has its first held change since its last summary. */
  pending(room: number): void;
}

/** What listens to one room. */
class RoomListeners {
  /** Wake-ups and changed members since the last `RoomWakeups.take` (only while counting). */
  wakeups = 0;
  changes = 0;
  /** Members with an open stream. */
  readonly listening = new Set<number>();
  /** Their notifiers as an array (built on first use after `listening` changes): fan-out walks it. */
  listeners: SyncNotifier[] | null = null;
  /** This turn's changed members, shared by the room's listeners. */
  segment: RoomSegment | null = null;
  /** Summary mode: members changed since the room's last summary. */
  held: Set<number> | null = null;

  constructor(readonly room: number) {}
}

export class PushFanOut {
  /** Per-room listening state by room index (undefined until a member listens). */
  private readonly byRoom: (RoomListeners | undefined)[] = [];
  /** Listening users whose router interest names a user: target → notifiers. */
  private readonly interestIndex = new Map<UserId, Set<SyncNotifier>>();
  private readonly allUsersListeners = new Set<SyncNotifier>();
  private listeningUsers = 0;
  /** Notifiers to flush this turn (the first `dirtyCount`); two arrays take turns and keep their capacity. */
  private dirty: (SyncNotifier | undefined)[] = [];
  private dirtySpare: (SyncNotifier | undefined)[] = [];
  private dirtyCount = 0;
  /** Rooms with a non-empty segment this turn (the first `dirtyRoomCount`). */
  private readonly dirtyRooms: (RoomListeners | undefined)[] = [];
  private dirtyRoomCount = 0;
  /** Wake-up counting per room (off unless a dashboard turns it on). */
  private countingWakeups = false;
  /** Rooms with a non-zero `wakeups` (the first `wokenRoomCount`). */
  private readonly wokenRooms: (RoomListeners | undefined)[] = [];
  private wokenRoomCount = 0;
  /** Counts one-room flushes: notifiers stamped with the current one were flushed already. */
  private flushStamp = 0;
  /** Told of every emitted batch (the delivery journal), when set. */
  seen: BatchSeen | undefined = undefined;
  /** Large-room summary mode, when configured. */
  private summary: SummaryRooms | null = null;

  readonly roomWakeups: RoomWakeups = {
    count: (on) => {
      this.takeWakeups();
      this.countingWakeups = on;
    },
    take: () => this.takeWakeups(),
  };

  /**
   * @param notifiers the notifier of each listening user, by user index (a
   *   column the engine keeps dense; read on every change).
   */
  constructor(
    private readonly topology: PushTopology,
    private readonly notifiers: (SyncNotifier | undefined)[],
  ) {}

  /** Turn large-room summary mode on. */
  setSummaryRooms(summary: SummaryRooms): void {
    this.summary = summary;
  }

  /**
   * Room `room`'s summary is due: its listeners are woken once with the members
   * changed since the last summary (still members), read at this turn's flush.
   */
  summaryDue(room: number): void {
    const rl = this.byRoom[room];
    const held = rl?.held;
    if (rl === undefined || held === undefined || held === null || held.size === 0) return;
    const members = this.topology.at(room).members;
    const segment = (rl.segment ??= new RoomSegment());
    const first = segment.size === 0;
    for (const u of held) if (members.has(u)) segment.add(u);
    held.clear();
    if (segment.size === 0) return;
    if (first) this.dirtyRooms[this.dirtyRoomCount++] = rl;
  }

  /** Users with at least one open stream. */
  get listening(): number {
    return this.listeningUsers;
  }

  notifierAt(user: number): SyncNotifier | undefined {
    return this.notifiers[user];
  }

  /** Every listening user's notifier. */
  *allNotifiers(): IterableIterator<SyncNotifier> {
    for (const n of this.notifiers) if (n !== undefined) yield n;
  }

  /** A subscriber opened a stream of `userId` (index `user`); returns the notifier when it is new. */
  open(userId: UserId, user: number, s: Subscriber<PresenceBatch>): SyncNotifier | null {
    let n = this.notifiers[user];
    let created: SyncNotifier | null = null;
    if (n === undefined) {
      created = n = new SyncNotifier(userId, user);
      this.notifiers[user] = n;
      for (const room of this.topology.roomsOf(user)) this.startListening(room.index, user);
      this.listeningUsers++;
    }
    n.addSubscriber(s);
    return created;
  }

  /** A subscriber left; the notifier goes when its last subscriber does. */
  close(user: number, s: Subscriber<PresenceBatch>): void {
    const n = this.notifiers[user];
    if (n === undefined) return;
    n.removeSubscriber(s);
    if (n.subscriberCount > 0) return;
    this.setInterest(n, EMPTY_INTEREST);
    this.notifiers[user] = undefined;
    for (const room of this.topology.roomsOf(user)) this.stopListening(room.index, user);
    this.listeningUsers--;
  }

  /** User `user` joined the room with index `room` (listening there if they listen at all). */
  joined(user: number, room: number): void {
    if (this.notifiers[user] !== undefined) this.startListening(room, user);
  }

  left(user: number, room: number): void {
    this.stopListening(room, user);
  }

  /** Cache a listener's router interest and index it by the users it names. */
  setInterest(n: SyncNotifier, interest: CachedInterest): void {
    if (n.interest === ALL) this.allUsersListeners.delete(n);
    else for (const u of n.interest) this.interestIndex.get(u)?.delete(n);
    n.interest = interest;
    if (interest === ALL) this.allUsersListeners.add(n);
    else
      for (const u of interest) {
        let set = this.interestIndex.get(u);
        if (set === undefined) this.interestIndex.set(u, (set = new Set()));
        set.add(n);
      }
  }

  /**
   * Wake the listeners concerned by the first `count` users of `changed`: the
   * user's own stream, their rooms' listeners (through the room's segment) and
   * listeners whose router interest names them. ALL_USERS listeners are served
   * by the router's answer instead ({@link offer}).
   */
  changed(changed: readonly number[], count: number, idAt: (user: number) => UserId): void {
    const notifiers = this.notifiers;
    const byRoom = this.byRoom;
    const indexed = this.interestIndex.size > 0;
    for (let c = 0; c < count; c++) {
      const u = changed[c] as number;
      const own = notifiers[u];
      if (own !== undefined && own.interest !== ALL) this.offer(own, u);
      for (const room of this.topology.roomsOf(u)) {
        if (room.excluded) continue;
        const rl = byRoom[room.index];
        if (rl === undefined || rl.listening.size === 0) continue;
        if (this.summary !== null && this.summary.isSummary(room)) {
          const held = (rl.held ??= new Set());
          if (held.size === 0) this.summary.pending(room.index);
          held.add(u);
          continue;
        }
        const segment = (rl.segment ??= new RoomSegment());
        if (segment.size === 0) this.dirtyRooms[this.dirtyRoomCount++] = rl;
        segment.add(u);
      }
      if (indexed) {
        const interested = this.interestIndex.get(idAt(u));
        if (interested !== undefined) for (const n of interested) this.offer(n, u);
      }
    }
    // The rooms' listeners are woken at the flush (one push per room and listener, or none: see `flush`).
  }

  /** Hand a room's segment to each of its listeners (ALL_USERS listeners are served by the router). */
  private wake(rl: RoomListeners, segment: RoomSegment): void {
    const listeners = this.listenersOf(rl);
    for (let k = 0; k < listeners.length; k++) {
      const n = listeners[k] as SyncNotifier;
      if (n.interest === ALL) continue;
      this.markDirty(n);
      n.addSegment(segment);
    }
    if (this.countingWakeups) this.countWakeups(rl, listeners, segment.size);
  }

  /** A live join of user `user` into `room`: its listeners see the joiner, the joiner sees every member. */
  joinedLive(user: number, room: PushRoom): void {
    if (room.excluded || !room.members.has(user)) return;
    const rl = this.byRoom[room.index];
    if (rl !== undefined) for (const n of this.listenersOf(rl)) if (n.index !== user && n.interest !== ALL) this.offer(n, user);
    const own = this.notifiers[user];
    if (own !== undefined && own.interest !== ALL) for (const m of room.members) this.offer(own, m);
  }

  /** Offer the current state of user `changed` to notifier `n` at this turn's flush. */
  offer(n: SyncNotifier, changed: number): void {
    this.markDirty(n);
    n.offer(changed);
  }

  /**
   * Emit every woken notifier's batch, at stream `token`, and clear the turn's segments.
   * @returns deliveries made (events × subscribers).
   */
  flush(stateOf: (user: number) => UserPresenceState, token: number, userCount: number, view: BatchView | null = null): number {
    if (this.dirtyRoomCount === 1) return this.flushOneRoom(stateOf, token, userCount, view);
    // One push per (room, listener): the listener reads the room's changes from its shared segment.
    for (let r = 0; r < this.dirtyRoomCount; r++) {
      const rl = this.dirtyRooms[r] as RoomListeners;
      this.wake(rl, rl.segment as RoomSegment);
    }
    const deliveries = this.flushNotifiers(stateOf, token, userCount, view);
    this.clearRooms();
    return deliveries;
  }

  /**
   * The turn changed one room's members (the usual case with one input per
   * turn in a large room): the room's listeners are not marked one by one.
   * Notifiers with offers of their own this turn get the room's segment and
   * are flushed as usual (their batches are merged); every other listener of
   * the room is handed the room's shared batch directly.
   */
  private flushOneRoom(stateOf: (user: number) => UserPresenceState, token: number, userCount: number, view: BatchView | null): number {
    const rl = this.dirtyRooms[0] as RoomListeners;
    const segment = rl.segment as RoomSegment;
    const listeners = this.listenersOf(rl);
    if (this.countingWakeups) this.countWakeups(rl, listeners, segment.size);
    let deliveries = 0;
    const stamp = ++this.flushStamp;
    if (this.dirtyCount > 0) {
      for (let k = 0; k < this.dirtyCount; k++) {
        const n = this.dirty[k] as SyncNotifier;
        n.flushStamp = stamp;
        if (n.interest !== ALL && rl.listening.has(n.index)) n.addSegment(segment);
      }
      deliveries = this.flushNotifiers(stateOf, token, userCount, view);
    }
    const batch = segment.batch(stateOf, token);
    const seen = this.seen;
    for (let k = 0; k < listeners.length; k++) {
      const n = listeners[k] as SyncNotifier;
      if (n.interest === ALL || n.flushStamp === stamp) continue;
      deliveries += n.emitShared(batch, view, seen);
    }
    this.clearRooms();
    return deliveries;
  }

  /** Flush the notifiers marked this turn. @returns deliveries made. */
  private flushNotifiers(stateOf: (user: number) => UserPresenceState, token: number, userCount: number, view: BatchView | null): number {
    let deliveries = 0;
    if (this.dirtyCount > 0) {
      // Swap lists first: a notifier marked while this one is emitted lands in the other.
      const dirty = this.dirty;
      const count = this.dirtyCount;
      this.dirty = this.dirtySpare;
      this.dirtySpare = dirty;
      this.dirtyCount = 0;
      for (let k = 0; k < count; k++) {
        const n = dirty[k] as SyncNotifier;
        dirty[k] = undefined; // a closed stream's notifier must not linger here
        n.dirty = false;
        deliveries += n.flush(stateOf, token, userCount, view, this.seen);
      }
    }
    return deliveries;
  }

  /** Forget this turn's segments. */
  private clearRooms(): void {
    for (let r = 0; r < this.dirtyRoomCount; r++) {
      (this.dirtyRooms[r] as RoomListeners).segment?.clear();
      this.dirtyRooms[r] = undefined;
    }
    this.dirtyRoomCount = 0;
  }

  /** Complete every open stream (the engine stopped). */
  completeAll(): void {
    for (const n of this.notifiers) if (n !== undefined) for (const s of n.subscriberList()) s.complete();
  }

  /** The room's listeners woke: count those the segment reached (ALL_USERS listeners are served by the router instead). */
  private countWakeups(rl: RoomListeners, listeners: readonly SyncNotifier[], changes: number): void {
    let woken = listeners.length;
    if (this.allUsersListeners.size > 0) for (const n of listeners) if (n.interest === ALL) woken--;
    if (woken === 0) return;
    if (rl.wakeups === 0) this.wokenRooms[this.wokenRoomCount++] = rl;
    rl.wakeups += woken;
    rl.changes += changes;
  }

  private takeWakeups(): Map<RoomId, RoomWakeupCount> {
    const counts = new Map<RoomId, RoomWakeupCount>();
    for (let r = 0; r < this.wokenRoomCount; r++) {
      const rl = this.wokenRooms[r] as RoomListeners;
      counts.set(this.topology.at(rl.room).id, { wakeups: rl.wakeups, changes: rl.changes });
      rl.wakeups = 0;
      rl.changes = 0;
      this.wokenRooms[r] = undefined;
    }
    this.wokenRoomCount = 0;
    return counts;
  }

  private markDirty(n: SyncNotifier): void {
    if (!n.dirty) {
      n.dirty = true;
      this.dirty[this.dirtyCount++] = n;
    }
  }

  /** The room's listening members' notifiers (cached until `listening` changes). */
  private listenersOf(rl: RoomListeners): readonly SyncNotifier[] {
    let list = rl.listeners;
    if (list === null) {
      list = [];
      for (const m of rl.listening) {
        const n = this.notifiers[m];
        if (n !== undefined) list.push(n);
      }
      rl.listeners = list;
    }
    return list;
  }

  private startListening(room: number, user: number): void {
    while (this.byRoom.length <= room) this.byRoom.push(undefined); // dense: a hole would make it a dictionary
    const rl = (this.byRoom[room] ??= new RoomListeners(room));
    rl.listening.add(user);
    rl.listeners = null;
  }

  private stopListening(room: number, user: number): void {
    const rl = this.byRoom[room];
    if (rl !== undefined && rl.listening.delete(user)) rl.listeners = null;
  }
}
