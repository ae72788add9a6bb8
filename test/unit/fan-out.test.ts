/**
 * Fan-out through room segments (docs/architecture.md, steps 8 and 10): each
 * room's changed members are collected once per turn and handed to its
 * listeners; a listener emits one batch per turn holding every user it can see
 * exactly once, whichever rooms they were seen through.
 */
import { describe, expect, it } from 'vitest';
import { parseUserId } from '../../src/index.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

const A = '@a:test.local';
const B = '@b:test.local';
const C = '@c:test.local';
const D = '@d:test.local';
const ONE = '!one:test.local';
const TWO = '!two:test.local';

function ids(batch: { events: readonly { userId: string }[] } | undefined): string[] {
  return (batch?.events ?? []).map((s) => s.userId).sort();
}

describe('fan-out through room segments', () => {
  it('a listener in two rooms gets the changes seen through each room in one batch, each user once', () => {
    const { engine } = createTestEngine({ rooms: { [ONE]: [A, C], [TWO]: [B, C] } });
    const c = recordSyncStream(engine, C);
    engine.batch(() => {
      engine.setPresence(A, { presence: 'online' });
      engine.setPresence(B, { presence: 'unavailable' });
    });
    expect(c.batches).toHaveLength(1);
    expect(ids(c.batches[0])).toEqual([A, B]);
    engine.stop();
  });

  it('three rooms of different sizes: the union, once each', () => {
    const { engine } = createTestEngine({ rooms: { [ONE]: [A, B, D], [TWO]: [C, D], '!three:test.local': [B, C, D] } });
    const d = recordSyncStream(engine, D);
    engine.batch(() => {
      engine.setPresence(A, { presence: 'online' });
      engine.setPresence(B, { presence: 'online' });
      engine.setPresence(C, { presence: 'online' });
    });
    expect(d.batches).toHaveLength(1);
    expect(ids(d.batches[0])).toEqual([A, B, C]);
    engine.stop();
  });

  it('a user seen through two shared rooms and their own change appears once', () => {
    const { engine } = createTestEngine({ rooms: { [ONE]: [A, B], [TWO]: [A, B] } });
    const a = recordSyncStream(engine, A);
    const b = recordSyncStream(engine, B);
    engine.setPresence(A, { presence: 'online', statusMsg: 'hi' });
    expect(ids(a.batches[0])).toEqual([A]);
    expect(ids(b.batches[0])).toEqual([A]);
    expect(b.batches[0]?.events[0]).toMatchObject({ state: 'online', statusMsg: 'hi' });
    engine.stop();
  });

  it('a room segment plus an individual offer (a join in the same turn) gives both', () => {
    const { engine } = createTestEngine({ rooms: { [ONE]: [A, C] } });
    engine.setPresence(B, { presence: 'online' });
    const c = recordSyncStream(engine, C);
    engine.batch(() => {
      engine.setPresence(A, { presence: 'online' });
      engine.joinRoom(TWO, C);
      engine.joinRoom(TWO, B);
    });
    // A from room one's segment; B and C itself from the join (a joiner is shown the room's members)
    expect(c.batches).toHaveLength(1);
    expect(ids(c.batches[0])).toEqual([A, B, C]);
    engine.stop();
  });

  it('listeners whose only source is one room receive the same shared, read-only batch', () => {
    const { engine } = createTestEngine({ rooms: { [ONE]: [A, B, C] } });
    const b = recordSyncStream(engine, B);
    const c = recordSyncStream(engine, C);
    engine.setPresence(A, { presence: 'online' });
    expect(b.batches[0]).toBeDefined();
    expect(b.batches[0]).toBe(c.batches[0]);
    engine.stop();
  });

  it('a user in many rooms (past the exactly sized lists) is seen through each, and leaving some keeps the others in join order', () => {
    const rooms = Array.from({ length: 40 }, (_, k) => `!r${k}:test.local`);
    const { engine } = createTestEngine();
    for (const r of rooms) engine.joinRoom(r, A);
    rooms.forEach((r, k) => engine.joinRoom(r, `@m${k}:test.local`)); // one other member per room
    expect(engine.getRoomsForUser(A)).toEqual(rooms);
    for (const k of [0, 5, 31, 32, 39]) engine.leaveRoom(rooms[k] as string, A);
    const kept = rooms.filter((_, k) => ![0, 5, 31, 32, 39].includes(k));
    expect(engine.getRoomsForUser(A)).toEqual(kept);
    engine.joinRoom(rooms[5] as string, A); // back at the end
    expect(engine.getRoomsForUser(A)).toEqual([...kept, rooms[5]]);
    rooms.forEach((_, k) => expect(engine.shareRoom(parseUserId(A), parseUserId(`@m${k}:test.local`))).toBe(kept.includes(rooms[k] as string) || k === 5));
    const last = recordSyncStream(engine, '@m38:test.local');
    engine.setPresence(A, { presence: 'online' });
    expect(ids(last.batches.at(-1))).toEqual([A]);
    const gone = recordSyncStream(engine, '@m39:test.local');
    engine.setPresence(A, { presence: 'unavailable' });
    expect(gone.batches.some((b) => ids(b).includes(A))).toBe(false);
    engine.stop();
  });
});
