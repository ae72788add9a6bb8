/** Shared helpers for the federation tests: several engines on one simulated clock. */
import { formatPresence, type PresenceContent } from '../../src/domain/format.js';
import type { UserPresenceState } from '../../src/domain/presence.js';
import type { PresenceEngine } from '../../src/engine.js';
import { connectLoopback, type LoopbackNetwork, type LoopbackOptions } from '../../src/federation/loopback.js';
import { createTestEngine, SimulatedClock, type MemoryLogger } from '../../src/testing/index.js';

export interface Federation {
  readonly clock: SimulatedClock;
  readonly engines: Map<string, PresenceEngine>;
  readonly loggers: Map<string, MemoryLogger>;
  readonly network: LoopbackNetwork;
  engine(server: string): PresenceEngine;
  /** Apply a membership change on every engine (room state reaches every server). */
  join(room: string, user: string): void;
  leave(room: string, user: string): void;
}

export function createFederation(
  servers: readonly string[],
  options: { config?: Record<string, unknown>; loopback?: LoopbackOptions; clock?: SimulatedClock } = {},
): Federation {
  const clock = options.clock ?? new SimulatedClock();
  const engines = new Map<string, PresenceEngine>();
  const loggers = new Map<string, MemoryLogger>();
  for (const s of servers) {
    const t = createTestEngine({ serverName: s, clock, ...(options.config ? { config: options.config } : {}) });
    engines.set(s, t.engine);
    loggers.set(s, t.logger);
  }
  const network = connectLoopback([...engines.values()], options.loopback ?? {});
  const engine = (server: string) => {
    const e = engines.get(server);
    if (e === undefined) throw new Error(`no engine ${server}`);
    return e;
  };
  return {
    clock,
    engines,
    loggers,
    network,
    engine,
    join: (room, user) => {
      for (const e of engines.values()) e.joinRoom(room, user);
    },
    leave: (room, user) => {
      for (const e of engines.values()) e.leaveRoom(room, user);
    },
  };
}

/** What a client would see of a state, without `last_active_ago` (which depends on when it is read). */
export function visible(s: UserPresenceState, now = 0): Omit<PresenceContent, 'last_active_ago'> {
  const { last_active_ago: _ignored, ...rest } = formatPresence(s, now);
  return rest;
}

export function serverOf(userId: string): string {
  return userId.slice(userId.indexOf(':') + 1);
}
