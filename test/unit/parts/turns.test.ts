/**
 * Turns on its own: the state machine idle → turn → idle, batch and per-tick
 * turns, the mailbox for inputs that arrive inside a turn, and failures that
 * are logged without losing the commit.
 */
import { describe, expect, it } from 'vitest';
import type { UserId } from '../../../src/domain/ids.js';
import { Turns, type TurnHost, type TurnState } from '../../../src/engine/turns.js';
import { MemoryLogger } from '../../../src/logger.js';

interface Ev {
  readonly now: number;
  readonly tag: string;
}

const A = '@a:example.org' as UserId;
const B = '@b:example.org' as UserId;

/** Records every step and commit, with the turn state seen at that moment. */
function harness(options: { perTick?: boolean; endOfTick?: (close: () => void) => void } = {}) {
  const log: string[] = [];
  const states: TurnState[] = [];
  let time = 100;
  const logger = new MemoryLogger();
  let onStep: (userId: UserId, e: Ev) => void = () => {};
  const host: TurnHost<Ev> = {
    step: (userId, e) => {
      log.push(`step ${userId} ${e.tag} @${e.now}`);
      states.push(turns.state);
      onStep(userId, e);
    },
    commit: () => {
      log.push('commit');
      states.push(turns.state);
    },
    now: () => time,
  };
  const ticks: (() => void)[] = [];
  const endOfTick = options.endOfTick ?? ((close: () => void) => void ticks.push(close));
  const turns: Turns<Ev> = new Turns<Ev>(host, logger, options.perTick ?? false, endOfTick);
  return {
    turns,
    log,
    states,
    logger,
    ticks,
    setTime: (t: number) => void (time = t),
    onStep: (f: (userId: UserId, e: Ev) => void) => void (onStep = f),
  };
}

