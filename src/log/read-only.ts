/**
 * Reading a file log's directory without opening it: no lock, no recovery,
 * no writes, so it is safe beside a running process (the offline `explain`
 * command). Damaged bytes are skipped (the intact records around them are
 * read); a record being written at the tail is simply not seen yet.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogEntry } from '../domain/events.js';
import { LogError } from '../errors.js';
import { entriesOf, scanSegment } from './segment-scan.js';

const SEGMENT_RE = /^segment-(\d{20})\.log$/;

/** A file log's directory read without opening it: the position before its oldest segment, and its entries in order. */
export interface LogDirectoryReader {
  readonly first: number;
  readonly entries: Iterable<LogEntry>;
}

/** Read directory `dir`'s segments (the entries after position `after`). @throws LogError when it is not a log directory. */
export function readLogDirectory(dir: string, after = 0): LogDirectoryReader {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new LogError(`cannot read the log directory ${dir}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const bases = names.flatMap((n) => {
    const m = SEGMENT_RE.exec(n);
    return m === null ? [] : [Number(m[1])];
  });
  if (bases.length === 0) throw new LogError(`${dir} holds no log segments (segment-<position>.log): is it a presence log directory?`);
  bases.sort((a, b) => a - b);
  return { first: bases[0] as number, entries: segmentEntries(dir, bases, after) };
}

function* segmentEntries(dir: string, bases: readonly number[], after: number): Iterable<LogEntry> {
  for (const base of bases) {
    const file = join(dir, `segment-${String(base).padStart(20, '0')}.log`);
    const buf = readFileSync(file);
    const scan = scanSegment(buf, base);
    yield* entriesOf(file, buf, scan.frames, after, Number.MAX_SAFE_INTEGER);
  }
}
