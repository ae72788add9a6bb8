/**
 * Config values that would break timers or allocation are ConfigErrors at
 * parse time, naming the key and the limit (issue 19, defect 5).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, createPresenceEngineFromConfig, parseConfig } from '../../src/index.js';
import { MemoryLogger } from '../../src/testing/index.js';
import { parseServiceConfig } from '../../service/config.js';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const base = { server_name: 'test.local' };

describe('duration bounds', () => {
  it.each([
    ['federation_timeout', '30d', '30d'],
    ['federation_timeout', '2^31', 2 ** 31],
    ['idle_timeout', '1y', '1y'],
    ['timer_period', '25d', '25d'],
    ['router_timeout', 'a 400-digit string', `${'9'.repeat(400)}`],
    ['sync_online_timeout', 'a 400-digit string with ms', `${'9'.repeat(400)}ms`],
    ['busy_timeout', '1e300', 1e300],
  ])('presence.%s: %s is refused with the key and the limit', (key, _label, value) => {
    const e = configError(() => parseConfig({ ...base, presence: { [key]: value } }));
    expect(e.path).toBe(`presence.${key}`);
    expect(e.message).toMatch(/2147483647/);
  });

  it('the largest timer Node supports is accepted', () => {
    const c = parseConfig({ ...base, presence: { federation_timeout: 2 ** 31 - 1, federation_ping_interval: '24d' } });
    expect(c.timers.federationTimeout).toBe(2 ** 31 - 1);
  });

  it.each(['max_sync_timeout_ms'])('service.%s is bounded', (key) => {
    const e = configError(() => parseServiceConfig({ ...base, service: { [key]: 10 ** 12 } }));
    expect(e.path).toBe(`service.${key}`);
    expect(e.message).toMatch(/2147483647/);
  });

  it.each(['request_timeout_ms', 'initial_backoff_ms', 'max_backoff_ms', 'drop_after_ms'])('service.federation.%s is bounded', (key) => {
    const e = configError(() => parseServiceConfig({ ...base, service: { federation: { [key]: 2 ** 31 } } }));
    expect(e.path).toBe(`service.federation.${key}`);
  });
});

describe('size bounds', () => {
  it('change_index_size: 1e10 is a ConfigError at parse (not a RangeError at start-up)', () => {
    const e = configError(() => parseConfig({ ...base, presence: { change_index_size: 1e10 } }));
    expect(e.path).toBe('presence.change_index_size');
    expect(e.message).toMatch(/at most 10000000/);
  });
});

describe('log.path', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const open = (path: string) =>
    createPresenceEngineFromConfig({ config: { ...base, log: { kind: 'file', path } }, logger: new MemoryLogger() });

  /** The start-up's outcome within `ms`: never a hang. */
  async function outcome(path: string, ms = 5_000): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise((resolve) => (timer = setTimeout(() => resolve('hang'), ms)));
    try {
      const r = await Promise.race([open(path).then(async (e) => (await e.close(), 'started')), hang]);
      return r;
    } catch (error) {
      return error;
    } finally {
      clearTimeout(timer);
    }
  }

  it.each(['/proc/self', '/proc/self/fd/0', '/sys/kernel/presence-log', '/dev/null', '/dev/presence-log'])(
    '%s (a kernel pseudo-filesystem) is refused with a ConfigError naming the path',
    async (path) => {
      const r = await outcome(path);
      expect(r).toBeInstanceOf(ConfigError);
      expect((r as ConfigError).path).toBe('log.path');
      expect((r as ConfigError).message).toContain(path.split('/')[1] as string);
    },
  );

  it('a path under a regular file is a ConfigError with the path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-log-path-'));
    dirs.push(dir);
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const fifo = join(dir, 'a-fifo');
    execFileSync('mkfifo', [fifo]);
    for (const path of [file, join(file, 'log'), fifo]) {
      const r = await outcome(path);
      expect(r).toBeInstanceOf(ConfigError);
      expect((r as ConfigError).path).toBe('log.path');
      expect((r as ConfigError).message).toContain(dir);
    }
  });

  it('a fresh directory still works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hostile-log-path-'));
    dirs.push(dir);
    expect(await outcome(join(dir, 'deep', 'log'))).toBe('started');
  });
});
