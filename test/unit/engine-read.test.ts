/**
 * The read side through the engine API: GET visibility and format (§3.6, §3.7),
 * get_new_events (§3.4, §3.5), send_local_online_presence_to (§4.6),
 * set_presence_for_users (§4.9) and the push side (sync streams, dedup contract).
 */
import { describe, expect, it } from 'vitest';
import { ForbiddenError } from '../../src/index.js';
import type { UserPresenceState } from '../../src/domain/presence.js';
import type { UserId } from '../../src/domain/ids.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const CAROL = '@carol:test.local';
const DAVE = '@dave:test.local';
const REMOTE = '@erin:remote.example';
const ROOM = '!room:test.local';
const OTHER = '!other:test.local';
const EXCLUDED = '!hidden:test.local';

const ids = (states: readonly UserPresenceState[]) => states.map((s) => s.userId).sort();

describe('§3.7 getPresence: visibility', () => {
  it('self is always visible, even with no rooms', () => {
    const { engine } = createTestEngine();
    expect(engine.getPresence(ALICE, ALICE)).toEqual({ presence: 'offline' });
  });

  it('users sharing a joined room are visible; others get ForbiddenError', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(BOB, { presence: 'online' });
    expect(engine.getPresence(ALICE, BOB).presence).toBe('online');
    let caught: unknown;
    try {
      engine.getPresence(CAROL, BOB);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ForbiddenError);
    expect((caught as ForbiddenError).code).toBe('FORBIDDEN');
  });

  it('visibility ends when the shared room is left', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.leaveRoom(ROOM, BOB);
    expect(() => engine.getPresence(ALICE, BOB)).toThrow(ForbiddenError);
  });

  it('rooms in exclude_rooms_from_presence grant no visibility', () => {
    const { engine } = createTestEngine({ config: { exclude_rooms_from_presence: [EXCLUDED] }, rooms: { [EXCLUDED]: [ALICE, BOB] } });
    expect(() => engine.getPresence(ALICE, BOB)).toThrow(ForbiddenError);
  });
});

describe('§3.6 wire format', () => {
  it('online: presence, last_active_ago, currently_active, status_msg when non-empty', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'hello' });
    clock.advance(1234);
    expect(engine.getPresence(ALICE, ALICE)).toEqual({ presence: 'online', last_active_ago: 1234, status_msg: 'hello', currently_active: true });
  });

  it('an empty status message is stored but not emitted; currently_active only when online', () => {
    const { engine, clock } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'unavailable', statusMsg: '' });
    expect(engine.getUserPresence(ALICE).statusMsg).toBe('');
    clock.advance(10);
    // unavailable without ever being active: no last_active_ago either
    expect(engine.getPresence(ALICE, ALICE)).toEqual({ presence: 'unavailable' });
  });
});

