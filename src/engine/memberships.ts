/**
 * Live membership changes: a join or leave updates the room index, who
 * listens in the room, and (a join) the change index under a new stream id,
 * and is remembered in the turn so that the commit can send the joiner's and
 * the room's presence where the join makes it visible.
 */
import type { PushFanOut } from '../../streams/push-fanout.js';
import type { ChangeIndex } from '../../streams/change-index.js';
import type { MembershipEvent } from '../domain/events.js';
import type { RoomId, UserId } from '../domain/ids.js';
import type { Membership } from './commands.js';
import type { RoomIndex } from './room-index.js';
import type { StreamPosition } from './stream-position.js';
import type { TurnBuffer } from './turn-buffer.js';
import type { UserDirectory } from './user-directory.js';

export class Memberships {
  constructor(
    private readonly users: UserDirectory,
    private readonly rooms: RoomIndex,
    private readonly push: PushFanOut,
    private readonly changes: ChangeIndex,
    private readonly stream: StreamPosition,
    private readonly turn: TurnBuffer,
    /** A listener's rooms changed: a router's interest may depend on them (e.g. users_to_rooms). */
    private readonly roomsChanged: (user: number) => void,
  ) {}

  /** A membership input at time `at`, inside a turn: logged and applied when it changes anything. */
  change(roomId: RoomId, userId: UserId, membership: Membership, at: number): void {
    if ((membership === 'join') === this.rooms.isJoined(roomId, userId)) return; // no change
    const event: MembershipEvent =
      membership === 'join'
        ? { type: 'room.membership', roomId, userId, membership, at, streamId: this.stream.next() }
        : { type: 'room.membership', roomId, userId, membership, at };
    this.turn.addEvent(event);
    this.apply(event);
  }

  /** Distributed mode: a membership logged by another process (a join gets a stream id of this engine; nothing is logged). */
  replicated(e: MembershipEvent): void {
    if ((e.membership === 'join') === this.rooms.isJoined(e.roomId, e.userId)) return;
    const { roomId, userId, membership, at } = e;
    this.apply(membership === 'join' ? { type: 'room.membership', roomId, userId, membership, at, streamId: this.stream.next() } : { type: 'room.membership', roomId, userId, membership, at });
  }

  private apply(e: MembershipEvent): void {
    const room = this.rooms.roomFor(e.roomId);
    const u = this.users.indexOf(e.userId);
    if (e.membership === 'join') {
      if (!this.rooms.join(u, room)) return;
      this.push.joined(u, room.index);
      if (e.streamId !== undefined) {
        this.stream.advanceTo(e.streamId);
        this.changes.add(e.streamId, u, room.index);
      }
      this.turn.addJoin(u, room);
    } else {
      if (!this.rooms.leave(u, room)) return;
      this.push.left(u, room.index);
    }
    this.roomsChanged(u);
  }
}
