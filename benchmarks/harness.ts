/**
 * Shared benchmark plumbing: build an engine (or the naive baseline) for a
 * workload, drive inputs, measure time, heap and percentiles.
 */
import { performance } from 'node:perf_hooks';
import { PresenceEngine, type EngineSnapshot, type SyncHandle } from '../src/engine.js';
import { presenceConfig } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { SimulatedClock } from '../src/testing/simulated-clock.js';
import type { EventLog } from '../src/log/event-log.js';
import type { LogEntry, PresenceEvent } from '../src/domain/events.js';
import type { RoomId, UserId } from '../src/domain/ids.js';
import type { PresenceBatch } from '../streams/sync-notifier.js';
import type { UserPresenceState } from '../src/domain/presence.js';
import { Observable } from 'rxjs';
import { Op, SERVER, type Workload } from './workload.js';
import { NaiveEngine } from './baseline.js';

export const now = (): number => performance.now();

/** Config used by every scenario: presence on, rate limiting out of the way. */
export function benchConfig(extra: Record<string, unknown> = {}) {
  return presenceConfig(SERVER, { rc_presence: { per_user: { per_second: 1e9, burst_count: 1e9 } }, ...extra });
}

/** An event log that keeps nothing (memory scenarios measure the engine, not an in-memory log). */
export class DiscardLog implements EventLog {
  private pos = 0;
  get position(): number {
    return this.pos;
  }
  append(events: readonly PresenceEvent[]): readonly LogEntry[] {
    const out: LogEntry[] = [];
    for (const event of events) out.push({ position: ++this.pos, event });
    return out;
  }
  read(): Iterable<LogEntry> {
    return [];
  }
  subscribe(): Observable<LogEntry> {
    return new Observable<LogEntry>();
  }
}

/** A snapshot holding only room memberships (fast start: joins are not fanned out). */
export function membershipSnapshot(w: Workload): EngineSnapshot {
  const rooms: (readonly [RoomId, readonly UserId[]])[] = [];
  for (let r = 0; r < w.members.length; r++) {
    const m = w.members[r] as number[];
    if (m.length > 0) rooms.push([w.roomIds[r] as RoomId, m.map((u) => w.userIds[u] as UserId)]);
  }
  return { version: 1, position: 0, streamId: 0, users: [], rooms, fullRequests: [] };
}

export type BatchSink = (batch: PresenceBatch, listener: number) => void;

export interface EngineRig {
  readonly engine: PresenceEngine;
  readonly clock: SimulatedClock;
  readonly handles: (SyncHandle | undefined)[];
  /**
   * Per-recipient deliveries the consumer actually read: every subscriber
   * walks each event of every batch it receives (a batch shared by many
   * listeners is read once per listener, as each client would).
   */
  received: number;
  /** Batches (`next` calls) the subscribers received. */
  batches: number;
  sink: BatchSink | null;
}

/** The benchmark's consumer reads into this (so the reads cannot be optimised away). */
export const readSink = { checksum: 0 };

/** The benchmark's consumer: walk each event of a batch and read a field; returns the events read. */
export function readEvents(b: PresenceBatch): number {
  const events = b.events;
  const n = events.length;
  let x = 0;
  for (let k = 0; k < n; k++) x += (events[k] as UserPresenceState).lastActiveTs;
  readSink.checksum += x;
  return n;
}

/**
 * Engine for a workload: memberships from a snapshot, listeners online with an
 * open sync request and a subscribed sync stream.
 */
export function buildEngine(
  w: Workload,
  opts: { log?: EventLog; listen?: boolean; onlineListeners?: boolean; endOfTick?: (closeTurn: () => void) => void } = {},
): EngineRig {
  const clock = new SimulatedClock();
  const engine = new PresenceEngine({
    // with `endOfTick`, the engine commits per tick (`presence.turns: per_tick`) and the caller ends the ticks
    config: opts.endOfTick !== undefined ? benchConfig({ presence: { turns: 'per_tick' } }) : benchConfig(),
    ...(opts.endOfTick !== undefined ? { endOfTick: opts.endOfTick } : {}),
    clock,
    logger: silentLogger,
    snapshot: membershipSnapshot(w),
    ...(opts.log !== undefined ? { log: opts.log } : {}),
  });
  const rig: EngineRig = { engine, clock, handles: new Array<SyncHandle | undefined>(w.userIds.length), received: 0, batches: 0, sink: null };
  if (opts.listen !== false) {
    // Set-up (not measured): open the streams and bring listeners online in batches.
    for (let k = 0; k < w.listeners.length; k += 4096) {
      engine.batch(() => {
        for (const u of w.listeners.slice(k, k + 4096)) {
          const id = w.userIds[u] as string;
          engine.syncStream(id).subscribe((b) => {
            rig.batches++;
            rig.received += readEvents(b);
            if (rig.sink !== null) rig.sink(b, u);
          });
          if (opts.onlineListeners !== false) engine.userSyncing(id); // a long-poll held open: keeps the user online
        }
      });
    }
  }
  return rig;
}

