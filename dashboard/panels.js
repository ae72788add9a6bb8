// @ts-check
/** The dashboard's tables and the user card (DOM only, no charts). */
import { fmtMs, fmtNum } from './charts.js';

/** @param {string} tag @param {Record<string, string>} [attrs] @param {(Node | string)[]} [children] */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c);
  return el;
}

/** @param {number} ms */
export function ago(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** @param {HTMLElement} body @param {any[]} rooms */
export function renderRooms(body, rooms) {
  if (rooms.length === 0) {
    body.replaceChildren(h('tr', {}, [h('td', { colspan: '5', class: 'muted' }, ['no wake-ups in the last minute'])]));
    return;
  }
  const top = Math.max(1, rooms[0].wakeups);
  body.replaceChildren(
    ...rooms.map((r) =>
      h('tr', {}, [
        h('td', {}, [h('code', {}, [r.roomId])]),
        h('td', { class: 'num' }, [fmtNum(r.members)]),
        h('td', { class: 'num' }, [fmtNum(r.changes)]),
        h('td', { class: 'num' }, [fmtNum(r.wakeups)]),
        h('td', { style: 'width: 30%' }, [h('div', { class: 'bar', style: `width: ${((100 * r.wakeups) / top).toFixed(1)}%` })]),
      ]),
    ),
  );
}

/** @param {HTMLElement} body @param {any[]} rows */
export function renderFederation(body, rows) {
  if (rows.length === 0) {
    body.replaceChildren(h('tr', {}, [h('td', { colspan: '8', class: 'muted' }, ['no federation destinations'])]));
    return;
  }
  body.replaceChildren(
    ...rows.map((d) =>
      h('tr', { 'data-destination': d.destination }, [
        h('td', {}, [h('code', {}, [d.destination])]),
        h('td', {}, [h('span', { class: `badge ${d.phase}` }, [d.phase === 'no_peer' ? 'no peer' : d.phase === 'backoff' ? 'backing off' : d.phase])]),
        h('td', { class: 'num' }, [d.inFlight > 0 ? `${fmtNum(d.pending)} + ${fmtNum(d.inFlight)}` : fmtNum(d.pending)]),
        h('td', { class: 'num' }, [fmtNum(d.sent)]),
        h('td', { class: 'num' }, [fmtNum(d.failed)]),
        h('td', { class: 'num' }, [fmtNum(d.consecutiveFailures)]),
        h('td', { class: 'failing' }, [d.failingForMs === null ? '–' : ago(d.failingForMs)]),
        h('td', { class: 'retry' }, [d.retryInMs === null ? '–' : `in ${ago(d.retryInMs)}`]),
      ]),
    ),
  );
}

/** @param {HTMLElement} body @param {any[]} modules */
export function renderRouterModules(body, modules) {
  if (modules.length === 0) {
    body.replaceChildren(h('tr', {}, [h('td', { colspan: '6', class: 'muted' }, ['no router module registered'])]));
    return;
  }
  body.replaceChildren(
    ...modules.map((m) =>
      h('tr', { 'data-module': m.module }, [
        h('td', {}, [h('code', {}, [m.module])]),
        h('td', { class: 'num calls' }, [fmtNum(m.calls)]),
        h('td', { class: 'num' }, [m.calls > 0 ? fmtMs(m.meanMs) : '–']),
        h('td', { class: 'num' }, [fmtNum(m.failures)]),
        h('td', { class: 'num' }, [fmtNum(m.totalCalls)]),
        h('td', { class: 'num failed-total' }, [fmtNum(m.totalFailures)]),
      ]),
    ),
  );
}

/** @param {HTMLElement} body @param {any[]} snaps */
export function renderSnapshots(body, snaps) {
  if (snaps.length === 0) return;
  body.replaceChildren(
    ...[...snaps].reverse().map((s) =>
      h('tr', {}, [
        h('td', {}, [new Date(s.at).toLocaleTimeString()]),
        h('td', { class: 'num' }, [fmtNum(s.position)]),
        h('td', { class: 'num' }, [`${(s.bytes / 1024).toFixed(0)} KiB`]),
        h('td', { class: 'num' }, [fmtMs(s.buildMs)]),
        h('td', { class: 'num' }, [fmtMs(s.writeMs)]),
      ]),
    ),
  );
}

/** @param {HTMLElement} el @param {any} u the /api/user answer */
export function renderUser(el, u) {
  const now = Date.now();
  /** @param {number} ts */
  const when = (ts) => (ts > 0 ? `${ago(now - ts)} ago` : 'never');
  const dl = h('dl', {}, []);
  /** @param {string} k @param {Node | string} v */
  const row = (k, v) => dl.append(h('dt', {}, [k]), h('dd', {}, [v]));
  row('user', h('code', { id: 'user-id' }, [u.userId]));
  row('presence', h('span', { id: 'user-presence', class: `badge ${u.state === 'online' ? 'ok' : u.state === 'offline' ? '' : 'wait'}` }, [u.presence.presence]));
  row('status', u.statusMsg ?? '–');
  row('currently active', u.presence.currently_active === undefined ? '–' : String(u.presence.currently_active));
  row('last active', when(u.lastActiveTs));
  row('last sync', when(u.lastUserSyncTs));
  row(u.local ? 'last federation send' : 'last update received', when(u.lastFederationUpdateTs));
  row('actor', u.actor === null ? 'dormant (no live actor)' : h('code', {}, [JSON.stringify(u.actor)]));
  row('rooms', `${u.rooms.count}${u.rooms.count > 0 ? `: ${u.rooms.first.join(', ')}${u.rooms.count > u.rooms.first.length ? ', …' : ''}` : ''}`);
  const devices = h('table', { class: 'grid' }, [
    h('thead', {}, [h('tr', {}, ['device', 'state', 'last active', 'last sync', 'syncs open'].map((t) => h('th', {}, [t])))]),
    h(
      'tbody',
      {},
      u.devices.length === 0
        ? [h('tr', {}, [h('td', { colspan: '5', class: 'muted' }, ['no devices'])])]
        : u.devices.map((/** @type {any} */ d) => h('tr', {}, [h('td', {}, [h('code', {}, [d.deviceId])]), h('td', {}, [d.state]), h('td', {}, [when(d.lastActiveTs)]), h('td', {}, [when(d.lastSyncTs)]), h('td', { class: 'num' }, [String(d.syncs)])])),
    ),
  ]);
  const recent = h(
    'ol',
    { id: 'user-recent' },
    u.recent.length === 0 ? [h('li', { class: 'muted' }, ['none seen since the dashboard started'])] : u.recent.map((/** @type {any} */ r) => h('li', {}, [`#${r.position} ${new Date(r.at).toLocaleTimeString()}: ${r.what}`])),
  );
  el.className = 'user-card';
  el.replaceChildren(
    h('div', {}, [dl]),
    h('div', {}, [
      devices,
      h('h2', { style: 'margin-top: 12px' }, ['Recent log entries ', h('small', {}, ['what changed'])]),
      recent,
      h('h2', { style: 'margin-top: 12px' }, ['Armed deadlines ', h('small', {}, ['engine.inspect'])]),
      h(
        'ol',
        { id: 'user-deadlines' },
        u.deadlines.length === 0
          ? [h('li', { class: 'muted' }, ['none (offline and idle, not tracked, or not owned here)'])]
          : u.deadlines.map((/** @type {any} */ d) => h('li', {}, [`${d.kind}${d.deviceId === undefined ? '' : ` (${d.deviceId})`}: in ${ago(Math.max(0, d.dueAt - now))}`])),
      ),
      h('h2', { style: 'margin-top: 12px' }, ['Why ', h('small', {}, ['engine.explain, newest first'])]),
      h(
        'ol',
        { id: 'user-causes' },
        u.causes.length === 0
          ? [h('li', { class: 'muted' }, ['no change in the log\'s retained window'])]
          : u.causes.map((/** @type {any} */ c) => h('li', {}, [`${new Date(c.at).toLocaleTimeString()}: ${c.rule}${c.notified ? '' : ' (not notified)'}`])),
      ),
      u.causesComplete ? '' : h('p', { class: 'note' }, ['Older history is no longer in the log.']),
    ]),
  );
}
