/**
 * Every public engine call answers a wrong argument shape with a typed
 * PresenceError (InvalidInputError naming the field), never a TypeError or
 * another crash: `userSyncing(id, null)` threw a TypeError before inputs were
 * parsed into commands (src/engine/commands.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, isPresenceError, type PresenceEngine } from '../../src/index.js';
import { createTestEngine } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const ALICE = '@alice:test.local';

/** Each public call, taking its arguments from `args` (anything at all). */
const CALLS: Record<string, (e: PresenceEngine, args: unknown[]) => unknown> = {
  setPresence: (e, a) => e.setPresence(a[0] as string, a[1] as never),
  userSyncing: (e, a) => e.userSyncing(a[0] as string, a[1] as never),
  bumpActive: (e, a) => e.bumpActive(a[0] as string, a[1] as never),
  setMembership: (e, a) => e.setMembership(a[0] as string, a[1] as string, a[2] as never),
  joinRoom: (e, a) => e.joinRoom(a[0] as string, a[1] as string),
  apply: (e, a) => e.apply(a[0] as never),
  applyAll: (e, a) => e.applyAll(a[0] as never),
  getNewEvents: (e, a) => e.getNewEvents(a[0] as string, a[1] as never, a[2] as never),
  getPresence: (e, a) => e.getPresence(a[0] as string, a[1] as string),
  getUserPresence: (e, a) => e.getUserPresence(a[0] as string),
  getRoomMembers: (e, a) => e.getRoomMembers(a[0] as string),
  getRoomsForUser: (e, a) => e.getRoomsForUser(a[0] as string),
  syncStream: (e, a) => e.syncStream(a[0] as string),
  setPresenceForUsers: (e, a) => e.setPresenceForUsers(a[0] as never),
  sendLocalOnlinePresenceTo: (e, a) => e.sendLocalOnlinePresenceTo(a[0] as never),
  receiveFederationEdu: (e, a) => e.receiveFederationEdu(a[0] as string, a[1]),
};

async function outcome(run: () => unknown): Promise<unknown> {
  try {
    const r = run();
    if (r instanceof Promise) await r;
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('public API on wrong shapes', () => {
  it('userSyncing(id, null) and setPresence(id, null) are InvalidInputError naming the input', () => {
    const { engine } = createTestEngine();
    expect(() => engine.userSyncing(ALICE, null as never)).toThrow(InvalidInputError);
    expect(() => engine.setPresence(ALICE, null as never)).toThrow(InvalidInputError);
    expect(() => engine.sendLocalOnlinePresenceTo('@bob:test.local' as never)).toThrow(InvalidInputError);
    expect(() => engine.setPresenceForUsers(null as never)).toThrow(InvalidInputError);
    engine.stop();
  });

  it('any arguments to any call: success or a typed PresenceError, never another error', async () => {
    const arg = fc.oneof(fc.anything(), fc.constantFrom(ALICE, '@r:remote.example', '!room:test.local', 'online', null, undefined, [], {}));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...Object.keys(CALLS)), fc.array(arg, { maxLength: 3 }), async (name, args) => {
        const { engine } = createTestEngine({ config: { presence: { busy_enabled: true } } });
        const error = await outcome(() => (CALLS[name] as (e: PresenceEngine, a: unknown[]) => unknown)(engine, args));
        if (error !== undefined) expect(isPresenceError(error), `${name}(${String(args.map((a) => typeof a))}): ${String(error)}`).toBe(true);
        engine.stop();
      }),
      fcParams(400),
    );
  });
});
