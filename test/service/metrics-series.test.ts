/**
 * After a short load on two federating services (a file log with periodic
 * snapshots, a presence router, a rate-limited user), a scrape of /metrics
 * holds a sample of every series docs/service.md lists, and follows the
 * Prometheus conventions checked here (histograms as _bucket/_sum/_count,
 * no mixed total in a labelled gauge).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, http, presencePath, startService, waitFor } from './helpers.js';

const SECRET = 'metrics-shared-secret-0123456789';
const A = { alice: '@alice:a.test', carol: '@carol:a.test' };
const BOB = '@bob:b.test';
const ROOM = '!m:a.test';
const dirs: string[] = [];
const root = fileURLToPath(new URL('../../', import.meta.url));

afterEach(async () => {
  await closeAll();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every series docs/service.md lists, by type. */
export const LISTED_SERIES: Readonly<Record<string, 'histogram' | 'counter' | 'gauge'>> = {
  presence_input_to_emission_seconds: 'histogram',
  presence_turn_duration_seconds: 'histogram',
  presence_timers_fired_total: 'counter',
  presence_log_append_duration_seconds: 'histogram',
  presence_log_fsync_duration_seconds: 'histogram',
  presence_snapshot_duration_seconds: 'histogram',
  presence_router_call_duration_seconds: 'histogram',
  presence_federation_send_duration_seconds: 'histogram',
  presence_http_request_duration_seconds: 'histogram',
  presence_state_transitions_total: 'counter',
  presence_deliveries_total: 'counter',
  presence_updates_total: 'counter',
  presence_rate_limited_requests_total: 'counter',
  presence_rejected_inputs_total: 'counter',
  presence_router_calls_total: 'counter',
  presence_router_call_failures_total: 'counter',
  presence_http_requests_total: 'counter',
  presence_inbound_dropped_items_total: 'counter',
  presence_federation_transmissions_total: 'counter',
  presence_federation_states_sent_total: 'counter',
  presence_federation_send_failures_total: 'counter',
  presence_federation_dropped_states_total: 'counter',
  presence_federation_transactions_total: 'counter',
  presence_federation_unroutable_edus_total: 'counter',
  presence_federation_inbound_transactions_total: 'counter',
  presence_federation_queue_size: 'gauge',
  presence_federation_inbound_limited_total: 'counter',
  presence_federation_queue_states: 'gauge',
  presence_federation_destinations: 'gauge',
  presence_notifier_streams_open: 'gauge',
  presence_live_actors: 'gauge',
  presence_dormant_records: 'gauge',
  presence_sync_long_polls_open: 'gauge',
};

function config(name: 'a.test' | 'b.test', logDir?: string): Record<string, unknown> {
  const users =
    name === 'a.test'
      ? [
          { user_id: A.alice, access_token: 'alice-a-token' },
          { user_id: A.carol, access_token: 'carol-a-token' },
        ]
      : [{ user_id: BOB, access_token: 'bob-b-token' }];
  return {
    server_name: name,
    presence: {
      enabled: true,
      ...(name === 'a.test' ? { presence_router: { module: './examples/routers/example-presence-router.js#ExamplePresenceRouter', config: { always_send_to_users: [A.carol] } } } : {}),
    },
    rc_presence: { per_user: { per_second: 0.5, burst_count: 6 } },
    ...(logDir !== undefined ? { log: { kind: 'file', path: logDir, fsync: 'always', snapshot_every: 3 } } : {}),
    service: {
      listen: { host: '127.0.0.1', port: 0 },
      users,
      // @dave's server is no configured peer: EDUs for it are counted as unroutable.
      rooms: [{ room_id: ROOM, members: [A.alice, A.carol, BOB, '@dave:c.test'] }],
      federation: { peers: [{ server_name: name === 'a.test' ? 'b.test' : 'a.test', url: 'http://127.0.0.1:9', shared_secret: SECRET }], initial_backoff_ms: 10, max_backoff_ms: 50 },
    },
  };
}

