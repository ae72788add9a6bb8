/**
 * Build the engine for the service from the (already validated) config object
 * with the library's config loader, which also loads the presence router
 * modules (`modules:`, `presence.presence_router`, `presence.routing_modules`)
 * relative to the config file's directory.
 */
import type { Clock, Logger, PresenceEngine } from '../src/index.js';
import { createPresenceEngineFromConfig } from '../src/hosting/load.js';

export interface EngineFactoryOptions {
  readonly raw: Record<string, unknown>;
  /** Directory that relative module paths in the config are resolved against. */
  readonly baseDir: string;
  readonly clock?: Clock | undefined;
  readonly logger: Logger;
}

/**
 * The service applies `rc_presence` itself, one bucket per endpoint
 * (presence-limits.ts); the engine's own limiter, one bucket for both, is
 * lifted so it never refuses first.
 */
const ENGINE_RATE_LIMIT_LIFTED = { per_user: { per_second: 1e9, burst_count: 1e9 } };

export function createServiceEngine(options: EngineFactoryOptions): Promise<PresenceEngine> {
  const config = { ...options.raw, rc_presence: ENGINE_RATE_LIMIT_LIFTED };
  return createPresenceEngineFromConfig({ config, baseDir: options.baseDir, clock: options.clock, logger: options.logger });
}
