/**
 * Build a running engine from a homeserver config: parse it (YAML file, YAML
 * text, a raw object or an already parsed config), create the engine and load
 * its presence modules (src/router/load-modules.ts).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import type { Clock } from '../clock.js';
import { parseConfigYaml, toPresenceConfig, type HomeserverConfigInput, type PresenceConfig } from '../config.js';
import { PresenceEngine } from '../engine.js';
import { ConfigError } from '../errors.js';
import type { EventLog } from '../log/event-log.js';
import type { Logger } from '../logger.js';
import { loadPresenceModules } from '../router/load-modules.js';
import { openDurableEngine } from './durable.js';
import { checkLogDirectory } from '../log/log-path.js';

export interface CreateFromConfigOptions {
  /** A homeserver.yaml to read. Relative module paths resolve against its directory. */
  readonly configPath?: string | undefined;
  /** YAML text of a homeserver config. */
  readonly configText?: string | undefined;
  /** A parsed config (`parseConfig`) or a raw homeserver config object. */
  readonly config?: PresenceConfig | HomeserverConfigInput | Record<string, unknown> | undefined;
  /** Directory relative module paths resolve against. Default: the config file's directory, else `process.cwd()`. */
  readonly baseDir?: string | undefined;
  readonly clock?: Clock | undefined;
  readonly log?: EventLog | undefined;
  readonly logger?: Logger | undefined;
}

/**
 * Create an engine from exactly one of `configPath`, `configText` or `config`,
 * and load the presence modules it configures (`modules`, then
 * `presence.presence_router`, then `presence.routing_modules`).
 * @throws ConfigError when the config is invalid or a module cannot be loaded
 *   (the engine is stopped before the error is thrown).
 */
export async function createPresenceEngineFromConfig(options: CreateFromConfigOptions): Promise<PresenceEngine> {
  const given = [options.configPath, options.configText, options.config].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new ConfigError('', `pass exactly one of configPath, configText or config (got ${given})`);
  }
  let config: PresenceConfig;
  let baseDir = options.baseDir;
  if (options.configPath !== undefined) {
    const file = resolvePath(options.configPath);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError('', `cannot read the config file ${file}: ${(error as Error).message}`, { cause: error });
    }
    config = parseConfigYaml(text);
    baseDir ??= dirname(file);
  } else if (options.configText !== undefined) {
    config = parseConfigYaml(options.configText);
  } else {
    config = toPresenceConfig(options.config as PresenceConfig | HomeserverConfigInput);
  }
  const dir = baseDir ?? process.cwd();
  let engine: PresenceEngine;
  if (options.log === undefined && config.log.kind === 'file') {
    // `log: { kind: file, path }`: a durable engine (snapshot + tail restored, periodic snapshots).
    const path = resolvePath(dir, config.log.path);
    checkLogDirectory(path);
    const durable = openDurableEngine({
      config,
      path,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    engine = durable.engine;
    engine.onClose(() => durable.close());
  } else if (options.log === undefined && config.log.kind === 'redis') {
    throw new ConfigError(
      'log.kind',
      'a redis log needs one engine process per partition owner: start it with RedisPresenceNode (docs/distributed.md), not createPresenceEngineFromConfig',
    );
  } else {
    engine = new PresenceEngine({
      config,
      ...(options.clock !== undefined ? { clock: options.clock } : {}),
      ...(options.log !== undefined ? { log: options.log } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
  }
  try {
    await loadPresenceModules(engine, config, { baseDir: dir });
  } catch (error) {
    await engine.close();
    throw error;
  }
  return engine;
}
