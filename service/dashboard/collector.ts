/**
 * The dashboard's data: it follows the engine's `committed$` stream (state
 * changes, room membership), reads `engine.stats`, `engine.router.stats`
 * (per module), the federation stats and the fan-out's wake-ups per room once
 * per second, and turns them into one frame per
 * second plus the history of the chart series. Work on the commit path is a
 * push onto a queue; everything else happens in the once-a-second tick.
 */
import {
  formatPresence,
  type LogEntry,
  type PresenceContent,
  type PresenceEngine,
  type PresenceValue,
  type RouterCallStats,
  type ServerName,
  type UserId,
} from '../../src/index.js';
import type { HttpFederationTransport } from '../http-transport.js';
import type { DashboardSettings } from './config.js';
import { FederationView } from './federation-view.js';
import {
  SERIES,
  seriesValues,
  type DashboardFrame,
  type DashboardHello,
  type History,
  type LatencySummary,
  type RouterModuleRow,
  type UsersByState,
} from './frame.js';
import { DurationHistogram } from './histogram.js';
import { RoomWindow } from './rooms.js';
import { EngineTaps, fileLogOf } from './taps.js';

/** Causes shown per user in the search. */
const MAX_CAUSES = 12;
/** Log entries kept per user for the search (newest last). */
const RECENT_PER_USER = 6;
/** Users whose recent entries are kept (beyond it, the users seen first are forgotten). */
const RECENT_USERS = 50_000;
const TOP_ROOMS = 10;

export interface CollectorOptions {
  readonly engine: PresenceEngine;
  readonly settings: DashboardSettings;
  readonly peers: readonly ServerName[];
  readonly transport: HttpFederationTransport | undefined;
  readonly modules: readonly string[];
}

export interface RecentEntry {
  readonly position: number;
  readonly at: number;
  readonly what: string;
}

export interface UserLookup {
  readonly userId: UserId;
  readonly local: boolean;
  /** As `GET /presence/{userId}/status` would answer the user themself. */
  readonly presence: PresenceContent;
  readonly state: PresenceValue;
  readonly statusMsg: string | null;
  readonly lastActiveTs: number;
  readonly lastUserSyncTs: number;
  readonly lastFederationUpdateTs: number;
  readonly devices: readonly { readonly deviceId: string; readonly state: PresenceValue; readonly lastActiveTs: number; readonly lastSyncTs: number; readonly syncs: number }[];
  /** The XState value of the user's live actor, or null when the user is dormant. */
  readonly actor: unknown;
  readonly rooms: { readonly count: number; readonly first: readonly string[] };
  /** The newest log entries about this user the dashboard saw (what changed, not why). */
  readonly recent: readonly RecentEntry[];
  /** Every timer armed for the user, soonest first (`engine.inspect`). */
  readonly deadlines: readonly { readonly kind: string; readonly dueAt: number; readonly deviceId?: string }[];
  /** The newest causes of the user's changes, newest first (`engine.explain`, the log's retained window). */
  readonly causes: readonly { readonly at: number; readonly rule: string; readonly notified: boolean }[];
  /** False when the log no longer holds the user's older history. */
  readonly causesComplete: boolean;
}

export class DashboardCollector {
  private readonly engine: PresenceEngine;
  private readonly settings: DashboardSettings;
  private readonly taps: EngineTaps;
  private readonly rooms: RoomWindow;
  private readonly federation: FederationView;
  private readonly modules: readonly string[];
  private readonly states = new Map<UserId, PresenceValue>();
  private readonly users: UsersByState = { online: 0, unavailable: 0, busy: 0, offline: 0 };
  private readonly recent = new Map<UserId, LogEntry[]>();
  private queue: (readonly LogEntry[])[] = [];
  private readonly minute: DurationHistogram[] = [];
  private readonly history: History;
  private readonly listeners = new Set<(frame: DashboardFrame) => void>();
  private timer: NodeJS.Timeout | undefined;
  private foldTimer: NodeJS.Timeout | undefined;
  /** Time spent folding entries since the last tick, in ms. */
  private foldMs = 0;
  private unsubscribe: (() => void) | undefined;
  private last = { at: 0, updates: 0, deliveries: 0, inputs: 0, calls: 0, totalMs: 0, failures: 0, timeouts: 0, invalid: 0, limited: 0, appended: 0 };
  private http429 = 0;
  private http429Seen = 0;
  private latest: DashboardFrame | undefined;
  private lastCostMs = 0;
  /** Each router module's counters at the previous tick. */
  private lastModules = new Map<string, RouterCallStats>();

