/**
 * Logging in and out (`/login`, `/logout`, `/logout/all`, `/account/whoami`),
 * the login config (hashed and plain-text passwords, validation), sessions
 * kept across a restart in `service.login.sessions_file`, and the other
 * endpoints a stock client calls before syncing: `/capabilities`,
 * `/pushrules/` and filters.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../src/index.js';
import { parseServiceConfig } from '../../service/config.js';
import { hashPassword, verifyPassword } from '../../service/password.js';
import { ALICE, BOB, TOKENS, clientPath, closeAll, expectMatrixError, http, presencePath, startService, testConfig } from './helpers.js';

const dirs: string[] = [];
afterEach(async () => {
  await closeAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'presence-login-'));
  dirs.push(d);
  return d;
}

// The default cost takes a few hundred ms per check; a cheap one keeps these tests fast (the defaults are tested below).
const CHEAP = { n: 1024, r: 8, p: 1 };
let aliceHash: Promise<string> | undefined;

/** alice logs in with a scrypt hash, bob with a plain-text password (and keeps his static token). */
async function loginConfig(extra: Record<string, unknown> = {}) {
  aliceHash ??= hashPassword('alice secret', CHEAP);
  return testConfig({
    service: {
      users: [
        { user_id: ALICE, password_hash: await aliceHash },
        { user_id: BOB, access_token: TOKENS[BOB], password: 'bob secret' },
      ],
      ...extra,
    },
  });
}

const login = (url: string, body: Record<string, unknown>) => http(url, 'POST', clientPath('/login'), { json: body });
const password = (user: string, pw: string, more: Record<string, unknown> = {}) => ({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: pw, ...more });

describe('POST /login (m.login.password)', () => {
  it('lists the password flow', async () => {
    const { url } = await startService(await loginConfig());
    const r = await http(url, 'GET', clientPath('/login'));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ flows: [{ type: 'm.login.password' }] });
  });

  it('issues a token for a hashed and a plain-text password; the token works like a configured one', async () => {
    const { url } = await startService(await loginConfig());
    const a = await login(url, password('alice', 'alice secret', { device_id: 'PHONE', initial_device_display_name: 'phone' }));
    expect(a.status, a.text).toBe(200);
    const body = a.body as { user_id: string; access_token: string; device_id: string; home_server: string };
    expect(body).toMatchObject({ user_id: ALICE, device_id: 'PHONE', home_server: 'test.local' });
    expect(body.access_token).toMatch(/^pe_[A-Za-z0-9_-]{43}$/);
    expect((await http(url, 'GET', clientPath('/account/whoami'), { token: body.access_token })).body).toEqual({ user_id: ALICE, device_id: 'PHONE', is_guest: false });
    const put = await http(url, 'PUT', presencePath(ALICE), { token: body.access_token, json: { presence: 'online', status_msg: 'via login' } });
    expect(put.status, put.text).toBe(200);
    expect((await http(url, 'GET', presencePath(ALICE), { token: TOKENS[BOB] as string })).body).toMatchObject({ presence: 'online', status_msg: 'via login' });

    // A full user id and the deprecated top-level `user` work too; no device_id → a generated one.
    const b = await login(url, { type: 'm.login.password', user: BOB, password: 'bob secret' });
    expect(b.status, b.text).toBe(200);
    expect((b.body as { device_id: string }).device_id).toMatch(/^[A-Z]{10}$/);
    expect(await login(url, password('@ALICE:test.local', 'alice secret'))).toMatchObject({ status: 200 });
  });

  it('refuses wrong passwords, unknown users, other flows and malformed bodies', async () => {
    const { url } = await startService(await loginConfig({ login: { rate_limit: { per_second: 100, burst_count: 100 } } }));
    expectMatrixError(await login(url, password('alice', 'wrong')), 403, 'M_FORBIDDEN');
    expectMatrixError(await login(url, password('nobody', 'alice secret')), 403, 'M_FORBIDDEN');
    expectMatrixError(await login(url, password('@alice:elsewhere.test', 'alice secret')), 403, 'M_FORBIDDEN');
    // carol has only a static token: no password login.
    expectMatrixError(await login(url, password('carol', 'anything')), 403, 'M_FORBIDDEN');
    expectMatrixError(await login(url, { type: 'm.login.token', token: 'x' }), 400, 'M_UNKNOWN');
    expectMatrixError(await login(url, { type: 'm.login.password', identifier: { type: 'm.id.thirdparty', medium: 'email', address: 'a@b.c' }, password: 'x' }), 400, 'M_UNKNOWN');
    expectMatrixError(await login(url, { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'alice' } }), 400, 'M_MISSING_PARAM');
    expectMatrixError(await login(url, { type: 'm.login.password', password: 'x' }), 400, 'M_MISSING_PARAM');
    expectMatrixError(await login(url, { type: 42 }), 400, 'M_BAD_JSON');
    expectMatrixError(await http(url, 'POST', clientPath('/login'), { body: 'not json' }), 400, 'M_BAD_JSON');
  });

  it('limits attempts per account (429 with retry_after_ms)', async () => {
    const { url } = await startService(await loginConfig({ login: { rate_limit: { per_second: 0.01, burst_count: 2 } } }));
    expectMatrixError(await login(url, password('alice', 'wrong')), 403, 'M_FORBIDDEN');
    expectMatrixError(await login(url, password('alice', 'wrong')), 403, 'M_FORBIDDEN');
    const limited = expectMatrixError(await login(url, password('alice', 'alice secret')), 429, 'M_LIMIT_EXCEEDED');
    expect(limited.retry_after_ms).toBeGreaterThan(0);
    // Another account has its own budget.
    expect((await login(url, password('bob', 'bob secret'))).status).toBe(200);
  });
});

