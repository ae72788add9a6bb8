/**
 * Large-room mode (docs/policies.md): two engines driven by the same inputs on
 * one simulated clock, one with `presence.large_rooms` (every room of 3 or more
 * members summarised, at most one batch per 5 s), one without.
 * - a subset: every state a stream received in large-room mode (its notified
 *   fields) was also pushed to that viewer by the unrestricted engine;
 * - convergence: after an interval with no input, every stream shows what the
 *   unrestricted engine's does, for the users its viewer can still see;
 * - at most one summary per room per interval, and a per-room `false` turns
 *   the mode off for that room (unit cases).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UserId } from '../../src/index.js';
import { createTestEngine, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { ALL_USERS_IN_TEST, clientCommand, commands, Driver, LOCAL_USERS, notified, PROPERTY_CONFIG, ROOMS, type Command } from './engine-commands.js';

const LARGE = { member_threshold: 3, interval: '5s' };
const largeConfig = { ...PROPERTY_CONFIG, presence: { ...PROPERTY_CONFIG.presence, large_rooms: LARGE } };

function twin() {
  const clock = new SimulatedClock();
  const sides = [largeConfig, PROPERTY_CONFIG].map((config) => {
    const engine = createTestEngine({ clock, config }).engine;
    // one large room (everyone) and one small one (two locals); membership inputs move people around
    for (const u of ALL_USERS_IN_TEST) engine.joinRoom(ROOMS[0], u);
    for (const u of LOCAL_USERS.slice(0, 2)) engine.joinRoom(ROOMS[1], u);
    const streams = new Map(LOCAL_USERS.map((u) => [u, recordSyncStream(engine, u)] as const));
    return { engine, driver: new Driver(engine, clock), streams };
  });
  return { clock, large: sides[0] as (typeof sides)[number], plain: sides[1] as (typeof sides)[number] };
}
type Side = ReturnType<typeof twin>['large'];

function apply(t: ReturnType<typeof twin>, c: Command): void {
  if (c.kind === 'advance') return t.clock.advance(c.ms);
  for (const side of [t.large, t.plain]) side.driver.apply(c);
}

/** Every (user, notified fields) a viewer's stream ever received. */
function received(side: Side, viewer: string): Set<string> {
  const out = new Set<string>();
  for (const b of side.streams.get(viewer as (typeof LOCAL_USERS)[number])?.batches ?? []) for (const s of b.events) out.add(`${s.userId} ${JSON.stringify(notified(s))}`);
  return out;
}

const views = (side: Side) =>
  Object.fromEntries(
    [...side.streams].map(([v, rec]) => [
      v,
      Object.fromEntries([...rec.view()].filter(([u]) => u === v || side.engine.shareRoom(v as UserId, u)).map(([u, s]) => [u, notified(s)])),
    ]),
  );

const inputs: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: clientCommand },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 6_000 }) }) },
);

describe('large-room mode', () => {
  it('delivers a subset of the unrestricted deliveries, and converges after an interval', () => {
    fc.assert(
      fc.property(commands(inputs, 60), (cmds) => {
        const t = twin();
        try {
          for (const c of cmds) {
            apply(t, c);
            for (const v of LOCAL_USERS) {
              const all = received(t.plain, v);
              for (const got of received(t.large, v)) expect(all.has(got), `${v} received ${got}, never pushed without large-room mode`).toBe(true);
            }
          }
          t.clock.advance(5_000);
          t.clock.advance(1);
          expect(views(t.large)).toEqual(views(t.plain));
        } finally {
          t.large.engine.stop();
          t.plain.engine.stop();
        }
      }),
      fcParams(100),
    );
  });
});

