/**
 * Wake-ups per room (streams/push-fanout.ts `roomWakeups`): off by default;
 * when on, each turn adds to every room with changed members the number of
 * listeners its segment reached (and its changed members), and `take` hands the counts over and zeroes
 * them. The engine facade does not expose the fan-out yet, so the test reads
 * it through TypeScript's element access to the private field.
 */
import { describe, expect, it } from 'vitest';
import { ALL_USERS, createModuleApi, type PresenceEngine } from '../../src/index.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

const [A, B, C, D, E] = ['@a:t.test', '@b:t.test', '@c:t.test', '@d:t.test', '@e:t.test'];
const ONE = '!one:t.test';
const TWO = '!two:t.test';
const QUIET = '!quiet:t.test';

const wakeupsOf = (engine: PresenceEngine) => engine.roomWakeups;
const plain = (m: Map<string, { wakeups: number; changes: number }>) => Object.fromEntries([...m].map(([room, c]) => [room, c.wakeups]));
const changes = (m: Map<string, { wakeups: number; changes: number }>) => Object.fromEntries([...m].map(([room, c]) => [room, c.changes]));

describe('room wake-up counts', () => {
  it('count the listeners each room woke per turn while on, and nothing while off', () => {
    const { engine } = createTestEngine({ serverName: 't.test', rooms: { [ONE]: [A, B, C], [TWO]: [A, D], [QUIET]: [B, E] } });
    for (const u of [B, C, D]) recordSyncStream(engine, u);
    const w = wakeupsOf(engine);
    engine.setPresence(A, { presence: 'online' });
    expect(plain(w.take())).toEqual({}); // off by default
    w.count(true);
    engine.setPresence(A, { presence: 'unavailable' }); // ONE wakes B and C, TWO wakes D
    recordSyncStream(engine, A);
    engine.batch(() => {
      engine.setPresence(A, { presence: 'online' }); // one turn: ONE wakes A, B, C once, TWO wakes A, D
      engine.setPresence(C, { presence: 'online' });
    });
    engine.setPresence(E, { presence: 'online' }); // QUIET: B listens
    const counts = w.take();
    expect(plain(counts)).toEqual({ [ONE]: 2 + 3, [TWO]: 1 + 2, [QUIET]: 1 });
    expect(changes(counts)).toEqual({ [ONE]: 1 + 2, [TWO]: 1 + 1, [QUIET]: 1 });
    expect(plain(w.take())).toEqual({});
    engine.setPresence(D, { presence: 'online' });
    expect(plain(w.take())).toEqual({ [TWO]: 2 });
    w.count(false);
    engine.setPresence(D, { presence: 'unavailable' });
    expect(plain(w.take())).toEqual({});
    engine.stop();
  });

  it('leave out listeners served by the router (ALL_USERS interest)', () => {
    const { engine } = createTestEngine({ serverName: 't.test', rooms: { [ONE]: [A, B, C] } });
    createModuleApi(engine, 'all').registerPresenceRouterCallbacks({
      getUsersForStates: () => new Map(),
      getInterestedUsers: (userId) => (userId === C ? ALL_USERS : new Set<string>()),
    });
    recordSyncStream(engine, B);
    recordSyncStream(engine, C);
    const w = wakeupsOf(engine);
    w.count(true);
    engine.setPresence(A, { presence: 'online' });
    expect(plain(w.take())).toEqual({ [ONE]: 1 });
    engine.stop();
  });
});