describe('§3.4 getNewEvents', () => {
  it('initial sync: self and room co-members, offline users excluded', async () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB, CAROL], [OTHER]: [DAVE] } });
    engine.setPresence(ALICE, { presence: 'online' });
    engine.setPresence(BOB, { presence: 'unavailable' });
    engine.setPresence(DAVE, { presence: 'online' });
    const r = await engine.getNewEvents(ALICE, null);
    expect(ids(r.events)).toEqual([ALICE, BOB]);
    expect(r.full).toBe(true);
    expect(r.nextToken).toBe(engine.currentToken);
  });

  it('include_offline_users_on_sync (config) or the option includes offline co-members on initial syncs', async () => {
    const cfg = createTestEngine({ config: { presence: { include_offline_users_on_sync: true } }, rooms: { [ROOM]: [ALICE, BOB] } }).engine;
    expect(ids((await cfg.getNewEvents(ALICE, null)).events)).toEqual([ALICE, BOB]);
    const opt = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } }).engine;
    expect(ids((await opt.getNewEvents(ALICE, null)).events)).toEqual([]);
    expect(ids((await opt.getNewEvents(ALICE, null, { includeOffline: true })).events)).toEqual([ALICE, BOB]);
  });

  it('incremental: latest state of each visible user changed since the token, offline transitions included', async () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB], [OTHER]: [CAROL] } });
    engine.setPresence(BOB, { presence: 'online' });
    const since = engine.currentToken;
    engine.setPresence(BOB, { presence: 'unavailable' });
    engine.setPresence(BOB, { presence: 'offline' });
    engine.setPresence(CAROL, { presence: 'online' });
    const r = await engine.getNewEvents(ALICE, since);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ userId: BOB, state: 'offline' });
    expect(r.full).toBe(false);
    expect(r.nextToken).toBe(engine.currentToken);
  });

  it('the current token returns nothing', async () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(BOB, { presence: 'online' });
    const r = await engine.getNewEvents(ALICE, engine.currentToken);
    expect(r).toEqual({ events: [], nextToken: engine.currentToken, full: false });
  });

  it('own changes are returned', async () => {
    const { engine } = createTestEngine();
    const since = engine.currentToken;
    engine.setPresence(ALICE, { presence: 'online' });
    expect(ids((await engine.getNewEvents(ALICE, since)).events)).toEqual([ALICE]);
  });

  it('§3.5 newly joined room: all its members are returned, offline ones included', async () => {
    const { engine } = createTestEngine({ rooms: { [OTHER]: [BOB, CAROL] } });
    engine.setPresence(BOB, { presence: 'online' });
    const since = engine.currentToken;
    engine.joinRoom(OTHER, ALICE);
    const r = await engine.getNewEvents(ALICE, since);
    expect(ids(r.events)).toEqual([ALICE, BOB, CAROL]);
  });

  it('a user joining a room I am in becomes visible to me', async () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE] } });
    engine.setPresence(BOB, { presence: 'online' });
    const since = engine.currentToken;
    engine.joinRoom(ROOM, BOB);
    expect(ids((await engine.getNewEvents(ALICE, since)).events)).toEqual([BOB]);
  });

  it('excluded rooms are ignored for routing', async () => {
    const { engine } = createTestEngine({ config: { exclude_rooms_from_presence: [EXCLUDED] }, rooms: { [EXCLUDED]: [ALICE, BOB] } });
    const since = engine.currentToken;
    engine.setPresence(BOB, { presence: 'online' });
    expect((await engine.getNewEvents(ALICE, since)).events).toEqual([]);
    expect(ids((await engine.getNewEvents(ALICE, null)).events)).toEqual([]);
    engine.joinRoom(EXCLUDED, CAROL);
    expect((await engine.getNewEvents(ALICE, since)).events).toEqual([]);
  });

  it('a token older than the change index falls back to a full answer with offline users', async () => {
    const { engine } = createTestEngine({ config: { presence: { change_index_size: 16 } }, rooms: { [ROOM]: [ALICE, BOB, CAROL] } });
    engine.setPresence(BOB, { presence: 'online' });
    const since = engine.currentToken;
    for (let i = 0; i < 20; i++) engine.setPresence(DAVE, { presence: i % 2 === 0 ? 'online' : 'unavailable' });
    const r = await engine.getNewEvents(ALICE, since);
    expect(r.full).toBe(true);
    expect(ids(r.events)).toEqual([ALICE, BOB, CAROL]);
  });

  it('a token from the future (another engine) falls back to a full answer', async () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(BOB, { presence: 'online' });
    const r = await engine.getNewEvents(ALICE, engine.currentToken + 100);
    expect(r.full).toBe(true);
    expect(ids(r.events)).toEqual([ALICE, BOB]);
  });
});

describe('§4.6 sendLocalOnlinePresenceTo (local targets)', () => {
  it('the next read of each target is a full answer without offline users, exactly once, and nobody changes', async () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB, CAROL] } });
    engine.setPresence(BOB, { presence: 'online', statusMsg: 'keep me' });
    const since = engine.currentToken;
    const before = [...engine.knownUsers()];
    engine.sendLocalOnlinePresenceTo([ALICE]);
    expect([...engine.knownUsers()]).toEqual(before);
    expect(engine.getUserPresence(BOB).statusMsg).toBe('keep me');
    const first = await engine.getNewEvents(ALICE, since);
    expect(first.full).toBe(true);
    expect(ids(first.events)).toEqual([BOB]);
    const second = await engine.getNewEvents(ALICE, first.nextToken);
    expect(second.events).toEqual([]);
    expect(second.full).toBe(false);
    // another user reading from the same token is not affected
    const other = await engine.getNewEvents(CAROL, since);
    expect(other.full).toBe(false);
    expect(other.events).toEqual([]);
  });

  it('pushes the full set to an open sync stream', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(BOB, { presence: 'online' });
    const rec = recordSyncStream(engine, ALICE);
    return new Promise<void>((resolve) => {
      engine.sendLocalOnlinePresenceTo([ALICE]);
      setTimeout(() => {
        expect([...rec.view().keys()]).toEqual([BOB]);
        rec.stop();
        resolve();
      }, 0);
    });
  });
});

