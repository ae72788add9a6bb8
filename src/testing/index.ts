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
  const engine = new PresenceEngine({ config, clock, logger, ...(options.log ? { log: options.log } : {}) });
  for (const [room, members] of Object.entries(options.rooms ?? {})) for (const m of members) engine.joinRoom(room, m);
  return { engine, clock, logger };
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
