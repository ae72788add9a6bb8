/**
 * Seeded workload generator for the benchmark suite.
 *
 * U users, R rooms; each user joins k distinct rooms drawn with Zipf-like room
 * popularity (room r has weight 1/(r+1)^s); a fraction of users are online and
 * keep an open sync stream; P presence inputs (set presence, sync start/stop,
 * activity) are generated with a simulated rate so the engine's timers fire as
 * the simulated clock advances. Everything is a pure function of the seed.
 */

import { seededRandom } from '../src/testing/random.js';

/** Seeded PRNG (mulberry32), shared with the testing kit. */
export const rng = seededRandom;

/** Sampler over 0..n-1 with P(i) ∝ 1/(i+1)^s (s = 0 is uniform). */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / Math.pow(i + 1, s);
    cdf[i] = sum;
  }
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export const SERVER = 'bench.local';

/** Input kinds, stored compactly in `Workload.ops`. */
export const Op = { SetOnline: 0, SetUnavailable: 1, SetOffline: 2, SyncStart: 3, SyncEnd: 4, Activity: 5 } as const;
export type Op = (typeof Op)[keyof typeof Op];
export const OP_NAMES = ['set online', 'set unavailable', 'set offline', 'sync start', 'sync end', 'activity'] as const;

export interface WorkloadSpec {
  readonly seed: number;
  /** Users. */
  readonly users: number;
  /** Rooms. */
  readonly rooms: number;
  /** Rooms per user (distinct). */
  readonly roomsPerUser: number;
  /** Zipf exponent of room popularity. */
  readonly zipf: number;
  /** Fraction of users that are online with an open sync stream. */
  readonly listening: number;
  /** Presence inputs to generate. */
  readonly changes: number;
  /** Simulated input rate (inputs per simulated second): the clock advances 1/rate s per input. */
  readonly simRate: number;
  /** Users drawn for inputs: 'all' (uniform over U) or 'listening' (only users with open streams). */
  readonly actors?: 'all' | 'listening';
}

export interface Workload {
  readonly spec: WorkloadSpec;
  readonly userIds: string[];
  readonly roomIds: string[];
  /** Room index → member user indexes. */
  readonly members: number[][];
  /** Users with an open sync stream (the first `listening × U` users after a seeded shuffle). */
  readonly listeners: number[];
  /** Op kind per input. */
  readonly ops: Uint8Array;
  /** User index per input. */
  readonly opUsers: Int32Array;
  readonly memberships: number;
}

export function userId(i: number): string {
  return `@u${i}:${SERVER}`;
}
export function roomId(i: number): string {
  return `!r${i}:${SERVER}`;
}

export function generateWorkload(spec: WorkloadSpec): Workload {
  const random = rng(spec.seed);
  const userIds = Array.from({ length: spec.users }, (_, i) => userId(i));
  const roomIds = Array.from({ length: spec.rooms }, (_, i) => roomId(i));
  const members: number[][] = Array.from({ length: spec.rooms }, () => []);
  const pickRoom = zipfSampler(spec.rooms, spec.zipf, random);
  const k = Math.min(spec.roomsPerUser, spec.rooms);
  let memberships = 0;
  const chosen = new Set<number>();
  for (let u = 0; u < spec.users; u++) {
    chosen.clear();
    let guard = 0;
    while (chosen.size < k && guard++ < k * 50) chosen.add(pickRoom());
    for (const r of chosen) {
      (members[r] as number[]).push(u);
      memberships++;
    }
  }
  // Seeded shuffle: which users listen.
  const order = Int32Array.from({ length: spec.users }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  const listeners = Array.from(order.subarray(0, Math.round(spec.listening * spec.users)));
  const ops = new Uint8Array(spec.changes);
  const opUsers = new Int32Array(spec.changes);
  const syncOpen = new Uint8Array(spec.users);
  const pool = spec.actors === 'listening' && listeners.length > 0 ? listeners : null;
  for (let i = 0; i < spec.changes; i++) {
    const u = pool === null ? Math.floor(random() * spec.users) : (pool[Math.floor(random() * pool.length)] as number);
    const x = random();
    let op: Op;
    if (x < 0.4) {
      const y = random();
      op = y < 0.6 ? Op.SetOnline : y < 0.85 ? Op.SetUnavailable : Op.SetOffline;
    } else if (x < 0.7) {
      op = syncOpen[u] === 1 ? Op.SyncEnd : Op.SyncStart;
      syncOpen[u] = op === Op.SyncStart ? 1 : 0;
    } else op = Op.Activity;
    ops[i] = op;
    opUsers[i] = u;
  }
  return { spec, userIds, roomIds, members, listeners, ops, opUsers, memberships };
}

/** Room size distribution summary (for reports). */
export function roomStats(w: Workload): { largest: number; median: number } {
  const sizes = w.members.map((m) => m.length).sort((a, b) => a - b);
  return { largest: sizes[sizes.length - 1] ?? 0, median: sizes[Math.floor(sizes.length / 2)] ?? 0 };
}
