/**
 * Recovery of a log's segments on open. Every segment is scanned:
 *
 *  - a damaged end of the *last* segment with no intact record after it is a
 *    torn tail (an append interrupted by a crash, never acknowledged): cut;
 *  - any other damage is corruption: with `onCorruption: 'quarantine'` the
 *    damaged bytes are copied to `<segment>.<start>-<end>.quarantine`, the
 *    segment is rewritten atomically with every intact record plus a gap
 *    record for the positions lost, and each place is reported; with
 *    `'refuse'` nothing is changed and a {@link LogCorruptionError} is thrown.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LogCorruptionError, LogError, type LogCorruption } from '../errors.js';
import type { Logger } from '../logger.js';
import { fsyncDir, writeFileDurably } from './log-files.js';
import { encodeGap, reencode, segmentHeader, SEGMENT_HEADER, SEGMENT_VERSION, type SegmentFormat } from './record-format.js';
import { scanSegment, type DamagedRange, type SegmentScan } from './segment-scan.js';

/** What recovery does with corruption (config `log.on_corruption`). */
export type OnCorruption = 'quarantine' | 'refuse';

export interface Segment {
  /** Position before the segment's first entry. */
  readonly base: number;
  readonly file: string;
}

export interface SegmentsRecovered {
  /** Position of the last entry (or gap) in the log. */
  readonly position: number;
  /** Bytes of the last segment once repaired. */
  readonly activeSize: number;
  /** Format of the last segment once repaired (version 1 is never appended to). */
  readonly activeFormat: SegmentFormat;
  readonly truncatedBytes: number;
  readonly truncatedReason: string | undefined;
  readonly corruption: readonly LogCorruption[];
}

interface Damaged {
  readonly seg: Segment;
  readonly buf: Buffer;
  readonly scan: SegmentScan;
  readonly ranges: readonly DamagedRange[];
}

/** Read a whole segment file. */
export function readSegmentFile(seg: Segment): Buffer {
  try {
    return readFileSync(seg.file);
  } catch (error) {
    throw new LogError(`cannot read segment ${seg.file}: ${(error as Error).message}`, { cause: error });
  }
}

const quarantineName = (seg: Segment, r: DamagedRange) => `${seg.file}.${r.start}-${r.end}.quarantine`;

