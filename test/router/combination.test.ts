/**
 * Combination of router callbacks (spec §4.3, decisions.md): order, union,
 * validation, failure isolation, deadlines, sync-stays-sync.
 */
import { describe, expect, it } from 'vitest';
import { ALL_USERS, PresenceRouter, createModuleApi, defaultPresence, parseUserId, type PresenceRouterCallbacks, type UserPresenceState } from '../../src/index.js';
import { MemoryLogger, SimulatedClock, createTestEngine, flushMicrotasks, recordSyncStream } from '../../src/testing/index.js';

const A = parseUserId('@a:hs.test');
const B = parseUserId('@b:hs.test');
const C = parseUserId('@c:hs.test');
const R1 = '@r1:hs.test';
const R2 = '@r2:other.test';

function state(userId: typeof A, presence: UserPresenceState['state'] = 'online'): UserPresenceState {
  return { ...defaultPresence(userId), state: presence };
}

function setup(timeoutMs = 1_000) {
  const clock = new SimulatedClock();
  const logger = new MemoryLogger();
  const router = new PresenceRouter(clock, logger, timeoutMs);
  return { clock, logger, router };
}

const none = (): ReadonlySet<string> => new Set<string>();
function cb(getUsersForStates: PresenceRouterCallbacks['getUsersForStates'], getInterestedUsers: PresenceRouterCallbacks['getInterestedUsers'] = none): PresenceRouterCallbacks {
  return { getUsersForStates, getInterestedUsers };
}

/** Recipient → sorted user ids of the states routed to them. */
function flat(m: Map<string, Set<UserPresenceState>>): Record<string, string[]> {
  return Object.fromEntries([...m].map(([k, v]) => [k, [...v].map((s) => s.userId).sort()]));
}

describe('getUsersForStates combination', () => {
  it('no callbacks: empty result, router inactive', () => {
    const { router } = setup();
    expect(router.active).toBe(false);
    expect(router.usersForStates([state(A)])).toEqual(new Map());
  });

  it('unions results per recipient across callbacks, Maps and plain objects alike', () => {
    const { router } = setup();
    const sa = state(A);
    const sb = state(B);
    router.register('m1', cb(() => new Map([[R1, new Set([sa])]])));
    router.register('m2', cb(() => ({ [R1]: new Set([sb]), [R2]: new Set([sa, sb]) })));
    const r = router.usersForStates([sa, sb]);
    expect(r).toBeInstanceOf(Map);
    expect(flat(r as Map<string, Set<UserPresenceState>>)).toEqual({ [R1]: [A, B], [R2]: [A, B] });
  });

  it("maps returned states back to the engine's own objects and ignores states that were not asked about", () => {
    const { router } = setup();
    const sa = state(A);
    router.register('m', cb((states) => new Map([[R1, new Set([...states, state(C), { userId: 'garbage' } as never])]])));
    const r = router.usersForStates([sa]) as Map<string, Set<UserPresenceState>>;
    expect([...(r.get(R1) ?? [])]).toEqual([sa]);
  });

  it('modules get frozen copies: mutating them changes neither engine states nor what the next module sees', () => {
    const { router } = setup();
    const sa = state(A);
    let seen: UserPresenceState[] = [];
    router.register('vandal', cb((states) => {
      try {
        (states as UserPresenceState[]).length = 0;
      } catch {}
      try {
        (states[0] as { state: string }).state = 'busy';
      } catch {}
      return new Map();
    }));
    router.register('observer', cb((states) => {
      seen = [...states];
      return new Map([[R1, new Set(states)]]);
    }));
    const r = router.usersForStates([sa]) as Map<string, Set<UserPresenceState>>;
    expect(sa.state).toBe('online');
    expect(seen.map((s) => [s.userId, s.state])).toEqual([[A, 'online']]);
    expect([...(r.get(R1) ?? [])]).toEqual([sa]);
  });

  it('a non-Set value stops the rest of that callback\'s result; entries before it stay (spec 4.3 step 4)', () => {
    const { router, logger } = setup();
    const sa = state(A);
    router.register('m', cb(() => new Map<string, unknown>([[R1, new Set([sa])], [R2, [sa]], ['@later:hs.test', new Set([sa])]]) as never));
    router.register('n', cb(() => new Map([['@n:hs.test', new Set([sa])]])));
    const r = router.usersForStates([sa]) as Map<string, Set<UserPresenceState>>;
    expect([...r.keys()].sort()).toEqual(['@n:hs.test', R1]);
    expect(logger.warnings().join('\n')).toMatch(/value for @r2:other.test is an array, not a Set/);
    expect(router.stats.invalidResults).toBe(1);
  });

  it('the string "ALL" and frozen-like values are rejected as values (no ALL in this direction, spec 4.4)', () => {
    const { router } = setup();
    const sa = state(A);
    router.register('m', cb(() => ({ [R1]: 'ALL' }) as never));
    expect(router.usersForStates([sa])).toEqual(new Map());
  });

  it('invalid recipient keys are skipped, the rest of the result is kept', () => {
    const { router } = setup();
    const sa = state(A);
    router.register('m', cb(() => ({ 'not-a-user': new Set([sa]), [R1]: new Set([sa]) })));
    expect([...(router.usersForStates([sa]) as Map<string, unknown>).keys()]).toEqual([R1]);
  });

  it('a result that is not a Map or a plain object is skipped with a warning', () => {
    const { router, logger } = setup();
    const sa = state(A);
    router.register('arr', cb(() => [[R1, new Set([sa])]] as never));
    router.register('ok', cb(() => ({ [R2]: new Set([sa]) })));
    expect([...(router.usersForStates([sa]) as Map<string, unknown>).keys()]).toEqual([R2]);
    expect(logger.warnings().join('\n')).toMatch(/arr\.getUsersForStates returned an array/);
  });

  it('a throwing callback is skipped and logged with its module name; the others still count', () => {
    const { router, logger } = setup();
    const sa = state(A);
    router.register('bad', cb(() => {
      throw new Error('kaput');
    }));
    router.register('ok', cb(() => ({ [R1]: new Set([sa]) })));
    expect([...(router.usersForStates([sa]) as Map<string, unknown>).keys()]).toEqual([R1]);
    expect(logger.warnings()[0]).toMatch(/presence router bad\.getUsersForStates threw/);
    expect(router.stats.failures).toBe(1);
  });

  it('stays synchronous when every callback is synchronous', () => {
    const { router } = setup();
    router.register('m', cb(() => new Map()));
    expect(router.usersForStates([state(A)])).not.toBeInstanceOf(Promise);
  });

  it('an async callback that misses its deadline is skipped; the others are merged', async () => {
    const { router, clock, logger } = setup(500);
    const sa = state(A);
    router.register('slow', cb(() => new Promise(() => {})));
    router.register('fast', cb(async () => ({ [R1]: new Set([sa]) })));
    let result: Map<string, Set<UserPresenceState>> | undefined;
    void (router.usersForStates([sa]) as Promise<Map<string, Set<UserPresenceState>>>).then((r) => (result = r));
    await flushMicrotasks();
    expect(result).toBeUndefined();
    await clock.advanceAsync(499);
    expect(result).toBeUndefined();
    await clock.advanceAsync(1);
    expect(result && flat(result)).toEqual({ [R1]: [A] });
    expect(logger.warnings().join('\n')).toMatch(/slow\.getUsersForStates did not answer within 500 ms/);
    expect(router.stats.timeouts).toBe(1);
  });

  it('a rejected promise is skipped like a throw', async () => {
    const { router } = setup();
    const sa = state(A);
    router.register('rej', cb(() => Promise.reject(new Error('nope'))));
    router.register('ok', cb(() => Promise.resolve({ [R1]: new Set([sa]) })));
    const r = await router.usersForStates([sa]);
    expect([...r.keys()]).toEqual([R1]);
    expect(router.stats.failures).toBe(1);
  });
});

