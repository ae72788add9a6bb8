/**
 * The metrics hooks of a turn (`onTurn`, `onTimerFired`). The engine builds
 * one only when a hook is set, so an engine without hooks pays a null check
 * per turn and per timeout step, nothing else.
 */
import { DEADLINE_KINDS, type DeadlineKind } from '../domain/rules.js';
import type { PresenceEngineOptions } from './types.js';

export class TurnObserver {
  private startedAt = 0;
  private committedAt = 0;
  /** Timeout steps that changed a user this turn, per kind (index in DEADLINE_KINDS). */
  private readonly fired = new Int32Array(DEADLINE_KINDS.length);
  private anyFired = false;

  constructor(
    private readonly onTurn: PresenceEngineOptions['onTurn'],
    private readonly onTimerFired: PresenceEngineOptions['onTimerFired'],
  ) {}

  /** A turn opened. */
  readonly opened = (): void => {
    if (this.onTurn !== undefined) this.startedAt = performance.now();
  };

  /** A timer of `kind` made a timeout step change a user. */
  readonly timerFired = (kind: DeadlineKind): void => {
    const k = DEADLINE_KINDS.indexOf(kind);
    this.fired[k] = (this.fired[k] ?? 0) + 1;
    this.anyFired = true;
  };

  /** The turn's events are in the log. */
  appended(): void {
    if (this.onTurn !== undefined) this.committedAt = performance.now();
  }

  /** The turn ended (fan-out and flush done). */
  ended(inputs: number, events: number): void {
    if (this.onTurn !== undefined) {
      const committedAt = Math.max(this.committedAt, this.startedAt);
      this.onTurn({ startedAt: this.startedAt, committedAt, endedAt: performance.now(), inputs, events });
    }
    if (!this.anyFired) return;
    this.anyFired = false;
    for (let k = 0; k < DEADLINE_KINDS.length; k++) {
      const n = this.fired[k] as number;
      if (n === 0) continue;
      this.fired[k] = 0;
      this.onTimerFired?.(DEADLINE_KINDS[k] as DeadlineKind, n);
    }
  }
}
