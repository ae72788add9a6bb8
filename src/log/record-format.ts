/**
 * Byte formats of a log segment: its header and its records (frames), in the
 * current format (version 2) and the first one (version 1, read only).
 * See docs/durability.md for the tables.
 *
 * Version 2 starts every frame with a 4-byte sync marker whose first byte
 * (0xFF) never occurs in UTF-8 JSON, so after a damaged frame the next intact
 * one can be found again (a candidate is only accepted if its checksum holds).
 */
import { crc32 } from './crc32.js';

export const SEGMENT_MAGIC = 0x50455347; // "PESG"
/** Version written by this build. */
export const SEGMENT_VERSION = 2;
/** The first format (no sync markers): still read, never written. */
export const LEGACY_SEGMENT_VERSION = 1;
export type SegmentFormat = typeof SEGMENT_VERSION | typeof LEGACY_SEGMENT_VERSION;
/** magic u32 BE, version u32 LE, base u64 LE. */
export const SEGMENT_HEADER = 16;
/** Largest record (one append) accepted: 64 MiB. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Marker of a record of events: 0xFF "PRC". */
const EVENTS_MARKER = 0xff505243;
/** Marker of a gap record: positions lost to corruption, recorded when the segment was repaired. 0xFF "PGP". */
const GAP_MARKER = 0xff504750;
/** v2 frame header: marker u32 BE, body length u32 LE, CRC-32 of the body u32 LE. */
const V2_HEADER = 12;
/** v1 frame header: body length u32 LE, CRC-32 of the body u32 LE. */
const V1_HEADER = 8;
/** Body prefix: first position u64 LE, count u32 LE; then the payload (events as a JSON array, or the gap's note). */
export const BODY_PREFIX = 12;

/** One intact frame found in a segment. */
export interface Frame {
  readonly kind: 'events' | 'gap';
  /** Byte range of the whole frame. */
  readonly start: number;
  readonly end: number;
  /** First position it covers and how many (events, or positions lost for a gap). */
  readonly first: number;
  readonly count: number;
  /** Byte range of the payload (the JSON array of events for `events`). */
  readonly payloadStart: number;
  readonly payloadEnd: number;
}

export function segmentHeader(base: number, version: SegmentFormat = SEGMENT_VERSION): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER);
  header.writeUInt32BE(SEGMENT_MAGIC, 0);
  header.writeUInt32LE(version, 4);
  header.writeBigUInt64LE(BigInt(base), 8);
  return header;
}

/** The format of a segment whose header is intact, or why the header is not. */
export function readSegmentHeader(buf: Buffer, base: number): SegmentFormat | string {
  if (buf.length < SEGMENT_HEADER) return `header cut short (${buf.length} bytes)`;
  if (buf.readUInt32BE(0) !== SEGMENT_MAGIC) return 'bad header magic';
  const version = buf.readUInt32LE(4);
  if (version !== SEGMENT_VERSION && version !== LEGACY_SEGMENT_VERSION) return `unknown format version ${version}`;
  const inHeader = Number(buf.readBigUInt64LE(8));
  if (inHeader !== base) return `header says it starts after position ${inHeader}, the file name says ${base}`;
  return version;
}

/** A version 2 frame of `count` events (`json`: their JSON array), written with one `write`. */
export function encodeEvents(first: number, count: number, json: string, payload = Buffer.byteLength(json, 'utf8')): Buffer {
  const frame = Buffer.allocUnsafe(V2_HEADER + BODY_PREFIX + payload);
  frame.writeUInt32BE(EVENTS_MARKER, 0);
  frame.writeUInt32LE(BODY_PREFIX + payload, 4);
  frame.writeBigUInt64LE(BigInt(first), V2_HEADER);
  frame.writeUInt32LE(count, V2_HEADER + 8);
  frame.write(json, V2_HEADER + BODY_PREFIX, 'utf8');
  frame.writeUInt32LE(crc32(frame, V2_HEADER), 8);
  return frame;
}

