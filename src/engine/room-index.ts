/**
 * Room memberships: who is joined to which room, each user's rooms in join
 * order, and how many members each remote server has in a room. Only
 * memberships: what listens to a room is the push fan-out's business
 * (streams/push-fanout.ts).
 */
import { serverNameOf, type RoomId, type ServerName, type UserId } from '../domain/ids.js';
import type { UserDirectory } from './user-directory.js';

export interface Room {
  readonly id: RoomId;
  /** Dense room index (the change index and the fan-out key rooms by it). */
  readonly index: number;
  /** Joined members by user index. */
  readonly members: Set<number>;
  /** Joined remote users per server. */
  readonly remote: Map<ServerName, number>;
  /**
   * `exclude_rooms_from_presence`, or a large room in `shared_rooms_only` mode
   * (docs/policies.md; re-evaluated at each join and leave): membership is kept
   * but shares no presence.
   */
  readonly excluded: boolean;
}

/** Large-room mode `shared_rooms_only`: is this room, with this many members, large? */
export type LargeRoomTest = (roomId: RoomId, members: number) => boolean;

const NO_ROOMS: readonly Room[] = [];
/** Room lists up to this length are kept exactly sized (see `addRoomOf`). */
const EXACT_ROOM_LISTS = 32;

export class RoomIndex {
  private readonly byId = new Map<RoomId, Room>();
  private readonly list: Room[] = [];
  /** Each user's rooms in join order, by user index: an array, walked for every changed user. */
  private readonly roomsAt: (Room[] | undefined)[];
  /** Remote memberships over all rooms: federation skips its room walk while there are none. */
  private remoteMemberships = 0;

  constructor(
    private readonly users: UserDirectory,
    private readonly excluded: ReadonlySet<RoomId>,
    private readonly large: LargeRoomTest | null = null,
  ) {
    this.roomsAt = users.column<Room[]>();
  }

  get size(): number {
    return this.list.length;
  }

  get hasRemoteMembers(): boolean {
    return this.remoteMemberships > 0;
  }

  get(roomId: RoomId): Room | undefined {
    return this.byId.get(roomId);
  }

  at(index: number): Room {
    return this.list[index] as Room;
  }

  all(): readonly Room[] {
    return this.list;
  }

  /** The rooms of user `u` in join order. */
  roomsOf(u: number): readonly Room[] {
    return this.roomsAt[u] ?? NO_ROOMS;
  }

  /** The room, created on first use. */
  roomFor(roomId: RoomId): Room {
    let room = this.byId.get(roomId);
    if (room === undefined) {
      room = { id: roomId, index: this.list.length, members: new Set(), remote: new Map(), excluded: this.excluded.has(roomId) };
      this.byId.set(roomId, room);
      this.list.push(room);
    }
    return room;
  }

  isJoined(roomId: RoomId, userId: UserId): boolean {
    const r = this.byId.get(roomId);
    const i = this.users.find(userId);
    return r !== undefined && i !== undefined && r.members.has(i);
  }

  /** Join user `u` to `room`; false when already joined. */
  join(u: number, room: Room): boolean {
    if (room.members.has(u)) return false;
    room.members.add(u);
    this.addRoomOf(u, room);
    this.countRemote(room, u, 1);
    if (this.large !== null) this.classify(room);
    return true;
  }

  /** Large-room mode: a room is excluded while it is large (its size just changed). */
  private classify(room: Room): void {
    (room as { excluded: boolean }).excluded = this.excluded.has(room.id) || (this.large as LargeRoomTest)(room.id, room.members.size);
  }

  /** Remove user `u` from `room`; false when not joined. */
  leave(u: number, room: Room): boolean {
    if (!room.members.delete(u)) return false;
    const rooms = this.roomsAt[u];
    const at = rooms?.indexOf(room) ?? -1;
    if (at >= 0) rooms?.splice(at, 1); // keeps the join order of the others
    this.countRemote(room, u, -1);
    if (this.large !== null) this.classify(room);
    return true;
  }

  /** A snapshot's members of one room, as joins at start-up (one room look-up per room). */
  load(roomId: RoomId, members: readonly UserId[]): void {
    const room = this.roomFor(roomId);
    for (const m of members) {
      const u = this.users.indexOf(m);
      if (room.members.has(u)) continue;
      room.members.add(u);
      const rooms = this.roomsAt[u];
      if (rooms === undefined) this.roomsAt[u] = [room];
      else rooms.push(room); // sized exactly in `compact`
      this.countRemote(room, u, 1);
    }
    if (this.large !== null) this.classify(room);
  }

  /** After a snapshot load: give short room lists their exact size. */
  compact(): void {
    const roomsAt = this.roomsAt;
    for (let u = 0; u < roomsAt.length; u++) {
      const rooms = roomsAt[u];
      if (rooms !== undefined && rooms.length > 1 && rooms.length <= EXACT_ROOM_LISTS) roomsAt[u] = rooms.slice();
    }
  }

  /** Do users `a` and `b` share a joined room that is not excluded? */
  shareRoom(a: number, b: number): boolean {
    if (a === b) return true;
    const ra = this.roomsAt[a];
    const rb = this.roomsAt[b];
    if (ra === undefined || rb === undefined) return false;
    // Walk the shorter list; the other user's membership is a look-up in each room.
    const [rooms, other] = ra.length <= rb.length ? [ra, b] : [rb, a];
    for (const room of rooms) if (!room.excluded && room.members.has(other)) return true;
    return false;
  }

  /** Servers with a member in a room of user `u` that is not excluded (undefined when none). */
  serversSharingWith(u: number): Set<ServerName> | undefined {
    let servers: Set<ServerName> | undefined;
    for (const room of this.roomsAt[u] ?? NO_ROOMS) {
      if (room.excluded || room.remote.size === 0) continue;
      servers ??= new Set();
      for (const server of room.remote.keys()) servers.add(server);
    }
    return servers;
  }

  /** Members of user `u`'s rooms that are not excluded, `u` included. */
  coMembers(u: number, into: Set<number> = new Set([u])): Set<number> {
    for (const room of this.roomsAt[u] ?? NO_ROOMS) {
      if (room.excluded) continue;
      for (const m of room.members) into.add(m);
    }
    return into;
  }

  /**
   * Add `room` to user `u`'s rooms. Up to {@link EXACT_ROOM_LISTS} rooms the list
   * is replaced by an exactly sized copy (a pushed-to list keeps slack that adds
   * up at a million users); longer lists grow by `push`.
   */
  private addRoomOf(u: number, room: Room): void {
    const rooms = this.roomsAt[u];
    if (rooms === undefined) this.roomsAt[u] = [room];
    else if (rooms.length < EXACT_ROOM_LISTS) this.roomsAt[u] = rooms.concat(room);
    else rooms.push(room);
  }

  private countRemote(room: Room, u: number, delta: 1 | -1): void {
    if (this.users.isMineAt(u)) return;
    const server = serverNameOf(this.users.idAt(u));
    const c = (room.remote.get(server) ?? 0) + delta;
    if (c > 0) room.remote.set(server, c);
    else room.remote.delete(server);
    this.remoteMemberships += delta;
  }
}
