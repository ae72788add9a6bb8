/**
 * Config fuzzer: random YAML-ish configs (known keys with hostile values,
 * unknown keys, random text) through the engine's and the service's parsers.
 * The only outcomes allowed are success or a ConfigError, quickly; a config
 * that parses must respect the bounds (durations ≤ 2^31−1 ms, sizes
 * allocatable) and an engine must start from it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, PresenceEngine, parseConfigYaml } from '../../src/index.js';
import { MAX_CHANGE_INDEX_SIZE, MAX_DURATION_MS } from '../../src/config.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { parseServiceConfigYaml } from '../../service/config.js';
import { FUZZ_TIMEOUT_MS, PROTOTYPE_NAMES, fuzzParams } from './fuzz-runs.js';

const DURATION_KEYS = ['last_active_granularity', 'sync_online_timeout', 'idle_timeout', 'busy_timeout', 'federation_timeout', 'federation_ping_interval', 'timer_period', 'router_timeout'];

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e10, 1e300, Number.MAX_VALUE, Number.MIN_VALUE, -0),
);
const hostileDuration = fc.oneof(
  hostileNumber,
  fc.tuple(fc.stringMatching(/^[0-9]{1,420}$/), fc.constantFrom('', 'ms', 's', 'm', 'h', 'd', 'w', 'y', 'x', ' d')).map(([n, u]) => `${n}${u}`),
  fc.constantFrom('30d', '24d', '25d', '1y', '.inf', '-1s', '1e3', '0x10', ' 5m ', ''),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue(), hostileNumber, hostileDuration, fc.constantFrom(...PROTOTYPE_NAMES));
const key = fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES), fc.string({ maxLength: 12 }));

const presenceSection = fc.dictionary(
  fc.oneof(fc.constantFrom(...DURATION_KEYS, 'change_index_size', 'enabled', 'turns', 'busy_enabled', 'sync_counts_as_activity'), key),
  fc.oneof(hostileDuration, anyValue),
  { maxKeys: 6 },
);
const serviceSection = fc.record(
  {
    max_sync_timeout_ms: hostileNumber,
    read_timeout_ms: hostileNumber,
    max_body_bytes: hostileNumber,
    max_connections: hostileNumber,
    federation: fc.record(
      {
        request_timeout_ms: hostileNumber,
        drop_after_ms: hostileNumber,
        max_items_per_transaction: hostileNumber,
        max_remote_users: hostileNumber,
        max_in_flight_per_peer: hostileNumber,
      },
      { requiredKeys: [] },
    ),
    [PROTOTYPE_NAMES[0] as string]: anyValue,
  },
  { requiredKeys: [] },
);
const configObject = fc.record(
  {
    server_name: fc.oneof(fc.constant('test.local'), fc.string({ maxLength: 20 }), fc.constantFrom(...PROTOTYPE_NAMES)),
    presence: fc.oneof(presenceSection, anyValue),
    rc_presence: fc.oneof(fc.record({ per_user: fc.record({ per_second: hostileNumber, burst_count: hostileNumber }, { requiredKeys: [] }) }), anyValue),
    log: fc.oneof(
      fc.record({ kind: fc.constant('memory'), retain: fc.oneof(hostileNumber, fc.constant('.inf')) }, { requiredKeys: ['kind'] }),
      fc.record({ kind: fc.constant('file'), path: fc.oneof(fc.string(), fc.constantFrom('/proc/self', '/sys', '/dev/null', '')), snapshot_every: hostileNumber }, { requiredKeys: ['kind'] }),
      anyValue,
    ),
    modules: fc.oneof(fc.array(fc.record({ module: fc.string(), config: anyValue }), { maxLength: 2 }), anyValue),
    service: fc.oneof(serviceSection, anyValue),
    extra: anyValue,
  },
  { requiredKeys: [] },
);

/** YAML text: a dumped object, a dumped object with a mangled line, or random text. */
const yamlText = fc.oneof(
  { weight: 6, arbitrary: configObject.map((o) => stringify(o)) },
  { weight: 2, arbitrary: fc.tuple(configObject, fc.nat(), fc.string({ maxLength: 10 })).map(([o, at, junk]) => {
    const lines = stringify(o).split('\n');
    lines.splice(at % (lines.length + 1), 0, junk);
    return lines.join('\n');
  }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },

  { weight: 1, arbitrary: fc.constantFrom('server_name: test.local\npresence: { federation_timeout: 30d }', `server_name: a.b\npresence:\n  router_timeout: ${'9'.repeat(400)}`, 'server_name: a.b\npresence: { change_index_size: 1e10 }', '&a [*a]', 'a: &x [1]\nb: *x') },
);

function outcome(fn: () => unknown): 'ok' | ConfigError {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
}

describe('config fuzzer', () => {
  it(
    'engine and service config parsers: success or ConfigError, quickly; what parses is bounded and starts an engine',
    () => {
      fc.assert(
        // Unknown YAML tags (`!x`) only make the yaml package print warnings; they are left out to keep the output readable.
        fc.property(yamlText.filter((t) => !t.includes('!')), (text) => {
          const t0 = performance.now();
          let engineConfig: ReturnType<typeof parseConfigYaml> | undefined;
          const a = outcome(() => (engineConfig = parseConfigYaml(text)));
          outcome(() => parseServiceConfigYaml(text));
          expect(performance.now() - t0).toBeLessThan(1_000);
          if (a !== 'ok' || engineConfig === undefined) return;
          for (const v of Object.values(engineConfig.timers)) expect(Number.isInteger(v) && v > 0 && v <= MAX_DURATION_MS).toBe(true);
          expect(engineConfig.timerPeriod).toBeLessThanOrEqual(MAX_DURATION_MS);
          expect(engineConfig.routerTimeout).toBeLessThanOrEqual(MAX_DURATION_MS);
          expect(engineConfig.changeIndexSize).toBeLessThanOrEqual(MAX_CHANGE_INDEX_SIZE);
          // Start an engine (in-memory log, no modules: what they load is not the parser's business).
          if (engineConfig.log.kind !== 'memory' || engineConfig.modules.length > 0 || engineConfig.presenceRouter !== undefined || engineConfig.routingModules.length > 0) return;
          if (engineConfig.changeIndexSize > 1_000_000) return; // allocatable, but 16 MB+ per case is slow for a fuzzer
          const engine = new PresenceEngine({ config: engineConfig, clock: new SimulatedClock(), logger: new MemoryLogger() });
          engine.stop();
        }),
        fuzzParams(500, 40_000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
