/**
 * SyncReader on its own, over a real UserDirectory, RoomIndex, ChangeIndex
 * and PresenceRouter: a full answer without a token, an incremental answer
 * from a covered token (only users the reader can see, each once, latest
 * state), a full answer for a token too old for the change index.
 */
import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../src/domain/ids.js';
import { defaultPresence, type PresenceValue } from '../../../src/domain/presence.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { SyncReader } from '../../../src/engine/sync-reader.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import { silentLogger } from '../../../src/logger.js';
import { ALL_USERS, PresenceRouter, type Interest } from '../../../src/router/presence-router.js';
import { SimulatedClock } from '../../../src/testing/index.js';
import { ChangeIndex } from '../../../streams/change-index.js';

const A = '@a:example.org' as UserId;

function setup(capacity = 100) {
  const users = new UserDirectory('example.org');
  const rooms = new RoomIndex(users, new Set(['!ex:example.org' as RoomId]));
  const changes = new ChangeIndex(capacity, 0);
  const router = new PresenceRouter(new SimulatedClock(), silentLogger, 1_000);
  const fullRequests = new Map<UserId, number>();
  const answered: [UserId, Interest][] = [];
  const reader = new SyncReader(users, rooms, changes, { router, fullRequests, interestAnswered: (id, i) => answered.push([id, i]) });
  let token = 0;
  const u = (id: string) => users.indexOf(id as UserId);
  /** A notified presence change (stream id, change index entry), as a presence step records it. */
  const set = (id: string, state: PresenceValue, statusMsg: string | null = null) => {
    users.storePresence(u(id), { ...defaultPresence(id as UserId), state, statusMsg });
    changes.add(++token, u(id));
  };
  /** A live join, as Memberships records it. */
  const join = (id: string, room: string) => {
    const r = rooms.roomFor(room as RoomId);
    rooms.join(u(id), r);
    changes.add(++token, u(id), r.index);
  };
  const read = async (since: number | null, includeOffline = false, reader_: UserId = A) => reader.read(reader_, since, includeOffline, token);
  const ids = (events: readonly { userId: string }[]) => events.map((e) => e.userId);
  return { users, rooms, changes, router, fullRequests, answered, reader, set, join, read, ids, token: () => token };
}

