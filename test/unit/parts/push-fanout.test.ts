/**
 * PushFanOut on its own, over a real RoomIndex as its topology and streams
 * opened through `syncStreamObservable`: listening sets follow open/close and
 * joins/leaves; `changed` hands one segment per room to each listener;
 * ALL_USERS listeners are skipped; `joinedLive`; `flush` counts deliveries.
 */
import type { Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { RoomId, UserId } from '../../../src/domain/ids.js';
import { defaultPresence, type UserPresenceState } from '../../../src/domain/presence.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import { PushFanOut } from '../../../streams/push-fanout.js';
import { syncStreamObservable, type PresenceBatch, type SyncNotifier } from '../../../streams/sync-notifier.js';

function setup(excluded: string[] = []) {
  const users = new UserDirectory('example.org');
  const rooms = new RoomIndex(users, new Set(excluded as RoomId[]));
  const push = new PushFanOut(rooms, users.column<SyncNotifier>());
  const u = (id: string) => users.indexOf(id as UserId);
  const join = (user: string, room: string) => {
    const r = rooms.roomFor(room as RoomId);
    if (rooms.join(u(user), r)) push.joined(u(user), r.index);
    return r;
  };
  const leave = (user: string, room: string) => {
    const r = rooms.roomFor(room as RoomId);
    if (rooms.leave(u(user), r)) push.left(u(user), r.index);
  };
  /** Batches received per listening user id. */
  const got = new Map<string, PresenceBatch[]>();
  const listen = (id: string): Subscription => {
    const i = u(id);
    return syncStreamObservable(
      (s) => push.open(id as UserId, i, s),
      (s) => push.close(i, s),
    ).subscribe((b) => {
      const list = got.get(id) ?? [];
      list.push(b);
      got.set(id, list);
    });
  };
  const states = new Map<number, UserPresenceState>();
  const stateOf = (i: number) => states.get(i) ?? defaultPresence(users.idAt(i));
  let token = 0;
  const flush = () => push.flush(stateOf, ++token, users.size);
  const change = (...ids: string[]) => push.changed(ids.map(u), ids.length, (i) => users.idAt(i));
  const received = (id: string) => (got.get(id) ?? []).map((b) => b.events.map((e) => e.userId));
  return { users, rooms, push, u, join, leave, listen, flush, change, received, got };
}

describe('PushFanOut', () => {
  it('open and close: one notifier per listening user, gone with the last subscriber', () => {
    const f = setup();
    expect(f.push.listening).toBe(0);
    const s1 = f.listen('@a:example.org');
    const s2 = f.listen('@a:example.org');
    expect(f.push.listening).toBe(1);
    const n = f.push.notifierAt(f.u('@a:example.org'));
    expect(n?.subscriberCount).toBe(2);
    s1.unsubscribe();
    expect(f.push.listening).toBe(1);
    s2.unsubscribe();
    expect(f.push.listening).toBe(0);
    expect(f.push.notifierAt(f.u('@a:example.org'))).toBeUndefined();
    expect([...f.push.allNotifiers()]).toEqual([]);
  });

  it('changed: each listener of a room gets one batch with the changed members; non-listeners cost nothing', () => {
    const f = setup();
    for (const m of ['@a:example.org', '@b:example.org', '@c:example.org', '@d:example.org']) f.join(m, '!r:example.org');
    f.listen('@a:example.org');
    f.listen('@b:example.org');
    f.change('@c:example.org', '@d:example.org');
    const deliveries = f.flush();
    expect(f.received('@a:example.org')).toEqual([['@c:example.org', '@d:example.org']]);
    expect(f.received('@b:example.org')).toEqual([['@c:example.org', '@d:example.org']]);
    expect(deliveries).toBe(4);
    // the room's listeners share one batch (one segment per room)
    expect(f.got.get('@a:example.org')?.[0]).toBe(f.got.get('@b:example.org')?.[0]);
    expect(f.flush()).toBe(0);
    expect(f.received('@a:example.org')).toHaveLength(1);
    // the next turn's segment holds only the next turn's changes (segments are cleared by the flush)
    f.change('@d:example.org');
    f.flush();
    expect(f.received('@a:example.org')).toEqual([['@c:example.org', '@d:example.org'], ['@d:example.org']]);
  });

  it('a member seen through two rooms and changed twice is delivered once; a user hears their own change', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.join('@a:example.org', '!s:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.join('@c:example.org', '!s:example.org');
    f.join('@d:example.org', '!s:example.org');
    f.listen('@a:example.org');
    f.change('@c:example.org', '@d:example.org', '@a:example.org');
    f.flush();
    const [batch] = f.received('@a:example.org');
    expect([...(batch ?? [])].sort()).toEqual(['@a:example.org', '@c:example.org', '@d:example.org']);
  });

  it('listening follows joins and leaves; excluded rooms wake nobody', () => {
    const f = setup(['!ex:example.org']);
    f.listen('@a:example.org'); // listening before joining any room
    f.join('@a:example.org', '!r:example.org');
    f.join('@a:example.org', '!ex:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.join('@c:example.org', '!ex:example.org');
    f.join('@e:example.org', '!ex:example.org');
    f.change('@c:example.org', '@e:example.org');
    f.flush();
    expect(f.received('@a:example.org')).toEqual([['@c:example.org']]);
    f.leave('@a:example.org', '!r:example.org');
    f.change('@c:example.org');
    expect(f.flush()).toBe(0);
    expect(f.received('@a:example.org')).toHaveLength(1);
  });

  it('a closed stream no longer listens in its rooms', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.join('@c:example.org', '!r:example.org');
    const sub = f.listen('@a:example.org');
    sub.unsubscribe();
    f.change('@c:example.org');
    expect(f.flush()).toBe(0);
    expect(f.received('@a:example.org')).toEqual([]);
  });

  it('ALL_USERS listeners are skipped by changed (the router answers for them); set interest names users outside rooms', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.listen('@a:example.org');
    f.listen('@b:example.org');
    f.push.setInterest(f.push.notifierAt(f.u('@a:example.org'))!, 'ALL');
    f.push.setInterest(f.push.notifierAt(f.u('@b:example.org'))!, new Set(['@far:remote.test' as UserId]));
    f.u('@far:remote.test');
    f.change('@c:example.org', '@a:example.org', '@far:remote.test');
    f.flush();
    expect(f.received('@a:example.org')).toEqual([]);
    expect([...(f.received('@b:example.org')[0] ?? [])].sort()).toEqual(['@a:example.org', '@c:example.org', '@far:remote.test']);
    // interest replaced: the old one no longer wakes b
    f.push.setInterest(f.push.notifierAt(f.u('@b:example.org'))!, new Set());
    f.change('@far:remote.test');
    f.flush();
    expect(f.received('@b:example.org')).toHaveLength(1);
  });

  it("joinedLive: the room's listeners see the joiner, the joiner sees every member", () => {
    const f = setup(['!ex:example.org']);
    f.join('@a:example.org', '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.listen('@a:example.org');
    f.listen('@j:example.org');
    const room = f.join('@j:example.org', '!r:example.org');
    f.push.joinedLive(f.u('@j:example.org'), room);
    f.flush();
    expect(f.received('@a:example.org')).toEqual([['@j:example.org']]);
    expect([...(f.received('@j:example.org')[0] ?? [])].sort()).toEqual(['@a:example.org', '@b:example.org', '@j:example.org']);
    const ex = f.join('@j:example.org', '!ex:example.org');
    f.join('@a:example.org', '!ex:example.org');
    f.push.joinedLive(f.u('@j:example.org'), ex);
    f.leave('@j:example.org', '!r:example.org');
    f.push.joinedLive(f.u('@j:example.org'), room); // no longer a member
    expect(f.flush()).toBe(0);
  });

  it('flush counts deliveries as events × subscribers', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@c:example.org', '!r:example.org');
    f.listen('@a:example.org');
    f.listen('@a:example.org');
    f.listen('@b:example.org');
    f.change('@c:example.org', '@b:example.org');
    // a: 2 events × 2 subscribers; b: own change + room segment, 2 events × 1
    expect(f.flush()).toBe(6);
  });
});
