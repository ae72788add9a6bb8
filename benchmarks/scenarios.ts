/**
 * Benchmark scenarios. Each runs in its own child process (see run.ts) so heap
 * measurements start clean; each returns metrics (with targets where issue 6
 * sets one) and optional series for the chart.
 */
import type { PresenceBatch } from '../streams/sync-notifier.js';
import { PresenceEngine, type EngineSnapshot } from '../src/engine.js';
import type { RoomId, UserId } from '../src/domain/ids.js';
import type { DevicePresence, UserRecord } from '../src/domain/presence.js';
import { ALL_USERS } from '../src/router/presence-router.js';
import { InMemoryEventLog } from '../src/log/event-log.js';
import { silentLogger } from '../src/logger.js';
import { SimulatedClock } from '../src/testing/simulated-clock.js';
import { ManualTicks } from '../src/testing/index.js';
import { seededRandom } from '../src/testing/random.js';
import { generateWorkload, roomStats, userId, roomId, SERVER, type Workload, type WorkloadSpec } from './workload.js';
import {
  benchConfig,
  buildEngine,
  buildNaive,
  drive,
  driveNaive,
  heapUsed,
  linearFit,
  median,
  membershipSnapshot,
  now,
  cpuMs,
  timeBase,
  timed,
  DiscardLog,
  stopwatch,
  type EngineRig,
} from './harness.js';

export type Better = 'higher' | 'lower';

export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  readonly better: Better;
  readonly baseline?: number;
  readonly target?: number;
  /** Individual repetitions (the value is their median unless noted). */
  readonly reps?: readonly number[];
  /** The same rate computed on this process's CPU time (shown beside the wall-clock value of record). */
  readonly cpu?: number;
  readonly note?: string;
}

export interface Series {
  readonly name: string;
  readonly x: readonly number[];
  readonly y: readonly number[];
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly title: string;
  readonly params: Record<string, unknown>;
  readonly metrics: Metric[];
  readonly series?: Record<string, Series[]>;
  readonly seconds: number;
}

export interface Ctx {
  readonly quick: boolean;
  readonly progress: (msg: string) => void;
  readonly arg?: string;
}

const BATCH = 256;

/** The headline workload of issue 6: U=10k, R=1k, k=5, 20% listening. */
function steadySpec(quick: boolean, changes?: number): WorkloadSpec {
  return { seed: 42, users: 10_000, rooms: 1_000, roomsPerUser: 5, zipf: 1, listening: 0.2, changes: changes ?? (quick ? 60_000 : 300_000), simRate: 1_000 };
}

/**
 * Run `reps` timed slices of the workload on a rig. Per slice, on wall-clock
 * time: inputs/s, notified changes/s (`updates`), per-recipient deliveries the
 * consumer read (`read`) and deliveries as the engine counts them
 * (`deliveries`: a batch shared by a room's listeners counts once per
 * listener whether or not anyone reads it); `cpu*` are the same on CPU time.
 */
function ingestReps(rig: EngineRig, w: Workload, start: number, reps: number, perRep: number, budgetMs: number, batched: boolean) {
  const inputs: number[] = [];
  const updates: number[] = [];
  const deliveries: number[] = [];
  const read: number[] = [];
  const cpuInputs: number[] = [];
  const cpuUpdates: number[] = [];
  const cpuRead: number[] = [];
  let changes = 0;
  let done = 0;
  let at = start;
  for (let r = 0; r < reps; r++) {
    const s0 = { ...rig.engine.stats };
    const r0 = rig.received;
    const run = timed(perRep, budgetMs, (a, b) => {
      if (batched) rig.engine.batch(() => drive(rig, w, at + a, at + b));
      else drive(rig, w, at + a, at + b);
    }, batched ? BATCH : 32);
    at += run.done;
    const s1 = rig.engine.stats;
    const dU = s1.updates - s0.updates;
    const dR = rig.received - r0;
    changes += dU;
    done += run.done;
    inputs.push((run.done / run.ms) * 1000);
    updates.push((dU / run.ms) * 1000);
    deliveries.push(((s1.deliveries - s0.deliveries) / run.ms) * 1000);
    read.push((dR / run.ms) * 1000);
    cpuInputs.push((run.done / run.cpuMs) * 1000);
    cpuUpdates.push((dU / run.cpuMs) * 1000);
    cpuRead.push((dR / run.cpuMs) * 1000);
  }
  return { inputs, updates, deliveries, read, cpuInputs, cpuUpdates, cpuRead, at, changesPerInput: changes / Math.max(1, done) };
}

type Reps = ReturnType<typeof ingestReps>;

/** A rate metric: the median of wall-clock slices, with the CPU-time median beside it. */
function rate(key: string, label: string, wall: readonly number[], cpu: readonly number[] | undefined, unit: string, extra: Partial<Metric> = {}): Metric {
  return { key, label, value: median(wall), reps: wall, ...(cpu !== undefined ? { cpu: median(cpu) } : {}), unit, better: 'higher', ...extra };
}

/** The usual rows of an ingest run: notified changes/s, inputs/s, consumer-read and engine-counted deliveries/s. */
function ingestRows(prefix: string, tag: string, r: Reps, extra: { changes?: Partial<Metric>; inputs?: Partial<Metric>; read?: Partial<Metric> } = {}): Metric[] {
  return [
    rate(`${prefix}.changes`, `${tag}: notified changes`, r.updates, r.cpuUpdates, 'changes/s', extra.changes),
    rate(`${prefix}.inputs`, `${tag}: inputs`, r.inputs, r.cpuInputs, 'inputs/s', extra.inputs),
    rate(`${prefix}.read`, `${tag}: per-recipient deliveries read by the consumer`, r.read, r.cpuRead, 'deliveries/s', extra.read),
    rate(`${prefix}.counted`, `${tag}: deliveries as the engine counts them (shared batch counted per listener, unread)`, r.deliveries, undefined, 'deliveries/s'),
  ];
}

function naiveReps(w: Workload, listen: boolean, reps: number, perRep: number, budgetMs: number, online = true) {
  const rig = buildNaive(w, listen, online);
  driveNaive(rig, w, 0, Math.min(50, w.ops.length));
  let at = 50;
  const inputs: number[] = [];
  const deliveries: number[] = [];
  for (let r = 0; r < reps; r++) {
    const d0 = rig.engine.deliveries;
    const run = timed(perRep, budgetMs, (a, b) => driveNaive(rig, w, at + a, at + b), 16);
    at += run.done;
    inputs.push((run.done / run.ms) * 1000);
    deliveries.push(((rig.engine.deliveries - d0) / run.ms) * 1000);
  }
  return { inputs, deliveries };
}

// ───────────────────────────── ingest ─────────────────────────────

