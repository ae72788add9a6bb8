/**
 * The rooms-and-users routing module adapter (presence.routing_modules): rooms
 * expand to joined members, the accepted shapes, unknown rooms, bad entries,
 * async modules and the optional getInterestedUsers.
 */
import { describe, expect, it } from 'vitest';
import { defaultPresence, parseUserId, type UserPresenceState } from '../../src/index.js';
import { adaptRoutingModule, type RoomsAndUsersRoutingModule } from '../../src/router/routing-modules.js';
import { createTestEngine, MemoryLogger, recordSyncStream } from '../../src/testing/index.js';

const A = '@a:hs.test';
const B = '@b:hs.test';
const M1 = '@m1:hs.test';
const M2 = '@m2:remote.test';
const ROOM = '!room:hs.test';

const st = (u: string): UserPresenceState => ({ ...defaultPresence(parseUserId(u)), state: 'online' });

function adapt(module: RoomsAndUsersRoutingModule, rooms: Record<string, string[]> = { [ROOM]: [M1, M2] }) {
  const logger = new MemoryLogger();
  const cbs = adaptRoutingModule(module, { getRoomMembers: (r) => rooms[r] ?? [] }, logger, 'rm');
  return { cbs, logger };
}

function routed(r: unknown): Record<string, string[]> {
  return Object.fromEntries([...(r as Map<string, Set<UserPresenceState>>)].map(([k, v]) => [k, [...v].map((s) => s.userId).sort()]));
}

describe('routing module adapter', () => {
  it('expands a room to its joined members (local and remote) and merges with user destinations', () => {
    const a = st(A);
    const b = st(B);
    const { cbs } = adapt({ getRoomsAndUsersForStates: (states) => [new Map([[ROOM, [states[0] as UserPresenceState]]]), { [M1]: new Set([b]) }] });
    expect(routed(cbs.getUsersForStates([a, b]))).toEqual({ [M1]: [A, B], [M2]: [A] });
  });

  it('accepts plain objects, Sets, and user ids in place of states (the draft example)', () => {
    const a = st(A);
    const { cbs } = adapt({ getRoomsAndUsersForStates: () => [{ [ROOM]: [A] }, new Map([[B, new Set([A, 'nobody'])]])] });
    expect(routed(cbs.getUsersForStates([a]))).toEqual({ [M1]: [A], [M2]: [A], [B]: [A] });
  });

  it('null or undefined tables mean no destinations', () => {
    const { cbs } = adapt({ getRoomsAndUsersForStates: () => [null, undefined] });
    expect(routed(cbs.getUsersForStates([st(A)]))).toEqual({});
  });

  it('a room the server does not know is skipped with a single warning', () => {
    const { cbs, logger } = adapt({ getRoomsAndUsersForStates: (s) => [{ '!unknown:hs.test': [...s], [ROOM]: [...s] }, {}] });
    expect(routed(cbs.getUsersForStates([st(A)]))).toEqual({ [M1]: [A], [M2]: [A] });
    cbs.getUsersForStates([st(A)]);
    expect(logger.warnings()).toEqual(['routing module rm: room "!unknown:hs.test" is not known to this server (no joined members); skipped']);
  });

  it('bad keys and values are skipped entry by entry; the rest is kept', () => {
    const a = st(A);
    const { cbs, logger } = adapt({
      getRoomsAndUsersForStates: () => [{ 'not a room': [a], [ROOM]: 'oops' } as never, { nobody: [a], [B]: 5, [M1]: [a] } as never],
    });
    expect(routed(cbs.getUsersForStates([a]))).toEqual({ [M1]: [A] });
    expect(logger.warnings()).toHaveLength(4);
  });

  it('a result that is not a pair makes the call fail (the combined router logs and skips it)', () => {
    const { cbs } = adapt({ getRoomsAndUsersForStates: () => new Map() as never });
    expect(() => cbs.getUsersForStates([st(A)])).toThrow(/must return a pair/);
  });

  it('async modules are awaited', async () => {
    const { cbs } = adapt({ getRoomsAndUsersForStates: async (s) => [{ [ROOM]: [...s] }, null] });
    expect(routed(await cbs.getUsersForStates([st(A)]))).toEqual({ [M1]: [A], [M2]: [A] });
  });

  it('getInterestedUsers is passed through, and defaults to nobody', async () => {
    const withIt = adapt({ getRoomsAndUsersForStates: () => [null, null], getInterestedUsers: () => 'ALL' as const });
    const without = adapt({ getRoomsAndUsersForStates: () => [null, null] });
    expect(await withIt.cbs.getInterestedUsers(M1)).toBe('ALL');
    expect(await without.cbs.getInterestedUsers(M1)).toEqual(new Set());
  });
});

describe('routing modules in the engine', () => {
  it('room members who are interested get the routed presence on push and pull; the rooms are looked up at routing time', async () => {
    const { engine } = createTestEngine({ serverName: 'hs.test' });
    engine.joinRoom(ROOM, M1);
    const cbs = adaptRoutingModule(
      { getRoomsAndUsersForStates: (s) => [{ [ROOM]: s.filter((x) => x.userId === A) }, null], getInterestedUsers: (u) => new Set(u === M1 ? [A] : []) },
      engine,
      engine.logger,
      'rm',
    );
    engine.registerPresenceRouter('rm', cbs);
    const start = engine.currentToken;
    const m1 = recordSyncStream(engine, M1);
    engine.setPresence(A, { presence: 'online' });
    engine.setPresence(B, { presence: 'online' });
    expect([...m1.view().keys()]).toEqual([A]);
    expect((await engine.getNewEvents(M1, start)).events.map((s) => s.userId)).toEqual([A]);
  });
});
