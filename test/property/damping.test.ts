/**
 * Flap damping (docs/policies.md): two engines driven by the same inputs on
 * one simulated clock, one with `presence.damping`, one without.
 * - the user's own view never changes: after every input, each local user's
 *   own stream shows themself exactly as the undamped engine's does;
 * - damping never loses the final state: after quiet, every stream, every
 *   pull (from token 0 and initial) and the last federation send of each
 *   user equal the undamped engine's, which are the truth;
 * - replay with damping equals live (records and stream token);
 * - the first online and explicit PUTs are never delayed; a held drop is
 *   shown after the hold-down, and a server joining meanwhile is sent the
 *   state others are shown (unit cases).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, PresenceEngine, presenceConfig, type FederationTransmission, type UserId } from '../../src/index.js';
import { createTestEngine, InMemoryEventLog, MemoryLogger, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { clientCommand, commands, Driver, LOCAL_USERS, notified, observable, PROPERTY_CONFIG, ROOMS, ALL_USERS_IN_TEST, type Command } from './engine-commands.js';

const DAMPING = { hold_down: '10s', max_transitions: 3, window: '60s' };
const dampedConfig = { ...PROPERTY_CONFIG, presence: { ...PROPERTY_CONFIG.presence, damping: DAMPING } };

/** Flapping-heavy inputs: syncs and PUTs with small time steps, plus everything else. */
const flapCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: clientCommand },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('syncStart' as const), user: fc.constantFrom(...LOCAL_USERS), device: fc.constantFrom(undefined, 'D1'), setPresence: fc.constantFrom('online' as const, 'unavailable' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('syncEnd' as const), pick: fc.nat(20) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 15_000 }) }) },
);

function twin(log = new InMemoryEventLog()) {
  const clock = new SimulatedClock();
  const damped = createTestEngine({ clock, log, config: dampedConfig }).engine;
  const plain = createTestEngine({ clock, config: PROPERTY_CONFIG }).engine;
  const sides = [damped, plain].map((engine) => {
    const sent = new Map<string, Record<string, unknown>>();
    engine.federationOutbound$.subscribe((t: FederationTransmission) => {
      for (const e of t.edus) for (const p of e.content.push) sent.set(`${t.destination} ${p.user_id}`, { presence: p.presence, status_msg: p.status_msg ?? null });
    });
    for (const u of ALL_USERS_IN_TEST) engine.joinRoom(ROOMS[0], u);
    const streams = new Map(LOCAL_USERS.map((u) => [u, recordSyncStream(engine, u)] as const));
    return { engine, driver: new Driver(engine, clock), sent, streams };
  });
  return { clock, log, damped: sides[0] as (typeof sides)[number], plain: sides[1] as (typeof sides)[number] };
}

type Side = ReturnType<typeof twin>['damped'];

function apply(t: ReturnType<typeof twin>, c: Command): void {
  if (c.kind === 'advance') return t.clock.advance(c.ms);
  for (const side of [t.damped, t.plain]) side.driver.apply(c);
}

/** What each stream shows of the users its viewer can still see (a viewer who left a room keeps a stale view, damped or not). */
const views = (side: Side) =>
  Object.fromEntries(
    [...side.streams].map(([v, rec]) => [
      v,
      Object.fromEntries([...rec.view()].filter(([u]) => u === v || side.engine.shareRoom(v as UserId, u)).map(([u, s]) => [u, notified(s)])),
    ]),
  );

async function pulls(side: Side) {
  const out: Record<string, unknown> = {};
  for (const v of LOCAL_USERS) {
    for (const since of [0, null]) {
      const r = await side.engine.getNewEvents(v, since);
      out[`${v} ${since}`] = Object.fromEntries(r.events.map((s) => [s.userId, notified(s)]));
    }
  }
  return out;
}

const REMOTE_OF: Readonly<Record<string, string>> = { 'remote.example': '@r:remote.example', 'other.example': '@s:other.example' };

function stillShares(side: Side, key: string): boolean {
  const [server, user] = key.split(' ') as [string, string];
  const remote = REMOTE_OF[server];
  return remote !== undefined && side.engine.shareRoom(user as UserId, remote as UserId);
}

/** No input for long enough that every timer has fired and every hold has ended. */
function quiet(t: ReturnType<typeof twin>): void {
  for (const side of [t.damped, t.plain]) side.driver.endAll();
  for (let k = 0; k < 80; k++) t.clock.advance(50_000);
}

