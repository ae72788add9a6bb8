/**
 * ALL_USERS semantics (spec §4.4, decisions.md), example by example: the pull
 * path and the push path of a listener whose interest is ALL_USERS.
 */
import { describe, expect, it } from 'vitest';
import { ALL_USERS, createModuleApi, type PresenceRouterCallbacks, type UserPresenceState } from '../../src/index.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

const L = '@listener:hs.test';
const X = '@x:hs.test';
const Y = '@y:hs.test';
const Z = '@z:remote.test';

/** Routes the states of `sources` to L; L's interest is `interest`. */
function router(sources: readonly string[], interest: ReadonlySet<string> | 'ALL'): PresenceRouterCallbacks {
  return {
    getUsersForStates: (states: readonly UserPresenceState[]) => new Map([[L, new Set(states.filter((s) => sources.includes(s.userId)))]]),
    getInterestedUsers: (userId: string) => (userId === L ? interest : new Set<string>()),
  };
}

function setup(callbacks: PresenceRouterCallbacks) {
  const t = createTestEngine({ serverName: 'hs.test' });
  createModuleApi(t.engine, 'test').registerPresenceRouterCallbacks(callbacks);
  return t;
}

const ids = (states: Iterable<UserPresenceState>) => [...states].map((s) => s.userId).sort();

describe('ALL_USERS', () => {
  it('the accepted marker is the string "ALL"', () => {
    expect(ALL_USERS).toBe('ALL');
  });

  it('an ALL listener reads exactly what the router routes to them: not shared-room users, not themselves', async () => {
    const { engine } = setup(router([X], ALL_USERS));
    engine.joinRoom('!r:hs.test', L);
    engine.joinRoom('!r:hs.test', Y);
    const start = engine.currentToken;
    const stream = recordSyncStream(engine, L);
    for (const u of [X, Y, L]) engine.setPresence(u, { presence: 'online' });
    expect(ids(stream.view().values())).toEqual([X]);
    expect(ids((await engine.getNewEvents(L, start)).events)).toEqual([X]);
    expect(ids((await engine.getNewEvents(L, null)).events)).toEqual([X]);
  });

  it('without an entry for the syncing user the ALL path answers nothing instead of failing (decisions.md)', async () => {
    const { engine } = setup({ getUsersForStates: () => new Map(), getInterestedUsers: () => ALL_USERS });
    engine.setPresence(X, { presence: 'online' });
    await expect(engine.getNewEvents(L, null)).resolves.toMatchObject({ events: [] });
  });

  it('remote users are routed to ALL listeners too', async () => {
    const { engine } = setup(router([Z], ALL_USERS));
    const stream = recordSyncStream(engine, L);
    engine.receiveFederationEdu('remote.test', { push: [{ user_id: Z, presence: 'online', last_active_ago: 0 }] });
    expect(ids(stream.view().values())).toEqual([Z]);
    expect(ids((await engine.getNewEvents(L, null)).events)).toEqual([Z]);
  });

  it('a join is not a presence change: an ALL listener reads the joiner only if their presence changed', async () => {
    const { engine } = setup(router([X], ALL_USERS));
    engine.setPresence(X, { presence: 'online' });
    const start = engine.currentToken;
    const stream = recordSyncStream(engine, L);
    engine.joinRoom('!r:hs.test', X);
    expect(stream.batches).toEqual([]);
    expect((await engine.getNewEvents(L, start)).events).toEqual([]);
  });

  it('a set of interested users adds to shared rooms and self (push and pull agree)', async () => {
    const { engine } = setup(router([X], new Set([X])));
    engine.joinRoom('!r:hs.test', L);
    engine.joinRoom('!r:hs.test', Y);
    const start = engine.currentToken;
    const stream = recordSyncStream(engine, L);
    for (const u of [X, Y, L, Z.replace('remote.test', 'hs.test')]) engine.setPresence(u, { presence: 'online' });
    expect(ids(stream.view().values())).toEqual([L, X, Y]);
    expect(ids((await engine.getNewEvents(L, start)).events)).toEqual([L, X, Y]);
  });

  it('routed but not interested: nothing is delivered to a non-ALL listener (the symmetry rule)', async () => {
    const { engine } = setup(router([X], new Set()));
    const start = engine.currentToken;
    const stream = recordSyncStream(engine, L);
    engine.setPresence(X, { presence: 'online' });
    expect(stream.batches).toEqual([]);
    expect((await engine.getNewEvents(L, start)).events).toEqual([]);
  });
});
