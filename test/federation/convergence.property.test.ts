/**
 * End-to-end convergence: three engines over the manual loopback; users on all
 * servers share rooms. After any interleaving of presence changes, syncs,
 * joins and leaves, clock advances, deliveries, failed and lost transmissions
 * and retries, once every pending transmission has been delivered every local
 * user's view of each visible remote user equals that user's current state on
 * their own server (what a client would see, `last_active_ago` aside), and no
 * server ever sent another server's users.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PresenceEngine, SyncHandle } from '../../src/engine.js';
import type { UserId } from '../../src/domain/ids.js';
import { defaultPresence } from '../../src/domain/presence.js';
import { recordSyncStream } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { createFederation, serverOf, visible } from './helpers.js';

const SERVERS = ['a.test', 'b.test', 'c.test'] as const;
const USERS = ['@a1:a.test', '@a2:a.test', '@b1:b.test', '@b2:b.test', '@c1:c.test'] as const;
const ROOMS = ['!r1:a.test', '!r2:b.test', '!r3:c.test', '!quiet:a.test'] as const;
const LINKS = SERVERS.flatMap((o) => SERVERS.filter((d) => d !== o).map((d) => [o, d] as const));

type Cmd =
  | { t: 'set'; user: number; presence: 'online' | 'unavailable' | 'offline' | 'busy'; status: string | null }
  | { t: 'syncStart'; user: number }
  | { t: 'syncEnd'; user: number }
  | { t: 'bump'; user: number }
  | { t: 'join'; room: number; user: number }
  | { t: 'leave'; room: number; user: number }
  | { t: 'advance'; ms: number }
  | { t: 'deliver'; pick: number; count: number }
  | { t: 'fail'; pick: number; delivered: boolean }
  | { t: 'linkDown'; link: number; down: boolean };

const user = fc.nat(USERS.length - 1);
const link = fc.nat(LINKS.length - 1);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('set' as const), user, presence: fc.constantFrom('online', 'unavailable', 'offline', 'busy') as fc.Arbitrary<'online' | 'unavailable' | 'offline' | 'busy'>, status: fc.constantFrom(null, 'lunch', 'away', '') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('syncStart' as const), user }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('syncEnd' as const), user }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('bump' as const), user }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('join' as const), room: fc.nat(ROOMS.length - 1), user }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('leave' as const), room: fc.nat(ROOMS.length - 1), user }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('advance' as const),
      ms: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 70_000 }) }, { weight: 1, arbitrary: fc.constantFrom(5 * 60_000, 26 * 60_000, 31 * 60_000) }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('deliver' as const), pick: fc.nat(), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('fail' as const), pick: fc.nat(), delivered: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('linkDown' as const), link, down: fc.boolean() }) },
);

async function runScenario(cmds: readonly Cmd[]): Promise<void> {
  const f = createFederation(SERVERS, {
    config: { presence: { busy_enabled: true }, exclude_rooms_from_presence: ['!quiet:a.test'] },
    loopback: { mode: 'manual', transport: { initialBackoffMs: 1000, maxBackoffMs: 30_000, dropAfterMs: 86_400_000 } },
  });
  const ownerOf = (u: string): PresenceEngine => f.engine(serverOf(u));
  const forged: string[] = [];
  for (const [name, e] of f.engines) {
    e.federationOutbound$.subscribe((t) => {
      for (const edu of t.edus) for (const p of edu.content.push) if (serverOf(p.user_id ?? '') !== name) forged.push(`${name} sent ${p.user_id}`);
    });
  }
  const streams = new Map(USERS.map((u) => [u, recordSyncStream(ownerOf(u), u)]));
  const syncs = new Map<string, SyncHandle[]>(USERS.map((u) => [u, []]));
  const linkKey = (i: number) => LINKS[i] ?? LINKS[0];
  /** The link of the `pick`-th held send (mod their number): sends on one link are delivered in order. */
  const onPicked = (pick: number) => {
    const q = f.network.queued;
    const chosen = q[pick % Math.max(1, q.length)];
    return (s: { origin: string; destination: string }) => chosen !== undefined && s.origin === chosen.origin && s.destination === chosen.destination;
  };
  // Start with rooms that span servers; commands then change membership.
  for (const [room, members] of [
    [ROOMS[0], [USERS[0], USERS[2], USERS[4]]],
    [ROOMS[1], [USERS[1], USERS[3]]],
    [ROOMS[3], [USERS[0], USERS[3]]],
  ] as const) {
    for (const m of members) f.join(room, m);
  }
  f.network.deliverAll();
  await f.network.settle();

  for (const c of cmds) {
    switch (c.t) {
      case 'set': {
        const u = USERS[c.user] as string;
        ownerOf(u).setPresence(u, { presence: c.presence, statusMsg: c.status });
        break;
      }
      case 'syncStart': {
        const u = USERS[c.user] as string;
        syncs.get(u)?.push(ownerOf(u).userSyncing(u));
        break;
      }
      case 'syncEnd': {
        const u = USERS[c.user] as string;
        syncs.get(u)?.shift()?.end();
        break;
      }
      case 'bump': {
        const u = USERS[c.user] as string;
        ownerOf(u).bumpActive(u);
        break;
      }
      case 'join':
        f.join(ROOMS[c.room] as string, USERS[c.user] as string);
        break;
      case 'leave':
        f.leave(ROOMS[c.room] as string, USERS[c.user] as string);
        break;
      case 'advance':
        await f.network.advance(f.clock, c.ms, 5000);
        break;
      case 'deliver':
        for (let k = 0; k < c.count; k++) f.network.deliverNext(onPicked(c.pick));
        break;
      case 'fail':
        f.network.failNext(onPicked(c.pick), { delivered: c.delivered });
        break;
      case 'linkDown': {
        const [o, d] = linkKey(c.link) as readonly [string, string];
        f.network.setLinkDown(o, d, c.down);
        break;
      }
    }
    await f.network.settle();
  }

  // Heal the network and deliver everything still pending, retries included.
  for (const [o, d] of LINKS) f.network.setLinkDown(o, d, false);
  let quiet = false;
  for (let round = 0; round < 300 && !quiet; round++) {
    f.network.deliverAll();
    await f.network.settle();
    quiet =
      f.network.queued.length === 0 &&
      [...f.engines.values()].every((e) => {
        const s = e.federationStats;
        return s.pendingStates === 0 && s.destinationsInFlight === 0 && s.destinationsBackingOff === 0;
      });
    if (!quiet) await f.network.advance(f.clock, 1000, 1000);
  }
  expect(quiet).toBe(true);

  const now = f.clock.now();
  for (const x of USERS) {
    const home = ownerOf(x);
    const stream = streams.get(x)?.view();
    for (const u of USERS) {
      if (serverOf(u) === serverOf(x) || !home.shareRoom(x as UserId, u as UserId)) continue;
      const truth = visible(ownerOf(u).getUserPresence(u), now);
      expect({ viewer: x, user: u, seen: visible(home.getUserPresence(u), now) }).toEqual({ viewer: x, user: u, seen: truth });
      const streamed = stream?.get(u as UserId) ?? defaultPresence(u as UserId);
      expect({ viewer: x, user: u, streamed: visible(streamed, now) }).toEqual({ viewer: x, user: u, streamed: truth });
    }
  }
  expect(forged).toEqual([]);
  for (const e of f.engines.values()) {
    expect(e.stats.droppedInboundItems).toBe(0);
    expect(e.federationStats.droppedStates).toBe(0);
  }
  for (const e of f.engines.values()) e.stop();
}

describe('federation convergence (property)', () => {
  it('every visible remote user is seen as they are at home once all transmissions are delivered', async () => {
    await fc.assert(fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 40 }), (cmds) => runScenario(cmds)), fcParams(100));
  });

  it('a scripted scenario with failures, lost acknowledgements and expiry converges', async () => {
    await runScenario([
      { t: 'join', room: 0, user: 0 },
      { t: 'join', room: 0, user: 2 },
      { t: 'join', room: 2, user: 4 },
      { t: 'join', room: 2, user: 1 },
      { t: 'syncStart', user: 0 },
      { t: 'set', user: 2, presence: 'busy', status: 'focus' },
      { t: 'fail', pick: 0, delivered: true },
      { t: 'linkDown', link: 2, down: true },
      { t: 'advance', ms: 31 * 60_000 },
      { t: 'set', user: 4, presence: 'unavailable', status: null },
      { t: 'deliver', pick: 1, count: 3 },
      { t: 'join', room: 0, user: 4 },
      { t: 'advance', ms: 26 * 60_000 },
    ]);
  });
});
