/**
 * Measurements taken while the engine is built and run, before the service's
 * metrics registry exists: log append/fsync, snapshots, router calls, turn
 * durations and timers fired (the engine's `onTurn` / `onTimerFired` hooks). The
 * histograms are created unregistered; `/metrics` registers them (metrics.ts).
 * One set per engine, found with {@link probesOf}.
 */
import { Counter, Histogram, type Metric } from 'prom-client';
import type { DeadlineKind, EventLog, FileEventLog, PresenceEngine, TurnTiming } from '../../src/index.js';
import { DEADLINE_KINDS } from '../../src/domain/rules.js';

/** Sub-millisecond to seconds: appends and fsyncs are usually well under 1 ms, a bad disk takes seconds. */
const IO_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const SNAPSHOT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class EngineProbes {
  readonly logAppend = new Histogram({
    name: 'presence_log_append_duration_seconds',
    help: 'Time to append one turn to the event log (write, and fsync with fsync: always).',
    buckets: IO_BUCKETS,
    registers: [],
  });
  readonly logFsync = new Histogram({
    name: 'presence_log_fsync_duration_seconds',
    help: 'Time of each fsync of the file log (file logs only).',
    buckets: IO_BUCKETS,
    registers: [],
  });
  readonly snapshot = new Histogram({
    name: 'presence_snapshot_duration_seconds',
    help: 'Time to write an engine snapshot (serialise, fsync, rename, compact), by reason (periodic, manual, shutdown). File logs only.',
    labelNames: ['reason'],
    buckets: SNAPSHOT_BUCKETS,
    registers: [],
  });
  readonly routerCall = new Histogram({
    name: 'presence_router_call_duration_seconds',
    help: 'Wall time of each presence router callback call (async calls until they settle), by module and callback.',
    labelNames: ['module', 'callback'],
    buckets: IO_BUCKETS,
    registers: [],
  });
  readonly federationSend = new Histogram({
    name: 'presence_federation_send_duration_seconds',
    help: 'Time of each outbound federation transaction until answered or failed, by result (ok, error).',
    labelNames: ['result'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [],
  });
  readonly turnDuration = new Histogram({
    name: 'presence_turn_duration_seconds',
    help: 'Time of each engine turn, from its first input to the end of its fan-out and flush (log append included).',
    buckets: IO_BUCKETS,
    registers: [],
  });
  readonly timersFired = new Counter({
    name: 'presence_timers_fired_total',
    help: 'Timeout steps that changed a user, by the timer that fired (idle, sync_timeout, busy_timeout, active_expiry, remote_expiry, federation_ping).',
    labelNames: ['kind'],
    registers: [],
  });
  /** The engine's metrics hooks, feeding the two series above. */
  readonly hooks = {
    onTurn: (t: TurnTiming): void => this.turnDuration.observe((t.endedAt - t.startedAt) / 1000),
    onTimerFired: (kind: DeadlineKind, count: number): void => this.timersFired.inc({ kind }, count),
  };
  constructor() {
    // every kind is exposed from the start (at 0), as Prometheus advises for known label values
    for (const kind of DEADLINE_KINDS) this.timersFired.inc({ kind }, 0);
  }

  /** The file log under the engine, when it has one (the health endpoint reads its fsync state). */
  fileLog: FileEventLog | undefined;
  /** Also told of each fsync's duration in ms (the dashboard). */
  readonly fsyncListeners = new Set<(ms: number) => void>();

  /** One fsync of the file log took `ms`. */
  fsynced(ms: number): void {
    this.logFsync.observe(ms / 1000);
    for (const listener of this.fsyncListeners) listener(ms);
  }
  /** The log the engine appends to (possibly a decorator). */
  log: EventLog | undefined;

  all(): Metric[] {
    return [this.logAppend, this.logFsync, this.snapshot, this.routerCall, this.federationSend, this.turnDuration, this.timersFired];
  }
}

const byEngine = new WeakMap<PresenceEngine, EngineProbes>();

export function attachProbes(engine: PresenceEngine, probes: EngineProbes): void {
  byEngine.set(engine, probes);
}

/** The engine's probes; a fresh (empty) set for an engine not built by the service's factory. */
export function probesOf(engine: PresenceEngine): EngineProbes {
  let p = byEngine.get(engine);
  if (p === undefined) {
    p = new EngineProbes();
    byEngine.set(engine, p);
  }
  return p;
}