describe('logout', () => {
  it('ends a session; a configured token cannot be logged out', async () => {
    const { url } = await startService(await loginConfig());
    const token = ((await login(url, password('alice', 'alice secret'))).body as { access_token: string }).access_token;
    expect((await http(url, 'POST', clientPath('/logout'), { token, json: {} })).status).toBe(200);
    expectMatrixError(await http(url, 'GET', clientPath('/account/whoami'), { token }), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'POST', clientPath('/logout'), { token: TOKENS[BOB] as string, json: {} }), 403, 'M_FORBIDDEN');
    expect((await http(url, 'GET', clientPath('/account/whoami'), { token: TOKENS[BOB] as string })).status).toBe(200);
  });

  it('/logout/all ends every session of the user and no one else’s', async () => {
    const { url } = await startService(await loginConfig());
    const tokenOf = async (user: string, pw: string) => ((await login(url, password(user, pw))).body as { access_token: string }).access_token;
    const [b1, b2, a1] = [await tokenOf('bob', 'bob secret'), await tokenOf('bob', 'bob secret'), await tokenOf('alice', 'alice secret')];
    expect((await http(url, 'POST', clientPath('/logout/all'), { token: b1, json: {} })).status).toBe(200);
    expectMatrixError(await http(url, 'GET', clientPath('/account/whoami'), { token: b1 }), 401, 'M_UNKNOWN_TOKEN');
    expectMatrixError(await http(url, 'GET', clientPath('/account/whoami'), { token: b2 }), 401, 'M_UNKNOWN_TOKEN');
    expect((await http(url, 'GET', clientPath('/account/whoami'), { token: a1 })).status).toBe(200);
    expect((await http(url, 'GET', clientPath('/account/whoami'), { token: TOKENS[BOB] as string })).status).toBe(200);
  });
});

describe('sessions file', () => {
  it('keeps tokens across a restart, as digests only; a logout is kept too', async () => {
    const dir = tempDir();
    const file = join(dir, 'sessions.json');
    const config = await loginConfig({ login: { sessions_file: file } });
    const first = await startService(config);
    const keep = ((await login(first.url, password('alice', 'alice secret', { device_id: 'KEEP' }))).body as { access_token: string }).access_token;
    const drop = ((await login(first.url, password('alice', 'alice secret', { device_id: 'DROP' }))).body as { access_token: string }).access_token;
    expect((await http(first.url, 'POST', clientPath('/logout'), { token: drop, json: {} })).status).toBe(200);
    await first.service.close();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(keep);
    expect(text).toContain('KEEP');

    const second = await startService(config);
    expect((await http(second.url, 'GET', clientPath('/account/whoami'), { token: keep })).body).toEqual({ user_id: ALICE, device_id: 'KEEP', is_guest: false });
    expectMatrixError(await http(second.url, 'GET', clientPath('/account/whoami'), { token: drop }), 401, 'M_UNKNOWN_TOKEN');
  });

  it('refuses to start on a malformed sessions file, naming it', async () => {
    const file = join(tempDir(), 'sessions.json');
    writeFileSync(file, '{"version":1,"sessions":[{"token_sha256":"short"}]}');
    await expect(startService(await loginConfig({ login: { sessions_file: file } }))).rejects.toThrow(/sessions\.json is malformed at sessions\.0/);
  });
});

