/**
 * A durable, file-backed {@link EventLog}: append-only segment files of
 * checksummed records plus periodic snapshots, in one directory.
 *
 * Layout of the directory (see docs/durability.md for the byte formats):
 *
 *   segment-<base>.log     entries base+1, base+2, … (base: 20 zero-padded digits)
 *   snapshot-<pos>.snap    an engine snapshot at log position <pos>
 *   LOCK                   the pid of the process that has the log open
 *   *.tmp                  files being created (removed on open)
 *   *.corrupt              snapshots found unusable (removed by the next snapshot)
 *   *.quarantine           damaged segment bytes moved aside by recovery (kept)
 *
 * One append is one record (record-format.ts) written with a single
 * positional write, so a batch of events is recovered all or nothing.
 * Appends are synchronous; what an acknowledged append (one that returned)
 * survives depends on the fsync policy (`always`, `batch`, `never`: see
 * docs/durability.md). Whatever the policy, the bytes are in the kernel when
 * `append` returns, so a killed process loses nothing acknowledged.
 *
 * On open every segment is scanned (segment-recovery.ts): a torn record at the
 * very end is cut with a warning; damage anywhere else never costs an intact
 * record: it is quarantined and reported, or refused (`onCorruption`).
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import type { LogEntry, PresenceEvent } from '../domain/events.js';
import type { EngineSnapshot } from '../domain/snapshot.js';
import { LogError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import type { EventLog } from './event-log.js';
import type { CorruptionStats, DiskUsage, FileEventLogOptions, FsyncPolicy, RecoveryReport, SnapshotInfo } from './file-log-types.js';
import { acquireLock, fsyncDir, releaseLock, tryUnlink, writeAll, writeFileDurably } from './log-files.js';
import { BODY_PREFIX, encodeEvents, eventsFrameBytes, MAX_RECORD_BYTES, SEGMENT_HEADER, SEGMENT_VERSION, segmentHeader } from './record-format.js';
import { entriesOf, scanSegment } from './segment-scan.js';
import { readSegmentFile, recoverSegments, type OnCorruption, type Segment } from './segment-recovery.js';
import { encodeSnapshot, listSnapshots, readSnapshotFile, SNAPSHOT_RE, snapshotName } from './snapshot-files.js';

export { MAX_RECORD_BYTES } from './record-format.js';
export type { OnCorruption } from './segment-recovery.js';
export type { CorruptionStats, DiskUsage, FileEventLogOptions, FsyncPolicy, RecoveryReport, SnapshotInfo } from './file-log-types.js';

const SEGMENT_RE = /^segment-(\d{20})\.log$/;
const segmentName = (base: number) => `segment-${String(base).padStart(20, '0')}.log`;

export class FileEventLog implements EventLog {
  readonly dir: string;
  readonly fsyncPolicy: FsyncPolicy;
  readonly recovery: RecoveryReport;
  private readonly logger: Logger;
  private readonly batchIntervalMs: number;
  private readonly segmentBytes: number;
  private readonly keepSnapshots: number;
  private readonly onCorruption: OnCorruption;
  private readonly onFsync: ((ms: number) => void) | undefined;
  private readonly listeners = new Set<(e: LogEntry) => void>();
  private segments: Segment[] = [];
  private fd = -1;
  /** Bytes of the active (last) segment. */
  private size = 0;
  private pos = 0;
  private unsynced = false;
  private synced = 0;
  private lastSyncAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private failure: Error | undefined;

  private constructor(dir: string, options: FileEventLogOptions) {
    this.dir = dir;
    this.logger = options.logger ?? consoleLogger;
    this.fsyncPolicy = options.fsync ?? 'batch';
    this.batchIntervalMs = options.batchIntervalMs ?? 50;
    this.segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.keepSnapshots = Math.max(2, options.keepSnapshots ?? 2);
    this.onCorruption = options.onCorruption ?? 'quarantine';
    this.onFsync = options.onFsync;
    this.recovery = {
      segments: 0,
      firstPosition: 0,
      position: 0,
      truncatedBytes: 0,
      truncatedReason: undefined,
      corruption: [],
      removedTempFiles: [],
      corruptSnapshots: [],
      openMs: 0,
    };
  }

  /**
   * Open (creating if needed) the log in `dir`, recovering from a crash: left-over
   * temporary files are removed, a torn record at the end is truncated with a
   * warning, and damage elsewhere is quarantined (or refused, `onCorruption`).
   * @throws LogCorruptionError when damage other than a torn tail is found and `onCorruption` is `refuse`.
   * @throws LogError when the directory is locked by a live process or cannot be read.
   */
  static open(dir: string, options: FileEventLogOptions = {}): FileEventLog {
    const t0 = performance.now();
    if (!['always', 'batch', 'never'].includes(options.fsync ?? 'batch')) {
      throw new LogError(`unknown fsync policy ${String(options.fsync)}; use always, batch or never`);
    }
    if (!['quarantine', 'refuse'].includes(options.onCorruption ?? 'quarantine')) {
      throw new LogError(`unknown onCorruption ${String(options.onCorruption)}; use quarantine or refuse`);
    }
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new LogError(`cannot create the log directory ${dir}: ${(error as Error).message}`, { cause: error });
    }
    const real = acquireLock(dir);
    const log = new FileEventLog(real, options);
    try {
      log.recover();
    } catch (error) {
      log.release();
      throw error instanceof LogError ? error : new LogError(`cannot open the log in ${dir}: ${(error as Error).message}`, { cause: error });
    }
    log.recovery.openMs = performance.now() - t0;
    return log;
  }

  // ───────────────────────────── EventLog ─────────────────────────────

  get position(): number {
    return this.pos;
  }

  /**
   * Position up to which entries are known to be fsynced (safe from power loss).
   * Equals {@link position} after each append with `fsync: always`; trails it by
   * at most `batchIntervalMs` with `batch`.
   */
  get syncedPosition(): number {
    return this.synced;
  }

  /** Entries after this position are readable; earlier ones were compacted into snapshots. */
  /** Why the log refuses appends (a failed write or fsync left the state on disk uncertain); `undefined` while healthy. */
  get failed(): Error | undefined {
    return this.failure;
  }

  get firstPosition(): number {
    return this.segments[0]?.base ?? this.pos;
  }

  /** Damage found so far by this log (on open and in `loadSnapshot`): export these as metrics. */
  get corruptionStats(): CorruptionStats {
    const c = this.recovery.corruption;
    return {
      corruptRanges: c.length,
      quarantinedBytes: c.reduce((n, r) => n + (r.quarantineFile !== undefined ? r.endOffset - r.startOffset : 0), 0),
      lostEntries: c.reduce((n, r) => n + r.lostEntries, 0),
      tornTails: this.recovery.truncatedBytes > 0 ? 1 : 0,
      corruptSnapshots: this.recovery.corruptSnapshots.length,
    };
  }

  /**
   * Append events as one record. Returns once the record is written (and, with
   * `fsync: always`, fsynced).
   * @throws LogError when the write fails (nothing is appended) or the log is closed or failed.
   */
  append(events: readonly PresenceEvent[]): readonly LogEntry[] {
    this.ensureWritable();
    if (events.length === 0) return [];
    const first = this.pos + 1;
    const json = JSON.stringify(events);
    const payload = Buffer.byteLength(json, 'utf8');
    if (BODY_PREFIX + payload > MAX_RECORD_BYTES) {
      throw new LogError(`an append of ${events.length} events is ${BODY_PREFIX + payload} bytes; the limit is ${MAX_RECORD_BYTES}`);
    }
    if (this.size > SEGMENT_HEADER && this.size + eventsFrameBytes(payload) > this.segmentBytes) this.guard('roll a segment', () => this.roll());
    const frame = encodeEvents(first, events.length, json, payload);
    try {
      writeAll(this.fd, frame, this.size);
    } catch (error) {
      // Leave no partial record behind; if even that fails, refuse further appends.
      try {
        ftruncateSync(this.fd, this.size);
      } catch (truncError) {
        this.failure = truncError as Error;
      }
      throw new LogError(`append failed, nothing was appended: ${(error as Error).message}`, { cause: error });
    }
    this.size += frame.length;
    this.pos += events.length;
    this.unsynced = true;
    if (this.fsyncPolicy === 'always') this.guard('fsync', () => this.syncNow());
    else if (this.fsyncPolicy === 'batch') this.scheduleSync();
    const entries: LogEntry[] = events.map((event, i) => ({ position: first + i, event }));
    if (this.listeners.size > 0) for (const e of entries) for (const l of [...this.listeners]) l(e);
    return entries;
  }

  /**
   * Entries with `position > after`, read from disk. Positions lost to
   * corruption (recorded by recovery as gaps) are skipped. Segments compacted
   * while the iteration runs make it fail.
   * @throws LogError when `after` is before {@link firstPosition} or a segment was damaged after the log was opened.
   */
  *read(after = 0): Iterable<LogEntry> {
    if (!Number.isSafeInteger(after) || after < 0) throw new LogError(`read(after): ${after} is not a log position`);
    if (after < this.firstPosition) {
      throw new LogError(`entries up to position ${this.firstPosition} were compacted; read from a snapshot at or after it (asked: ${after})`);
    }
    const segments = [...this.segments];
    const end = this.pos;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i] as Segment;
      const next = segments[i + 1];
      const last = next === undefined ? end : next.base;
      if (last <= after) continue;
      const buf = readSegmentFile(seg);
      const limit = next === undefined && seg === this.segments[this.segments.length - 1] ? Math.min(buf.length, this.size) : buf.length;
      const scan = scanSegment(buf, seg.base, limit);
      const damage = scan.headerDamage ?? scan.damaged[0]?.reason ?? scan.tail?.reason;
      if (damage !== undefined) {
        const at = scan.headerDamage !== undefined ? 0 : (scan.damaged[0]?.start ?? scan.tail?.start);
        throw new LogError(`segment ${seg.file} was damaged after the log was opened (byte ${at}: ${damage}); reopen the log to quarantine it`);
      }
      if (next !== undefined && scan.next - 1 !== next.base) {
        throw new LogError(`segment ${seg.file} ends at position ${scan.next - 1} but the next segment starts after ${next.base}: entries are missing`);
      }
      const out = entriesOf(seg.file, buf, scan.frames, after, end);
      yield* out;
    }
  }

  subscribe(): Observable<LogEntry> {
    return new Observable<LogEntry>((subscriber) => {
      const l = (e: LogEntry) => subscriber.next(e);
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }

  /** Fsync everything appended so far (whatever the policy). */
  async flush(): Promise<void> {
    this.flushSync();
  }

  flushSync(): void {
    if (this.closed) return;
    this.guard('fsync', () => this.syncNow());
  }

  /** Fsync and release the directory. Appends afterwards throw. Idempotent. */
  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.closed) return;
    try {
      if (this.failure === undefined) this.syncNow();
    } finally {
      this.closed = true;
      this.release();
    }
  }

  // ───────────────────────────── snapshots ─────────────────────────────

  /**
   * Write a snapshot durably (temp file, fsync, atomic rename, directory fsync),
   * start a new segment, keep the newest {@link FileEventLogOptions.keepSnapshots}
   * snapshots and delete the segments wholly before the oldest one kept.
   * The log itself is fsynced first, so a snapshot is never ahead of the durable log.
   * @throws LogError if the snapshot's position is not in this log, or on I/O errors.
   */
  writeSnapshot(snapshot: EngineSnapshot): SnapshotInfo {
    this.ensureWritable();
    const t0 = performance.now();
    const position = snapshot.position;
    if (!Number.isSafeInteger(position) || position < this.firstPosition || position > this.pos) {
      throw new LogError(`snapshot position ${position} is outside this log (${this.firstPosition}..${this.pos})`);
    }
    this.flushSync();
    const [header, payload] = encodeSnapshot(snapshot);
    const file = join(this.dir, snapshotName(position));
    try {
      writeFileDurably(file, [header, payload]);
      fsyncDir(this.dir);
    } catch (error) {
      // The log itself is intact: report, leave no temp file, keep appending.
      tryUnlink(`${file}.tmp`);
      throw new LogError(`could not write snapshot ${file}: ${(error as Error).message}`, { cause: error });
    }
    if (this.size > SEGMENT_HEADER) this.guard('roll a segment', () => this.roll());
    const { deletedSegments, deletedSnapshots } = this.compact();
    return { position, file, bytes: header.length + payload.length, ms: performance.now() - t0, deletedSegments, deletedSnapshots };
  }

  /**
   * The newest usable snapshot: checksum, format and position verified (it must
   * lie within this log). Unusable ones are renamed `*.corrupt` with a warning and
   * the previous one is tried. `undefined` when there is none and the log starts
   * at position 0 (replay everything).
   * @throws LogError when no snapshot is usable and the log was compacted.
   */
  loadSnapshot(): EngineSnapshot | undefined {
    const files = listSnapshots(this.dir);
    for (const { position, file } of files) {
      const r = readSnapshotFile(file, position, this.firstPosition, this.pos);
      if (typeof r !== 'string') return r;
      this.logger.warn(`log: snapshot ${file} is unusable (${r}); falling back to the previous snapshot`, { file, reason: r });
      this.recovery.corruptSnapshots.push(file);
      try {
        renameSync(file, `${file}.corrupt`);
      } catch {
        // Leave it; it will be tried (and rejected) again next time.
      }
    }
    if (this.firstPosition === 0) {
      if (files.length > 0) this.logger.warn(`log: no usable snapshot in ${this.dir}; replaying the whole log`);
      return undefined;
    }
    throw new LogError(
      `no usable snapshot in ${this.dir} and entries up to position ${this.firstPosition} were compacted: ` +
        `restore the directory from a backup`,
    );
  }

  /** Bytes and files in the log directory. */
  diskUsage(): DiskUsage {
    let bytes = 0;
    let segments = 0;
    let snapshots = 0;
    let quarantined = 0;
    for (const name of readdirSync(this.dir)) {
      try {
        bytes += statSync(join(this.dir, name)).size;
      } catch {
        continue;
      }
      if (SEGMENT_RE.test(name)) segments++;
      else if (SNAPSHOT_RE.test(name)) snapshots++;
      else if (name.endsWith('.quarantine')) quarantined++;
    }
    return { bytes, segments, snapshots, quarantined };
  }

  // ───────────────────────────── internals ─────────────────────────────

  private recover(): void {
    const names = readdirSync(this.dir);
    for (const name of names) {
      if (!name.endsWith('.tmp')) continue;
      unlinkSync(join(this.dir, name));
      this.recovery.removedTempFiles.push(name);
      this.logger.info(`log: removed ${name} left over by an interrupted write`);
    }
    this.segments = names
      .map((n) => SEGMENT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ base: Number(m[1]), file: join(this.dir, m[0]) }))
      .sort((a, b) => a.base - b.base);
    this.recovery.segments = this.segments.length;
    const last = this.segments[this.segments.length - 1];
    if (last === undefined) {
      // A new log, or one whose segments were all removed by hand: start after the newest snapshot.
      let base = 0;
      for (const s of listSnapshots(this.dir)) {
        if (typeof readSnapshotFile(s.file, s.position, 0, Infinity) !== 'string') {
          base = s.position;
          break;
        }
      }
      if (base > 0) this.logger.warn(`log: ${this.dir} has snapshots but no segments; starting the log after position ${base}`);
      this.pos = base;
      this.createSegment(base);
    } else {
      const r = recoverSegments(this.segments, this.onCorruption, this.logger);
      this.recovery.corruption.push(...r.corruption);
      this.recovery.truncatedBytes = r.truncatedBytes;
      this.recovery.truncatedReason = r.truncatedReason;
      this.pos = r.position;
      this.fd = openSync(last.file, 'r+');
      this.size = r.activeSize;
      // A segment in the old format is read, never appended to.
      if (r.activeFormat !== SEGMENT_VERSION) this.roll();
    }
    this.recovery.firstPosition = this.firstPosition;
    this.recovery.position = this.pos;
    // What the previous process wrote may still be only in the page cache: make it durable now.
    this.unsynced = true;
    this.syncNow();
  }

  /** Finish the active segment (durably, unless `never`) and start a new one at the current position. */
  private roll(): void {
    if (this.fsyncPolicy !== 'never') this.syncNow();
    closeSync(this.fd);
    this.fd = -1;
    this.createSegment(this.pos);
  }

  /** Create a segment atomically (temp file with its header, fsync, rename) and make it active. */
  private createSegment(base: number): void {
    const file = join(this.dir, segmentName(base));
    const tmp = `${file}.tmp`;
    const header = segmentHeader(base);
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, header, 0);
      fsyncSync(fd);
      renameSync(tmp, file);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    fsyncDir(this.dir);
    this.fd = fd;
    this.size = SEGMENT_HEADER;
    this.segments.push({ base, file });
  }

  /** Retention: keep the newest snapshots; delete older ones, `*.corrupt` files and segments before the oldest kept. */
  private compact(): { deletedSegments: number; deletedSnapshots: number } {
    let deletedSnapshots = 0;
    let deletedSegments = 0;
    const snaps = listSnapshots(this.dir);
    const kept = snaps.slice(0, this.keepSnapshots);
    for (const s of snaps.slice(this.keepSnapshots)) if (tryUnlink(s.file)) deletedSnapshots++;
    for (const name of readdirSync(this.dir)) if (name.endsWith('.corrupt') && tryUnlink(join(this.dir, name))) deletedSnapshots++;
    // Entries after the oldest kept snapshot must stay readable (it is the fallback).
    const floor = kept.length < this.keepSnapshots ? 0 : Math.min(...kept.map((s) => s.position));
    while (this.segments.length > 1) {
      const next = this.segments[1] as Segment;
      if (next.base > floor) break;
      const seg = this.segments.shift() as Segment;
      if (tryUnlink(seg.file)) deletedSegments++;
    }
    if (deletedSegments + deletedSnapshots > 0) fsyncDir(this.dir);
    return { deletedSegments, deletedSnapshots };
  }

  private syncNow(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.unsynced && this.fd >= 0) {
      const t0 = this.onFsync === undefined ? 0 : performance.now();
      fdatasyncSync(this.fd);
      this.unsynced = false;
      this.onFsync?.(performance.now() - t0);
    }
    this.synced = this.pos;
    this.lastSyncAt = Date.now();
  }

  private scheduleSync(): void {
    const due = this.lastSyncAt + this.batchIntervalMs - Date.now();
    if (due <= 0) {
      this.guard('fsync', () => this.syncNow());
      return;
    }
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.closed || this.failure !== undefined) return;
      try {
        this.syncNow();
      } catch (error) {
        this.failure = error as Error;
        this.logger.error(`log: background fsync failed; the log refuses further appends`, { error: (error as Error).message });
      }
    }, due);
    this.timer.unref?.();
  }

  /** Run an I/O step; on failure the log refuses further appends (the state on disk is uncertain). */
  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.failure = error as Error;
      throw new LogError(`could not ${what} in ${this.dir}: ${(error as Error).message}; reopen the log to recover`, { cause: error });
    }
  }

  private ensureWritable(): void {
    if (this.closed) throw new LogError(`the log in ${this.dir} is closed`);
    if (this.failure !== undefined) {
      throw new LogError(`the log in ${this.dir} failed earlier (${this.failure.message}); reopen it to recover`, { cause: this.failure });
    }
  }

  private release(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = -1;
    }
    this.closed = true;
    releaseLock(this.dir);
  }
}