/** Size of the frame {@link encodeEvents} builds for a payload of `payloadBytes`. */
export const eventsFrameBytes = (payloadBytes: number) => V2_HEADER + BODY_PREFIX + payloadBytes;

/** A version 2 frame that copies an intact frame's payload (used when a damaged segment is rewritten). */
export function reencode(buf: Buffer, f: Frame): Buffer {
  const payload = buf.subarray(f.payloadStart, f.payloadEnd);
  return frameOf(f.kind === 'gap' ? GAP_MARKER : EVENTS_MARKER, f.first, f.count, payload);
}

/** A gap frame: positions `first … first+count-1` were lost; `note` says where the damaged bytes went. */
export function encodeGap(first: number, count: number, note: string): Buffer {
  return frameOf(GAP_MARKER, first, count, Buffer.from(JSON.stringify({ lost: note }), 'utf8'));
}

function frameOf(marker: number, first: number, count: number, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(V2_HEADER + BODY_PREFIX + payload.length);
  frame.writeUInt32BE(marker, 0);
  frame.writeUInt32LE(BODY_PREFIX + payload.length, 4);
  frame.writeBigUInt64LE(BigInt(first), V2_HEADER);
  frame.writeUInt32LE(count, V2_HEADER + 8);
  payload.copy(frame, V2_HEADER + BODY_PREFIX);
  frame.writeUInt32LE(crc32(frame, V2_HEADER), 8);
  return frame;
}

/** The intact frame at `off` (ending by `limit`), or why there is none. */
export function frameAt(buf: Buffer, off: number, limit: number, format: SegmentFormat): Frame | string {
  const headerBytes = format === SEGMENT_VERSION ? V2_HEADER : V1_HEADER;
  if (limit - off < headerBytes) return `incomplete record header (${limit - off} bytes)`;
  let kind: Frame['kind'] = 'events';
  let h = off;
  if (format === SEGMENT_VERSION) {
    const marker = buf.readUInt32BE(off);
    if (marker === GAP_MARKER) kind = 'gap';
    else if (marker !== EVENTS_MARKER) return 'no record marker';
    h = off + 4;
  }
  const len = buf.readUInt32LE(h);
  if (len < BODY_PREFIX + (kind === 'events' ? 2 : 0) || len > MAX_RECORD_BYTES) return `impossible record length ${len}`;
  const start = off + headerBytes;
  if (start + len > limit) return `record of ${len} bytes runs past the end of the file`;
  if (crc32(buf, start, start + len) !== buf.readUInt32LE(h + 4)) return 'checksum mismatch';
  const count = buf.readUInt32LE(start + 8);
  if (count === 0) return 'empty record';
  const first = Number(buf.readBigUInt64LE(start));
  return { kind, start: off, end: start + len, first, count, payloadStart: start + BODY_PREFIX, payloadEnd: start + len };
}

/**
 * The first intact frame starting after `from` whose first position is at
 * least `minFirst`: where reading resumes after damage.
 */
export function nextFrame(buf: Buffer, from: number, limit: number, format: SegmentFormat, minFirst: number): Frame | undefined {
  if (format === SEGMENT_VERSION) {
    for (let i = buf.indexOf(0xff, from); i >= 0 && i + V2_HEADER <= limit; i = buf.indexOf(0xff, i + 1)) {
      const f = frameAt(buf, i, limit, format);
      if (typeof f !== 'string' && f.first >= minFirst) return f;
    }
    return undefined;
  }
  // Version 1 has no marker: test every offset, cheaply first (the payload is a JSON array).
  for (let i = from; i + V1_HEADER + BODY_PREFIX + 2 <= limit; i++) {
    const len = buf.readUInt32LE(i);
    const end = i + V1_HEADER + len;
    if (len < BODY_PREFIX + 2 || end > limit) continue;
    if (buf[i + V1_HEADER + BODY_PREFIX] !== 0x5b || buf[end - 1] !== 0x5d) continue;
    const f = frameAt(buf, i, limit, format);
    if (typeof f !== 'string' && f.first >= minFirst) return f;
  }
  return undefined;
}
