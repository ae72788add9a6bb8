/**
 * Testing kit (`presence-engine/testing`): a simulated clock, an in-memory log
 * and helpers to build an engine with users and rooms.
 */
import type { PresenceBatch } from '../../streams/sync-notifier.js';
import { presenceConfig } from '../config.js';
import { PresenceEngine, type PresenceEngineOptions } from '../engine.js';
import type { UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import { MemoryLogger } from '../logger.js';
import { SimulatedClock } from './simulated-clock.js';

export { SimulatedClock, flushMicrotasks } from './simulated-clock.js';
export { seededRandom } from './random.js';
export { InMemoryEventLog } from '../log/event-log.js';
export { MemoryLogger } from '../logger.js';

export interface TestEngineOptions {
  serverName?: string;
  /** Extra homeserver config keys (e.g. `{ presence: { busy_enabled: true } }`). */
  config?: Record<string, unknown>;
  /** Rooms to create: room id → member user ids. */
  rooms?: Record<string, readonly string[]>;
  clock?: SimulatedClock;
  log?: PresenceEngineOptions['log'];
  /** Ends ticks for `presence.turns: per_tick` (e.g. a {@link ManualTicks}'s `schedule`); default `setImmediate`. */
  endOfTick?: PresenceEngineOptions['endOfTick'];
}

export interface TestEngine {
  engine: PresenceEngine;
  clock: SimulatedClock;
  logger: MemoryLogger;
}

/**
 * An engine on a simulated clock, with rate limiting relaxed (1000/s) unless
 * the config sets `rc_presence`, and the given rooms joined.
 */
export function createTestEngine(options: TestEngineOptions = {}): TestEngine {
  const clock = options.clock ?? new SimulatedClock();
  const logger = new MemoryLogger();
  const config = presenceConfig(options.serverName ?? 'test.local', {
    rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } },
    ...options.config,
  });
  const engine = new PresenceEngine({
    config,
    clock,
    logger,
    ...(options.log ? { log: options.log } : {}),
    ...(options.endOfTick ? { endOfTick: options.endOfTick } : {}),
  });
  for (const [room, members] of Object.entries(options.rooms ?? {})) for (const m of members) engine.joinRoom(room, m);
  return { engine, clock, logger };
}

/**
 * Event-loop ticks by hand, for engines with `presence.turns: per_tick`: pass
 * `schedule` as the engine's `endOfTick`, make the inputs of a tick, then
 * call `end()` to commit them (what `setImmediate` does in a running process).
 */
export class ManualTicks {
  private pending: (() => void)[] = [];

  /** The `endOfTick` option: remembers the callback until {@link end}. */
  readonly schedule = (closeTurn: () => void): void => {
    this.pending.push(closeTurn);
  };

  /** Callbacks waiting for the end of the tick. */
  get waiting(): number {
    return this.pending.length;
  }

  /** End the tick: run the waiting callbacks (and any they schedule) in order. */
  end(): void {
    while (this.pending.length > 0) {
      const now = this.pending;
      this.pending = [];
      for (const f of now) f();
    }
  }
}

/** Subscribe to a user's sync stream and keep what arrives. */
export function recordSyncStream(engine: PresenceEngine, userId: string) {
  const batches: PresenceBatch[] = [];
  const sub = engine.syncStream(userId).subscribe((b) => batches.push(b));
  return {
    batches,
    /** Last delivered state per changed user, folded over all batches. */
    view(): Map<UserId, UserPresenceState> {
      const m = new Map<UserId, UserPresenceState>();
      for (const b of batches) for (const s of b.events) m.set(s.userId, s);
      return m;
    },
    stop: () => sub.unsubscribe(),
  };
}
