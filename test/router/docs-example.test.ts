/** The module and the test shown in docs/modules.md work as written. */
import { describe, expect, it } from 'vitest';
import { createModuleApi, type AllUsers, type PresenceModuleApi } from '../../src/index.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

class VipWatcher {
  private readonly watchers: Set<string>;
  constructor(config: { watchers?: string[] }, api: PresenceModuleApi) {
    this.watchers = new Set(config.watchers ?? []);
    api.registerPresenceRouterCallbacks({
      getUsersForStates: (states) => new Map([...this.watchers].map((w) => [w, new Set(states)])),
      getInterestedUsers: (userId): ReadonlySet<string> | AllUsers => (this.watchers.has(userId) ? api.ALL_USERS : new Set()),
    });
  }
}

describe('docs/modules.md example', () => {
  it('watchers receive everyone, on push and pull alike', async () => {
    const { engine, clock, logger } = createTestEngine({ serverName: 'example.org' });
    new VipWatcher({ watchers: ['@boss:example.org'] }, createModuleApi(engine, 'vip'));
    const start = engine.currentToken;
    const boss = recordSyncStream(engine, '@boss:example.org');
    await clock.advanceAsync(0);
    engine.setPresence('@alice:example.org', { presence: 'online' });
    await clock.advanceAsync(0);
    expect([...boss.view().keys()]).toEqual(['@alice:example.org']);
    const pulled = await engine.getNewEvents('@boss:example.org', start);
    expect(pulled.events.map((s) => s.userId)).toEqual(['@alice:example.org']);
    expect(logger.warnings()).toEqual([]);
  });
});
