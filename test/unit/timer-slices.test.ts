/**
 * A timer tick is processed in slices (src/engine.ts, `onTimers`): the users
 * a tick finds due are re-examined at least 16 per turn, the next slice 1 ms
 * later, so an input arriving meanwhile waits for one slice, not for the whole
 * tick. Each re-examination still uses the tick's time, and a user who sends an
 * input while their re-examination is queued has it run first.
 */
import { describe, expect, it } from 'vitest';
import type { PresenceEngine, UserStepEvent } from '../../src/index.js';
import { createTestEngine, type SimulatedClock } from '../../src/testing/index.js';

const USERS = Array.from({ length: 100 }, (_, i) => `@u${i}:test.local`);

function unavailable(engine: PresenceEngine, users: readonly string[] = USERS): string[] {
  return users.filter((u) => engine.getUserPresence(u).state === 'unavailable');
}

/** `users` (default: 100) start syncing at once (online), then time runs up to the tick that idles them: returns its time. */
function idleTick(engine: PresenceEngine, clock: SimulatedClock, users: readonly string[] = USERS): number {
  engine.batch(() => {
    for (const u of users) engine.userSyncing(u);
  });
  // the idle timeout is 5 minutes; step 1 ms at a time to the first idle transition
  clock.advance(299_000);
  const updates = engine.stats.updates;
  for (let i = 0; i < 10_000 && engine.stats.updates === updates; i++) clock.advance(1);
  return clock.now();
}

function stepsOf(engine: PresenceEngine, userId: string): UserStepEvent[] {
  const out: UserStepEvent[] = [];
  for (const { event } of engine.log.read()) if (event.type === 'user.step' && event.userId === userId) out.push(event);
  return out;
}

describe('timer ticks in slices', () => {
  it('re-examines 16 users per turn, one turn per millisecond, each at the time of the tick', () => {
    const { engine, clock } = createTestEngine();
    const tick = idleTick(engine, clock);
    expect(tick % 5_000).toBe(0); // the tick itself, not a millisecond after it
    for (const done of [16, 32, 48, 64, 80, 96]) {
      expect(unavailable(engine)).toHaveLength(done);
      clock.advance(1);
    }
    expect(unavailable(engine)).toHaveLength(100);
    for (const u of USERS) {
      const idled = stepsOf(engine, u).find((e) => e.presence?.state === 'unavailable');
      expect(idled?.at).toBe(tick);
    }
  });

  it('runs a queued re-examination before the same user\'s input, and not again afterwards', () => {
    const { engine, clock } = createTestEngine();
    const tick = idleTick(engine, clock);
    const waiting = USERS.find((u) => engine.getUserPresence(u).state === 'online') as string;
    const before = stepsOf(engine, waiting).length;
    engine.bumpActive(waiting); // still queued: idles first (at the tick), then the bump brings them back
    const steps = stepsOf(engine, waiting).slice(before);
    expect(steps.map((e) => [e.presence?.state, e.at])).toEqual([
      ['unavailable', tick],
      ['online', tick],
    ]);
    clock.advance(10);
    expect(stepsOf(engine, waiting).slice(before)).toHaveLength(2);
    expect(engine.getUserPresence(waiting).state).toBe('online');
    expect(unavailable(engine)).toHaveLength(99);
  });

  it('a large tick takes bigger slices: done within 50 turns', () => {
    const { engine, clock } = createTestEngine();
    const many = Array.from({ length: 3_200 }, (_, i) => `@m${i}:test.local`);
    idleTick(engine, clock, many);
    const count = () => unavailable(engine, many).length;
    expect(count()).toBe(64); // 3200 / 50
    clock.advance(48);
    expect(count()).toBe(3_136);
    clock.advance(1);
    expect(count()).toBe(3_200);
  });

  it('stop() cancels the slices still to come', () => {
    const { engine, clock } = createTestEngine();
    idleTick(engine, clock);
    engine.stop();
    expect(() => clock.advance(10)).not.toThrow();
    expect(unavailable(engine)).toHaveLength(16);
  });
});
