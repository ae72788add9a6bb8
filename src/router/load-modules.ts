/**
 * Start-up loading of presence modules, the three interface generations
 * (docs/modules.md):
 *
 * 1. `modules: [{ module, config }]`: generic modules, constructed in order as
 *    `new Module(config, moduleApi)`; presence routers among them call
 *    `moduleApi.registerPresenceRouterCallbacks({ getUsersForStates, getInterestedUsers })`.
 * 2. `presence.presence_router: { module, config }`: the legacy class
 *    interface; the instance's `getUsersForStates`/`getInterestedUsers` are
 *    registered after every generic module (spec §4.1).
 * 3. `presence.routing_modules: [{ module, config }]`: the early
 *    rooms-and-users interface (`getRoomsAndUsersForStates`), adapted and
 *    registered last.
 *
 * A module specifier is a package name or a path relative to the config file's
 * directory, with the export after `#` (`./routers/example.js#ExampleRouter`);
 * without `#` the default export is used. If the class has a static
 * `parseConfig(configDict)`, its (possibly async) result is the config.
 * Everything that goes wrong here is a {@link ConfigError} naming the config path.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ModuleEntry, PresenceConfig } from '../config.js';
import type { PresenceModuleHost } from './module-host.js';
import { ConfigError, ModuleError } from '../errors.js';
import { createModuleApi, moduleLogger, type PresenceModuleApi } from './module-api.js';
import { describeThrown, type PresenceRouterCallbacks } from './presence-router.js';
import { adaptRoutingModule, type RoomsAndUsersRoutingModule } from './routing-modules.js';

/** Which of the three interfaces a loaded module was configured as. */
export type PresenceModuleKind = 'module' | 'presence_router' | 'routing_module';

export interface LoadedPresenceModule {
  readonly kind: PresenceModuleKind;
  /** Config path of the entry, e.g. `modules[0]` or `presence.presence_router`. */
  readonly path: string;
  /** The module specifier (also the name used in log lines). */
  readonly name: string;
  /** The constructed module instance. */
  readonly instance: object;
}

export interface LoadPresenceModulesOptions {
  /** Directory relative module paths are resolved against (the config file's directory). Default: `process.cwd()`. */
  readonly baseDir?: string | undefined;
}

/** A module class as the loader sees it. */
interface ModuleClass {
  new (config: unknown, api: PresenceModuleApi): object;
  parseConfig?: (config: Record<string, unknown>) => unknown;
}

/**
 * Load and construct every configured presence module, registering router
 * callbacks with `engine`. Order: `modules`, then `presence.presence_router`,
 * then `presence.routing_modules`.
 * @throws ConfigError naming the offending config path (`modules[1].module`,
 *   `presence.presence_router.config`, …).
 */
export async function loadPresenceModules(
  engine: PresenceModuleHost,
  config: Pick<PresenceConfig, 'modules' | 'presenceRouter' | 'routingModules'> = engine.config,
  options: LoadPresenceModulesOptions = {},
): Promise<LoadedPresenceModule[]> {
  const baseDir = options.baseDir ?? process.cwd();
  const loaded: LoadedPresenceModule[] = [];
  for (const [i, entry] of config.modules.entries()) {
    loaded.push(await construct(engine, 'module', `modules[${i}]`, entry, baseDir));
  }
  if (config.presenceRouter !== undefined) {
    const m = await construct(engine, 'presence_router', 'presence.presence_router', config.presenceRouter, baseDir);
    registerClassRouter(engine, m);
    loaded.push(m);
  }
  for (const [i, entry] of config.routingModules.entries()) {
    const m = await construct(engine, 'routing_module', `presence.routing_modules[${i}]`, entry, baseDir);
    registerRoutingModule(engine, m);
    loaded.push(m);
  }
  return loaded;
}