/** Scan and repair `segments` (sorted by base, at least one). */
export function recoverSegments(segments: readonly Segment[], onCorruption: OnCorruption, logger: Logger): SegmentsRecovered {
  const damaged: Damaged[] = [];
  let last: { buf: Buffer; scan: SegmentScan } | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as Segment;
    const buf = readSegmentFile(seg);
    let scan: SegmentScan;
    try {
      scan = scanSegment(buf, seg.base);
    } catch (error) {
      throw error instanceof LogError ? new LogError(`${seg.file}: ${error.message}`) : error;
    }
    const ranges: DamagedRange[] = [];
    if (scan.headerDamage !== undefined) {
      ranges.push({ start: 0, end: Math.min(SEGMENT_HEADER, buf.length), firstLost: seg.base + 1, lostEntries: 0, reason: `segment header: ${scan.headerDamage}` });
    }
    ranges.push(...scan.damaged);
    const next = segments[i + 1];
    if (next === undefined) {
      last = { buf, scan };
    } else {
      // An earlier segment was complete (and fsynced) before the next one was created: its end is not a torn tail.
      const end = scan.next - 1;
      if (end > next.base) {
        throw new LogError(`${seg.file} holds entries up to position ${end} but ${next.file} starts after ${next.base}: the segments overlap; restore the directory from a backup`);
      }
      if (scan.tail !== undefined || end < next.base) {
        ranges.push({
          start: scan.tail?.start ?? buf.length,
          end: buf.length,
          firstLost: scan.next,
          lostEntries: next.base - end,
          reason: scan.tail?.reason ?? `the segment ends at position ${end}, the next one starts after ${next.base}`,
        });
      }
    }
    if (ranges.length > 0 || (next === undefined && scan.format !== SEGMENT_VERSION && scan.frames.length === 0)) {
      damaged.push({ seg, buf, scan, ranges });
    }
  }
  const lastSeg = segments[segments.length - 1] as Segment;
  const { buf: lastBuf, scan: lastScan } = last as { buf: Buffer; scan: SegmentScan };
  const corruption = damaged.flatMap(({ seg, ranges }) =>
    ranges.map((r): LogCorruption => ({
      file: seg.file,
      startOffset: r.start,
      endOffset: r.end,
      reason: r.reason,
      lostEntries: r.lostEntries,
      firstLost: r.lostEntries > 0 ? r.firstLost : undefined,
      lastLost: r.lostEntries > 0 ? r.firstLost + r.lostEntries - 1 : undefined,
      quarantineFile: onCorruption === 'quarantine' && r.end > r.start ? quarantineName(seg, r) : undefined,
    })),
  );
  if (corruption.length > 0 && onCorruption === 'refuse') {
    throw new LogCorruptionError(
      `the log in ${dirname(lastSeg.file)} is corrupt in ${corruption.length} place(s): ` +
        corruption.map(describe).join('; ') +
        `. Nothing was changed. Restore the directory from a backup, or set log.on_corruption: quarantine ` +
        `to keep every intact record and move the damaged bytes aside`,
      corruption,
    );
  }

  let activeSize = lastBuf.length;
  let activeFormat = lastScan.format;
  for (const d of damaged) {
    const size = rewrite(d);
    if (d.seg === lastSeg) {
      activeSize = size;
      activeFormat = SEGMENT_VERSION;
    }
  }
  if (damaged.length > 0) fsyncDir(dirname(lastSeg.file));
  for (const c of corruption) {
    logger.error(`log: corrupt data in ${describe(c)}; ${c.quarantineFile !== undefined ? `the damaged bytes were moved to ${c.quarantineFile}; ` : ''}every intact record was kept`, {
      ...c,
    });
  }

  const position = lastScan.next - 1;
  let truncatedBytes = 0;
  let truncatedReason: string | undefined;
  if (lastScan.tail !== undefined) {
    truncatedBytes = lastBuf.length - lastScan.tail.start;
    truncatedReason = lastScan.tail.reason;
    logger.warn(
      `log: torn record at the end of ${lastSeg.file} (byte ${lastScan.tail.start}: ${truncatedReason}); truncated ${truncatedBytes} bytes, ` +
        `the log ends at position ${position}`,
      { file: lastSeg.file, offset: lastScan.tail.start, bytes: truncatedBytes, reason: truncatedReason },
    );
    if (!damaged.some((d) => d.seg === lastSeg)) {
      const fd = openSync(lastSeg.file, 'r+');
      try {
        ftruncateSync(fd, lastScan.tail.start);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      activeSize = lastScan.tail.start;
    }
  }
  return { position, activeSize, activeFormat, truncatedBytes, truncatedReason, corruption };
}

/**
 * Move a damaged segment's bad bytes to quarantine files, then replace it
 * atomically by its intact records (in the current format) and a gap record
 * per run of lost positions. Returns the new size.
 */
function rewrite({ seg, buf, scan, ranges }: Damaged): number {
  for (const r of ranges) if (r.end > r.start) writeFileDurably(quarantineName(seg, r), [buf.subarray(r.start, r.end)]);
  // The quarantined bytes are durable before the segment that held them is replaced.
  fsyncDir(dirname(seg.file));
  const parts: { first: number; bytes: Buffer }[] = scan.frames.map((f) => ({
    first: f.first,
    bytes: scan.format === SEGMENT_VERSION ? buf.subarray(f.start, f.end) : reencode(buf, f),
  }));
  for (const r of ranges) {
    if (r.lostEntries > 0) parts.push({ first: r.firstLost, bytes: encodeGap(r.firstLost, r.lostEntries, r.end > r.start ? quarantineName(seg, r) : r.reason) });
  }
  parts.sort((a, b) => a.first - b.first);
  const content = [segmentHeader(seg.base), ...parts.map((p) => p.bytes)];
  writeFileDurably(seg.file, content);
  return content.reduce((n, b) => n + b.length, 0);
}

function describe(c: LogCorruption): string {
  const lost = c.lostEntries === 0 ? 'no entry lost' : `entries ${c.firstLost}..${c.lastLost} (${c.lostEntries}) unreadable`;
  return `${c.file} bytes ${c.startOffset}..${c.endOffset} (${c.reason}): ${lost}`;
}
