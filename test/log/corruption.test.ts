/**
 * Corruption property (issue 19): a log is written (several segments, two
 * snapshots), then random bits are flipped, random bytes overwritten and files
 * truncated at random offsets, in segments and in one snapshot. After reopening:
 *
 *  - every acknowledged record whose bytes are still intact is read back, at its
 *    position, unchanged (records lost = 0): only damaged records and a torn
 *    tail may be missing, nothing after a damaged record is lost;
 *  - nothing that was not appended is read;
 *  - the newest intact snapshot is loaded (a damaged one falls back to the
 *    previous one, never to nothing while one is intact);
 *  - the repair is durable (a second open finds nothing to report) and the log
 *    takes appends again.
 *
 * Which records are intact is decided from the bytes, independently of the
 * code under test: each record is found in its segment by its (unique) JSON
 * payload, framed as docs/durability.md says, and compared before and after.
 * Half the cases first rewrite the log in format 1 (no sync markers), as
 * earlier builds wrote it. Cases: CORRUPTION_RUNS, default 40; DEEP=1 (npm run test:deep) runs 300.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../../src/domain/events.js';
import type { UserId } from '../../src/domain/ids.js';
import type { EngineSnapshot } from '../../src/engine.js';
import { LogError } from '../../src/errors.js';
import { FileEventLog } from '../../src/log/file-log.js';
import { MemoryLogger } from '../../src/logger.js';
import { FC_SEED } from '../support/fc.js';
import { tempDir } from './support.js';

const RUNS = Number(process.env.CORRUPTION_RUNS ?? (process.env.DEEP ? 300 : 40));
/** Frame bytes before the JSON payload: marker, length, CRC, first position, count (format 1: no marker). */
const FRAME_PREFIX = 24;
const LEGACY_FRAME_PREFIX = 20;

const event = (n: number, text: string): PresenceEvent => ({
  type: 'user.step',
  userId: `@e${n}:c.test` as UserId,
  at: 1_700_000_000_000 + n,
  streamId: n,
  presence: { state: 'online', lastActiveTs: 1_700_000_000_000 + n, ...(text ? { statusMsg: text } : {}) },
});
const snap = (position: number): EngineSnapshot => ({ version: 1, position, streamId: position, users: [], rooms: [], fullRequests: [] });

interface Written {
  /** Acknowledged records: positions and the JSON the append wrote. */
  readonly records: { first: number; events: PresenceEvent[]; json: string }[];
  readonly position: number;
}

type Damage =
  | { kind: 'flip'; file: number; at: number; bit: number }
  | { kind: 'overwrite'; file: number; at: number; bytes: number[] }
  | { kind: 'truncate'; file: number; at: number };

const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), file: fc.nat(), at: fc.nat({ max: 1_000_000_000 }), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), file: fc.nat(), at: fc.nat({ max: 1_000_000_000 }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 24 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), file: fc.nat(), at: fc.nat({ max: 1_000_000_000 }) }) },
);

const caseArb = fc.record({
  appends: fc.array(fc.record({ events: fc.integer({ min: 1, max: 3 }), text: fc.string({ maxLength: 40 }) }), { minLength: 20, maxLength: 90 }),
  /** Where the two snapshots are taken (fractions of the appends). */
  snapshotsAt: fc.tuple(fc.double({ min: 0.1, max: 0.5, noNaN: true }), fc.double({ min: 0.5, max: 0.95, noNaN: true })),
  segmentBytes: fc.integer({ min: 600, max: 4000 }),
  /** Rewrite the segments in format 1 (as earlier builds wrote them) before the damage. */
  legacy: fc.boolean(),
  segmentDamage: fc.array(damageArb, { minLength: 0, maxLength: 4 }),
  /** Damage to one snapshot (the newest or the older), or none. */
  snapshotDamage: fc.option(fc.record({ which: fc.integer({ min: 0, max: 1 }), damage: fc.array(damageArb, { minLength: 1, maxLength: 2 }) })),
});