  constructor(options: CollectorOptions) {
    this.engine = options.engine;
    this.settings = options.settings;
    this.modules = options.modules;
    this.taps = new EngineTaps(this.engine);
    this.rooms = new RoomWindow(this.engine);
    this.federation = new FederationView(this.engine, options.peers, options.transport);
    this.history = Object.fromEntries(SERIES.map((name) => [name, [] as number[]])) as unknown as History;
  }

  start(): void {
    if (this.timer !== undefined) return;
    for (const p of this.engine.knownUsers()) this.setState(p.userId, p.state);
    this.taps.install();
    this.rooms.start();
    const sub = this.engine.committed$.subscribe((entries) => this.queue.push(entries));
    this.unsubscribe = () => sub.unsubscribe();
    this.last = this.counters(performance.now());
    for (const [module, m] of this.engine.router.stats.modules) this.lastModules.set(module, { ...m });
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
    // fold ten times a second: a second of entries held until the tick was promoted to the old generation at high rates
    this.foldTimer = setInterval(() => this.foldQueued(), 100);
    this.foldTimer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.foldTimer !== undefined) clearInterval(this.foldTimer);
    this.timer = undefined;
    this.foldTimer = undefined;
    this.unsubscribe?.();
    this.taps.uninstall();
    this.rooms.stop();
    this.listeners.clear();
  }

  /** Called for every finished HTTP request of the service. */
  countHttp(status: number): void {
    if (status === 429) this.http429++;
  }

  onFrame(listener: (frame: DashboardFrame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get latestFrame(): DashboardFrame | undefined {
    return this.latest;
  }

  hello(): DashboardHello {
    const cfg = this.engine.config;
    const log = fileLogOf(this.engine);
    return {
      serverName: cfg.serverName,
      slo: { ms: this.settings.latency_slo_ms, percentile: this.settings.latency_slo_percentile },
      turns: cfg.turns,
      log: { kind: log !== undefined ? 'file' : cfg.log.kind, fsync: log !== undefined ? log.fsyncPolicy : null },
      modules: this.modules,
      historySeconds: this.settings.history_seconds,
      busyEnabled: cfg.busyEnabled,
      explain: false,
    };
  }

  historySnapshot(): History {
    return Object.fromEntries(SERIES.map((name) => [name, [...this.history[name]]])) as unknown as History;
  }

  lookup(userId: UserId): UserLookup {
    const e = this.engine;
    const record = e.getUserRecord(userId);
    const p = record.presence;
    const rooms = e.getRoomsForUser(userId);
    const explained = e.explain(userId);
    return {
      userId,
      local: e.isMine(userId),
      presence: formatPresence(p, e.clock.now(), { busy: e.config.busyWireValue }),
      state: p.state,
      statusMsg: p.statusMsg,
      lastActiveTs: p.lastActiveTs,
      lastUserSyncTs: p.lastUserSyncTs,
      lastFederationUpdateTs: p.lastFederationUpdateTs,
      devices: Object.entries(record.devices).map(([deviceId, d]) => ({ deviceId, state: d.state, lastActiveTs: d.lastActiveTs, lastSyncTs: d.lastSyncTs, syncs: record.syncs[deviceId as never] ?? 0 })),
      actor: e.actorState(userId) ?? null,
      rooms: { count: rooms.length, first: rooms.slice(0, 10) },
      recent: (this.recent.get(userId) ?? []).map(describe).reverse(),
      deadlines: e.inspect(userId).deadlines.map((d) => ({ kind: d.kind, dueAt: d.dueAt, ...(d.deviceId !== undefined ? { deviceId: d.deviceId } : {}) })),
      causes: explained.steps.slice(0, MAX_CAUSES).map((s) => ({ at: s.at, rule: s.rule, notified: s.streamId !== undefined })),
      causesComplete: explained.complete,
    };
  }

  // ───────────────────────────── the tick ─────────────────────────────

  /** Fold the queued log entries and emit this second's frame. Public for tests that end a second by hand. */
  tick(): DashboardFrame {
    const started = performance.now();
    this.foldQueued();
    const now = performance.now();
    const c = this.counters(now);
    const secs = Math.max(0.001, (now - this.last.at) / 1000);
    const rate = (a: number, b: number) => Math.max(0, a - b) / secs;
    const second = new DurationHistogram();
    second.merge(this.taps.latency);
    this.taps.latency.clear();
    this.minute.push(second);
    if (this.minute.length > 60) this.minute.shift();
    const minute = new DurationHistogram();
    for (const h of this.minute) minute.merge(h);
    const append = this.taps.append;
    const calls = c.calls - this.last.calls;
    const t = Date.now();
    const fed = this.engine.federationStats;
    const stats = this.engine.stats;
    const log = this.engine.log;
    const fileLog = fileLogOf(this.engine);
    const frame: DashboardFrame = {
      t,
      users: { ...this.users },
      rates: { inputs: rate(c.inputs, this.last.inputs), changes: rate(c.updates, this.last.updates), deliveries: rate(c.deliveries, this.last.deliveries) },
      latency: summary(second),
      latencyMinute: summary(minute),
      router: {
        calls: rate(c.calls, this.last.calls),
        meanMs: calls > 0 ? (c.totalMs - this.last.totalMs) / calls : 0,
        failures: c.failures - this.last.failures,
        timeouts: c.timeouts - this.last.timeouts,
        invalidResults: c.invalid - this.last.invalid,
        totalCalls: c.calls,
        totalFailures: c.failures + c.timeouts + c.invalid,
        modules: this.moduleRows(secs),
      },
      rateLimited: { http: this.http429 - this.http429Seen, engine: c.limited - this.last.limited, totalHttp: this.http429, totalEngine: c.limited },
      log: {
        appends: append.count,
        entries: c.appended - this.last.appended,
        appendP50: append.percentile(50),
        appendP99: append.percentile(99),
        appendMax: append.max,
        fsyncs: this.taps.fsync.count,
        fsyncP50: this.taps.fsync.percentile(50),
        fsyncP99: this.taps.fsync.percentile(99),
        position: log.position,
        unsynced: fileLog !== undefined ? fileLog.position - fileLog.syncedPosition : null,
        snapshots: [...this.taps.snapshots],
      },
      rooms: this.rooms.tick(TOP_ROOMS),
      federation: { destinations: this.federation.rows(fed.destinations), backingOff: fed.destinationsBackingOff, pendingStates: fed.pendingStates },
      totals: {
        updates: stats.updates,
        deliveries: stats.deliveries,
        openSyncStreams: stats.openSyncStreams,
        liveActors: stats.liveActors,
        dormantRecords: stats.dormantRecords,
        streamToken: this.engine.currentToken,
      },
      costMs: this.lastCostMs,
    };
    append.clear();
    this.taps.fsync.clear();
    this.http429Seen = this.http429;
    this.last = c;
    this.remember(frame);
    this.latest = frame;
    for (const l of [...this.listeners]) l(frame);
    this.lastCostMs = this.foldMs + (performance.now() - started);
    this.foldMs = 0;
    return frame;
  }

  /** Per-module rates since the previous tick, and totals. */
  private moduleRows(secs: number): RouterModuleRow[] {
    const rows: RouterModuleRow[] = [];
    const now = new Map<string, RouterCallStats>();
    for (const [module, m] of this.engine.router.stats.modules) {
      const was = this.lastModules.get(module);
      const calls = m.calls - (was?.calls ?? 0);
      const failed = (x: RouterCallStats | undefined) => (x === undefined ? 0 : x.failures + x.timeouts + x.invalidResults);
      rows.push({
        module,
        calls: Math.max(0, calls) / secs,
        meanMs: calls > 0 ? (m.totalMs - (was?.totalMs ?? 0)) / calls : 0,
        failures: failed(m) - failed(was),
        timeouts: m.timeouts - (was?.timeouts ?? 0),
        totalCalls: m.calls,
        totalFailures: failed(m),
      });
      now.set(module, { ...m });
    }
    this.lastModules = now;
    return rows;
  }

  private counters(at: number) {
    const s = this.engine.stats;
    const r = this.engine.router.stats;
    return {
      at,
      updates: s.updates,
      deliveries: s.deliveries,
      inputs: this.taps.inputs,
      calls: r.calls,
      totalMs: r.totalMs,
      failures: r.failures,
      timeouts: r.timeouts,
      invalid: r.invalidResults,
      limited: this.taps.rateLimited,
      appended: this.taps.appendedEntries,
    };
  }

  private remember(frame: DashboardFrame): void {
    const values = seriesValues(frame);
    const keep = this.settings.history_seconds;
    for (const name of SERIES) {
      const column = this.history[name];
      column.push(values[name]);
      if (column.length > keep) column.splice(0, column.length - keep);
    }
  }

  private foldQueued(): void {
    if (this.queue.length === 0) return;
    const t0 = performance.now();
    const queue = this.queue;
    this.queue = [];
    for (const entries of queue) for (const entry of entries) this.fold(entry);
    this.foldMs += performance.now() - t0;
  }

  private fold(entry: LogEntry): void {
    const ev = entry.event;
    if (ev.type === 'user.step') {
      const state = ev.presence?.state;
      if (state !== undefined) this.setState(ev.userId, state);
      this.keepRecent(ev.userId, entry);
    } else if (ev.type === 'room.membership') {
      this.rooms.membershipChanged(ev.roomId);
      // a member the engine has no record for is offline (the default state)
      if (!this.states.has(ev.userId)) this.setState(ev.userId, 'offline');
      this.keepRecent(ev.userId, entry);
    }
  }

  private setState(userId: UserId, state: PresenceValue): void {
    const before = this.states.get(userId);
    if (before === state) return;
    if (before !== undefined) this.users[before]--;
    this.users[state]++;
    this.states.set(userId, state);
  }

  private keepRecent(userId: UserId, entry: LogEntry): void {
    let list = this.recent.get(userId);
    if (list === undefined) {
      // forget the users seen first (not the least recently changed: cheaper, and enough for a search)
      if (this.recent.size >= RECENT_USERS) {
        const oldest = this.recent.keys().next();
        if (oldest.done !== true) this.recent.delete(oldest.value);
      }
      this.recent.set(userId, (list = []));
    }
    list.push(entry);
    if (list.length > RECENT_PER_USER) list.shift();
  }
}

function summary(h: DurationHistogram): LatencySummary {
  return { n: h.count, p50: h.percentile(50), p99: h.percentile(99), p999: h.percentile(99.9), max: h.max };
}

/** One line about a log entry: what changed (the log does not record why). */
function describe(entry: LogEntry): RecentEntry {
  const ev = entry.event;
  let what: string;
  if (ev.type === 'user.step') {
    const parts: string[] = [];
    const p = ev.presence;
    if (p?.state !== undefined) parts.push(`state → ${p.state}`);
    if (p?.statusMsg !== undefined) parts.push(p.statusMsg === null ? 'status cleared' : `status "${p.statusMsg}"`);
    if (p?.currentlyActive !== undefined) parts.push(`currently_active ${String(p.currentlyActive)}`);
    if (p?.lastActiveTs !== undefined) parts.push('active');
    if (p?.lastUserSyncTs !== undefined) parts.push('synced');
    if (ev.devices !== undefined) parts.push(`devices ${Object.keys(ev.devices).join(', ')}`);
    if (ev.syncs !== undefined) parts.push(`syncs ${Object.entries(ev.syncs).map(([d, n]) => `${d}=${n ?? 0}`).join(', ')}`);
    what = (parts.length > 0 ? parts.join('; ') : 'step') + (ev.streamId !== undefined ? ` (notified, stream ${ev.streamId})` : '');
  } else if (ev.type === 'room.membership') {
    what = `${ev.membership} ${ev.roomId}`;
  } else {
    what = 'full presence requested';
  }
  return { position: entry.position, at: ev.at, what };
}
