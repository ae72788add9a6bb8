/**
 * The event log: the source of truth. Entries are appended in order and get
 * consecutive positions starting at 1. Implementations: {@link InMemoryEventLog}
 * (default); durable and distributed ones plug in behind the same interface.
 */
import { Observable } from 'rxjs';
import { LogError } from '../errors.js';
import type { LogEntry, PresenceEvent } from '../domain/events.js';

export interface EventLog {
  /** Append events; returns their entries. Appends are synchronous and ordered. */
  append(events: readonly PresenceEvent[]): readonly LogEntry[];
  /** Entries with `position > after`, in order. */
  read(after?: number): Iterable<LogEntry>;
  /** Entries appended from now on. */
  subscribe(): Observable<LogEntry>;
  /** Position of the last entry (0 when empty). */
  readonly position: number;
  /** Make appended entries durable (no-op in memory). */
  flush?(): Promise<void>;
  close?(): Promise<void>;
}

export class InMemoryEventLog implements EventLog {
  private readonly entries: LogEntry[] = [];
  private readonly listeners = new Set<(e: LogEntry) => void>();
  private readonly base: number;

  /** @param base position before the first entry (e.g. the position of a snapshot). */
  constructor(base = 0) {
    this.base = base;
  }

  get position(): number {
    return this.base + this.entries.length;
  }

  append(events: readonly PresenceEvent[]): readonly LogEntry[] {
    const out: LogEntry[] = [];
    for (const event of events) {
      const entry: LogEntry = { position: this.position + 1, event };
      this.entries.push(entry);
      out.push(entry);
    }
    if (this.listeners.size > 0) {
      for (const e of out) for (const l of [...this.listeners]) l(e);
    }
    return out;
  }

  *read(after = 0): Iterable<LogEntry> {
    if (after < this.base) throw new LogError(`this log starts after position ${this.base}; cannot read from ${after}`);
    for (let i = after - this.base; i < this.entries.length; i++) yield this.entries[i] as LogEntry;
  }

  subscribe(): Observable<LogEntry> {
    return new Observable<LogEntry>((subscriber) => {
      const l = (e: LogEntry) => subscriber.next(e);
      this.listeners.add(l);
      return () => this.listeners.delete(l);
    });
  }
}
