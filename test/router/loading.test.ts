/**
 * Loading presence modules from config: the three interfaces, specifiers,
 * parseConfig, start-up errors (each a ConfigError naming its config path) and
 * createPresenceEngineFromConfig.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, createModuleApi, createPresenceEngineFromConfig, loadPresenceModules, ModuleError, parseConfig } from '../../src/index.js';
import { createTestEngine, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, 'fixtures');
const MOD = './modules.ts';

/** A test engine whose config has `config` merged in, with its modules loaded from the fixtures directory. */
async function load(config: Record<string, unknown>) {
  const t = createTestEngine({ serverName: 'test.local', config });
  const loaded = await loadPresenceModules(t.engine, t.engine.config, { baseDir: FIXTURES });
  return { ...t, loaded, infos: () => t.logger.entries.filter((e) => e.level === 'info').map((e) => e.message) };
}

async function configError(config: Record<string, unknown>): Promise<ConfigError> {
  const error = await load(config).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

describe('module specifiers', () => {
  it('loads a named export (after #) relative to baseDir, and the default export without #', async () => {
    const { loaded, infos } = await load({ modules: [{ module: `${MOD}#Recorder`, config: { label: 'a' } }, { module: MOD, config: { x: 1 } }] });
    expect(loaded.map((m) => [m.kind, m.path, m.name])).toEqual([
      ['module', 'modules[0]', './modules.ts#Recorder'],
      ['module', 'modules[1]', './modules.ts'],
    ]);
    expect(infos()).toEqual(['[module ./modules.ts#Recorder] constructed a', '[module ./modules.ts] constructed default with {"x":1}']);
  });

  it('maps ./x.js to the TypeScript source x.ts and accepts an extensionless path', async () => {
    const { loaded } = await load({ modules: [{ module: './modules.js#RegistersNothing' }, { module: './modules#RegistersNothing' }] });
    expect(loaded).toHaveLength(2);
  });

  it('passes {} when the entry has no config', async () => {
    const { infos } = await load({ modules: [{ module: MOD }] });
    expect(infos()).toEqual(['[module ./modules.ts] constructed default with {}']);
  });

  it('a missing file is a ConfigError at modules[i].module', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#RegistersNothing` }, { module: './nope.ts#X' }] });
    expect(e.path).toBe('modules[1].module');
    expect(e.message).toMatch(/"\.\/nope\.ts" was not found/);
  });

  it('a missing package is a ConfigError, with a hint for Python dotted paths', async () => {
    const e = await configError({ presence: { presence_router: { module: 'my_module.ExamplePresenceRouter' } } });
    expect(e.path).toBe('presence.presence_router.module');
    expect(e.message).toMatch(/was not found/);
    expect(e.message).toMatch(/Python dotted path/);
  });

  it('resolves package names (from baseDir, then from the library) and Node built-ins', async () => {
    const zod = await configError({ modules: [{ module: 'zod#z' }] });
    expect(zod.message).toMatch(/export "z" of "zod" is object, not a class/);
    const builtin = await configError({ modules: [{ module: 'node:events#nope' }] });
    expect(builtin.message).toMatch(/no export named "nope"/);
    const { loaded } = await load({ modules: [{ module: 'node:events#EventEmitter' }] });
    expect(loaded[0]?.instance.constructor.name).toBe('EventEmitter');
  });

  it('a missing export names the module and lists its exports', async () => {
    const e = await configError({ presence: { presence_router: { module: `${MOD}#Nope` } } });
    expect(e.path).toBe('presence.presence_router.module');
    expect(e.message).toMatch(/no export named "Nope"/);
    expect(e.message).toMatch(/Recorder/);
  });

  it('an export that is not a class is a ConfigError', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#notAClass` }] });
    expect(e.path).toBe('modules[0].module');
    expect(e.message).toMatch(/number, not a class/);
  });

  it('a module that throws while being imported is a ConfigError', async () => {
    const e = await configError({ presence: { routing_modules: [{ module: './broken-import.ts#X' }] } });
    expect(e.path).toBe('presence.routing_modules[0].module');
    expect(e.message).toMatch(/failed to load: .*broken at import time/);
  });

  it('an empty export name is rejected', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#` }] });
    expect(e.path).toBe('modules[0].module');
  });
});

