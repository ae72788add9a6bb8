/**
 * The reference service over real HTTP on an ephemeral port: presence GET/PUT,
 * /sync with long-polling, admin membership, /metrics, and every error case of
 * issue 7 in Matrix's `{errcode, error}` shape.
 */
import { request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  ALICE,
  BOB,
  CAROL,
  SHARED_ROOM,
  TOKENS,
  clientPath,
  closeAll,
  expectMatrixError,
  http,
  presencePath,
  presencePosition,
  SYNC_TOKEN,
  startService,
  testConfig,
  waitFor,
  type SyncBody,
} from './helpers.js';

afterEach(closeAll);

const tok = (u: string): string => TOKENS[u] as string;

async function sync(url: string, user: string, query = ''): Promise<SyncBody> {
  const r = await http(url, 'GET', clientPath(`/sync${query}`), { token: tok(user) });
  expect(r.status, r.text).toBe(200);
  return r.body as SyncBody;
}

function senders(b: SyncBody): string[] {
  return (b.presence?.events ?? []).map((e) => e.sender).sort();
}

describe('client presence API', () => {
  it('serves /versions', async () => {
    const { url } = await startService();
    const r = await http(url, 'GET', '/_matrix/client/versions');
    expect(r.status).toBe(200);
    expect((r.body as { versions: string[] }).versions).toContain('v1.11');
  });

  it('sets and reads presence for oneself and a user sharing a room (v3 and r0 paths)', async () => {
    const { url } = await startService();
    const put = await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'unavailable', status_msg: 'lunch' } });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toEqual({});

    const own = await http(url, 'GET', presencePath(BOB), { token: tok(BOB) });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ presence: 'unavailable', status_msg: 'lunch' });

    const seen = await http(url, 'GET', `/_matrix/client/r0/presence/${encodeURIComponent(BOB)}/status`, { token: tok(ALICE) });
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ presence: 'unavailable', status_msg: 'lunch' });

    // A missing status_msg clears it (Synapse semantics).
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online' } });
    const cleared = await http(url, 'GET', presencePath(BOB), { token: tok(ALICE) });
    expect(cleared.body).toMatchObject({ presence: 'online', currently_active: true });
    expect(typeof (cleared.body as { last_active_ago: unknown }).last_active_ago).toBe('number');
    expect(cleared.body).not.toHaveProperty('status_msg');
  });

  it('accepts the access token as a query parameter', async () => {
    const { url } = await startService();
    const r = await http(url, 'GET', `${presencePath(ALICE)}?access_token=${tok(ALICE)}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ presence: 'offline' });
  });

  it('refuses unknown and missing tokens with 401', async () => {
    const { url } = await startService();
    expectMatrixError(await http(url, 'GET', presencePath(ALICE), { token: 'not-a-token' }), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'GET', `${presencePath(ALICE)}?access_token=nope`), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'PUT', presencePath(ALICE), { token: 'not-a-token', json: { presence: 'online' } }), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'GET', clientPath('/sync'), { token: 'not-a-token' }), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'GET', clientPath('/sync')), 401, 'M_MISSING_TOKEN');
  });

  it('forbids setting someone else’s presence and reading a user who shares no room', async () => {
    const { url } = await startService();
    const set = expectMatrixError(await http(url, 'PUT', presencePath(BOB), { token: tok(ALICE), json: { presence: 'online' } }), 403, 'M_FORBIDDEN');
    expect(set.error).toBe('Can only set your own presence state');
    const read = expectMatrixError(await http(url, 'GET', presencePath(CAROL), { token: tok(ALICE) }), 403, 'M_FORBIDDEN');
    expect(read.error).toBe('You are not allowed to see their presence.');
    // Unknown users share no room either.
    expectMatrixError(await http(url, 'GET', presencePath('@nobody:elsewhere.test'), { token: tok(ALICE) }), 403, 'M_FORBIDDEN');
  });

  it('rejects malformed JSON and wrong types with 400', async () => {
    const { url } = await startService();
    const put = (body: string) => http(url, 'PUT', presencePath(ALICE), { token: tok(ALICE), body, headers: { 'content-type': 'application/json' } });
    expectMatrixError(await put('{"presence":'), 400, 'M_BAD_JSON');
    expectMatrixError(await put(''), 400, 'M_BAD_JSON');
    expectMatrixError(await put('[1,2]'), 400, 'M_BAD_JSON');
    expectMatrixError(await put('"online"'), 400, 'M_BAD_JSON');
    expectMatrixError(await put('{}'), 400, 'M_BAD_JSON');
    expectMatrixError(await put('{"presence":"online","mood":"great"}'), 400, 'M_BAD_JSON');
    expectMatrixError(await put('{"presence":42}'), 400, 'M_INVALID_PARAM');
    expectMatrixError(await put('{"presence":"away"}'), 400, 'M_INVALID_PARAM');
    const sm = expectMatrixError(await put('{"presence":"online","status_msg":7}'), 400, 'M_INVALID_PARAM');
    expect(sm.error).toBe('status_msg must be a string.');
    expectMatrixError(await put('{"presence":"online","status_msg":null}'), 400, 'M_INVALID_PARAM');
    // Busy is refused unless enabled.
    expectMatrixError(await put('{"presence":"busy"}'), 400, 'M_INVALID_PARAM');
    // Bad user ids in the path.
    expectMatrixError(await http(url, 'GET', clientPath('/presence/alice/status'), { token: tok(ALICE) }), 400, 'M_INVALID_PARAM');
    expectMatrixError(await http(url, 'GET', clientPath('/presence/%E0%A4%A/status'), { token: tok(ALICE) }), 400, 'M_INVALID_PARAM');
    // Nothing changed.
    const r = await http(url, 'GET', presencePath(ALICE), { token: tok(ALICE) });
    expect(r.body).toEqual({ presence: 'offline' });
  });

  it('answers 429 M_LIMIT_EXCEEDED with retry_after_ms over the presence rate limit', async () => {
    const { url } = await startService(testConfig({ top: { rc_presence: { per_user: { per_second: 0.01, burst_count: 1 } } } }));
    const ok = await http(url, 'PUT', presencePath(ALICE), { token: tok(ALICE), json: { presence: 'online' } });
    expect(ok.status).toBe(200);
    const r = await http(url, 'PUT', presencePath(ALICE), { token: tok(ALICE), json: { presence: 'unavailable' } });
    const body = expectMatrixError(r, 429, 'M_LIMIT_EXCEEDED');
    expect(typeof body.retry_after_ms).toBe('number');
    expect(body.retry_after_ms as number).toBeGreaterThan(0);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    // The limit is per user: bob is unaffected.
    expect((await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online' } })).status).toBe(200);
  });

  it('refuses oversized bodies with 413 (announced and chunked)', async () => {
    const { url } = await startService(testConfig({ service: { max_body_bytes: 1024 } }));
    const big = JSON.stringify({ presence: 'online', status_msg: 'x'.repeat(5_000) });
    expectMatrixError(await http(url, 'PUT', presencePath(ALICE), { token: tok(ALICE), body: big }), 413, 'M_TOO_LARGE');

    // Chunked upload without a content-length.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${url}${presencePath(ALICE)}`, { method: 'PUT', headers: { authorization: `Bearer ${tok(ALICE)}`, 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write('x'.repeat(512));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body)).toMatchObject({ errcode: 'M_TOO_LARGE' });
    // Still serving.
    expect((await http(url, 'GET', '/_matrix/client/versions')).status).toBe(200);
  });

  it('answers unknown endpoints and methods in the Matrix error shape', async () => {
    const { url } = await startService();
    expectMatrixError(await http(url, 'GET', '/_matrix/client/v3/rooms'), 404, 'M_UNRECOGNIZED');
    expectMatrixError(await http(url, 'DELETE', presencePath(ALICE), { token: tok(ALICE) }), 405, 'M_UNRECOGNIZED');
    const opts = await http(url, 'OPTIONS', presencePath(ALICE));
    expect(opts.status).toBe(204);
  });

  it('survives garbage: broken HTTP, odd paths and aborted requests', async () => {
    const { url, service } = await startService();
    const port = new URL(url).port;
    const raw = await new Promise<string>((resolve) => {
      let got = '';
      const s = connect(Number(port), '127.0.0.1', () => s.end('THIS IS NOT HTTP\r\n\r\n'));
      s.on('data', (c: Buffer) => (got += c.toString('utf8')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw).toContain('"errcode":"M_UNKNOWN"');
    // Oversized headers.
    const huge = await http(url, 'GET', '/_matrix/client/versions', { headers: { 'x-filler': 'y'.repeat(20_000) } }).catch((e: unknown) => e);
    if (!(huge instanceof Error)) expect((huge as { status: number }).status).toBe(431);
    // A request whose body never completes, then the client goes away.
    await new Promise<void>((resolve) => {
      const req = request(`${url}${presencePath(ALICE)}`, { method: 'PUT', headers: { authorization: `Bearer ${tok(ALICE)}`, 'content-length': '100' } });
      req.on('error', () => resolve());
      req.write('{"presence":');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 20);
    });
    for (const p of ['//', '/_matrix/client/v3/presence//status', '/%', '/_matrix/client/v3/sync?since=%zz', '/_matrix/federation/v1/send/']) {
      const r = await http(url, 'GET', p, { token: tok(ALICE) });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body).toHaveProperty('errcode');
    }
    expect((await http(url, 'GET', '/_matrix/client/versions')).status).toBe(200);
    expect(service.engine.stats.openSyncStreams).toBe(0);
  });

  it('serves GET offline and skips PUT when presence is disabled (spec §2.12)', async () => {
    const { url } = await startService(testConfig({ top: { presence: { enabled: false } } }));
    expect((await http(url, 'PUT', presencePath(ALICE), { token: tok(ALICE), json: { presence: 'away' } })).status).toBe(200);
    const r = await http(url, 'GET', presencePath(CAROL), { token: tok(ALICE) });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ presence: 'offline' });
    const s = await sync(url, ALICE);
    expect(s.presence).toBeUndefined();
    expect(s.next_batch).toMatch(SYNC_TOKEN);
  });
});