describe('large-room rules', () => {
  const room = '!big:test.local';
  const members = ['@a:test.local', '@b:test.local', '@c:test.local'];

  it('wakes a large room at most once per interval, with each member\'s latest state', () => {
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, config: largeConfig, rooms: { [room]: members } });
    const bob = recordSyncStream(engine, members[1] as string);
    engine.setPresence(members[0] as string, { presence: 'online' });
    expect(bob.batches).toHaveLength(0); // held for the room's summary
    clock.advance(0);
    expect(bob.batches).toHaveLength(1); // the first summary after quiet goes at once
    engine.setPresence(members[0] as string, { presence: 'unavailable' });
    engine.setPresence(members[2] as string, { presence: 'online' });
    engine.setPresence(members[0] as string, { presence: 'offline' });
    clock.advance(4_999);
    expect(bob.batches).toHaveLength(1);
    clock.advance(1);
    expect(bob.batches).toHaveLength(2);
    expect(bob.batches[1]?.events.map((s) => [s.userId, s.state]).sort()).toEqual([
      ['@a:test.local', 'offline'],
      ['@c:test.local', 'online'],
    ]);
    expect(engine.largeRoomStats?.summaries).toBe(2);
  });

  it('a member who left before the summary is not handed over (their later state is none of the room\'s business)', () => {
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, config: largeConfig, rooms: { [room]: members } });
    const bob = recordSyncStream(engine, members[1] as string);
    engine.setPresence(members[2] as string, { presence: 'online' });
    clock.advance(0);
    engine.setPresence(members[2] as string, { presence: 'unavailable' });
    engine.leaveRoom(room, members[2] as string);
    engine.setPresence(members[2] as string, { presence: 'online', statusMsg: 'elsewhere' });
    engine.setPresence(members[0] as string, { presence: 'online' });
    clock.advance(5_000);
    expect(bob.batches.at(-1)?.events.map((s) => s.userId)).toEqual([members[0]]);
    expect(bob.view().get(members[2] as UserId)?.statusMsg).toBeNull();
  });

  it('a room set to false, or below the threshold, is not summarised; pulls are not changed', async () => {
    const clock = new SimulatedClock();
    const config = { ...PROPERTY_CONFIG, presence: { ...PROPERTY_CONFIG.presence, large_rooms: { ...LARGE, rooms: { [room]: false } } } };
    const { engine } = createTestEngine({ clock, config, rooms: { [room]: members, '!small:test.local': members.slice(0, 2) } });
    const bob = recordSyncStream(engine, members[1] as string);
    const token = engine.currentToken;
    engine.setPresence(members[2] as string, { presence: 'online' });
    expect(bob.view().get(members[2] as UserId)?.state).toBe('online');
    expect((await engine.getNewEvents(members[1] as string, token)).events.map((s) => s.userId)).toEqual([members[2]]);
  });
});

describe('large-room mode shared_rooms_only', () => {
  const big = '!big:test.local';
  const small = '!small:test.local';
  const a = '@a:test.local' as UserId;
  const b = '@b:test.local' as UserId;
  const c = '@c:test.local' as UserId;

  it('a large room shares no presence: members see each other only through a smaller room, on every path; shrinking restores it', async () => {
    const clock = new SimulatedClock();
    const config = { ...PROPERTY_CONFIG, presence: { ...PROPERTY_CONFIG.presence, large_rooms: { mode: 'shared_rooms_only', member_threshold: 3 } } };
    const { engine } = createTestEngine({ clock, config, rooms: { [big]: [a, b, c], [small]: [a, b] } });
    const alice = recordSyncStream(engine, a as string);
    const token = engine.currentToken;
    engine.setPresence(b as string, { presence: 'online' });
    engine.setPresence(c as string, { presence: 'online' });
    expect([...alice.view().keys()]).toEqual([b]);
    expect((await engine.getNewEvents(a as string, token)).events.map((s) => s.userId)).toEqual([b]);
    expect(() => engine.getPresence(a as string, c as string)).toThrow(/share no joined room/);
    engine.leaveRoom(big, b as string); // two members left: no longer large
    expect(engine.getPresence(a as string, c as string).presence).toBe('online');
    engine.setPresence(c as string, { presence: 'unavailable' });
    expect(alice.view().get(c)?.state).toBe('unavailable');
  });
});
