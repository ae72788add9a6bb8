import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, InMemoryEventLog, LogError, PresenceEngine, parseConfig, parseConfigYaml } from '../../src/index.js';
import type { PresenceEvent } from '../../src/domain/events.js';
import type { UserId } from '../../src/domain/ids.js';
import { MemoryLogger, SimulatedClock } from '../../src/testing/index.js';

const step = (n: number): PresenceEvent => ({ type: 'user.step', userId: `@u${n}:test.local` as UserId, at: n });
const events = (from: number, count: number) => Array.from({ length: count }, (_, k) => step(from + k));
const positions = (log: InMemoryEventLog, after: number) => [...log.read(after)].map((e) => e.position);

describe('the in-memory log', () => {
  it('keeps every entry without retain, numbered after its base', () => {
    const log = new InMemoryEventLog(10);
    log.append(events(0, 3));
    log.append(events(3, 2));
    expect(log.position).toBe(15);
    expect(positions(log, 10)).toEqual([11, 12, 13, 14, 15]);
    expect(positions(log, 13)).toEqual([14, 15]);
    expect(() => [...log.read(9)]).toThrow(/starts after position 10/);
  });

  it('a read can be iterated again: each iteration starts from its `after` and sees entries appended since', () => {
    const log = new InMemoryEventLog();
    log.append(events(0, 3));
    const reading = log.read(1);
    expect([...reading].map((e) => e.position)).toEqual([2, 3]);
    log.append(events(3, 1));
    expect([...reading].map((e) => e.position)).toEqual([2, 3, 4]);
    const tooOld = new InMemoryEventLog(5).read(2);
    expect(() => [...tooOld]).toThrow(/starts after position 5/); // checked when iterated, not when `read` is called
  });

  it('with retain, keeps exactly the newest entries readable and says how to read further back', () => {
    const log = new InMemoryEventLog(0, { retain: 4 });
    for (let k = 0; k < 5; k++) log.append(events(3 * k, 3));
    expect(log.position).toBe(15);
    expect(log.firstReadable).toBe(11);
    expect(positions(log, 11)).toEqual([12, 13, 14, 15]);
    expect([...log.read(11)].map((e) => (e.event.type === 'user.step' ? e.event.at : -1))).toEqual([11, 12, 13, 14]);
    expect(() => [...log.read(10)]).toThrow(LogError);
    expect(() => [...log.read(10)]).toThrow(/keeps the newest 4 entries.*log\.retain/);
  });

  it('for any appends, the readable window is the newest `retain` entries and their order is kept', () => {
    fc.assert(
      fc.property(fc.nat(20), fc.nat(50), fc.array(fc.nat(12), { maxLength: 40 }), (retain, base, sizes) => {
        const log = new InMemoryEventLog(base, { retain });
        let n = 0;
        for (const size of sizes) {
          const out = log.append(events(n, size));
          expect(out.map((e) => e.position)).toEqual(Array.from({ length: size }, (_, k) => base + n + k + 1));
          n += size;
          expect(log.position).toBe(base + n);
          expect(log.firstReadable).toBe(Math.max(base, base + n - retain));
          const window = [...log.read(log.firstReadable)];
          expect(window.map((e) => e.position)).toEqual(Array.from({ length: log.position - log.firstReadable }, (_, k) => log.firstReadable + k + 1));
          expect(window.every((e) => e.event.type === 'user.step' && e.event.at === e.position - base - 1)).toBe(true);
        }
      }),
    );
  });

  it('a reader that appends while iterating sees the new entries, or a LogError if what it was about to read was dropped', () => {
    const roomy = new InMemoryEventLog(0, { retain: 100 });
    roomy.append(events(0, 3));
    const seen: number[] = [];
    for (const e of roomy.read(0)) {
      seen.push(e.position);
      if (e.position === 2) roomy.append(events(3, 2));
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);

    const tight = new InMemoryEventLog(0, { retain: 2 });
    tight.append(events(0, 2));
    const it = tight.read(0)[Symbol.iterator]();
    expect(it.next().value?.position).toBe(1);
    tight.append(events(2, 2)); // positions 1 and 2 dropped
    expect(() => it.next()).toThrow(/dropped while being read/);
  });

  it('rejects a retain or base that is not a whole number ≥ 0', () => {
    expect(() => new InMemoryEventLog(0, { retain: -1 })).toThrow(LogError);
    expect(() => new InMemoryEventLog(0, { retain: 1.5 })).toThrow(/whole number/);
    expect(() => new InMemoryEventLog(0, { retain: Number.NaN })).toThrow(LogError);
    expect(() => new InMemoryEventLog(-3)).toThrow(LogError);
    expect(() => new InMemoryEventLog(0, { retain: 0 })).not.toThrow();
  });
});

describe('log: { kind: memory, retain } — the engine’s default log', () => {
  it('defaults to 10 000 entries and validates retain', () => {
    expect(parseConfig({ server_name: 'test.local' }).log).toEqual({ kind: 'memory', retain: 10_000 });
    expect(parseConfig({ server_name: 'test.local', log: { kind: 'memory', retain: 0 } }).log).toEqual({ kind: 'memory', retain: 0 });
    expect(parseConfigYaml('server_name: test.local\nlog: { kind: memory, retain: .inf }').log).toEqual({ kind: 'memory', retain: Infinity });
    for (const retain of [-1, 2.5, 'all', -Infinity]) {
      try {
        parseConfig({ server_name: 'test.local', log: { kind: 'memory', retain } });
        expect.unreachable(`retain ${String(retain)} was accepted`);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).path).toBe('log.retain');
      }
    }
  });

  it('an engine without a log of its own keeps only the newest log.retain entries', () => {
    const engine = new PresenceEngine({
      config: { server_name: 'test.local', rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }, log: { kind: 'memory', retain: 5 } },
      clock: new SimulatedClock(),
      logger: new MemoryLogger(),
    });
    for (let k = 0; k < 12; k++) engine.setPresence(`@u${k}:test.local`, { presence: k % 2 === 0 ? 'online' : 'unavailable' });
    const log = engine.log as InMemoryEventLog;
    expect(log.position).toBe(12);
    expect(positions(log, log.position - 5)).toEqual([8, 9, 10, 11, 12]);
    expect(() => [...log.read(0)]).toThrow(LogError);
    // the state is the engine's, not the log window's: every user is still known
    expect(engine.getUserPresence('@u0:test.local').state).toBe('online');
    engine.stop();
  });

  it('keeps logging every turn in order after a turn far larger than the usual (its lists are cut back)', () => {
    const engine = new PresenceEngine({
      config: { server_name: 'test.local', rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }, log: { kind: 'memory', retain: 20_000 } },
      clock: new SimulatedClock(),
      logger: new MemoryLogger(),
    });
    engine.batch(() => {
      for (let k = 0; k < 6_000; k++) engine.setPresence(`@u${k}:test.local`, { presence: 'online' });
    });
    expect(engine.log.position).toBe(6_000);
    for (let k = 0; k < 3; k++) engine.setPresence(`@u${k}:test.local`, { presence: 'unavailable' });
    const tail = [...engine.log.read(6_000)].map((e) => (e.event.type === 'user.step' ? e.event.userId : e.event.type));
    expect(tail).toEqual(['@u0:test.local', '@u1:test.local', '@u2:test.local']);
    expect(engine.getUserPresence('@u1:test.local').state).toBe('unavailable');
    expect(engine.getUserPresence('@u5999:test.local').state).toBe('online');
    engine.stop();
  });
});