describe('construction and parseConfig', () => {
  it('a constructor that throws is a ConfigError at .module carrying the cause', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#RegistersNothing` }, { module: `${MOD}#ThrowingConstructor` }] });
    expect(e.path).toBe('modules[1].module');
    expect(e.message).toMatch(/cannot start: no database/);
    expect((e.cause as Error).message).toBe('cannot start: no database');
  });

  it("parseConfig's result becomes the config of the class router", async () => {
    const { infos, loaded } = await load({ presence: { presence_router: { module: `${MOD}#ClassRouter`, config: { label: 'c' } } } });
    expect(infos()).toContain('[module ./modules.ts#ClassRouter] constructed c parsed=true');
    expect((loaded[0]?.instance as { config: unknown }).config).toEqual({ label: 'c', to: [], parsed: true });
  });

  it('an async parseConfig is awaited', async () => {
    const { infos } = await load({ modules: [{ module: `${MOD}#AsyncParseConfig`, config: { label: 'x' } }] });
    expect(infos()).toEqual(['[module ./modules.ts#AsyncParseConfig] constructed async-x']);
  });

  it('a parseConfig that throws is a ConfigError at presence.presence_router.config', async () => {
    const e = await configError({ presence: { presence_router: { module: `${MOD}#ThrowingParseConfig`, config: {} } } });
    expect(e.path).toBe('presence.presence_router.config');
    expect(e.message).toMatch(/missing key "token"/);
  });

  it('a ConfigError from parseConfig keeps its own path under .config', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#ConfigErrorParseConfig` }] });
    expect(e.path).toBe('modules[0].config.always_send_to_users[1]');
    expect(e.message).toBe('config error at modules[0].config.always_send_to_users[1]: must be a user id');
  });

  it('a zod error from parseConfig names the offending key', async () => {
    const e = await configError({ presence: { routing_modules: [{ module: `${MOD}#ZodParseConfig`, config: { users: ['@a:x', 'bob'] } }] } });
    expect(e.path).toBe('presence.routing_modules[0].config.users[1]');
  });
});

describe('registration rules', () => {
  it('registering only getUsersForStates fails start-up with a clear error', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#RegistersNothing` }, { module: `${MOD}#OnlyForStates` }] });
    expect(e.path).toBe('modules[1].module');
    expect(e.message).toMatch(/registered getUsersForStates without getInterestedUsers/);
    expect(e.cause).toBeInstanceOf(ModuleError);
  });

  it('registering only getInterestedUsers fails start-up too', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#OnlyInterestedCallback` }] });
    expect(e.message).toMatch(/registered getInterestedUsers without getUsersForStates/);
  });

  it('unknown (snake_case) callback names are rejected', async () => {
    const e = await configError({ modules: [{ module: `${MOD}#SnakeCaseCallbacks` }] });
    expect(e.message).toMatch(/unknown callback\(s\) "get_users_for_states"/);
  });

  it('registering neither is allowed and routes nothing', async () => {
    const { engine, infos } = await load({ modules: [{ module: `${MOD}#RegistersNothing` }] });
    expect(infos()).toEqual(['[module ./modules.ts#RegistersNothing] constructed nothing-registered']);
    expect(engine.router.active).toBe(false);
  });

  it('a class router implementing only one of the pair fails start-up', async () => {
    const e = await configError({ presence: { presence_router: { module: `${MOD}#HalfClassRouter` } } });
    expect(e.path).toBe('presence.presence_router.module');
    expect(e.message).toMatch(/implements getInterestedUsers but not getUsersForStates/);
  });

  it('a class router implementing neither is loaded with a warning and routes nothing', async () => {
    const { engine, logger } = await load({ presence: { presence_router: { module: `${MOD}#EmptyClassRouter` } } });
    expect(engine.router.active).toBe(false);
    expect(logger.warnings().join('\n')).toMatch(/implements neither getUsersForStates nor getInterestedUsers/);
  });

  it('a routing module without getRoomsAndUsersForStates fails start-up', async () => {
    const e = await configError({ presence: { routing_modules: [{ module: `${MOD}#RoomsRouter` }, { module: `${MOD}#NotARoutingModule` }] } });
    expect(e.path).toBe('presence.routing_modules[1].module');
    expect(e.message).toMatch(/does not implement getRoomsAndUsersForStates/);
  });

  it('registering one of the pair after start-up throws a ModuleError to the caller', () => {
    const { engine } = createTestEngine();
    const api = createModuleApi(engine, 'late');
    expect(() => api.registerPresenceRouterCallbacks({ getInterestedUsers: () => new Set<string>() })).toThrow(ModuleError);
    expect(() => api.registerPresenceRouterCallbacks({ getUsersForStates: 5, getInterestedUsers: () => new Set<string>() } as never)).toThrow(
      /getUsersForStates must be a function/,
    );
    expect(engine.router.active).toBe(false);
  });
});

