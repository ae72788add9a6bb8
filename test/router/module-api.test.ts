/** The module API object handed to every module. */
import { describe, expect, it } from 'vitest';
import { ALL_USERS, createModuleApi, InvalidInputError, type FederationTransmission } from '../../src/index.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

describe('module API', () => {
  it('exposes the server name, isMine, ALL_USERS, the clock and a logger naming the module', () => {
    const { engine, clock, logger } = createTestEngine({ serverName: 'hs.test' });
    const api = createModuleApi(engine, 'my-module');
    expect(api.serverName).toBe('hs.test');
    expect(api.isMine('@a:hs.test')).toBe(true);
    expect(api.isMine('@a:elsewhere.test')).toBe(false);
    expect(api.ALL_USERS).toBe(ALL_USERS);
    clock.advance(1234);
    expect(api.clock.now()).toBe(clock.now());
    api.logger.warn('hello', { k: 1 });
    expect(logger.entries.at(-1)).toEqual({ level: 'warn', message: '[module my-module] hello', fields: { k: 1 } });
    expect(Object.isFrozen(api)).toBe(true);
  });

  it('reads rooms and members from the engine', () => {
    const { engine } = createTestEngine({ serverName: 'hs.test', rooms: { '!r:hs.test': ['@a:hs.test', '@b:other.test'], '!s:hs.test': ['@a:hs.test'] } });
    const api = createModuleApi(engine, 'm');
    expect(api.getRoomsForUser('@a:hs.test').sort()).toEqual(['!r:hs.test', '!s:hs.test']);
    expect(api.getRoomMembers('!r:hs.test').sort()).toEqual(['@a:hs.test', '@b:other.test']);
    expect(api.getRoomMembers('!unknown:hs.test')).toEqual([]);
    expect(() => api.getRoomMembers('not-a-room')).toThrow(InvalidInputError);
  });

  it('setPresenceForUsers sets and notifies, also in untracked mode', async () => {
    const { engine } = createTestEngine({ serverName: 'hs.test', config: { presence: { enabled: 'untracked' } }, rooms: { '!r:hs.test': ['@a:hs.test', '@b:hs.test'] } });
    const api = createModuleApi(engine, 'm');
    const b = recordSyncStream(engine, '@b:hs.test');
    api.setPresenceForUsers({ '@a:hs.test': { presence: 'online', statusMsg: 'from a module' } });
    expect(engine.getUserPresence('@a:hs.test')).toMatchObject({ state: 'online', statusMsg: 'from a module' });
    expect([...b.view().values()].map((s) => [s.userId, s.state])).toEqual([['@a:hs.test', 'online']]);
    expect(() => api.setPresenceForUsers({ '@a:hs.test': { presence: 'dancing' } })).toThrow(InvalidInputError);
  });

  it("sendLocalOnlinePresenceTo: a local target's next read is a full one; a remote target's server is sent online local users", async () => {
    const { engine } = createTestEngine({ serverName: 'hs.test', rooms: { '!r:hs.test': ['@a:hs.test', '@b:hs.test', '@c:hs.test', '@z:remote.test'] } });
    const api = createModuleApi(engine, 'm');
    engine.setPresence('@a:hs.test', { presence: 'online', statusMsg: 'keep me' });
    const token = engine.currentToken;
    const sent: FederationTransmission[] = [];
    engine.federationOutbound$.subscribe((t) => sent.push(t));
    api.sendLocalOnlinePresenceTo(new Set(['@b:hs.test', '@z:remote.test']));
    const read = await engine.getNewEvents('@b:hs.test', token);
    expect(read.events.map((s) => s.userId)).toEqual(['@a:hs.test']);
    expect(engine.getUserPresence('@a:hs.test').statusMsg).toBe('keep me');
    const toRemote = JSON.stringify(sent.filter((t) => t.destination === 'remote.test'));
    expect(toRemote).toContain('@a:hs.test');
    expect(toRemote).not.toContain('@c:hs.test');
    expect(() => api.sendLocalOnlinePresenceTo(['bad id'])).toThrow(InvalidInputError);
  });
});
