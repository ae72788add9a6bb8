/**
 * The turn lifecycle. Inputs run in turns that never interleave: an input
 * that arrives while a turn runs (a subscriber calling back into the engine)
 * waits in the mailbox and runs as the next turn. The state is one of:
 *
 * - `idle`: no turn; the next input starts one.
 * - `turn`: a turn is running or committing; new inputs queue in the mailbox.
 * - `batch`: inside `batch(fn)`; inputs join the turn, which commits when `fn` returns.
 * - `tick`: `presence.turns: per_tick`; the first input of an event-loop tick
 *   opened a turn that the tick's later inputs join, committed at the end of
 *   the tick (`endOfTick`).
 */
import type { UserId } from '../domain/ids.js';
import type { Logger } from '../logger.js';

export type TurnState = 'idle' | 'turn' | 'batch' | 'tick';

export interface TurnHost<E> {
  /** Apply one input to the state (may throw only on a bug: inputs are validated before). */
  step(userId: UserId, event: E): void;
  /** End of a turn: append, fan out, flush. */
  commit(): void;
  /** The clock, for inputs that waited in the mailbox (they read it when they run). */
  now(): number;
  /** A turn opened (metrics hooks only; absent otherwise). */
  readonly opened?: (() => void) | undefined;
}

type Job = () => void;

export class Turns<E extends { readonly now: number }> {
  private current: TurnState = 'idle';
  private readonly mailbox: Job[] = [];
  /** Inputs run in the current turn (see {@link takeInputs}). */
  private inputs = 0;

  constructor(
    private readonly host: TurnHost<E>,
    private readonly logger: Logger,
    private readonly perTick: boolean,
    private readonly endOfTick: (closeTurn: () => void) => void,
  ) {}

  get state(): TurnState {
    return this.current;
  }

  /** The inputs the turn being committed ran (and start counting the next). */
  takeInputs(): number {
    const n = this.inputs;
    this.inputs = 0;
    return n;
  }

  /** Run `job` as a turn, inside the open batch or tick, or after the running turn. */
  run(job: Job): void {
    const state = this.current;
    if (state === 'batch' || state === 'tick') return this.runJob(job);
    if (state === 'turn') {
      this.mailbox.push(job);
      return;
    }
    this.host.opened?.();
    if (this.perTick) {
      this.current = 'tick';
      this.runJob(job);
      this.scheduleTickEnd();
      return;
    }
    this.current = 'turn';
    try {
      this.runJob(job);
      this.host.commit();
      this.drainMailbox();
    } finally {
      this.current = 'idle';
    }
  }

  /** `run(() => host.step(userId, event))` without a closure on the usual paths (one input = one call here). */
  runStep(userId: UserId, event: E): void {
    const state = this.current;
    if (state === 'batch' || state === 'tick') return this.stepSafely(userId, event);
    if (state === 'turn') {
      this.mailbox.push(() => this.host.step(userId, { ...event, now: this.host.now() }));
      return;
    }
    this.host.opened?.();
    if (this.perTick) {
      this.current = 'tick';
      this.stepSafely(userId, event);
      this.scheduleTickEnd();
      return;
    }
    this.current = 'turn';
    try {
      this.stepSafely(userId, event);
      this.host.commit();
      this.drainMailbox();
    } finally {
      this.current = 'idle';
    }
  }

  /** Run `fn`'s inputs as one turn (inside an open turn, batch or tick they simply join it). */
  batch<T>(fn: () => T): T {
    if (this.current !== 'idle') return fn();
    this.host.opened?.();
    this.current = 'batch';
    try {
      return fn();
    } finally {
      this.current = 'turn';
      try {
        this.host.commit();
        this.drainMailbox();
      } finally {
        this.current = 'idle';
      }
    }
  }

  /**
   * Commit the open per-tick turn (scheduled through `endOfTick`; also called
   * by snapshot and stop, so neither sees inputs the log does not hold). A
   * failure is logged, not thrown: this runs from the event loop.
   */
  readonly closeTick = (): void => {
    if (this.current !== 'tick') return;
    this.current = 'turn';
    try {
      this.host.commit();
      this.drainMailbox();
    } catch (error) {
      this.failed(error);
    } finally {
      this.current = 'idle';
    }
  };

  /**
   * Have `endOfTick` close the tick just opened (after its first input ran, so
   * an `endOfTick` that calls back at once commits it as a turn per input
   * would). If `endOfTick` throws, the turn commits now and the error is logged.
   */
  private scheduleTickEnd(): void {
    try {
      this.endOfTick(this.closeTick);
    } catch (error) {
      this.logger.error('presence engine: endOfTick threw; committing the turn at once', { error: error instanceof Error ? error.message : String(error) });
      this.closeTick();
    }
  }

  private drainMailbox(): void {
    while (this.mailbox.length > 0) {
      this.host.opened?.();
      this.runJob(this.mailbox.shift() as Job);
      this.host.commit();
    }
  }

  private stepSafely(userId: UserId, event: E): void {
    this.inputs++;
    try {
      this.host.step(userId, event);
    } catch (error) {
      this.failed(error);
    }
  }

  private runJob(job: Job): void {
    this.inputs++;
    try {
      job();
    } catch (error) {
      this.failed(error);
    }
  }

  /** Inputs are validated before they reach a turn: anything thrown in one is a bug. Log it; keep the engine alive. */
  private failed(error: unknown): void {
    this.logger.error('presence engine: a turn failed', { error: error instanceof Error ? error.stack : String(error) });
  }
}