describe('flap damping', () => {
  it("never changes a user's own view, and after quiet everyone sees what they would without damping", async () => {
    await fc.assert(
      fc.asyncProperty(commands(flapCommand, 80), async (cmds) => {
        const t = twin();
        try {
          for (const c of cmds) {
            apply(t, c);
            for (const u of LOCAL_USERS) {
              const own = (side: Side) => notified(side.streams.get(u)?.view().get(u as UserId));
              expect(own(t.damped), `own view of ${u} after ${JSON.stringify(c)}`).toEqual(own(t.plain));
            }
          }
          quiet(t);
          expect(views(t.damped)).toEqual(views(t.plain));
          for (const [v, rec] of t.damped.streams)
            for (const [u, s] of rec.view())
              if (u === v || t.damped.engine.shareRoom(v as UserId, u)) expect(notified(s), `${v} sees ${u}`).toEqual(notified(t.damped.engine.getUserPresence(u)));
          expect(await pulls(t.damped)).toEqual(await pulls(t.plain));
          // the last send to each server that still shares a room with the user (one that left keeps a stale state, damped or not)
          const current = (side: Side) => Object.fromEntries([...side.sent].filter(([key]) => stillShares(side, key)));
          expect(current(t.damped)).toEqual(current(t.plain));
        } finally {
          t.damped.engine.stop();
          t.plain.engine.stop();
        }
      }),
      fcParams(60),
    );
  }, 120_000);

  it('replay of a damped engine equals the live engine (records and token)', () => {
    fc.assert(
      fc.property(commands(flapCommand, 60), (cmds) => {
        const t = twin();
        for (const c of cmds) apply(t, c);
        const replayed = new PresenceEngine({ config: t.damped.engine.config, clock: t.clock, log: t.log, logger: new MemoryLogger() });
        expect(observable(replayed)).toEqual(observable(t.damped.engine));
        for (const e of [replayed, t.damped.engine, t.plain.engine]) e.stop();
      }),
      fcParams(60),
    );
  });
});

describe('flap damping rules', () => {
  const A = '@a:test.local';
  const B = '@b:test.local';
  const R = '@r:remote.example';

  function setup() {
    const clock = new SimulatedClock();
    const { engine } = createTestEngine({ clock, config: dampedConfig, rooms: { [ROOMS[0]]: [A, B] } });
    const sent: { dest: string; presence: string | undefined; user: string | undefined }[] = [];
    engine.federationOutbound$.subscribe((t) => {
      for (const e of t.edus) for (const p of e.content.push) sent.push({ dest: t.destination, presence: p.presence, user: p.user_id });
    });
    return { clock, engine, sent, bob: recordSyncStream(engine, B), own: recordSyncStream(engine, A) };
  }

  it('shows the first online at once, holds a drop for the hold-down, and shows the truth after it', () => {
    const { clock, engine, bob, own } = setup();
    engine.userSyncing(A, { setPresence: 'online' });
    expect(bob.view().get(A as UserId)?.state).toBe('online');
    engine.userSyncing(A, { setPresence: 'unavailable' }); // the app went to the background: a drop
    expect(engine.getUserPresence(A).state).toBe('unavailable');
    expect(own.view().get(A as UserId)?.state).toBe('unavailable');
    expect(bob.view().get(A as UserId)?.state).toBe('online');
    expect(engine.getPresence(B, A).presence).toBe('online');
    clock.advance(9_000);
    expect(bob.view().get(A as UserId)?.state).toBe('online');
    clock.advance(2_000);
    expect(bob.view().get(A as UserId)?.state).toBe('unavailable');
    expect(engine.getPresence(B, A).presence).toBe('unavailable');
    expect(engine.dampingStats?.released).toBe(1);
  });

  it('shows the first online after a quiet window at once', () => {
    const { clock, engine, bob } = setup();
    engine.setPresence(A, { presence: 'online' });
    engine.setPresence(A, { presence: 'offline' });
    clock.advance(120_000);
    engine.userSyncing(A, { setPresence: 'online' }); // not explicit: a sync
    expect(bob.view().get(A as UserId)?.state).toBe('online');
  });

  it('never delays an explicit PUT', () => {
    const { engine, bob } = setup();
    engine.setPresence(A, { presence: 'online' });
    engine.setPresence(A, { presence: 'offline' });
    expect(bob.view().get(A as UserId)?.state).toBe('offline');
    engine.setPresence(A, { presence: 'unavailable' });
    expect(bob.view().get(A as UserId)?.state).toBe('unavailable');
  });

  it('a server that joins during a hold is sent what others are shown, then the truth after the hold', () => {
    const { clock, engine, sent } = setup();
    const s = engine.userSyncing(A, { setPresence: 'online' });
    s.end();
    clock.advance(40_000); // drop to offline, held
    expect(engine.getUserPresence(A).state).toBe('offline');
    engine.joinRoom(ROOMS[0], R);
    expect(sent.filter((x) => x.user === A).at(-1)?.presence).toBe('online');
    clock.advance(10_000);
    expect(sent.filter((x) => x.user === A).at(-1)?.presence).toBe('offline');
  });
});

describe('presence.damping config', () => {
  it('parses durations with defaults and names a bad key', () => {
    expect(presenceConfig('hs.org', { presence: { damping: {} } }).damping).toEqual({ holdDownMs: 10_000, maxTransitions: 6, windowMs: 60_000 });
    expect(presenceConfig('hs.org').damping).toBeUndefined();
    expect(() => presenceConfig('hs.org', { presence: { damping: { max_transitions: 0 } } })).toThrow(ConfigError);
    expect(() => presenceConfig('hs.org', { presence: { damping: { window: 0 } } })).toThrow(/presence\.damping\.window/);
    expect(() => presenceConfig('hs.org', { presence: { damping: { hold: '10s' } } })).toThrow(/hold/);
  });
});
