/**
 * Incremental `getNewEvents` (a token the change index still covers) answers
 * exactly what a naive walk over the changes since the token gives, recomputed
 * here from the test's own record of memberships, changes and router interest:
 * in order of first appearance, each user who changed presence and is the
 * reader, shares a room that is not excluded with the reader, or is in the
 * reader's interest; for a join into such a room where both are still members,
 * the joiner (or every member, when the joiner is the reader). Reads are mixed
 * with changes, so marks left by earlier reads are around; token distances and
 * room sizes vary, so every way the engine checks "shares a room" is used.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PresenceEngine } from '../../src/index.js';
import { createTestEngine, seededRandom } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const EXCLUDED = '!x:test.local';
const USERS = Array.from({ length: 10 }, (_, i) => `@u${i}:test.local`);
const ROOMS = [...Array.from({ length: 7 }, (_, i) => `!r${i}:test.local`), EXCLUDED];

type Op =
  | { kind: 'set'; user: string; presence: 'online' | 'unavailable' | 'offline' | 'busy' }
  | { kind: 'join'; room: string; user: string }
  | { kind: 'leave'; room: string; user: string }
  | { kind: 'read'; reader: string; back: number };

/** A change the engine recorded: a presence change (`room` null) or a join, at stream token `token`. */
interface Entry {
  readonly token: number;
  readonly user: string;
  readonly room: string | null;
}

/** The engine driven by the test, with the test's own record of what it did. */
class World {
  readonly members = new Map<string, Set<string>>(); // insertion order, like the engine's rooms
  readonly entries: Entry[] = [];

  constructor(
    readonly engine: PresenceEngine,
    readonly capacity: number,
    readonly interest: ReadonlyMap<string, ReadonlySet<string>>,
  ) {}

  set(user: string, presence: 'online' | 'unavailable' | 'offline' | 'busy'): void {
    const before = this.engine.currentToken;
    this.engine.setPresence(user, { presence });
    this.record(before, user, null);
  }

  join(room: string, user: string): void {
    const before = this.engine.currentToken;
    this.engine.joinRoom(room, user);
    let set = this.members.get(room);
    if (set === undefined) this.members.set(room, (set = new Set()));
    set.add(user);
    this.record(before, user, room);
  }

  leave(room: string, user: string): void {
    const before = this.engine.currentToken;
    this.engine.leaveRoom(room, user);
    this.members.get(room)?.delete(user);
    expect(this.engine.currentToken).toBe(before); // leaving is not a change
  }

  private record(before: number, user: string, room: string | null): void {
    const after = this.engine.currentToken;
    expect(after - before).toBeLessThanOrEqual(1);
    if (after > before) this.entries.push({ token: after, user, room });
  }

  private shareRoom(a: string, b: string): boolean {
    for (const [room, m] of this.members) if (room !== EXCLUDED && m.has(a) && m.has(b)) return true;
    return false;
  }

  /** Is `since` older than what a change index of `capacity` entries remembers? */
  private forgotten(since: number): boolean {
    const evicted = this.entries.length - this.capacity - 1;
    return evicted >= 0 && since < (this.entries[evicted] as Entry).token;
  }

  /** The naive answer: users in order of first appearance (see the file comment). */
  private expected(reader: string, since: number): string[] {
    const out = new Set<string>();
    for (const e of this.entries) {
      if (e.token <= since) continue;
      if (e.room === null) {
        if (e.user === reader || this.shareRoom(reader, e.user) || (this.interest.get(reader)?.has(e.user) ?? false)) out.add(e.user);
        continue;
      }
      const m = this.members.get(e.room);
      if (e.room === EXCLUDED || m === undefined || !m.has(reader) || !m.has(e.user)) continue;
      if (e.user === reader) for (const u of m) out.add(u);
      else out.add(e.user);
    }
    return [...out];
  }

