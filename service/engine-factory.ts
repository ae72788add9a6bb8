/**
 * Build the engine for the service from the (already validated) config
 * object, as the library's `createPresenceEngineFromConfig` does (durable
 * engine for `log: { kind: file }`, then the presence router modules, loaded
 * relative to the config file's directory), with the service's probes
 * attached: log append/fsync and snapshot timings, router call timings and
 * start-up progress lines (service/ops/probes.ts).
 */
import { resolve as resolvePath } from 'node:path';
import {
  ConfigError,
  InMemoryEventLog,
  PresenceEngine,
  loadPresenceModules,
  openDurableEngine,
  parseConfig,
  type Clock,
  type EventLog,
  type Logger,
  type PresenceConfig,
} from '../src/index.js';
import { DEFAULT_MEMORY_LOG_RETAIN } from '../src/config.js';
import { checkLogDirectory } from '../src/log/log-path.js';
import { EngineProbes, attachProbes } from './ops/probes.js';
import { TimedEventLog } from './ops/timed-log.js';
import { timeRouterRegistrations } from './ops/timed-router.js';

export interface EngineFactoryOptions {
  readonly raw: Record<string, unknown>;
  /** Directory that relative module paths in the config are resolved against. */
  readonly baseDir: string;
  readonly clock?: Clock | undefined;
  readonly logger: Logger;
  /** Recipients of past deliveries kept for explain (`service.explain.record_deliveries`). */
  readonly recordDeliveries?: number;
  /** Distributed mode (`log: { kind: redis }`): start the process's RedisPresenceNode and return its engine. */
  readonly openRedis?: (config: PresenceConfig) => Promise<PresenceEngine>;
}

export async function createServiceEngine(options: EngineFactoryOptions): Promise<PresenceEngine> {
  const { logger } = options;
  // `rc_presence` is the engine's: one bucket for explicit changes, one for syncs (as Synapse's servlets).
  const config = parseConfig(options.raw);
  const probes = new EngineProbes();
  const decorate = (log: EventLog): TimedEventLog => {
    const timed = new TimedEventLog(log, {
      onAppend: (ms) => probes.logAppend.observe(ms / 1000),
      onReadProgress: (read, done) => logger.info(done ? `log: replayed ${read} entries` : `log: replaying… ${read} entries so far`),
    });
    probes.log = timed;
    return timed;
  };
  let engine: PresenceEngine;
  if (config.log.kind === 'file') {
    const path = resolvePath(options.baseDir, config.log.path);
    checkLogDirectory(path);
    const durable = openDurableEngine({
      config,
      path,
      logger,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      ...probes.hooks,
      ...(options.recordDeliveries !== undefined ? { recordDeliveries: options.recordDeliveries } : {}),
      onFsync: (ms) => probes.fsynced(ms),
      onSnapshot: (info, reason) => probes.snapshot.observe({ reason }, info.ms / 1000),
      decorateLog: (log) => {
        probes.fileLog = log;
        return decorate(log);
      },
    });
    engine = durable.engine;
    engine.onClose(() => durable.close());
  } else if (config.log.kind === 'redis') {
    if (options.openRedis === undefined) throw new ConfigError('log.kind', 'a redis log needs service.distributed (docs/service.md, "Distributed mode")');
    engine = await options.openRedis(config);
  } else {
    const retain = config.log.retain ?? DEFAULT_MEMORY_LOG_RETAIN;
    engine = new PresenceEngine({ config, logger, ...probes.hooks, ...(options.recordDeliveries !== undefined ? { recordDeliveries: options.recordDeliveries } : {}), log: decorate(new InMemoryEventLog(0, { retain })), ...(options.clock !== undefined ? { clock: options.clock } : {}) });
  }
  attachProbes(engine, probes);
  timeRouterRegistrations(engine, (module, callback, seconds) => probes.routerCall.observe({ module, callback }, seconds));
  try {
    await loadPresenceModules(engine, config, { baseDir: options.baseDir });
  } catch (error) {
    await engine.close();
    throw error;
  }
  return engine;
}
