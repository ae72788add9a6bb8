import { describe, expect, it } from 'vitest';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';
import type { RoomId } from '../../src/index.js';

describe('cached router interest follows the listener’s room membership', () => {
  it('a listener who joins a room the router keys interest on sees routed updates on push and pull alike', async () => {
    const { engine } = createTestEngine({});
    const vip = '@vip:test.local';
    const bob = '@bob:test.local';
    const watch = '!watch:test.local' as RoomId;
    // Interest depends on rooms: members of !watch are interested in @vip (the users_to_rooms pattern).
    engine.registerPresenceRouter('rooms-based', {
      getUsersForStates: (states) =>
        new Map(engine.getRoomMembers(watch).map((m) => [m, new Set(states.filter((s) => s.userId === vip))])),
      getInterestedUsers: (u) => new Set(engine.getRoomsForUser(u).includes(watch) ? [vip] : []),
    });
    const stream = recordSyncStream(engine, bob); // interest cached now: empty
    engine.joinRoom(watch, bob); // must refresh the cached interest
    engine.setPresence(vip, { presence: 'online' });

    expect(stream.view().get(vip as never)?.state).toBe('online');
    const pulled = await engine.getNewEvents(bob);
    expect(pulled.events.map((s) => s.userId)).toContain(vip);

    engine.leaveRoom(watch, bob); // and again on leave
    engine.setPresence(vip, { presence: 'unavailable' });
    expect(stream.view().get(vip as never)?.state).toBe('online');
  });
});