describe('§4.6 sendLocalOnlinePresenceTo (remote targets)', () => {
  it('one send per server with the non-offline local users its targets share rooms with; no stream id, nobody changes', () => {
    const FRANK = '@frank:remote.example';
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB, REMOTE], [OTHER]: [CAROL, FRANK] } });
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'kept' });
    engine.setPresence(CAROL, { presence: 'unavailable' });
    const sent: { destination: string; users: (string | undefined)[] }[] = [];
    engine.federationOutbound$.subscribe((t) => sent.push({ destination: t.destination, users: t.edus.flatMap((e) => e.content.push.map((p) => p.user_id)) }));
    const token = engine.currentToken;
    const before = JSON.stringify([...engine.knownUsers()]);
    engine.sendLocalOnlinePresenceTo([REMOTE, FRANK]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.destination).toBe('remote.example');
    expect([...(sent[0]?.users ?? [])].sort()).toEqual([ALICE, CAROL].sort());
    expect(engine.currentToken).toBe(token);
    expect(JSON.stringify([...engine.knownUsers()])).toBe(before);
  });
});

describe('§4.6 sendLocalOnlinePresenceTo (remote targets, presence routers)', () => {
  const WATCHER = '@watcher:elsewhere.example';
  const sentTo = (engine: ReturnType<typeof createTestEngine>['engine']) => {
    const sent: { destination: string; users: string[] }[] = [];
    engine.federationOutbound$.subscribe((t) => sent.push({ destination: t.destination, users: t.edus.flatMap((e) => e.content.push.map((p) => p.user_id ?? '')) }));
    return sent;
  };

  it('a router that routes every state to a remote watcher (ALL_USERS for it) gets its server sent the online local users', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(ALICE, { presence: 'online' });
    engine.setPresence(BOB, { presence: 'unavailable' });
    engine.setPresenceForUsers({ [REMOTE]: { presence: 'online' } });
    const asked: string[] = [];
    engine.registerPresenceRouter('watch-all', {
      getUsersForStates: (states) => new Map([[WATCHER, new Set(states)]]),
      getInterestedUsers: (id) => {
        asked.push(id);
        return id === WATCHER ? 'ALL' : new Set<string>();
      },
    });
    const sent = sentTo(engine);
    engine.sendLocalOnlinePresenceTo([WATCHER]);
    expect(asked).toContain(WATCHER);
    expect(sent.map((s) => s.destination)).toEqual(['elsewhere.example']);
    // local, non-offline users only: the remote user the router also routes is not forwarded
    expect(sent[0]?.users.sort()).toEqual([ALICE, BOB].sort());
  });

  it('a router interest set for the remote id adds its users to those it shares rooms with', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, WATCHER], [OTHER]: [CAROL] } });
    for (const u of [ALICE, CAROL, DAVE]) engine.setPresence(u, { presence: 'online' });
    engine.registerPresenceRouter('follow', {
      getUsersForStates: () => new Map(),
      getInterestedUsers: (id) => new Set(id === WATCHER ? [CAROL] : []),
    });
    const sent = sentTo(engine);
    engine.sendLocalOnlinePresenceTo([WATCHER]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.users.sort()).toEqual([ALICE, CAROL].sort());
  });

  it('async router answers are sent in a later turn', async () => {
    const { engine } = createTestEngine();
    engine.setPresence(ALICE, { presence: 'online' });
    engine.registerPresenceRouter('slow', {
      getUsersForStates: async (states) => new Map([[WATCHER, new Set(states)]]),
      getInterestedUsers: async (id) => (id === WATCHER ? 'ALL' : new Set<string>()),
    });
    const sent = sentTo(engine);
    engine.sendLocalOnlinePresenceTo([WATCHER]);
    await new Promise((r) => setTimeout(r, 10));
    expect(sent).toEqual([{ destination: 'elsewhere.example', users: [ALICE] }]);
  });
});

describe('§4.9 setPresenceForUsers', () => {
  it('sets state and status message for local and remote users, always notified', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, REMOTE] } });
    const token = engine.currentToken;
    engine.setPresenceForUsers({ [ALICE]: { presence: 'unavailable', statusMsg: 'away' }, [REMOTE]: { presence: 'online' } });
    expect(engine.getUserPresence(ALICE)).toMatchObject({ state: 'unavailable', statusMsg: 'away' });
    expect(engine.getUserPresence(REMOTE)).toMatchObject({ state: 'online', statusMsg: null });
    expect(engine.currentToken).toBe(token + 2);
  });
});

