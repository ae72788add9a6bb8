/**
 * `presence.turns: per_tick`: the inputs of one event-loop tick share one turn.
 * Their state changes at once; the log append, the fan-out, the sync-stream
 * emissions and federation happen once, at the end of the tick.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, InvalidInputError, PresenceEngine, type LogEntry, type PresenceEvent } from '../../src/index.js';
import { presenceConfig } from '../../src/config.js';
import { InMemoryEventLog } from '../../src/log/event-log.js';
import { RedisPresenceNode } from '../../src/hosting/redis-node.js';
import { ManualTicks, MemoryLogger, SimulatedClock, createTestEngine, recordSyncStream } from '../../src/testing/index.js';

const ALICE = '@alice:test.local';
const BOB = '@bob:test.local';
const CAROL = '@carol:test.local';
const ROOM = '!room:test.local';
const PER_TICK = { presence: { turns: 'per_tick' } };

function perTickEngine(log?: InMemoryEventLog) {
  const ticks = new ManualTicks();
  const t = createTestEngine({ config: PER_TICK, endOfTick: ticks.schedule, ...(log ? { log } : {}) });
  // the joins are inputs too: commit them before the test starts
  t.engine.joinRoom(ROOM, ALICE);
  t.engine.joinRoom(ROOM, BOB);
  t.engine.joinRoom(ROOM, CAROL);
  ticks.end();
  return { ...t, ticks };
}

describe('per-tick turns', () => {
  it('the inputs of a tick change state at once and are emitted together at the end of the tick', () => {
    const { engine, ticks } = perTickEngine();
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    engine.setPresence(BOB, { presence: 'unavailable', statusMsg: 'lunch' });
    expect(engine.getUserPresence(ALICE).state).toBe('online');
    expect(engine.getUserPresence(BOB)).toMatchObject({ state: 'unavailable', statusMsg: 'lunch' });
    expect(carol.batches).toHaveLength(0);
    expect(ticks.waiting).toBe(1); // one end-of-tick callback for the whole tick
    ticks.end();
    expect(carol.batches).toHaveLength(1);
    expect(carol.batches[0]?.events.map((s) => s.userId).sort()).toEqual([ALICE, BOB]);
    expect(carol.batches[0]?.token).toBe(engine.currentToken);
  });

  it('a user who changes several times in a tick is delivered once, in their latest state', () => {
    const { engine, ticks } = perTickEngine();
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'one' });
    engine.setPresence(ALICE, { presence: 'unavailable', statusMsg: 'two' });
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'three' });
    ticks.end();
    expect(carol.batches).toHaveLength(1);
    expect(carol.batches[0]?.events).toHaveLength(1);
    expect(carol.batches[0]?.events[0]).toMatchObject({ userId: ALICE, state: 'online', statusMsg: 'three' });
  });

  it('the log gets one append per tick, holding every event of the tick in input order', () => {
    const log = new InMemoryEventLog();
    const appends: PresenceEvent[][] = [];
    const append = log.append.bind(log);
    log.append = (events: readonly PresenceEvent[]): readonly LogEntry[] => {
      appends.push([...events]);
      return append(events);
    };
    const { engine, ticks } = perTickEngine(log);
    appends.length = 0;
    engine.setPresence(ALICE, { presence: 'online' });
    engine.setPresence(BOB, { presence: 'online' });
    expect(appends).toHaveLength(0);
    ticks.end();
    expect(appends).toHaveLength(1);
    expect(appends[0]?.map((e) => ('userId' in e ? e.userId : undefined))).toEqual([ALICE, BOB]);
  });

  it('getNewEvents sees a change before its tick ends (the change index is written by the step)', async () => {
    const { engine, ticks } = perTickEngine();
    const first = await engine.getNewEvents(CAROL, null);
    engine.setPresence(ALICE, { presence: 'online' });
    const next = await engine.getNewEvents(CAROL, first.nextToken);
    expect(next.events.map((s) => s.userId)).toEqual([ALICE]);
    ticks.end();
  });

  it('snapshot() commits the open tick first: its position covers every input its records hold', () => {
    const log = new InMemoryEventLog();
    const { engine, clock, ticks } = perTickEngine(log);
    const before = log.position;
    engine.setPresence(ALICE, { presence: 'online', statusMsg: 'in the snapshot' });
    const snap = engine.snapshot();
    ticks.end();
    expect(snap.position).toBe(before + 1);
    expect(log.position).toBe(snap.position); // the tick's event is not appended again after the snapshot
    // restore from the snapshot plus the log: nothing is applied twice or lost
    const restored = new PresenceEngine({ config: presenceConfig('test.local', PER_TICK), clock, log, snapshot: snap, endOfTick: new ManualTicks().schedule });
    expect(restored.getUserPresence(ALICE)).toEqual(engine.getUserPresence(ALICE));
  });

  it('stop() commits the open tick before completing the streams', () => {
    const log = new InMemoryEventLog();
    const { engine } = perTickEngine(log);
    const carol = recordSyncStream(engine, CAROL);
    const before = log.position;
    engine.setPresence(ALICE, { presence: 'online' });
    engine.stop();
    expect(log.position).toBe(before + 1);
    expect(carol.view().get(ALICE as never)?.state).toBe('online');
  });

  it('an input made by a subscriber during the commit runs as a turn of its own, in the same end of tick', () => {
    const { engine, ticks } = perTickEngine();
    const carol = recordSyncStream(engine, CAROL);
    const sub = engine.syncStream(BOB).subscribe((b) => {
      if (b.events.some((s) => s.userId === ALICE && s.state === 'online')) engine.setPresence(BOB, { presence: 'online', statusMsg: 'saw alice' });
    });
    engine.setPresence(ALICE, { presence: 'online' });
    ticks.end();
    expect(ticks.waiting).toBe(0);
    expect(carol.batches.map((b) => b.events.map((s) => s.userId))).toEqual([[ALICE], [BOB]]);
    expect(engine.getUserPresence(BOB).statusMsg).toBe('saw alice');
    sub.unsubscribe();
  });

  it('timers that fire during a tick join its turn', () => {
    const { engine, clock, ticks } = perTickEngine();
    const carol = recordSyncStream(engine, CAROL);
    engine.userSyncing(ALICE); // a sync held open keeps her online until she idles
    ticks.end();
    clock.advance(6 * 60_000); // past the idle timeout: the wheel re-examines Alice
    expect(engine.getUserPresence(ALICE).state).toBe('unavailable');
    expect(carol.batches).toHaveLength(1);
    ticks.end();
    expect(carol.batches).toHaveLength(2);
    expect(carol.batches[1]?.events[0]).toMatchObject({ userId: ALICE, state: 'unavailable' });
  });

  it('by default the tick ends with setImmediate', async () => {
    const { engine } = createTestEngine({ config: PER_TICK, rooms: { [ROOM]: [ALICE, CAROL] } });
    await new Promise((r) => setImmediate(r));
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    expect(carol.batches).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(carol.batches).toHaveLength(1);
    engine.stop();
  });

  it('a commit that fails at the end of a tick is logged, and the engine goes on', () => {
    const log = new InMemoryEventLog();
    const { engine, ticks, logger } = perTickEngine(log);
    const append = log.append.bind(log);
    let fail = true;
    log.append = (events: readonly PresenceEvent[]): readonly LogEntry[] => {
      if (fail) throw new Error('disk full');
      return append(events);
    };
    engine.setPresence(ALICE, { presence: 'online' });
    expect(() => ticks.end()).not.toThrow();
    expect(logger.entries.some((e) => e.level === 'error' && JSON.stringify(e).includes('disk full'))).toBe(true);
    fail = false;
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(BOB, { presence: 'online' });
    ticks.end();
    // Alice's change was never fanned out (the failed commit stopped before): it goes with the next one
    expect(carol.batches.at(-1)?.events.map((s) => s.userId)).toEqual([ALICE, BOB]);
  });

  it('an endOfTick that calls back at once commits each input before the call returns', () => {
    const { engine } = createTestEngine({ config: PER_TICK, endOfTick: (close) => close(), rooms: { [ROOM]: [ALICE, CAROL] } });
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    expect(carol.batches).toHaveLength(1);
    engine.setPresence(ALICE, { presence: 'unavailable' });
    expect(carol.batches).toHaveLength(2);
    expect(carol.batches[1]?.events[0]).toMatchObject({ userId: ALICE, state: 'unavailable' });
  });

  it('an endOfTick that throws: the input is committed at once, the error logged, and the engine goes on', () => {
    let fail = true;
    const ticks = new ManualTicks();
    const { engine, logger } = createTestEngine({
      config: PER_TICK,
      endOfTick: (close) => {
        if (fail) throw new Error('scheduler down');
        ticks.schedule(close);
      },
    });
    engine.joinRoom(ROOM, ALICE);
    engine.joinRoom(ROOM, CAROL);
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    expect(carol.batches.at(-1)?.events.map((s) => s.userId)).toEqual([ALICE]);
    expect(logger.entries.some((e) => e.level === 'error' && e.message.includes('endOfTick threw'))).toBe(true);
    fail = false;
    const before = carol.batches.length;
    engine.setPresence(ALICE, { presence: 'unavailable' });
    expect(carol.batches).toHaveLength(before);
    ticks.end();
    expect(carol.batches).toHaveLength(before + 1);
  });

  it('per_input (the default) commits every input before it returns', () => {
    const { engine } = createTestEngine({ rooms: { [ROOM]: [ALICE, CAROL] } });
    const carol = recordSyncStream(engine, CAROL);
    engine.setPresence(ALICE, { presence: 'online' });
    expect(carol.batches).toHaveLength(1);
  });

  it('a RedisPresenceNode refuses per-tick turns (before connecting)', async () => {
    const config = { server_name: 'test.local', presence: { turns: 'per_tick' as const }, log: { kind: 'redis' as const, url: 'redis://127.0.0.1:1' } };
    await expect(RedisPresenceNode.start({ config })).rejects.toThrow(/presence\.turns/);
  });

  it('rejects a bad turns value and a bad endOfTick', () => {
    expect(() => presenceConfig('test.local', { presence: { turns: 'per_second' } })).toThrow(ConfigError);
    expect(() => presenceConfig('test.local', { presence: { turns: 'per_second' } })).toThrow(/presence\.turns/);
    const config = presenceConfig('test.local', PER_TICK);
    expect(() => new PresenceEngine({ config, clock: new SimulatedClock(), logger: new MemoryLogger(), endOfTick: 5 as never })).toThrow(InvalidInputError);
  });
});
