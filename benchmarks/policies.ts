/**
 * Policy figures (docs/policies.md): what flap damping saves on a flapping
 * client. One engine on a simulated clock (the figures are counts, not
 * timings, so they are exact and repeatable): alice shares one room with
 * `--members` local users, of whom `--listeners` have an open sync stream,
 * and with one user on each of `--servers` remote servers. Her client flips
 * every 2 s (and, second case, every 15 s) between foreground
 * (`set_presence=online`) and background (`set_presence=unavailable`) for 10
 * minutes, then goes quiet for 2 minutes. Each case runs once with damping
 * off and once with `presence.damping` on.
 *
 *   npx tsx benchmarks/policies.ts [--members N] [--listeners N] [--servers N]
 *
 * Writes benchmarks/results/policies.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PresenceEngine, presenceConfig, type SyncHandle, type UserId } from '../src/index.js';
import { MemoryLogger, SimulatedClock } from '../src/testing/index.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MEMBERS = arg('--members', 500);
const LISTENERS = arg('--listeners', 100);
const SERVERS = arg('--servers', 10);
const FLIP_MS = 2_000;
const FLAP_MS = 10 * 60_000;
const QUIET_MS = 2 * 60_000;
const DAMPING = { hold_down: '10s', max_transitions: 6, window: '60s' };
/** A stricter rate limit, for the slow-flapping case. */
const STRICT = { hold_down: '10s', max_transitions: 2, window: '60s' };

const HS = 'bench.local';
const ALICE = `@alice:${HS}` as UserId;
const ROOM = `!room:${HS}`;

interface Figures {
  readonly damping: typeof DAMPING | null;
  /** Notified changes of alice (stream ids her steps took; the log's truth, the same either way). */
  readonly aliceChanges: number;
  /** Presence value changes of alice seen by one listening member (its folded stream). */
  readonly visibleTransitions: number;
  /** Batches pushed to listening members other than alice (each one a wake-up of a sync stream). */
  readonly recipientWakeups: number;
  /** States of alice pushed to listening members other than alice. */
  readonly deliveries: number;
  /** Federation transmissions and states sent (all to the remote servers sharing the room). */
  readonly federationTransmissions: number;
  readonly federationStates: number;
  /** Alice's own stream: batches that carried her own state (her devices' view). */
  readonly ownUpdates: number;
  /** After the quiet period: does every listener's view of alice equal her state, and did the last federation send carry it? */
  readonly convergedAfterQuiet: boolean;
  readonly held: number | null;
  readonly released: number | null;
}

function run(damping: typeof DAMPING | null, flipMs: number): Figures {
  const clock = new SimulatedClock();
  const config = presenceConfig(HS, {
    presence: { enabled: true, ...(damping !== null ? { damping } : {}) },
    rc_presence: { per_user: { per_second: 1e9, burst_count: 1e9 } },
  });
  const engine = new PresenceEngine({ config, clock, logger: new MemoryLogger() });
  const members = Array.from({ length: MEMBERS }, (_, i) => `@m${i}:${HS}`);
  const remotes = Array.from({ length: SERVERS }, (_, i) => `@r:remote${i}.example`);
  engine.batch(() => {
    for (const u of [ALICE, ...members, ...remotes]) engine.joinRoom(ROOM, u);
  });
  let wakeups = 0;
  let deliveries = 0;
  const seen: string[] = [];
  for (let i = 0; i < LISTENERS; i++) {
    const watcher = i === 0;
    engine.syncStream(members[i] as string).subscribe((b) => {
      let aboutAlice = 0;
      for (const s of b.events)
        if (s.userId === ALICE) {
          aboutAlice++;
          if (watcher && seen.at(-1) !== s.state) seen.push(s.state);
        }
      if (aboutAlice > 0) wakeups++;
      deliveries += aboutAlice;
    });
  }
  let ownUpdates = 0;
  engine.syncStream(ALICE).subscribe((b) => {
    if (b.events.some((s) => s.userId === ALICE)) ownUpdates++;
  });
  const lastSent = new Map<string, string | undefined>();
  engine.federationOutbound$.subscribe((t) => {
    for (const e of t.edus) for (const p of e.content.push) if (p.user_id === ALICE) lastSent.set(t.destination, p.presence);
  });
  const fed0 = { ...engine.federationStats };
  const token0 = engine.currentToken;
  const updates0 = engine.stats.updates;

  // The flapping client: each flip is a new long-poll with the other set_presence; the previous one ends.
  let open: SyncHandle | null = null;
  for (let t = 0, k = 0; t < FLAP_MS; t += flipMs, k++) {
    const next = engine.userSyncing(ALICE, { deviceId: 'PHONE', setPresence: k % 2 === 0 ? 'online' : 'unavailable' });
    open?.end();
    open = next;
    clock.advance(flipMs);
  }
  const last = engine.getUserPresence(ALICE).state;
  clock.advance(QUIET_MS);
  open?.end();

  const truth = engine.getUserPresence(ALICE).state;
  const watcherView = seen.at(-1);
  const fedConverged = [...lastSent.values()].every((p) => p === truth);
  const figures: Figures = {
    damping,
    aliceChanges: engine.stats.updates - updates0,
    visibleTransitions: Math.max(0, seen.length - 1),
    recipientWakeups: wakeups,
    deliveries,
    federationTransmissions: engine.federationStats.transmissions - fed0.transmissions,
    federationStates: engine.federationStats.statesSent - fed0.statesSent,
    ownUpdates,
    convergedAfterQuiet: watcherView === truth && fedConverged && lastSent.size === SERVERS,
    held: engine.dampingStats?.held ?? null,
    released: engine.dampingStats?.released ?? null,
  };
  void token0;
  void last;
  engine.stop();
  return figures;
}

