/**
 * Delivery on its own, over the real fan-out, routing, directory, room index
 * and router, a fake host (turn runner, clock, token) and a recording stand-in
 * for the federation queue: a committed turn reaches listeners, routers and
 * remote servers; an asynchronous router answer arrives in a later turn.
 */
import type { Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { RoomId, ServerName, UserId } from '../../../src/domain/ids.js';
import { defaultPresence, type UserPresenceState } from '../../../src/domain/presence.js';
import { Delivery, type DeliveryHost } from '../../../src/engine/delivery.js';
import { FederationRouting } from '../../../src/engine/federation-routing.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import type { FederationOutbound } from '../../../src/federation/outbound.js';
import { silentLogger } from '../../../src/logger.js';
import { ALL_USERS, PresenceRouter, type PresenceRouterCallbacks } from '../../../src/router/presence-router.js';
import { flushMicrotasks, SimulatedClock } from '../../../src/testing/index.js';
import { PushFanOut } from '../../../streams/push-fanout.js';
import { syncStreamObservable, type PresenceBatch, type SyncNotifier } from '../../../streams/sync-notifier.js';

function setup(tracked = true) {
  const clock = new SimulatedClock(1_000);
  const users = new UserDirectory('example.org');
  const rooms = new RoomIndex(users, new Set());
  const push = new PushFanOut(rooms, users.column<SyncNotifier>());
  const sent: { servers: string[]; users: string[] }[] = [];
  let federationFlushes = 0;
  const federation = {
    enqueue: (servers: Iterable<ServerName>, states: readonly UserPresenceState[]) => {
      if (states.length > 0) sent.push({ servers: [...servers].sort(), users: states.map((s) => s.userId) });
    },
    flush: () => void federationFlushes++,
  } as unknown as FederationOutbound;
  const routing = new FederationRouting(users, rooms, federation, () => true, () => tracked);
  const router = new PresenceRouter(clock, silentLogger, 1_000);
  const turns: string[] = [];
  let token = 0;
  const host: DeliveryHost = {
    run: (job) => {
      turns.push('turn');
      job();
    },
    now: () => clock.now(),
    tracked,
    get token() {
      return token;
    },
  };
  const delivery = new Delivery(users, push, routing, router, federation, host);
  const u = (id: string) => users.indexOf(id as UserId);
  const join = (id: string, room: string) => rooms.join(u(id), rooms.roomFor(room as RoomId));
  const got = new Map<string, PresenceBatch[]>();
  const listen = (id: string): Subscription =>
    syncStreamObservable(
      (s) => delivery.open(id as UserId, s),
      (s) => delivery.close(id as UserId, s),
    ).subscribe((b) => got.set(id, [...(got.get(id) ?? []), b]));
  const set = (id: string, state: UserPresenceState['state']) => {
    users.storePresence(u(id), { ...defaultPresence(id as UserId), state });
    token++;
  };
  /** Commit a turn in which `ids` changed, as the engine does. */
  const commit = (...ids: string[]) => {
    if (ids.length > 0) delivery.changes(ids.map(u), ids.length);
    delivery.flush();
  };
  const received = (id: string) => (got.get(id) ?? []).map((b) => [b.token, b.events.map((e) => `${e.userId}=${e.state}`)]);
  return { clock, users, rooms, push, router, delivery, sent, turns, join, listen, set, commit, received, u, flushes: () => federationFlushes };
}

const register = (router: PresenceRouter, callbacks: PresenceRouterCallbacks) => router.register('test', callbacks);

describe('Delivery', () => {
  it('without routers: listeners get the current states at the current token; remote servers get local changes', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.join('@x:remote.test', '!r:example.org');
    f.listen('@a:example.org');
    f.set('@b:example.org', 'online');
    f.set('@x:remote.test', 'unavailable');
    f.commit('@b:example.org', '@x:remote.test');
    expect(f.received('@a:example.org')).toEqual([[2, ['@b:example.org=online', '@x:remote.test=unavailable']]]);
    expect(f.delivery.deliveries).toBe(2);
    expect(f.sent).toEqual([{ servers: ['remote.test'], users: ['@b:example.org'] }]); // never the remote user's own state
    expect(f.flushes()).toBe(1);
    expect(f.delivery.isListening('@a:example.org' as UserId)).toBe(true);
    expect(f.delivery.isListening('@b:example.org' as UserId)).toBe(false);
  });

  it('a synchronous router: ALL_USERS listeners get its answer; remote recipients become destinations; same turn', () => {
    const f = setup();
    register(f.router, {
      getInterestedUsers: (id) => (id === '@all:example.org' ? ALL_USERS : new Set()),
      getUsersForStates: (states) =>
        new Map([
          ['@all:example.org', new Set(states)],
          ['@p:peer.test', new Set(states)],
          ['@b:example.org', new Set(states)], // b is not an ALL_USERS listener: served by rooms and interest, not this answer
        ]),
    });
    f.join('@all:example.org', '!r:example.org');
    f.join('@b:example.org', '!r:example.org');
    f.listen('@all:example.org'); // open asks the router: ALL_USERS is cached
    f.listen('@b:example.org');
    f.set('@b:example.org', 'online');
    f.set('@lonely:example.org', 'online');
    f.commit('@b:example.org', '@lonely:example.org');
    expect(f.received('@all:example.org')).toEqual([[2, ['@b:example.org=online', '@lonely:example.org=online']]]);
    expect(f.received('@b:example.org')).toEqual([[2, ['@b:example.org=online']]]);
    expect(f.sent).toEqual([
      { servers: ['peer.test'], users: ['@b:example.org'] },
      { servers: ['peer.test'], users: ['@lonely:example.org'] },
    ]);
    expect(f.turns).toEqual([]);
  });

  it('an asynchronous router answer is delivered in a turn of its own, flushed then', async () => {
    const f = setup();
    register(f.router, {
      getInterestedUsers: async () => ALL_USERS,
      getUsersForStates: async (states) => new Map([['@all:example.org', new Set(states)]]),
    });
    f.listen('@all:example.org');
    await flushMicrotasks();
    f.set('@b:example.org', 'online');
    f.commit('@b:example.org');
    expect(f.received('@all:example.org')).toEqual([]);
    await flushMicrotasks();
    expect(f.turns).toEqual(['turn']);
    expect(f.received('@all:example.org')).toEqual([[1, ['@b:example.org=online']]]);
  });

  it('pings go to servers sharing a room and to router recipients; none when presence is not tracked', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.join('@x:remote.test', '!r:example.org');
    const a = f.users.stateAt(f.u('@a:example.org'));
    f.delivery.pings([a]);
    expect(f.sent).toEqual([{ servers: ['remote.test'], users: ['@a:example.org'] }]);
    register(f.router, { getInterestedUsers: () => new Set(), getUsersForStates: (s) => new Map([['@p:peer.test', new Set(s)]]) });
    f.delivery.pings([a]);
    expect(f.sent[1]).toEqual({ servers: ['peer.test', 'remote.test'], users: ['@a:example.org'] });
    const off = setup(false);
    off.join('@a:example.org', '!r:example.org');
    off.join('@x:remote.test', '!r:example.org');
    off.delivery.pings([off.users.stateAt(off.u('@a:example.org'))]);
    expect(off.sent).toEqual([]);
  });

  it('joins: listeners see the joiner and servers gaining their first member hear of the room', () => {
    const f = setup();
    f.join('@a:example.org', '!r:example.org');
    f.set('@a:example.org', 'online');
    f.listen('@a:example.org');
    f.join('@x:remote.test', '!r:example.org');
    f.delivery.joins([[f.u('@x:remote.test'), f.rooms.get('!r:example.org' as RoomId)!]]);
    f.delivery.flush();
    expect(f.received('@a:example.org')).toEqual([[1, ['@x:remote.test=offline']]]);
    expect(f.sent).toEqual([{ servers: ['remote.test'], users: ['@a:example.org'] }]);
  });

  it('offerLater: a full-presence push to an open stream, as a turn of its own; nothing for a closed one', () => {
    const f = setup();
    f.set('@b:example.org', 'online');
    const b = f.users.stateAt(f.u('@b:example.org'));
    f.delivery.offerLater('@a:example.org' as UserId, [b]);
    expect(f.turns).toEqual([]);
    const sub = f.listen('@a:example.org');
    f.delivery.offerLater('@a:example.org' as UserId, []);
    expect(f.turns).toEqual([]);
    f.delivery.offerLater('@a:example.org' as UserId, [b]);
    expect(f.turns).toEqual(['turn']);
    f.delivery.flush();
    expect(f.received('@a:example.org')).toEqual([[1, ['@b:example.org=online']]]);
    sub.unsubscribe();
    expect(f.delivery.isListening('@a:example.org' as UserId)).toBe(false);
  });

  it('refreshUser re-asks the router: a listener whose interest changed is woken by the new user', () => {
    const f = setup();
    let interest = new Set<string>();
    register(f.router, { getInterestedUsers: () => interest, getUsersForStates: () => new Map() });
    f.listen('@a:example.org');
    f.set('@far:remote.test', 'online');
    f.commit('@far:remote.test');
    expect(f.received('@a:example.org')).toEqual([]);
    interest = new Set(['@far:remote.test']);
    f.delivery.refreshUser(f.u('@a:example.org'));
    f.commit('@far:remote.test');
    expect(f.received('@a:example.org')).toEqual([[1, ['@far:remote.test=online']]]);
  });
});
