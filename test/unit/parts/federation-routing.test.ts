/**
 * FederationRouting on its own, over a real UserDirectory and RoomIndex and a
 * recording stand-in for the outbound queue (only `enqueue` is used): which
 * servers hear of local changes, router additions, live joins and
 * `send_local_online_presence_to`.
 */
import { describe, expect, it } from 'vitest';
import type { RoomId, ServerName, UserId } from '../../../src/domain/ids.js';
import { defaultPresence, type UserPresenceState } from '../../../src/domain/presence.js';
import { FederationRouting } from '../../../src/engine/federation-routing.js';
import { RoomIndex } from '../../../src/engine/room-index.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import type { FederationOutbound } from '../../../src/federation/outbound.js';
import { PresenceRouter, type RoutedStates } from '../../../src/router/presence-router.js';
import { silentLogger } from '../../../src/logger.js';
import { SimulatedClock } from '../../../src/testing/simulated-clock.js';

/** No router registered: remote targets are served through shared rooms. */
const noRouter = new PresenceRouter(new SimulatedClock(), silentLogger, 1_000);
const now = (job: () => void): void => job();

const WEEK = 7 * 86_400_000;
const NOW = 100 * WEEK;

function setup(options: { tracked?: boolean; owned?: (id: UserId) => boolean; excluded?: string[] } = {}) {
  const users = new UserDirectory('example.org');
  const rooms = new RoomIndex(users, new Set((options.excluded ?? []) as RoomId[]));
  const sent: { servers: string[]; users: string[] }[] = [];
  const outbound = {
    enqueue: (servers: Iterable<ServerName>, states: readonly UserPresenceState[]) => {
      sent.push({ servers: [...servers].sort(), users: states.map((s) => s.userId) });
    },
  } as unknown as FederationOutbound;
  const routing = new FederationRouting(users, rooms, outbound, options.owned ?? (() => true), () => options.tracked ?? true);
  const u = (id: string) => users.indexOf(id as UserId);
  const join = (user: string, room: string) => {
    const r = rooms.roomFor(room as RoomId);
    rooms.join(u(user), r);
    return r;
  };
  const set = (user: string, fields: Partial<UserPresenceState>) =>
    users.storePresence(u(user), { ...defaultPresence(user as UserId), ...fields });
  return { users, rooms, routing, sent, u, join, set };
}

