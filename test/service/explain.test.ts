/**
 * "Why is @alice online?" through the service: the admin explain and inspect
 * routes, and the offline `presence-engine explain --log` command reading the
 * file log of a running service.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ALICE, BOB, TOKENS, clientPath, closeAll, http, presencePath, startService, testConfig } from './helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dirs: string[] = [];
afterEach(async () => {
  await closeAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const alice = TOKENS[ALICE] as string;
const explainPath = (u: string, q = '') => `/_presence/admin/explain/${encodeURIComponent(u)}${q}`;

describe('explain and inspect', () => {
  it('the admin routes explain and inspect a user; the CLI reads the same from the file log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-explain-'));
    dirs.push(dir);
    const { url } = await startService(testConfig({ top: { log: { kind: 'file', path: join(dir, 'log'), fsync: 'always' } } }));
    expect((await http(url, 'PUT', presencePath(ALICE), { token: alice, json: { presence: 'unavailable', status_msg: 'lunch' } })).status).toBe(200);
    // Bob's sync is handed Alice's state: the explanation names him as a recipient of that change.
    expect((await http(url, 'GET', clientPath('/sync?set_presence=offline'), { token: TOKENS[BOB] as string })).status).toBe(200);

    const r = await http(url, 'GET', explainPath(ALICE), { token: ADMIN_TOKEN });
    expect(r.status, r.text).toBe(200);
    const body = r.body as { user_id: string; state: string; complete: boolean; steps: { cause: unknown; rule: string; status_msg?: string }[] };
    expect(body).toMatchObject({ user_id: ALICE, state: 'unavailable', complete: true });
    expect(body.steps[0]).toMatchObject({ cause: { input: 'set', device: 'ALICEDEV' }, rule: 'explicit set_state on device ALICEDEV → unavailable', status_msg: 'lunch' });
    const withIds = (await http(url, 'GET', explainPath(ALICE, '?recipients=true'), { token: ADMIN_TOKEN })).body as { audience: { local_users: number; local_user_ids: string[] } };
    expect(withIds.audience.local_user_ids).toHaveLength(withIds.audience.local_users);
    const told = (withIds as unknown as { steps: { delivered_to?: { local_user_ids?: string[]; complete: boolean } }[] }).steps[0]?.delivered_to;
    expect(told).toMatchObject({ complete: true });
    expect(told?.local_user_ids).toContain(BOB);
    expect((await http(url, 'GET', explainPath(ALICE), { token: alice })).status).toBe(403);
    expect((await http(url, 'GET', explainPath(ALICE, '?since=x'), { token: ADMIN_TOKEN })).status).toBe(400);
    expect(((await http(url, 'GET', explainPath(ALICE, '?since=1000'), { token: ADMIN_TOKEN })).body as { steps: unknown[] }).steps).toEqual([]);

    const i = await http(url, 'GET', `/_presence/admin/v1/inspect/${encodeURIComponent(ALICE)}`, { token: ADMIN_TOKEN });
    expect(i.status, i.text).toBe(200);
    expect((i.body as { deadlines: { kind: string }[] }).deadlines.map((d) => d.kind)).toEqual(['sync_timeout', 'federation_ping']);

    // offline, beside the running service (no lock taken)
    const cli = join(root, 'service', 'cli.ts');
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'explain', '--log', join(dir, 'log'), ALICE], { cwd: root });
    expect(stdout).toContain(`${ALICE}: unavailable`);
    expect(stdout).toMatch(/offline → unavailable\s+explicit set_state on device ALICEDEV → unavailable \[status "lunch"\] \(notified, stream \d+\)/);
    const json = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'explain', '--json', '--log', join(dir, 'log'), ALICE], { cwd: root });
    expect(JSON.parse(json.stdout)).toMatchObject({ userId: ALICE, state: 'unavailable' });
    await expect(promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'explain', '--log', join(dir, 'nope'), ALICE], { cwd: root })).rejects.toMatchObject({ code: 1 });
  }, 60_000);
});