describe('/sync', () => {
  it('initial sync: own presence and room co-members, with a next_batch token', async () => {
    const { url } = await startService();
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online', status_msg: 'hi' } });
    const s = await sync(url, ALICE);
    expect(s.next_batch).toMatch(SYNC_TOKEN);
    expect(senders(s)).toEqual([ALICE, BOB]);
    const bob = s.presence?.events.find((e) => e.sender === BOB);
    expect(bob).toMatchObject({ type: 'm.presence', content: { presence: 'online', status_msg: 'hi', currently_active: true } });
    // Carol shares no room with alice.
    await http(url, 'PUT', presencePath(CAROL), { token: tok(CAROL), json: { presence: 'online' } });
    expect(senders(await sync(url, ALICE))).toEqual([ALICE, BOB]);
  });

  it('incremental sync returns nothing new at the current token, and changes after it', async () => {
    const { url } = await startService();
    const first = await sync(url, ALICE);
    const again = await sync(url, ALICE, `?since=${first.next_batch}`);
    expect(again.presence).toBeUndefined();
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'unavailable' } });
    const next = await sync(url, ALICE, `?since=${again.next_batch}`);
    expect(senders(next)).toEqual([BOB]);
    expect(next.presence?.events[0]?.content).toMatchObject({ presence: 'unavailable' });
    expect(presencePosition(next.next_batch)).toBeGreaterThan(presencePosition(again.next_batch));
  });

  it('set_presence=offline does not bring the user online; unavailable does', async () => {
    const { url } = await startService();
    await sync(url, ALICE, '?set_presence=offline');
    expect((await http(url, 'GET', presencePath(ALICE), { token: tok(BOB) })).body).toEqual({ presence: 'offline' });
    await sync(url, ALICE, '?set_presence=unavailable');
    expect((await http(url, 'GET', presencePath(ALICE), { token: tok(BOB) })).body).toMatchObject({ presence: 'unavailable' });
  });

  it('rejects bad query parameters with 400 M_INVALID_PARAM', async () => {
    const { url } = await startService();
    const bad = (q: string) => http(url, 'GET', clientPath(`/sync?${q}`), { token: tok(ALICE) });
    for (const q of ['since=42', 'since=pabc', 'since=p-1', 'since=p01', 'since=s72594_4483_1934', 'since=p99999999999999999999', 'timeout=-5', 'timeout=soon', 'set_presence=away', 'full_state=yes']) {
      expectMatrixError(await bad(q), 400, 'M_INVALID_PARAM');
    }
  });

  it('long-poll: a change by a room co-member wakes a waiting /sync', async () => {
    const { url, service } = await startService();
    const { next_batch } = await sync(url, ALICE);
    const started = Date.now();
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=10000`), { token: tok(ALICE) });
    await waitFor(() => service.engine.stats.openSyncStreams >= 1, 5_000, 'the long-poll to subscribe');
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online', status_msg: 'back' } });
    const r = await pending;
    const elapsed = Date.now() - started;
    expect(r.status).toBe(200);
    const body = r.body as SyncBody;
    expect(senders(body)).toEqual([BOB]);
    expect(body.presence?.events[0]?.content).toMatchObject({ presence: 'online', status_msg: 'back' });
    expect(elapsed).toBeLessThan(5_000);
    await waitFor(() => service.engine.stats.openSyncStreams === 0, 2_000, 'the stream to close');
  });

  it('long-poll: times out empty, and is not woken by users it cannot see', async () => {
    const { url, service } = await startService();
    const { next_batch } = await sync(url, ALICE);
    const started = Date.now();
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=400`), { token: tok(ALICE) });
    await waitFor(() => service.engine.stats.openSyncStreams >= 1, 5_000, 'the long-poll to subscribe');
    await http(url, 'PUT', presencePath(CAROL), { token: tok(CAROL), json: { presence: 'online' } });
    const r = await pending;
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    const body = r.body as SyncBody;
    expect(body.presence).toBeUndefined();
    expect(body.next_batch).toMatch(SYNC_TOKEN);
  });

  it('caps the timeout at service.max_sync_timeout_ms', async () => {
    const { url } = await startService(testConfig({ service: { max_sync_timeout_ms: 100 } }));
    const { next_batch } = await sync(url, ALICE);
    const started = Date.now();
    const r = await http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=60000`), { token: tok(ALICE) });
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a client that goes away mid long-poll releases its stream and sync', async () => {
    const { url, service } = await startService();
    const { next_batch } = await sync(url, ALICE);
    const ac = new AbortController();
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=30000`), { token: tok(ALICE), signal: ac.signal }).catch((e: unknown) => e);
    await waitFor(() => service.engine.stats.openSyncStreams >= 1, 5_000, 'the long-poll to subscribe');
    expect(Object.values(service.engine.getUserRecord(ALICE).syncs).reduce((a, b) => a + b, 0)).toBe(1);
    ac.abort();
    await pending;
    await waitFor(() => service.engine.stats.openSyncStreams === 0, 5_000, 'the stream to close');
    await waitFor(() => Object.keys(service.engine.getUserRecord(ALICE).syncs).length === 0, 5_000, 'the sync to end');
  });

  it('shutting down answers open long-polls promptly', async () => {
    const { url, service } = await startService();
    const { next_batch } = await sync(url, ALICE);
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=30000`), { token: tok(ALICE) });
    await waitFor(() => service.engine.stats.openSyncStreams >= 1, 5_000, 'the long-poll to subscribe');
    const started = Date.now();
    await service.close();
    const r = await pending;
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('/sync with presence.turns: per_tick (the example config)', () => {
  const perTick = () => testConfig({ top: { presence: { enabled: true, turns: 'per_tick' } } });

  it('a PUT commits at the end of its tick: a waiting long-poll is woken with it', async () => {
    const { url, service } = await startService(perTick());
    expect(service.engine.config.turns).toBe('per_tick');
    const { next_batch } = await sync(url, ALICE);
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=10000`), { token: tok(ALICE) });
    await waitFor(() => service.engine.stats.openSyncStreams >= 1, 5_000, 'the long-poll to subscribe');
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online', status_msg: 'ticked' } });
    const r = await pending;
    expect(r.status).toBe(200);
    expect(senders(r.body as SyncBody)).toEqual([BOB]);
    expect((r.body as SyncBody).presence?.events[0]?.content).toMatchObject({ presence: 'online', status_msg: 'ticked' });
  });

  it('a PUT is answered only after its tick committed it to the log', async () => {
    const { url, service } = await startService(perTick());
    const order: string[] = [];
    const log = service.engine.log;
    const append = log.append.bind(log);
    log.append = (events) => {
      order.push(`append ${events.map((e) => e.type).join(' ')}`);
      return append(events);
    };
    const server = (service as unknown as { server: Server }).server;
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
      const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse;
      res.writeHead = ((...a: unknown[]) => {
        order.push('reply');
        return writeHead(...a);
      }) as typeof res.writeHead;
    });
    const put = await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online' } });
    expect(put.status).toBe(200);
    expect(order).toEqual(['append user.step', 'reply']); // the preloaded joins were committed before the service started
  });

  it('incremental sync right after a PUT sees the change', async () => {
    const { url } = await startService(perTick());
    const first = await sync(url, ALICE);
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'unavailable' } });
    const next = await sync(url, ALICE, `?since=${first.next_batch}`);
    expect(senders(next)).toEqual([BOB]);
    expect(next.presence?.events[0]?.content).toMatchObject({ presence: 'unavailable' });
  });
});

