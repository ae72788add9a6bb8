/**
 * Snapshot files of the file log: `snapshot-<pos>.snap`, a 24-byte header
 * (magic, version, position, length, CRC-32) then the engine snapshot as JSON.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineSnapshot } from '../domain/snapshot.js';
import { crc32 } from './crc32.js';

const SNAPSHOT_MAGIC = 0x5045534e; // "PESN"
const SNAPSHOT_VERSION = 1;
/** magic u32 BE, version u32 LE, position u64 LE, length u32 LE, crc32 u32 LE. */
const SNAPSHOT_HEADER = 24;

export const SNAPSHOT_RE = /^snapshot-(\d{20})\.snap$/;
export const snapshotName = (position: number) => `snapshot-${String(position).padStart(20, '0')}.snap`;

export interface SnapshotFile {
  readonly position: number;
  readonly file: string;
}

/** Snapshot files in `dir`, newest first. */
export function listSnapshots(dir: string): SnapshotFile[] {
  return readdirSync(dir)
    .map((n) => SNAPSHOT_RE.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ position: Number(m[1]), file: join(dir, m[0]) }))
    .sort((a, b) => b.position - a.position);
}

/** The bytes of a snapshot file: header and JSON payload. */
export function encodeSnapshot(snapshot: EngineSnapshot): [Buffer, Buffer] {
  const payload = Buffer.from(JSON.stringify(snapshot), 'utf8');
  const header = Buffer.alloc(SNAPSHOT_HEADER);
  header.writeUInt32BE(SNAPSHOT_MAGIC, 0);
  header.writeUInt32LE(SNAPSHOT_VERSION, 4);
  header.writeBigUInt64LE(BigInt(snapshot.position), 8);
  header.writeUInt32LE(payload.length, 16);
  header.writeUInt32LE(crc32(payload), 20);
  return [header, payload];
}

/** The snapshot in `file` if it is intact and lies within `[minPosition, maxPosition]`, or why it is unusable. */
export function readSnapshotFile(file: string, position: number, minPosition: number, maxPosition: number): EngineSnapshot | string {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (error) {
    return `unreadable: ${(error as Error).message}`;
  }
  if (buf.length < SNAPSHOT_HEADER || buf.readUInt32BE(0) !== SNAPSHOT_MAGIC) return 'bad header';
  if (buf.readUInt32LE(4) !== SNAPSHOT_VERSION) return `format version ${buf.readUInt32LE(4)}`;
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
  if (position < minPosition) return `position ${position} is before the start of the log (${minPosition})`;
  return s;
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
