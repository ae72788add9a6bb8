/**
 * `presence.turns: per_tick` changes when the engine commits, never what it
 * decides. For any input sequence cut into ticks anywhere:
 * - every user's record, the stream token and the memberships (from the rooms
 *   and from each user's list of rooms) equal those of
 *   an engine committing after each input, and replaying the per-tick
 *   engine's log gives them again;
 * - the delivery contract holds: one state per user per batch, each current
 *   at emission, and no lost update.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PresenceEngine, type PresenceBatch, type UserPresenceState } from '../../src/index.js';
import { createTestEngine, flushMicrotasks, InMemoryEventLog, ManualTicks, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { Driver, LOCAL_USERS, commands, notified, observable, propertyConfig, visibleTo } from './engine-commands.js';

function perTick(config: ReturnType<typeof propertyConfig>) {
  return { ...config, presence: { ...config.presence, turns: 'per_tick' } };
}

/** Where ticks end: after command i when `cuts[i % cuts.length]` (and always after the last). */
const tickCuts = fc.array(fc.boolean(), { minLength: 1, maxLength: 40 });

describe('per-tick turns', () => {
  it('commit timing only: same records, token and memberships as per-input turns, and the log replays to them', async () => {
    await fc.assert(
      fc.asyncProperty(commands(), tickCuts, fc.boolean(), async (cmds, cuts, syncIsActivity) => {
        const config = propertyConfig(syncIsActivity);
        const eager = createTestEngine({ config });
        const eagerDriver = new Driver(eager.engine, eager.clock);
        const ticks = new ManualTicks();
        const log = new InMemoryEventLog();
        const lazy = createTestEngine({ config: perTick(config), log, endOfTick: ticks.schedule });
        const lazyDriver = new Driver(lazy.engine, lazy.clock);
        for (const [i, c] of cmds.entries()) {
          eagerDriver.apply(c);
          lazyDriver.apply(c);
          await flushMicrotasks();
          if (cuts[i % cuts.length] === true) ticks.end();
        }
        ticks.end();
        await flushMicrotasks();
        expect(observable(lazy.engine)).toEqual(observable(eager.engine));
        const replayed = new PresenceEngine({ config: lazy.engine.config, clock: new SimulatedClock(lazy.clock.now()), log, logger: new MemoryLogger() });
        expect(observable(replayed)).toEqual(observable(lazy.engine));
        eager.engine.stop();
        lazy.engine.stop();
      }),
      fcParams(100),
    );
  });

  it('delivery: one state per user per batch, current at emission, and no lost update', async () => {
    await fc.assert(
      fc.asyncProperty(commands(), tickCuts, async (cmds, cuts) => {
        const ticks = new ManualTicks();
        const { engine, clock } = createTestEngine({ config: perTick(propertyConfig(true)), endOfTick: ticks.schedule });
        const problems: string[] = [];
        const last = new Map<string, Map<string, UserPresenceState>>(LOCAL_USERS.map((u) => [u, new Map()]));
        const subs = LOCAL_USERS.map((user) =>
          engine.syncStream(user).subscribe((batch: PresenceBatch) => {
            const seen = new Set<string>();
            for (const s of batch.events) {
              if (seen.has(s.userId)) problems.push(`${user} got ${s.userId} twice in one batch`);
              seen.add(s.userId);
              if (JSON.stringify(engine.getUserPresence(s.userId)) !== JSON.stringify(s)) problems.push(`${user} got a stale state of ${s.userId}`);
              last.get(user)?.set(s.userId, s);
            }
            if (batch.token !== engine.currentToken) problems.push(`${user} got token ${batch.token}, current ${engine.currentToken}`);
          }),
        );
        const d = new Driver(engine, clock);
        for (const [i, c] of cmds.entries()) {
          d.apply(c);
          await flushMicrotasks();
          if (cuts[i % cuts.length] === true) ticks.end();
        }
        ticks.end();
        await flushMicrotasks();
        expect(problems).toEqual([]);
        for (const user of LOCAL_USERS) {
          for (const other of visibleTo(engine, user)) {
            expect({ user, other, ...notified(last.get(user)?.get(other)) }).toEqual({ user, other, ...notified(engine.getUserPresence(other)) });
          }
        }
        for (const s of subs) s.unsubscribe();
        engine.stop();
      }),
      fcParams(100),
    );
  });
});