export async function ingest(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const spec = steadySpec(ctx.quick);
  const w = generateWorkload(spec);
  const rs = roomStats(w);
  const reps = 3;
  const budget = ctx.quick ? 300 : 1_500;
  // First pass: the first inputs of a fresh process, one per turn, timed as they
  // come (no warm-up). Then the steady state: fixed slices after them.
  const first = ctx.quick ? 5_000 : 20_000;
  const per = Math.floor((w.ops.length - first) / (4 * reps));

  ctx.progress('first pass, 20% open sync streams, one input per turn');
  let rig = buildEngine(w);
  const cold = ingestReps(rig, w, 0, 1, first, 1e9, false);
  ctx.progress('steady state, one input per turn');
  const un = ingestReps(rig, w, first, reps, per, budget, false);
  ctx.progress('steady state, batched');
  const ba = ingestReps(rig, w, un.at, reps, per, budget, true);
  rig.engine.stop();

  ctx.progress('engine without sync streams');
  rig = buildEngine(w, { listen: false });
  rig.engine.batch(() => drive(rig, w, 0, first));
  const unQ = ingestReps(rig, w, first, reps, per, budget, false);
  const baQ = ingestReps(rig, w, unQ.at, reps, per, budget, true);
  rig.engine.stop();

  ctx.progress('naive baseline');
  const nb = naiveReps(w, true, reps, per, budget);
  const nbQ = naiveReps(w, false, reps, per, budget);
  const base = (v: number[]) => ({ baseline: median(v) });

  const metrics: Metric[] = [
    ...ingestRows('ingest.turn', 'steady state, 1 input/turn (closed loop)', un, { inputs: base(nb.inputs), read: base(nb.deliveries) }),
    ...ingestRows('ingest.first', 'first pass of a fresh process, 1 input/turn', cold),
    ...ingestRows('ingest.batch', `steady state, batch(${BATCH})`, ba, { inputs: base(nb.inputs) }),
    rate('ingest.nostreams.turn.changes', 'no open streams, 1 input/turn: notified changes', unQ.updates, unQ.cpuUpdates, 'changes/s'),
    rate('ingest.nostreams.turn.inputs', 'no open streams, 1 input/turn: inputs', unQ.inputs, unQ.cpuInputs, 'inputs/s', base(nbQ.inputs)),
    rate('ingest.nostreams.batch.inputs', `no open streams, batch(${BATCH}): inputs`, baQ.inputs, baQ.cpuInputs, 'inputs/s', base(nbQ.inputs)),
    { key: 'ingest.changesPerInput', label: 'notified changes per input (steady state)', value: un.changesPerInput, unit: 'changes', better: 'higher' },
  ];
  return {
    scenario: 'ingest',
    title: 'Ingest, closed loop (U=10k, R=1k, k=5, Zipf s=1, 20% listening)',
    params: { ...spec, largestRoom: rs.largest, medianRoom: rs.median, memberships: w.memberships, batch: BATCH, firstPass: first },
    metrics,
  };
}

/**
 * Wait until `t` (performance.now() ms) without spinning on the clock: sleep
 * (Atomics.wait) until 0.15 ms remain, then spin with a clock read every
 * couple of microseconds. Each clock read allocates; a tight spin on the clock
 * caused hundreds of minor GCs per second, which then showed up as latency.
 */
const sleeper = new Int32Array(new SharedArrayBuffer(4));
function waitUntil(t: number): void {
  for (;;) {
    const left = t - now();
    if (left <= 0) return;
    if (left > 0.15) {
      Atomics.wait(sleeper, 0, 0, left - 0.1);
      continue;
    }
    let x = 0;
    for (let k = 0; k < 2_000; k++) x += k;
    if (x < 0) return; // keeps the loop from being optimised away
  }
}

/** The p-quantile of values where values[i] counts weights[i] times. */
function weightedPercentile(values: Float64Array, weights: Float64Array, p: number): number {
  const order = Array.from(values.keys()).sort((a, b) => (values[a] as number) - (values[b] as number));
  let total = 0;
  for (const w of weights) total += w;
  if (total === 0) return NaN;
  const want = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (const k of order) {
    seen += weights[k] as number;
    if (seen >= want) return values[k] as number;
  }
  return values[order[order.length - 1] as number] as number;
}

// ───────────────────────────── latency ─────────────────────────────

/** Issue 22's ingest target: notified changes/s offered open loop, held at p99 input → emission ≤ 2 ms. */
export const TARGET_CHANGES = 150_000;
const TARGET_P99_MS = 2;
/** An open-loop run has fallen behind once an input starts this late (ms): it stops there. */
const LAG_CAP_MS = 100;

