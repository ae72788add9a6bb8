/**
 * Presence to an application service built on the real appservice framework
 * (matrix-appservice, the framework under matrix-appservice-bridge), started
 * as its own process and registered with the reference service through
 * `app_service_config_files`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { ALICE, BOB, CAROL, SHARED_ROOM, TOKENS, closeAll, http, startService, testConfig } from '../service/helpers.js';
import { received, routerFixture, startBridge, until, writeRegistration, type Bridge } from './support.js';

const IRC_DAVE = '@irc_dave:test.local';
const BRIDGED_ROOM = '!bridged:test.local';

const bridges: Bridge[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await closeAll();
  for (const b of bridges.splice(0)) {
    b.child.kill('SIGKILL');
    await b.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'presence-as-'));
  dirs.push(d);
  return d;
}

async function setPresence(url: string, user: string, presence: string, status: string): Promise<void> {
  const r = await http(url, 'PUT', `/_matrix/client/v3/presence/${encodeURIComponent(user)}/status`, { token: TOKENS[user] as string, json: { presence, status_msg: status } });
  expect(r.status).toBe(200);
}

describe('presence to an appservice built on matrix-appservice', () => {
  it('receives m.presence for users sharing a room with its namespace and for users a router grants, and nothing else', async () => {
    const dir = tempDir();
    const out = join(dir, 'received.jsonl');
    const bridge = await startBridge(out);
    bridges.push(bridge);
    const registration = writeRegistration(dir, bridge.url);
    const { url } = await startService(
      testConfig({
        top: {
          app_service_config_files: [registration],
          // Carol shares no room with the bridge: only this router makes her presence reach it.
          modules: [{ module: `${routerFixture}#RouteToBridge`, config: { watchers: [IRC_DAVE], users: [CAROL] } }],
        },
        service: { rooms: [{ room_id: SHARED_ROOM, members: [ALICE, BOB] }, { room_id: BRIDGED_ROOM, members: [ALICE, IRC_DAVE] }] },
      }),
    );
    await setPresence(url, BOB, 'online', 'bob-1'); // shares a room with alice only: not for the bridge
    await setPresence(url, ALICE, 'online', 'alice-1');
    await setPresence(url, CAROL, 'unavailable', 'carol-1');
    await until(() => received(out).some((e) => e.sender === CAROL) && received(out).some((e) => e.content.status_msg === 'alice-1'), 'alice and carol at the bridge');
    await setPresence(url, ALICE, 'unavailable', 'alice-2');
    await until(() => received(out).some((e) => e.content.status_msg === 'alice-2'), 'alice-2 at the bridge');

    const events = received(out);
    expect(events.every((e) => e.type === 'm.presence')).toBe(true);
    const senders = new Set(events.map((e) => e.sender));
    expect(senders.has(BOB)).toBe(false);
    expect(senders.has(ALICE)).toBe(true);
    expect(senders.has(CAROL)).toBe(true);
    const carol = events.filter((e) => e.sender === CAROL).at(-1);
    expect(carol?.content).toMatchObject({ presence: 'unavailable', status_msg: 'carol-1' });
    const alice = events.filter((e) => e.sender === ALICE).at(-1);
    expect(alice?.content).toMatchObject({ presence: 'unavailable', status_msg: 'alice-2' });
  });

  it('a wrong hs_token is refused by the framework and retried, so nothing is delivered', async () => {
    const dir = tempDir();
    const out = join(dir, 'received.jsonl');
    const bridge = await startBridge(out, 0, 'the-token-the-bridge-expects-0000');
    bridges.push(bridge);
    const registration = writeRegistration(dir, bridge.url);
    const { url, service } = await startService(
      testConfig({
        top: { app_service_config_files: [registration] },
        service: { rooms: [{ room_id: BRIDGED_ROOM, members: [ALICE, IRC_DAVE] }], appservices: { initial_backoff_ms: 50, max_backoff_ms: 100 } },
      }),
    );
    await setPresence(url, ALICE, 'online', 'alice-1');
    const delivery = service.appservices?.deliveries[0];
    await until(() => (delivery?.stats.failures ?? 0) >= 2, 'two refused attempts');
    expect(received(out)).toEqual([]);
    expect(delivery?.stats.transactions).toBe(0);
    const metrics = await http(url, 'GET', '/metrics');
    expect(metrics.text).toMatch(/presence_appservice_failures_total\{appservice="irc-bridge"\} [1-9]/);
  });

  it('a bad registration stops start-up with a ConfigError naming the file and the key', async () => {
    const dir = tempDir();
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'id: x\nurl: http://127.0.0.1:1\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  users:\n    - regex: "(["\n');
    const failure = await startService(testConfig({ top: { app_service_config_files: [join(dir, 'missing.yaml'), bad] } })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).path).toBe('app_service_config_files[0]');
    const second = await startService(testConfig({ top: { app_service_config_files: [bad] } })).catch((e: unknown) => e);
    expect((second as ConfigError).path).toBe('app_service_config_files[0].namespaces.users[0].regex');
  });
});
