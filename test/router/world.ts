/**
 * A small generated world for the router properties: local and remote users,
 * rooms, static symmetric routing modules (sync or async), listeners and a
 * sequence of operations. Not a test file; imported by properties.test.ts.
 */
import fc from 'fast-check';
import type { PresenceEngine, PresenceRouterCallbacks, UserPresenceState } from '../../src/index.js';
import { createModuleApi } from '../../src/index.js';
import { createTestEngine, flushMicrotasks, recordSyncStream } from '../../src/testing/index.js';

export const LOCAL = ['@u0:hs.test', '@u1:hs.test', '@u2:hs.test', '@u3:hs.test', '@u4:hs.test'] as const;
export const REMOTE = ['@r0:remote.test', '@r1:remote.test', '@r2:far.test'] as const;
export const USERS: readonly string[] = [...LOCAL, ...REMOTE];
export const ROOMS = ['!k0:hs.test', '!k1:hs.test', '!k2:hs.test'] as const;
/** Router deadline in the generated worlds. */
export const ROUTER_TIMEOUT = 20_000;
/**
 * Time advances in steps shorter than the deadline, with promise callbacks run
 * between steps: a deadline set during a step can only fall due in a later
 * step, after async answers already available have landed.
 */
const STEP = ROUTER_TIMEOUT - 1;

/** One routing module: recipient → source users whose presence it receives; `all` read everything. */
export interface RoutingSpec {
  readonly routes: readonly (readonly [string, readonly string[]])[];
  readonly all: readonly string[];
  readonly async: boolean;
}

export type Op =
  | { readonly t: 'set'; readonly user: string; readonly presence: 'online' | 'unavailable' | 'offline'; readonly msg: string | null }
  | { readonly t: 'remote'; readonly user: string; readonly presence: 'online' | 'unavailable' | 'offline' }
  | { readonly t: 'join'; readonly room: string; readonly user: string }
  | { readonly t: 'tick'; readonly ms: number };

export interface World {
  readonly joins: readonly (readonly [string, string])[];
  readonly modules: readonly RoutingSpec[];
  readonly listeners: readonly string[];
  readonly ops: readonly Op[];
}

const presence = fc.constantFrom('online' as const, 'unavailable' as const, 'offline' as const);

export const routingSpecArb: fc.Arbitrary<RoutingSpec> = fc.record({
  routes: fc.array(fc.tuple(fc.constantFrom(...USERS, '@watcher:remote.test'), fc.subarray([...USERS])), { maxLength: 5 }),
  all: fc.subarray([...LOCAL], { maxLength: 2 }),
  async: fc.boolean(),
});

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('set' as const), user: fc.constantFrom(...LOCAL), presence, msg: fc.constantFrom(null, 'hi', 'busy day') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('remote' as const), user: fc.constantFrom(...REMOTE), presence }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('join' as const), room: fc.constantFrom(...ROOMS), user: fc.constantFrom(...USERS) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 400_000 }) }) },
);

export const worldArb = (modules: fc.Arbitrary<readonly RoutingSpec[]> = fc.array(routingSpecArb, { minLength: 1, maxLength: 3 })): fc.Arbitrary<World> =>
  fc.record({
    joins: fc.array(fc.tuple(fc.constantFrom(...ROOMS), fc.constantFrom(...USERS)), { maxLength: 10 }),
    modules,
    listeners: fc.subarray([...LOCAL], { minLength: 1 }),
    ops: fc.array(opArb, { minLength: 1, maxLength: 25 }),
  });

/** Symmetric callbacks for a spec: what getUsersForStates sends to R is exactly what getInterestedUsers(R) names. */
export function callbacksFor(spec: RoutingSpec): PresenceRouterCallbacks {
  const sources = new Map<string, Set<string>>();
  for (const [r, srcs] of spec.routes) {
    let set = sources.get(r);
    if (set === undefined) sources.set(r, (set = new Set()));
    for (const s of srcs) set.add(s);
  }
  const all = new Set(spec.all);
  const forStates = (states: readonly UserPresenceState[]) => {
    const out = new Map<string, Set<UserPresenceState>>();
    for (const [r, srcs] of sources) {
      const picked = states.filter((s) => srcs.has(s.userId));
      if (picked.length > 0) out.set(r, new Set(picked));
    }
    return out;
  };
  const interested = (userId: string): ReadonlySet<string> | 'ALL' => (all.has(userId) ? 'ALL' : new Set(sources.get(userId) ?? []));
  return spec.async
    ? { getUsersForStates: async (s) => forStates(s), getInterestedUsers: async (u) => interested(u) }
    : { getUsersForStates: forStates, getInterestedUsers: interested };
}

