/**
 * Device ids named like `Object.prototype` members (`constructor`, `toString`,
 * `valueOf`, `__proto__`, …) behave exactly like any other device id through
 * the public engine API, live and after replay (issue 19, defect 2). Clients
 * choose their own device ids, so a plain-object lookup by such an id used to
 * find the inherited member: the user never went offline.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, PresenceEngine, type EngineSnapshot, type UserRecord } from '../../src/index.js';
import { createTestEngine, InMemoryEventLog, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { PROTOTYPE_NAMES } from './fuzz-runs.js';

const USER = '@alice:test.local';
const OTHER = '@bob:test.local';

type Op =
  | { kind: 'syncStart'; dev: 0 | 1; presence: 'online' | 'unavailable' }
  | { kind: 'syncEnd' }
  | { kind: 'set'; dev: 0 | 1; presence: 'online' | 'unavailable' | 'offline' }
  | { kind: 'bump'; dev: 0 | 1 }
  | { kind: 'advance'; ms: number };

const dev = fc.constantFrom<0 | 1>(0, 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('syncStart' as const), dev, presence: fc.constantFrom('online' as const, 'unavailable' as const) }),
  fc.record({ kind: fc.constant('syncEnd' as const) }),
  fc.record({ kind: fc.constant('set' as const), dev, presence: fc.constantFrom('online' as const, 'unavailable' as const, 'offline' as const) }),
  fc.record({ kind: fc.constant('bump' as const), dev }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 400_000 }) }),
);

/** The record with device ids renamed by `rename` (to compare a run under other names). */
function renamed(r: UserRecord, rename: (id: string) => string): unknown {
  const map = (m: Readonly<Record<string, unknown>>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [rename(k), v]).sort(([a], [b]) => String(a).localeCompare(String(b))));
  return { presence: r.presence, devices: map(r.devices), syncs: map(r.syncs) };
}

/** Run `ops` with the two device ids `ids`; the record after every op, renamed to d0/d1, and the log. */
function run(ids: readonly [string, string], ops: readonly Op[]): { trace: unknown[]; log: InMemoryEventLog; engine: PresenceEngine; clock: SimulatedClock } {
  const clock = new SimulatedClock();
  const log = new InMemoryEventLog();
  const { engine } = createTestEngine({ clock, log, rooms: { '!r:test.local': [USER, OTHER] } });
  const rename = (id: string) => (id === ids[0] ? 'd0' : id === ids[1] ? 'd1' : `?${id}`);
  const open: { end(): void }[] = [];
  const trace: unknown[] = [];
  for (const op of ops) {
    if (op.kind === 'syncStart') open.push(engine.userSyncing(USER, { deviceId: ids[op.dev], setPresence: op.presence }));
    else if (op.kind === 'syncEnd') open.shift()?.end();
    else if (op.kind === 'set') engine.setPresence(USER, { presence: op.presence, deviceId: ids[op.dev] });
    else if (op.kind === 'bump') engine.bumpActive(USER, ids[op.dev]);
    else clock.advance(op.ms);
    trace.push(renamed(engine.getUserRecord(USER), rename));
  }
  // Every sync ends and time passes: the user must go offline, whatever the device ids.
  for (const h of open) h.end();
  clock.advance(3_600_000 * 2);
  trace.push(renamed(engine.getUserRecord(USER), rename));
  return { trace, log, engine, clock };
}

const hostileId = fc.constantFrom(...PROTOTYPE_NAMES.filter((n) => n !== '__proto__'));

describe('device ids named like Object.prototype members', () => {
  it('behave like ordinary ids, live and after replay (snapshot and log), and the user goes offline', () => {
    fc.assert(
      fc.property(hostileId, fc.oneof(hostileId, fc.constant('PLAIN2')), fc.array(opArb, { maxLength: 25 }), (a, b, ops) => {
        fc.pre(a !== b);
        const hostile = run([a, b], ops);
        const plain = run(['PLAIN0', 'PLAIN1'], ops);
        expect(hostile.trace).toEqual(plain.trace);
        expect(hostile.engine.getUserPresence(USER).state).toBe('offline');
        // Replay: a fresh engine over the same log, and one from a JSON snapshot taken now plus an empty tail.
        const rename = (id: string) => (id === a ? 'd0' : id === b ? 'd1' : `?${id}`);
        const live = renamed(hostile.engine.getUserRecord(USER), rename);
        const replayed = new PresenceEngine({ config: hostile.engine.config, clock: hostile.clock, log: hostile.log, logger: new MemoryLogger() });
        expect(renamed(replayed.getUserRecord(USER), rename)).toEqual(live);
        const snap = JSON.parse(JSON.stringify(hostile.engine.snapshot())) as EngineSnapshot;
        const fromSnap = new PresenceEngine({
          config: hostile.engine.config,
          clock: hostile.clock,
          log: new InMemoryEventLog(snap.position),
          snapshot: snap,
          logger: new MemoryLogger(),
        });
        expect(renamed(fromSnap.getUserRecord(USER), rename)).toEqual(live);
        for (const e of [hostile.engine, plain.engine, replayed, fromSnap]) e.stop();
      }),
      fcParams(150),
    );
  });

  it('a snapshot taken mid-way (open devices) replays to the same record and times out the same', () => {
    for (const name of PROTOTYPE_NAMES.filter((n) => n !== '__proto__')) {
      const clock = new SimulatedClock();
      const log = new InMemoryEventLog();
      const { engine } = createTestEngine({ clock, log });
      const h = engine.userSyncing(USER, { deviceId: name });
      engine.setPresence(USER, { presence: 'online', deviceId: 'plain' });
      h.end();
      const snap = JSON.parse(JSON.stringify(engine.snapshot())) as EngineSnapshot;
      const restored = new PresenceEngine({ config: engine.config, clock, log: new InMemoryEventLog(snap.position), snapshot: snap, logger: new MemoryLogger() });
      const again = new PresenceEngine({ config: engine.config, clock, log, logger: new MemoryLogger() });
      for (const e of [engine, restored, again]) {
        expect(e.getUserRecord(USER)).toEqual(engine.getUserRecord(USER));
      }
      clock.advance(7_200_000);
      for (const e of [engine, restored, again]) expect(e.getUserPresence(USER).state, name).toBe('offline');
      for (const e of [engine, restored, again]) e.stop();
    }
  });

  it('"__proto__" is refused with InvalidInputError naming deviceId, and changes nothing', () => {
    const { engine } = createTestEngine();
    const before = JSON.stringify(engine.snapshot());
    for (const call of [
      () => engine.userSyncing(USER, { deviceId: '__proto__' }),
      () => engine.setPresence(USER, { presence: 'online', deviceId: '__proto__' }),
      () => engine.bumpActive(USER, '__proto__'),
    ]) {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(InvalidInputError);
      expect((caught as InvalidInputError).field).toBe('deviceId');
    }
    expect(JSON.stringify(engine.snapshot())).toBe(before);
    engine.stop();
  });
});
