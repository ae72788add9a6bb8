/**
 * What the dashboard's event stream carries: a `hello` when a page connects,
 * the `history` of the chart series, then one `frame` per second. Plain JSON;
 * the page (dashboard/app.js) reads these shapes.
 */

export interface UsersByState {
  online: number;
  unavailable: number;
  busy: number;
  offline: number;
}

export interface LatencySummary {
  /** Samples in the window. */
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export interface RoomRow {
  readonly roomId: string;
  readonly members: number;
  /** Members' notified changes in the last minute, counted in turns where the room had listeners. */
  readonly changes: number;
  /** Sync streams (listeners) the room's changes woke in the last minute, as the engine's fan-out counted them. */
  readonly wakeups: number;
}

export type DestinationPhase = 'idle' | 'sending' | 'backoff' | 'no_peer';

export interface DestinationRow {
  readonly destination: string;
  /** Presence states queued for it, not counting a send in flight (the engine's outbound queue). */
  readonly pending: number;
  /** States in the send in flight. */
  readonly inFlight: number;
  /** The engine's phase of the destination; `no_peer` when the service has no peer to send to. */
  readonly phase: DestinationPhase;
  /** HTTP transactions sent and failed (the service's transport). */
  readonly sent: number;
  readonly failed: number;
  /** Failed sends in a row (the engine's count). */
  readonly consecutiveFailures: number;
  /** How long the current run of failures has lasted, in ms, or null. */
  readonly failingForMs: number | null;
  /** When the engine retries, in ms from now (phase `backoff`), or null. */
  readonly retryInMs: number | null;
}

/** One presence router module this second (rates) and since start (totals). */
export interface RouterModuleRow {
  readonly module: string;
  readonly calls: number;
  readonly meanMs: number;
  /** Exceptions, timeouts and invalid results this second. */
  readonly failures: number;
  readonly timeouts: number;
  readonly totalCalls: number;
  readonly totalFailures: number;
}

export interface SnapshotRow {
  /** Wall-clock ms when it was written. */
  readonly at: number;
  readonly position: number;
  readonly bytes: number;
  /** `engine.snapshot()`: building the snapshot in memory. */
  readonly buildMs: number;
  /** `writeSnapshot`: serialise, fsync, rename, compact. */
  readonly writeMs: number;
}

export interface DashboardFrame {
  /** Wall-clock ms at the end of the second this frame covers. */
  readonly t: number;
  readonly users: UsersByState;
  /** Per second over this frame's interval. */
  readonly rates: { readonly inputs: number; readonly changes: number; readonly deliveries: number };
  /** Input→emission latency in ms, this second and over the last minute. */
  readonly latency: LatencySummary;
  readonly latencyMinute: LatencySummary;
  readonly router: {
    readonly calls: number;
    readonly meanMs: number;
    readonly failures: number;
    readonly timeouts: number;
    readonly invalidResults: number;
    readonly totalCalls: number;
    readonly totalFailures: number;
    /** The same per module (`engine.router.stats.modules`), in registration order. */
    readonly modules: readonly RouterModuleRow[];
  };
  /** Refused for rate limiting this second: HTTP 429 answers, and RateLimitedError thrown by the engine. */
  readonly rateLimited: { readonly http: number; readonly engine: number; readonly totalHttp: number; readonly totalEngine: number };
  readonly log: {
    readonly appends: number;
    readonly entries: number;
    readonly appendP50: number;
    readonly appendP99: number;
    readonly appendMax: number;
    /** File log fsyncs this second and their p50/p99 (ms). */
    readonly fsyncs: number;
    readonly fsyncP50: number;
    readonly fsyncP99: number;
    readonly position: number;
    /** FileEventLog: entries appended but not yet fsynced; null for other logs. */
    readonly unsynced: number | null;
    readonly snapshots: readonly SnapshotRow[];
  };
  readonly rooms: readonly RoomRow[];
  readonly federation: {
    readonly destinations: readonly DestinationRow[];
    /** The engine's own count of destinations waiting to retry. */
    readonly backingOff: number;
    readonly pendingStates: number;
  };
  readonly totals: {
    readonly updates: number;
    readonly deliveries: number;
    readonly openSyncStreams: number;
    readonly liveActors: number;
    readonly dormantRecords: number;
    readonly streamToken: number;
  };
  /** Time the dashboard itself spent in the previous second (folding log entries, building and sending the frame), in ms. */
  readonly costMs: number;
}

/** The chart series, oldest first, one value per second. */
export const SERIES = [
  't',
  'online',
  'unavailable',
  'busy',
  'offline',
  'inputs',
  'changes',
  'deliveries',
  'p50',
  'p99',
  'p999',
  'routerCalls',
  'routerMeanMs',
  'routerFailures',
  'rateLimited',
  'appendP50',
  'appendP99',
  'appendMax',
] as const;
export type SeriesName = (typeof SERIES)[number];
export type History = Record<SeriesName, number[]>;

/** The chart values of one frame (times in seconds, for uPlot). */
export function seriesValues(f: DashboardFrame): Record<SeriesName, number> {
  return {
    t: f.t / 1000,
    online: f.users.online,
    unavailable: f.users.unavailable,
    busy: f.users.busy,
    offline: f.users.offline,
    inputs: f.rates.inputs,
    changes: f.rates.changes,
    deliveries: f.rates.deliveries,
    p50: f.latency.p50,
    p99: f.latency.p99,
    p999: f.latency.p999,
    routerCalls: f.router.calls,
    routerMeanMs: f.router.meanMs,
    routerFailures: f.router.failures + f.router.timeouts + f.router.invalidResults,
    rateLimited: f.rateLimited.http + f.rateLimited.engine,
    appendP50: f.log.appendP50,
    appendP99: f.log.appendP99,
    appendMax: f.log.appendMax,
  };
}

export interface DashboardHello {
  readonly serverName: string;
  readonly slo: { readonly ms: number; readonly percentile: number };
  readonly turns: string;
  readonly log: { readonly kind: string; readonly fsync: string | null };
  /** Presence router modules from the config. */
  readonly modules: readonly string[];
  readonly historySeconds: number;
  readonly busyEnabled: boolean;
  /** `engine.inspect` / `engine.explain` do not exist yet: the search shows what the public API gives. */
  readonly explain: boolean;
}
