/**
 * TimerSlices on its own, over a fake host that records turns: slice sizes
 * (at least `sliceMin`, at most 50 slices per tick), one slice per ms, tick
 * time kept, `runQueued` ahead of the slice, and `stop` cancelling the timer.
 */
import { describe, expect, it } from 'vitest';
import { TimerSlices, type TimerSliceHost } from '../../../src/engine/timer-slices.js';
import { SimulatedClock } from '../../../src/testing/index.js';

function setup(sliceMin: number, userCount = 10_000) {
  const clock = new SimulatedClock(1_000);
  /** One entry per turn: the users re-examined in it, with their tick time. */
  const turns: [number, number][][] = [];
  let current: [number, number][] | null = null;
  const host: TimerSliceHost = {
    run: (job) => {
      current = [];
      job();
      turns.push(current);
      current = null;
    },
    reexamine: (user, at) => {
      if (current === null) throw new Error('re-examined outside a turn');
      current.push([user, at]);
    },
    userCount,
  };
  const slices = new TimerSlices(clock, sliceMin, host);
  return { clock, turns, slices, host };
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, k) => from + k);

describe('TimerSlices', () => {
  it('re-examines sliceMin users per turn, one turn per millisecond, each at the tick time', () => {
    const { clock, turns, slices } = setup(16);
    slices.onTimers(range(40), 1_000);
    expect(turns.map((t) => t.length)).toEqual([16]);
    expect(clock.pending).toBe(1);
    clock.advance(1);
    expect(turns.map((t) => t.length)).toEqual([16, 16]);
    clock.advance(1);
    expect(turns.map((t) => t.length)).toEqual([16, 16, 8]);
    expect(clock.pending).toBe(0);
    expect(turns.flat().map(([u]) => u)).toEqual(range(40));
    expect(turns.flat().every(([, at]) => at === 1_000)).toBe(true);
  });

  it('a large tick takes at most 50 slices', () => {
    const { clock, turns, slices } = setup(16);
    slices.onTimers(range(5_000), 1_000);
    clock.advance(1_000);
    expect(turns).toHaveLength(50);
    expect(turns.every((t) => t.length === 100)).toBe(true);
    const odd = setup(4);
    odd.slices.onTimers(range(1_001), 1_000);
    odd.clock.advance(1_000);
    expect(odd.turns.length).toBeLessThanOrEqual(50);
    expect(odd.turns[0]).toHaveLength(Math.ceil(1_001 / 50));
    expect(odd.turns.flat()).toHaveLength(1_001);
  });

  it('Infinity re-examines the whole tick in one turn', () => {
    const { clock, turns, slices } = setup(Infinity);
    slices.onTimers(range(300), 1_000);
    expect(turns).toHaveLength(1);
    expect(turns[0]).toHaveLength(300);
    expect(clock.pending).toBe(0);
  });

  it('runQueued re-examines a queued user ahead of their slice, once, at the tick time', () => {
    const { clock, turns, slices, host } = setup(2);
    slices.onTimers([1, 2, 3, 4, 5], 1_000);
    expect(turns).toEqual([[[1, 1_000], [2, 1_000]]]);
    expect(slices.isQueued(5)).toBe(true);
    expect(slices.queuedTime(5)).toBe(1_000);
    // user 5 sends an input (a turn of its own) before its slice: re-examined first
    host.run(() => slices.runQueued(5));
    expect(turns.at(-1)).toEqual([[5, 1_000]]);
    expect(slices.isQueued(5)).toBe(false);
    expect(slices.queuedTime(5)).toBeUndefined();
    slices.runQueued(5); // already ran: nothing
    clock.advance(5);
    const reexamined = turns.flat().map(([u]) => u);
    expect(reexamined.filter((u) => u === 5)).toHaveLength(1);
    expect(reexamined.sort()).toEqual([1, 2, 3, 4, 5]);
    slices.runQueued(7); // never queued: nothing
    expect(turns.flat()).toHaveLength(5);
  });

  it('a user still queued from an earlier tick keeps their first tick time and is not queued twice', () => {
    const { clock, turns, slices } = setup(1);
    slices.onTimers([1, 2, 3], 1_000);
    slices.onTimers([3, 4], 1_000 + 5_000);
    clock.advance(10);
    expect(turns.flat()).toEqual([
      [1, 1_000],
      [2, 1_000],
      [3, 1_000],
      [4, 6_000],
    ]);
  });

  it('queues users with indexes past the initial capacity', () => {
    const { clock, turns, slices } = setup(1, 5_000);
    slices.onTimers([1, 4_000], 1_000);
    expect(turns.flat()).toEqual([[1, 1_000]]);
    expect(slices.isQueued(4_000)).toBe(true);
    expect(slices.queuedTime(4_000)).toBe(1_000);
    clock.advance(1);
    expect(turns.flat()).toEqual([[1, 1_000], [4_000, 1_000]]);
  });

  it('stop cancels the pending slice timer and ignores later ticks', () => {
    const { clock, turns, slices } = setup(2);
    slices.onTimers(range(10), 1_000);
    expect(turns).toHaveLength(1);
    expect(clock.pending).toBe(1);
    slices.stop();
    expect(clock.pending).toBe(0);
    clock.advance(100);
    expect(turns).toHaveLength(1);
    slices.onTimers([50], 2_000);
    expect(turns).toHaveLength(1);
    expect(slices.isQueued(50)).toBe(false);
  });
});