/** Union of all modules' view of `listener`: ALL, or the sources routed to them. */
export function expectedInterest(modules: readonly RoutingSpec[], listener: string): { all: boolean; sources: Set<string> } {
  const sources = new Set<string>();
  let all = false;
  for (const m of modules) {
    if (m.all.includes(listener)) all = true;
    for (const [r, srcs] of m.routes) if (r === listener) for (const s of srcs) sources.add(s);
  }
  return { all, sources };
}

export interface Running {
  readonly engine: PresenceEngine;
  readonly streams: Map<string, ReturnType<typeof recordSyncStream>>;
  readonly start: number;
  /** Users whose presence change was notified (got a stream id) after the streams opened. */
  readonly changed: Set<string>;
  /** Advance this engine's clock by `ms` (default 0), letting async router answers land. */
  settle(ms?: number): Promise<void>;
}

/**
 * Build an engine for the world with `callbacks` registered (in order) as
 * modules, open the listeners' streams and let interest settle.
 */
export async function startWorld(world: World, callbacks: readonly PresenceRouterCallbacks[], options: { quietTimers?: boolean } = {}): Promise<Running> {
  // quietTimers: presence timeouts far beyond the test's horizon, so only router deadlines depend on time.
  const quiet = { idle_timeout: '20d', sync_online_timeout: '20d', busy_timeout: '20d', federation_timeout: '24d', federation_ping_interval: '20d' };
  const presence = { router_timeout: ROUTER_TIMEOUT, ...(options.quietTimers === true ? quiet : {}) };
  const { engine, clock } = createTestEngine({ serverName: 'hs.test', config: { presence } });
  callbacks.forEach((cb, i) => createModuleApi(engine, `m${i}`).registerPresenceRouterCallbacks(cb));
  for (const [room, user] of world.joins) engine.joinRoom(room, user);
  // Long promise chains (several async modules in a row) need more than one round of microtasks.
  const settle = async (ms = 0) => {
    await flushMicrotasks(200);
    await clock.advanceAsync(ms, STEP);
    await flushMicrotasks(200);
  };
  const streams = new Map(world.listeners.map((l) => [l, recordSyncStream(engine, l)] as const));
  await settle(ROUTER_TIMEOUT); // interest answers (or their deadlines) land before anything changes
  const start = engine.currentToken;
  const changed = new Set<string>();
  engine.committed$.subscribe((entries) => {
    for (const e of entries) if (e.event.type === 'user.step' && e.event.streamId !== undefined) changed.add(e.event.userId);
  });
  return { engine, streams, start, changed, settle };
}

/**
 * Apply the operations, settling async routers after each; `afterOpMs` is the
 * time to let pass after each (the deadline, when some module never answers).
 */
export async function runOps(r: Running, ops: readonly Op[], afterOpMs = 0): Promise<void> {
  for (const op of ops) {
    switch (op.t) {
      case 'set':
        r.engine.setPresence(op.user, { presence: op.presence, statusMsg: op.msg });
        break;
      case 'remote': {
        const origin = op.user.slice(op.user.indexOf(':') + 1);
        r.engine.receiveFederationEdu(origin, { push: [{ user_id: op.user, presence: op.presence, last_active_ago: 0, currently_active: false }] });
        break;
      }
      case 'join':
        r.engine.joinRoom(op.room, op.user);
        break;
      case 'tick':
        await r.settle(op.ms);
        continue;
    }
    await r.settle(afterOpMs);
  }
}

/** A comparable view: userId → "state|statusMsg", sorted. */
export function viewOf(states: Iterable<UserPresenceState>): [string, string][] {
  const m = new Map<string, string>();
  for (const s of states) m.set(s.userId, `${s.state}|${s.statusMsg ?? ''}`);
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Pull everything changed since the start for `listener`, letting `waitMs` pass (the deadline, for modules that never answer). */
export async function pull(r: Running, listener: string, waitMs = 0): Promise<UserPresenceState[]> {
  let done = false;
  const p = r.engine.getNewEvents(listener, r.start).finally(() => {
    done = true;
  });
  await r.settle(0);
  // An ALL_USERS pull may wait for two deadlines (interest, then routing).
  for (let i = 0; !done && i < 4; i++) await r.settle(waitMs);
  if (!done) throw new Error(`getNewEvents(${listener}) did not settle`);
  return (await p).events;
}
