import { describe, expect, it } from 'vitest';
import { TimerWheel } from '../../src/timer-wheel.js';
import { SimulatedClock } from '../../src/testing/index.js';

describe('timer wheel (spec §1.7)', () => {
  it('fires a user at the first tick at or after their deadline, once', () => {
    const clock = new SimulatedClock(0);
    const fired: [string, number][] = [];
    const wheel = new TimerWheel<string>(clock, 5_000, (due, now) => due.forEach((k) => fired.push([k, now])));
    wheel.schedule('a', 30_001);
    wheel.schedule('b', 10_000);
    clock.advance(60_000);
    expect(fired).toEqual([
      ['b', 10_000],
      ['a', 35_000],
    ]);
  });

  it('keeps only the latest deadline per user and cancels with Infinity', () => {
    const clock = new SimulatedClock(0);
    const fired: string[] = [];
    const wheel = new TimerWheel<string>(clock, 5_000, (due) => fired.push(...due));
    wheel.schedule('a', 20_000);
    wheel.schedule('a', 7_000);
    wheel.schedule('b', 7_000);
    wheel.cancel('b');
    clock.advance(30_000);
    expect(fired).toEqual(['a']);
    expect(wheel.size).toBe(0);
  });

  it('files a deadline that is already due under the next tick, so a no-op re-examination cannot spin', () => {
    const clock = new SimulatedClock(0);
    let fires = 0;
    const wheel = new TimerWheel<string>(clock, 5_000, (due, now) => {
      fires++;
      if (fires > 100) return; // guard so a spinning wheel fails the test instead of hanging it
      // a handler that changes nothing and asks again for a deadline in the past
      for (const k of due) wheel.schedule(k, now - 1);
    });
    wheel.schedule('stuck', 5_000);
    clock.advance(20_000);
    expect(fires).toBe(4); // once per tick at 5 s, 10 s, 15 s, 20 s: progress, not a loop at 5 s
  });
});