async function construct(
  engine: PresenceModuleHost,
  kind: PresenceModuleKind,
  path: string,
  entry: ModuleEntry,
  baseDir: string,
): Promise<LoadedPresenceModule> {
  const name = entry.module;
  const Export = await importExport(entry.module, `${path}.module`, baseDir);
  const raw: Record<string, unknown> = entry.config ?? {};
  let moduleConfig: unknown = raw;
  if (typeof Export.parseConfig === 'function') {
    try {
      moduleConfig = await Export.parseConfig(raw);
    } catch (error) {
      throw configErrorFromParse(`${path}.config`, name, error);
    }
  } else if (typeof (Export as { parse_config?: unknown }).parse_config === 'function') {
    engine.logger.warn(`${path}: ${name} has a static parse_config but no parseConfig; the raw config is passed (methods are camelCase here)`);
  }
  const api = createModuleApi(engine, name);
  let instance: object;
  try {
    instance = new Export(moduleConfig, api);
  } catch (error) {
    const what = error instanceof ModuleError ? error.message : `its constructor threw ${describeThrown(error)}`;
    throw new ConfigError(`${path}.module`, `${name} could not be started: ${what}`, { cause: error });
  }
  if (typeof instance !== 'object' || instance === null) {
    throw new ConfigError(`${path}.module`, `${name} did not construct an object`);
  }
  return { kind, path, name, instance };
}

/** The legacy class interface: register the instance's methods (both or neither). */
function registerClassRouter(engine: PresenceModuleHost, m: LoadedPresenceModule): void {
  const inst = m.instance as Record<string, unknown>;
  const forStates = inst['getUsersForStates'];
  const interested = inst['getInterestedUsers'];
  const hasForStates = typeof forStates === 'function';
  const hasInterested = typeof interested === 'function';
  if (hasForStates !== hasInterested) {
    const [given, missing] = hasForStates ? ['getUsersForStates', 'getInterestedUsers'] : ['getInterestedUsers', 'getUsersForStates'];
    throw new ConfigError(
      `${m.path}.module`,
      `${m.name} implements ${given} but not ${missing}; a presence router must implement both methods or neither`,
    );
  }
  if (!hasForStates) {
    const snake = typeof inst['get_users_for_states'] === 'function' || typeof inst['get_interested_users'] === 'function';
    engine.logger.warn(
      `${m.path}: ${m.name} implements neither getUsersForStates nor getInterestedUsers, so it routes nothing` +
        (snake ? ' (it has snake_case methods: rename them to camelCase)' : ''),
    );
    return;
  }
  const fs = forStates as PresenceRouterCallbacks['getUsersForStates'];
  const iu = interested as PresenceRouterCallbacks['getInterestedUsers'];
  engine.registerPresenceRouter(m.name, {
    getUsersForStates: (states) => fs.call(inst, states),
    getInterestedUsers: (userId) => iu.call(inst, userId),
  });
}

/** The rooms-and-users interface: adapt and register. */
function registerRoutingModule(engine: PresenceModuleHost, m: LoadedPresenceModule): void {
  const inst = m.instance as Partial<RoomsAndUsersRoutingModule>;
  if (typeof inst.getRoomsAndUsersForStates !== 'function') {
    throw new ConfigError(`${m.path}.module`, `${m.name} does not implement getRoomsAndUsersForStates(states), which a routing module must`);
  }
  if (inst.getInterestedUsers !== undefined && typeof inst.getInterestedUsers !== 'function') {
    throw new ConfigError(`${m.path}.module`, `${m.name}: getInterestedUsers must be a method`);
  }
  if (inst.getInterestedUsers === undefined) {
    engine.logger.warn(
      `${m.path}: ${m.name} does not implement getInterestedUsers: what it routes reaches remote servers and ALL_USERS listeners, ` +
        'but local users only read presence of users they share a room with or are interested in (docs/modules.md)',
    );
  }
  const logger = moduleLogger(engine.logger, m.name);
  engine.registerPresenceRouter(m.name, adaptRoutingModule(inst as RoomsAndUsersRoutingModule, engine, logger, m.name));
}