describe('getInterestedUsers combination', () => {
  it('no callbacks: empty set', () => {
    const { router } = setup();
    expect(router.interestedUsers(A)).toEqual(new Set());
  });

  it('unions the sets of every callback, dropping entries that are not user ids', () => {
    const { router } = setup();
    router.register('m1', cb(() => new Map(), () => new Set([B])));
    router.register('m2', cb(() => new Map(), () => new Set([C, 'junk', 42 as never])));
    expect(router.interestedUsers(A)).toEqual(new Set([B, C]));
  });

  it('ALL_USERS (the string "ALL") wins and later callbacks are not called', () => {
    const { router } = setup();
    const called: string[] = [];
    router.register('m1', cb(() => new Map(), () => (called.push('m1'), new Set([B]))));
    router.register('m2', cb(() => new Map(), () => (called.push('m2'), 'ALL' as const)));
    router.register('m3', cb(() => new Map(), () => (called.push('m3'), new Set([C]))));
    expect(router.interestedUsers(A)).toBe(ALL_USERS);
    expect(ALL_USERS).toBe('ALL');
    expect(called).toEqual(['m1', 'm2']);
  });

  it('wrong types (arrays, other strings, numbers) are skipped with a warning; throws too', () => {
    const { router, logger } = setup();
    router.register('arr', cb(() => new Map(), () => [B] as never));
    router.register('str', cb(() => new Map(), () => 'all' as never));
    router.register('boom', cb(() => new Map(), () => {
      throw new TypeError('x');
    }));
    router.register('ok', cb(() => new Map(), () => new Set([C])));
    expect(router.interestedUsers(A)).toEqual(new Set([C]));
    expect(logger.warnings()).toHaveLength(3);
  });

  it('async answers are awaited in order, with the deadline applied to each', async () => {
    const { router, clock } = setup(100);
    router.register('slow', cb(() => new Map(), () => new Promise(() => {})));
    router.register('late-ok', cb(() => new Map(), async () => new Set([B])));
    let result: unknown;
    void Promise.resolve(router.interestedUsers(A)).then((r) => (result = r));
    await clock.advanceAsync(100);
    expect(result).toEqual(new Set([B]));
  });
});