export async function latency(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  // `latency` commits after each input (`presence.turns: per_input`, the
  // default); `latency:per-tick` runs the same traffic with per-tick turns;
  // `:small-young-gen` variants run in a process started with a 2 MB young
  // generation (benchmarks/run.ts passes the flag).
  const perTick = ctx.arg === 'per-tick' || ctx.arg === 'per-tick+small-young-gen';
  const tuned = ctx.arg === 'small-young-gen' || ctx.arg === 'per-tick+small-young-gen';
  const spec = steadySpec(ctx.quick, ctx.quick ? 300_000 : 800_000);
  const w = generateWorkload(spec);
  const ticks = new ManualTicks();
  const rig = perTick ? buildEngine(w, { endOfTick: ticks.schedule }) : buildEngine(w);
  // Fixed warm-up to the workload's steady state (each user has had a few inputs).
  const warm = ctx.quick ? 15_000 : 50_000;
  rig.engine.batch(() => drive(rig, w, 0, warm));
  // Latency per emission without a clock read per emission (a read allocates):
  // each input's emissions are counted and all given the time the input's turn
  // ended, an upper bound for every one of them. The subscribers still walk
  // every event they receive (buildEngine's consumer).
  let emitted = 0;
  rig.sink = () => {
    emitted++;
  };
  ctx.progress('closed-loop maximum (1 input per turn)');
  const one = perTick
    ? (a: number, b: number) => {
        for (let k = a; k < b; k++) {
          drive(rig, w, k, k + 1, undefined, 1);
          ticks.end();
        }
      }
    : (a: number, b: number) => drive(rig, w, a, b, undefined, 1);
  const u0 = rig.engine.stats.updates;
  const maxRun = timed(20_000, ctx.quick ? 500 : 2_000, (a, b) => one(warm + a, warm + b), 32);
  const max = (maxRun.done / maxRun.wallMs) * 1000;
  const changesPerInput = (rig.engine.stats.updates - u0) / Math.max(1, maxRun.done);
  let at = warm + maxRun.done;

  /**
   * Open-loop offer at `rate` inputs/s by wall clock: input i is due at
   * t0 + i/rate and latency counts from that intended time. Per input: each
   * input is its own turn, started when due (or when the previous one ends).
   * Per tick: the inputs already due arrive in the same event-loop tick, each
   * as its own call, and the tick then ends; every emission of the tick is
   * charged the latency of the tick's oldest input. The run stops early, as
   * fallen behind, once an input starts more than LAG_CAP_MS late.
   */
  const paced = (rate: number, ms: number) => {
    const gap = 1000 / rate;
    const capacity = Math.ceil((rate * ms) / 1000) + 16;
    const latencies = new Float64Array(capacity);
    const weights = new Float64Array(capacity);
    const s0 = rig.engine.stats.updates;
    const t0 = now();
    let i = 0;
    let turns = 0;
    let n = 0;
    let behind = false;
    const end = w.ops.length;
    while (at < end && i < capacity) {
      const intended = t0 + i * gap;
      if (intended - t0 > ms) break;
      waitUntil(intended);
      if (now() - intended > LAG_CAP_MS) {
        behind = true;
        break;
      }
      emitted = 0;
      let m = 1;
      if (perTick) {
        const arrived = now();
        while (i + m < capacity && at + m < end && t0 + (i + m) * gap <= arrived && (i + m) * gap <= ms) m++;
        drive(rig, w, at, at + m, undefined, 1);
        ticks.end();
      } else {
        drive(rig, w, at, at + 1, undefined, 1);
      }
      latencies[turns] = now() - intended;
      weights[turns] = emitted;
      n += emitted;
      at += m;
      i += m;
      turns++;
    }
    const elapsed = now() - t0;
    const q = (p: number) => weightedPercentile(latencies.subarray(0, turns), weights.subarray(0, turns), p);
    const changes = rig.engine.stats.updates - s0;
    // Achieved rates over the run's wall time (below the offer once the engine falls behind).
    return { inputs: i, turns, emissions: n, q, behind, achieved: (i / elapsed) * 1000, achievedChanges: (changes / elapsed) * 1000, ran: elapsed };
  };

  const durationMs = ctx.quick ? 500 : 2_000;
  ctx.progress(`paced at ${(max / 2).toFixed(0)} inputs/s (50% of the closed-loop maximum)`);
  const half = paced(max / 2, durationMs);
  const offeredInputs = TARGET_CHANGES / Math.max(1e-6, changesPerInput);
  ctx.progress(`offered ${TARGET_CHANGES} changes/s (${offeredInputs.toFixed(0)} inputs/s)`);
  const target = paced(offeredInputs, ctx.quick ? 500 : 1_000);
  // The highest offered rate (a ladder of multiples of the closed-loop maximum)
  // the engine held: kept up and p99 ≤ 2 ms. Says how far the target is.
  const ladder = perTick ? [3, 2, 1.5, 1.2, 1, 0.8, 0.6, 0.4, 0.25] : [1, 0.8, 0.6, 0.4, 0.25, 0.1];
  let held = 0;
  let heldP99 = NaN;
  for (const f of ladder) {
    ctx.progress(`ladder: ${(f * max).toFixed(0)} inputs/s offered`);
    const r = paced(f * max, ctx.quick ? 300 : 700);
    if (!r.behind && r.achieved >= 0.97 * f * max && r.q(0.99) <= TARGET_P99_MS) {
      held = r.achievedChanges;
      heldP99 = r.q(0.99);
      break;
    }
  }
  rig.sink = null;
  rig.engine.stop();
  const k = `latency${perTick ? '.tick' : ''}${tuned ? '.young2' : ''}`;
  const mode = `${perTick ? 'per-tick turns' : '1 input/turn'}${tuned ? ', --max-semi-space-size=2' : ''}`;
  const metrics: Metric[] = [
    { key: `${k}.target.changes`, label: `${mode}: notified changes achieved with ${TARGET_CHANGES / 1000}k/s offered open loop`, value: target.achievedChanges, unit: 'changes/s', better: 'higher', target: TARGET_CHANGES, note: target.behind ? 'fell behind' : 'kept up' },
    { key: `${k}.target.p99`, label: `${mode}: p99 input → emission with ${TARGET_CHANGES / 1000}k changes/s offered`, value: target.q(0.99), unit: 'ms', better: 'lower', target: TARGET_P99_MS },
    { key: `${k}.target.inputs`, label: `${mode}: inputs achieved with ${offeredInputs.toFixed(0)} inputs/s offered`, value: target.achieved, unit: 'inputs/s', better: 'higher' },
    { key: `${k}.held.changes`, label: `${mode}: highest offered rate held (kept up, p99 ≤ 2 ms)`, value: held, unit: 'changes/s', better: 'higher', note: held > 0 ? `p99 ${heldP99.toFixed(2)} ms` : `none held, down to ${((ladder[ladder.length - 1] as number) * 100).toFixed(0)} % of the closed-loop maximum` },
    { key: `${k}.max.inputs`, label: `${mode}: closed-loop maximum, inputs`, value: max, unit: 'inputs/s', better: 'higher', cpu: (maxRun.done / maxRun.cpuMs) * 1000 },
    { key: `${k}.half.p50`, label: `${mode}: p50 input → emission at 50% of the closed-loop maximum`, value: half.q(0.5), unit: 'ms', better: 'lower' },
    { key: `${k}.half.p99`, label: `${mode}: p99 input → emission at 50% of the closed-loop maximum`, value: half.q(0.99), unit: 'ms', better: 'lower' },
    { key: `${k}.half.p999`, label: `${mode}: p99.9 input → emission at 50% of the closed-loop maximum`, value: half.q(0.999), unit: 'ms', better: 'lower' },
  ];
  return {
    scenario: `latency${perTick ? '-per-tick' : ''}${tuned ? '-small-young-gen' : ''}`,
    title: `Open-loop latency and ingest at the offered rate (${mode})`,
    params: {
      ...spec,
      warmUp: warm,
      maxIngest: max,
      changesPerInput,
      offeredInputs,
      targetRun: { inputs: target.inputs, turns: target.turns, behind: target.behind, ms: target.ran },
      halfRun: { rate: max / 2, inputs: half.inputs, turns: half.turns, behind: half.behind },
      ...(perTick ? { turnsMode: 'per_tick' } : {}),
      ...(tuned ? { v8Flags: '--max-semi-space-size=2' } : {}),
    },
    metrics,
    series: { latency: [{ name: 'engine', x: [50, 90, 99, 99.9, 99.99], y: [half.q(0.5), half.q(0.9), half.q(0.99), half.q(0.999), half.q(0.9999)] }] },
  };
}

// ───────────────────────────── large room ─────────────────────────────

export async function largeRoom(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const members = 50_000;
  const spec: WorkloadSpec = { seed: 7, users: members, rooms: 1, roomsPerUser: 1, zipf: 0, listening: 0.2, changes: ctx.quick ? 40_000 : 150_000, simRate: 2_000 };
  const w = generateWorkload(spec);
  ctx.progress('building a 50k-member room with 10k open streams');
  const rig = buildEngine(w, { onlineListeners: false });
  const reps = 3;
  const budget = ctx.quick ? 300 : 1_500;
  const first = ctx.quick ? 200 : 500;
  ctx.progress('first pass, 1 input per turn');
  const cold = ingestReps(rig, w, 0, 1, first, 1e9, false);
  ctx.progress('1 input per turn');
  const un = ingestReps(rig, w, first, reps, ctx.quick ? 2_000 : 4_000, budget, false);
  ctx.progress('batched');
  const ba = ingestReps(rig, w, un.at, reps, Math.floor((w.ops.length - un.at) / reps), budget, true);
  rig.engine.stop();
  ctx.progress('naive baseline');
  const nb = naiveReps(w, true, ctx.quick ? 1 : reps, 1_000, budget, false);
  return {
    scenario: 'large-room',
    title: 'One 50k-member room, 20% of members listening (each subscriber walks every event it receives)',
    params: { ...spec, listeners: w.listeners.length, batch: BATCH, firstPass: first },
    metrics: [
      ...ingestRows('large.turn', '1 input/turn', un, { read: { baseline: median(nb.deliveries), target: 20_000_000 }, inputs: { baseline: median(nb.inputs) } }),
      ...ingestRows('large.first', 'first pass of a fresh process, 1 input/turn', cold),
      ...ingestRows('large.batch', `batch(${BATCH})`, ba),
    ],
  };
}

