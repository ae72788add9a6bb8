/** Engines federated over the in-process loopback: joins (spec §3.8.4), keep-alive, expiry, limits. */
import { describe, expect, it } from 'vitest';
import type { UserPresenceState } from '../../src/domain/presence.js';
import type { PresenceEngine } from '../../src/engine.js';
import type { FederationTransmission } from '../../src/federation/outbound.js';
import { recordSyncStream } from '../../src/testing/index.js';
import { createFederation, serverOf } from './helpers.js';

const MIN = 60_000;
const DAY = 86_400_000;

function record(engine: PresenceEngine) {
  const sent: FederationTransmission[] = [];
  engine.federationOutbound$.subscribe((t) => sent.push(t));
  const users = (destination?: string) =>
    sent.filter((t) => destination === undefined || t.destination === destination).flatMap((t) => t.edus.flatMap((e) => e.content.push.map((p) => p.user_id ?? '')));
  return { sent, users };
}

describe('two engines over the loopback', () => {
  it('delivers local changes to the servers of users sharing a room, and on to their sync streams', async () => {
    const f = createFederation(['a.test', 'b.test', 'c.test']);
    f.join('!r:a.test', '@alice:a.test');
    f.join('!r:a.test', '@bob:b.test');
    const toC = record(f.engine('a.test'));
    const bob = recordSyncStream(f.engine('b.test'), '@bob:b.test');
    f.engine('a.test').setPresence('@alice:a.test', { presence: 'online', statusMsg: 'hello' });
    await f.network.settle();
    expect(f.engine('b.test').getPresence('@bob:b.test', '@alice:a.test')).toMatchObject({ presence: 'online', status_msg: 'hello', currently_active: true });
    expect(bob.view().get(f.engine('a.test').getUserPresence('@alice:a.test').userId)?.statusMsg).toBe('hello');
    expect(toC.users('c.test')).toEqual([]); // c shares no room with alice
    expect(f.engine('c.test').getUserPresence('@alice:a.test').state).toBe('offline');
  });

  it('never forwards a remote user\u2019s presence to a third server, even when a router asks for it', async () => {
    const f = createFederation(['a.test', 'b.test', 'c.test']);
    for (const u of ['@alice:a.test', '@bob:b.test', '@carl:c.test']) f.join('!r:a.test', u);
    f.engine('b.test').registerPresenceRouter('everyone', {
      getUsersForStates: (states: readonly UserPresenceState[]) => new Map([['@carl:c.test', new Set(states)]]),
      getInterestedUsers: () => new Set<string>(),
    });
    const fromB = record(f.engine('b.test'));
    f.engine('a.test').setPresence('@alice:a.test', { presence: 'online' });
    f.engine('b.test').setPresence('@bob:b.test', { presence: 'unavailable' });
    await f.network.settle();
    expect(f.engine('c.test').getUserPresence('@alice:a.test').state).toBe('online'); // straight from a
    expect(fromB.users().every((u) => serverOf(u) === 'b.test')).toBe(true);
    expect(fromB.users('c.test')).toEqual(['@bob:b.test']);
    for (const e of f.engines.values()) expect(e.stats.droppedInboundItems).toBe(0);
  });

  it('sends presence to router recipients\u2019 servers that share no room', async () => {
    const f = createFederation(['a.test', 'c.test']);
    f.engine('a.test').registerPresenceRouter('watch', {
      getUsersForStates: (states: readonly UserPresenceState[]) => new Map([['@zed:c.test', new Set(states)]]),
      getInterestedUsers: () => new Set<string>(),
    });
    f.engine('a.test').setPresence('@alice:a.test', { presence: 'online' });
    await f.network.settle();
    expect(f.engine('c.test').getUserPresence('@alice:a.test').state).toBe('online');
  });

  it('splits a large send into EDUs of at most 50 states, all applied by the receiver', async () => {
    const f = createFederation(['a.test', 'b.test']);
    const a = f.engine('a.test');
    const users = Array.from({ length: 120 }, (_, i) => `@u${i}:a.test`);
    for (const u of users) {
      f.join('!big:a.test', u);
      a.setPresence(u, { presence: 'online' });
    }
    const out = record(a);
    f.join('!big:a.test', '@bob:b.test'); // b's first member: a sends all 120 local members
    await f.network.settle();
    expect(out.sent).toHaveLength(1);
    expect(out.sent[0]?.edus.map((e) => e.content.push.length)).toEqual([50, 50, 20]);
    for (const u of users) expect(f.engine('b.test').getUserPresence(u).state).toBe('online');
  });
});