  async check(reader: string, since: number): Promise<void> {
    const r = await this.engine.getNewEvents(reader, since);
    expect(r.nextToken).toBe(this.engine.currentToken);
    expect(r.full, `full answer for token ${since}`).toBe(this.forgotten(since));
    if (r.full) return;
    const want = this.expected(reader, since);
    expect(r.events.map((s) => s.userId), `getNewEvents(${reader}, ${since})`).toEqual(want);
    expect(r.events).toEqual(want.map((u) => this.engine.getUserPresence(u)));
  }
}

function world(capacity: number, interest: ReadonlyMap<string, ReadonlySet<string>>): World {
  const { engine } = createTestEngine({
    config: { presence: { busy_enabled: true, change_index_size: capacity }, exclude_rooms_from_presence: [EXCLUDED] },
  });
  if (interest.size > 0) {
    engine.registerPresenceRouter('interest', {
      getUsersForStates: () => new Map(),
      getInterestedUsers: (u: string) => interest.get(u) ?? new Set<string>(),
    });
  }
  return new World(engine, capacity, interest);
}

const user = fc.constantFrom(...USERS);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), user, presence: fc.constantFrom('online', 'unavailable', 'offline', 'busy') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('join' as const), room: fc.constantFrom(...ROOMS), user }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), room: fc.constantFrom(...ROOMS), user }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), reader: user, back: fc.oneof(fc.nat(4), fc.nat(40)) }) },
);
const interestArb = fc
  .array(fc.tuple(user, fc.uniqueArray(user, { maxLength: 3 })), { maxLength: 4 })
  .map((pairs) => new Map(pairs.map(([u, extra]) => [u, new Set(extra)] as const)));

describe('incremental getNewEvents', () => {
  it('equals a naive walk over the changes since the token', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 16, max: 48 }), interestArb, fc.array(op, { minLength: 1, maxLength: 150, size: 'max' }), async (capacity, interest, ops) => {
        const w = world(capacity, interest);
        try {
          for (const o of ops) {
            if (o.kind === 'set') w.set(o.user, o.presence);
            else if (o.kind === 'join') w.join(o.room, o.user);
            else if (o.kind === 'leave') w.leave(o.room, o.user);
            else await w.check(o.reader, Math.max(0, w.engine.currentToken - o.back));
          }
          for (const reader of USERS) for (const back of [1, 3, 10, 30]) await w.check(reader, Math.max(0, w.engine.currentToken - back));
        } finally {
          w.engine.stop();
        }
      }),
      fcParams(150),
    );
  });

  it('holds with more users and rooms than the read scratch starts with', async () => {
    const rnd = seededRandom(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
    const users = Array.from({ length: 1_500 }, (_, i) => `@m${i}:test.local`);
    const rooms = [...Array.from({ length: 300 }, (_, i) => `!g${i}:test.local`), EXCLUDED];
    const w = world(4_096, new Map([[users[0] as string, new Set([users[1] as string, users[2] as string])]]));
    try {
      for (const u of users) for (let k = 0; k < 3; k++) w.join(rnd() < 0.2 ? pick(rooms.slice(0, 5)) : pick(rooms), u);
      // readers and changed users in many rooms, and readers in one
      for (const u of [...users.slice(0, 5), ...users.slice(100, 150)]) for (let k = 0; k < 40; k++) w.join(pick(rooms), u);
      const readers = [...users.slice(0, 20), ...users.slice(-5)];
      for (const u of users.slice(-5)) for (const r of rooms) w.leave(r, u);
      for (const u of users.slice(-5)) w.join(pick(rooms), u);
      for (let round = 0; round < 5; round++) {
        for (let k = 0; k < 300; k++) {
          if (rnd() < 0.1) w.join(pick(rooms), rnd() < 0.1 ? pick(readers) : pick(users));
          else w.set(pick(users), pick(['online', 'unavailable', 'offline'] as const));
        }
        for (const reader of readers) for (const back of [1, 10, 100, 1_000]) await w.check(reader, Math.max(0, w.engine.currentToken - back));
      }
    } finally {
      w.engine.stop();
    }
  });
});
