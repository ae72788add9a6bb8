/**
 * RoomIndex on its own (over a real UserDirectory): idempotent joins and
 * leaves, each user's rooms in join order, remote server counts, excluded
 * rooms, snapshot load + compact, co-members and servers sharing a room.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../src/domain/ids.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import { fcParams } from '../../support/fc.js';

const rid = (s: string) => s as RoomId;
const uid = (s: string) => s as UserId;

function setup(excluded: string[] = []) {
  const users = new UserDirectory('example.org');
  const rooms = new RoomIndex(users, new Set(excluded.map(rid)));
  const u = (id: string) => users.indexOf(uid(id));
  const r = (id: string) => rooms.roomFor(rid(id));
  return { users, rooms, u, r };
}

describe('RoomIndex', () => {
  it('roomFor creates a room once, with dense indexes', () => {
    const { rooms, r } = setup(['!x:example.org']);
    const a = r('!a:example.org');
    expect(r('!a:example.org')).toBe(a);
    const x = r('!x:example.org');
    expect([a.index, x.index]).toEqual([0, 1]);
    expect(rooms.size).toBe(2);
    expect(rooms.at(1)).toBe(x);
    expect(rooms.get(rid('!x:example.org'))).toBe(x);
    expect(rooms.get(rid('!nope:example.org'))).toBeUndefined();
    expect(a.excluded).toBe(false);
    expect(x.excluded).toBe(true);
    expect(rooms.all()).toEqual([a, x]);
  });

  it('join and leave are idempotent and report whether they changed anything', () => {
    const { rooms, u, r } = setup();
    const alice = u('@alice:example.org');
    const room = r('!a:example.org');
    expect(rooms.join(alice, room)).toBe(true);
    expect(rooms.join(alice, room)).toBe(false);
    expect(rooms.roomsOf(alice)).toEqual([room]);
    expect(rooms.isJoined(rid('!a:example.org'), uid('@alice:example.org'))).toBe(true);
    expect(rooms.leave(alice, room)).toBe(true);
    expect(rooms.leave(alice, room)).toBe(false);
    expect(rooms.roomsOf(alice)).toEqual([]);
    expect(rooms.isJoined(rid('!a:example.org'), uid('@alice:example.org'))).toBe(false);
    expect(rooms.isJoined(rid('!none:example.org'), uid('@alice:example.org'))).toBe(false);
    expect(rooms.isJoined(rid('!a:example.org'), uid('@stranger:example.org'))).toBe(false);
  });

  it("a leave keeps the join order of the user's other rooms (also past 32 rooms)", () => {
    const { rooms, u, r } = setup();
    const alice = u('@alice:example.org');
    const all = Array.from({ length: 40 }, (_, k) => r(`!r${k}:example.org`));
    for (const room of all) rooms.join(alice, room);
    expect(rooms.roomsOf(alice)).toEqual(all);
    rooms.leave(alice, all[3]!);
    rooms.leave(alice, all[35]!);
    expect(rooms.roomsOf(alice)).toEqual(all.filter((_, k) => k !== 3 && k !== 35));
    rooms.join(alice, all[3]!);
    expect(rooms.roomsOf(alice).at(-1)).toBe(all[3]);
  });

  it('counts remote members per server; hasRemoteMembers follows the total', () => {
    const { rooms, u, r } = setup();
    const room = r('!a:example.org');
    const other = r('!b:example.org');
    expect(rooms.hasRemoteMembers).toBe(false);
    rooms.join(u('@local:example.org'), room);
    expect(room.remote.size).toBe(0);
    expect(rooms.hasRemoteMembers).toBe(false);
    rooms.join(u('@x:remote.test'), room);
    rooms.join(u('@y:remote.test'), room);
    rooms.join(u('@y:remote.test'), room); // idempotent: not counted twice
    rooms.join(u('@z:other.test'), room);
    rooms.join(u('@x:remote.test'), other);
    expect(Object.fromEntries(room.remote)).toEqual({ 'remote.test': 2, 'other.test': 1 });
    expect(rooms.hasRemoteMembers).toBe(true);
    rooms.leave(u('@x:remote.test'), room);
    rooms.leave(u('@x:remote.test'), room);
    expect(Object.fromEntries(room.remote)).toEqual({ 'remote.test': 1, 'other.test': 1 });
    rooms.leave(u('@y:remote.test'), room);
    rooms.leave(u('@z:other.test'), room);
    expect(room.remote.size).toBe(0);
    expect(rooms.hasRemoteMembers).toBe(true); // still @x in !b
    rooms.leave(u('@x:remote.test'), other);
    expect(rooms.hasRemoteMembers).toBe(false);
  });

  it('remote counts match the members after any sequence of joins and leaves (property)', () => {
    const userIds = ['@a:example.org', '@b:example.org', '@c:r1.test', '@d:r1.test', '@e:r2.test'];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(4), fc.nat(2), fc.boolean()), { maxLength: 80 }), (ops) => {
        const { rooms, u, r } = setup();
        for (const [user, room, join] of ops) {
          const i = u(userIds[user]!);
          const rm = r(`!r${room}:example.org`);
          if (join) rooms.join(i, rm);
          else rooms.leave(i, rm);
        }
        let remote = 0;
        for (const rm of rooms.all()) {
          const expected = new Map<string, number>();
          for (const m of rm.members) {
            const id = userIds.find((x) => u(x) === m)!;
            if (!id.endsWith(':example.org')) {
              const server = id.slice(id.indexOf(':') + 1);
              expected.set(server, (expected.get(server) ?? 0) + 1);
              remote++;
            }
          }
          expect(Object.fromEntries(rm.remote)).toEqual(Object.fromEntries(expected));
          for (const m of rm.members) expect(rooms.roomsOf(m)).toContain(rm);
        }
        expect(rooms.hasRemoteMembers).toBe(remote > 0);
      }),
      fcParams(100),
    );
  });

  it('shareRoom: a user shares with themself; excluded rooms share nothing', () => {
    const { rooms, u, r } = setup(['!ex:example.org']);
    const a = u('@a:example.org');
    const b = u('@b:example.org');
    const c = u('@c:example.org');
    expect(rooms.shareRoom(a, a)).toBe(true);
    expect(rooms.shareRoom(a, b)).toBe(false);
    rooms.join(a, r('!ex:example.org'));
    rooms.join(b, r('!ex:example.org'));
    expect(rooms.shareRoom(a, b)).toBe(false);
    rooms.join(a, r('!ok:example.org'));
    rooms.join(b, r('!ok:example.org'));
    for (let k = 0; k < 5; k++) rooms.join(c, r(`!c${k}:example.org`)); // longer list on one side
    rooms.join(c, r('!ok:example.org'));
    expect(rooms.shareRoom(a, b)).toBe(true);
    expect(rooms.shareRoom(c, a)).toBe(true);
    expect(rooms.shareRoom(a, c)).toBe(true);
    rooms.leave(b, r('!ok:example.org'));
    expect(rooms.shareRoom(a, b)).toBe(false);
  });

  it('coMembers: members of the non-excluded rooms, the user included, added into a given set', () => {
    const { rooms, u, r } = setup(['!ex:example.org']);
    const a = u('@a:example.org');
    const b = u('@b:example.org');
    const c = u('@c:remote.test');
    const d = u('@d:example.org');
    expect([...rooms.coMembers(a)]).toEqual([a]);
    rooms.join(a, r('!one:example.org'));
    rooms.join(b, r('!one:example.org'));
    rooms.join(a, r('!ex:example.org'));
    rooms.join(d, r('!ex:example.org'));
    rooms.join(c, r('!two:example.org'));
    rooms.join(a, r('!two:example.org'));
    expect([...rooms.coMembers(a)].sort()).toEqual([a, b, c].sort());
    const into = new Set([99]);
    expect(rooms.coMembers(d, into)).toBe(into);
    expect([...into].sort()).toEqual([99]); // d is only in the excluded room; the given set is not seeded with d
  });

  it('serversSharingWith: remote servers of the non-excluded rooms, undefined when none', () => {
    const { rooms, u, r } = setup(['!ex:example.org']);
    const a = u('@a:example.org');
    expect(rooms.serversSharingWith(a)).toBeUndefined();
    rooms.join(a, r('!ex:example.org'));
    rooms.join(u('@x:hidden.test'), r('!ex:example.org'));
    rooms.join(a, r('!local:example.org'));
    rooms.join(u('@b:example.org'), r('!local:example.org'));
    expect(rooms.serversSharingWith(a)).toBeUndefined();
    rooms.join(a, r('!one:example.org'));
    rooms.join(u('@y:r1.test'), r('!one:example.org'));
    rooms.join(a, r('!two:example.org'));
    rooms.join(u('@z:r2.test'), r('!two:example.org'));
    rooms.join(u('@w:r1.test'), r('!two:example.org'));
    expect([...(rooms.serversSharingWith(a) ?? [])].sort()).toEqual(['r1.test', 'r2.test']);
  });

  it('load (snapshot members) then compact: same state as live joins, duplicates ignored', () => {
    const loaded = setup();
    loaded.rooms.load(rid('!a:example.org'), [uid('@a:example.org'), uid('@x:remote.test'), uid('@a:example.org')]);
    loaded.rooms.load(rid('!b:example.org'), [uid('@a:example.org'), uid('@y:remote.test')]);
    loaded.rooms.load(rid('!a:example.org'), [uid('@x:remote.test')]);
    loaded.rooms.compact();
    const live = setup();
    live.rooms.join(live.u('@a:example.org'), live.r('!a:example.org'));
    live.rooms.join(live.u('@x:remote.test'), live.r('!a:example.org'));
    live.rooms.join(live.u('@a:example.org'), live.r('!b:example.org'));
    live.rooms.join(live.u('@y:remote.test'), live.r('!b:example.org'));
    for (const id of ['@a:example.org', '@x:remote.test', '@y:remote.test']) {
      expect(loaded.rooms.roomsOf(loaded.u(id)).map((x) => x.id)).toEqual(live.rooms.roomsOf(live.u(id)).map((x) => x.id));
    }
    for (const id of ['!a:example.org', '!b:example.org']) {
      const l = loaded.rooms.get(rid(id))!;
      const v = live.rooms.get(rid(id))!;
      expect([...l.members]).toEqual([...v.members]);
      expect(Object.fromEntries(l.remote)).toEqual(Object.fromEntries(v.remote));
    }
    expect(loaded.rooms.hasRemoteMembers).toBe(true);
    // compact leaves the lists usable: a later leave keeps the order
    const a = loaded.u('@a:example.org');
    loaded.rooms.leave(a, loaded.r('!a:example.org'));
    expect(loaded.rooms.roomsOf(a).map((x) => x.id)).toEqual(['!b:example.org']);
  });
});