/** Split `spec#Export`, import the module and pick the export. */
async function importExport(spec: string, path: string, baseDir: string): Promise<ModuleClass> {
  const hash = spec.lastIndexOf('#');
  const specifier = hash < 0 ? spec : spec.slice(0, hash);
  const exportName = hash < 0 ? 'default' : spec.slice(hash + 1);
  if (specifier.length === 0 || exportName.length === 0) {
    throw new ConfigError(path, `${JSON.stringify(spec)} is not a module specifier; write a package name or a relative path, optionally with #ExportName`);
  }
  const url = resolveSpecifier(specifier, baseDir);
  if (url === undefined) {
    throw new ConfigError(path, `module ${JSON.stringify(specifier)} was not found (relative paths are resolved against ${baseDir})`);
  }
  let ns: Record<string, unknown>;
  try {
    ns = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (url === specifier && (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && describeThrown(error).includes(specifier)) {
      const hint = /^[\w-]+(\.[\w-]+)+$/.test(specifier) ? '; this looks like a Python dotted path: write a package name or ./path/to/file.js#ExportName' : '';
      throw new ConfigError(path, `module ${JSON.stringify(specifier)} was not found (no such package next to ${baseDir})${hint}`, { cause: error });
    }
    throw new ConfigError(path, `module ${JSON.stringify(specifier)} failed to load: ${describeThrown(error)}`, { cause: error });
  }
  const exported = ns[exportName];
  if (exported === undefined) {
    const names = Object.keys(ns).filter((k) => k !== '__esModule');
    throw new ConfigError(
      path,
      `module ${JSON.stringify(specifier)} has no ${exportName === 'default' ? 'default export' : `export named ${JSON.stringify(exportName)}`}` +
        ` (its exports: ${names.length > 0 ? names.join(', ') : 'none'})`,
    );
  }
  if (typeof exported !== 'function') {
    throw new ConfigError(path, `export ${JSON.stringify(exportName)} of ${JSON.stringify(specifier)} is ${typeof exported}, not a class`);
  }
  return exported as ModuleClass;
}

function isRelative(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..';
}

/** A URL (or, for a package only `import()` can resolve, the bare name) for the module; `undefined` when a path does not exist. */
function resolveSpecifier(specifier: string, baseDir: string): string | undefined {
  if (specifier.startsWith('file:')) return specifier;
  if (isRelative(specifier) || isAbsolute(specifier)) {
    const file = resolvePath(baseDir, specifier);
    // `./x.js` may name a TypeScript source (`x.ts`) under tsx or vitest; an extensionless path may name either.
    const candidates = [file, file.replace(/\.js$/, '.ts'), file.replace(/\.mjs$/, '.mts'), `${file}.js`, `${file}.ts`];
    const found = candidates.find((f) => existsSync(f) && statSync(f).isFile());
    return found === undefined ? undefined : pathToFileURL(found).href;
  }
  // A package: look next to the config first, then from this library's own location.
  for (const from of [join(baseDir, 'noop.js'), import.meta.url]) {
    try {
      const resolved = createRequire(from).resolve(specifier);
      return isBuiltin(resolved) ? resolved : pathToFileURL(resolved).href;
    } catch {
      // try the next location
    }
  }
  return specifier; // e.g. an ESM-only package without a `require` condition: let import() resolve it
}

/** Turn an error thrown by `parseConfig` into a ConfigError under `path`. */
function configErrorFromParse(path: string, name: string, error: unknown): ConfigError {
  if (error instanceof ConfigError) {
    const prefix = `config error at ${error.path || '<root>'}: `;
    const message = error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
    return new ConfigError(error.path ? `${path}.${error.path}` : path, message, { cause: error });
  }
  const issues = (error as { issues?: unknown } | null)?.issues;
  if (Array.isArray(issues) && issues.length > 0) {
    const first = issues[0] as { path?: unknown; message?: unknown };
    const sub = Array.isArray(first.path) ? first.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') : '';
    return new ConfigError(sub ? `${path}.${sub}`.replace(/\.\[/g, '[') : path, String(first.message ?? 'invalid'), { cause: error });
  }
  return new ConfigError(path, `${name}.parseConfig rejected the config: ${describeThrown(error)}`, { cause: error });
}