describe('sync streams (push side)', () => {
  it('a change reaches the user and co-members, not strangers, with the current token', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB], [OTHER]: [CAROL] } });
    const a = recordSyncStream(engine, ALICE);
    const b = recordSyncStream(engine, BOB);
    const c = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    for (const r of [a, b]) {
      expect(r.batches).toHaveLength(1);
      expect(r.batches[0]?.events.map((s) => s.userId)).toEqual([ALICE]);
      expect(r.batches[0]?.token).toBe(engine.currentToken);
    }
    expect(c.batches).toHaveLength(0);
  });

  it('non-notified changes are not pushed', () => {
    const { engine, clock } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(ALICE, { presence: 'online' });
    const b = recordSyncStream(engine, BOB);
    clock.advance(1000);
    engine.bumpActive(ALICE);
    expect(b.batches).toHaveLength(0);
  });

  it('a user seen through several rooms and changed several times in one turn appears once, in its latest state', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB, REMOTE], [OTHER]: [ALICE, BOB] } });
    const a = recordSyncStream(engine, ALICE);
    engine.setPresenceForUsers({ [BOB]: { presence: 'online' } });
    expect(a.batches.at(-1)?.events).toHaveLength(1);
    // two changes for the same user in one turn (an EDU with two items for one user is collapsed too)
    engine.receiveFederationEdu('remote.example', {
      push: [
        { user_id: REMOTE, presence: 'online' },
        { user_id: REMOTE, presence: 'unavailable' },
      ],
    });
    const last = a.batches.at(-1);
    expect(last?.events).toHaveLength(1);
    expect(last?.events[0]).toMatchObject({ userId: REMOTE, state: 'unavailable' });
  });

  it('changes made by a subscriber while a batch is delivered arrive in a later batch, coalesced', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    const seen: string[][] = [];
    let reacted = false;
    const sub = engine.syncStream(ALICE).subscribe((batch) => {
      seen.push(batch.events.map((s) => `${s.userId}=${s.state}`));
      if (!reacted) {
        reacted = true;
        engine.setPresence(BOB, { presence: 'online' });
        engine.setPresence(BOB, { presence: 'unavailable' });
      }
    });
    engine.setPresence(ALICE, { presence: 'online' });
    sub.unsubscribe();
    expect(seen[0]).toEqual([`${ALICE}=online`]);
    // every later batch holds Bob once, and the last one holds his latest state
    for (const b of seen.slice(1)) expect(b.filter((e) => e.startsWith(BOB))).toHaveLength(1);
    expect(seen.at(-1)).toEqual([`${BOB}=unavailable`]);
  });

  it('joining a room delivers the joiner to members and the members to the joiner', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, BOB] } });
    engine.setPresence(BOB, { presence: 'online' });
    const a = recordSyncStream(engine, ALICE);
    const c = recordSyncStream(engine, CAROL);
    engine.setPresence(CAROL, { presence: 'unavailable' });
    a.batches.length = 0;
    engine.joinRoom(ROOM, CAROL);
    expect([...a.view().keys()]).toEqual([CAROL]);
    expect([...c.view().keys()].sort()).toEqual([ALICE, BOB, CAROL].sort());
    expect(c.view().get(BOB as UserId)?.state).toBe('online');
  });

  it('co-members of an excluded room get nothing; leaving a room stops delivery', () => {
    const { engine } = createTestEngine({ config: { exclude_rooms_from_presence: [EXCLUDED] }, rooms: { [EXCLUDED]: [ALICE, BOB], [ROOM]: [ALICE, CAROL] } });
    const b = recordSyncStream(engine, BOB);
    const c = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    expect(b.batches).toHaveLength(0);
    expect([...c.view().keys()]).toEqual([ALICE]);
    engine.leaveRoom(ROOM, CAROL);
    c.batches.length = 0;
    engine.setPresence(ALICE, { presence: 'unavailable' });
    expect(c.batches).toHaveLength(0);
  });

  it('every committed turn is appended to the log and published on committed$', () => {
    const { engine } = createTestEngine();
    const seen: number[] = [];
    engine.committed$.subscribe((entries) => seen.push(...entries.map((e) => e.position)));
    engine.setPresence(ALICE, { presence: 'online' });
    engine.joinRoom(ROOM, ALICE);
    expect(seen).toEqual([1, 2]);
    expect(engine.log.position).toBe(2);
  });

  it('unsubscribing drops the notifier; stop() completes open streams', () => {
    const { engine } = createTestEngine();
    const rec = recordSyncStream(engine, ALICE);
    expect(engine.stats.openSyncStreams).toBe(1);
    rec.stop();
    expect(engine.stats.openSyncStreams).toBe(0);
    let completed = false;
    engine.syncStream(BOB).subscribe({ complete: () => (completed = true) });
    engine.stop();
    expect(completed).toBe(true);
  });
});
