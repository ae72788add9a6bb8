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
 *
 * One append is one record (`u32 length, u32 crc32, u64 first position, u32
 * count, JSON array of events`) written with a single positional write, so a
 * batch of events is recovered all or nothing.
 * Appends are synchronous. What an acknowledged append (one that returned)
 * survives depends on the fsync policy:
 *
 *  - `always`: `fdatasync` before `append` returns: survives process crashes and
 *    power loss / kernel crashes.
 *  - `batch`: survives process crashes at once (the bytes are in the kernel when
 *    `append` returns); survives power loss once the next fsync has run, which is
 *    at most `batchIntervalMs` later, or when `flush()` resolves.
 *  - `never`: survives process crashes; power loss may lose anything not yet
 *    written back by the OS (`flush()` and `close()` still fsync).
 *
 * On open the last segment is scanned; a torn or corrupt record at its end (an
 * append interrupted by a crash) is truncated with a warning. Damage anywhere
 * else is refused with a {@link LogError}: it is not something a crash produces.
 */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Observable } from 'rxjs';
import type { LogEntry, PresenceEvent } from '../domain/events.js';
import type { EngineSnapshot } from '../engine.js';
import { LogError } from '../errors.js';
import { consoleLogger, type Logger } from '../logger.js';
import { crc32 } from './crc32.js';
import type { EventLog } from './event-log.js';

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
  /** Bytes cut from the end of the last segment (a torn or corrupt tail record). */
  truncatedBytes: number;
  /** Why the tail was cut, when it was. */
  truncatedReason: string | undefined;
  /** Left-over temporary files removed (interrupted segment or snapshot creation). */
  removedTempFiles: string[];
  /** Snapshot files found unusable by `loadSnapshot` (renamed to `*.corrupt`). */
  corruptSnapshots: string[];
  /** Wall time of the open, in ms. */
  openMs: number;
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
}

interface Segment {
  /** Position before the segment's first entry. */
  readonly base: number;
  readonly file: string;
}

const SEGMENT_MAGIC = 0x50455347; // "PESG"
const SNAPSHOT_MAGIC = 0x5045534e; // "PESN"
const FORMAT_VERSION = 1;
/** magic u32 BE, version u32 LE, base u64 LE. */
const SEGMENT_HEADER = 16;
/** length u32 LE, crc32 u32 LE (both over the body that follows). */
const RECORD_HEADER = 8;
/** Body prefix: first position u64 LE, event count u32 LE; then the events as a JSON array. */
const BODY_PREFIX = 12;
/** magic u32 BE, version u32 LE, position u64 LE, length u32 LE, crc32 u32 LE. */
const SNAPSHOT_HEADER = 24;
/** Largest record (one append) accepted: 64 MiB. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

const SEGMENT_RE = /^segment-(\d{20})\.log$/;
const SNAPSHOT_RE = /^snapshot-(\d{20})\.snap$/;

const pad = (n: number) => String(n).padStart(20, '0');
const segmentName = (base: number) => `segment-${pad(base)}.log`;
const snapshotName = (position: number) => `snapshot-${pad(position)}.snap`;

/** Directories opened by this process (the LOCK file guards against other processes). */
const OPEN_DIRS = new Set<string>();

export class FileEventLog implements EventLog {
  readonly dir: string;
  readonly fsyncPolicy: FsyncPolicy;
  readonly recovery: RecoveryReport;
  private readonly logger: Logger;
  private readonly batchIntervalMs: number;
  private readonly segmentBytes: number;
  private readonly keepSnapshots: number;
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
  private readonly onFsync: ((ms: number) => void) | undefined;

  private constructor(dir: string, options: FileEventLogOptions) {
    this.dir = dir;
    this.logger = options.logger ?? consoleLogger;
    this.fsyncPolicy = options.fsync ?? 'batch';
    this.batchIntervalMs = options.batchIntervalMs ?? 50;
    this.segmentBytes = options.segmentBytes ?? 16 * 1024 * 1024;
    this.keepSnapshots = Math.max(2, options.keepSnapshots ?? 2);
    this.onFsync = options.onFsync;
    this.recovery = {
      segments: 0,
      firstPosition: 0,
      position: 0,
      truncatedBytes: 0,
      truncatedReason: undefined,
      removedTempFiles: [],
      corruptSnapshots: [],
      openMs: 0,
    };
  }

