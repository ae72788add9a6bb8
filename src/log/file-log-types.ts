/** Options and reports of the file-backed event log (file-log.ts). */
import type { LogCorruption } from '../errors.js';
import type { Logger } from '../logger.js';
import type { OnCorruption } from './segment-recovery.js';

export type FsyncPolicy = 'always' | 'batch' | 'never';

export interface FileEventLogOptions {
  /** When appends are fsynced (default `batch`). */
  readonly fsync?: FsyncPolicy;
  /** `batch` policy: the longest an append waits for its fsync (default 50 ms). */
  readonly batchIntervalMs?: number;
  /** A new segment is started once the current one reaches this size (default 16 MiB). */
  readonly segmentBytes?: number;
  /** Snapshots kept on disk (default 2, at least 2: the latest and its fallback). */
  readonly keepSnapshots?: number;
  /**
   * Damage other than a torn tail found on open: `quarantine` (default) keeps
   * every intact record, moves the damaged bytes aside and reports them;
   * `refuse` changes nothing and throws a `LogCorruptionError`.
   */
  readonly onCorruption?: OnCorruption;
  readonly logger?: Logger;
  /** Called after each fsync of appended data with its duration in ms (e.g. for a metrics histogram). */
  readonly onFsync?: ((ms: number) => void) | undefined;
}

/** What {@link FileEventLog.open} (and {@link FileEventLog.loadSnapshot}) found and repaired. */
export interface RecoveryReport {
  /** Segment files found on open. */
  segments: number;
  /** Entries after this position can be read (earlier ones were compacted). */
  firstPosition: number;
  /** Position of the last entry recovered. */
  position: number;
  /** Bytes cut from the end of the last segment (a torn tail: an append a crash interrupted). */
  truncatedBytes: number;
  /** Why the tail was cut, when it was. */
  truncatedReason: string | undefined;
  /** Damage found elsewhere: each place, its offsets, the entries lost and its quarantine file. */
  corruption: LogCorruption[];
  /** Left-over temporary files removed (interrupted segment or snapshot creation). */
  removedTempFiles: string[];
  /** Snapshot files found unusable by `loadSnapshot` (renamed to `*.corrupt`). */
  corruptSnapshots: string[];
  /** Wall time of the open, in ms. */
  openMs: number;
}

/** Counters of damage found by this log object (for metrics), see {@link FileEventLog.corruptionStats}. */
export interface CorruptionStats {
  /** Damaged places found in segments (each quarantined or refused). */
  readonly corruptRanges: number;
  /** Bytes moved to quarantine files. */
  readonly quarantinedBytes: number;
  /** Entries in no intact record (positions covered by gap records). */
  readonly lostEntries: number;
  /** Torn tails cut from the last segment. */
  readonly tornTails: number;
  /** Snapshots found unusable. */
  readonly corruptSnapshots: number;
}

export interface SnapshotInfo {
  readonly position: number;
  readonly file: string;
  readonly bytes: number;
  /** Time to write (serialise, fsync, rename, compact), in ms. */
  readonly ms: number;
  readonly deletedSegments: number;
  readonly deletedSnapshots: number;
}

export interface DiskUsage {
  readonly bytes: number;
  readonly segments: number;
  readonly snapshots: number;
  /** Quarantine files (damaged bytes moved aside by recovery; remove them by hand once examined). */
  readonly quarantined: number;
}