function write(dir: string, c: CaseValue): Written {
  const log = FileEventLog.open(dir, { fsync: 'never', segmentBytes: c.segmentBytes, logger: new MemoryLogger() });
  const records: Written['records'] = [];
  const snapAt = c.snapshotsAt.map((f) => Math.floor(f * c.appends.length));
  let n = 0;
  c.appends.forEach((a, i) => {
    const events = Array.from({ length: a.events }, () => event(++n, a.text));
    const [first] = log.append(events);
    records.push({ first: (first as { position: number }).position, events, json: JSON.stringify(events) });
    if (snapAt.includes(i)) log.writeSnapshot(snap(log.position));
  });
  const position = log.position;
  log.closeSync();
  return { records, position };
}
type CaseValue = {
  appends: { events: number; text: string }[];
  snapshotsAt: [number, number];
  segmentBytes: number;
  legacy: boolean;
  segmentDamage: Damage[];
  snapshotDamage: { which: number; damage: Damage[] } | null;
};

/** Format 1 of a freshly written segment: version 1 in the header, each record without its 4-byte marker. */
function toLegacy(file: string): void {
  const buf = readFileSync(file);
  const parts = [Buffer.from(buf.subarray(0, 16))];
  parts[0]!.writeUInt32LE(1, 4);
  for (let off = 16; off < buf.length; ) {
    const end = off + 12 + buf.readUInt32LE(off + 4);
    parts.push(buf.subarray(off + 4, end));
    off = end;
  }
  writeFileSync(file, Buffer.concat(parts));
}

function apply(file: string, d: Damage): void {
  const buf = readFileSync(file);
  if (buf.length === 0) return;
  const at = d.at % buf.length;
  if (d.kind === 'flip') buf[at] = (buf[at] as number) ^ (1 << d.bit);
  else if (d.kind === 'overwrite') Buffer.from(d.bytes).copy(buf, at);
  writeFileSync(file, d.kind === 'truncate' ? buf.subarray(0, at) : buf);
}

const totals = { cases: 0, legacyCases: 0, damageOps: 0, intactRecords: 0, damagedRecords: 0, recordsLost: 0, quarantineFiles: 0, tornTails: 0, snapshotFallbacks: 0 };
afterAll(() => {
  console.info(`corruption test: ${JSON.stringify(totals)}`);
});

describe('corruption: every intact acknowledged record survives', () => {
  it(`flipped bits, overwritten bytes and truncations in segments and snapshots (${RUNS} cases)`, () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { dir, cleanup } = tempDir('presence-corrupt-');
        try {
          check(dir, c as CaseValue);
        } finally {
          cleanup();
        }
      }),
      { seed: FC_SEED, numRuns: RUNS, endOnFailure: true },
    );
    expect(totals.recordsLost).toBe(0);
  }, 600_000);
});