// ───────────────────────────── small server ─────────────────────────────

/** 1,000 users, 100 rooms, 200 listening: notified changes/s, first pass in a fresh process and steady state. */
export async function smallServer(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const spec: WorkloadSpec = { seed: 13, users: 1_000, rooms: 100, roomsPerUser: 5, zipf: 1, listening: 0.2, changes: ctx.quick ? 80_000 : 300_000, simRate: 1_000 };
  const w = generateWorkload(spec);
  const reps = 3;
  const budget = ctx.quick ? 300 : 1_500;
  const first = 20_000;
  const rig = buildEngine(w);
  ctx.progress('first pass (fresh process, 200 open streams), 1 input per turn');
  const cold = ingestReps(rig, w, 0, 1, first, 1e9, false);
  // Fixed warm-up after the first pass, then the steady state.
  const warm = ctx.quick ? 10_000 : 40_000;
  drive(rig, w, first, first + warm);
  ctx.progress('steady state, 1 input per turn');
  const per = Math.floor((w.ops.length - first - warm) / (2 * reps));
  const un = ingestReps(rig, w, first + warm, reps, per, budget, false);
  ctx.progress('steady state, batched');
  const ba = ingestReps(rig, w, un.at, reps, per, budget, true);
  rig.engine.stop();
  return {
    scenario: 'small-server',
    title: '1,000 users, 100 rooms, 200 listening (Zipf s=1, k=5): first pass and steady state',
    params: { ...spec, listeners: w.listeners.length, largestRoom: roomStats(w).largest, firstPass: first, warmUp: warm },
    metrics: [
      ...ingestRows('small.turn', 'steady state, 1 input/turn', un, { changes: { target: 200_000 } }),
      ...ingestRows('small.first', 'first pass of a fresh process, 1 input/turn', cold, { changes: { target: 60_000 } }),
      ...ingestRows('small.batch', `steady state, batch(${BATCH})`, ba),
    ],
  };
}

// ───────────────────────────── storm ─────────────────────────────

export async function storm(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const users = ctx.quick ? 20_000 : 100_000;
  const spec: WorkloadSpec = { seed: 9, users, rooms: users / 10, roomsPerUser: 5, zipf: 1, listening: 0.1, changes: 0, simRate: 1_000 };
  const w = generateWorkload(spec);
  const out: Metric[] = [];
  for (const batched of [true, false]) {
    ctx.progress(`storm: ${users} users come online (${batched ? 'batched' : '1 per turn'})`);
    const rig = buildEngine(w, { listen: false });
    // listeners subscribe but are offline until the storm
    for (const u of w.listeners) rig.engine.syncStream(w.userIds[u] as string).subscribe(() => {});
    const s0 = { ...rig.engine.stats };
    const budget = ctx.quick ? 800 : 4_000;
    const run = timed(users, budget, (a, b) => {
      const f = () => {
        for (let u = a; u < b; u++) rig.engine.userSyncing(w.userIds[u] as string);
      };
      if (batched) rig.engine.batch(f);
      else f();
    }, batched ? 1_000 : 32);
    const s1 = rig.engine.stats;
    const tag = batched ? 'batch(1000)' : '1 input/turn';
    out.push(
      { key: `storm.${batched ? 'batch' : 'turn'}.inputs`, label: `storm ${tag}: users online`, value: (run.done / run.ms) * 1000, unit: 'users/s', better: 'higher', note: `${run.done} of ${users} users in ${run.ms.toFixed(0)} ms` },
      { key: `storm.${batched ? 'batch' : 'turn'}.deliveries`, label: `storm ${tag}: deliveries`, value: ((s1.deliveries - s0.deliveries) / run.ms) * 1000, unit: 'deliveries/s', better: 'higher' },
    );
    if (batched) out.push({ key: 'storm.batch.total', label: `storm ${tag}: ${run.done === users ? 'all' : `first ${run.done} of`} ${users} users online (${budget / 1000} s wall budget)`, value: run.ms, unit: 'ms', better: 'lower' });
    rig.engine.stop();
  }
  ctx.progress('naive baseline');
  const nrig = buildNaive(w, false);
  for (const u of w.listeners) nrig.engine.syncStream(w.userIds[u] as string, () => {});
  const d0 = nrig.engine.deliveries;
  const nrun = timed(users, ctx.quick ? 800 : 4_000, (a, b) => {
    for (let u = a; u < b; u++) nrig.engine.userSyncing(w.userIds[u] as string);
  }, 16);
  const nIn = (nrun.done / nrun.ms) * 1000;
  for (const m of out) {
    if (m.unit === 'users/s') Object.assign(m, { baseline: nIn });
    if (m.unit === 'deliveries/s') Object.assign(m, { baseline: ((nrig.engine.deliveries - d0) / nrun.ms) * 1000 });
  }
  return { scenario: 'storm', title: `Presence storm: ${users} users come online at once (10% listening)`, params: { ...spec, largestRoom: roomStats(w).largest }, metrics: out };
}

// ───────────────────────────── router with ALL_USERS ─────────────────────────────

export async function allUsersRouter(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const spec: WorkloadSpec = { ...steadySpec(ctx.quick, ctx.quick ? 40_000 : 150_000), listening: 0 };
  const w = generateWorkload(spec);
  const admins = Array.from({ length: 100 }, (_, i) => `@admin${i}:${SERVER}`);
  const adminSet = new Set(admins);
  const rig = buildEngine(w, { listen: false });
  rig.engine.registerPresenceRouter('bench-all-users', {
    getInterestedUsers: (u) => (adminSet.has(u) ? ALL_USERS : new Set<string>()),
    getUsersForStates: (states) => {
      const set = new Set(states);
      return new Map(admins.map((a) => [a, set] as const));
    },
  });
  for (const a of admins) rig.engine.syncStream(a).subscribe(() => {});
  rig.engine.batch(() => drive(rig, w, 0, 2_000));
  const reps = ctx.quick ? 2 : 3;
  const budget = ctx.quick ? 400 : 1_500;
  const per = Math.floor((w.ops.length - 2_000) / (2 * reps));
  ctx.progress('100 ALL_USERS listeners, 1 input/turn');
  const un = ingestReps(rig, w, 2_000, reps, per, budget, false);
  ctx.progress('batched');
  const ba = ingestReps(rig, w, un.at, reps, per, budget, true);
  rig.engine.stop();
  return {
    scenario: 'all-users-router',
    title: 'Presence router: 100 listeners with ALL_USERS interest (U=10k)',
    params: { ...spec, admins: admins.length },
    metrics: [
      { key: 'router.inputs.turn', label: 'inputs, 1 input/turn', value: median(un.inputs), reps: un.inputs, unit: 'inputs/s', better: 'higher' },
      { key: 'router.inputs.batch', label: `inputs, batch(${BATCH})`, value: median(ba.inputs), reps: ba.inputs, unit: 'inputs/s', better: 'higher' },
      { key: 'router.deliveries.turn', label: 'deliveries, 1 input/turn', value: median(un.deliveries), reps: un.deliveries, unit: 'deliveries/s', better: 'higher' },
      { key: 'router.deliveries.batch', label: `deliveries, batch(${BATCH})`, value: median(ba.deliveries), reps: ba.deliveries, unit: 'deliveries/s', better: 'higher' },
    ],
  };
}