describe('order: modules, then the class router, then routing modules', () => {
  it('constructs and calls in that order, whatever the order of the config keys', async () => {
    const { engine, infos } = await load({
      presence: {
        routing_modules: [{ module: `${MOD}#RoomsRouter`, config: { label: 'r' } }],
        presence_router: { module: `${MOD}#ClassRouter`, config: { label: 'class' } },
      },
      modules: [
        { module: `${MOD}#Recorder`, config: { label: 'm0' } },
        { module: `${MOD}#Recorder`, config: { label: 'm1' } },
      ],
    });
    expect(infos().map((m) => m.replace(/^\[module [^\]]+\] /, ''))).toEqual([
      'constructed m0',
      'constructed m1',
      'constructed class parsed=true',
      'constructed routing r',
    ]);
    await engine.getNewEvents('@u:test.local');
    const calls = infos().slice(4).map((m) => m.replace(/^\[module [^\]]+\] /, ''));
    expect(calls).toEqual(['getInterestedUsers m0', 'getInterestedUsers m1', 'getInterestedUsers class']);
  });

  it('the first ALL_USERS answer stops the later getInterestedUsers callbacks (spec 4.3)', async () => {
    const { engine, infos } = await load({
      modules: [
        { module: `${MOD}#Recorder`, config: { label: 'm0' } },
        { module: `${MOD}#Recorder`, config: { label: 'm1', all: ['@u:test.local'] } },
        { module: `${MOD}#Recorder`, config: { label: 'm2' } },
      ],
    });
    await engine.getNewEvents('@u:test.local');
    const calls = infos().filter((m) => m.includes('getInterestedUsers'));
    expect(calls.map((m) => m.split(' ').pop())).toEqual(['m0', 'm1']);
  });
});

describe('createPresenceEngineFromConfig', () => {
  const examples = join(HERE, '..', '..', 'examples');

  it('reads a YAML file and resolves modules against its directory', async () => {
    const engine = await createPresenceEngineFromConfig({ configPath: join(examples, 'router-callbacks.yaml'), clock: new SimulatedClock(), logger: new MemoryLogger() });
    expect(engine.config.serverName).toBe('example.org');
    expect(engine.router.active).toBe(true);
    engine.stop();
  });

  it('accepts YAML text with a baseDir', async () => {
    const yaml = `server_name: a.test\nmodules:\n  - module: ${MOD}#Recorder\n    config: { label: t }\n`;
    const logger = new MemoryLogger();
    const engine = await createPresenceEngineFromConfig({ configText: yaml, baseDir: FIXTURES, logger, clock: new SimulatedClock() });
    expect(logger.entries.map((e) => e.message)).toContain('[module ./modules.ts#Recorder] constructed t');
    engine.stop();
  });

  it('accepts a raw object or a parsed config', async () => {
    const raw = { server_name: 'b.test', presence: { presence_router: { module: `${MOD}#ClassRouter` } } };
    const a = await createPresenceEngineFromConfig({ config: raw, baseDir: FIXTURES, logger: new MemoryLogger() });
    const b = await createPresenceEngineFromConfig({ config: parseConfig(raw), baseDir: FIXTURES, logger: new MemoryLogger() });
    expect([a.router.active, b.router.active]).toEqual([true, true]);
    a.stop();
    b.stop();
  });

  it('requires exactly one config source', async () => {
    await expect(createPresenceEngineFromConfig({})).rejects.toBeInstanceOf(ConfigError);
    await expect(createPresenceEngineFromConfig({ configText: 'server_name: a.test', config: { server_name: 'a.test' } })).rejects.toThrow(/exactly one/);
  });

  it('reports an unreadable file and invalid YAML as ConfigErrors', async () => {
    await expect(createPresenceEngineFromConfig({ configPath: join(FIXTURES, 'missing.yaml') })).rejects.toThrow(/cannot read the config file/);
    await expect(createPresenceEngineFromConfig({ configText: 'server_name: [' })).rejects.toBeInstanceOf(ConfigError);
  });

  it('a module error surfaces as a ConfigError naming its path', async () => {
    const yaml = `server_name: a.test\nmodules:\n  - module: ${MOD}#OnlyForStates\n`;
    await expect(createPresenceEngineFromConfig({ configText: yaml, baseDir: FIXTURES, logger: new MemoryLogger() })).rejects.toMatchObject({
      path: 'modules[0].module',
    });
  });
});