function check(dir: string, c: CaseValue): void {
  const { records } = write(dir, c);
  const segNames = readdirSync(dir).filter((n) => /^segment-\d{20}\.log$/.test(n)).sort();
  if (c.legacy) for (const n of segNames) toLegacy(join(dir, n));
  if (c.legacy) totals.legacyCases++;
  const prefix = c.legacy ? LEGACY_FRAME_PREFIX : FRAME_PREFIX;
  const snapNames = readdirSync(dir).filter((n) => /\.snap$/.test(n)).sort();
  const before = new Map<string, Buffer>();
  for (const n of [...segNames, ...snapNames]) before.set(n, readFileSync(join(dir, n)));

  // Where each record is: found by its unique payload in the segment files that remain after compaction.
  const located: { record: Written['records'][number]; seg: string; start: number; end: number }[] = [];
  for (const record of records) {
    for (const seg of segNames) {
      const at = (before.get(seg) as Buffer).indexOf(record.json);
      if (at < 0) continue;
      located.push({ record, seg, start: at - prefix, end: at + Buffer.byteLength(record.json) });
      break;
    }
  }

  for (const d of c.segmentDamage) apply(join(dir, segNames[d.file % segNames.length] as string), d);
  if (c.snapshotDamage !== null && snapNames.length > 0) {
    const target = snapNames[snapNames.length - 1 - (c.snapshotDamage.which % snapNames.length)] as string;
    for (const d of c.snapshotDamage.damage) apply(join(dir, target), d);
  }
  totals.cases++;
  totals.damageOps += c.segmentDamage.length + (c.snapshotDamage?.damage.length ?? 0);

  const after = new Map<string, Buffer>();
  for (const n of [...segNames, ...snapNames]) after.set(n, readFileSync(join(dir, n)));
  const intact = located.filter(({ seg, start, end }) => {
    const a = after.get(seg) as Buffer;
    return a.length >= end && a.subarray(start, end).equals((before.get(seg) as Buffer).subarray(start, end));
  });
  totals.intactRecords += intact.length;
  totals.damagedRecords += located.length - intact.length;

  const logger = new MemoryLogger();
  const log = FileEventLog.open(dir, { logger, fsync: 'never', segmentBytes: c.segmentBytes });
  try {
    const read = new Map<number, PresenceEvent>();
    for (const e of log.read(log.firstPosition)) read.set(e.position, e.event);
    let lost = 0;
    for (const { record } of intact) {
      record.events.forEach((ev, k) => {
        if (JSON.stringify(read.get(record.first + k)) !== JSON.stringify(ev)) lost++;
      });
    }
    totals.recordsLost += lost;
    expect(lost, `intact records lost; recovery: ${JSON.stringify(log.recovery)}`).toBe(0);
    // Nothing that was not appended is read.
    const appended = new Map<number, PresenceEvent>();
    for (const r of records) r.events.forEach((ev, k) => appended.set(r.first + k, ev));
    for (const [p, ev] of read) expect(ev, `entry ${p}`).toEqual(appended.get(p));
    totals.quarantineFiles += log.recovery.corruption.filter((x) => x.quarantineFile !== undefined).length;
    if (log.recovery.truncatedBytes > 0) totals.tornTails++;

    // The newest intact snapshot within the log is loaded.
    const usable = snapNames
      .map((n) => ({ n, position: Number(/(\d{20})/.exec(n)?.[1]) }))
      .filter(({ n, position }) => (after.get(n) as Buffer).equals(before.get(n) as Buffer) && position <= log.position && position >= log.firstPosition)
      .sort((a, b) => b.position - a.position);
    const expected = usable[0];
    if (expected !== undefined) {
      expect(log.loadSnapshot()?.position).toBe(expected.position);
      if (expected.n !== snapNames[snapNames.length - 1]) totals.snapshotFallbacks++;
    } else if (log.firstPosition === 0) {
      expect(log.loadSnapshot()).toBeUndefined();
    } else {
      expect(() => log.loadSnapshot()).toThrow(LogError);
    }

    // The repair is durable and the log takes appends.
    const position = log.position;
    log.closeSync();
    const again = FileEventLog.open(dir, { logger: new MemoryLogger(), fsync: 'never', segmentBytes: c.segmentBytes });
    try {
      expect(again.recovery.corruption).toEqual([]);
      expect(again.recovery.truncatedBytes).toBe(0);
      expect(again.position).toBe(position);
      const reread = new Map<number, PresenceEvent>();
      for (const e of again.read(again.firstPosition)) reread.set(e.position, e.event);
      expect(reread).toEqual(read);
      const extra = event(999_999, 'after recovery');
      expect(again.append([extra])[0]?.position).toBe(position + 1);
      expect([...again.read(position)].map((e) => e.event)).toEqual([extra]);
    } finally {
      again.closeSync();
    }
  } finally {
    log.closeSync();
  }
}