// ───────────────────────────── federation ─────────────────────────────

export async function federation(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const servers = 1_000;
  const spec = { ...steadySpec(ctx.quick, ctx.quick ? 40_000 : 150_000), listening: 0 };
  const w = generateWorkload(spec);
  // Each room also has remote members: 1 + (size / 4) users on Zipf-chosen remote servers.
  const snap = membershipSnapshot(w);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let remoteMembers = 0;
  const rooms = snap.rooms.map(([id, members]) => {
    const extra: UserId[] = [];
    const n = 1 + Math.floor(members.length / 4);
    for (let j = 0; j < n; j++) {
      const s = Math.floor(servers * Math.pow(rand(), 2)); // skewed: low-numbered servers are in more rooms
      extra.push(`@r${j}:s${s}.remote` as UserId);
    }
    remoteMembers += n;
    return [id, [...members, ...extra]] as const;
  });
  const clock = new SimulatedClock();
  const engine = new PresenceEngine({ config: benchConfig(), clock, logger: silentLogger, snapshot: { ...snap, rooms } });
  const rig: EngineRig = { engine, clock, handles: [], received: 0, batches: 0, sink: null };
  let transmissions = 0;
  let stateSends = 0;
  engine.federationOutbound$.subscribe((t) => {
    transmissions++;
    for (const e of t.edus) stateSends += e.content.push.length;
  });
  engine.batch(() => drive(rig, w, 0, 2_000));
  const reps = ctx.quick ? 2 : 3;
  const budget = ctx.quick ? 400 : 1_500;
  const per = Math.floor((w.ops.length - 2_000) / (2 * reps));
  const res: Metric[] = [];
  let at = 2_000;
  for (const batched of [false, true]) {
    ctx.progress(`federation fan-out to ${servers} servers (${batched ? 'batched' : '1 input/turn'})`);
    const ins: number[] = [];
    const sends: number[] = [];
    const tx: number[] = [];
    for (let r = 0; r < reps; r++) {
      const s0 = stateSends;
      const t0 = transmissions;
      const run = timed(per, budget, (a, b) => {
        if (batched) engine.batch(() => drive(rig, w, at + a, at + b));
        else drive(rig, w, at + a, at + b);
      }, batched ? BATCH : 32);
      at += run.done;
      ins.push((run.done / run.ms) * 1000);
      sends.push(((stateSends - s0) / run.ms) * 1000);
      tx.push(((transmissions - t0) / run.ms) * 1000);
    }
    const tag = batched ? `batch(${BATCH})` : '1 input/turn';
    res.push(
      { key: `fed.inputs.${batched ? 'batch' : 'turn'}`, label: `inputs, ${tag}`, value: median(ins), reps: ins, unit: 'inputs/s', better: 'higher' },
      { key: `fed.sends.${batched ? 'batch' : 'turn'}`, label: `(state, server) sends, ${tag}`, value: median(sends), reps: sends, unit: 'sends/s', better: 'higher' },
      { key: `fed.tx.${batched ? 'batch' : 'turn'}`, label: `transmissions, ${tag}`, value: median(tx), reps: tx, unit: 'transmissions/s', better: 'higher' },
    );
  }
  engine.stop();
  return { scenario: 'federation', title: `Federation fan-out: rooms shared with ${servers} remote servers (U=10k local)`, params: { ...spec, servers, remoteMembers }, metrics: res };
}

// ───────────────────────────── replay and snapshot start-up ─────────────────────────────

export async function replay(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const spec = { ...steadySpec(ctx.quick, ctx.quick ? 50_000 : 500_000), listening: 0 };
  const w = generateWorkload(spec);
  const log = new InMemoryEventLog();
  const rig = buildEngine(w, { log, listen: false });
  ctx.progress(`recording a log of ${spec.changes} inputs`);
  for (let a = 0; a < w.ops.length; a += 4096) rig.engine.batch(() => drive(rig, w, a, Math.min(w.ops.length, a + 4096)));
  const entries = log.position;
  const snapshot = rig.engine.snapshot();
  rig.engine.stop();
  const base = membershipSnapshot(w);
  const rates: number[] = [];
  const times: number[] = [];
  const reps = 3;
  // The first replay in the process runs while the JIT is still compiling the
  // fold (and, on CPU time, pays for the compiler threads): it is reported on
  // its own as the cold start, and the rate is the median of the reps after it.
  let coldRate = NaN;
  for (let r = 0; r <= reps; r++) {
    ctx.progress(`replaying ${entries} log entries (${r === 0 ? 'cold' : `${r}/${reps}`})`);
    const sw = stopwatch();
    const e = new PresenceEngine({ config: benchConfig(), clock: new SimulatedClock(), logger: silentLogger, snapshot: base, log });
    const ms = sw();
    e.stop();
    if (r === 0) {
      coldRate = (entries / ms) * 1000;
      continue;
    }
    rates.push((entries / ms) * 1000);
    times.push(ms);
  }
  const startups: number[] = [];
  for (let r = 0; r < reps; r++) {
    const sw = stopwatch();
    const e = new PresenceEngine({ config: benchConfig(), clock: new SimulatedClock(), logger: silentLogger, snapshot });
    startups.push(sw());
    e.stop();
  }
  // membership-only start (the cost of rebuilding room indexes)
  const roomsOnlyReps: number[] = [];
  for (let r = 0; r < reps; r++) {
    const sw = stopwatch();
    new PresenceEngine({ config: benchConfig(), clock: new SimulatedClock(), logger: silentLogger, snapshot: base }).stop();
    roomsOnlyReps.push(sw());
  }
  const roomsOnly = median(roomsOnlyReps);
  // The replay rate above includes loading the memberships snapshot the log starts from; this one does not.
  const foldMs = Math.max(1e-3, median(times) - roomsOnly);
  return {
    scenario: 'replay',
    title: 'Replay of a long log and start-up from a snapshot (U=10k, 50k memberships)',
    params: { ...spec, logEntries: entries, snapshotUsers: snapshot.users.length, memberships: w.memberships },
    metrics: [
      { key: 'replay.rate', label: `replay ${entries} log entries`, value: median(rates), reps: rates, unit: 'events/s', better: 'higher', target: 1_500_000 },
      { key: 'replay.cold', label: `replay ${entries} log entries, first in the process (cold JIT)`, value: coldRate, unit: 'events/s', better: 'higher' },
      { key: 'replay.fold', label: `replay ${entries} log entries, without loading the memberships snapshot`, value: (entries / foldMs) * 1000, unit: 'events/s', better: 'higher', note: 'median replay time minus the memberships-only start-up' },
      { key: 'replay.snapshot.startup', label: `start-up from snapshot (${snapshot.users.length} users, ${w.memberships} memberships)`, value: median(startups), reps: startups, unit: 'ms', better: 'lower' },
      { key: 'replay.rooms.startup', label: 'start-up, memberships only', value: roomsOnly, reps: roomsOnlyReps, unit: 'ms', better: 'lower' },
    ],
  };
}

