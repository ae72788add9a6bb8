import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPresenceEngineFromConfig, ConfigError } from '../../src/index.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const yaml = (path: string) => `
server_name: test.local
rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }
log: { kind: file, path: ${JSON.stringify(path)}, fsync: always }
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
});
