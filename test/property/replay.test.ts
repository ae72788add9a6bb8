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
import { Driver, observable, propertyConfig, commands } from './engine-commands.js';

describe('replay', () => {
  it('a fresh engine over the same log has the same state for every user and the same token', () => {
    fc.assert(
      fc.property(commands(), fc.boolean(), (cmds, syncIsActivity) => {
        const clock = new SimulatedClock();
        const log = new InMemoryEventLog();
        const { engine } = createTestEngine({ clock, log, config: propertyConfig(syncIsActivity) });
        const d = new Driver(engine, clock);
        for (const c of cmds) d.apply(c);
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
});
