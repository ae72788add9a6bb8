import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPresenceEngineFromConfig, ConfigError, LogCorruptionError, parseConfigYaml } from '../../src/index.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const yaml = (path: string, extra = '') => `
server_name: test.local
rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }
log: { kind: file, path: ${JSON.stringify(path)}, fsync: always${extra} }
`;

describe('log: { kind: file } in the homeserver config', () => {
  it('creates a durable engine whose presence survives close and reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-config-log-'));
    dirs.push(dir);
    const clock = new SimulatedClock();
    const first = await createPresenceEngineFromConfig({ configText: yaml(join(dir, 'log')), clock, logger: new MemoryLogger() });
    first.setPresence('@alice:test.local', { presence: 'online', statusMsg: 'persisted' });
    const token = first.currentToken;
    await first.close();

    const second = await createPresenceEngineFromConfig({ configText: yaml(join(dir, 'log')), clock, logger: new MemoryLogger() });
    expect(second.getUserPresence('@alice:test.local')).toMatchObject({ state: 'online', statusMsg: 'persisted' });
    expect(second.currentToken).toBe(token);
    await second.close();
  });

  it('refuses a redis log here and says what to use instead', async () => {
    await expect(
      createPresenceEngineFromConfig({ configText: 'server_name: test.local\nlog: { kind: redis, url: "redis://127.0.0.1:1" }' }),
    ).rejects.toThrow(ConfigError);
  });

  it('log.on_corruption: quarantine (default) starts with the intact records; refuse does not start; others are a ConfigError', async () => {
    expect(parseConfigYaml(yaml('/x')).log).toMatchObject({ on_corruption: 'quarantine' });
    expect(() => parseConfigYaml(yaml('/x', ', on_corruption: ignore'))).toThrow(ConfigError);
    const dir = mkdtempSync(join(tmpdir(), 'presence-config-log-'));
    dirs.push(dir);
    const clock = new SimulatedClock();
    const first = await createPresenceEngineFromConfig({ configText: yaml(dir), clock, logger: new MemoryLogger() });
    for (const name of ['alice', 'bob', 'carol']) first.setPresence(`@${name}:test.local`, { presence: 'online', statusMsg: name });
    await first.close();
    // Damage bob's record (the snapshot written on close is removed so the log is the only source).
    for (const n of readdirSync(dir)) if (n.endsWith('.snap')) rmSync(join(dir, n));
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.log')) as string);
    const bytes = readFileSync(seg);
    const at = bytes.indexOf('"bob"');
    bytes[at + 2] = (bytes[at + 2] as number) ^ 0x01;
    writeFileSync(seg, bytes);
    await expect(createPresenceEngineFromConfig({ configText: yaml(dir, ', on_corruption: refuse'), clock, logger: new MemoryLogger() })).rejects.toThrow(
      LogCorruptionError,
    );
    const logger = new MemoryLogger();
    const second = await createPresenceEngineFromConfig({ configText: yaml(dir), clock, logger });
    expect(second.getUserPresence('@alice:test.local')).toMatchObject({ statusMsg: 'alice' });
    expect(second.getUserPresence('@carol:test.local')).toMatchObject({ statusMsg: 'carol' });
    expect(logger.entries.some((e) => e.level === 'error' && e.message.includes('corrupt'))).toBe(true);
    await second.close();
  });
});
