/**
 * Event sourcing laws: the log is the source of truth.
 * - replay equals live: a fresh engine over the same log has the same record
 *   for every user, the same stream token and the same room memberships
 *   (seen from the rooms and from each user's list of rooms);
 * - snapshot + tail replay equals full replay, wherever the snapshot is taken.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PresenceEngine, type EngineSnapshot } from '../../src/index.js';
import { createTestEngine, InMemoryEventLog, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { ALL_USERS_IN_TEST, Driver, observable, propertyConfig, commands } from './engine-commands.js';

describe('replay', () => {
  it('a fresh engine over the same log has the same state for every user and the same token', () => {
    fc.assert(
      fc.property(commands(), fc.boolean(), (cmds, syncIsActivity) => {
        const clock = new SimulatedClock();
        const log = new InMemoryEventLog();
        const { engine } = createTestEngine({ clock, log, config: propertyConfig(syncIsActivity) });
        const d = new Driver(engine, clock);
        for (const c of cmds) d.apply(c);
        // every step records why it happened; replay ignores the cause, so it cannot change the state
        for (const { event } of log.read(0)) if (event.type === 'user.step') expect(event.cause?.input).toBeDefined();
        const replayed = new PresenceEngine({ config: engine.config, clock, log, logger: new MemoryLogger() });
        expect(observable(replayed)).toEqual(observable(engine));
        engine.stop();
      }),
      fcParams(100),
    );
  });

  it('snapshot + tail replay equals full replay', () => {
    fc.assert(
      fc.property(commands(), fc.nat(), fc.boolean(), (cmds, cut, syncIsActivity) => {
        const clock = new SimulatedClock();
        const log = new InMemoryEventLog();
        const { engine } = createTestEngine({ clock, log, config: propertyConfig(syncIsActivity) });
        const d = new Driver(engine, clock);
        const at = cut % (cmds.length + 1);
        let snap: EngineSnapshot | undefined;
        cmds.forEach((c, i) => {
          if (i === at) snap = JSON.parse(JSON.stringify(engine.snapshot())) as EngineSnapshot;
          d.apply(c);
        });
        snap ??= JSON.parse(JSON.stringify(engine.snapshot())) as EngineSnapshot;
        const tail = new InMemoryEventLog(snap.position);
        tail.append([...log.read(snap.position)].map((e) => e.event));
        const fromSnapshot = new PresenceEngine({ config: engine.config, clock, log: tail, snapshot: snap, logger: new MemoryLogger() });
        const full = new PresenceEngine({ config: engine.config, clock, log, logger: new MemoryLogger() });
        expect(observable(fromSnapshot)).toEqual(observable(full));
        expect(observable(full)).toEqual(observable(engine));
        for (const e of [engine, fromSnapshot, full]) e.stop();
      }),
      fcParams(100),
    );
  });

  it('a replayed engine continues like the live one (timers re-armed, syncs ended on restart)', () => {
    fc.assert(
      fc.property(commands(), commands(undefined, 30), fc.boolean(), (before, after, syncIsActivity) => {
        const clock = new SimulatedClock();
        const log = new InMemoryEventLog();
        const { engine } = createTestEngine({ clock, log, config: propertyConfig(syncIsActivity) });
        const live = new Driver(engine, clock);
        for (const c of before) live.apply(c);
        const clock2 = new SimulatedClock(clock.now());
        // replay from a copy of the log so that the two engines append to different logs
        const copy = new InMemoryEventLog();
        copy.append([...log.read(0)].map((e) => e.event));
        const restarted = new PresenceEngine({ config: engine.config, clock: clock2, log: copy, logger: new MemoryLogger() });
        live.endAll();
        restarted.endRestoredSyncs();
        const other = new Driver(restarted, clock2);
        for (const c of after) {
          live.apply(c);
          other.apply(c);
        }
        expect(observable(restarted)).toEqual(observable(engine));
        engine.stop();
        restarted.stop();
      }),
      fcParams(100),
    );
  });

  it('presence disabled: a restart flushes every non-offline user to offline (no status), notified, and replays to the same state', async () => {
    await fc.assert(
      fc.asyncProperty(commands(), fc.boolean(), async (cmds, withSnapshot) => {
        const clock = new SimulatedClock();
        const log = new InMemoryEventLog();
        const { engine } = createTestEngine({ clock, log, config: propertyConfig(true) });
        const d = new Driver(engine, clock);
        for (const c of cmds) d.apply(c);
        const before = new Map(ALL_USERS_IN_TEST.map((u) => [u, engine.getUserRecord(u)]));
        const token = engine.currentToken;
        const snap = withSnapshot ? (JSON.parse(JSON.stringify(engine.snapshot())) as EngineSnapshot) : undefined;
        const copy = new InMemoryEventLog(snap?.position ?? 0);
        copy.append([...log.read(snap?.position ?? 0)].map((e) => e.event));
        const off = { ...engine.config, enabled: false as const };
        const flushed = new PresenceEngine({ config: off, clock, log: copy, logger: new MemoryLogger(), ...(snap ? { snapshot: snap } : {}) });
        const stale = ALL_USERS_IN_TEST.filter((u) => before.get(u)?.presence.state !== 'offline');
        for (const u of ALL_USERS_IN_TEST) {
          const r = flushed.getUserRecord(u);
          if (stale.includes(u)) expect(r).toMatchObject({ presence: { state: 'offline', statusMsg: null, currentlyActive: false }, devices: {}, syncs: {} });
          else expect(r).toEqual(before.get(u));
        }
        expect(flushed.currentToken).toBe(token + stale.length);
        // a reader with the old token is told of every flushed user it could see before
        for (const reader of ALL_USERS_IN_TEST.filter((u) => u.endsWith(':test.local'))) {
          const told = await flushed.getNewEvents(reader, token);
          for (const s of told.events) expect([s.state, s.statusMsg]).toEqual(['offline', null]);
          const visible = stale.filter((u) => u === reader || flushed.shareRoom(reader as never, u as never));
          expect(told.events.map((s) => s.userId).sort()).toEqual(visible.sort());
        }
        // replay of the flushed log (disabled or not) equals the flushed engine: the flush is in the log
        for (const config of [off, engine.config]) {
          const replayed = new PresenceEngine({ config, clock, log: copy, logger: new MemoryLogger(), ...(snap ? { snapshot: snap } : {}) });
          expect(observable(replayed)).toEqual(observable(flushed));
          replayed.stop();
        }
        engine.stop();
        flushed.stop();
      }),
      fcParams(100),
    );
  });
});