  /**
   * Open (creating if needed) the log in `dir`, recovering from a crash: left-over
   * temporary files are removed and a torn record at the end is truncated with a
   * warning.
   * @throws LogError when the directory is locked by a live process, or damaged
   *   in a way a crash cannot explain.
   */
  static open(dir: string, options: FileEventLogOptions = {}): FileEventLog {
    const t0 = performance.now();
    if (!['always', 'batch', 'never'].includes(options.fsync ?? 'batch')) {
      throw new LogError(`unknown fsync policy ${String(options.fsync)}; use always, batch or never`);
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

  /** Why the log refuses appends (a failed write or fsync left the state on disk uncertain); `undefined` while healthy. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Entries after this position are readable; earlier ones were compacted into snapshots. */
  get firstPosition(): number {
    return this.segments[0]?.base ?? this.pos;
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
    const bodyLength = BODY_PREFIX + Buffer.byteLength(json, 'utf8');
    if (bodyLength > MAX_RECORD_BYTES) {
      throw new LogError(`an append of ${events.length} events is ${bodyLength} bytes; the limit is ${MAX_RECORD_BYTES}`);
    }
    const frame = Buffer.allocUnsafe(RECORD_HEADER + bodyLength);
    frame.writeUInt32LE(bodyLength, 0);
    frame.writeBigUInt64LE(BigInt(first), RECORD_HEADER);
    frame.writeUInt32LE(events.length, RECORD_HEADER + 8);
    frame.write(json, RECORD_HEADER + BODY_PREFIX, 'utf8');
    frame.writeUInt32LE(crc32(frame, RECORD_HEADER), 4);
    if (this.size > SEGMENT_HEADER && this.size + frame.length > this.segmentBytes) this.guard('roll a segment', () => this.roll());
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
   * Entries with `position > after`, read from disk. Segments compacted while
   * the iteration runs make it fail.
   * @throws LogError when `after` is before {@link firstPosition} or a segment is damaged.
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
      const buf = this.readSegment(seg);
      const limit = next === undefined && seg === this.segments[this.segments.length - 1] ? Math.min(buf.length, this.size) : buf.length;
      const out: LogEntry[] = [];
      const r = scanRecords(buf, seg.base, limit, (p, count, start, stop) => {
        if (p + count - 1 <= after || p > end) return;
        let events: unknown;
        try {
          events = JSON.parse(buf.toString('utf8', start, stop));
        } catch {
          events = undefined;
        }
        if (!Array.isArray(events) || events.length !== count) {
          throw new LogError(`segment ${seg.file}: the record at position ${p} has a valid checksum but not ${count} events`);
        }
        for (let k = 0; k < count; k++) if (p + k > after && p + k <= end) out.push({ position: p + k, event: events[k] as PresenceEvent });
      });
      if (r.error !== undefined) throw new LogError(`segment ${seg.file} is damaged at byte ${r.end}: ${r.error}`);
      if (next !== undefined && r.next - 1 !== next.base) {
        throw new LogError(`segment ${seg.file} ends at position ${r.next - 1} but the next segment starts after ${next.base}: entries are missing`);
      }
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
    const payload = Buffer.from(JSON.stringify(snapshot), 'utf8');
    const header = Buffer.alloc(SNAPSHOT_HEADER);
    header.writeUInt32BE(SNAPSHOT_MAGIC, 0);
    header.writeUInt32LE(FORMAT_VERSION, 4);
    header.writeBigUInt64LE(BigInt(position), 8);
    header.writeUInt32LE(payload.length, 16);
    header.writeUInt32LE(crc32(payload), 20);
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
    const files = this.listSnapshots();
    for (const { position, file } of files) {
      const r = this.readSnapshotFile(file, position);
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
    for (const name of readdirSync(this.dir)) {
      try {
        bytes += statSync(join(this.dir, name)).size;
      } catch {
        continue;
      }
      if (SEGMENT_RE.test(name)) segments++;
      else if (SNAPSHOT_RE.test(name)) snapshots++;
    }
    return { bytes, segments, snapshots };
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
      const snaps = this.listSnapshots();
      let base = 0;
      for (const s of snaps) {
        if (typeof this.readSnapshotFile(s.file, s.position, Infinity) !== 'string') {
          base = s.position;
          break;
        }
      }
      if (base > 0) this.logger.warn(`log: ${this.dir} has snapshots but no segments; starting the log after position ${base}`);
      this.pos = base;
      this.createSegment(base);
    } else {
      const buf = this.readSegment(last);
      const r = scanRecords(buf, last.base, buf.length);
      this.pos = r.next - 1;
      if (r.error !== undefined) {
        const cut = buf.length - r.end;
        this.logger.warn(
          `log: torn or corrupt record at the end of ${last.file} (byte ${r.end}: ${r.error}); truncated ${cut} bytes, ` +
            `the log ends at position ${this.pos}`,
          { file: last.file, offset: r.end, bytes: cut, reason: r.error },
        );
        this.recovery.truncatedBytes = cut;
        this.recovery.truncatedReason = r.error;
      }
      this.fd = openSync(last.file, 'r+');
      this.size = r.end;
      if (r.error !== undefined) {
        ftruncateSync(this.fd, r.end);
        fsyncSync(this.fd);
      }
    }
    this.recovery.firstPosition = this.firstPosition;
    this.recovery.position = this.pos;
    // What the previous process wrote may still be only in the page cache: make it durable now.
    this.unsynced = true;
    this.syncNow();
  }

  /** Read a whole segment, checking its header. */
  private readSegment(seg: Segment): Buffer {
    let buf: Buffer;
    try {
      buf = readFileSync(seg.file);
    } catch (error) {
      throw new LogError(`cannot read segment ${seg.file}: ${(error as Error).message}`, { cause: error });
    }
    if (buf.length < SEGMENT_HEADER || buf.readUInt32BE(0) !== SEGMENT_MAGIC) {
      throw new LogError(`${seg.file} is not a presence log segment (bad header)`);
    }
    const version = buf.readUInt32LE(4);
    if (version !== FORMAT_VERSION) throw new LogError(`${seg.file} has format version ${version}; this build reads version ${FORMAT_VERSION}`);
    const base = Number(buf.readBigUInt64LE(8));
    if (base !== seg.base) throw new LogError(`${seg.file} says it starts after position ${base}, its name says ${seg.base}`);
    return buf;
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
    const header = Buffer.alloc(SEGMENT_HEADER);
    header.writeUInt32BE(SEGMENT_MAGIC, 0);
    header.writeUInt32LE(FORMAT_VERSION, 4);
    header.writeBigUInt64LE(BigInt(base), 8);
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
    const snaps = this.listSnapshots();
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

  private listSnapshots(): { position: number; file: string }[] {
    return readdirSync(this.dir)
      .map((n) => SNAPSHOT_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ position: Number(m[1]), file: join(this.dir, m[0]) }))
      .sort((a, b) => b.position - a.position);
  }

  /** The snapshot in `file`, or why it is unusable. */
  private readSnapshotFile(file: string, position: number, maxPosition = this.pos): EngineSnapshot | string {
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (error) {
      return `unreadable: ${(error as Error).message}`;
    }
    if (buf.length < SNAPSHOT_HEADER || buf.readUInt32BE(0) !== SNAPSHOT_MAGIC) return 'bad header';
    if (buf.readUInt32LE(4) !== FORMAT_VERSION) return `format version ${buf.readUInt32LE(4)}`;
    if (Number(buf.readBigUInt64LE(8)) !== position) return 'header position does not match the file name';
    const len = buf.readUInt32LE(16);
    if (buf.length !== SNAPSHOT_HEADER + len) return `length ${buf.length - SNAPSHOT_HEADER} instead of ${len} bytes`;
    if (crc32(buf, SNAPSHOT_HEADER) !== buf.readUInt32LE(20)) return 'checksum mismatch';
    let s: unknown;
    try {
      s = JSON.parse(buf.toString('utf8', SNAPSHOT_HEADER));
    } catch {
      return 'unparseable JSON';
    }
    if (!isSnapshot(s)) return 'not an engine snapshot (version 1)';
    if (s.position !== position) return 'payload position does not match the file name';
    if (position > maxPosition) return `position ${position} is beyond the end of the log (${maxPosition})`;
    if (position < this.firstPosition) return `position ${position} is before the start of the log (${this.firstPosition})`;
    return s;
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

// ───────────────────────────── helpers ─────────────────────────────

interface ScanResult {
  /** Byte offset just after the last valid record. */
  readonly end: number;
  /** Position the next record must start at. */
  readonly next: number;
  /** Why scanning stopped before `limit`. */
  readonly error?: string;
}

/**
 * Walk the records of a segment from its header up to `limit`, checking framing,
 * checksums and positions. `onRecord` gets each record's first position, event
 * count and the byte range of its JSON events (parsed only by readers that need them).
 */
function scanRecords(
  buf: Buffer,
  base: number,
  limit: number,
  onRecord?: (first: number, count: number, jsonStart: number, jsonEnd: number) => void,
): ScanResult {
  let off = SEGMENT_HEADER;
  let next = base + 1;
  while (off < limit) {
    const stop = (error: string): ScanResult => ({ end: off, next, error });
    if (limit - off < RECORD_HEADER) return stop(`incomplete record header (${limit - off} bytes)`);
    const len = buf.readUInt32LE(off);
    if (len < BODY_PREFIX + 2 || len > MAX_RECORD_BYTES) return stop(`impossible record length ${len}`);
    const start = off + RECORD_HEADER;
    if (start + len > limit) return stop(`record of ${len} bytes runs past the end of the file`);
    if (crc32(buf, start, start + len) !== buf.readUInt32LE(off + 4)) return stop('checksum mismatch');
    const first = Number(buf.readBigUInt64LE(start));
    const count = buf.readUInt32LE(start + 8);
    if (count === 0) return stop('empty record');
    if (first !== next) return stop(`record starts at position ${first}, expected ${next}`);
    onRecord?.(first, count, start + BODY_PREFIX, start + len);
    next += count;
    off = start + len;
  }
  return { end: off, next };
}

function isSnapshot(s: unknown): s is EngineSnapshot {
  if (typeof s !== 'object' || s === null) return false;
  const o = s as Record<string, unknown>;
  return (
    o['version'] === 1 &&
    Number.isSafeInteger(o['position']) &&
    typeof o['streamId'] === 'number' &&
    Array.isArray(o['users']) &&
    Array.isArray(o['rooms']) &&
    Array.isArray(o['fullRequests'])
  );
}

/** Write all of `buf` at `position` (writeSync may write less than asked). */
function writeAll(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

/** Write a file atomically: `<file>.tmp`, fsync, rename over `file`. */
function writeFileDurably(file: string, parts: readonly Buffer[]): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    let at = 0;
    for (const p of parts) {
      writeAll(fd, p, at);
      at += p.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Make a rename or unlink in `dir` durable (not supported everywhere; best effort). */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync a directory.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function tryUnlink(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the directory: one process, one open log. A LOCK left by a dead process is taken over. */
function acquireLock(dir: string): string {
  const real = realpathSync(dir);
  if (OPEN_DIRS.has(real)) throw new LogError(`the log in ${dir} is already open in this process; close it first`);
  const lockFile = join(real, 'LOCK');
  let fd: number;
  try {
    fd = openSync(lockFile, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new LogError(`cannot lock ${dir}: ${(error as Error).message}`, { cause: error });
    }
    let pid = NaN;
    try {
      pid = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    } catch {
      // unreadable: treat as stale
    }
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new LogError(`the log in ${dir} is in use by process ${pid} (${lockFile}); stop it first`);
    }
    fd = openSync(lockFile, 'w');
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  OPEN_DIRS.add(real);
  return real;
}

function releaseLock(real: string): void {
  if (!OPEN_DIRS.delete(real)) return;
  tryUnlink(join(real, 'LOCK'));
}