describe('login config', () => {
  it('hashes verify, and a wrong password or a damaged hash does not', async () => {
    const hash = await hashPassword('pw');
    expect(hash).toMatch(/^\$scrypt\$n=16384,r=8,p=5\$/);
    expect(await verifyPassword({ kind: 'scrypt', hash }, 'pw')).toBe(true);
    expect(await verifyPassword({ kind: 'scrypt', hash }, 'pW')).toBe(false);
    expect(await verifyPassword({ kind: 'scrypt', hash: hash.slice(0, -2) + (hash.endsWith('AA') ? 'BB' : 'AA') }, 'pw')).toBe(false);
    expect(await verifyPassword({ kind: 'plain', password: 'pw' }, 'pw')).toBe(true);
    expect(await verifyPassword({ kind: 'plain', password: 'pw' }, 'pw ')).toBe(false);
  });

  it.each([
    ['a malformed hash', [{ user_id: ALICE, password_hash: 'sha256:abc' }], 'service.users[0].password_hash'],
    ['a hash with a non-power-of-two n', [{ user_id: ALICE, password_hash: `$scrypt$n=1000,r=8,p=1$${'A'.repeat(22)}$${'B'.repeat(43)}` }], 'service.users[0].password_hash'],
    ['both a hash and a plain password', [{ user_id: ALICE, password: 'x', password_hash: `$scrypt$n=16384,r=8,p=1$${'A'.repeat(22)}$${'B'.repeat(43)}` }], 'service.users[0].password'],
    ['a user with neither a token nor a password', [{ user_id: ALICE }], 'service.users[0].access_token'],
    [
      'two passwords for one user',
      [
        { user_id: ALICE, access_token: 'alice-token-1', password: 'a' },
        { user_id: ALICE, access_token: 'alice-token-2', password: 'b' },
      ],
      'service.users[1].password',
    ],
  ])('rejects %s', (_name, users, path) => {
    let error: unknown;
    try {
      parseServiceConfig({ server_name: 'test.local', service: { users } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).path).toBe(path);
  });

  it('examples/homeserver.yaml: alice logs in with the password its comment gives', async () => {
    const examples = fileURLToPath(new URL('../../examples/', import.meta.url));
    const config = parseYaml(readFileSync(join(examples, 'homeserver.yaml'), 'utf8')) as Record<string, unknown>;
    const { url } = await startService(config, { baseDir: examples, port: 0 });
    const r = await login(url, password('alice', 'alice-demo-password'));
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ user_id: '@alice:example.org' });
  });

  it('warns at start-up about plain-text passwords', async () => {
    const warnings: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: (m: string) => warnings.push(m), error: () => {} };
    await startService(await loginConfig(), { logger });
    expect(warnings.some((w) => w.includes(BOB) && w.includes('plain-text password'))).toBe(true);
    expect(warnings.some((w) => w.includes(ALICE))).toBe(false);
  });
});

describe('what a client asks for before syncing', () => {
  it('/capabilities', async () => {
    const { url } = await startService();
    const r = await http(url, 'GET', clientPath('/capabilities'), { token: TOKENS[ALICE] as string });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ capabilities: { 'm.change_password': { enabled: false }, 'm.room_versions': { default: '10' } } });
    expectMatrixError(await http(url, 'GET', clientPath('/capabilities')), 401, 'M_MISSING_TOKEN');
  });

  it('/pushrules/: the spec’s default rule set for the user', async () => {
    const { url } = await startService();
    const r = await http(url, 'GET', clientPath('/pushrules/'), { token: TOKENS[ALICE] as string });
    expect(r.status).toBe(200);
    const global = (r.body as { global: Record<string, { rule_id: string; pattern?: string; conditions?: unknown[] }[]> }).global;
    expect(Object.keys(global).sort()).toEqual(['content', 'override', 'room', 'sender', 'underride']);
    expect(global.override?.map((x) => x.rule_id)).toContain('.m.rule.master');
    expect(global.override?.find((x) => x.rule_id === '.m.rule.invite_for_me')?.conditions).toContainEqual({ kind: 'event_match', key: 'state_key', pattern: ALICE });
    expect(global.content?.[0]).toMatchObject({ rule_id: '.m.rule.contains_user_name', pattern: 'alice' });
    expect(global.underride?.map((x) => x.rule_id)).toEqual(['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted']);
    expect((await http(url, 'GET', clientPath('/pushrules/global/'), { token: TOKENS[ALICE] as string })).body).toEqual(global);
  });

  it('filters: create, read back, same filter same id; only one’s own', async () => {
    const { url } = await startService();
    const path = (user: string, id = '') => clientPath(`/user/${encodeURIComponent(user)}/filter${id === '' ? '' : `/${id}`}`);
    const filter = { room: { timeline: { limit: 10 } }, presence: { types: ['m.presence'] } };
    const created = await http(url, 'POST', path(ALICE), { token: TOKENS[ALICE] as string, json: filter });
    expect(created.status, created.text).toBe(200);
    const id = (created.body as { filter_id: string }).filter_id;
    expect(typeof id).toBe('string');
    expect((await http(url, 'GET', path(ALICE, id), { token: TOKENS[ALICE] as string })).body).toEqual(filter);
    expect(((await http(url, 'POST', path(ALICE), { token: TOKENS[ALICE] as string, json: filter })).body as { filter_id: string }).filter_id).toBe(id);
    expectMatrixError(await http(url, 'GET', path(ALICE, '999'), { token: TOKENS[ALICE] as string }), 404, 'M_NOT_FOUND');
    expectMatrixError(await http(url, 'GET', path(ALICE, id), { token: TOKENS[BOB] as string }), 403, 'M_FORBIDDEN');
    expectMatrixError(await http(url, 'POST', path(BOB), { token: TOKENS[ALICE] as string, json: filter }), 403, 'M_FORBIDDEN');
    expectMatrixError(await http(url, 'POST', path(ALICE), { token: TOKENS[ALICE] as string, json: [1] }), 400, 'M_BAD_JSON');
    // A filter id in /sync is accepted (filters are not applied).
    expect((await http(url, 'GET', clientPath(`/sync?filter=${id}`), { token: TOKENS[ALICE] as string })).status).toBe(200);
  });
});
