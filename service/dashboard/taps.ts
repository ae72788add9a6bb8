/**
 * Measurements the engine has no hook for, taken around its public methods on
 * the running instances: the engine's input methods (input→emission latency,
 * rate-limit refusals) and the event log's `append` / `writeSnapshot`.
 * A tap replaces a method on one object with a wrapper that calls the
 * original; `untap` puts the original back. Nothing in src/ changes.
 */
import { FileEventLog, RateLimitedError, type EventLog, type PresenceEngine, type SnapshotInfo, type SyncHandle } from '../../src/index.js';
import { probesOf } from '../ops/probes.js';
import { DurationHistogram } from './histogram.js';

/**
 * The file log under the engine's log: the service hands the engine a
 * `TimedEventLog` around it (service/ops/timed-log.ts), and snapshots are
 * written to the file log itself.
 */
export function fileLogOf(engine: PresenceEngine): FileEventLog | undefined {
  return engine.log instanceof FileEventLog ? engine.log : probesOf(engine).fileLog;
}

type Fn = (...args: never[]) => unknown;

/** Replace `target[key]` with `make(original)`; returns the undo. */
function tap<T extends object, K extends keyof T>(target: T, key: K, make: (original: T[K]) => T[K]): () => void {
  const own = Object.prototype.hasOwnProperty.call(target, key);
  const previous = target[key];
  const bound = (typeof previous === 'function' ? (previous as Fn).bind(target) : previous) as T[K];
  target[key] = make(bound);
  return () => {
    if (own) target[key] = previous;
    else delete target[key];
  };
}

/** `fn` with `around` wrapped about each call. */
function around<F extends Fn>(fn: F, wrap: <R>(call: () => R) => R): F {
  const call = fn as unknown as (...args: Parameters<F>) => ReturnType<F>;
  return ((...args: Parameters<F>) => wrap(() => call(...args))) as unknown as F;
}

/** Engine methods through which inputs enter (the service and router modules call these). */
const INPUT_METHODS = [
  'setPresence',
  'bumpActive',
  'setMembership',
  'joinRoom',
  'leaveRoom',
  'receiveFederationEdu',
  'setPresenceForUsers',
  'sendLocalOnlinePresenceTo',
  'apply',
  'applyAll',
  // a batch is one input from its start: the inputs in it wait for its commit
  'batch',
] as const satisfies readonly (keyof PresenceEngine)[];

/**
 * Input→emission latency: the time from a call into one of the engine's input
 * methods to the end of the commit of the turn that holds it (log append,
 * fan-out to the sync streams, federation queueing: the engine does all of it
 * synchronously after `committed$` fires). Per-input turns commit inside the
 * call: the sample is taken when it returns. Per-tick turns commit at the end
 * of the event-loop tick: the sample is taken in a microtask queued when
 * `committed$` fires, which runs once the commit is done. Inputs whose turn commits nothing (no log
 * entry) are not sampled: a sweep at the end of the tick drops them.
 */
export class EngineTaps {
  readonly latency = new DurationHistogram();
  readonly append = new DurationHistogram();
  /** Durations of the file log's fsyncs (batched or per append), from the service's probes. */
  readonly fsync = new DurationHistogram();
  /** Calls into input methods (nested calls count once). */
  inputs = 0;
  rateLimited = 0;
  appendedEntries = 0;
  readonly snapshots: { at: number; position: number; bytes: number; buildMs: number; writeMs: number }[] = [];
  private readonly pending: number[] = [];
  private depth = 0;
  private sampleQueued = false;
  private commitInCall = false;
  private sweepQueued = false;
  private lastBuildMs = 0;
  private readonly undo: (() => void)[] = [];

  constructor(private readonly engine: PresenceEngine) {}

  install(): void {
    const e = this.engine;
    const wrap = <R>(call: () => R): R => this.aroundInput(call);
    for (const key of INPUT_METHODS) this.undo.push(tap(e, key, (original) => around(original, wrap)));
    this.undo.push(
      tap(e, 'userSyncing', (original) =>
        around(original, <R>(call: () => R): R => {
          const handle = this.aroundInput(call) as unknown as SyncHandle;
          if (!handle.affectsPresence) return handle as unknown as R;
          // ending a sync is an input too
          const end = () => this.aroundInput(() => handle.end());
          return { affectsPresence: true, end } satisfies SyncHandle as unknown as R;
        }),
      ),
    );
    this.undo.push(
      tap(e, 'snapshot', (original) =>
        around(original, <R>(call: () => R): R => {
          const t0 = performance.now();
          const r = call();
          this.lastBuildMs = performance.now() - t0;
          return r;
        }),
      ),
    );
    this.tapLog(e.log, fileLogOf(e));
    const probes = probesOf(e);
    const onFsync = (ms: number): void => this.fsync.record(ms);
    probes.fsyncListeners.add(onFsync);
    this.undo.push(() => probes.fsyncListeners.delete(onFsync));
    const sub = e.committed$.subscribe(() => this.onCommit());
    this.undo.push(() => sub.unsubscribe());
  }

  uninstall(): void {
    for (const u of this.undo.splice(0).reverse()) u();
  }

  private tapLog(log: EventLog, fileLog: FileEventLog | undefined): void {
    this.undo.push(
      tap(log, 'append', (original) =>
        around(original, <R>(call: () => R): R => {
          const t0 = performance.now();
          const r = call();
          this.append.record(performance.now() - t0);
          this.appendedEntries += (r as unknown as readonly unknown[]).length;
          return r;
        }),
      ),
    );
    if (fileLog !== undefined) {
      this.undo.push(
        tap(fileLog, 'writeSnapshot', (original) =>
          around(original, <R>(call: () => R): R => {
            const r = call();
            const info = r as unknown as SnapshotInfo;
            this.snapshots.push({ at: Date.now(), position: info.position, bytes: info.bytes, buildMs: this.lastBuildMs, writeMs: info.ms });
            if (this.snapshots.length > 10) this.snapshots.shift();
            this.lastBuildMs = 0;
            return r;
          }),
        ),
      );
    }
  }

  private aroundInput<R>(call: () => R): R {
    if (this.depth > 0) return call();
    this.depth++;
    const mark = this.pending.length;
    this.pending.push(performance.now());
    this.inputs++;
    try {
      return call();
    } catch (error) {
      if (error instanceof RateLimitedError) this.rateLimited++;
      if (this.pending.length > mark) this.pending.length = mark; // refused before it reached a turn
      throw error;
    } finally {
      this.depth--;
      // per-input turns: the commit (fan-out included) ran inside this call
      if (this.commitInCall) {
        this.commitInCall = false;
        this.sample();
      }
      if (!this.sweepQueued && this.pending.length > 0) {
        this.sweepQueued = true;
        setImmediate(this.sweep);
      }
    }
  }

  private onCommit(): void {
    if (this.depth > 0) {
      this.commitInCall = true;
      return;
    }
    if (this.sampleQueued || this.pending.length === 0) return;
    this.sampleQueued = true;
    queueMicrotask(this.sample);
  }

  private readonly sample = (): void => {
    this.sampleQueued = false;
    const now = performance.now();
    for (const t0 of this.pending) this.latency.record(now - t0);
    this.pending.length = 0;
  };

  /** After the tick's commit: what is still pending committed nothing. */
  private readonly sweep = (): void => {
    this.sweepQueued = false;
    if (!this.sampleQueued) this.pending.length = 0;
  };
}
