/**
 * The visibility policy endpoint over real HTTP (docs/policies.md):
 * `GET`/`PUT /_matrix/client/v3/user/{userId}/org.example.presence_policy`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ALICE, BOB, CAROL, TOKENS, clientPath, closeAll, expectMatrixError, http, presencePath, startService } from './helpers.js';

afterEach(closeAll);

const tok = (u: string): string => TOKENS[u] as string;
const policyPath = (u: string) => clientPath(`/user/${encodeURIComponent(u)}/org.example.presence_policy`);

describe('presence policy endpoint', () => {
  it('an invisible user reads their own truth; users sharing a room read offline', async () => {
    const { url } = await startService();
    expect((await http(url, 'PUT', presencePath(BOB), { token: tok(BOB), json: { presence: 'online', status_msg: 'here' } })).status).toBe(200);
    const put = await http(url, 'PUT', policyPath(BOB), { token: tok(BOB), json: { invisible: true } });
    expect(put.status, put.text).toBe(200);
    expect(put.body).toEqual({ invisible: true, allow: null, deny: { users: [], servers: [] } });
    expect((await http(url, 'GET', policyPath(BOB), { token: tok(BOB) })).body).toMatchObject({ invisible: true });
    expect((await http(url, 'GET', presencePath(BOB), { token: tok(BOB) })).body).toMatchObject({ presence: 'online', status_msg: 'here' });
    const seen = await http(url, 'GET', presencePath(BOB), { token: tok(ALICE) });
    expect(seen.status, seen.text).toBe(200);
    expect(seen.body).toEqual({ presence: 'offline' });
  });

  it('refuses other users\' policies and invalid bodies', async () => {
    const { url } = await startService();
    expectMatrixError(await http(url, 'PUT', policyPath(BOB), { token: tok(CAROL), json: { invisible: true } }), 403, 'M_FORBIDDEN');
    expectMatrixError(await http(url, 'GET', policyPath(BOB), { token: tok(CAROL) }), 403, 'M_FORBIDDEN');
    const bad = expectMatrixError(await http(url, 'PUT', policyPath(BOB), { token: tok(BOB), json: { deny: { users: ['bob'] } } }), 400, 'M_INVALID_PARAM');
    expect(String(bad.error)).toMatch(/deny\.users\.0/);
    expect((await http(url, 'GET', policyPath(BOB), { token: tok(BOB) })).body).toMatchObject({ invisible: false });
  });
});