describe('presence on room joins (spec §3.8.4)', () => {
  function roomWithLocals() {
    const f = createFederation(['a.test', 'b.test']);
    const a = f.engine('a.test');
    // dan: offline for 8 days with a status; frank: offline for 8 days without one; carol: never active;
    // erin: offline since yesterday, never *active* (unavailable only: last_active_ts stays 0)
    f.join('!r:a.test', '@dan:a.test');
    a.setPresence('@dan:a.test', { presence: 'online', statusMsg: 'on holiday' });
    a.setPresence('@dan:a.test', { presence: 'offline', statusMsg: 'on holiday' });
    f.join('!r:a.test', '@frank:a.test');
    a.setPresence('@frank:a.test', { presence: 'online' });
    a.setPresence('@frank:a.test', { presence: 'offline' });
    f.clock.advance(7 * DAY);
    f.join('!r:a.test', '@erin:a.test');
    a.setPresence('@erin:a.test', { presence: 'unavailable' });
    f.clock.advance(DAY); // erin's device times out: offline, notified
    expect(a.getUserPresence('@erin:a.test')).toMatchObject({ state: 'offline', lastActiveTs: 0 });
    f.join('!r:a.test', '@carol:a.test');
    f.join('!r:a.test', '@alice:a.test');
    a.setPresence('@alice:a.test', { presence: 'online' });
    return f;
  }

  it('a server gaining its first member gets the room\u2019s local users, minus those offline for 7 days without status', async () => {
    const f = roomWithLocals();
    await f.network.settle();
    const out = record(f.engine('a.test'));
    f.join('!r:a.test', '@bob:b.test');
    await f.network.settle();
    expect(out.users('b.test').sort()).toEqual(['@alice:a.test', '@dan:a.test', '@erin:a.test']);
    expect(f.engine('b.test').getUserPresence('@dan:a.test')).toMatchObject({ state: 'offline', statusMsg: 'on holiday' });
    // a second member from the same server triggers nothing
    f.join('!r:a.test', '@bob2:b.test');
    await f.network.settle();
    expect(out.sent).toHaveLength(1);
    // once b has left entirely, its next member is a first member again
    f.leave('!r:a.test', '@bob:b.test');
    f.leave('!r:a.test', '@bob2:b.test');
    f.join('!r:a.test', '@bob3:b.test');
    await f.network.settle();
    expect(out.sent).toHaveLength(2);
  });

  it('a local user joining a room with remote members is sent to those servers', async () => {
    const f = createFederation(['a.test', 'b.test', 'c.test']);
    f.join('!r:b.test', '@bob:b.test');
    f.join('!r:b.test', '@carl:c.test');
    const a = f.engine('a.test');
    a.setPresence('@alice:a.test', { presence: 'unavailable', statusMsg: 'lunch' });
    await f.network.settle();
    const out = record(a);
    f.join('!r:b.test', '@alice:a.test');
    await f.network.settle();
    expect(out.sent.map((t) => t.destination).sort()).toEqual(['b.test', 'c.test']);
    expect(out.users()).toEqual(['@alice:a.test', '@alice:a.test']);
    expect(f.engine('c.test').getPresence('@carl:c.test', '@alice:a.test')).toMatchObject({ presence: 'unavailable', status_msg: 'lunch' });
    // and b, a new server for a's view of the room, sent its member to a
    expect(a.getUserPresence('@bob:b.test').state).toBe('offline');
  });

  it('sends nothing for rooms excluded from presence', async () => {
    const f = createFederation(['a.test', 'b.test'], { config: { exclude_rooms_from_presence: ['!quiet:a.test'] } });
    f.join('!quiet:a.test', '@alice:a.test');
    f.engine('a.test').setPresence('@alice:a.test', { presence: 'online' });
    const out = record(f.engine('a.test'));
    f.join('!quiet:a.test', '@bob:b.test');
    f.engine('a.test').setPresence('@alice:a.test', { presence: 'unavailable' });
    await f.network.settle();
    expect(out.sent).toEqual([]);
  });

  it('joins and pings send nothing when presence is untracked (module-set presence is not federated)', async () => {
    const f = createFederation(['a.test', 'b.test'], { config: { presence: { enabled: 'untracked' } } });
    const a = f.engine('a.test');
    const out = record(a);
    f.join('!r:a.test', '@alice:a.test');
    a.setPresenceForUsers({ '@alice:a.test': { presence: 'online' } });
    f.join('!r:a.test', '@bob:b.test');
    a.sendLocalOnlinePresenceTo(['@bob:b.test']);
    f.clock.advance(3 * 3_600_000);
    await f.network.settle();
    expect(a.getUserPresence('@alice:a.test').state).toBe('online');
    expect(out.sent).toEqual([]);
  });
});

