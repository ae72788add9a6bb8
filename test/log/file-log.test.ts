import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../../src/domain/events.js';
import type { UserId } from '../../src/domain/ids.js';
import type { EngineSnapshot } from '../../src/engine.js';
import { LogError } from '../../src/errors.js';
import { crc32 } from '../../src/log/crc32.js';
import { FileEventLog, type FileEventLogOptions } from '../../src/log/file-log.js';
import { MemoryLogger } from '../../src/logger.js';
import { tempDir } from './support.js';

const step = (i: number): PresenceEvent => ({
  type: 'user.step',
  userId: `@u${i % 7}:t.test` as UserId,
  at: 1_700_000_000_000 + i,
  streamId: i,
  presence: { state: i % 2 === 0 ? 'online' : 'unavailable', lastActiveTs: 1_700_000_000_000 + i },
});

const snap = (position: number, streamId = position): EngineSnapshot => ({ version: 1, position, streamId, users: [], rooms: [], fullRequests: [] });

const cleanups: (() => void)[] = [];
const open: FileEventLog[] = [];
afterEach(() => {
  for (const l of open.splice(0)) l.closeSync();
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function openLog(d: string, options: FileEventLogOptions = {}): { log: FileEventLog; logger: MemoryLogger } {
  const logger = new MemoryLogger();
  const log = FileEventLog.open(d, { logger, ...options });
  open.push(log);
  return { log, logger };
}

function reopen(log: FileEventLog, options: FileEventLogOptions = {}) {
  log.closeSync();
  return openLog(log.dir, options);
}

const segments = (d: string) => readdirSync(d).filter((n) => n.endsWith('.log')).sort();
const snapshots = (d: string) => readdirSync(d).filter((n) => n.endsWith('.snap')).sort();
const positions = (log: FileEventLog, after = 0) => [...log.read(after)].map((e) => e.position);

describe('crc32', () => {
  it('matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });
});

describe('FileEventLog: appends and reads', () => {
  it('gives consecutive positions from 1 and reads them back after a reopen', () => {
    const { log } = openLog(dir(), { fsync: 'always' });
    expect(log.position).toBe(0);
    expect(log.append([step(1)]).map((e) => e.position)).toEqual([1]);
    expect(log.append([step(2), step(3), step(4)]).map((e) => e.position)).toEqual([2, 3, 4]);
    expect(log.append([])).toEqual([]);
    expect(positions(log)).toEqual([1, 2, 3, 4]);
    expect(positions(log, 2)).toEqual([3, 4]);
    const { log: again } = reopen(log);
    expect(again.position).toBe(4);
    expect([...again.read()].map((e) => e.event)).toEqual([step(1), step(2), step(3), step(4)]);
    expect(again.append([step(5)])[0]?.position).toBe(5);
  });

  it('publishes appended entries to subscribers', () => {
    const { log } = openLog(dir());
    const seen: number[] = [];
    const sub = log.subscribe().subscribe((e) => seen.push(e.position));
    log.append([step(1), step(2)]);
    sub.unsubscribe();
    log.append([step(3)]);
    expect(seen).toEqual([1, 2]);
  });

  it('rolls segments at the configured size and reads across them', () => {
    const d = dir();
    const { log } = openLog(d, { segmentBytes: 1024 });
    for (let i = 1; i <= 100; i++) log.append([step(i)]);
    expect(segments(d).length).toBeGreaterThan(5);
    expect(positions(log)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const { log: again } = reopen(log, { segmentBytes: 1024 });
    expect(again.position).toBe(100);
    expect(positions(again, 57)).toEqual(Array.from({ length: 43 }, (_, i) => i + 58));
  });

  it('refuses appends after close, and a second open of the same directory', () => {
    const d = dir();
    const { log } = openLog(d);
    expect(() => FileEventLog.open(d)).toThrow(LogError);
    log.closeSync();
    expect(() => log.append([step(1)])).toThrow(LogError);
    const { log: again } = openLog(d);
    expect(again.position).toBe(0);
  });

  it('takes over the lock of a dead process but not of a live one', () => {
    const d = dir();
    openLog(d).log.closeSync();
    writeFileSync(join(d, 'LOCK'), `${process.ppid}\n`); // alive (our parent)
    expect(() => FileEventLog.open(d)).toThrow(/in use by process/);
    writeFileSync(join(d, 'LOCK'), '2147483646\n'); // no such process
    const { log } = openLog(d);
    expect(readFileSync(join(d, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    log.closeSync();
    expect(existsSync(join(d, 'LOCK'))).toBe(false);
  });

  it.each(['always', 'batch', 'never'] as const)('fsync %s: appends survive close and reopen', async (fsync) => {
    const { log } = openLog(dir(), { fsync, batchIntervalMs: 1 });
    for (let i = 1; i <= 20; i++) log.append([step(i)]);
    await new Promise((r) => setTimeout(r, 5)); // let a batch fsync run
    await log.flush();
    const { log: again } = reopen(log);
    expect(again.position).toBe(20);
  });

  it('syncedPosition: always keeps up; batch catches up within the interval; flush catches up', async () => {
    const { log: always } = openLog(dir(), { fsync: 'always' });
    always.append([step(1)]);
    expect(always.syncedPosition).toBe(1);
    const { log: batch } = openLog(dir(), { fsync: 'batch', batchIntervalMs: 250 });
    batch.append([step(1)]);
    batch.append([step(2)]);
    expect(batch.syncedPosition).toBeLessThan(2);
    await new Promise((r) => setTimeout(r, 600));
    expect(batch.syncedPosition).toBe(2);
    const { log: never } = openLog(dir(), { fsync: 'never' });
    never.append([step(1)]);
    expect(never.syncedPosition).toBe(0);
    await never.flush();
    expect(never.syncedPosition).toBe(1);
  });

  it('rejects an unknown fsync policy', () => {
    expect(() => FileEventLog.open(dir(), { fsync: 'sometimes' as never })).toThrow(LogError);
  });
});

describe('FileEventLog: torn tails', () => {
  it('truncates a record cut at any byte, with a warning, and keeps appending after it', () => {
    const d = dir();
    const { log } = openLog(d);
    for (let i = 1; i <= 5; i++) log.append([step(i)]);
    const seg = join(d, segments(d)[0] as string);
    const before = statSync(seg).size;
    log.append([step(6), step(7)]); // one record: recovered all or nothing
    log.closeSync();
    const full = readFileSync(seg);
    for (let cut = before + 1; cut < full.length; cut += cut < before + 12 ? 1 : 5) {
      writeFileSync(seg, full.subarray(0, cut));
      const { log: again, logger } = openLog(d);
      expect(again.position).toBe(5);
      expect(again.recovery.truncatedBytes).toBe(cut - before);
      expect(logger.warnings().some((w) => w.includes('torn record at the end of'))).toBe(true);
      expect(statSync(seg).size).toBe(before);
      again.closeSync();
    }
    writeFileSync(seg, full.subarray(0, before + 3));
    const { log: again } = openLog(d);
    expect(again.append([step(6)])[0]?.position).toBe(6);
    expect(positions(again)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('truncates a complete record whose bytes are wrong (checksum) or zero-filled', () => {
    const d = dir();
    const { log } = openLog(d);
    log.append([step(1)]);
    log.append([step(2)]);
    log.closeSync();
    const seg = join(d, segments(d)[0] as string);
    const full = readFileSync(seg);
    const flipped = Buffer.from(full);
    flipped[full.length - 3] = (flipped[full.length - 3] as number) ^ 0x20;
    writeFileSync(seg, flipped);
    let r = openLog(d);
    expect(r.log.position).toBe(1);
    expect(r.log.recovery.truncatedReason).toBe('checksum mismatch');
    r.log.closeSync();
    writeFileSync(seg, Buffer.concat([readFileSync(seg), Buffer.alloc(4096)])); // size extended, data never written
    r = openLog(d);
    expect(r.log.position).toBe(1);
    expect(r.log.recovery.truncatedBytes).toBe(4096);
  });

  it('reports damage before the last segment (a crash cannot cause it) and keeps the later segments', () => {
    const d = dir();
    const { log } = openLog(d, { segmentBytes: 512 });
    for (let i = 1; i <= 40; i++) log.append([step(i)]);
    log.closeSync();
    const first = join(d, segments(d)[0] as string);
    truncateSync(first, statSync(first).size - 5);
    const { log: again, logger } = openLog(d, { segmentBytes: 512 });
    expect(again.position).toBe(40);
    expect(again.recovery.truncatedBytes).toBe(0);
    expect(again.recovery.corruption).toHaveLength(1);
    expect(again.recovery.corruption[0]?.lostEntries).toBe(1);
    expect(logger.entries.filter((e) => e.level === 'error')).toHaveLength(1);
    expect(positions(again)).toHaveLength(39);
  });

  it('a segment damaged while the log is open makes reads fail with a LogError', () => {
    const d = dir();
    const { log } = openLog(d, { segmentBytes: 512 });
    for (let i = 1; i <= 40; i++) log.append([step(i)]);
    const first = join(d, segments(d)[0] as string);
    const bytes = readFileSync(first);
    bytes[40] = (bytes[40] as number) ^ 1;
    writeFileSync(first, bytes);
    expect(() => [...log.read()]).toThrow(/damaged after the log was opened/);
  });

  it('removes temporary files left by an interrupted segment or snapshot creation', () => {
    const d = dir();
    openLog(d).log.closeSync();
    writeFileSync(join(d, 'snapshot-00000000000000000009.snap.tmp'), 'partial');
    writeFileSync(join(d, 'segment-00000000000000000009.log.tmp'), 'partial');
    const { log } = openLog(d);
    expect(log.recovery.removedTempFiles.sort()).toEqual(['segment-00000000000000000009.log.tmp', 'snapshot-00000000000000000009.snap.tmp']);
    expect(readdirSync(d).some((n) => n.endsWith('.tmp'))).toBe(false);
  });
});

describe('FileEventLog: snapshots and compaction', () => {
  it('writes snapshots atomically, loads the newest, and keeps the previous one', () => {
    const d = dir();
    const { log } = openLog(d);
    expect(log.loadSnapshot()).toBeUndefined();
    for (let i = 1; i <= 10; i++) log.append([step(i)]);
    log.writeSnapshot(snap(4));
    log.writeSnapshot(snap(10));
    for (let i = 11; i <= 12; i++) log.append([step(i)]);
    log.writeSnapshot(snap(12));
    expect(snapshots(d)).toEqual(['snapshot-00000000000000000010.snap', 'snapshot-00000000000000000012.snap']);
    const { log: again } = reopen(log);
    expect(again.loadSnapshot()?.position).toBe(12);
  });

  it('falls back to the previous snapshot when the newest is corrupt', () => {
    const d = dir();
    const { log } = openLog(d);
    for (let i = 1; i <= 10; i++) log.append([step(i)]);
    log.writeSnapshot(snap(5));
    log.writeSnapshot(snap(10, 77));
    log.closeSync();
    const newest = join(d, 'snapshot-00000000000000000010.snap');
    const bytes = readFileSync(newest);
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
    writeFileSync(newest, bytes);
    const { log: again, logger } = openLog(d);
    expect(again.loadSnapshot()?.position).toBe(5);
    expect(logger.warnings().some((w) => w.includes('unusable (checksum mismatch)'))).toBe(true);
    expect(again.recovery.corruptSnapshots).toEqual([newest]);
    expect(existsSync(`${newest}.corrupt`)).toBe(true);
    expect(positions(again, 5)).toEqual([6, 7, 8, 9, 10]); // the fallback's tail is still there
    // The next snapshot clears the corrupt file.
    again.writeSnapshot(snap(10));
    expect(existsSync(`${newest}.corrupt`)).toBe(false);
  });

  it('falls back when the newest snapshot is truncated, or ahead of the log', () => {
    const d = dir();
    const { log } = openLog(d);
    for (let i = 1; i <= 6; i++) log.append([step(i)]);
    log.writeSnapshot(snap(3));
    log.writeSnapshot(snap(6));
    log.closeSync();
    truncateSync(join(d, 'snapshot-00000000000000000006.snap'), 30);
    writeFileSync(join(d, 'snapshot-00000000000000000099.snap'), readFileSync(join(d, 'snapshot-00000000000000000003.snap')));
    const { log: again, logger } = openLog(d);
    expect(again.loadSnapshot()?.position).toBe(3);
    expect(logger.warnings()).toHaveLength(2);
  });

  it('with no usable snapshot: replays from 0 if possible, otherwise a LogError', () => {
    const d = dir();
    const { log } = openLog(d, { segmentBytes: 256 });
    for (let i = 1; i <= 30; i++) log.append([step(i)]);
    log.writeSnapshot(snap(10));
    log.writeSnapshot(snap(20)); // compacts segments before 10
    expect(log.firstPosition).toBeGreaterThan(0);
    log.closeSync();
    for (const s of snapshots(d)) writeFileSync(join(d, s), 'garbage');
    const { log: again } = openLog(d);
    expect(() => again.loadSnapshot()).toThrow(/no usable snapshot/);

    const d2 = dir();
    const r = openLog(d2);
    r.log.append([step(1)]);
    r.log.writeSnapshot(snap(1));
    r.log.closeSync();
    writeFileSync(join(d2, 'snapshot-00000000000000000001.snap'), 'garbage');
    const { log: fresh, logger } = openLog(d2);
    expect(fresh.loadSnapshot()).toBeUndefined();
    expect(logger.warnings().some((w) => w.includes('replaying the whole log'))).toBe(true);
  });

  it('deletes segments wholly before the previous snapshot; reads before the log start fail', () => {
    const d = dir();
    const { log } = openLog(d, { segmentBytes: 1024 });
    for (let round = 1; round <= 8; round++) {
      for (let i = 0; i < 50; i++) log.append([step(log.position + 1)]);
      log.writeSnapshot(snap(log.position));
    }
    expect(log.position).toBe(400);
    // Kept: snapshots at 350 and 400, entries after 350.
    expect(snapshots(d)).toEqual(['snapshot-00000000000000000350.snap', 'snapshot-00000000000000000400.snap']);
    expect(log.firstPosition).toBe(350);
    expect(positions(log, 350)).toHaveLength(50);
    expect(() => [...log.read(100)]).toThrow(LogError);
    expect(log.diskUsage().bytes).toBeLessThan(10_000);
    const { log: again } = reopen(log, { segmentBytes: 1024 });
    expect(again.firstPosition).toBe(350);
    expect(again.position).toBe(400);
  });

  it('a failed snapshot write is reported and leaves the log appendable', () => {
    const d = dir();
    const { log } = openLog(d);
    log.append([step(1)]);
    const blocker = join(d, 'snapshot-00000000000000000001.snap.tmp');
    mkdirSync(blocker); // the temp file cannot be created
    expect(() => log.writeSnapshot(snap(1))).toThrow(/could not write snapshot/);
    rmdirSync(blocker);
    expect(log.append([step(2)])[0]?.position).toBe(2);
    expect(log.writeSnapshot(snap(2)).position).toBe(2);
  });

  it('rejects a snapshot outside the log', () => {
    const { log } = openLog(dir());
    log.append([step(1)]);
    expect(() => log.writeSnapshot(snap(2))).toThrow(LogError);
  });
});
