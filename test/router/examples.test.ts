/**
 * The three example modules, loaded from their YAML snippets in examples/,
 * behave as documented on both the push path (sync streams) and the pull path
 * (getNewEvents).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createPresenceEngineFromConfig, loadPresenceModules, type PresenceEngine, type FederationTransmission } from '../../src/index.js';
import { createTestEngine, MemoryLogger, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');

const GOBBLER = '@presence_gobbler:example.org';
const CAROL = '@carol:example.org';
const DAVE = '@dave:example.org';
const ALICE_REMOTE = '@alice:example.com'; // blacklisted in the YAML
const EVE_REMOTE = '@eve:example.com';

async function fromYaml(file: string) {
  const clock = new SimulatedClock();
  const logger = new MemoryLogger();
  const engine = await createPresenceEngineFromConfig({ configPath: join(EXAMPLES, file), clock, logger });
  return { engine, clock, logger };
}

function remotePresence(engine: PresenceEngine, userId: string, presence: string): void {
  const origin = userId.slice(userId.indexOf(':') + 1);
  engine.receiveFederationEdu(origin, { push: [{ user_id: userId, presence, last_active_ago: 1000, currently_active: presence === 'online' }] });
}

const ids = (m: Map<string, unknown>) => [...m.keys()].sort();

describe.each([
  ['the class router (router-class.yaml, async methods)', 'router-class.yaml'],
  ['the callbacks module (router-callbacks.yaml, sync callbacks)', 'router-callbacks.yaml'],
])('the example router as %s', (_name, file) => {
  it('sends every non-blacklisted update to always_send_to_users, on push and pull alike', async () => {
    const { engine, clock } = await fromYaml(file);
    engine.joinRoom('!r:example.org', DAVE);
    engine.joinRoom('!r:example.org', ALICE_REMOTE);
    const gobbler = recordSyncStream(engine, GOBBLER);
    const dave = recordSyncStream(engine, DAVE);
    const start = engine.currentToken;
    await clock.advanceAsync(0);
    engine.setPresence(CAROL, { presence: 'online' });
    remotePresence(engine, ALICE_REMOTE, 'online');
    remotePresence(engine, EVE_REMOTE, 'unavailable');
    await clock.advanceAsync(0);

    expect(ids(gobbler.view())).toEqual([CAROL, EVE_REMOTE]);
    const pulled = await engine.getNewEvents(GOBBLER, start);
    expect(pulled.events.map((s) => s.userId).sort()).toEqual([CAROL, EVE_REMOTE]);
    const initial = await engine.getNewEvents(GOBBLER, null);
    expect(initial.events.map((s) => s.userId).sort()).toEqual([CAROL, EVE_REMOTE]);

    // Blacklisting only affects routing: dave shares a room with alice and sees her; carol is not routed to him.
    expect(ids(dave.view())).toEqual([ALICE_REMOTE]);
    expect((await engine.getNewEvents(DAVE, start)).events.map((s) => s.userId)).toEqual([ALICE_REMOTE]);
    engine.stop();
  });

  it('does not change what other users read', async () => {
    const { engine, clock } = await fromYaml(file);
    const dave = recordSyncStream(engine, DAVE);
    await clock.advanceAsync(0);
    engine.setPresence(CAROL, { presence: 'online' });
    await clock.advanceAsync(0);
    expect(dave.batches).toEqual([]);
    expect((await engine.getNewEvents(DAVE, null)).events).toEqual([]);
    engine.stop();
  });
});

describe('routing to remote users', () => {
  it('a remote recipient makes its server a federation destination for local states only', async () => {
    const { engine, clock } = createTestEngine({
      serverName: 'example.org',
      config: { modules: [{ module: './routers/example-callbacks-module.ts', config: { always_send_to_users: ['@watcher:remote.test'] } }] },
    });
    await loadPresenceModules(engine, engine.config, { baseDir: EXAMPLES });
    const sent: FederationTransmission[] = [];
    engine.federationOutbound$.subscribe((t) => sent.push(t));
    engine.setPresence(CAROL, { presence: 'online' });
    remotePresence(engine, EVE_REMOTE, 'online');
    await clock.advanceAsync(0);
    const toRemote = sent.filter((t) => t.destination === 'remote.test');
    expect(toRemote.length).toBeGreaterThan(0);
    const text = JSON.stringify(toRemote);
    expect(text).toContain(CAROL);
    expect(text).not.toContain(EVE_REMOTE);
    expect(sent.some((t) => t.destination === 'example.com')).toBe(false);
    engine.stop();
  });
});

describe('the users_to_rooms routing module (router-users-to-rooms.yaml)', () => {
  const ALICE = '@alice:example.com';
  const M1 = '@m1:example.org';
  const M2 = '@m2:example.org';
  const OUTSIDER = '@x:example.org';

  async function setup() {
    const t = await fromYaml('router-users-to-rooms.yaml');
    for (const m of [M1, M2]) t.engine.joinRoom('!room1:example.org', m);
    t.engine.joinRoom('!other:example.org', OUTSIDER);
    return t;
  }

  it("sends alice's presence to every member of room1, and they read it on pull too", async () => {
    const { engine, clock } = await setup();
    const m1 = recordSyncStream(engine, M1);
    const outsider = recordSyncStream(engine, OUTSIDER);
    const start = engine.currentToken;
    await clock.advanceAsync(0);
    remotePresence(engine, ALICE, 'online');
    await clock.advanceAsync(0);
    expect(ids(m1.view())).toEqual([ALICE]);
    expect(outsider.batches).toEqual([]);
    expect((await engine.getNewEvents(M2, start)).events.map((s) => s.userId)).toEqual([ALICE]);
    expect((await engine.getNewEvents(M2, null)).events.map((s) => s.userId)).toContain(ALICE);
    expect((await engine.getNewEvents(OUTSIDER, start)).events).toEqual([]);
    engine.stop();
  });

  it('always_send_to_users read everything; other users are unaffected', async () => {
    const { engine, clock } = await setup();
    const gobbler = recordSyncStream(engine, GOBBLER);
    await clock.advanceAsync(0);
    engine.setPresence(M1, { presence: 'online' });
    remotePresence(engine, ALICE, 'online');
    await clock.advanceAsync(0);
    expect(ids(gobbler.view())).toEqual([ALICE, M1]);
    engine.stop();
  });

  it('a room the server does not know (room2) is skipped with one warning, however often it is routed to', async () => {
    const { engine, logger } = await setup();
    remotePresence(engine, ALICE, 'online');
    remotePresence(engine, ALICE, 'unavailable');
    const warnings = logger.warnings().filter((w) => w.includes('!room2:example.net'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not known to this server/);
    engine.stop();
  });
});