describe('keep-alive and expiry over simulated hours', () => {
  function syncingAlice(loopback: Parameters<typeof createFederation>[1] = {}) {
    const f = createFederation(['a.test', 'b.test'], loopback);
    f.join('!r:a.test', '@alice:a.test');
    f.join('!r:a.test', '@amy:a.test');
    f.join('!r:a.test', '@bob:b.test');
    const a = f.engine('a.test');
    const b = f.engine('b.test');
    a.userSyncing('@alice:a.test'); // a sync that never ends: alice stays non-offline (idle → unavailable)
    const amy = recordSyncStream(a, '@amy:a.test');
    const out = record(a);
    const viewOfAlice = () => b.getUserPresence('@alice:a.test').state;
    return { f, a, b, amy, out, viewOfAlice };
  }

  it('re-sends non-offline local users every 25 minutes without notifying clients; the remote view never expires', async () => {
    const { f, a, amy, out, viewOfAlice } = syncingAlice();
    await f.network.settle();
    expect(viewOfAlice()).toBe('online');
    await f.network.advance(f.clock, 6 * MIN, 10_000);
    expect(viewOfAlice()).toBe('unavailable');
    const batches = amy.batches.length;
    const before = out.sent.length;
    for (let m = 0; m < 5 * 60; m++) {
      await f.network.advance(f.clock, MIN, 10_000);
      expect(viewOfAlice()).toBe('unavailable');
    }
    const pings = out.sent.length - before;
    expect(pings).toBeGreaterThanOrEqual(11); // 5 h / 25 min = 12
    expect(pings).toBeLessThanOrEqual(12);
    expect(amy.batches.length).toBe(batches); // pings are not client notifications
    expect(a.getUserPresence('@alice:a.test').state).toBe('unavailable');
  });

  it('expires the remote view after 30 minutes of silence and restores it when the link heals', async () => {
    const { f, b, viewOfAlice } = syncingAlice({ loopback: { transport: { initialBackoffMs: 5000, maxBackoffMs: 5 * MIN } } });
    await f.network.advance(f.clock, 6 * MIN, 10_000);
    expect(viewOfAlice()).toBe('unavailable');
    const lastHeard = b.getUserPresence('@alice:a.test').lastFederationUpdateTs;
    f.network.setLinkDown('a.test', 'b.test');
    while (viewOfAlice() !== 'offline') {
      f.clock.advance(10_000);
      await f.network.settle();
    }
    const silence = f.clock.now() - lastHeard;
    expect(silence).toBeGreaterThan(30 * MIN);
    expect(silence).toBeLessThanOrEqual(30 * MIN + 10_000);
    f.network.setLinkDown('a.test', 'b.test', false);
    for (let i = 0; i < 30 && viewOfAlice() === 'offline'; i++) {
      f.clock.advance(10_000);
      await f.network.settle();
    }
    expect(viewOfAlice()).toBe('unavailable'); // the queued keep-alive went through on retry
    expect(f.engine('a.test').federationStats.droppedStates).toBe(0);
  });

  it('drops pending presence after an hour of failures; the next keep-alive repairs the view', async () => {
    const { f, a, viewOfAlice } = syncingAlice({ loopback: { transport: { initialBackoffMs: 5000, maxBackoffMs: 5 * MIN } } });
    await f.network.settle();
    f.network.setLinkDown('a.test', 'b.test');
    for (let m = 0; m < 120; m++) {
      f.clock.advance(MIN);
      await f.network.settle();
    }
    expect(viewOfAlice()).toBe('offline');
    expect(a.federationStats.droppedStates).toBeGreaterThan(0);
    expect(a.federationPending('b.test')).toBe(0);
    f.network.setLinkDown('a.test', 'b.test', false);
    let waited = 0;
    while (viewOfAlice() === 'offline' && waited < 40 * MIN) {
      f.clock.advance(MIN);
      waited += MIN;
      await f.network.settle();
    }
    expect(viewOfAlice()).toBe('unavailable');
    expect(waited).toBeLessThanOrEqual(26 * MIN);
  });

  it.each([
    ['a synchronous', false],
    ['an asynchronous', true],
  ])('routes keep-alive pings to router recipients\u2019 servers too (%s router)', async (_name, async) => {
    // router deadline (1 min) longer than a clock step (10 s), so answers arrive between steps as they would in real time
    const f = createFederation(['a.test', 'c.test'], { config: { presence: { router_timeout: '1m' } } });
    const a = f.engine('a.test');
    a.registerPresenceRouter('watch', {
      getUsersForStates: (states: readonly UserPresenceState[]) => {
        const r = new Map([['@zed:c.test', new Set(states)]]);
        return async ? Promise.resolve(r) : r;
      },
      getInterestedUsers: () => new Set<string>(),
    });
    a.userSyncing('@alice:a.test');
    let pings = 0;
    a.federationOutbound$.subscribe(() => pings++);
    for (let m = 0; m < 3 * 60; m++) {
      await f.network.advance(f.clock, MIN, 10_000);
      expect(f.engine('c.test').getUserPresence('@alice:a.test').state).not.toBe('offline');
    }
    expect(pings).toBeGreaterThanOrEqual(8); // 2 changes (not currently active, unavailable) + 6 pings in 3 h
  });
});

