// @ts-check
/**
 * The dashboard page: one EventSource on /_presence/dashboard/events
 * (`hello`, `history`, then a `frame` each second), charts and tables
 * updated per frame, and the user search. The admin token, when the page was
 * opened with `?access_token=…`, is passed on to the stream and the search.
 */
import { TimeChart, fmtMs, fmtNum } from './charts.js';
import { renderFederation, renderRooms, renderRouterModules, renderSnapshots, renderUser } from './panels.js';

const BASE = '/_presence/dashboard';
const token = new URLSearchParams(location.search).get('access_token');
const auth = token === null ? '' : `access_token=${encodeURIComponent(token)}`;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id @param {string} text */
const set = (id, text) => {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
};

/** Chart columns, oldest first. @type {Record<string, number[]>} */
const history = {};
let keepSeconds = 3600;
/** @type {TimeChart[]} */
let charts = [];
/** @type {any} */
let hello = null;

/**
 * Per-frame handler times (ms), read by the browser test: the time from a
 * frame's arrival to the end of uPlot's redraw (uPlot draws in a microtask
 * queued by setData, so the measurement ends in a microtask queued after it).
 */
const perf = { updates: 0, times: /** @type {number[]} */ ([]), max: 0, points: 0, history };
/** @type {any} */ (window).__dashboard = perf;

function makeCharts() {
  const slo = hello.slo;
  charts = [
    new TimeChart($('chart-users'), history, {
      scales: [{ key: 'u', label: 'users' }],
      series: [
        { label: 'online', column: 'online', stroke: '#3fb950' },
        { label: 'unavailable', column: 'unavailable', stroke: '#d29922' },
        ...(hello.busyEnabled ? [{ label: 'busy', column: 'busy', stroke: '#bc8cff' }] : []),
        { label: 'offline', column: 'offline', stroke: '#6e7681' },
      ],
    }),
    new TimeChart($('chart-rates'), history, {
      scales: [{ key: 'c', label: 'changes/s' }, { key: 'd', label: 'deliveries/s', side: 'right' }],
      series: [
        { label: 'changes/s', column: 'changes', stroke: '#58a6ff', scale: 'c' },
        { label: 'deliveries/s', column: 'deliveries', stroke: '#f778ba', scale: 'd' },
      ],
    }),
    new TimeChart($('chart-latency'), history, {
      scales: [{ key: 'ms', label: 'latency', log: true, fmt: fmtMs }],
      series: [
        { label: 'p50', column: 'p50', stroke: '#3fb950', fmt: fmtMs },
        { label: 'p99', column: 'p99', stroke: '#d29922', fmt: fmtMs },
        { label: 'p99.9', column: 'p999', stroke: '#f0883e', fmt: fmtMs },
      ],
      constant: { label: `SLO p${slo.percentile} ≤ ${fmtMs(slo.ms)}`, value: slo.ms, stroke: '#f85149', scale: 'ms' },
    }),
    new TimeChart($('chart-router'), history, {
      scales: [{ key: 'c', label: 'calls/s' }, { key: 'ms', label: 'mean call', side: 'right', fmt: fmtMs }],
      series: [
        { label: 'calls/s', column: 'routerCalls', stroke: '#58a6ff', scale: 'c' },
        { label: 'failed/s', column: 'routerFailures', stroke: '#f85149', scale: 'c' },
        { label: 'mean call', column: 'routerMeanMs', stroke: '#d29922', scale: 'ms', fmt: fmtMs },
      ],
    }),
    new TimeChart($('chart-ratelimit'), history, {
      scales: [{ key: 'r', label: 'refused/s' }],
      series: [{ label: 'rate-limited/s', column: 'rateLimited', stroke: '#f85149' }],
    }),
    new TimeChart($('chart-log'), history, {
      scales: [{ key: 'ms', label: 'append', log: true, fmt: fmtMs }],
      series: [
        { label: 'append p50', column: 'appendP50', stroke: '#3fb950', fmt: fmtMs },
        { label: 'append p99', column: 'appendP99', stroke: '#d29922', fmt: fmtMs },
        { label: 'append max', column: 'appendMax', stroke: '#f85149', fmt: fmtMs },
      ],
    }),
  ];
}

/** @param {any} h */
function onHello(h) {
  hello = h;
  keepSeconds = h.historySeconds;
  set('server-name', h.serverName);
  set('meta-turns', h.turns);
  set('meta-log', h.log.fsync === null ? h.log.kind : `${h.log.kind}, fsync ${h.log.fsync}`);
  set('log-kind', h.log.kind === 'file' ? `file log, fsync ${h.log.fsync}; append time per second` : `${h.log.kind} log (no fsync or snapshots); append time per second`);
  set('router-modules', h.modules.length === 0 ? 'no router modules configured' : `modules: ${h.modules.join(', ')}`);
  $('stat-busy').hidden = !h.busyEnabled;
}

/** @param {Record<string, number[]>} h */
function onHistory(h) {
  for (const [k, v] of Object.entries(h)) history[k] = v;
  if (charts.length === 0) makeCharts();
  else for (const c of charts) c.update();
}

