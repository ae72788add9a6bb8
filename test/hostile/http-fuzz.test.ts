/**
 * HTTP fuzzer against the running reference service (client, admin and
 * federation endpoints), checked against docs/service.md: no 5xx, every error
 * in the Matrix shape with a documented errcode, the process alive and
 * serving, memory bounded. Requests come from a grammar of the service's
 * routes with hostile parts (ids named like Object.prototype members,
 * percent garbage, wrong types, oversized and non-JSON bodies, forged and
 * validly signed federation transactions with random EDUs).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAll, startService, testConfig, TOKENS, ALICE, BOB, ADMIN_TOKEN, SHARED_ROOM } from '../service/helpers.js';
import { federationAuth } from './raw-http.js';
import { FUZZ_TIMEOUT_MS, PROTOTYPE_NAMES, fuzzParams, DEEP } from './fuzz-runs.js';
import type { PresenceService } from '../../service/server.js';

const SECRET = 'hostile-fuzz-secret-0123456789ab';
const ERRCODES = new Set(['M_BAD_JSON', 'M_NOT_JSON', 'M_INVALID_PARAM', 'M_FORBIDDEN', 'M_UNKNOWN_TOKEN', 'M_MISSING_TOKEN', 'M_LIMIT_EXCEEDED', 'M_TOO_LARGE', 'M_UNRECOGNIZED', 'M_UNAUTHORIZED', 'M_UNKNOWN']);

let service: PresenceService;
let base: string;

beforeAll(async () => {
  const r = await startService(
    testConfig({
      top: { rc_presence: { per_user: { per_second: 50, burst_count: 20 } } },
      service: {
        max_sync_timeout_ms: 20,
        max_body_bytes: 4096,
        federation: { peers: [{ server_name: 'b.test', url: 'http://127.0.0.1:9', shared_secret: SECRET }], max_items_per_transaction: 200, max_remote_users_per_server: 300 },
      },
    }),
  );
  service = r.service;
  base = r.url;
});
afterAll(closeAll);

const weird = fc.oneof(
  fc.constantFrom(...PROTOTYPE_NAMES),
  fc.constantFrom('%', '%zz', '%00', '..', '.', '', ' ', '%2F', '%E2%82', '\u00e9', '@', ':', '!'),
  fc.string({ maxLength: 20 }),
);
const userId = fc.oneof(
  fc.constantFrom(ALICE, BOB, '@carol:test.local', '@remote:b.test', '@x:c.test'),
  weird.map((w) => `@${w}:test.local`),
  weird,
);
const roomId = fc.oneof(fc.constant(SHARED_ROOM), weird.map((w) => `!${w}:test.local`), weird);
const enc = (s: string) => fc.constantFrom(encodeURIComponent(s), s, encodeURIComponent(encodeURIComponent(s)));
const token = fc.oneof(
  fc.constantFrom(TOKENS[ALICE] as string, TOKENS[BOB] as string, ADMIN_TOKEN, 'not-a-token', ''),
  fc.constantFrom(...PROTOTYPE_NAMES),
  fc.string({ maxLength: 10 }),
);
const auth = fc.oneof(
  fc.constant<Record<string, string>>({}),
  token.map((t) => ({ authorization: `Bearer ${t}` })),
  fc.string({ maxLength: 30 }).map((t) => ({ authorization: t })),
);
const jsonish = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.record({ presence: fc.oneof(fc.constantFrom('online', 'unavailable', 'offline', 'busy', ...PROTOTYPE_NAMES), fc.jsonValue()), status_msg: fc.jsonValue() }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.record({ membership: fc.oneof(fc.constantFrom('join', 'leave', 'ban', 'knock'), fc.jsonValue()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 50 }),
  fc.constantFrom('', '{', 'null', '[]', '{"presence":"online","__proto__":{"x":1}}', '{"constructor":1,"presence":"online"}', 'x'.repeat(5000)),
);
const queryValue = fc.oneof(fc.constantFrom('0', '1', '20', '99999999999', '-1', 'p0', 'p1', 'p999999999999999', 'true', 'false', 'online', 'offline', 'unavailable'), weird);
const query = fc
  .array(fc.tuple(fc.constantFrom('since', 'timeout', 'set_presence', 'full_state', 'filter', 'access_token', ...PROTOTYPE_NAMES), queryValue), { maxLength: 4 })
  .map((kv) => (kv.length === 0 ? '' : `?${kv.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`));
const method = fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS');

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | undefined;
}

const clientReq: fc.Arbitrary<Req> = fc.oneof(
  fc.tuple(method, userId.chain(enc), fc.constantFrom('v3', 'r0', 'api/v1'), auth, fc.option(jsonish, { nil: undefined })).map(([m, u, v, h, body]) => ({ method: m, path: `/_matrix/client/${v}/presence/${u}/status`, headers: h, body: m === 'GET' ? undefined : body })),
  fc.tuple(fc.constantFrom('GET', 'GET', 'POST'), query, auth).map(([m, q, h]) => ({ method: m, path: `/_matrix/client/v3/sync${q}`, headers: h })),
  fc.tuple(method, fc.constantFrom('/_matrix/client/versions', '/_matrix/client/v3/account/whoami', '/health', '/metrics', '/', '//', '/_matrix', '/_matrix/client/v3/presence//status'), auth).map(([m, p, h]) => ({ method: m, path: p, headers: h })),
  fc.tuple(fc.constantFrom('GET', 'PUT'), roomId.chain(enc), userId.chain(enc), auth, jsonish).map(([m, r, u, h, body]) => ({
    method: m,
    path: m === 'GET' ? `/_presence/admin/v1/rooms/${r}/members` : `/_presence/admin/v1/rooms/${r}/members/${u}`,
    headers: h,
    body: m === 'GET' ? undefined : body,
  })),
  weird.map((w) => ({ method: 'GET', path: `/${encodeURIComponent(w)}`, headers: {} })),
);

const pushItem = fc.oneof(
  fc.record({
    user_id: fc.oneof(fc.constantFrom('@remote:b.test', '@alice:test.local'), fc.constantFrom(...PROTOTYPE_NAMES).map((l) => `@${l}:b.test`), fc.nat(400).map((n) => `@r${n}:b.test`), weird),
    presence: fc.oneof(fc.constantFrom('online', 'unavailable', 'offline', 'org.matrix.msc3026.busy'), fc.jsonValue()),
    last_active_ago: fc.oneof(fc.nat(), fc.jsonValue()),
    status_msg: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue()),
    currently_active: fc.oneof(fc.boolean(), fc.jsonValue()),
  }, { requiredKeys: ['user_id'] }),
  fc.jsonValue(),
);
const edu = fc.oneof(
  fc.array(pushItem, { maxLength: 30 }).map((push) => ({ edu_type: 'm.presence', content: { push } })),
  fc.record({ edu_type: fc.oneof(fc.constantFrom('m.presence', 'm.typing', ...PROTOTYPE_NAMES), fc.jsonValue()), content: fc.jsonValue() }, { requiredKeys: [] }),
  fc.jsonValue(),
);
let txn = 0;
const federationReq: fc.Arbitrary<Req> = fc
  .tuple(
    fc.oneof(fc.array(edu, { maxLength: 4 }), fc.jsonValue()),
    fc.constantFrom('b.test', 'c.test', ...PROTOTYPE_NAMES),
    fc.constantFrom('valid', 'valid', 'valid', 'wrong-secret', 'no-hsig', 'garbage'),
    fc.constantFrom('b.test', 'c.test'),
    fc.option(weird, { nil: undefined }),
  )
  .map(([edus, origin, signing, bodyOrigin, txnId]) => {
    const path = `/_matrix/federation/v1/send/${encodeURIComponent(txnId ?? `fuzz-${++txn}`)}`;
    const body = JSON.stringify({ origin: bodyOrigin, pdus: [], edus });
    let authorization: string;
    if (signing === 'valid') authorization = federationAuth(SECRET, path, origin, 'test.local', body);
    else if (signing === 'wrong-secret') authorization = federationAuth('wrong-secret-0123456789abcdef', path, origin, 'test.local', body);
    else if (signing === 'no-hsig') authorization = federationAuth(SECRET, path, origin, 'test.local', body).replace(/hsig="[^"]*",/, '');
    else authorization = `X-Presence-HMAC ${origin}`;
    return { method: 'PUT', path, headers: { authorization, 'content-type': 'application/json' }, body };
  });

async function send(r: Req): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}${r.path}`, {
    method: r.method,
    headers: r.headers,
    ...(r.body !== undefined ? { body: r.body } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, text: await res.text() };
}

function check(r: Req, res: { status: number; text: string }): void {
  const what = `${r.method} ${r.path} → ${res.status} ${res.text.slice(0, 200)}`;
  expect(res.status, what).toBeLessThan(500);
  if (res.status >= 400) {
    const body = JSON.parse(res.text) as { errcode?: unknown; error?: unknown };
    expect(ERRCODES.has(body.errcode as string), what).toBe(true);
    expect(typeof body.error, what).toBe('string');
  }
}

describe('HTTP fuzzer (client, admin and federation endpoints)', () => {
  it(
    'no 5xx, documented Matrix errors only, still serving, memory bounded',
    async () => {
      const rss0 = process.memoryUsage().rss;
      let cases = 0;
      await fc.assert(
        fc.asyncProperty(fc.oneof({ weight: 3, arbitrary: clientReq }, { weight: 2, arbitrary: federationReq }), async (r) => {
          cases++;
          check(r, await send(r));
        }),
        fuzzParams(400, 40_000),
      );
      // Alive and serving, and nothing piled up.
      expect((await fetch(`${base}/health`)).status).toBe(200);
      expect(service.engine.stats.openSyncStreams).toBe(0);
      const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
      console.log(`HTTP fuzzer: ${cases} requests, RSS grew ${grown.toFixed(0)} MiB`);
      expect(grown).toBeLessThan(DEEP ? 400 : 200);
    },
    FUZZ_TIMEOUT_MS,
  );
});
