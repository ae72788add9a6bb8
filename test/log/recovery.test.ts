/**
 * Recovery keeps every intact record (issue 19): a damaged record in the
 * middle of a segment is moved aside into a quarantine file and reported; the
 * records before and after it stay readable. Only a damaged end of the last
 * segment (a torn tail: never acknowledged) is cut.
 */
import { existsSync, readdirSync, readFileSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../../src/domain/events.js';
import type { UserId } from '../../src/domain/ids.js';
import { LogCorruptionError, LogError } from '../../src/errors.js';
import { crc32 } from '../../src/log/crc32.js';
import { FileEventLog, type FileEventLogOptions } from '../../src/log/file-log.js';
import { MemoryLogger } from '../../src/logger.js';
import { tempDir } from './support.js';

/** An event whose JSON contains a unique tag, so a test can find its bytes in a segment. */
const tagged = (i: number): PresenceEvent => ({
  type: 'user.step',
  userId: `@tag${String(i).padStart(5, '0')}:t.test` as UserId,
  at: 1_700_000_000_000 + i,
  streamId: i,
  presence: { state: 'online', lastActiveTs: 1_700_000_000_000 + i },
});
const tagOf = (i: number) => `@tag${String(i).padStart(5, '0')}:`;

const cleanups: (() => void)[] = [];
const opened: FileEventLog[] = [];
afterEach(() => {
  for (const l of opened.splice(0)) l.closeSync();
  for (const c of cleanups.splice(0)) c();
});
function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}
function openLog(d: string, options: FileEventLogOptions = {}) {
  const logger = new MemoryLogger();
  const log = FileEventLog.open(d, { logger, ...options });
  opened.push(log);
  return { log, logger };
}
const segments = (d: string) => readdirSync(d).filter((n) => /^segment-\d{20}\.log$/.test(n)).sort();
const quarantined = (d: string) => readdirSync(d).filter((n) => n.endsWith('.quarantine')).sort();
const positions = (log: FileEventLog) => [...log.read(log.firstPosition)].map((e) => e.position);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Flip one bit inside the JSON of event `i` (wherever the format put it). */
function flipInside(d: string, i: number): string {
  for (const name of segments(d)) {
    const file = join(d, name);
    const buf = readFileSync(file);
    const at = buf.indexOf(tagOf(i));
    if (at < 0) continue;
    buf[at + 3] = (buf[at + 3] as number) ^ 0x04;
    writeFileSync(file, buf);
    return file;
  }
  throw new Error(`event ${i} not found`);
}

function write(d: string, n: number, options: FileEventLogOptions = {}): void {
  const { log } = openLog(d, { fsync: 'never', ...options });
  for (let i = 1; i <= n; i++) log.append([tagged(i)]);
  log.closeSync();
}