/** @param {any} f */
function onFrame(f) {
  const t0 = performance.now();
  const values = {
    t: f.t / 1000, online: f.users.online, unavailable: f.users.unavailable, busy: f.users.busy, offline: f.users.offline,
    inputs: f.rates.inputs, changes: f.rates.changes, deliveries: f.rates.deliveries,
    p50: f.latency.p50, p99: f.latency.p99, p999: f.latency.p999,
    routerCalls: f.router.calls, routerMeanMs: f.router.meanMs, routerFailures: f.router.failures + f.router.timeouts + f.router.invalidResults,
    rateLimited: f.rateLimited.http + f.rateLimited.engine,
    appendP50: f.log.appendP50, appendP99: f.log.appendP99, appendMax: f.log.appendMax,
  };
  const last = history.t?.[history.t.length - 1];
  if (last === undefined || values.t > last) {
    for (const [k, v] of Object.entries(values)) {
      const col = (history[k] ??= []);
      col.push(v);
      if (col.length > keepSeconds) col.splice(0, col.length - keepSeconds);
    }
  }
  set('users-online', fmtNum(f.users.online));
  set('users-unavailable', fmtNum(f.users.unavailable));
  set('users-busy', fmtNum(f.users.busy));
  set('users-offline', fmtNum(f.users.offline));
  set('rate-changes', fmtNum(f.rates.changes));
  set('rate-deliveries', fmtNum(f.rates.deliveries));
  set('rate-inputs', fmtNum(f.rates.inputs));
  const m = f.latencyMinute;
  set('lat-p50', m.n > 0 ? fmtMs(m.p50) : '–');
  set('lat-p99', m.n > 0 ? fmtMs(m.p99) : '–');
  set('lat-p999', m.n > 0 ? fmtMs(m.p999) : '–');
  if (hello !== null) {
    const slo = hello.slo;
    const observed = slo.percentile === 50 ? m.p50 : slo.percentile === 99 ? m.p99 : m.p999;
    set('lat-slo', `≤ ${fmtMs(slo.ms)}`);
    const status = $('lat-status');
    const met = m.n === 0 || observed <= slo.ms;
    status.className = `badge ${m.n === 0 ? '' : met ? 'ok' : 'bad'}`;
    set('lat-status', m.n === 0 ? `p${slo.percentile} SLO: no samples` : `p${slo.percentile} SLO ${met ? 'met' : 'missed'} (${m.n} samples)`);
  }
  renderRooms($('rooms-body'), f.rooms);
  renderFederation($('fed-body'), f.federation.destinations);
  set('fed-summary', `${fmtNum(f.federation.pendingStates)} states queued, ${f.federation.backingOff} backing off`);
  set('router-calls', fmtNum(f.router.calls));
  set('router-mean', f.router.calls > 0 ? fmtMs(f.router.meanMs) : '–');
  set('router-failures', fmtNum(f.router.totalFailures));
  renderRouterModules($('router-body'), f.router.modules);
  set('rl-http', fmtNum(f.rateLimited.totalHttp));
  set('rl-engine', fmtNum(f.rateLimited.totalEngine));
  set('log-append-p50', f.log.appends > 0 ? fmtMs(f.log.appendP50) : '–');
  set('log-append-p99', f.log.appends > 0 ? fmtMs(f.log.appendP99) : '–');
  set('log-entries', fmtNum(f.log.entries));
  set('log-unsynced', f.log.unsynced === null ? 'n/a' : fmtNum(f.log.unsynced));
  set('log-fsync-p99', f.log.fsyncs > 0 ? fmtMs(f.log.fsyncP99) : '–');
  renderSnapshots($('snap-body'), f.log.snapshots);
  set('tot-token', fmtNum(f.totals.streamToken));
  set('tot-streams', fmtNum(f.totals.openSyncStreams));
  set('tot-actors', fmtNum(f.totals.liveActors));
  set('updated', new Date(f.t).toLocaleTimeString());
  set('cost-ms', fmtMs(f.costMs));
  for (const c of charts) c.update();
  queueMicrotask(() =>
    queueMicrotask(() => {
      const ms = performance.now() - t0;
      perf.updates++;
      perf.points = history.t?.length ?? 0;
      perf.times.push(ms);
      if (perf.times.length > 3600) perf.times.shift();
      if (ms > perf.max) perf.max = ms;
    }),
  );
}

function connect() {
  const es = new EventSource(`${BASE}/events${auth === '' ? '' : `?${auth}`}`);
  const conn = $('conn');
  es.addEventListener('open', () => {
    conn.className = 'badge ok';
    conn.textContent = 'live';
  });
  es.addEventListener('error', () => {
    conn.className = 'badge bad';
    conn.textContent = 'reconnecting';
  });
  es.addEventListener('hello', (e) => onHello(JSON.parse(/** @type {MessageEvent} */ (e).data)));
  es.addEventListener('history', (e) => onHistory(JSON.parse(/** @type {MessageEvent} */ (e).data)));
  es.addEventListener('frame', (e) => onFrame(JSON.parse(/** @type {MessageEvent} */ (e).data)));
}

$('user-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const id = /** @type {HTMLInputElement} */ ($('user-search')).value.trim();
  const out = $('user-result');
  if (id === '') return;
  const res = await fetch(`${BASE}/api/user?user_id=${encodeURIComponent(id)}${auth === '' ? '' : `&${auth}`}`);
  const body = await res.json();
  if (!res.ok) {
    out.className = 'muted';
    out.textContent = `${body.errcode ?? res.status}: ${body.error ?? 'lookup failed'}`;
    return;
  }
  renderUser(out, body);
});

connect();
