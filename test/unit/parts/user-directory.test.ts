/**
 * UserDirectory on its own: dense, stable indexes; columns that grow with the
 * users and stay packed; `isMine` by exact server name; `storedCount`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UserId } from '../../../src/domain/ids.js';
import { defaultPresence, type UserPresenceState } from '../../../src/domain/presence.js';
import { UserDirectory } from '../../../src/engine/user-directory.js';
import { fcParams } from '../../support/fc.js';

const uid = (s: string) => s as UserId;
const online = (id: UserId): UserPresenceState => ({ ...defaultPresence(id), state: 'online', lastActiveTs: 5 });

describe('UserDirectory', () => {
  it('gives each user a dense index in order of first meeting, stable on later look-ups', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 200 }), (picks) => {
        const users = new UserDirectory('example.org');
        const firstSeen: UserId[] = [];
        for (const p of picks) {
          const id = uid(`@u${p}:${p % 3 === 0 ? 'example.org' : 'remote.test'}`);
          const known = users.find(id);
          const i = users.indexOf(id);
          if (known === undefined) {
            expect(i).toBe(firstSeen.length);
            firstSeen.push(id);
          } else expect(i).toBe(known);
        }
        expect(users.size).toBe(firstSeen.length);
        firstSeen.forEach((id, i) => {
          expect(users.idAt(i)).toBe(id);
          expect(users.find(id)).toBe(i);
          expect(users.has(id)).toBe(true);
          expect(users.isMineAt(i)).toBe(id.endsWith(':example.org'));
          expect(users.lastStreamId[i]).toBe(0);
        });
        expect(users.lastStreamId).toHaveLength(firstSeen.length);
        expect(users.presenceAt).toHaveLength(firstSeen.length);
      }),
      fcParams(100),
    );
  });

  it('find/has do not add a user; indexOf does', () => {
    const users = new UserDirectory('example.org');
    expect(users.find(uid('@a:example.org'))).toBeUndefined();
    expect(users.has(uid('@a:example.org'))).toBe(false);
    expect(users.storedPresence(uid('@a:example.org'))).toBeUndefined();
    expect(users.size).toBe(0);
    expect(users.indexOf(uid('@a:example.org'))).toBe(0);
    expect(users.size).toBe(1);
  });

  it('columns made before and after users are added have a defined slot per user (packed, not holey)', () => {
    const users = new UserDirectory('example.org');
    const early = users.column<string>();
    users.indexOf(uid('@a:example.org'));
    users.indexOf(uid('@b:example.org'));
    const late = users.column<number>();
    expect(late).toHaveLength(2);
    for (let i = 0; i < 2000; i++) users.indexOf(uid(`@x${i}:remote.test`)); // past the initial 1024 `mine` slots
    for (const col of [early, late]) {
      expect(col).toHaveLength(users.size);
      for (let i = 0; i < col.length; i++) expect(i in col).toBe(true);
    }
    expect(users.isMineAt(0)).toBe(true);
    expect(users.isMineAt(1500)).toBe(false);
    const mine = users.indexOf(uid('@late:example.org'));
    expect(mine).toBeGreaterThan(1024);
    expect(users.isMineAt(mine)).toBe(true);
  });

  it('isMine compares the whole server name after the first colon', () => {
    const users = new UserDirectory('example.org');
    expect(users.isMine('@a:example.org')).toBe(true);
    expect(users.isMine('@a:xexample.org')).toBe(false);
    expect(users.isMine('@a:sub.example.org')).toBe(false);
    expect(users.isMine('@a:example.org.evil')).toBe(false);
    expect(users.isMine('@a:example.orgx')).toBe(false);
    expect(users.isMine('@a:b:example.org')).toBe(false); // the server is everything after the first colon
    expect(users.isMine('example.org')).toBe(false); // no colon
    expect(users.isMine(':example.org')).toBe(true);
    expect(users.isMine('@a:')).toBe(false);
    const withPort = new UserDirectory('example.org:8448');
    expect(withPort.isMine('@a:example.org:8448')).toBe(true);
    expect(withPort.isMine('@a:example.org')).toBe(false);
    expect(withPort.isMine('@a:xexample.org:8448')).toBe(false);
  });

  it('storedCount counts users whose presence differs from the default', () => {
    const users = new UserDirectory('example.org');
    const a = users.indexOf(uid('@a:example.org'));
    const b = users.indexOf(uid('@b:example.org'));
    expect(users.storedCount).toBe(0);
    expect(users.stateAt(a)).toEqual(defaultPresence(uid('@a:example.org')));
    users.storePresence(a, online(uid('@a:example.org')));
    expect(users.storedCount).toBe(1);
    users.storePresence(a, { ...online(uid('@a:example.org')), statusMsg: 'hi' }); // replacing is not a new one
    expect(users.storedCount).toBe(1);
    users.storePresence(b, online(uid('@b:example.org')));
    expect(users.storedCount).toBe(2);
    users.storePresence(a, undefined);
    users.storePresence(a, undefined); // clearing twice counts once
    expect(users.storedCount).toBe(1);
    expect(users.stateAt(a).state).toBe('offline');
    expect(users.storedPresence(uid('@b:example.org'))?.state).toBe('online');
    expect([...users.storedStates()].map((s) => s.userId)).toEqual(['@b:example.org']);
  });

  it('storedCount always equals the number of stored states (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(9), fc.boolean()), { maxLength: 100 }), (ops) => {
        const users = new UserDirectory('example.org');
        for (const [u, set] of ops) {
          const id = uid(`@u${u}:example.org`);
          users.storePresence(users.indexOf(id), set ? online(id) : undefined);
          expect(users.storedCount).toBe([...users.storedStates()].length);
        }
      }),
      fcParams(100),
    );
  });
});
