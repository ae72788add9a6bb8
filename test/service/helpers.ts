/**
 * Helpers for the service integration tests: start a real service on an
 * ephemeral port, talk HTTP to it, and wait (bounded) for conditions.
 */
import type { Logger as SdkLogger } from 'matrix-js-sdk/lib/logger.js';
import { expect } from 'vitest';
import { silentLogger, type Logger } from '../../src/index.js';
import { PresenceService, type PresenceServiceOptions } from '../../service/server.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const ALICE = '@alice:test.local';
export const BOB = '@bob:test.local';
export const CAROL = '@carol:test.local';
export const TOKENS: Readonly<Record<string, string>> = {
  [ALICE]: 'alice-token-0001',
  [BOB]: 'bob-token-0002',
  [CAROL]: 'carol-token-0003',
};
export const SHARED_ROOM = '!shared:test.local';

type Json = Record<string, unknown>;

/** A service config: alice and bob share a room, carol is alone. `patch` overrides top-level keys and `service` keys. */
export function testConfig(patch: { top?: Json; service?: Json } = {}): Json {
  return {
    server_name: 'test.local',
    presence: { enabled: true },
    rc_presence: { per_user: { per_second: 100, burst_count: 100 } },
    ...patch.top,
    service: {
      listen: { host: '127.0.0.1', port: 0 },
      admin_token: ADMIN_TOKEN,
      users: [
        { user_id: ALICE, access_token: TOKENS[ALICE], device_id: 'ALICEDEV' },
        { user_id: BOB, access_token: TOKENS[BOB] },
        { user_id: CAROL, access_token: TOKENS[CAROL] },
      ],
      rooms: [{ room_id: SHARED_ROOM, members: [ALICE, BOB] }],
      ...patch.service,
    },
  };
}

export interface Running {
  readonly service: PresenceService;
  readonly url: string;
}

const running = new Set<PresenceService>();

export async function startService(config: Json = testConfig(), options: Partial<PresenceServiceOptions> & { logger?: Logger } = {}): Promise<Running> {
  const service = await PresenceService.create({ config, logger: silentLogger, defaultMetrics: false, ...options });
  await service.listen();
  running.add(service);
  return { service, url: service.url };
}

/** Close every service started by `startService` (call in afterEach). */
export async function closeAll(): Promise<void> {
  const all = [...running];
  running.clear();
  await Promise.all(all.map((s) => s.close()));
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly text: string;
}

export async function http(
  base: string,
  method: string,
  path: string,
  options: { token?: string; json?: unknown; body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body } : {}),
    signal: options.signal ?? AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Assert a Matrix error response `{errcode, error}`. */
export function expectMatrixError(r: HttpResult, status: number, errcode: string): Json {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toContain('application/json');
  const body = r.body as Json;
  expect(body.errcode).toBe(errcode);
  expect(typeof body.error).toBe('string');
  expect((body.error as string).length).toBeGreaterThan(0);
  return body;
}

/** Poll `check` until it returns true (bounded). */
export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface SyncBody {
  next_batch: string;
  presence?: { events: { type: string; sender: string; content: Json }[] };
}

export const clientPath = (p: string) => `/_matrix/client/v3${p}`;
export const presencePath = (userId: string) => clientPath(`/presence/${encodeURIComponent(userId)}/status`);

/** `next_batch` tokens: `p<presence stream id>_m<membership position>_<epoch>`. */
export const SYNC_TOKEN = /^p\d+_m\d+_[0-9a-f]+$/;
/** The presence stream id of a `next_batch` token. */
export const presencePosition = (token: string): number => Number(/^p(\d+)/.exec(token)?.[1] ?? NaN);

/** A matrix-js-sdk logger that drops everything (keeps the SDK's per-request lines out of test output). */
export const quietSdkLogger: SdkLogger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  getChild: () => quietSdkLogger,
};