describe('FederationRouting', () => {
  it('localChanges: null while no room has remote members, unless every change is wanted (a router may add servers)', () => {
    const { routing, u, join } = setup();
    join('@a:example.org', '!r:example.org');
    join('@b:example.org', '!r:example.org');
    const changed = [u('@a:example.org'), u('@b:example.org')];
    expect(routing.localChanges(changed, 2, false)).toBeNull();
    const all = routing.localChanges(changed, 2, true);
    expect(all?.states.map((s) => s.userId)).toEqual(['@a:example.org', '@b:example.org']);
    expect(all?.destinations.size).toBe(0);
  });

  it('localChanges: local, owned users among the first count, each with the servers sharing a room', () => {
    const { routing, u, join, set } = setup({ owned: (id) => id !== '@notmine:example.org', excluded: ['!ex:example.org'] });
    join('@a:example.org', '!r:example.org');
    join('@x:r1.test', '!r:example.org');
    join('@a:example.org', '!s:example.org');
    join('@y:r2.test', '!s:example.org');
    join('@b:example.org', '!ex:example.org');
    join('@z:r3.test', '!ex:example.org'); // excluded: b reaches no server
    join('@notmine:example.org', '!r:example.org');
    set('@a:example.org', { state: 'online' });
    const changed = [u('@a:example.org'), u('@b:example.org'), u('@x:r1.test'), u('@notmine:example.org'), u('@c:example.org')];
    const out = routing.localChanges(changed, 4, false);
    expect(out?.states.map((s) => s.userId)).toEqual(['@a:example.org']);
    const a = out?.states[0] as UserPresenceState;
    expect(a.state).toBe('online');
    expect([...(out?.destinations.get(a) ?? [])].sort()).toEqual(['r1.test', 'r2.test']);
    const all = routing.localChanges(changed, 4, true);
    expect(all?.states.map((s) => s.userId)).toEqual(['@a:example.org', '@b:example.org']); // remote and unowned users never
    expect(all?.destinations.has(all.states[1] as UserPresenceState)).toBe(false);
  });

  it("addRouted adds remote recipients' servers for local states only, never forwarding remote users' states", () => {
    const { routing, u, join, users } = setup();
    join('@a:example.org', '!r:example.org');
    join('@x:r1.test', '!r:example.org');
    const changes = routing.localChanges([u('@a:example.org')], 1, true)!;
    const a = changes.states[0] as UserPresenceState;
    const remoteState = users.stateAt(u('@x:r1.test'));
    const routed: RoutedStates = new Map([
      ['@p:r2.test' as UserId, new Set([a, remoteState])],
      ['@q:example.org' as UserId, new Set([a])], // local recipient: not a federation destination
      ['@s:r3.test' as UserId, new Set([remoteState])],
    ]);
    routing.addRouted(changes, routed);
    expect([...(changes.destinations.get(a) ?? [])].sort()).toEqual(['r1.test', 'r2.test']);
    expect(changes.destinations.has(remoteState)).toBe(false);
    expect(changes.states).toEqual([a]);
  });

  it('send queues the current state for each destination, and nothing when presence is not tracked', () => {
    const tracked = setup();
    tracked.join('@a:example.org', '!r:example.org');
    tracked.join('@x:r1.test', '!r:example.org');
    const changes = tracked.routing.localChanges([tracked.u('@a:example.org')], 1, false)!;
    tracked.routing.send(changes);
    expect(tracked.sent).toEqual([{ servers: ['r1.test'], users: ['@a:example.org'] }]);
    const off = setup({ tracked: false });
    off.join('@a:example.org', '!r:example.org');
    off.join('@x:r1.test', '!r:example.org');
    off.routing.send(off.routing.localChanges([off.u('@a:example.org')], 1, false)!);
    expect(off.sent).toEqual([]);
  });

  it('pings: every server sharing a room with each user (an empty set when none)', () => {
    const { routing, join, users, u } = setup();
    join('@a:example.org', '!r:example.org');
    join('@x:r1.test', '!r:example.org');
    const a = users.stateAt(u('@a:example.org'));
    const b = users.stateAt(u('@b:example.org'));
    const out = routing.pings([a, b]);
    expect(out.states).toEqual([a, b]);
    expect([...(out.destinations.get(a) ?? [])]).toEqual(['r1.test']);
    expect([...(out.destinations.get(b) ?? [])]).toEqual([]);
  });

  it("joined: the first member of a server gets the room's non-stale local states; a second member nothing", () => {
    const { routing, join, set, u, sent } = setup();
    const room = join('@online:example.org', '!r:example.org');
    join('@stale:example.org', '!r:example.org');
    join('@recent:example.org', '!r:example.org');
    join('@withmsg:example.org', '!r:example.org');
    join('@fedsent:example.org', '!r:example.org');
    join('@other:r2.test', '!r:example.org');
    set('@online:example.org', { state: 'online', lastActiveTs: NOW });
    set('@stale:example.org', { state: 'offline', lastActiveTs: NOW - WEEK });
    set('@recent:example.org', { state: 'offline', lastActiveTs: NOW - WEEK + 1 });
    set('@withmsg:example.org', { state: 'offline', lastActiveTs: 0, statusMsg: 'gone fishing' });
    set('@fedsent:example.org', { state: 'offline', lastActiveTs: 0, lastFederationUpdateTs: NOW - 1000 });
    join('@x:r1.test', '!r:example.org');
    routing.joined(u('@x:r1.test'), room, NOW);
    expect(sent).toEqual([{ servers: ['r1.test'], users: ['@online:example.org', '@recent:example.org', '@withmsg:example.org', '@fedsent:example.org'] }]);
    join('@y:r1.test', '!r:example.org');
    routing.joined(u('@y:r1.test'), room, NOW);
    expect(sent).toHaveLength(1);
  });

  it("joined: a local joiner's state goes to the room's remote servers; excluded rooms, non-members, unowned joiners and untracked presence send nothing", () => {
    const { routing, join, u, sent, rooms } = setup({ excluded: ['!ex:example.org'], owned: (id) => id !== '@else:example.org' });
    const room = join('@x:r1.test', '!r:example.org');
    join('@y:r2.test', '!r:example.org');
    join('@a:example.org', '!r:example.org');
    routing.joined(u('@a:example.org'), room, NOW);
    expect(sent).toEqual([{ servers: ['r1.test', 'r2.test'], users: ['@a:example.org'] }]);
    const ex = join('@a:example.org', '!ex:example.org');
    join('@z:r3.test', '!ex:example.org');
    routing.joined(u('@a:example.org'), ex, NOW);
    routing.joined(u('@z:r3.test'), ex, NOW);
    routing.joined(u('@b:example.org'), room, NOW); // not a member (left again before the commit)
    join('@else:example.org', '!r:example.org');
    routing.joined(u('@else:example.org'), room, NOW);
    const lonely = join('@c:example.org', '!lonely:example.org');
    routing.joined(u('@c:example.org'), lonely, NOW); // no remote server in the room
    expect(sent).toHaveLength(1);
    expect(rooms.size).toBe(3);
    const off = setup({ tracked: false });
    const r = off.join('@a:example.org', '!r:example.org');
    off.join('@x:r1.test', '!r:example.org');
    off.routing.joined(off.u('@x:r1.test'), r, NOW);
    off.routing.joined(off.u('@a:example.org'), r, NOW);
    expect(off.sent).toEqual([]);
  });

  it("onlineTo: each target's server gets the non-offline local users sharing a room with a target, one send per server", () => {
    const { routing, join, set, u, sent } = setup({ excluded: ['!ex:example.org'] });
    join('@a:example.org', '!r:example.org');
    join('@b:example.org', '!r:example.org');
    join('@x:r1.test', '!r:example.org');
    join('@c:example.org', '!s:example.org');
    join('@w:r1.test', '!s:example.org');
    join('@d:example.org', '!ex:example.org');
    join('@w:r1.test', '!ex:example.org');
    join('@e:example.org', '!t:example.org');
    join('@v:r2.test', '!t:example.org');
    set('@a:example.org', { state: 'online' });
    set('@c:example.org', { state: 'unavailable' });
    set('@d:example.org', { state: 'online' }); // only through an excluded room
    set('@e:example.org', { state: 'busy' });
    // b is offline
    routing.onlineTo(['@x:r1.test', '@w:r1.test', '@v:r2.test', '@unknown:r3.test'] as UserId[], noRouter, now);
    // (an empty list for r3.test, whose target shares no room, is dropped by the outbound queue)
    expect(sent.filter((s) => s.users.length > 0).map((s) => ({ ...s, users: [...s.users].sort() }))).toEqual([
      { servers: ['r1.test'], users: ['@a:example.org', '@c:example.org'] },
      { servers: ['r2.test'], users: ['@e:example.org'] },
    ]);
    expect(u('@a:example.org')).toBe(0);
  });

  it('onlineTo sends nothing when presence is not tracked', () => {
    const { routing, join, set, sent } = setup({ tracked: false });
    join('@a:example.org', '!r:example.org');
    join('@x:r1.test', '!r:example.org');
    set('@a:example.org', { state: 'online' });
    routing.onlineTo(['@x:r1.test'] as UserId[], noRouter, now);
    expect(sent).toEqual([]);
  });
});