const saved = (a: number, b: number) => (a === 0 ? 0 : Math.round((1 - b / a) * 1000) / 10);

function compare(flipMs: number, damping: typeof DAMPING = DAMPING) {
  const off = run(null, flipMs);
  const on = run(damping, flipMs);
  return {
    flipMs,
    off,
    on,
    savedPercent: {
      visibleTransitions: saved(off.visibleTransitions, on.visibleTransitions),
      recipientWakeups: saved(off.recipientWakeups, on.recipientWakeups),
      deliveries: saved(off.deliveries, on.deliveries),
      federationTransmissions: saved(off.federationTransmissions, on.federationTransmissions),
      federationStates: saved(off.federationStates, on.federationStates),
    },
  };
}

// ───────────────────────────── large room ─────────────────────────────

const LARGE_MEMBERS = arg('--large-members', 50_000);
const LARGE_LISTENING = arg('--large-listening', 0.2);
const LARGE_CHANGES = arg('--large-changes', 6_000);
/** Simulated input rate of the large-room benchmark (benchmarks/scenarios.ts uses 2 000 changes/s). */
const LARGE_RATE = 2_000;
const LARGE_MODE = { member_threshold: 1_000, interval: '1s' };

interface LargeFigures {
  readonly mode: typeof LARGE_MODE | null;
  readonly changes: number;
  /** Wall time of the changes (and of the summaries they caused), ms. */
  readonly wallMs: number;
  /** States pushed to sync streams (events × subscribers). */
  readonly deliveries: number;
  /** Batches pushed to sync streams (one wake-up of a listener each). */
  readonly wakeups: number;
  readonly deliveriesPerSecond: number;
  readonly changesPerSecond: number;
  /** Did every listener end with every member's current state? (checked on a sample of 50 listeners) */
  readonly converged: boolean;
}

function runLargeRoom(mode: typeof LARGE_MODE | null): LargeFigures {
  const clock = new SimulatedClock();
  const config = presenceConfig(HS, {
    presence: { enabled: true, ...(mode !== null ? { large_rooms: mode } : {}) },
    rc_presence: { per_user: { per_second: 1e9, burst_count: 1e9 } },
  });
  const engine = new PresenceEngine({ config, clock, logger: new MemoryLogger() });
  const room = `!large:${HS}`;
  const members = Array.from({ length: LARGE_MEMBERS }, (_, i) => `@u${i}:${HS}`);
  engine.batch(() => {
    for (const u of members) engine.joinRoom(room, u);
  });
  const listening = Math.floor(LARGE_MEMBERS * LARGE_LISTENING);
  let wakeups = 0;
  let deliveries = 0;
  const sampled = new Map<number, Map<string, string>>();
  for (let i = 0; i < listening; i++) {
    const view = i % Math.max(1, Math.floor(listening / 50)) === 0 ? new Map<string, string>() : null;
    if (view !== null) sampled.set(i, view);
    engine.syncStream(members[i] as string).subscribe((b) => {
      wakeups++;
      deliveries += b.events.length;
      if (view !== null) for (const s of b.events) view.set(s.userId, s.state);
    });
  }
  let seed = 42;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648);
  const perMs = LARGE_RATE / 1000;
  const started = performance.now();
  for (let k = 0; k < LARGE_CHANGES; k++) {
    const u = members[next() % LARGE_MEMBERS] as string;
    engine.setPresence(u, { presence: k % 3 === 0 ? 'unavailable' : 'online' });
    if ((k + 1) % perMs === 0) clock.advance(1);
  }
  clock.advance(2_000); // the last summaries
  const wallMs = performance.now() - started;
  let converged = true;
  for (const [i, view] of sampled)
    for (const u of members) {
      const truth = engine.getUserPresence(u).state;
      if ((view.get(u) ?? 'offline') !== truth && u !== members[i]) converged = false;
    }
  engine.stop();
  return {
    mode,
    changes: LARGE_CHANGES,
    wallMs: Math.round(wallMs),
    deliveries,
    wakeups,
    deliveriesPerSecond: Math.round(deliveries / (wallMs / 1000)),
    changesPerSecond: Math.round(LARGE_CHANGES / (wallMs / 1000)),
    converged,
  };
}

function compareLargeRoom() {
  const off = runLargeRoom(null);
  const on = runLargeRoom(LARGE_MODE);
  return {
    description: `one ${LARGE_MEMBERS}-member room, ${Math.round(LARGE_LISTENING * 100)} % of members listening, ${LARGE_CHANGES} presence changes of random members at ${LARGE_RATE}/s (simulated clock; wall time measured)`,
    off,
    on,
    savedPercent: { wakeups: saved(off.wakeups, on.wakeups), deliveries: saved(off.deliveries, on.deliveries) },
  };
}

const result = {
  scenario: {
    description: 'a client flipping between set_presence=online and set_presence=unavailable for 10 minutes, then quiet for 2 minutes',
    members: MEMBERS,
    listeners: LISTENERS,
    remoteServers: SERVERS,
    flapMs: FLAP_MS,
    quietMs: QUIET_MS,
  },
  /** The scenario: a flip every 2 s (shorter than the hold-down). */
  flipEvery2s: compare(FLIP_MS),
  /** Slower flapping (a flip every 15 s, longer than the hold-down): 4 transitions a minute stay under 6 per minute. */
  flipEvery15s: compare(15_000),
  /** The same with at most 2 visible transitions per minute: the rate limit does the work. */
  flipEvery15sStrict: compare(15_000, STRICT),
  largeRoom: args.includes('--no-large-room') ? null : compareLargeRoom(),
};
const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'policies.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
console.log(`written to ${out}`);
