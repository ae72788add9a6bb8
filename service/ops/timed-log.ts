/**
 * An {@link EventLog} decorator for the service: times each append (for the
 * `presence_log_append_duration_seconds` histogram) and reports replay
 * progress while the engine reads the log at start-up, so a long replay is
 * not silent. Everything else is forwarded to the wrapped log.
 */
import type { Observable } from 'rxjs';
import type { EventLog, LogEntry, PresenceEvent } from '../../src/index.js';

export interface TimedEventLogOptions {
  /** Called after each append with its duration in ms and the number of entries appended. */
  readonly onAppend: (ms: number, entries: number) => void;
  /** Called every `progressEvery` entries read, and once at the end of each read, with the entries read so far. */
  readonly onReadProgress?: ((read: number, done: boolean) => void) | undefined;
  readonly progressEvery?: number | undefined;
}

export class TimedEventLog implements EventLog {
  constructor(
    /** The decorated log (the health endpoint reads its fsync state). */
    readonly inner: EventLog,
    private readonly options: TimedEventLogOptions,
  ) {}

  get position(): number {
    return this.inner.position;
  }

  append(events: readonly PresenceEvent[]): readonly LogEntry[] {
    const t0 = performance.now();
    const entries = this.inner.append(events);
    this.options.onAppend(performance.now() - t0, entries.length);
    return entries;
  }

  read(after?: number): Iterable<LogEntry> {
    const source = this.inner.read(after);
    const progress = this.options.onReadProgress;
    if (progress === undefined) return source;
    const every = this.options.progressEvery ?? 100_000;
    return { [Symbol.iterator]: () => new ProgressIterator(source[Symbol.iterator](), every, progress) };
  }

  subscribe(): Observable<LogEntry> {
    return this.inner.subscribe();
  }

  async flush(): Promise<void> {
    await this.inner.flush?.();
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}

/** Counts entries as they are read (a class, not a generator: replay reads hundreds of thousands). */
class ProgressIterator implements Iterator<LogEntry> {
  private count = 0;

  constructor(
    private readonly source: Iterator<LogEntry>,
    private readonly every: number,
    private readonly report: (read: number, done: boolean) => void,
  ) {}

  next(): IteratorResult<LogEntry> {
    const r = this.source.next();
    if (r.done === true) {
      if (this.count > 0) this.report(this.count, true);
      return r;
    }
    if (++this.count % this.every === 0) this.report(this.count, false);
    return r;
  }
}
