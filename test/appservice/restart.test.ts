/**
 * Kill the bridge and the service mid-stream (SIGKILL, both real processes)
 * and check the latest-state contract: every user's last state arrives, no
 * user's state ever goes back to an older one, and the only repeats are the
 * few resends around a restart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { http } from '../service/helpers.js';
import { received, startBridge, until, writeRegistration, type Bridge } from './support.js';

const start = fileURLToPath(new URL('../../service/start.mjs', import.meta.url));
const USERS = Array.from({ length: 8 }, (_, i) => `@user${i}:test.local`);
const token = (u: string): string => `token-${u.slice(1, u.indexOf(':'))}-000`;

interface Service {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<void>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function startServiceProcess(configPath: string): Promise<Service> {
  const child = spawn(process.execPath, [start, 'serve', configPath, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start within 30 s:\n${out}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('utf8');
      const m = /listening on (http:\/\/[^\s"]+)/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, exited });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`service exited before listening:\n${out}`));
    });
  });
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  child.kill('SIGKILL');
  await exited;
}

describe('appservice delivery across restarts', () => {
  it('survives SIGKILL of the bridge and of the service without loss or going back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-as-restart-'));
    dirs.push(dir);
    const out = join(dir, 'received.jsonl');
    let bridge: Bridge = await startBridge(out);
    children.push(bridge.child);
    const registration = writeRegistration(dir, bridge.url);
    const configPath = join(dir, 'homeserver.yaml');
    writeFileSync(
      configPath,
      stringify({
        server_name: 'test.local',
        // Long timers: no later presence change (going offline after sync_online_timeout) may mask a lost state.
        presence: { enabled: true, sync_online_timeout: '1h', idle_timeout: '2h' },
        rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } },
        log: { kind: 'file', path: './log' },
        app_service_config_files: [registration],
        service: {
          users: USERS.map((u) => ({ user_id: u, access_token: token(u) })),
          rooms: [{ room_id: '!bridged:test.local', members: [...USERS, '@irc_x:test.local'] }],
          appservices: { initial_backoff_ms: 50, max_backoff_ms: 200, max_events_per_transaction: 3 },
          metrics: false,
        },
      }),
    );
    let service = await startServiceProcess(configPath);
    const lastSet = new Map<string, number>();
    const STEPS = 90;
    for (let n = 1; n <= STEPS; n++) {
      // The second half of the users change only before the first service kill, while the bridge is down:
      // their last states exist then only in the log and in what the saved position says is not delivered.
      const user = USERS[n <= 40 ? n % USERS.length : n % (USERS.length / 2)] as string;
      const r = await http(service.url, 'PUT', `/_matrix/client/v3/presence/${encodeURIComponent(user)}/status`, {
        token: token(user),
        json: { presence: n % 2 === 0 ? 'online' : 'unavailable', status_msg: `s${n}` },
      });
      expect(r.status).toBe(200);
      lastSet.set(user, n);
      if (n === 20) await kill(bridge.child, bridge.exited);
      if (n === 55) {
        bridge = await startBridge(out, bridge.port);
        children.push(bridge.child);
      }
      if (n === 40 || n === 70) {
        // Killed with transactions queued or in flight: what was not acknowledged must come back.
        await kill(service.child, service.exited);
        service = await startServiceProcess(configPath);
      }
      if (n % 4 === 0) await new Promise((r) => setTimeout(r, 5));
    }

    const seq = (status: string | undefined): number => Number((status ?? 's0').slice(1));
    const latest = (): Map<string, number> => {
      const m = new Map<string, number>();
      for (const e of received(out)) m.set(e.sender, seq(e.content.status_msg));
      return m;
    };
    await until(() => USERS.every((u) => latest().get(u) === lastSet.get(u)), 'every user’s last state at the bridge', 30_000);

    const events = received(out);
    const perUser = new Map<string, number[]>();
    for (const e of events) perUser.set(e.sender, [...(perUser.get(e.sender) ?? []), seq(e.content.status_msg)]);
    let repeats = 0;
    for (const [user, seqs] of perUser) {
      for (let i = 1; i < seqs.length; i++) {
        // Latest state per user: never an older state after a newer one.
        expect(seqs[i], `${user}: ${seqs.join(',')}`).toBeGreaterThanOrEqual(seqs[i - 1] as number);
        if (seqs[i] === seqs[i - 1]) repeats++;
      }
    }
    // Repeats only around the restarts: at most each user's latest state once per restart, plus one retried transaction each.
    expect(repeats).toBeLessThanOrEqual(USERS.length * 3 + 3 * 3);
    const state = JSON.parse(readFileSync(join(dir, 'log', 'appservices', 'irc-bridge.json'), 'utf8')) as { position: number };
    expect(state.position).toBeGreaterThan(0);
    await kill(service.child, service.exited);
  }, 120_000);
});
