/**
 * A stock matrix-js-sdk client against the service: `startClient()` reaches
 * PREPARED (versions, capabilities, push rules, filter, first /sync), lists
 * the user's rooms and members, fires `User.presence` for a room peer's PUT,
 * and keeps its sync loop running across a service restart (same port, same
 * file log, tokens from `/login` kept in the sessions file).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientEvent, createClient, SyncState, UserEvent, type MatrixClient, type MatrixEvent, type User } from 'matrix-js-sdk';
import { logger as sdkGlobalLogger } from 'matrix-js-sdk/lib/logger.js';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ALICE, BOB, SHARED_ROOM, TOKENS, closeAll, http, presencePath, quietSdkLogger, startService, testConfig, waitFor } from './helpers.js';


// The sync loop logs through the SDK's global (loglevel) logger, not the client's.
(sdkGlobalLogger as unknown as { setLevel(level: 'silent'): void }).setLevel('silent');

const clients: MatrixClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stopClient();
  await closeAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function track(c: MatrixClient): MatrixClient {
  clients.push(c);
  return c;
}

/** Start the client's sync loop and resolve when it reports PREPARED (with the time it took). */
async function startAndPrepare(client: MatrixClient, timeoutMs = 15_000): Promise<number> {
  const started = performance.now();
  const prepared = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PREPARED within ${timeoutMs} ms (state ${client.getSyncState() ?? 'null'})`)), timeoutMs);
    client.on(ClientEvent.Sync, (state: SyncState) => {
      if (state === SyncState.Prepared) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await client.startClient({ initialSyncLimit: 10 });
  await prepared;
  return performance.now() - started;
}

/** Resolve with the next `User.presence` event for `userId` that satisfies `check`. */
function nextPresence(client: MatrixClient, userId: string, check: (u: User) => boolean, timeoutMs = 15_000): Promise<User> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching User.presence for ${userId} within ${timeoutMs} ms`)), timeoutMs);
    const onPresence = (_event: MatrixEvent | undefined, user: User) => {
      if (user.userId !== userId || !check(user)) return;
      clearTimeout(timer);
      client.off(UserEvent.Presence, onPresence);
      resolve(user);
    };
    client.on(UserEvent.Presence, onPresence);
  });
}

describe('matrix-js-sdk startClient against the service', () => {
  it('reaches PREPARED and lists the joined room with its members', async () => {
    const { url } = await startService();
    const alice = track(createClient({ baseUrl: url, userId: ALICE, accessToken: TOKENS[ALICE] as string, deviceId: 'ALICEDEV', logger: quietSdkLogger }));
    await startAndPrepare(alice);
    const room = alice.getRoom(SHARED_ROOM);
    expect(room).not.toBeNull();
    expect(room?.getJoinedMembers().map((m) => m.userId).sort()).toEqual([ALICE, BOB]);
    expect(alice.getRooms().map((r) => r.roomId)).toEqual([SHARED_ROOM]);
    // The initial sync's presence reached the client's user objects.
    expect(alice.getUser(ALICE)?.presence).toBe('online');
  });

  it('examples/homeserver.yaml: alice logs in with her password and reaches PREPARED', async () => {
    const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
    const config = parseYaml(readFileSync(join(examples, 'homeserver.yaml'), 'utf8')) as Record<string, unknown>;
    const { url } = await startService(config, { baseDir: examples, port: 0 });
    const login = await track(createClient({ baseUrl: url, logger: quietSdkLogger })).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'alice' },
      password: 'alice-demo-password',
    });
    const alice = track(createClient({ baseUrl: url, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id, logger: quietSdkLogger }));
    await startAndPrepare(alice);
    expect(alice.getRoom('!lobby:example.org')?.getJoinedMembers().map((m) => m.userId).sort()).toEqual(['@alice:example.org', '@bob:example.org', '@dave:remote.example']);
  });

  it('fires User.presence for a room peer’s PUT', async () => {
    const { url } = await startService();
    const alice = track(createClient({ baseUrl: url, userId: ALICE, accessToken: TOKENS[ALICE] as string, logger: quietSdkLogger }));
    await startAndPrepare(alice);
    const seen = nextPresence(alice, BOB, (u) => u.presence === 'unavailable' && u.presenceStatusMsg === 'in a meeting');
    const put = await http(url, 'PUT', presencePath(BOB), { token: TOKENS[BOB] as string, json: { presence: 'unavailable', status_msg: 'in a meeting' } });
    expect(put.status, put.text).toBe(200);
    const bob = await seen;
    expect(bob.presence).toBe('unavailable');
  });

  it('sees a member who joins later in the room, and the room go when it leaves', async () => {
    const { url, service } = await startService();
    const alice = track(createClient({ baseUrl: url, userId: ALICE, accessToken: TOKENS[ALICE] as string, logger: quietSdkLogger }));
    await startAndPrepare(alice);
    const carol = '@carol:test.local';
    service.engine.joinRoom(SHARED_ROOM, carol);
    await waitFor(() => alice.getRoom(SHARED_ROOM)?.getMember(carol)?.membership === 'join', 10_000, 'carol in alice’s member list');
    service.engine.leaveRoom(SHARED_ROOM, ALICE);
    await waitFor(() => alice.getRoom(SHARED_ROOM)?.getMyMembership() === 'leave', 10_000, 'alice’s own leave');
  });

  it('keeps syncing across a service restart and then sees a presence change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-restart-'));
    dirs.push(dir);
    const config = testConfig({
      top: { log: { kind: 'file', path: join(dir, 'presence.log'), fsync: 'never' } },
      service: {
        users: [
          { user_id: ALICE, password: 'alice-password' },
          { user_id: BOB, access_token: TOKENS[BOB] },
        ],
        login: { sessions_file: join(dir, 'sessions.json') },
      },
    });
    const first = await startService(config);
    const port = Number(new URL(first.url).port);

    // A client that logs in with its password, as users' clients do.
    const login = await track(createClient({ baseUrl: first.url, logger: quietSdkLogger })).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'alice' },
      password: 'alice-password',
    });
    const alice = track(createClient({ baseUrl: first.url, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id, logger: quietSdkLogger }));
    await startAndPrepare(alice);
    const before = nextPresence(alice, BOB, (u) => u.presence === 'online');
    await http(first.url, 'PUT', presencePath(BOB), { token: TOKENS[BOB] as string, json: { presence: 'online' } });
    await before;

    const states: string[] = [];
    alice.on(ClientEvent.Sync, (state: SyncState) => states.push(state));
    await first.service.close();
    const second = await startService(config, { port });
    expect(second.url).toBe(first.url);

    // The client notices the outage, reconnects by itself with the same token, and keeps syncing.
    const after = nextPresence(alice, BOB, (u) => u.presence === 'unavailable' && u.presenceStatusMsg === 'after the restart', 30_000);
    await waitFor(() => states.includes(SyncState.Syncing) && alice.getSyncState() === SyncState.Syncing && states.some((s) => s !== SyncState.Syncing), 30_000, 'the client to sync again');
    const put = await http(second.url, 'PUT', presencePath(BOB), { token: TOKENS[BOB] as string, json: { presence: 'unavailable', status_msg: 'after the restart' } });
    expect(put.status, put.text).toBe(200);
    await after;
    expect(alice.getRoom(SHARED_ROOM)?.getJoinedMembers().map((m) => m.userId).sort()).toEqual([ALICE, BOB]);
  }, 60_000);
});