describe('/metrics after a short load', () => {
  it('has a sample of every listed series', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-metrics-'));
    dirs.push(dir);
    const a = await startService(config('a.test', join(dir, 'log')));
    const b = await startService(config('b.test'));
    a.service.setPeerUrl('b.test', b.url);
    b.service.setPeerUrl('a.test', a.url);

    const sync = await http(a.url, 'GET', '/_matrix/client/v3/sync', { token: 'carol-a-token' });
    const since = (sync.body as { next_batch: string }).next_batch;
    const longPoll = http(a.url, 'GET', `/_matrix/client/v3/sync?since=${since}&timeout=5000`, { token: 'carol-a-token' });
    await waitFor(() => a.service.engine.stats.openSyncStreams >= 1, 5_000, 'carol’s long-poll');
    for (const presence of ['online', 'unavailable', 'online']) {
      expect((await http(a.url, 'PUT', presencePath(A.alice), { token: 'alice-a-token', json: { presence } })).status).toBe(200);
    }
    await longPoll;
    await http(b.url, 'PUT', presencePath(BOB), { token: 'bob-b-token', json: { presence: 'online' } });
    // Alice's updates reach b.test (federation sends), then she is rate limited (burst 6, 0.5/s).
    await waitFor(() => a.service.engine.federationStats.transmissions >= 1, 10_000, 'a federation send');
    let limited = 0;
    for (let i = 0; i < 10 && limited === 0; i++) {
      const r = await http(a.url, 'PUT', presencePath(A.alice), { token: 'alice-a-token', json: { presence: i % 2 === 0 ? 'unavailable' : 'online' } });
      if (r.status === 429) limited++;
    }
    expect(limited).toBe(1);

    const text = (await http(a.url, 'GET', '/metrics')).text;
    const missing: string[] = [];
    for (const [name, type] of Object.entries(LISTED_SERIES)) {
      expect(text, name).toContain(`# TYPE ${name} ${type}`);
      const sample = type === 'histogram' ? `${name}_count` : name;
      const m = new RegExp(`^${sample}(\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      if (m === null) missing.push(name);
      else if (type === 'histogram') expect(Number(m[2]), `${name} observations`).toBeGreaterThan(0);
    }
    expect(missing, 'series without a sample').toEqual([]);
    expect(text).toMatch(/^presence_state_transitions_total\{from="offline",to="online"\} [1-9]/m);
    expect(text).toMatch(/^presence_state_transitions_total\{from="online",to="unavailable"\} [1-9]/m);
    expect(text).toMatch(/^presence_snapshot_duration_seconds_count\{reason="periodic"\} [1-9]/m);
    // router series carry the module's name (the config's presence_router here)
    const routerModule = /^presence_router_calls_total\{module="([^"]+)"\} [1-9]/m.exec(text)?.[1];
    expect(routerModule, 'a module label on presence_router_calls_total').toMatch(/example-presence-router/);
    expect(text).toMatch(/^presence_router_call_duration_seconds_count\{(?=[^}]*callback="getUsersForStates")(?=[^}]*module="[^"]*example-presence-router[^"]*")[^}]*\} [1-9]/m);
    expect(text).toMatch(/^presence_router_call_failures_total\{(?=[^}]*module="[^"]*example-presence-router)(?=[^}]*kind="timeout")[^}]*\} 0$/m);
    expect(text).toMatch(/^presence_federation_send_duration_seconds_count\{result="ok"\} [1-9]/m);
    expect(text).toMatch(/^presence_rate_limited_requests_total\{route="presence"\} 1$/m);
    expect(text).toMatch(/^presence_federation_queue_size\{destination="b.test"\} \d+$/m);
    expect(text).not.toContain('destination="*"');
  }, 60_000);
});

describe('state transitions across a restart', () => {
  it('knows the restored state of a user: online → unavailable after a restart, not offline → unavailable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'presence-metrics-'));
    dirs.push(dir);
    const cfg = config('a.test', join(dir, 'log'));
    const first = await startService(cfg);
    expect((await http(first.url, 'PUT', presencePath(A.alice), { token: 'alice-a-token', json: { presence: 'online' } })).status).toBe(200);
    await closeAll();
    const second = await startService(cfg);
    expect((await http(second.url, 'PUT', presencePath(A.alice), { token: 'alice-a-token', json: { presence: 'unavailable' } })).status).toBe(200);
    const text = (await http(second.url, 'GET', '/metrics')).text;
    expect(text).toMatch(/^presence_state_transitions_total\{from="online",to="unavailable"\} 1$/m);
    expect(text).not.toMatch(/^presence_state_transitions_total\{from="offline",to="unavailable"\}/m);
  });
});

describe('the metrics documentation and dashboard', () => {
  const names = (text: string) => new Set([...text.matchAll(/presence_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));

  it('docs/service.md lists exactly the series the test checks', () => {
    const doc = readFileSync(join(root, 'docs', 'service.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Metrics'), doc.indexOf('## Operating the service'));
    const rows = section.split('\n').filter((l) => l.startsWith('| `presence_'));
    const documented = new Set(rows.flatMap((r) => [...names(r.split(' | ')[0] ?? '')]));
    expect([...documented].sort()).toEqual(Object.keys(LISTED_SERIES).sort());
  });

  it('the Grafana dashboard uses only listed series, and every histogram', () => {
    const dashboard = JSON.parse(readFileSync(join(root, 'examples', 'grafana-dashboard.json'), 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    const used = names(exprs.join('\n'));
    for (const name of used) expect(Object.keys(LISTED_SERIES), `${name} in the dashboard`).toContain(name);
    for (const [name, type] of Object.entries(LISTED_SERIES)) if (type === 'histogram') expect([...used], name).toContain(name);
    for (const e of exprs) if (e.includes('histogram_quantile')) expect(e, 'quantiles over _bucket rates by le').toMatch(/sum by \(le[,)][\s\S]*_bucket/);
  });
});
