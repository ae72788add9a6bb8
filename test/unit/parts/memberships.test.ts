/**
 * Memberships on its own, over the real parts it updates (UserDirectory,
 * RoomIndex, PushFanOut, ChangeIndex, StreamPosition, TurnBuffer): a live
 * join or leave is logged once, applied everywhere, and a no-op change does
 * nothing; replicated memberships are applied without being logged.
 */
import { describe, expect, it } from 'vitest';
import type { MembershipEvent } from '../../../src/domain/events.js';
import type { RoomId, UserId } from '../../../src/domain/ids.js';
import { defaultPresence } from '../../../src/domain/presence.js';
import { Memberships } from '../../../src/engine/memberships.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { StreamPosition } from '../../../src/engine/stream-position.js';
import { TurnBuffer } from '../../../src/engine/turn-buffer.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import { ChangeIndex } from '../../../streams/change-index.js';
import { PushFanOut } from '../../../streams/push-fanout.js';
import { syncStreamObservable, type SyncNotifier } from '../../../streams/sync-notifier.js';

const R = '!r:example.org' as RoomId;
const A = '@a:example.org' as UserId;
const B = '@b:remote.test' as UserId;

function setup() {
  const users = new UserDirectory('example.org');
  const rooms = new RoomIndex(users, new Set());
  const push = new PushFanOut(rooms, users.column<SyncNotifier>());
  const changes = new ChangeIndex(100, 5);
  const stream = new StreamPosition(5);
  const turn = new TurnBuffer();
  const roomsChanged: number[] = [];
  const m = new Memberships(users, rooms, push, changes, stream, turn, (u) => roomsChanged.push(u));
  const entries = () => {
    const out: [number, number, number][] = [];
    changes.forEachSince(5, (user, room, id) => out.push([id, user, room]));
    return out;
  };
  return { users, rooms, push, changes, stream, turn, roomsChanged, m, entries };
}

describe('Memberships', () => {
  it('a join is logged with a new stream id, indexed as a join, remembered for the commit and reported', () => {
    const f = setup();
    f.m.change(R, A, 'join', 1_000);
    const a = f.users.find(A) as number;
    expect(f.turn.takeEvents()).toEqual([{ type: 'room.membership', roomId: R, userId: A, membership: 'join', at: 1_000, streamId: 6 }]);
    expect(f.stream.id).toBe(6);
    expect(f.rooms.isJoined(R, A)).toBe(true);
    expect(f.entries()).toEqual([[6, a, 0]]);
    expect(f.turn.takeJoins()).toEqual([[a, f.rooms.get(R)]]);
    expect(f.roomsChanged).toEqual([a]);
  });

  it('joining twice or leaving a room one is not in changes nothing (nothing logged, no stream id)', () => {
    const f = setup();
    f.m.change(R, A, 'leave', 1);
    f.m.change(R, A, 'ban', 1);
    expect(f.turn.takeEvents()).toBeNull();
    f.m.change(R, A, 'join', 2);
    f.turn.takeEvents();
    f.turn.takeJoins();
    f.m.change(R, A, 'join', 3);
    expect(f.turn.takeEvents()).toBeNull();
    expect(f.turn.takeJoins()).toEqual([]);
    expect(f.stream.id).toBe(6);
    expect(f.roomsChanged).toHaveLength(1);
  });

  it('a leave (or ban) is logged without a stream id and removes the membership', () => {
    const f = setup();
    f.m.change(R, B, 'join', 1);
    f.turn.takeEvents();
    f.m.change(R, B, 'ban', 2);
    expect(f.turn.takeEvents()).toEqual([{ type: 'room.membership', roomId: R, userId: B, membership: 'ban', at: 2 }]);
    expect(f.rooms.isJoined(R, B)).toBe(false);
    expect(f.rooms.hasRemoteMembers).toBe(false);
    expect(f.stream.id).toBe(6);
    expect(f.entries()).toHaveLength(1); // only the join
    expect(f.roomsChanged).toHaveLength(2);
  });

  it("a join makes a listening joiner listen in the room; a leave stops it", () => {
    const f = setup();
    const c = '@c:example.org' as UserId;
    f.m.change(R, c, 'join', 1);
    const a = f.users.indexOf(A);
    const got: string[][] = [];
    syncStreamObservable(
      (s) => f.push.open(A, a, s),
      (s) => f.push.close(a, s),
    ).subscribe((b) => got.push(b.events.map((e) => e.userId)));
    f.m.change(R, A, 'join', 2);
    const cIndex = f.users.find(c) as number;
    f.push.changed([cIndex], 1, (i) => f.users.idAt(i));
    f.push.flush((i) => defaultPresence(f.users.idAt(i)), f.stream.id, f.users.size);
    expect(got).toEqual([['@c:example.org']]);
    f.m.change(R, A, 'leave', 3);
    f.push.changed([cIndex], 1, (i) => f.users.idAt(i));
    expect(f.push.flush((i) => defaultPresence(f.users.idAt(i)), f.stream.id, f.users.size)).toBe(0);
  });

  it('replicated: applied with a stream id of this engine, nothing logged; no-ops ignored', () => {
    const f = setup();
    const join: MembershipEvent = { type: 'room.membership', roomId: R, userId: A, membership: 'join', at: 1, streamId: 999 };
    f.m.replicated(join);
    expect(f.turn.takeEvents()).toBeNull();
    expect(f.rooms.isJoined(R, A)).toBe(true);
    expect(f.stream.id).toBe(6); // this engine's next id, not the other process's
    expect(f.entries()).toEqual([[6, f.users.find(A), 0]]);
    f.m.replicated(join);
    expect(f.stream.id).toBe(6);
    f.m.replicated({ type: 'room.membership', roomId: R, userId: A, membership: 'leave', at: 2 });
    expect(f.rooms.isJoined(R, A)).toBe(false);
    expect(f.turn.takeEvents()).toBeNull();
    expect(f.roomsChanged).toHaveLength(2);
  });
});
