/**
 * Sliced timer ticks change when a re-examination runs, never what it does: for
 * any inputs and any passage of time, an engine that re-examines one user per
 * turn (`timerSlice: 1`) and one that re-examines whole ticks at once
 * (`timerSlice: Infinity`) give every user the same history (the same steps,
 * with the same times and notifications, in the same order) and the same final
 * presence. Only the interleaving of different users' steps may differ.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PresenceEngine, type SyncHandle, type UserStepEvent } from '../../src/index.js';
import { presenceConfig } from '../../src/config.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const USERS = Array.from({ length: 12 }, (_, i) => `@u${i}:test.local`);

type Command =
  | { kind: 'sync'; user: number }
  | { kind: 'end'; user: number }
  | { kind: 'set'; user: number; presence: 'online' | 'unavailable' | 'offline' | 'busy' }
  | { kind: 'bump'; user: number }
  | { kind: 'everyone-syncs' }
  | { kind: 'advance'; ms: number }
  | { kind: 'to-tick'; ticks: number };

const user = fc.nat(USERS.length - 1);
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('sync' as const), user }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('end' as const), user }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('set' as const), user, presence: fc.constantFrom('online', 'unavailable', 'offline', 'busy' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('bump' as const), user }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'everyone-syncs' as const }) },
  {
    weight: 4,
    // 0–20 ms lands between the slices of a tick; the others cross ticks and timeouts
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.nat(20), fc.nat(10_000), fc.nat(400_000)) }),
  },
  // exactly onto a wheel tick, often the one where the 30 s sync, 60 s activity or
  // 5 min idle deadlines of users who started together fall: the commands after
  // it meet users still queued for re-examination
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('to-tick' as const), ticks: fc.oneof(fc.constantFrom(6, 7, 12, 13, 60, 61), fc.integer({ min: 1, max: 80 })) }),
  },
);

class Rig {
  readonly clock = new SimulatedClock();
  readonly engine: PresenceEngine;
  private readonly handles: SyncHandle[][] = USERS.map(() => []);

  constructor(timerSlice: number) {
    const config = presenceConfig('test.local', { presence: { busy_enabled: true }, rc_presence: { per_user: { per_second: 1e6, burst_count: 1e6 } } });
    this.engine = new PresenceEngine({ config, clock: this.clock, logger: new MemoryLogger(), timerSlice });
  }

  apply(c: Command): void {
    const id = (u: number) => USERS[u] as string;
    switch (c.kind) {
      case 'sync':
        this.handles[c.user]?.push(this.engine.userSyncing(id(c.user)));
        return;
      case 'end':
        this.handles[c.user]?.pop()?.end();
        return;
      case 'set':
        this.engine.setPresence(id(c.user), { presence: c.presence });
        return;
      case 'bump':
        this.engine.bumpActive(id(c.user));
        return;
      case 'everyone-syncs':
        this.engine.batch(() => USERS.forEach((u, i) => this.handles[i]?.push(this.engine.userSyncing(u))));
        return;
      case 'advance':
        this.clock.advance(c.ms);
        return;
      case 'to-tick':
        this.clock.advance(5_000 - (this.clock.now() % 5_000) + (c.ticks - 1) * 5_000);
        return;
    }
  }

  /** Each user's steps, in log order, without the (global) stream ids. */
  histories(): Map<string, unknown[]> {
    const out = new Map<string, unknown[]>(USERS.map((u) => [u, []]));
    for (const { event } of this.engine.log.read()) {
      if (event.type !== 'user.step') continue;
      const { streamId, ...rest } = event as UserStepEvent;
      out.get(event.userId)?.push({ ...rest, notified: streamId !== undefined });
    }
    return out;
  }
}

describe('sliced timer ticks', () => {
  it('give every user the same history and final presence as unsliced ticks', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 10, maxLength: 120, size: 'large' }), (commands) => {
        const sliced = new Rig(1);
        const whole = new Rig(Infinity);
        for (const c of commands) {
          sliced.apply(c);
          whole.apply(c);
        }
        // let the last tick's slices run (at most 12 users, one per millisecond)
        sliced.apply({ kind: 'advance', ms: 100 });
        whole.apply({ kind: 'advance', ms: 100 });
        expect(sliced.histories()).toEqual(whole.histories());
        for (const u of USERS) expect(sliced.engine.getUserPresence(u)).toEqual(whole.engine.getUserPresence(u));
      }),
      fcParams(150),
    );
  });

  it('refuses a slice below one user', () => {
    const config = presenceConfig('test.local', {});
    expect(() => new PresenceEngine({ config, clock: new SimulatedClock(), logger: new MemoryLogger(), timerSlice: 0 })).toThrow(/timerSlice/);
  });
});