describe('admin membership endpoint', () => {
  const memberPath = (room: string, user: string) => `/_presence/admin/v1/rooms/${encodeURIComponent(room)}/members/${encodeURIComponent(user)}`;

  it('joins and leaves users, changing visibility', async () => {
    const { url } = await startService();
    expectMatrixError(await http(url, 'GET', presencePath(CAROL), { token: tok(ALICE) }), 403, 'M_FORBIDDEN');
    const join = await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { token: ADMIN_TOKEN, json: { membership: 'join' } });
    expect(join.status, join.text).toBe(200);
    expect((await http(url, 'GET', presencePath(CAROL), { token: tok(ALICE) })).status).toBe(200);
    const members = await http(url, 'GET', `/_presence/admin/v1/rooms/${encodeURIComponent(SHARED_ROOM)}/members`, { token: ADMIN_TOKEN });
    expect((members.body as { joined: string[] }).joined.sort()).toEqual([ALICE, BOB, CAROL]);
    expect((await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { token: ADMIN_TOKEN, json: { membership: 'leave' } })).status).toBe(200);
    expectMatrixError(await http(url, 'GET', presencePath(CAROL), { token: tok(ALICE) }), 403, 'M_FORBIDDEN');
  });

  it('requires the admin token and a valid body', async () => {
    const { url } = await startService();
    expectMatrixError(await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { json: { membership: 'join' } }), 401, 'M_MISSING_TOKEN');
    expectMatrixError(await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { token: 'wrong-token', json: { membership: 'join' } }), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { token: tok(ALICE), json: { membership: 'join' } }), 403, 'M_FORBIDDEN');
    expectMatrixError(await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { token: ADMIN_TOKEN, json: { membership: 'invite' } }), 400, 'M_BAD_JSON');
    expectMatrixError(await http(url, 'PUT', memberPath(SHARED_ROOM, CAROL), { token: ADMIN_TOKEN, body: 'nope' }), 400, 'M_BAD_JSON');
    expectMatrixError(await http(url, 'PUT', memberPath('not-a-room', CAROL), { token: ADMIN_TOKEN, json: { membership: 'join' } }), 400, 'M_INVALID_PARAM');
  });
});

