/**
 * Presence-router configurations for the model-based test: synchronous,
 * deterministic modules described by plain data, so the same description can
 * be registered on an engine and interpreted by the reference model.
 */
import fc from 'fast-check';
import type { PresenceEngine, PresenceRouterCallbacks, UserPresenceState } from '../../src/index.js';
import { ALL_USERS } from '../../src/index.js';
import type { MState, ModelRouter } from './reference-model.js';

/** A well-behaved module: fixed extra interest, fixed recipients per changed user, ALL for some users. */
export interface GoodModule {
  readonly kind: 'good';
  /** viewer → extra users they are interested in. */
  readonly interest: Readonly<Record<string, readonly string[]>>;
  /** Users whose `getInterestedUsers` answer is ALL_USERS. */
  readonly allUsers: readonly string[];
  /** changed user → recipients (local or remote user ids). */
  readonly routeTo: Readonly<Record<string, readonly string[]>>;
  /** Route only non-offline states. */
  readonly onlyNonOffline: boolean;
}

export type BadMode = 'throw' | 'throw-string' | 'null' | 'number' | 'array' | 'string-all' | 'array-values' | 'bad-keys' | 'foreign-states';

/** A misbehaving module: every answer is an exception or the wrong type (spec §4.3: skipped). */
export interface BadModule {
  readonly kind: 'bad';
  readonly forStates: BadMode;
  readonly interest: 'throw' | 'null' | 'array' | 'lowercase-all' | 'number' | 'set-of-junk';
}

export type ModuleSpec = GoodModule | BadModule;

/** Run configurations: no router, fixed extras, ALL_USERS for some users, a misbehaving module (alone or with others). */
export function routerConfigArb(everyone: readonly string[]): fc.Arbitrary<readonly ModuleSpec[]> {
  const relation = (keys: readonly string[]) =>
    fc.record(Object.fromEntries(keys.map((k) => [k, fc.subarray([...everyone], { maxLength: 3 })]))) as fc.Arbitrary<Record<string, string[]>>;
  const good = (withAll: boolean): fc.Arbitrary<GoodModule> =>
    fc.record({
      kind: fc.constant('good' as const),
      // remote ids too: send_local_online_presence_to asks the routers about remote targets (§4.6)
      interest: relation(everyone),
      allUsers: withAll ? fc.subarray([...everyone], { minLength: 1, maxLength: 2 }) : fc.constant([]),
      routeTo: relation(everyone),
      onlyNonOffline: fc.boolean(),
    });
  const bad: fc.Arbitrary<BadModule> = fc.record({
    kind: fc.constant('bad' as const),
    forStates: fc.constantFrom<BadMode>('throw', 'throw-string', 'null', 'number', 'array', 'string-all', 'array-values', 'bad-keys', 'foreign-states'),
    interest: fc.constantFrom('throw' as const, 'null' as const, 'array' as const, 'lowercase-all' as const, 'number' as const, 'set-of-junk' as const),
  });
  return fc.oneof(
    fc.constant([]),
    good(false).map((m) => [m]),
    good(true).map((m) => [m]),
    bad.map((m) => [m]),
    fc.tuple(bad, good(true)).map(([b, g]) => [b, g]),
    fc.tuple(good(false), bad, good(true)).map(([a, b, c]) => [a, b, c]),
  );
}

function goodCallbacks(m: GoodModule): PresenceRouterCallbacks {
  return {
    getInterestedUsers: (userId) => (m.allUsers.includes(userId) ? ALL_USERS : new Set(m.interest[userId] ?? [])),
    getUsersForStates: (states) => {
      const out = new Map<string, Set<UserPresenceState>>();
      for (const s of states) {
        if (m.onlyNonOffline && s.state === 'offline') continue;
        for (const r of m.routeTo[s.userId] ?? []) {
          let set = out.get(r);
          if (set === undefined) out.set(r, (set = new Set()));
          set.add(s);
        }
      }
      return out;
    },
  };
}

function badCallbacks(m: BadModule): PresenceRouterCallbacks {
  const forStates = (states: readonly UserPresenceState[]): unknown => {
    switch (m.forStates) {
      case 'throw':
        throw new Error('router module exploded');
      case 'throw-string':
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'a string, not an Error';
      case 'null':
        return null;
      case 'number':
        return 42;
      case 'array':
        return [...states];
      case 'string-all':
        return ALL_USERS;
      case 'array-values':
        return Object.fromEntries(states.map((s) => [s.userId, [s]]));
      case 'bad-keys':
        return new Map(states.map((s) => [`not a user ${s.userId}`, new Set([s])]));
      case 'foreign-states':
        return new Map(states.map((s) => [s.userId, new Set([{ userId: '@ghost:nowhere.example', state: 'online' }, 'junk', 7])]));
    }
  };
  const interest = (): unknown => {
    switch (m.interest) {
      case 'throw':
        throw new TypeError('interest exploded');
      case 'null':
        return null;
      case 'array':
        return ['@a:test.local'];
      case 'lowercase-all':
        return 'all';
      case 'number':
        return 7;
      case 'set-of-junk':
        return new Set(['not-a-user', 5, null]);
    }
  };
  return {
    getUsersForStates: forStates as PresenceRouterCallbacks['getUsersForStates'],
    getInterestedUsers: interest as PresenceRouterCallbacks['getInterestedUsers'],
  };
}

export function registerRouters(engine: PresenceEngine, modules: readonly ModuleSpec[]): void {
  modules.forEach((m, i) => engine.registerPresenceRouter(`module${i}-${m.kind}`, m.kind === 'good' ? goodCallbacks(m) : badCallbacks(m)));
}

/** The combined router as the spec defines it (§4.3): bad answers skipped, first ALL wins, sets unioned. */
export function modelRouter(modules: readonly ModuleSpec[]): ModelRouter {
  const good = modules.filter((m): m is GoodModule => m.kind === 'good');
  return {
    interest(userId) {
      const union = new Set<string>();
      for (const m of good) {
        if (m.allUsers.includes(userId)) return 'ALL';
        for (const u of m.interest[userId] ?? []) union.add(u);
      }
      return union;
    },
    recipients(state: MState) {
      const out = new Set<string>();
      for (const m of good) {
        if (m.onlyNonOffline && state.state === 'offline') continue;
        for (const r of m.routeTo[state.userId] ?? []) out.add(r);
      }
      return out;
    },
  };
}