// ───────────────────────────── getNewEvents ─────────────────────────────

export async function getNewEvents(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  // Default U=10k (the steady workload); `get-new-events:1000000` runs it at
  // U=1M, R=100k, k=5 (issue 22's incremental sync target is at U=1M).
  const users = Number(ctx.arg ?? 10_000);
  const spec: WorkloadSpec =
    users === 10_000
      ? steadySpec(ctx.quick, ctx.quick ? 40_000 : 120_000)
      : { seed: 42, users, rooms: users / 10, roomsPerUser: 5, zipf: 1, listening: 0.01, changes: 120_000, simRate: 1_000 };
  ctx.progress(`U=${users}: generating the workload`);
  const w = generateWorkload(spec);
  const rig = buildEngine(w, { listen: false });
  ctx.progress(`U=${users}: steady state for incremental reads`);
  for (let a = 0; a < w.ops.length; a += 4096) rig.engine.batch(() => drive(rig, w, a, Math.min(w.ops.length, a + 4096)));
  const engine = rig.engine;
  const current = engine.currentToken;
  const readers = w.listeners.slice(0, ctx.quick || users > 100_000 ? 100 : 1_000).map((u) => w.userIds[u] as string); // 100 at U=1M: a read 50k changes behind takes ~25 ms there
  const backs = [0, 1, 10, 100, 1_000, 10_000, 50_000];
  const xs: number[] = [];
  const ys: number[] = [];
  const rows: { back: number; usPerCall: number; eventsPerCall: number }[] = [];
  // Warm-up: an untimed pass over every distance first, so the code paths each
  // distance takes are compiled before any of them is timed (a late recompile
  // otherwise lands inside a timing window of a few milliseconds).
  for (const back of backs) for (const id of readers.slice(0, 50)) await engine.getNewEvents(id, Math.max(0, current - back));
  for (const back of backs) {
    const since = Math.max(0, current - back);
    for (const id of readers.slice(0, 20)) await engine.getNewEvents(id, since); // warm
    const repsPer = back >= 10_000 ? 1 : 5;
    let events = 0;
    const sw = stopwatch();
    for (let r = 0; r < repsPer; r++) for (const id of readers) events += (await engine.getNewEvents(id, since)).events.length;
    const calls = readers.length * repsPer;
    const us = (sw() / calls) * 1000;
    xs.push(events / calls);
    ys.push(us);
    rows.push({ back, usPerCall: us, eventsPerCall: events / calls });
  }
  // Fit over reads up to 1000 changes behind (further back the index walk, not the answer, dominates; see rows).
  const fit = linearFit(xs.slice(1, 5), ys.slice(1, 5));
  // naive baseline: one read = scan every user
  engine.stop();
  const nrig = buildNaive(w, false);
  driveNaive(nrig, w, 0, w.ops.length);
  const naiveReaders = readers.slice(0, users > 100_000 ? 20 : readers.length); // a scan of 1M users takes ~0.1 s
  const sw = stopwatch();
  let nEvents = 0;
  for (const id of naiveReaders) nEvents += nrig.engine.getNewEvents(id, 1_700_000_000_000 + 110_000).length;
  const naiveUs = (sw() / naiveReaders.length) * 1000;
  const t = users === 10_000 ? '' : `.${users}`;
  const tag = users === 10_000 ? '' : `U=${fmtU(users)}: `;
  const target = users === 1_000_000;
  return {
    scenario: `get-new-events${users === 10_000 ? '' : `-${users}`}`,
    title: `getNewEvents (incremental sync reads) at U=${fmtU(users)}`,
    params: { ...spec, readers: readers.length, currentToken: current, rows, naiveEventsPerCall: nEvents / naiveReaders.length },
    metrics: [
      { key: `gne${t}.call`, label: `${tag}getNewEvents per call (fit intercept, 1–1000 changes behind)`, value: fit.a, unit: 'µs', better: 'lower', ...(target ? { target: 20 } : {}) },
      { key: `gne${t}.event`, label: `${tag}getNewEvents per returned event (fit slope, 1–1000 changes behind)`, value: fit.b, unit: 'µs', better: 'lower', ...(target ? { target: 0.3 } : {}) },
      { key: `gne${t}.uptodate`, label: `${tag}getNewEvents with an up-to-date token`, value: rows[0]?.usPerCall ?? NaN, unit: 'µs', better: 'lower' },
      ...rows.slice(1).map((r) => ({ key: `gne${t}.back${r.back}`, label: `${tag}token ${r.back} changes behind`, value: r.usPerCall, unit: 'µs', better: 'lower' as const, note: `${r.eventsPerCall.toFixed(1)} events per call` })),
      { key: `gne${t}.naive`, label: `${tag}naive full scan per read (baseline)`, value: naiveUs, unit: 'µs', better: 'lower' },
    ],
    series: { gne: [{ name: 'µs per call', x: xs, y: ys }] },
  };
}

// ───────────────────────────── memory ─────────────────────────────

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

function offlineRecord(id: UserId, t: number): UserRecord {
  return {
    presence: { userId: id, state: 'offline', lastActiveTs: t, lastFederationUpdateTs: t, lastUserSyncTs: t, statusMsg: null, currentlyActive: false },
    devices: EMPTY,
    syncs: EMPTY,
  };
}

function onlineRecord(id: UserId, t: number): UserRecord {
  const dev: DevicePresence = { state: 'online', lastActiveTs: t, lastSyncTs: t };
  return {
    presence: { userId: id, state: 'online', lastActiveTs: t, lastFederationUpdateTs: t, lastUserSyncTs: t, statusMsg: null, currentlyActive: true },
    devices: { ['DEV' as never]: dev },
    syncs: EMPTY,
  };
}

/** Snapshot with fresh id strings (so the engine's copies are counted). */
function memorySnapshot(users: number, online: number, t: number, members?: number[][]): EngineSnapshot {
  const ids: UserId[] = [];
  const list: [UserId, UserRecord, number][] = [];
  for (let i = 0; i < users; i++) {
    const id = userId(i) as UserId;
    ids.push(id);
    list.push([id, i < online ? onlineRecord(id, t) : offlineRecord(id, t - 3_600_000), i + 1]);
  }
  const rooms: [RoomId, UserId[]][] = [];
  if (members !== undefined) for (let r = 0; r < members.length; r++) rooms.push([roomId(r) as RoomId, (members[r] as number[]).map((u) => ids[u] as UserId)]);
  return { version: 1, position: 0, streamId: users, users: list, rooms, fullRequests: [] };
}