describe('SyncReader', () => {
  it('no token: a full answer with everyone the reader shares a room with (offline only when asked), at the current token', async () => {
    const f = setup();
    f.join(A, '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.join('@d:example.org', '!ex:example.org');
    f.join(A, '!ex:example.org');
    f.set(A, 'online');
    f.set('@b:example.org', 'unavailable');
    f.set('@d:example.org', 'online'); // only through an excluded room
    const r = await f.read(null);
    expect(r.full).toBe(true);
    expect(r.nextToken).toBe(f.token());
    expect(f.ids(r.events).sort()).toEqual([A, '@b:example.org']);
    const withOffline = await f.read(null, true);
    expect(f.ids(withOffline.events).sort()).toEqual([A, '@b:example.org', '@c:example.org']);
    expect(f.answered.map(([id]) => id)).toEqual([A, A]);
  });

  it('a covered token: the latest state of each visible user changed since, once, offline transitions included', async () => {
    const f = setup();
    f.join(A, '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@stranger:example.org', '!other:example.org');
    f.set('@b:example.org', 'online');
    const since = f.token();
    f.set('@b:example.org', 'unavailable');
    f.set('@stranger:example.org', 'online');
    f.set('@b:example.org', 'offline', 'bye');
    f.set(A, 'online');
    const r = await f.read(since);
    expect(r.full).toBe(false);
    expect(r.nextToken).toBe(f.token());
    expect(r.events.map((e) => [e.userId, e.state, e.statusMsg])).toEqual([
      ['@b:example.org', 'offline', 'bye'],
      [A, 'online', null],
    ]);
    expect(await f.read(f.token())).toEqual({ events: [], nextToken: f.token(), full: false });
  });

  it('a covered token: a join into a shared room brings the joiner; the reader joining brings every member', async () => {
    const f = setup();
    f.join(A, '!r:example.org');
    f.join('@b:example.org', '!s:example.org');
    f.join('@c:example.org', '!s:example.org');
    const since = f.token();
    f.join('@j:example.org', '!r:example.org');
    f.join('@k:example.org', '!elsewhere:example.org');
    f.join(A, '!s:example.org');
    const r = await f.read(since);
    expect(f.ids(r.events).sort()).toEqual([A, '@b:example.org', '@c:example.org', '@j:example.org']);
  });

  it('router interest adds users outside the rooms; ALL_USERS readers get the router’s answer for presence changes only', async () => {
    const f = setup();
    let interest: ReadonlySet<string> | typeof ALL_USERS = new Set(['@far:remote.test']);
    f.router.register('m', {
      getInterestedUsers: () => interest,
      getUsersForStates: (states) => new Map([[A, new Set(states.filter((s) => s.userId !== '@hidden:example.org'))]]),
    });
    const since = f.token();
    f.set('@far:remote.test', 'online');
    f.set('@hidden:example.org', 'online');
    expect(f.ids((await f.read(since)).events)).toEqual(['@far:remote.test']);
    interest = ALL_USERS;
    f.join('@far:remote.test', '!x:example.org'); // a join is not a presence change
    const all = await f.read(since);
    expect(all.full).toBe(false);
    expect(f.ids(all.events)).toEqual(['@far:remote.test']);
    expect(f.answered.at(-1)).toEqual([A, ALL_USERS]);
    const initial = await f.read(null);
    expect(initial.full).toBe(true);
    expect(f.ids(initial.events)).toEqual(['@far:remote.test']);
  });

  it('a token older than the change index, or ahead of the stream, gets a full answer with offline users', async () => {
    const f = setup(3);
    f.join(A, '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.set('@b:example.org', 'online');
    f.set('@c:example.org', 'online');
    f.set('@c:example.org', 'offline'); // the ring now holds ids 4..6: token 1 is forgotten
    expect(f.changes.covers(1)).toBe(false);
    const old = await f.read(1);
    expect(old.full).toBe(true);
    expect(f.ids(old.events).sort()).toEqual([A, '@b:example.org', '@c:example.org']);
    const ahead = await f.read(f.token() + 10);
    expect(ahead.full).toBe(true);
    expect(f.ids(ahead.events).sort()).toEqual([A, '@b:example.org', '@c:example.org']);
    const covered = await f.read(4);
    expect(covered.full).toBe(false);
    expect(f.ids(covered.events)).toEqual(['@c:example.org']);
  });

  it('a pending full-presence request answers in full (offline excluded) for tokens up to it', async () => {
    const f = setup();
    f.join(A, '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.set('@b:example.org', 'online');
    f.fullRequests.set(A, f.token());
    const full = await f.read(f.token());
    expect(full.full).toBe(true);
    expect(f.ids(full.events)).toEqual(['@b:example.org']);
    f.set('@c:example.org', 'unavailable');
    f.set('@c:example.org', 'online');
    const after = await f.read(f.token() - 1); // a token past the request: incremental again
    expect(after.full).toBe(false);
    expect(f.ids(after.events)).toEqual(['@c:example.org']);
  });

  it('many changes and rooms (every marking strategy) answer like a plain shareRoom check', async () => {
    // few rooms and members: member marks; many members: room marks; many rooms: shareRoom per user
    for (const [readerRooms, members] of [[1, 40], [8, 40], [8, 400], [60, 40]] as const) {
      const f = setup(10_000);
      for (let k = 0; k < readerRooms; k++) f.join(A, `!r${k}:example.org`);
      for (let k = 0; k < members; k++) f.join(`@m${k}:example.org`, `!r${k % (readerRooms + 3)}:example.org`);
      const since = f.token();
      const changes = [5, 17, 39, 2, 5];
      for (const k of changes) f.set(`@m${k}:example.org`, 'online');
      const r = await f.read(since);
      const expected = [...new Set(changes)].filter((k) => k % (readerRooms + 3) < readerRooms).map((k) => `@m${k}:example.org`);
      expect(f.ids(r.events)).toEqual(expected);
    }
  });
});