describe('hostile values never escape', () => {
  const hostile = (): unknown[] => {
    const noProto = Object.create(null) as object;
    const throwingToString = { toString: () => { throw new Error('no string for you'); } };
    const throwingThen = Object.defineProperty({}, 'then', { get: () => { throw new Error('then getter'); } });
    const throwingProxy = new Proxy({}, { ownKeys: () => { throw new Error('ownKeys'); }, getPrototypeOf: () => { throw new Error('proto'); } });
    class EvilMap extends Map<unknown, unknown> {
      override entries(): never {
        throw new Error('entries');
      }
    }
    class EvilSet extends Set<unknown> {
      override [Symbol.iterator](): never {
        throw new Error('iterate');
      }
    }
    return [noProto, throwingToString, throwingThen, throwingProxy, new EvilMap([[R1, new Set()]]), new EvilSet([1]), new Map([[R1, new EvilSet([1])]])];
  };

  it('as return values, thrown values and rejection reasons, in both callbacks', async () => {
    for (const bad of hostile()) {
      for (const mode of ['return', 'throw', 'reject'] as const) {
        const { router } = setup();
        const sa = state(A);
        const act = () => {
          if (mode === 'throw') throw bad;
          if (mode === 'reject') return Promise.reject(bad) as never;
          return bad as never;
        };
        router.register('evil', cb(act, act));
        router.register('good', cb(() => ({ [R1]: new Set([sa]) }), () => new Set([B])));
        const routed = await router.usersForStates([sa]);
        expect([...routed.keys()]).toEqual([R1]);
        expect(await router.interestedUsers(A)).toEqual(new Set([B]));
      }
    }
  });
});

describe('deadline on the push path (presence.router_timeout)', () => {
  it('a module that never answers delays routed deliveries by at most the deadline and never shared-room ones', async () => {
    const { engine, clock, logger } = createTestEngine({ serverName: 'hs.test', config: { presence: { router_timeout: '100ms' } }, rooms: { '!r:hs.test': [A, B] } });
    createModuleApi(engine, 'stuck').registerPresenceRouterCallbacks({ getUsersForStates: () => new Promise(() => {}), getInterestedUsers: () => new Promise(() => {}) });
    createModuleApi(engine, 'fine').registerPresenceRouterCallbacks({
      getUsersForStates: (states) => new Map([[C, new Set(states)]]),
      getInterestedUsers: (u) => (u === C ? ALL_USERS : new Set<string>()),
    });
    const b = recordSyncStream(engine, B);
    const c = recordSyncStream(engine, C);
    await clock.advanceAsync(100); // C's interest: the stuck module times out, the other says ALL
    engine.setPresence(A, { presence: 'online' });
    expect([...b.view().keys()]).toEqual([A]); // shared room: same turn
    await clock.advanceAsync(99);
    expect(c.batches).toEqual([]);
    await clock.advanceAsync(1);
    expect([...c.view().keys()]).toEqual([A]);
    expect(logger.warnings().filter((w) => w.includes('stuck.getUsersForStates did not answer within 100 ms'))).toHaveLength(1);
  });
});

describe('per-module counters (router.stats.modules)', () => {
  it('counts calls, failures, timeouts, invalid results and answer time per module; totals are their sums', async () => {
    const { router, clock } = setup(500);
    const sa = state(A);
    router.register('thrower', cb(() => {
      throw new Error('kaput');
    }));
    router.register('bogus', cb(() => 42 as never, () => 'nope' as never));
    router.register('slow', cb(() => new Promise(() => {})));
    router.register('timed', cb(
      () => new Promise((resolve) => clock.setTimer(120, () => resolve({ [R1]: new Set([sa]) }))),
      () => new Set([R1]),
    ));
    const routed = router.usersForStates([sa]) as Promise<unknown>;
    await clock.advanceAsync(500, 10);
    await routed;
    await router.interestedUsers(A);
    const m = (name: string) => router.stats.modules.get(name);
    expect(m('thrower')).toEqual({ calls: 2, failures: 1, timeouts: 0, invalidResults: 0, totalMs: 0 });
    expect(m('bogus')).toEqual({ calls: 2, failures: 0, timeouts: 0, invalidResults: 2, totalMs: 0 });
    expect(m('slow')).toMatchObject({ calls: 2, failures: 0, timeouts: 1, invalidResults: 0 });
    expect(m('timed')).toEqual({ calls: 2, failures: 0, timeouts: 0, invalidResults: 0, totalMs: 120 });
    for (const key of ['calls', 'failures', 'timeouts', 'invalidResults', 'totalMs'] as const) {
      expect(router.stats[key], key).toBe([...router.stats.modules.values()].reduce((sum, s) => sum + s[key], 0));
    }
  });

  it('a module name registered twice shares one entry', () => {
    const { router } = setup();
    router.register('twice', cb(() => new Map()));
    router.register('twice', cb(() => new Map()));
    router.usersForStates([state(A)]);
    expect([...router.stats.modules.keys()]).toEqual(['twice']);
    expect(router.stats.modules.get('twice')?.calls).toBe(2);
  });
});