export async function memory(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const users = Number(ctx.arg ?? 10_000);
  const online = Math.round(users / 10);
  const spec: WorkloadSpec = { seed: 3, users, rooms: Math.max(1, users / 10), roomsPerUser: 5, zipf: 1, listening: 0, changes: 0, simRate: 1 };
  ctx.progress(`memory at U=${users}: generating memberships`);
  const w = generateWorkload(spec);
  const members = w.members;
  const t = 1_700_000_000_000;
  const mk = (snap: EngineSnapshot) => new PresenceEngine({ config: benchConfig(), clock: new SimulatedClock(t), logger: silentLogger, snapshot: snap, log: new DiscardLog() });
  // Warm up code: the same kind of start-up at up to 10k users, twice, so the
  // optimised code the builds below would otherwise compile on the way (heap
  // too, and a few MiB at U=10k) exists before the first measurement.
  const warmUsers = Math.min(users, 10_000);
  const warm = warmUsers === users ? w : generateWorkload({ ...spec, users: warmUsers, rooms: warmUsers / 10 });
  for (let k = 0; k < 2; k++) {
    mk(memorySnapshot(warmUsers, 0, t)).stop();
    mk(memorySnapshot(warmUsers, Math.round(warmUsers / 10), t, warm.members)).stop();
  }
  const settle = () => new Promise((resolve) => setImmediate(resolve)); // let stopped engines' pending jobs finish, so nothing holds them
  await settle();
  // Per-user figures are marginal: each reading is the heap with the engine
  // alive minus the heap with an engine that knows no user alive, so the
  // engine's fixed cost (config, streams, scratch arrays) is not spread over
  // the users. Each reading is the median of seven builds at U=10k (a delta of
  // a few MB: single readings varied by ±10 % with heap layout and
  // late-compiled code, and a median of three still read 315 B once against
  // 287 B), of three up to 100k; at 1M one build takes ~15 s and varies far less.
  const reps = users <= 10_000 ? 7 : users <= 100_000 ? 3 : 1;
  let actors = 0;
  let startup = NaN;
  const phase = async (label: string, snapshotOf: () => EngineSnapshot, last = false): Promise<number> => {
    const deltas: number[] = [];
    for (let r = 0; r < reps; r++) {
      ctx.progress(`U=${users}: ${label} (${r + 1}/${reps})`);
      let empty: PresenceEngine | null = mk(memorySnapshot(0, 0, t));
      const before = heapUsed();
      empty.stop();
      empty = null;
      await settle();
      let snap: EngineSnapshot | null = snapshotOf();
      const sw = stopwatch();
      let e: PresenceEngine | null = mk(snap);
      const ms = sw();
      snap = null;
      const after = heapUsed();
      deltas.push(after - before);
      actors = e.stats.liveActors;
      if (last && r === 0) startup = ms;
      e.stop();
      e = null;
      await settle();
    }
    return median(deltas);
  };
  const dOffline = await phase('all offline (known)', () => memorySnapshot(users, 0, t));
  const dOnline = await phase(`${online} online`, () => memorySnapshot(users, online, t));
  const onlineActors = actors;
  const dAll = await phase(`${online} online + ${w.memberships} memberships`, () => memorySnapshot(users, online, t, members), true);
  // The engine's heap: the last phase's median difference, like the per-user
  // figures (a single reading against the heap at the start of the job once
  // read 0.4 MiB at U=10k, where the median reads 6 MiB).
  const total = dAll;
  const perOffline = dOffline / users;
  const perOnline = (dOnline - (users - online) * perOffline) / online;
  const perMembership = (dAll - dOnline) / w.memberships;
  const m: Metric[] = [
    { key: `mem.${users}.offline`, label: `U=${fmtU(users)}: heap per known offline user`, value: perOffline, unit: 'B', better: 'lower', target: 300 },
    { key: `mem.${users}.online`, label: `U=${fmtU(users)}: heap per online user (incl. actor)`, value: perOnline, unit: 'B', better: 'lower', target: 4096 },
    { key: `mem.${users}.membership`, label: `U=${fmtU(users)}: heap per membership`, value: perMembership, unit: 'B', better: 'lower' },
    { key: `mem.${users}.total`, label: `U=${fmtU(users)}, ${fmtU(online)} online, ${fmtU(w.memberships)} memberships: engine heap`, value: total / 2 ** 20, unit: 'MiB', better: 'lower', ...(users === 1_000_000 ? { target: 2048 } : {}) },
    { key: `mem.${users}.startup`, label: `U=${fmtU(users)}: start-up from snapshot (users + memberships)`, value: startup, unit: 'ms', better: 'lower' },
  ];
  return { scenario: `memory-${users}`, title: `Memory at U=${users}`, params: { ...spec, online, actors: onlineActors, memberships: w.memberships, reps, dOffline, dOnline, dAll }, metrics: m };
}

// ───────────────────────────── growth sweeps ─────────────────────────────

/** Cost per notified change against U, with rooms of constant size (uniform popularity, R = U/10, k = 5 → ~50 members). */
export async function growth(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const users = Number(ctx.arg ?? 10_000);
  const spec: WorkloadSpec = { seed: 11, users, rooms: users / 10, roomsPerUser: 5, zipf: 0, listening: 0.1, changes: ctx.quick ? 30_000 : 100_000, simRate: Math.max(100, users / 10) };
  ctx.progress(`growth U=${users}: building`);
  const w = generateWorkload(spec);
  const rig = buildEngine(w, { listen: false });
  // open the streams inside batches (set-up only)
  for (let a = 0; a < w.listeners.length; a += 2048) {
    rig.engine.batch(() => {
      for (const u of w.listeners.slice(a, a + 2048)) {
        const id = w.userIds[u] as string;
        rig.engine.syncStream(id).subscribe(() => {});
        rig.engine.userSyncing(id);
      }
    });
  }
  rig.engine.batch(() => drive(rig, w, 0, 2_000));
  ctx.progress(`growth U=${users}: measuring`);
  const un = ingestReps(rig, w, 2_000, 3, Math.floor((w.ops.length - 2_000) / 3), ctx.quick ? 300 : 2_500, false);
  const s = rig.engine.stats;
  const recipients = s.deliveries / Math.max(1, s.updates);
  rig.engine.stop();
  const inputs = median(un.inputs);
  const updates = median(un.updates);
  return {
    scenario: `growth-${users}`,
    title: `Growth sweep U=${users}`,
    params: { ...spec, largestRoom: roomStats(w).largest },
    metrics: [
      { key: `growth.${users}.input`, label: `U=${fmtU(users)}: cost per input (1 input/turn)`, value: 1e6 / inputs, unit: 'µs', better: 'lower' },
      // At large U nearly every input meets a user for the first time (offline,
      // dormant) and changes their state; at small U most inputs find the user
      // already in that state. This row shows that mix, so the cost per input
      // can be read against it (cost per notified change is the fair comparison).
      { key: `growth.${users}.notifiedShare`, label: `U=${fmtU(users)}: notified changes per input`, value: updates / inputs, unit: 'changes', better: 'lower' },
      { key: `growth.${users}.deliveries`, label: `U=${fmtU(users)}: deliveries (engine-counted)`, value: median(un.deliveries), unit: 'deliveries/s', better: 'higher' },
      { key: `growth.${users}.recipients`, label: `U=${fmtU(users)}: recipients per change`, value: recipients, unit: 'deliveries', better: 'lower' },
      { key: `growth.${users}.update`, label: `U=${fmtU(users)}: time per notified change`, value: 1e6 / Math.max(1e-9, updates), unit: 'µs', better: 'lower', note: 'wall time / notified changes' },
    ],
  };
}

