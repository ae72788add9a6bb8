/**
 * The sync notifier's flush, on its own: whatever mix of room segments and
 * individual offers a listener collected in a turn, its one batch holds every
 * offered user exactly once, with that user's state at flush time, and the
 * largest room's changes first in their order (that prefix is what lets a
 * single-source listener share the room's batch). Sizes reach past the
 * merge scratch's initial 1024 entries, so its growth is exercised too; the
 * multi-turn property reuses room segments across listeners and turns, as the
 * engine does, so the merge's memory of the last room it marked is exercised.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Subscriber } from 'rxjs';
import { RoomSegment, SyncNotifier, syncStreamObservable, type PresenceBatch } from '../../streams/sync-notifier.js';
import type { UserPresenceState } from '../../src/index.js';
import { fcParams } from '../support/fc.js';
import type { UserId } from '../../src/domain/ids.js';

function stateTable(users: number): UserPresenceState[] {
  return Array.from({ length: users }, (_, i) => ({
    userId: `@u${i}:test` as UserId,
    state: i % 3 === 0 ? 'online' : 'unavailable',
    lastActiveTs: i,
    lastFederationUpdateTs: 0,
    lastUserSyncTs: 0,
    statusMsg: null,
    currentlyActive: false,
  }));
}

/** Flush one notifier holding these segments and offers; returns what its subscriber received. */
function flushOnce(users: number, segmentUsers: readonly (readonly number[])[], offers: readonly number[], token: number): { batches: PresenceBatch[]; states: UserPresenceState[]; segments: RoomSegment[] } {
  const states = stateTable(users);
  const notifier = new SyncNotifier('@listener:test' as UserId, 0);
  const batches: PresenceBatch[] = [];
  syncStreamObservable(
    (s: Subscriber<PresenceBatch>) => notifier.addSubscriber(s),
    () => undefined,
  ).subscribe((b) => batches.push(b));
  const segments = segmentUsers.map((members) => {
    const segment = new RoomSegment();
    for (const u of members) segment.add(u);
    notifier.addSegment(segment);
    return segment;
  });
  for (const u of offers) notifier.offer(u);
  notifier.flush((i) => states[i] as UserPresenceState, token, users, null, undefined);
  return { batches, states, segments };
}

function expectExactlyOffered(batch: PresenceBatch, states: readonly UserPresenceState[], segmentUsers: readonly (readonly number[])[], offers: readonly number[]) {
  const expected = new Set<number>([...segmentUsers.flat(), ...offers]);
  const got = batch.events.map((s) => states.indexOf(s));
  expect(got.every((i) => i >= 0)).toBe(true); // the very state objects of the table (current at flush)
  expect(new Set(got).size).toBe(got.length); // each user once
  expect(new Set(got)).toEqual(expected);
  // The largest segment (the first of the largest) leads, in its order.
  let largest: readonly number[] = [];
  for (const members of segmentUsers) if (members.length > largest.length) largest = members;
  expect(got.slice(0, largest.length)).toEqual(largest);
}

describe('sync notifier flush', () => {
  it('one batch with every offered user exactly once, the largest room first', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }).chain((users) =>
          fc.record({
            users: fc.constant(users),
            segments: fc.array(fc.uniqueArray(fc.nat(users - 1), { maxLength: Math.min(users, 1500) }), { maxLength: 5 }),
            offers: fc.array(fc.nat(users - 1), { maxLength: 1500 }),
          }),
        ),
        ({ users, segments, offers }) => {
          const { batches, states } = flushOnce(users, segments, offers, 7);
          if (segments.every((m) => m.length === 0) && offers.length === 0) {
            expect(batches).toEqual([]);
            return;
          }
          expect(batches).toHaveLength(1);
          const batch = batches[0] as PresenceBatch;
          expect(batch.token).toBe(7);
          expectExactlyOffered(batch, states, segments, offers);
        },
      ),
      fcParams(150),
    );
  });

  it('several listeners over shared rooms, turn after turn: each batch is exactly what that listener was offered', () => {
    const users = 40;
    const listenerTurn = fc.record({
      rooms: fc.uniqueArray(fc.nat(3), { maxLength: 4 }),
      offers: fc.array(fc.nat(users - 1), { maxLength: 4 }),
    });
    const turn = fc.record({
      rooms: fc.array(fc.uniqueArray(fc.nat(users - 1), { maxLength: 12 }), { minLength: 4, maxLength: 4 }),
      listeners: fc.array(listenerTurn, { minLength: 3, maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(turn, { minLength: 1, maxLength: 6 }), (turns) => {
        const states = stateTable(users);
        const stateOf = (i: number) => states[i] as UserPresenceState;
        const segments = [0, 1, 2, 3].map(() => new RoomSegment());
        const received: PresenceBatch[][] = [];
        const notifiers = [0, 1, 2].map((l) => {
          const n = new SyncNotifier(`@l${l}:test` as UserId, users + l);
          const got: PresenceBatch[] = [];
          received.push(got);
          syncStreamObservable((s) => n.addSubscriber(s), () => undefined).subscribe((b) => got.push(b));
          return n;
        });
        turns.forEach((t, token) => {
          t.rooms.forEach((members, r) => members.forEach((u) => (segments[r] as RoomSegment).add(u)));
          t.listeners.forEach((l, k) => {
            const n = notifiers[k] as SyncNotifier;
            for (const r of l.rooms) if ((segments[r] as RoomSegment).size > 0) n.addSegment(segments[r] as RoomSegment);
            for (const u of l.offers) n.offer(u);
          });
          t.listeners.forEach((l, k) => {
            const got = received[k] as PresenceBatch[];
            const before = got.length;
            (notifiers[k] as SyncNotifier).flush(stateOf, token + 1, users, null, undefined);
            const fromRooms = l.rooms.map((r) => t.rooms[r] as number[]).filter((m) => m.length > 0);
            if (fromRooms.length === 0 && l.offers.length === 0) {
              expect(got.length).toBe(before);
              return;
            }
            expect(got.length).toBe(before + 1);
            expectExactlyOffered(got[before] as PresenceBatch, states, fromRooms, l.offers);
          });
          for (const segment of segments) segment.clear();
        });
      }),
      fcParams(200),
    );
  });

  it('merges thousands of users from other rooms and offers onto the largest room', () => {
    const largest = Array.from({ length: 2500 }, (_, i) => i);
    const other = Array.from({ length: 2000 }, (_, i) => 2000 + i); // 1500 not in the largest
    const offers = [...Array.from({ length: 1200 }, (_, i) => 4000 + i), 0, 4000, 10];
    const { batches, states } = flushOnce(5200, [other, largest], offers, 1);
    expect(batches).toHaveLength(1);
    expect((batches[0] as PresenceBatch).events).toHaveLength(5200);
    expectExactlyOffered(batches[0] as PresenceBatch, states, [other, largest], offers);
  });

  it('a listener whose other sources add nobody shares the largest room\'s batch', () => {
    const { batches, segments } = flushOnce(10, [[1, 2, 3], [2]], [3, 1], 4);
    const shared = (segments[0] as RoomSegment).batch(() => {
      throw new Error('the shared batch was built during the flush');
    }, 4);
    expect(batches[0]).toBe(shared);
  });
});
