/**
 * Issue 20 item 3: `PUT /presence/{userId}/status` and `/sync?set_presence=`
 * each have their own `rc_presence.per_user` bucket, as in Synapse (one
 * limiter per servlet). With the production default (0.1/s, burst 1) and one
 * shared bucket, a sync followed a second later by a PUT got 429, and a
 * sync right after a PUT was served without affecting presence.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from '../../src/testing/index.js';
import { ALICE, TOKENS, clientPath, closeAll, expectMatrixError, http, presencePath, startService, testConfig } from './helpers.js';

afterEach(closeAll);

const productionDefault = () => testConfig({ top: { rc_presence: { per_user: { per_second: 0.1, burst_count: 1 } } } });
const alice = TOKENS[ALICE] as string;

describe('rc_presence: one bucket per endpoint', () => {
  it('a sync followed a second later by a PUT: the PUT is accepted', async () => {
    const clock = new SimulatedClock();
    const { url } = await startService(productionDefault(), { clock });
    const sync = await http(url, 'GET', clientPath('/sync'), { token: alice });
    expect(sync.status, sync.text).toBe(200);
    clock.advance(1_000);
    const put = await http(url, 'PUT', presencePath(ALICE), { token: alice, json: { presence: 'unavailable' } });
    expect(put.status, put.text).toBe(200);
    // Each bucket still limits its own endpoint.
    expectMatrixError(await http(url, 'PUT', presencePath(ALICE), { token: alice, json: { presence: 'online' } }), 429, 'M_LIMIT_EXCEEDED');
  });

  it('a sync right after a PUT affects presence', async () => {
    const clock = new SimulatedClock();
    const { url, service } = await startService(productionDefault(), { clock });
    const put = await http(url, 'PUT', presencePath(ALICE), { token: alice, json: { presence: 'online' } });
    expect(put.status, put.text).toBe(200);
    const { next_batch } = (await http(url, 'GET', clientPath('/sync?set_presence=offline'), { token: alice })).body as { next_batch: string };
    // A long-poll that counts for presence shows as an open sync on alice's device.
    const ac = new AbortController();
    const pending = http(url, 'GET', clientPath(`/sync?since=${next_batch}&timeout=30000`), { token: alice, signal: ac.signal }).catch(() => undefined);
    const deadline = Date.now() + 5_000;
    while (Object.keys(service.engine.getUserRecord(ALICE).syncs).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(Object.keys(service.engine.getUserRecord(ALICE).syncs)).toEqual(['ALICEDEV']);
    ac.abort();
    await pending;
  });

  it('a second sync within the window is served without affecting presence', async () => {
    const clock = new SimulatedClock();
    const { url, service } = await startService(productionDefault(), { clock });
    expect((await http(url, 'GET', clientPath('/sync'), { token: alice })).status).toBe(200);
    const before = service.engine.getUserRecord(ALICE);
    const again = await http(url, 'GET', clientPath('/sync?set_presence=unavailable'), { token: alice });
    expect(again.status, again.text).toBe(200);
    expect(service.engine.getUserPresence(ALICE).state).toBe('online');
    expect(service.engine.getUserRecord(ALICE)).toEqual(before);
  });
});
