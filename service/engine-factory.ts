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

export function createServiceEngine(options: EngineFactoryOptions): Promise<PresenceEngine> {
  return createPresenceEngineFromConfig({ config: options.raw, baseDir: options.baseDir, clock: options.clock, logger: options.logger });
}
