/**
 * Properties of routing through presence modules (fast-check, fixed seed via
 * test/support/fc.ts): push view equals pull view, ALL_USERS semantics,
 * deduplication, isolation from misbehaving modules.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PresenceRouterCallbacks } from '../../src/index.js';
import { fcParams } from '../support/fc.js';
import { callbacksFor, expectedInterest, pull, ROUTER_TIMEOUT, routingSpecArb, runOps, startWorld, viewOf, worldArb, type World } from './world.js';

describe('router properties', () => {
  it('push view equals pull view for every listener (sync and async modules)', async () => {
    await fc.assert(
      fc.asyncProperty(worldArb(), async (world) => {
        const r = await startWorld(world, world.modules.map(callbacksFor));
        await runOps(r, world.ops);
        for (const l of world.listeners) {
          const pushed = viewOf(r.streams.get(l)?.view().values() ?? []);
          const pulled = viewOf(await pull(r, l));
          expect(pushed, `listener ${l}`).toEqual(pulled);
        }
        r.engine.stop();
      }),
      fcParams(100),
    );
  });

  it('ALL_USERS listeners get exactly what the router routes to them: no shared-room users, not themselves unless routed', async () => {
    const withAll = fc.array(routingSpecArb, { minLength: 1, maxLength: 3 }).filter((ms) => ms.some((m) => m.all.length > 0));
    await fc.assert(
      fc.asyncProperty(worldArb(withAll), async (world) => {
        const r = await startWorld(world, world.modules.map(callbacksFor));
        await runOps(r, world.ops);
        for (const l of world.listeners) {
          const { all, sources } = expectedInterest(world.modules, l);
          const pushed = [...(r.streams.get(l)?.view().keys() ?? [])].sort();
          const expectedUsers = [...r.changed].filter((u) => (all ? sources.has(u) : false)).sort();
          if (all) {
            expect(pushed, `ALL listener ${l}`).toEqual(expectedUsers);
            expect((await pull(r, l)).map((s) => s.userId).sort()).toEqual(expectedUsers);
          } else {
            // Interested users are delivered on top of shared rooms and self.
            for (const u of r.changed) if (sources.has(u)) expect(pushed, `listener ${l} is interested in ${u}`).toContain(u);
          }
        }
        r.engine.stop();
      }),
      fcParams(100),
    );
  });

  it('one delivery per (recipient, changed user) per batch, however many paths lead there', async () => {
    // Overlap on purpose: every listener shares every room with everyone and is also routed everyone.
    const overlapping = worldArb().map((w): World => ({
      ...w,
      joins: [...w.joins, ...w.listeners.flatMap((l) => ['!k0:hs.test', '!k1:hs.test'].map((room) => [room, l] as const))],
      modules: [...w.modules, { routes: w.listeners.map((l) => [l, ['@u0:hs.test', '@u1:hs.test', '@r0:remote.test', l]] as const), all: [], async: false }],
    }));
    await fc.assert(
      fc.asyncProperty(overlapping, async (world) => {
        const r = await startWorld(world, world.modules.map(callbacksFor));
        await runOps(r, world.ops);
        for (const l of world.listeners) {
          for (const batch of r.streams.get(l)?.batches ?? []) {
            const ids = batch.events.map((s) => s.userId);
            expect(new Set(ids).size, `batch for ${l}: ${ids.join(', ')}`).toBe(ids.length);
          }
        }
        r.engine.stop();
      }),
      fcParams(100),
    );
  });

  it('misbehaving modules (garbage returned, thrown, rejected, or no answer) never change what the others route', async () => {
    // Hostile values are built when the module is called (fast-check only sees their names, so it can print them).
    const hostile = fc.constantFrom(...HOSTILE_KINDS).map((kind) => new Hostile(kind));
    const anything = fc.anything({ withMap: true, withSet: true, withBigInt: true, withDate: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true });
    const garbage = fc.oneof(anything, hostile);
    // A Set of strings or "ALL" would be a valid interest answer, not garbage.
    const interestGarbage = fc.oneof(anything.filter((v) => v !== 'ALL' && !(v instanceof Set)), hostile);
    const behaviour = <T>(value: fc.Arbitrary<T>) =>
      fc.record({ mode: fc.constantFrom('return', 'throw', 'resolve', 'reject', 'never'), value });
    const garbageModule = fc.record({ forStates: behaviour(garbage), interested: behaviour(interestGarbage), at: fc.nat() });
    await fc.assert(
      fc.asyncProperty(worldArb(), fc.array(garbageModule, { minLength: 1, maxLength: 3 }), async (world, bad) => {
        const good = world.modules.map(callbacksFor);
        const mixed: PresenceRouterCallbacks[] = [...good];
        for (const b of bad) {
          mixed.splice(b.at % (mixed.length + 1), 0, {
            getUsersForStates: act(b.forStates) as PresenceRouterCallbacks['getUsersForStates'],
            getInterestedUsers: act(b.interested) as PresenceRouterCallbacks['getInterestedUsers'],
          });
        }
        // Presence timers are pushed out of reach, so the extra time the deadlines take changes nothing else.
        const clean = await startWorld(world, good, { quietTimers: true });
        const dirty = await startWorld(world, mixed, { quietTimers: true });
        await runOps(clean, world.ops, ROUTER_TIMEOUT);
        await runOps(dirty, world.ops, ROUTER_TIMEOUT);
        for (const l of world.listeners) {
          expect(viewOf(dirty.streams.get(l)?.view().values() ?? []), `push ${l}`).toEqual(viewOf(clean.streams.get(l)?.view().values() ?? []));
        }
        for (const l of world.listeners) {
          expect(viewOf(await pull(dirty, l, ROUTER_TIMEOUT)), `pull ${l}`).toEqual(viewOf(await pull(clean, l, ROUTER_TIMEOUT)));
        }
        clean.engine.stop();
        dirty.engine.stop();
      }),
      fcParams(60),
    );
  });
});

const HOSTILE_KINDS = ['noProto', 'throwingToString', 'throwingThen', 'flipThen', 'proxy', 'evilMap', 'evilSet', 'mapOfEvilSets'] as const;

/** A named hostile value, built on use. */
class Hostile {
  constructor(readonly kind: (typeof HOSTILE_KINDS)[number]) {}
  toString(): string {
    return `Hostile(${this.kind})`;
  }
}