/** Cost per notified change against the size of the (single) room: should grow with recipients. */
export async function roomSize(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const sizes = ctx.quick ? [100, 1_000, 10_000] : [100, 1_000, 10_000, 50_000];
  const xs: number[] = [];
  const perUpdate: number[] = [];
  const perDelivery: number[] = [];
  const metrics: Metric[] = [];
  for (const size of sizes) {
    ctx.progress(`room of ${size}`);
    const spec: WorkloadSpec = { seed: 5, users: size, rooms: 1, roomsPerUser: 1, zipf: 0, listening: 0.2, changes: 30_000, simRate: 1_000 };
    const w = generateWorkload(spec);
    const rig = buildEngine(w);
    rig.engine.batch(() => drive(rig, w, 0, 2_000));
    const un = ingestReps(rig, w, 2_000, 3, 9_000, ctx.quick ? 300 : 800, false);
    rig.engine.stop();
    const us = 1e6 / median(un.updates);
    const d = median(un.read);
    xs.push(size);
    perUpdate.push(us);
    perDelivery.push(1e9 / d);
    metrics.push({ key: `room.${size}.update`, label: `room of ${fmtU(size)} (${fmtU(size / 5)} listening): time per notified change`, value: us, unit: 'µs', better: 'lower' });
    metrics.push({ key: `room.${size}.delivery`, label: `room of ${fmtU(size)}: per-recipient deliveries read by the consumer`, value: d, unit: 'deliveries/s', better: 'higher' });
  }
  return {
    scenario: 'room-size',
    title: 'Room-size sweep: one room, 20% listening, 1 input/turn',
    params: { sizes },
    metrics,
    series: { roomSize: [{ name: 'µs per notified change', x: xs, y: perUpdate }, { name: 'ns per delivery', x: xs, y: perDelivery }] },
  };
}

// ───────────────────────────── machine ─────────────────────────────

/**
 * The machine itself, measured in the same run, so results from different
 * days (or hosts) can be compared: the 2-core VM this suite runs on has been
 * measured twice as fast on one day as on another with the same code.
 *  - `machine.push`: issue 6's ceiling for deliveries, a tight loop pushing
 *    references into per-recipient arrays (2000 recipients, each change pushed
 *    to 890 of them, as in the target workload; arrays emptied every 256 changes).
 *  - `machine.chase.*`: one dependent memory read (a random cyclic walk over an
 *    Int32Array): 1 MB fits in cache, 64 MB does not. Waking a listener is a
 *    few such reads (notifier, RxJS subscriber chain, the consumer's closure).
 */
export async function machine(ctx: Ctx): Promise<Omit<ScenarioResult, 'seconds'>> {
  const random = seededRandom(5);
  const recipients = 2_000;
  const fanout = 890;
  const changes = 1_000;
  ctx.progress('push loop (deliveries ceiling)');
  const lists: object[][] = Array.from({ length: recipients }, () => []);
  const targets = new Int32Array(changes * fanout);
  for (let c = 0; c < changes; c++) {
    // a random subset of `fanout` recipients: partial Fisher–Yates over 0..recipients-1
    const pool = Int32Array.from({ length: recipients }, (_, k) => k);
    for (let k = 0; k < fanout; k++) {
      const j = k + Math.floor(random() * (recipients - k));
      const t = pool[j] as number;
      pool[j] = pool[k] as number;
      pool[k] = t;
      targets[c * fanout + k] = t;
    }
  }
  const states = Array.from({ length: changes }, (_, c) => ({ change: c }));
  const pushReps: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (const l of lists) l.length = 0;
    const run = timed(changes * 20, ctx.quick ? 300 : 1_000, (a, b) => {
      for (let i = a; i < b; i++) {
        const c = i % changes;
        const state = states[c] as object;
        const base = c * fanout;
        for (let k = 0; k < fanout; k++) (lists[targets[base + k] as number] as object[]).push(state);
        if (i % 256 === 255) for (const l of lists) l.length = 0;
      }
    }, 256);
    pushReps.push(((run.done * fanout) / run.ms) * 1000);
  }
  ctx.progress('dependent memory reads');
  const chase = (bytes: number): number[] => {
    const n = bytes / 4;
    const order = Int32Array.from({ length: n }, (_, k) => k);
    for (let k = n - 1; k > 0; k--) {
      const j = Math.floor(random() * (k + 1));
      const t = order[j] as number;
      order[j] = order[k] as number;
      order[k] = t;
    }
    const next = new Int32Array(n);
    for (let k = 0; k < n; k++) next[order[k] as number] = order[(k + 1) % n] as number;
    const reps: number[] = [];
    let at = 0;
    for (let r = 0; r < 3; r++) {
      const steps = 2_000_000;
      const clock = timeBase === 'wall' ? now : cpuMs; // as `timed` does (--wall)
      const c0 = clock();
      for (let k = 0; k < steps; k++) at = next[at] as number;
      reps.push(((clock() - c0) * 1e6) / steps);
    }
    if (at < 0) throw new Error('unreachable'); // keeps the walk from being optimised away
    return reps;
  };
  const small = chase(1 << 20);
  const large = chase(64 << 20);
  return {
    scenario: 'machine',
    title: 'The machine in this run (for comparing runs across days)',
    params: { recipients, fanout, changes },
    metrics: [
      { key: 'machine.push', label: `push loop: references into per-recipient arrays (${fanout} of ${recipients} per change)`, value: median(pushReps), reps: pushReps, unit: 'pushes/s', better: 'higher' },
      { key: 'machine.chase.cache', label: 'one dependent read, 1 MB working set', value: median(small), reps: small, unit: 'ns', better: 'lower' },
      { key: 'machine.chase.memory', label: 'one dependent read, 64 MB working set', value: median(large), reps: large, unit: 'ns', better: 'lower' },
    ],
  };
}

export function fmtU(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

export const SCENARIOS: Record<string, (ctx: Ctx) => Promise<Omit<ScenarioResult, 'seconds'>>> = {
  machine,
  ingest,
  latency,
  'large-room': largeRoom,
  'small-server': smallServer,
  storm,
  'all-users-router': allUsersRouter,
  federation,
  replay,
  'get-new-events': getNewEvents,
  memory,
  growth,
  'room-size': roomSize,
};

export type { PresenceBatch };
