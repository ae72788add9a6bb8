/**
 * Scanning one segment: every intact frame in order, and every damaged byte
 * range between them, resynchronising after damage on the next intact frame.
 * Pure (a buffer in, a description or entries out); what to do about the damage is
 * decided by segment-recovery.ts (on open) and file-log.ts (on read).
 */
import type { LogEntry, PresenceEvent } from '../domain/events.js';
import { LogError } from '../errors.js';
import {
  frameAt,
  nextFrame,
  readSegmentHeader,
  SEGMENT_HEADER,
  SEGMENT_VERSION,
  LEGACY_SEGMENT_VERSION,
  type Frame,
  type SegmentFormat,
} from './record-format.js';

/** Bytes between intact frames that are not an intact frame, or positions missing between two intact frames. */
export interface DamagedRange {
  /** Byte range in the segment (empty when only positions are missing). */
  readonly start: number;
  readonly end: number;
  /** Positions `firstLost … firstLost+lostEntries-1` are not in any intact frame. */
  readonly firstLost: number;
  readonly lostEntries: number;
  readonly reason: string;
}

export interface SegmentScan {
  readonly format: SegmentFormat;
  /** Why the 16-byte header is unusable (it is then rebuilt from the file name), if it is. */
  readonly headerDamage: string | undefined;
  /** Intact frames, in order, with consecutive positions once gaps are counted. */
  readonly frames: readonly Frame[];
  /** Damage followed by an intact frame (in the middle). */
  readonly damaged: readonly DamagedRange[];
  /** Damage that runs to `limit` with no intact frame after it. */
  readonly tail: { readonly start: number; readonly reason: string } | undefined;
  /** Byte offset just after the last intact frame. */
  readonly end: number;
  /** Position the next frame must start at. */
  readonly next: number;
}

/**
 * Scan `buf[0, limit)`, a segment whose file name says it starts after `base`.
 * A header that cannot be trusted is reported and its format guessed from
 * the frames that follow (version 2 markers first).
 */
export function scanSegment(buf: Buffer, base: number, limit = buf.length): SegmentScan {
  const header = readSegmentHeader(buf, base);
  let format: SegmentFormat;
  let headerDamage: string | undefined;
  if (typeof header === 'string') {
    headerDamage = header;
    const from = Math.min(SEGMENT_HEADER, limit);
    const v2 = nextFrame(buf, from, limit, SEGMENT_VERSION, base + 1) !== undefined;
    const v1 = !v2 && nextFrame(buf, from, limit, LEGACY_SEGMENT_VERSION, base + 1) !== undefined;
    format = v1 ? LEGACY_SEGMENT_VERSION : SEGMENT_VERSION;
    // An intact magic with an unknown version and no record this build can read: a newer format, not damage.
    if (!v1 && !v2 && header.startsWith('unknown format version')) {
      throw new LogError(`segment has ${header}; this build reads versions ${LEGACY_SEGMENT_VERSION} and ${SEGMENT_VERSION}: open the log with the build that wrote it`);
    }
  } else {
    format = header;
  }
  const frames: Frame[] = [];
  const damaged: DamagedRange[] = [];
  let off = Math.min(SEGMENT_HEADER, limit);
  let next = base + 1;
  let tail: SegmentScan['tail'];
  while (off < limit) {
    const at = frameAt(buf, off, limit, format);
    if (typeof at !== 'string' && at.first === next) {
      frames.push(at);
      next += at.count;
      off = at.end;
      continue;
    }
    const reason = typeof at === 'string' ? at : `record starts at position ${at.first}, expected ${next}`;
    // An intact frame further on whose positions are ahead: what lies between is damaged.
    const resume = typeof at !== 'string' && at.first > next ? at : nextFrame(buf, off + 1, limit, format, next);
    if (resume === undefined) {
      tail = { start: off, reason };
      break;
    }
    damaged.push({ start: off, end: resume.start, firstLost: next, lostEntries: resume.first - next, reason });
    frames.push(resume);
    next = resume.first + resume.count;
    off = resume.end;
  }
  return { format, headerDamage, frames, damaged, tail, end: off, next };
}

/** The entries of `frames` (from {@link scanSegment} of `buf`) with positions in `(after, end]`; gaps have none. */
export function entriesOf(file: string, buf: Buffer, frames: readonly Frame[], after: number, end: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (const f of frames) {
    const p = f.first;
    if (f.kind === 'gap' || p + f.count - 1 <= after || p > end) continue;
    let events: unknown;
    try {
      events = JSON.parse(buf.toString('utf8', f.payloadStart, f.payloadEnd));
    } catch {
      events = undefined;
    }
    if (!Array.isArray(events) || events.length !== f.count) {
      throw new LogError(`segment ${file}: the record at position ${p} has a valid checksum but not ${f.count} events`);
    }
    for (let k = 0; k < f.count; k++) if (p + k > after && p + k <= end) out.push({ position: p + k, event: events[k] as PresenceEvent });
  }
  return out;
}
