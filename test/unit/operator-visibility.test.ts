/**
 * The operator policy callback `getVisibility(viewer, target)` (docs/policies.md):
 * it can only hide, on push, pull, `GET /presence` and federation (asked with
 * the server name); async answers mask until they land, then the truth is
 * re-delivered; failures and late answers have no opinion (the router's
 * isolation rules); answers are cached until the TTL or `invalidateVisibility`.
 */
import { describe, expect, it } from 'vitest';
import { createModuleApi, isPresenceError, type FederationTransmission, type UserId } from '../../src/index.js';
import { createTestEngine, flushMicrotasks, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';

const HS = 'hs.org';
const A = '@alice:hs.org' as UserId;
const B = '@bob:hs.org' as UserId;
const C = '@carol:hs.org' as UserId;
const R = '@rita:one.org' as UserId;
const S = '@sam:two.org' as UserId;
const ROOM = '!room:hs.org';

function world() {
  const clock = new SimulatedClock();
  const { engine, logger } = createTestEngine({ serverName: HS, clock, config: { presence: { router_timeout: '1s', visibility_cache_ttl: '60s' } } });
  for (const u of [A, B, C, R, S]) engine.joinRoom(ROOM, u);
  const sent: FederationTransmission[] = [];
  engine.federationOutbound$.subscribe((t) => sent.push(t));
  const lastSent = (server: string) => {
    let p: string | undefined;
    for (const t of sent) if (t.destination === server) for (const e of t.edus) for (const i of e.content.push) if (i.user_id === A) p = i.presence;
    return p;
  };
  return { clock, engine, logger, lastSent };
}

/** Alice is hidden from Bob and from two.org. */
const hideAlice = (viewer: string, target: string) => !(target === A && (viewer === B || viewer === 'two.org'));

describe('getVisibility', () => {
  it('a synchronous callback hides on push, pull, GET and federation; the target and others see the truth', async () => {
    const { engine, lastSent } = world();
    const asked: string[] = [];
    createModuleApi(engine, 'hr').registerPresencePolicyCallbacks({
      getVisibility: (viewer, target) => {
        asked.push(`${viewer}→${target}`);
        return hideAlice(viewer, target);
      },
    });
    const bob = recordSyncStream(engine, B);
    const carol = recordSyncStream(engine, C);
    const own = recordSyncStream(engine, A);
    engine.setPresence(A, { presence: 'online', statusMsg: 'hi' });
    expect(bob.view().get(A)).toMatchObject({ state: 'offline', statusMsg: null, lastActiveTs: 0 });
    expect(carol.view().get(A)).toMatchObject({ state: 'online', statusMsg: 'hi' });
    expect(own.view().get(A)?.state).toBe('online');
    expect((await engine.getNewEvents(B, 0)).events.find((s) => s.userId === A)?.state).toBe('offline');
    expect((await engine.getNewEvents(C, 0)).events.find((s) => s.userId === A)?.state).toBe('online');
    expect(engine.getPresence(B, A).presence).toBe('offline');
    expect(lastSent('two.org')).toBe('offline');
    expect(lastSent('one.org')).toBe('online');
    expect(asked).not.toContain(`${A}→${A}`); // never asked about the user's own view
    expect(asked.some((a) => a.endsWith(R) || a.endsWith(S))).toBe(false); // only local targets are asked about
    expect(asked).toContain(`two.org→${A}`); // federation asks with the server name
  });

  it('only hides: a visible answer grants nothing rooms do not', () => {
    const { engine } = world();
    createModuleApi(engine, 'open').registerPresencePolicyCallbacks({ getVisibility: () => true });
    expect(() => engine.getPresence('@dave:hs.org', A)).toThrow(/share no joined room/);
  });

  it('an async answer masks until it lands, then the truth is delivered; a pull waits for it', async () => {
    const { clock, engine, lastSent } = world();
    createModuleApi(engine, 'slow').registerPresencePolicyCallbacks({
      getVisibility: (viewer, target) => new Promise<boolean>((resolve) => clock.setTimer(100, () => resolve(viewer !== B || target !== A))),
    });
    const carol = recordSyncStream(engine, C);
    const bob = recordSyncStream(engine, B);
    engine.setPresence(A, { presence: 'online' });
    expect(carol.view().get(A)?.state).toBe('offline'); // pending: masked
    expect(lastSent('one.org')).toBe('offline');
    await clock.advanceAsync(100);
    await flushMicrotasks(20);
    expect(carol.view().get(A)?.state).toBe('online');
    expect(bob.view().get(A)?.state).toBe('offline');
    expect(lastSent('one.org')).toBe('online');
    // a fresh pair: the pull waits for the answer
    engine.setPresence(C, { presence: 'online' });
    const read = engine.getNewEvents(B, 0);
    await clock.advanceAsync(100);
    expect((await read).events.find((s) => s.userId === C)?.state).toBe('online');
  });

  it('a callback that throws, answers late or answers a non-boolean has no opinion; another module still hides', async () => {
    const { clock, engine, logger } = world();
    createModuleApi(engine, 'throws').registerPresencePolicyCallbacks({
      getVisibility: () => {
        throw new Error('boom');
      },
    });
    createModuleApi(engine, 'odd').registerPresencePolicyCallbacks({ getVisibility: () => 'no' as unknown as boolean });
    createModuleApi(engine, 'never').registerPresencePolicyCallbacks({ getVisibility: () => new Promise<boolean>(() => {}) });
    createModuleApi(engine, 'hr').registerPresencePolicyCallbacks({ getVisibility: hideAlice });
    const carol = recordSyncStream(engine, C);
    const bob = recordSyncStream(engine, B);
    engine.setPresence(A, { presence: 'online' });
    await clock.advanceAsync(1_000);
    await flushMicrotasks(20);
    expect(carol.view().get(A)?.state).toBe('online');
    expect(bob.view().get(A)?.state).toBe('offline');
    const stats = engine.router.stats.modules;
    expect(stats.get('throws')?.failures).toBeGreaterThan(0);
    expect(stats.get('odd')?.invalidResults).toBeGreaterThan(0);
    expect(stats.get('never')?.timeouts).toBeGreaterThan(0);
    expect(logger.warnings().some((m) => m.includes('throws.getVisibility threw'))).toBe(true);
  });

  it('answers are cached for the TTL and asked again after it or after invalidateVisibility', () => {
    const { clock, engine } = world();
    let calls = 0;
    let hide = true;
    const api = createModuleApi(engine, 'hr');
    api.registerPresencePolicyCallbacks({
      getVisibility: () => {
        calls++;
        return !hide;
      },
    });
    expect(engine.getPresence(B, A).presence).toBe('offline');
    expect(engine.getPresence(B, A).presence).toBe('offline');
    expect(calls).toBe(1);
    hide = false;
    expect(engine.getPresence(B, A).presence).toBe('offline'); // cached
    api.invalidateVisibility();
    expect(engine.getPresence(B, A).presence).toBe('offline'); // alice is offline anyway: asked again, visible
    expect(calls).toBe(2);
    hide = true;
    clock.advance(60_000);
    engine.getPresence(B, A);
    expect(calls).toBe(3);
  });

  it('the module API refuses a registration without a function', () => {
    const { engine } = world();
    let thrown: unknown;
    try {
      createModuleApi(engine, 'bad').registerPresencePolicyCallbacks({} as never);
    } catch (e) {
      thrown = e;
    }
    expect(isPresenceError(thrown) && thrown.code === 'MODULE').toBe(true);
  });
});
