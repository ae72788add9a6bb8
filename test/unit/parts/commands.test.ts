/**
 * CommandParser on its own: each method accepts valid input into a typed
 * command and refuses invalid input with an InvalidInputError naming the
 * field that was wrong.
 */
import { describe, expect, it } from 'vitest';
import { CommandParser, statusMessage, type CommandRules } from '../../../src/engine/commands.js';
import { InvalidInputError } from '../../../src/errors.js';

function parser(overrides: Partial<CommandRules> = {}, known: string[] = []): CommandParser {
  return new CommandParser({
    serverName: 'example.org',
    busyEnabled: false,
    isMine: (id) => id.endsWith(':example.org'),
    isKnownUser: (id) => known.includes(id),
    ...overrides,
  });
}

/** The InvalidInputError `fn` throws (fails the test when it throws anything else or nothing). */
function invalid(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return error as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError, nothing was thrown');
}

const A = '@alice:example.org';

describe('CommandParser', () => {
  it('setPresence: valid input', () => {
    const p = parser();
    expect(p.setPresence(A, { presence: 'online' })).toEqual({ type: 'presence.set', userId: A, deviceId: '', presence: 'online', statusMsg: null });
    expect(p.setPresence(A, { presence: 'unavailable', statusMsg: 'away', deviceId: 'PHONE' })).toEqual({
      type: 'presence.set',
      userId: A,
      deviceId: 'PHONE',
      presence: 'unavailable',
      statusMsg: 'away',
    });
    expect(p.setPresence(A, { presence: 'offline', statusMsg: null, deviceId: null }).statusMsg).toBeNull();
  });

  it('setPresence: each kind of invalid input names its field', () => {
    const p = parser();
    expect(invalid(() => p.setPresence('alice', { presence: 'online' })).field).toBe('userId');
    expect(invalid(() => p.setPresence(42, { presence: 'online' })).field).toBe('userId');
    expect(invalid(() => p.setPresence('@bob:remote.test', { presence: 'online' })).field).toBe('userId');
    expect(invalid(() => p.setPresence('@bob:remote.test', { presence: 'online' })).message).toMatch(/not a local user of example\.org/);
    expect(invalid(() => p.setPresence(A, null)).field).toBe('input');
    expect(invalid(() => p.setPresence(A, 'online')).field).toBe('input');
    expect(invalid(() => p.setPresence(A, ['online'])).field).toBe('input');
    expect(invalid(() => p.setPresence(A, { presence: 'away' })).field).toBe('presence');
    expect(invalid(() => p.setPresence(A, {})).field).toBe('presence');
    expect(invalid(() => p.setPresence(A, { presence: 'online', statusMsg: 5 })).field).toBe('statusMsg');
    expect(invalid(() => p.setPresence(A, { presence: 'online', deviceId: '' })).field).toBe('deviceId');
    expect(invalid(() => p.setPresence(A, { presence: 'online', deviceId: '__proto__' })).field).toBe('deviceId');
  });

  it('busy is refused unless enabled (both spellings), and its wire value reads as busy when enabled', () => {
    const off = parser();
    const e = invalid(() => off.setPresence(A, { presence: 'busy' }));
    expect(e.field).toBe('presence');
    expect(e.message).toMatch(/busy_enabled/);
    expect(invalid(() => off.presence('org.matrix.msc3026.busy')).field).toBe('presence');
    const on = parser({ busyEnabled: true });
    expect(on.setPresence(A, { presence: 'busy' }).presence).toBe('busy');
    expect(on.presence('org.matrix.msc3026.busy')).toBe('busy');
  });

  it('userSyncing: defaults, each set_presence, and invalid input', () => {
    const p = parser();
    expect(p.userSyncing(A, undefined)).toEqual({ type: 'sync.start', userId: A, deviceId: '', setPresence: 'online', syncId: null });
    expect(p.userSyncing(A, { deviceId: 'D', setPresence: 'unavailable' }, 's1')).toEqual({
      type: 'sync.start',
      userId: A,
      deviceId: 'D',
      setPresence: 'unavailable',
      syncId: 's1',
    });
    expect(p.userSyncing(A, { setPresence: 'offline' }).setPresence).toBe('offline');
    expect(invalid(() => p.userSyncing(A, { setPresence: 'busy' })).field).toBe('setPresence');
    expect(invalid(() => p.userSyncing(A, { setPresence: 3 })).field).toBe('setPresence');
    expect(invalid(() => p.userSyncing(A, null)).field).toBe('input');
    expect(invalid(() => p.userSyncing('@bob:remote.test', undefined)).field).toBe('userId');
    expect(invalid(() => p.userSyncing('not-an-id', undefined)).field).toBe('userId');
    expect(invalid(() => p.userSyncing(A, { deviceId: 7 })).field).toBe('deviceId');
  });

  it('activity: valid and invalid', () => {
    const p = parser();
    expect(p.activity(A, undefined)).toEqual({ type: 'activity', userId: A, deviceId: '' });
    expect(p.activity(A, 'D')).toEqual({ type: 'activity', userId: A, deviceId: 'D' });
    expect(invalid(() => p.activity('@bob:remote.test', 'D')).field).toBe('userId');
    expect(invalid(() => p.activity(A, 12)).field).toBe('deviceId');
  });

  it('membership: remote users may join; bad room, user or membership name their field', () => {
    const p = parser();
    expect(p.membership('!r:example.org', '@bob:remote.test', 'join')).toEqual({ type: 'room.membership', roomId: '!r:example.org', userId: '@bob:remote.test', membership: 'join' });
    expect(p.membership('!r:example.org', A, 'ban').membership).toBe('ban');
    expect(p.membership('!r:example.org', A, 'leave').membership).toBe('leave');
    expect(invalid(() => p.membership('r:example.org', A, 'join')).field).toBe('roomId');
    expect(invalid(() => p.membership('!r:example.org', 'alice', 'join')).field).toBe('userId');
    expect(invalid(() => p.membership('!r:example.org', A, 'invite')).field).toBe('membership');
    expect(invalid(() => p.membership('!r:example.org', A, undefined)).field).toBe('membership');
  });

  it('moduleUpdates and userList', () => {
    const p = parser();
    expect(p.moduleUpdates({ [A]: { presence: 'online', statusMsg: 'hi' }, '@bob:remote.test': { presence: 'offline' } })).toEqual([
      [A, 'online', 'hi'],
      ['@bob:remote.test', 'offline', null],
    ]);
    expect(invalid(() => p.moduleUpdates(null)).field).toBe('input');
    expect(invalid(() => p.moduleUpdates({ [A]: 'online' })).field).toBe('input');
    expect(invalid(() => p.moduleUpdates({ nope: { presence: 'online' } })).field).toBe('userId');
    expect(invalid(() => p.moduleUpdates({ [A]: { presence: 'gone' } })).field).toBe('presence');
    expect(p.userList([A, '@bob:remote.test'])).toEqual([A, '@bob:remote.test']);
    expect(invalid(() => p.userList(A)).field).toBe('userIds');
    expect(invalid(() => p.userList('x', 'targets')).field).toBe('targets');
    expect(invalid(() => p.userList([A, 'bad'])).field).toBe('userId');
  });

  it('user: known ids skip the schema; unknown ids are validated and name the given field', () => {
    const p = parser({}, ['odd-but-known']);
    expect(p.user('odd-but-known')).toBe('odd-but-known');
    expect(invalid(() => p.user('odd-not-known', 'target')).field).toBe('target');
    expect(p.user('@x:remote.test:8448')).toBe('@x:remote.test:8448');
  });

  it('statusMessage: strings, null and absent clear; anything else is refused', () => {
    expect(statusMessage('x')).toBe('x');
    expect(statusMessage(null)).toBeNull();
    expect(statusMessage(undefined)).toBeNull();
    expect(invalid(() => statusMessage({})).field).toBe('statusMsg');
  });

  it('event: every input event type becomes its command', () => {
    const p = parser({ busyEnabled: true });
    expect(p.event({ type: 'presence.set', userId: A, presence: 'org.matrix.msc3026.busy', statusMsg: 'busy!' })).toEqual({
      type: 'presence.set',
      userId: A,
      deviceId: '',
      presence: 'busy',
      statusMsg: 'busy!',
    });
    expect(p.event({ type: 'presence.set', userId: A, presence: 'online', deviceId: 'D' })).toEqual({ type: 'presence.set', userId: A, deviceId: 'D', presence: 'online', statusMsg: null });
    expect(p.event({ type: 'sync.start', userId: A, syncId: 's' })).toEqual({ type: 'sync.start', userId: A, deviceId: '', setPresence: 'online', syncId: 's' });
    expect(p.event({ type: 'sync.start', userId: A, syncId: 's', deviceId: 'D', setPresence: 'offline' })).toEqual({
      type: 'sync.start',
      userId: A,
      deviceId: 'D',
      setPresence: 'offline',
      syncId: 's',
    });
    expect(p.event({ type: 'sync.end', userId: A, syncId: 's' })).toEqual({ type: 'sync.end', userId: A, syncId: 's' });
    expect(p.event({ type: 'activity', userId: A })).toEqual({ type: 'activity', userId: A, deviceId: '' });
    expect(p.event({ type: 'room.membership', roomId: '!r:example.org', userId: '@b:remote.test', membership: 'leave' })).toEqual({
      type: 'room.membership',
      roomId: '!r:example.org',
      userId: '@b:remote.test',
      membership: 'leave',
    });
    expect(p.event({ type: 'federation.edu', origin: 'remote.test', content: { push: [] } })).toEqual({ type: 'federation.edu', origin: 'remote.test', content: { push: [] } });
  });

  it('event: invalid events name the field that was wrong', () => {
    const p = parser();
    expect(invalid(() => p.event(null)).field).toBe('input');
    expect(invalid(() => p.event({ type: 'nope' })).field).toBe('type');
    expect(invalid(() => p.event({ type: 'presence.set', userId: 'x', presence: 'online' })).field).toBe('userId');
    expect(invalid(() => p.event({ type: 'presence.set', userId: A, presence: 'away' })).field).toBe('presence');
    expect(invalid(() => p.event({ type: 'presence.set', userId: A, presence: 'busy' })).field).toBe('presence'); // busy disabled
    expect(invalid(() => p.event({ type: 'presence.set', userId: '@b:remote.test', presence: 'online' })).field).toBe('userId');
    expect(invalid(() => p.event({ type: 'presence.set', userId: A, presence: 'online', extra: 1 })).field).toBe('input');
    expect(invalid(() => p.event({ type: 'sync.start', userId: A })).field).toBe('syncId');
    expect(invalid(() => p.event({ type: 'sync.start', userId: A, syncId: 's', setPresence: 'busy' })).field).toBe('setPresence');
    expect(invalid(() => p.event({ type: 'activity', userId: '@b:remote.test' })).field).toBe('userId');
    expect(invalid(() => p.event({ type: 'room.membership', roomId: '!r:example.org', userId: A, membership: 'knock' })).field).toBe('membership');
    expect(invalid(() => p.event({ type: 'room.membership', roomId: 'bad', userId: A, membership: 'join' })).field).toBe('roomId');
    expect(invalid(() => p.event({ type: 'federation.edu', origin: '', content: {} })).field).toBe('origin');
  });
});