describe('recovery keeps every intact record', () => {
  it('a flipped bit in a middle record of the last segment loses that record only', () => {
    const d = dir();
    write(d, 40);
    const file = flipInside(d, 17);
    const before = statSync(file).size;
    const { log, logger } = openLog(d);
    expect(log.position).toBe(40);
    expect(positions(log)).toEqual([...range(1, 16), ...range(18, 40)]);
    expect([...log.read(17)][0]?.event).toEqual(tagged(18));
    // The damaged bytes were moved aside and reported, with offsets and counts.
    expect(quarantined(d)).toHaveLength(1);
    const [report] = log.recovery.corruption;
    expect(report).toMatchObject({ file, lostEntries: 1, firstLost: 17, lastLost: 17 });
    expect(report!.endOffset).toBeGreaterThan(report!.startOffset);
    expect(readFileSync(report!.quarantineFile!).length).toBe(report!.endOffset - report!.startOffset);
    expect(statSync(file).size).toBeLessThan(before);
    expect(log.corruptionStats).toMatchObject({ corruptRanges: 1, lostEntries: 1 });
    expect(logger.entries.some((e) => e.level === 'error' && e.message.includes('corrupt'))).toBe(true);
    // Appends continue after the last intact record; a reopen is quiet and reads the same.
    expect(log.append([tagged(41)])[0]?.position).toBe(41);
    log.closeSync();
    const { log: again, logger: quiet } = openLog(d);
    expect(positions(again)).toEqual([...range(1, 16), ...range(18, 41)]);
    expect(again.recovery.corruption).toEqual([]);
    expect(quiet.entries.filter((e) => e.level !== 'info')).toEqual([]);
  });

  it('a flipped bit in the first record of the last segment keeps the rest (was: 813 entries became 0)', () => {
    const d = dir();
    write(d, 120, { segmentBytes: 4096 });
    const segs = segments(d);
    expect(segs.length).toBeGreaterThan(2);
    const lastBase = Number(/(\d{20})/.exec(segs[segs.length - 1] as string)![1]);
    flipInside(d, lastBase + 1);
    const { log } = openLog(d, { segmentBytes: 4096 });
    expect(log.position).toBe(120);
    expect(positions(log)).toEqual([...range(1, lastBase), ...range(lastBase + 2, 120)]);
    expect(log.recovery.corruption).toHaveLength(1);
  });

  it('a flipped bit in an earlier segment no longer makes reads fail', () => {
    const d = dir();
    write(d, 120, { segmentBytes: 4096 });
    flipInside(d, 5);
    const { log } = openLog(d, { segmentBytes: 4096 });
    expect(positions(log)).toEqual([...range(1, 4), ...range(6, 120)]);
    expect(log.recovery.corruption[0]).toMatchObject({ firstLost: 5, lastLost: 5 });
  });

  it('a truncated earlier segment: the missing entries are reported, later segments kept', () => {
    const d = dir();
    write(d, 120, { segmentBytes: 4096 });
    const first = join(d, segments(d)[0] as string);
    truncateSync(first, statSync(first).size - 5);
    const { log } = openLog(d, { segmentBytes: 4096 });
    expect(log.position).toBe(120);
    const got = positions(log);
    expect(got).toHaveLength(119);
    expect(log.recovery.corruption[0]?.lostEntries).toBe(1);
  });

  it('on_corruption refuse: a typed error with file, offsets and counts; nothing is changed', () => {
    const d = dir();
    write(d, 30);
    const file = flipInside(d, 10);
    const bytes = readFileSync(file);
    let error: unknown;
    try {
      openLog(d, { onCorruption: 'refuse' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LogCorruptionError);
    expect(error).toBeInstanceOf(LogError);
    const c = error as LogCorruptionError;
    expect(c.corruption[0]).toMatchObject({ file, firstLost: 10, lastLost: 10 });
    expect(c.message).toContain(file);
    expect(c.message).toContain('on_corruption');
    expect(readFileSync(file)).toEqual(bytes);
    expect(quarantined(d)).toEqual([]);
    // The default then keeps the intact records.
    const { log } = openLog(d);
    expect(positions(log)).toEqual([...range(1, 9), ...range(11, 30)]);
  });

  it('a torn tail (only the end) is still cut with a warning, not reported as corruption', () => {
    const d = dir();
    write(d, 10);
    const seg = join(d, segments(d)[0] as string);
    const full = readFileSync(seg);
    writeFileSync(seg, full.subarray(0, full.length - 7));
    const { log, logger } = openLog(d);
    expect(log.position).toBe(9);
    expect(log.recovery.truncatedBytes).toBeGreaterThan(0);
    expect(log.recovery.corruption).toEqual([]);
    expect(logger.warnings().some((w) => w.includes('torn record'))).toBe(true);
  });

  it('a damaged segment header is rebuilt from the file name; the records are kept', () => {
    const d = dir();
    write(d, 12);
    const seg = join(d, segments(d)[0] as string);
    const buf = readFileSync(seg);
    buf[9] = (buf[9] as number) ^ 0x80; // inside the base position
    writeFileSync(seg, buf);
    const { log } = openLog(d);
    expect(positions(log)).toEqual(range(1, 12));
    expect(log.recovery.corruption).toHaveLength(1);
    expect(log.recovery.corruption[0]?.lostEntries).toBe(0);
  });

  it('a segment in an unknown (newer) format is refused, not repaired', () => {
    const d = dir();
    const seg = join(d, 'segment-00000000000000000000.log');
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x50455347, 0);
    header.writeUInt32LE(3, 4);
    const bytes = Buffer.concat([header, Buffer.from('records of a future format')]);
    writeFileSync(seg, bytes);
    expect(() => openLog(d)).toThrow(/unknown format version 3; this build reads versions 1 and 2/);
    expect(readFileSync(seg)).toEqual(bytes);
  });
});

/** A segment in the first on-disk format (version 1, no sync markers), as older builds wrote it. */
function legacySegment(base: number, events: readonly PresenceEvent[]): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(0x50455347, 0);
  header.writeUInt32LE(1, 4);
  header.writeBigUInt64LE(BigInt(base), 8);
  const records = events.map((e, i) => {
    const json = Buffer.from(JSON.stringify([e]), 'utf8');
    const body = Buffer.alloc(12 + json.length);
    body.writeBigUInt64LE(BigInt(base + i + 1), 0);
    body.writeUInt32LE(1, 8);
    json.copy(body, 12);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(body.length, 0);
    head.writeUInt32LE(crc32(body), 4);
    return Buffer.concat([head, body]);
  });
  return Buffer.concat([header, ...records]);
}

describe('logs written by the version 1 format', () => {
  it('are read, appended to (in a new version 2 segment) and reopened', () => {
    const d = dir();
    const events = range(1, 20).map(tagged);
    writeFileSync(join(d, 'segment-00000000000000000000.log'), legacySegment(0, events));
    const { log } = openLog(d);
    expect(log.position).toBe(20);
    expect([...log.read()].map((e) => e.event)).toEqual(events);
    log.append([tagged(21)]);
    log.closeSync();
    const { log: again } = openLog(d);
    expect(positions(again)).toEqual(range(1, 21));
    expect(segments(d)).toHaveLength(2);
  });

  it('a damaged version 1 record in the middle is quarantined; the records after it are kept', () => {
    const d = dir();
    writeFileSync(join(d, 'segment-00000000000000000000.log'), legacySegment(0, range(1, 20).map(tagged)));
    flipInside(d, 7);
    const { log } = openLog(d);
    expect(positions(log)).toEqual([...range(1, 6), ...range(8, 20)]);
    expect(existsSync(log.recovery.corruption[0]!.quarantineFile!)).toBe(true);
  });
});