describe('/metrics', () => {
  it('exposes engine, router, notifier, federation and HTTP metrics in Prometheus text format', async () => {
    const { url, service } = await startService();
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online' } });
    const { next_batch } = await sync(url, ALICE);
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=10000`), { token: tok(ALICE) });
    await waitFor(() => service.engine.stats.openSyncStreams >= 1, 5_000, 'the long-poll to subscribe');
    const during = await http(url, 'GET', '/metrics');
    expect(during.text).toMatch(/^presence_notifier_streams_open 1$/m);
    await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'unavailable' } });
    await pending;
    const r = await http(url, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const m = r.text;
    expect(m).toMatch(/^# TYPE presence_updates_total counter$/m);
    const updates = /^presence_updates_total (\d+)$/m.exec(m);
    expect(Number(updates?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^presence_deliveries_total (\d+)$/m.exec(m)?.[1])).toBeGreaterThanOrEqual(1);
    for (const name of [
      'presence_notifier_streams_open',
      'presence_router_calls_total',
      'presence_router_call_duration_seconds',
      'presence_router_call_failures_total',
      'presence_federation_queue_size',
      'presence_inbound_dropped_items_total',
      'presence_http_requests_total',
    ]) {
      expect(m).toContain(`# TYPE ${name}`);
    }
    expect(m).toMatch(/presence_http_requests_total\{method="PUT",route="presence",status="200"\} 2/);
  });
});