describe('Turns', () => {
  it('one input is one turn: idle → turn (step, commit) → idle', () => {
    const h = harness();
    expect(h.turns.state).toBe('idle');
    h.turns.runStep(A, { now: 1, tag: 'x' });
    expect(h.log).toEqual(['step @a:example.org x @1', 'commit']);
    expect(h.states).toEqual(['turn', 'turn']);
    expect(h.turns.state).toBe('idle');
    h.turns.run(() => h.log.push('job'));
    expect(h.log.slice(2)).toEqual(['job', 'commit']);
    expect(h.turns.state).toBe('idle');
  });

  it('inputs arriving inside a turn wait in the mailbox, run in arrival order, each its own turn, reading the clock when they run', () => {
    const h = harness();
    h.onStep((userId, e) => {
      if (e.tag !== 'first') return;
      h.turns.runStep(B, { now: 1, tag: 'second' });
      h.turns.run(() => h.log.push('job third'));
      h.turns.runStep(A, { now: 1, tag: 'fourth' });
      h.setTime(500);
      expect(h.log).toEqual([`step ${userId} first @1`]); // nothing ran yet
    });
    h.turns.runStep(A, { now: 1, tag: 'first' });
    expect(h.log).toEqual([
      'step @a:example.org first @1',
      'commit',
      'step @b:example.org second @500',
      'commit',
      'job third',
      'commit',
      'step @a:example.org fourth @500',
      'commit',
    ]);
    expect(h.turns.state).toBe('idle');
  });

  it('batch: the inputs of fn join one turn committed when fn returns; nested batches join it', () => {
    const h = harness();
    const r = h.turns.batch(() => {
      expect(h.turns.state).toBe('batch');
      h.turns.runStep(A, { now: 1, tag: 'a' });
      h.turns.run(() => h.log.push('job'));
      h.turns.batch(() => h.turns.runStep(B, { now: 2, tag: 'b' }));
      return 42;
    });
    expect(r).toBe(42);
    expect(h.log).toEqual(['step @a:example.org a @1', 'job', 'step @b:example.org b @2', 'commit']);
    expect(h.states).toEqual(['batch', 'batch', 'turn']);
    expect(h.turns.state).toBe('idle');
  });

  it('batch commits even when fn throws, and rethrows', () => {
    const h = harness();
    expect(() =>
      h.turns.batch(() => {
        h.turns.runStep(A, { now: 1, tag: 'a' });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(h.log).toEqual(['step @a:example.org a @1', 'commit']);
    expect(h.turns.state).toBe('idle');
  });

  it('per_tick: the first input opens a tick the later ones join; endOfTick closes it in one commit', () => {
    const h = harness({ perTick: true });
    h.turns.runStep(A, { now: 1, tag: 'a' });
    expect(h.turns.state).toBe('tick');
    expect(h.ticks).toHaveLength(1);
    h.turns.runStep(B, { now: 2, tag: 'b' });
    h.turns.run(() => h.log.push('job'));
    expect(h.ticks).toHaveLength(1); // one end of tick per tick
    expect(h.log).not.toContain('commit');
    (h.ticks[0] as () => void)();
    expect(h.log).toEqual(['step @a:example.org a @1', 'step @b:example.org b @2', 'job', 'commit']);
    expect(h.turns.state).toBe('idle');
    h.turns.run(() => h.log.push('next'));
    expect(h.turns.state).toBe('tick');
    expect(h.ticks).toHaveLength(2);
  });

  it('per_tick: an endOfTick that calls back at once commits each input as its own turn', () => {
    const h = harness({ perTick: true, endOfTick: (close) => close() });
    h.turns.runStep(A, { now: 1, tag: 'a' });
    h.turns.runStep(B, { now: 2, tag: 'b' });
    expect(h.log).toEqual(['step @a:example.org a @1', 'commit', 'step @b:example.org b @2', 'commit']);
    expect(h.turns.state).toBe('idle');
  });

  it('per_tick: an endOfTick that throws commits the turn at once and logs the error', () => {
    const h = harness({
      perTick: true,
      endOfTick: () => {
        throw new Error('no scheduler');
      },
    });
    h.turns.runStep(A, { now: 1, tag: 'a' });
    expect(h.log).toEqual(['step @a:example.org a @1', 'commit']);
    expect(h.turns.state).toBe('idle');
    const errors = h.logger.entries.filter((e) => e.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/endOfTick threw/);
    expect(errors[0]?.fields).toEqual({ error: 'no scheduler' });
  });

  it('closeTick outside a tick is a no-op; a closed tick closed again commits nothing', () => {
    const h = harness({ perTick: true });
    h.turns.closeTick();
    expect(h.log).toEqual([]);
    expect(h.turns.state).toBe('idle');
    h.turns.run(() => h.log.push('job'));
    h.turns.closeTick();
    (h.ticks[0] as () => void)(); // the scheduled end comes after snapshot/stop closed it
    expect(h.log).toEqual(['job', 'commit']);
    const plain = harness();
    plain.turns.closeTick();
    expect(plain.log).toEqual([]);
  });

  it('a throwing step is logged and the turn still commits; the engine keeps going', () => {
    const h = harness();
    h.onStep((_u, e) => {
      if (e.tag === 'bad') throw new Error('bug in step');
    });
    h.turns.runStep(A, { now: 1, tag: 'bad' });
    expect(h.log).toEqual(['step @a:example.org bad @1', 'commit']);
    expect(h.turns.state).toBe('idle');
    expect(h.logger.entries.filter((e) => e.level === 'error').map((e) => e.message)).toEqual(['presence engine: a turn failed']);
    h.turns.run(() => {
      throw new Error('bug in job');
    });
    expect(h.log).toEqual(['step @a:example.org bad @1', 'commit', 'commit']);
    h.turns.runStep(B, { now: 2, tag: 'ok' });
    expect(h.log.slice(-2)).toEqual(['step @b:example.org ok @2', 'commit']);
  });

  it('per_tick: a commit that throws at the end of a tick is logged, not thrown, and the state returns to idle', () => {
    const logger = new MemoryLogger();
    let commits = 0;
    const ticks: (() => void)[] = [];
    const turns = new Turns<Ev>(
      {
        step: () => {},
        commit: () => {
          commits++;
          throw new Error('append failed');
        },
        now: () => 0,
      },
      logger,
      true,
      (close) => void ticks.push(close),
    );
    turns.runStep(A, { now: 0, tag: 'a' });
    expect(() => (ticks[0] as () => void)()).not.toThrow();
    expect(commits).toBe(1);
    expect(turns.state).toBe('idle');
    expect(logger.entries.some((e) => e.level === 'error')).toBe(true);
  });
});