function act(b: { mode: string; value: unknown }): () => unknown {
  return () => {
    const value = b.value instanceof Hostile ? makeHostile(b.value.kind) : b.value;
    switch (b.mode) {
      case 'throw':
        throw value;
      case 'resolve':
        return Promise.resolve(value);
      case 'reject':
        return Promise.reject(value);
      case 'never':
        return new Promise(() => {});
      default:
        return value;
    }
  };
}

function makeHostile(kind: string): unknown {
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
  switch (kind) {
    case 'noProto':
      return Object.create(null) as object;
    case 'throwingToString':
      return { toString: () => { throw new Error('toString'); } };
    case 'throwingThen':
      return Object.defineProperty({}, 'then', { get: () => { throw new Error('then'); } });
    case 'flipThen': {
      // Not a thenable the first time `then` is read; throws every time after.
      let reads = 0;
      return Object.defineProperty({}, 'then', {
        get: () => {
          if (reads++ > 0) throw new Error('then, again');
          return undefined;
        },
      });
    }
    case 'proxy':
      return new Proxy({}, { ownKeys: () => { throw new Error('ownKeys'); }, getPrototypeOf: () => { throw new Error('proto'); }, get: () => { throw new Error('get'); } });
    case 'evilMap':
      return new EvilMap([['@u0:hs.test', new Set()]]);
    case 'evilSet':
      return new EvilSet(['@u0:hs.test']);
    default:
      return new Map([['@u0:hs.test', new EvilSet([1])]]);
  }
}
