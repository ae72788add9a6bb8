/**
 * `openDurableEngine`: a {@link PresenceEngine} on a {@link FileEventLog}.
 *
 * Start-up: open the log (crash recovery: torn tail truncated, temp files
 * removed, corruption quarantined or refused per `log.on_corruption`), load
 * the newest usable snapshot (falling back to the previous one),
 * construct the engine from it (the engine folds the log tail and re-arms every
 * user's timers from the restored states, so stale states self-correct, spec
 * §2.11), then end the syncs that were in flight when the old process died.
 *
 * While running: a snapshot is written at the end of the turn that takes the
 * log `snapshot_every` entries past the previous snapshot; each snapshot
 * compacts the log, so disk use follows the number of users, not history.
 */
import { systemClock, type Clock } from '../clock.js';
import { toPresenceConfig, type HomeserverConfigInput, type PresenceConfig } from '../config.js';
import { PresenceEngine, type PresenceEngineOptions } from '../engine.js';
import { ConfigError, LogError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import type { EventLog } from '../log/event-log.js';
import { FileEventLog, type FsyncPolicy, type OnCorruption, type RecoveryReport, type SnapshotInfo } from '../log/file-log.js';

export interface DurableEngineOptions {
  /** A parsed config or a raw homeserver config object. Its `log:` section supplies the defaults below. */
  readonly config: PresenceConfig | HomeserverConfigInput;
  /** Log directory. Defaults to `log.path` of the config (which must then be `kind: file`). */
  readonly path?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Overrides `log.fsync` (default `batch`). */
  readonly fsync?: FsyncPolicy;
  /** Overrides `log.snapshot_every` (default 100 000 entries). */
  readonly snapshotEvery?: number;
  /** Segment size before rolling (default 16 MiB). */
  readonly segmentBytes?: number;
  /** `batch` policy: longest delay before an fsync (default 50 ms). */
  readonly batchIntervalMs?: number;
  /** Overrides `log.on_corruption` (default `quarantine`: keep every intact record, move damage aside, start). */
  readonly onCorruption?: OnCorruption;
  /** End syncs that were in flight at the crash (default true). */
  readonly endRestoredSyncs?: boolean;
  /** Called after each fsync of the log with its duration in ms. */
  readonly onFsync?: ((ms: number) => void) | undefined;
  /** Called after each snapshot is written (`periodic`, `manual` or at `shutdown`). */
  readonly onSnapshot?: ((info: SnapshotInfo, reason: 'periodic' | 'manual' | 'shutdown') => void) | undefined;
  /** Passed to the engine (metrics hooks, see PresenceEngineOptions). */
  readonly onTurn?: PresenceEngineOptions['onTurn'];
  readonly onTimerFired?: PresenceEngineOptions['onTimerFired'];
  /** Passed to the engine: recipients held for `engine.explain` (see PresenceEngineOptions). */
  readonly recordDeliveries?: number;
  /** Wrap the log the engine appends to and replays from (e.g. to time appends); the durable engine keeps the file log itself. */
  readonly decorateLog?: ((log: FileEventLog) => EventLog) | undefined;
}

export interface DurableRecovery extends RecoveryReport {
  /** Position of the snapshot the engine started from (0: none). */
  readonly snapshotPosition: number;
  /** Log entries folded after the snapshot. */
  readonly replayedEntries: number;
  /** Time from opening the log to a running engine, in ms. */
  readonly restartMs: number;
}

export interface DurableEngine {
  readonly engine: PresenceEngine;
  readonly log: FileEventLog;
  readonly recovery: DurableRecovery;
  /** The last snapshot written by this process, if any. */
  readonly lastSnapshot: SnapshotInfo | undefined;
  /** Write a snapshot now (and compact). */
  snapshot(): SnapshotInfo;
  /**
   * Stop the engine, write a final snapshot (unless `snapshot: false` or nothing
   * changed since the last one) and close the log. Idempotent.
   */
  close(options?: { readonly snapshot?: boolean }): Promise<void>;
}

/**
 * Open a presence engine whose state lives in a file-backed log.
 * @throws LogError when the log cannot be opened or recovered; ConfigError when no path is configured.
 */
export function openDurableEngine(options: DurableEngineOptions): DurableEngine {
  const t0 = performance.now();
  const config = toPresenceConfig(options.config);
  const fileConfig = config.log.kind === 'file' ? config.log : undefined;
  const path = options.path ?? fileConfig?.path;
  if (path === undefined) throw new ConfigError('log.path', 'a durable engine needs a directory: set log: { kind: file, path: … }');
  const snapshotEvery = options.snapshotEvery ?? fileConfig?.snapshot_every ?? 100_000;
  if (!Number.isSafeInteger(snapshotEvery) || snapshotEvery <= 0) throw new ConfigError('log.snapshot_every', 'must be a positive integer');
  const logger = options.logger ?? consoleLogger;
  const clock = options.clock ?? systemClock;

  const log = FileEventLog.open(path, {
    fsync: options.fsync ?? fileConfig?.fsync ?? 'batch',
    onCorruption: options.onCorruption ?? fileConfig?.on_corruption ?? 'quarantine',
    logger,
    ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
    ...(options.batchIntervalMs !== undefined ? { batchIntervalMs: options.batchIntervalMs } : {}),
    onFsync: options.onFsync,
  });
  logger.info(`log: opened ${log.dir} (positions ${log.firstPosition}..${log.position}); loading the newest snapshot`);
  let engine: PresenceEngine;
  let snapshotPosition = 0;
  try {
    const tLoad = performance.now();
    const snapshot = log.loadSnapshot();
    snapshotPosition = snapshot?.position ?? 0;
    logger.info(
      snapshot === undefined
        ? `log: no snapshot; replaying ${log.position} entries`
        : `log: snapshot at position ${snapshotPosition} loaded in ${seconds(tLoad)} s (${snapshot.users.length} users); replaying ${log.position - snapshotPosition} entries`,
    );
    const tReplay = performance.now();
    const engineLog = options.decorateLog?.(log) ?? log;
    const hooks = { onTurn: options.onTurn, onTimerFired: options.onTimerFired, ...(options.recordDeliveries !== undefined ? { recordDeliveries: options.recordDeliveries } : {}) };
    engine = new PresenceEngine({ config, clock, logger, log: engineLog, ...hooks, ...(snapshot !== undefined ? { snapshot } : {}) });
    logger.info(`log: engine restored in ${seconds(tReplay)} s`);
  } catch (error) {
    log.closeSync();
    throw error;
  }
  const replayedEntries = log.position - snapshotPosition;
  const recovery: DurableRecovery = { ...log.recovery, snapshotPosition, replayedEntries, restartMs: performance.now() - t0 };
  if (recovery.corruption.length > 0) {
    logger.error('durable engine: started on a log that had corrupt data (quarantined; see the errors above and docs/durability.md)', {
      ...log.corruptionStats,
      quarantineFiles: recovery.corruption.flatMap((c) => (c.quarantineFile !== undefined ? [c.quarantineFile] : [])),
    });
  } else if (recovery.truncatedBytes > 0 || recovery.corruptSnapshots.length > 0) {
    logger.warn('durable engine: recovered from damage', {
      truncatedBytes: recovery.truncatedBytes,
      corruptSnapshots: recovery.corruptSnapshots,
    });
  }

  let lastSnapshot: SnapshotInfo | undefined;
  let snapshotBase = snapshotPosition;
  let failedAt = -1;
  const takeSnapshot = (reason: 'periodic' | 'manual' | 'shutdown'): SnapshotInfo => {
    const info = log.writeSnapshot(engine.snapshot());
    lastSnapshot = info;
    snapshotBase = info.position;
    options.onSnapshot?.(info, reason);
    return info;
  };
  // At the end of each turn (the engine's state matches log.position here).
  const sub = engine.committed$.subscribe(() => {
    if (log.position - snapshotBase < snapshotEvery || failedAt === log.position) return;
    try {
      takeSnapshot('periodic');
    } catch (error) {
      failedAt = log.position;
      snapshotBase = log.position; // retry after another snapshot_every entries
      logger.error('durable engine: periodic snapshot failed', { error: error instanceof Error ? error.message : String(error) });
    }
  });
  if (options.endRestoredSyncs !== false) engine.endRestoredSyncs();

  let closed = false;
  return {
    engine,
    log,
    recovery,
    get lastSnapshot() {
      return lastSnapshot;
    },
    snapshot: () => {
      if (closed) throw new LogError('the durable engine is closed');
      return takeSnapshot('manual');
    },
    close: async (closeOptions = {}) => {
      if (closed) return;
      closed = true;
      sub.unsubscribe();
      engine.stop();
      try {
        if (closeOptions.snapshot !== false && log.position > snapshotBase) {
          logger.info(`log: writing the shutdown snapshot at position ${log.position}`);
          const t0 = performance.now();
          const info = takeSnapshot('shutdown');
          logger.info(`log: shutdown snapshot written in ${seconds(t0)} s (${info.bytes} bytes)`);
        }
      } finally {
        await log.close();
      }
    },
  };
}

/** Seconds since `t0` (a `performance.now()` reading), for progress lines. */
function seconds(t0: number): string {
  return ((performance.now() - t0) / 1000).toFixed(1);
}