describe('coalescing under back-off, end to end', () => {
  it('only the latest state of each user is sent once the destination is ready again', async () => {
    const f = createFederation(['a.test', 'b.test'], { loopback: { mode: 'manual', transport: { initialBackoffMs: 1000 } } });
    f.join('!r:a.test', '@alice:a.test');
    f.join('!r:a.test', '@bob:b.test');
    const a = f.engine('a.test');
    const fromA = (s: { origin: string }) => s.origin === 'a.test';
    f.network.deliverAll(); // b's join sent bob to a
    await f.network.settle();
    a.setPresence('@alice:a.test', { presence: 'online' });
    expect(f.network.queued).toHaveLength(1);
    expect(f.network.failNext(fromA)).toBe(true);
    await f.network.settle();
    for (const [presence, statusMsg] of [['unavailable', 'one'], ['online', 'two'], ['unavailable', 'three']] as const) {
      a.setPresence('@alice:a.test', { presence, statusMsg });
      await f.network.settle();
    }
    expect(f.network.queued).toHaveLength(0); // backing off
    expect(a.federationPending('b.test')).toBe(1);
    f.clock.advance(1000);
    expect(f.network.queued).toHaveLength(1);
    expect(f.network.queued[0]?.edus[0]?.content.push).toEqual([{ user_id: '@alice:a.test', presence: 'unavailable', last_active_ago: 1000, status_msg: 'three' }]);
    f.network.deliverAll();
    await f.network.settle();
    expect(f.engine('b.test').getPresence('@bob:b.test', '@alice:a.test')).toMatchObject({ presence: 'unavailable', status_msg: 'three' });
    expect(a.federationStats).toMatchObject({ sendFailures: 1, pendingStates: 0, destinationsInFlight: 0, destinationsBackingOff: 0 });
  });

  it('a spoofed origin cannot set another server\u2019s users through the network', async () => {
    const f = createFederation(['a.test', 'b.test']);
    f.join('!r:a.test', '@alice:a.test');
    f.join('!r:a.test', '@bob:b.test');
    f.engine('a.test').setPresence('@alice:a.test', { presence: 'online' });
    await f.network.settle();
    const r = f.engine('b.test').receiveFederationEdu('c.test', { push: [{ user_id: '@alice:a.test', presence: 'offline' }] });
    expect(r).toEqual({ applied: 0, dropped: 1 });
    expect(f.engine('b.test').getUserPresence('@alice:a.test').state).toBe('online');
  });
});

describe('transports and lifecycle', () => {
  it('works with a transport that delivers synchronously inside send (re-entrant turns wait in the mailbox)', async () => {
    const { createTestEngine, SimulatedClock, flushMicrotasks } = await import('../../src/testing/index.js');
    const clock = new SimulatedClock();
    const a = createTestEngine({ serverName: 'a.test', clock }).engine;
    const b = createTestEngine({ serverName: 'b.test', clock }).engine;
    const peers = new Map([['a.test', a], ['b.test', b]]);
    for (const [origin, e] of peers) {
      e.attachFederationTransport({
        send: (destination, edus) => {
          for (const edu of edus) peers.get(destination)?.receiveFederationEdu(origin, edu.content);
          return Promise.resolve();
        },
      });
    }
    for (const e of peers.values()) {
      e.joinRoom('!r:a.test', '@alice:a.test');
      e.joinRoom('!r:a.test', '@bob:b.test');
    }
    a.setPresence('@alice:a.test', { presence: 'online' });
    b.setPresence('@bob:b.test', { presence: 'unavailable', statusMsg: 'brb' });
    await flushMicrotasks();
    expect(b.getUserPresence('@alice:a.test').state).toBe('online');
    expect(a.getPresence('@alice:a.test', '@bob:b.test')).toMatchObject({ presence: 'unavailable', status_msg: 'brb' });
  });

  it('sends to a stopped engine fail and back off; a stopped engine sends nothing and refuses a transport', async () => {
    const f = createFederation(['a.test', 'b.test']);
    f.join('!r:a.test', '@alice:a.test');
    f.join('!r:a.test', '@bob:b.test');
    f.engine('b.test').stop();
    const a = f.engine('a.test');
    a.setPresence('@alice:a.test', { presence: 'online' });
    await f.network.settle();
    expect(a.federationStats).toMatchObject({ sendFailures: 1, destinationsBackingOff: 1, pendingStates: 1 });
    a.stop();
    expect(() => a.attachFederationTransport({ send: () => Promise.resolve() })).toThrow(/stopped/);
    await f.network.advance(f.clock, 60_000);
    expect(a.federationStats.sendFailures).toBe(1);
    expect(f.clock.pending).toBe(0);
  });
});
