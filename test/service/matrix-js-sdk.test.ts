/**
 * The service driven by the real Matrix client library (matrix-js-sdk):
 * two users' presence round trips and the forbidden / unknown-token cases.
 */
import { createClient, MatrixError, type MatrixClient } from 'matrix-js-sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { ALICE, BOB, CAROL, TOKENS, closeAll, quietSdkLogger, startService, testConfig } from './helpers.js';

afterEach(closeAll);

const clients: MatrixClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stopClient();
});


function client(baseUrl: string, userId: string, accessToken: string): MatrixClient {
  const c = createClient({ baseUrl, userId, accessToken, logger: quietSdkLogger });
  clients.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<MatrixError> {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(MatrixError);
    return error as MatrixError;
  }
  throw new Error('expected the call to be rejected');
}

describe('matrix-js-sdk against the service', () => {
  it('two users set and read each other’s presence', async () => {
    const { url } = await startService();
    const alice = client(url, ALICE, TOKENS[ALICE] as string);
    const bob = client(url, BOB, TOKENS[BOB] as string);

    await alice.setPresence({ presence: 'online', status_msg: 'working' });
    await bob.setPresence({ presence: 'unavailable', status_msg: 'brb' });

    expect(await bob.getPresence(ALICE)).toMatchObject({ presence: 'online', status_msg: 'working', currently_active: true });
    expect(await alice.getPresence(BOB)).toMatchObject({ presence: 'unavailable', status_msg: 'brb' });
    expect(await alice.getPresence(ALICE)).toMatchObject({ presence: 'online', status_msg: 'working' });

    await alice.setPresence({ presence: 'offline' });
    const after = await bob.getPresence(ALICE);
    expect(after.presence).toBe('offline');
    expect(after.status_msg).toBeUndefined();
  });

  it('surfaces the forbidden and unknown-token cases as MatrixErrors', async () => {
    const { url } = await startService();
    const alice = client(url, ALICE, TOKENS[ALICE] as string);

    const notVisible = await rejection(alice.getPresence(CAROL));
    expect(notVisible.httpStatus).toBe(403);
    expect(notVisible.errcode).toBe('M_FORBIDDEN');

    // A client claiming to be bob with alice's token: setPresence targets bob's path.
    const impostor = client(url, BOB, TOKENS[ALICE] as string);
    const notYours = await rejection(impostor.setPresence({ presence: 'online' }));
    expect(notYours.httpStatus).toBe(403);
    expect(notYours.errcode).toBe('M_FORBIDDEN');

    const stranger = client(url, ALICE, 'not-a-valid-token');
    const unknown = await rejection(stranger.getPresence(ALICE));
    expect(unknown.httpStatus).toBe(401);
    expect(unknown.errcode).toBe('M_UNKNOWN_TOKEN');

  });

  it('surfaces the presence rate limit as M_LIMIT_EXCEEDED with retry_after_ms', async () => {
    const { url } = await startService(testConfig({ top: { rc_presence: { per_user: { per_second: 0.01, burst_count: 1 } } } }));
    const alice = client(url, ALICE, TOKENS[ALICE] as string);
    await alice.setPresence({ presence: 'online' });
    const limited = await rejection(alice.setPresence({ presence: 'unavailable' }));
    expect(limited.httpStatus).toBe(429);
    expect(limited.errcode).toBe('M_LIMIT_EXCEEDED');
    expect(limited.data.retry_after_ms).toBeGreaterThan(0);
  });
});
