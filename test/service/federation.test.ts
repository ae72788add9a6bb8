/**
 * Two services federating over loopback HTTP: presence set on one appears in
 * the other's /sync for a user sharing a room; inbound transactions are
 * authenticated with the per-peer shared secret.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { authorizationHeader } from '../../service/http-transport.js';
import { closeAll, expectMatrixError, http, startService, waitFor, type Running, type SyncBody } from './helpers.js';

afterEach(closeAll);

const SECRET = 'loopback-shared-secret-0123456789';
const ALICE = '@alice:a.test';
const BOB = '@bob:b.test';
const ROOM = '!fed:a.test';
const TOKENS = { alice: 'alice-a-token', bob: 'bob-b-token' };

function serverConfig(name: 'a.test' | 'b.test', peer: 'a.test' | 'b.test'): Record<string, unknown> {
  const user = name === 'a.test' ? { user_id: ALICE, access_token: TOKENS.alice } : { user_id: BOB, access_token: TOKENS.bob };
  return {
    server_name: name,
    presence: { enabled: true },
    rc_presence: { per_user: { per_second: 100, burst_count: 100 } },
    service: {
      listen: { host: '127.0.0.1', port: 0 },
      users: [user],
      rooms: [{ room_id: ROOM, members: [ALICE, BOB] }],
      // The real URL is set once the peer listens (ephemeral ports).
      federation: { peers: [{ server_name: peer, url: 'http://127.0.0.1:9', shared_secret: SECRET }], initial_backoff_ms: 10, max_backoff_ms: 50 },
    },
  };
}

async function pair(): Promise<{ a: Running; b: Running }> {
  const a = await startService(serverConfig('a.test', 'b.test'));
  const b = await startService(serverConfig('b.test', 'a.test'));
  a.service.setPeerUrl('b.test', b.url);
  b.service.setPeerUrl('a.test', a.url);
  return { a, b };
}

const presenceOf = (body: SyncBody, user: string) => body.presence?.events.find((e) => e.sender === user)?.content;

describe('federation between two services', () => {
  it('presence set on one server reaches the other’s /sync (long-poll) for a user sharing a room, both ways', async () => {
    const { a, b } = await pair();
    const initial = await http(b.url, 'GET', '/_matrix/client/v3/sync', { token: TOKENS.bob });
    expect(initial.status).toBe(200);
    const since = (initial.body as SyncBody).next_batch;

    const pending = http(b.url, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=10000`, { token: TOKENS.bob });
    await waitFor(() => b.service.engine.stats.openSyncStreams >= 1, 5_000, 'bob’s long-poll');
    const put = await http(a.url, 'PUT', `/_matrix/client/v3/presence/${encodeURIComponent(ALICE)}/status`, {
      token: TOKENS.alice,
      json: { presence: 'online', status_msg: 'hello from a.test' },
    });
    expect(put.status).toBe(200);
    let body = (await pending).body as SyncBody;
    // The first wake-up may carry an earlier state of alice (e.g. the join-time send); poll on until the status arrives.
    const deadline = Date.now() + 10_000;
    while (presenceOf(body, ALICE)?.status_msg !== 'hello from a.test' && Date.now() < deadline) {
      body = (await http(b.url, 'GET', `/_matrix/client/v3/sync?since=${body.next_batch}&timeout=2000`, { token: TOKENS.bob })).body as SyncBody;
    }
    expect(presenceOf(body, ALICE)).toMatchObject({ presence: 'online', status_msg: 'hello from a.test', currently_active: true });

    // GET on b.test agrees (bob shares the room with alice).
    const got = await http(b.url, 'GET', `/_matrix/client/v3/presence/${encodeURIComponent(ALICE)}/status`, { token: TOKENS.bob });
    expect(got.body).toMatchObject({ presence: 'online', status_msg: 'hello from a.test' });

    // And back: bob's presence reaches alice on a.test.
    await http(b.url, 'PUT', `/_matrix/client/v3/presence/${encodeURIComponent(BOB)}/status`, { token: TOKENS.bob, json: { presence: 'unavailable', status_msg: 'afk' } });
    await waitFor(() => a.service.engine.getUserPresence(BOB).statusMsg === 'afk', 10_000, 'bob’s presence on a.test');
    const aSync = (await http(a.url, 'GET', '/_matrix/client/v3/sync', { token: TOKENS.alice })).body as SyncBody;
    expect(presenceOf(aSync, BOB)).toMatchObject({ presence: 'unavailable', status_msg: 'afk' });

    const metrics = (await http(a.url, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/presence_federation_transactions_total\{destination="b\.test",result="sent"\} [1-9]/);
    expect(metrics).toMatch(/presence_federation_inbound_transactions_total\{origin="b\.test",result="accepted"\} [1-9]/);
  });

  it('authenticates inbound transactions with the shared secret', async () => {
    const { a } = await pair();
    const path = '/_matrix/federation/v1/send/txn-1';
    const content = { push: [{ user_id: BOB, presence: 'online', last_active_ago: 10, currently_active: true }] };
    const txn = JSON.stringify({ origin: 'b.test', origin_server_ts: Date.now(), pdus: [], edus: [{ edu_type: 'm.presence', content }] });
    const auth = (origin: string, secret: string, body: string, p = path, destination = 'a.test') => authorizationHeader(secret, 'PUT', p, origin, destination, body);
    const send = (headers: Record<string, string>, body = txn, p = path) => http(a.url, 'PUT', p, { body, headers: { 'content-type': 'application/json', ...headers } });

    expectMatrixError(await send({}), 401, 'M_UNAUTHORIZED');
    expectMatrixError(await send({ authorization: 'Bearer whatever' }), 401, 'M_UNAUTHORIZED');
    expectMatrixError(await send({ authorization: auth('c.test', SECRET, txn) }), 401, 'M_UNAUTHORIZED');
    expectMatrixError(await send({ authorization: auth('b.test', 'the-wrong-secret-0123456789', txn) }), 401, 'M_UNAUTHORIZED');
    expectMatrixError(await send({ authorization: auth('b.test', SECRET, txn, path, 'z.test') }), 401, 'M_UNAUTHORIZED');
    // A signature over another body does not verify.
    expectMatrixError(await send({ authorization: auth('b.test', SECRET, txn.replace('online', 'offline')) }), 401, 'M_UNAUTHORIZED');
    expect(a.service.engine.getUserPresence(BOB).state).toBe('offline');

    const ok = await send({ authorization: auth('b.test', SECRET, txn) });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toEqual({ pdus: {} });
    expect(a.service.engine.getUserPresence(BOB).state).toBe('online');

    // Replaying the same transaction id is acknowledged without re-applying.
    const again = await send({ authorization: auth('b.test', SECRET, txn) });
    expect(again.status).toBe(200);

    // Valid signature, wrong shapes.
    const bad = (body: string, p: string) => send({ authorization: auth('b.test', SECRET, body, p) }, body, p);
    expectMatrixError(await bad('{not json', '/_matrix/federation/v1/send/t2'), 400, 'M_BAD_JSON');
    expectMatrixError(await bad(JSON.stringify({ origin: 'b.test', edus: 'x' }), '/_matrix/federation/v1/send/t3'), 400, 'M_BAD_JSON');
    expectMatrixError(await bad(JSON.stringify({ origin: 'c.test', edus: [] }), '/_matrix/federation/v1/send/t4'), 403, 'M_FORBIDDEN');

    // Invalid items and malformed EDUs are dropped and counted; valid items in the same EDU still apply.
    const mixed = JSON.stringify({
      origin: 'b.test',
      edus: [
        'not an edu',
        { edu_type: 'm.typing', content: {} },
        { edu_type: 'm.presence', content: { push: [{ user_id: '@mallory:c.test', presence: 'online' }, { user_id: BOB, presence: 'sleepy' }, { user_id: BOB, presence: 'unavailable' }] } },
      ],
    });
    const r = await bad(mixed, '/_matrix/federation/v1/send/t5');
    expect(r.status, r.text).toBe(200);
    expect(a.service.engine.getUserPresence(BOB).state).toBe('unavailable');
    const metrics = (await http(a.url, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/^presence_inbound_dropped_items_total\{reason="engine"\} 2$/m);
    expect(metrics).toMatch(/^presence_inbound_dropped_items_total\{reason="malformed_edu"\} 1$/m);
    expect(metrics).toMatch(/presence_federation_inbound_transactions_total\{origin="b\.test",result="duplicate"\} 1/);
  });
});
