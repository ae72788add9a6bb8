/**
 * The incremental-sync reader: the pull side of `/sync` (`getNewEvents`).
 * It never touches the actors' mailbox: it walks the change index since the
 * reader's token, or collects the reader's co-members for an initial sync,
 * and reads current states from the user directory.
 */
import type { ChangeIndex } from '../../streams/change-index.js';
import type { UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import { ALL_USERS, type Interest, type PresenceRouter } from '../router/presence-router.js';
import type { RoomIndex, Room } from './room-index.js';
import type { NewEvents } from './types.js';
import type { UserDirectory } from './user-directory.js';
import type { Visibility } from './visibility.js';

export interface SyncReaderHost {
  readonly router: PresenceRouter;
  /** Users with a pending full-presence request → the token it applies before. */
  readonly fullRequests: ReadonlyMap<UserId, number>;
  /** A reader's interest was asked: the push side caches it. */
  interestAnswered(userId: UserId, interest: Interest): void;
  /** Visibility policies: applied to every answer when active. */
  readonly visibility?: Visibility;
}

export class SyncReader {
  /** Per user index: `gen` once answered in this read, `-gen` once found not visible. */
  private userMarks = new Int32Array(1024);
  /** Per user index: `gen` for members of the reader's rooms that are not excluded. */
  private memberMarks = new Int32Array(1024);
  /** Per room index: `gen` for the reader's rooms that are not excluded. */
  private roomMarks = new Int32Array(256);
  private gen = 0;

  constructor(
    private readonly users: UserDirectory,
    private readonly rooms: RoomIndex,
    private readonly changes: ChangeIndex,
    private readonly host: SyncReaderHost,
  ) {}

  /**
   * Presence for a sync of user `id` at stream token `token`: no `since` →
   * everyone the user is interested in (offline excluded unless
   * `includeOffline`); a token → the latest state of each interested user
   * changed since it, offline transitions included, plus members of newly
   * shared rooms; the current token → nothing. A token older than the change
   * index (or a pending full-presence request) gets a full answer.
   */
  async read(id: UserId, since: number | null, includeOfflineOnInitial: boolean, token: number): Promise<NewEvents> {
    let from = since;
    let includeOffline = includeOfflineOnInitial;
    const requested = this.host.fullRequests.get(id);
    if (from !== null && requested !== undefined && from <= requested) {
      from = null;
      includeOffline = false;
    }
    if (from !== null && from === token) return { events: [], nextToken: token, full: false };
    if (from !== null && (from > token || !this.changes.covers(from))) {
      from = null; // too old (or from another engine): answer in full, offline transitions included
      includeOffline = true;
    }
    const router = this.host.router;
    const interest = await router.interestedUsers(id);
    this.host.interestAnswered(id, interest);
    if (interest === ALL_USERS) {
      const candidates: UserPresenceState[] = [];
      // Presence changes only: joins make users newly visible through rooms, which ALL_USERS readers bypass.
      if (from !== null) for (const i of this.presenceChangedSince(from)) candidates.push(this.users.stateAt(i));
      else for (const s of this.users.storedStates()) if (includeOffline || s.state !== 'offline') candidates.push(s);
      const routed = await router.usersForStates(candidates);
      return this.viewed(id, [...(routed.get(id) ?? [])], token, from === null, includeOffline);
    }
    const self = this.users.indexOf(id);
    if (from === null) return this.viewed(id, this.initial(self, interest, includeOffline), token, true, includeOffline);
    return this.viewed(id, this.changedAndVisible(self, from, interest), token, false, includeOffline);
  }

  /**
   * The answer as `id` may see it: visibility policies applied when active
   * (checked when the answer is made, after any router wait). A full answer
   * without offline users leaves out users masked to offline, as it would an
   * offline user.
   */
  private viewed(id: UserId, events: UserPresenceState[], nextToken: number, full: boolean, includesOffline: boolean): NewEvents | Promise<NewEvents> {
    const v = this.host.visibility;
    if (v === undefined || !v.active || events.length === 0) return { events, nextToken, full };
    const view = (): NewEvents => ({ events: v.viewList(id, events, full && !includesOffline), nextToken, full });
    const waiting = v.prefetch(id, events);
    return waiting === null ? view() : waiting.then(view);
  }

  /** Everyone reader `self` can see through rooms or `interest`, for an initial sync. */
  private initial(self: number, interest: ReadonlySet<UserId>, includeOffline: boolean): UserPresenceState[] {
    const seen = this.rooms.coMembers(self);
    for (const u of interest) seen.add(this.users.indexOf(u));
    const out: UserPresenceState[] = [];
    for (const i of seen) {
      const s = this.users.stateAt(i);
      if (includeOffline || s.state !== 'offline') out.push(s);
    }
    return out;
  }

  /** Users whose presence changed since `from` (room joins are not presence changes), for ALL_USERS readers. */
  private presenceChangedSince(from: number): Set<number> {
    const out = new Set<number>();
    this.changes.forEachSince(from, (user, room) => {
      if (room < 0) out.add(user);
    });
    return out;
  }

  /**
   * The incremental answer for reader `self` (not an ALL_USERS reader) from a
   * token the change index covers: the latest state of each user, in order of
   * first appearance after `from`, who changed presence and is the reader,
   * shares a room that is not excluded with the reader, or is in the reader's
   * router interest; plus, for a join into such a room where both are still
   * members, the joiner (or every member, when the joiner is the reader).
   *
   * One pass over the entries: `userMarks` answers each user once (visibility
   * depends only on the present), and the reader's rooms (or their members)
   * are marked once per read when that costs less than the walk.
   */
  private changedAndVisible(self: number, from: number, interest: ReadonlySet<UserId>): UserPresenceState[] {
    const changes = this.changes;
    const first = changes.firstAfter(from);
    const end = changes.length;
    if (first < 0 || first >= end) return [];
    const gen = this.nextGeneration();
    const marks = this.userMarks;
    const own = this.rooms.roomsOf(self);
    const useRoomMarks = own.length <= 4 * (end - first);
    if (useRoomMarks) this.markRooms(own, gen);
    const useMemberMarks = useRoomMarks && membersOf(own) <= 16 * (end - first);
    if (useMemberMarks) this.markMembers(own, gen);
    const roomMarks = this.roomMarks;
    const memberMarks = this.memberMarks;
    const withInterest = interest.size > 0;
    const picked: number[] = [];
    for (let k = first; k < end; k++) {
      const user = changes.userAt(k);
      const roomIdx = changes.roomAt(k);
      if (roomIdx < 0) {
        const m = marks[user];
        if (m === gen || m === -gen) continue;
        const visible =
          user === self ||
          (useMemberMarks ? memberMarks[user] === gen : useRoomMarks ? this.inMarkedRoom(self, user, gen) : this.rooms.shareRoom(self, user)) ||
          (withInterest && interest.has(this.users.idAt(user)));
        if (visible) {
          marks[user] = gen;
          picked.push(user);
        } else marks[user] = -gen;
        continue;
      }
      const room = this.rooms.at(roomIdx);
      if (useRoomMarks ? roomMarks[roomIdx] !== gen : room.excluded || !room.members.has(self)) continue;
      if (user === self) {
        for (const m of room.members)
          if (marks[m] !== gen) {
            marks[m] = gen;
            picked.push(m);
          }
      } else if (marks[user] !== gen && room.members.has(user)) {
        marks[user] = gen;
        picked.push(user);
      }
    }
    const out: UserPresenceState[] = [];
    for (let k = 0; k < picked.length; k++) out.push(this.users.stateAt(picked[k] as number));
    return out;
  }

  /** A fresh mark generation, the arrays sized for every user and room (older marks read as unmarked). */
  private nextGeneration(): number {
    const users = this.users.size;
    if (this.userMarks.length < users) {
      const size = Math.max(users, this.userMarks.length * 2);
      this.userMarks = new Int32Array(size);
      this.memberMarks = new Int32Array(size);
    }
    const rooms = this.rooms.size;
    if (this.roomMarks.length < rooms) this.roomMarks = new Int32Array(Math.max(rooms, this.roomMarks.length * 2));
    if (this.gen === 0x7fffffff) {
      this.userMarks.fill(0);
      this.memberMarks.fill(0);
      this.roomMarks.fill(0);
      this.gen = 0;
    }
    return ++this.gen;
  }

  private markRooms(rooms: readonly Room[], gen: number): void {
    const roomMarks = this.roomMarks;
    for (const room of rooms) if (!room.excluded) roomMarks[room.index] = gen;
  }

  private markMembers(rooms: readonly Room[], gen: number): void {
    const memberMarks = this.memberMarks;
    for (const room of rooms) if (!room.excluded) for (const m of room.members) memberMarks[m] = gen;
  }

  /** `shareRoom(self, user)` when the reader's rooms are marked `gen` in `roomMarks`. */
  private inMarkedRoom(self: number, user: number, gen: number): boolean {
    const theirs = this.rooms.roomsOf(user);
    if (theirs.length === 0) return false;
    if (theirs.length > this.rooms.roomsOf(self).length) return this.rooms.shareRoom(self, user);
    const roomMarks = this.roomMarks;
    for (const room of theirs) if (roomMarks[room.index] === gen) return true;
    return false;
  }
}

/** Members of `rooms` that are not excluded (counted once per room). */
function membersOf(rooms: readonly Room[]): number {
  let n = 0;
  for (const room of rooms) if (!room.excluded) n += room.members.size;
  return n;
}