/**
 * Apply inputs [from, to) of the workload; advances the simulated clock every
 * `advanceEvery` inputs (default 256) by the time those inputs span.
 */
export function drive(rig: EngineRig, w: Workload, from: number, to: number, perInput?: (i: number) => void, advanceEvery = 256): void {
  const { engine, clock, handles } = rig;
  const step = 1000 / w.spec.simRate;
  const ids = w.userIds;
  for (let i = from; i < to; i++) {
    if (i % advanceEvery === 0) clock.advance(step * advanceEvery);
    if (perInput !== undefined) perInput(i);
    const u = w.opUsers[i] as number;
    const id = ids[u] as string;
    switch (w.ops[i] as Op) {
      case Op.SetOnline:
        engine.setPresence(id, { presence: 'online' });
        break;
      case Op.SetUnavailable:
        engine.setPresence(id, { presence: 'unavailable' });
        break;
      case Op.SetOffline:
        engine.setPresence(id, { presence: 'offline' });
        break;
      case Op.SyncStart:
        handles[u] = engine.userSyncing(id);
        break;
      case Op.SyncEnd:
        handles[u]?.end();
        handles[u] = undefined;
        break;
      case Op.Activity:
        engine.bumpActive(id);
        break;
    }
  }
}

export interface NaiveRig {
  readonly engine: NaiveEngine;
  received: number;
}

export function buildNaive(w: Workload, listen = true, online = true): NaiveRig {
  const engine = new NaiveEngine();
  for (let r = 0; r < w.members.length; r++) for (const u of w.members[r] as number[]) engine.joinRoom(w.roomIds[r] as string, w.userIds[u] as string);
  const rig: NaiveRig = { engine, received: 0 };
  if (listen) {
    for (const u of w.listeners) {
      const id = w.userIds[u] as string;
      engine.syncStream(id, (events) => {
        rig.received += events.length;
      });
      if (online) engine.userSyncing(id);
    }
  }
  return rig;
}

export function driveNaive(rig: NaiveRig, w: Workload, from: number, to: number): void {
  const { engine } = rig;
  const ids = w.userIds;
  const step = 1000 / w.spec.simRate;
  for (let i = from; i < to; i++) {
    if ((i & 255) === 0) engine.advance(step * 256);
    const id = ids[w.opUsers[i] as number] as string;
    switch (w.ops[i] as Op) {
      case Op.SetOnline:
        engine.setPresence(id, 'online');
        break;
      case Op.SetUnavailable:
        engine.setPresence(id, 'unavailable');
        break;
      case Op.SetOffline:
        engine.setPresence(id, 'offline');
        break;
      case Op.SyncStart:
        engine.userSyncing(id);
        break;
      case Op.SyncEnd:
        engine.syncEnded(id);
        break;
      case Op.Activity:
        engine.bumpActive(id);
        break;
    }
  }
}

/**
 * Rates of record are on wall-clock time (what a user's clock shows); CPU
 * time of this process is measured beside them (`Timing.cpuMs`).
 */
export const timeBase = 'wall' as const;

/** CPU time of this process in ms (all threads, so GC helper threads count too). */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export interface Timing {
  readonly done: number;
  /** Elapsed wall-clock time (the time base of record). */
  readonly ms: number;
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** Run `fn` for inputs in chunks until `count` inputs or `budgetMs` (wall) elapse. */
export function timed(count: number, budgetMs: number, fn: (from: number, to: number) => void, chunk = 2048): Timing {
  const t0 = now();
  const c0 = cpuMs();
  let done = 0;
  while (done < count) {
    const to = Math.min(count, done + chunk);
    fn(done, to);
    done = to;
    if (now() - t0 > budgetMs) break;
  }
  const wallMs = now() - t0;
  const cpu = cpuMs() - c0;
  return { done, ms: Math.max(wallMs, 1e-3), wallMs, cpuMs: Math.max(cpu, 1e-3) };
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error('run with --expose-gc (npm run bench does)');
  for (let i = 0; i < 3; i++) g();
}

export function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i] as number;
}

/** Least-squares fit y = a + b·x. */
export function linearFit(xs: readonly number[], ys: readonly number[]): { a: number; b: number } {
  const n = xs.length;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const x = xs[i] as number;
    const y = ys[i] as number;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const b = (n * sxy - sx * sy) / (n * sxx - sx * sx || 1);
  return { a: (sy - b * sx) / n, b };
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** A wall-clock stopwatch: call the result to read elapsed ms. */
export function stopwatch(): () => number {
  const t0 = now();
  return () => now() - t0;
}

/** Wall-clock and CPU stopwatch. */
export function stopwatch2(): () => { wallMs: number; cpuMs: number } {
  const t0 = now();
  const c0 = cpuMs();
  return () => ({ wallMs: now() - t0, cpuMs: cpuMs() - c0 });
}
