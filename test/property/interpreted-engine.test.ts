/**
 * The engine with `interpretEveryEvent` (every event through XState's pure
 * `transition`) and the default compiled path give every user the same record
 * and the same machine state for any sequence of inputs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PresenceEngine } from '../../src/index.js';
import { flushMicrotasks, MemoryLogger, SimulatedClock } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { ALL_USERS_IN_TEST, Driver, commands, propertyConfig } from './engine-commands.js';

describe('interpreted engine', () => {
  it('equals the compiled path: records and machine states of every user after every input', async () => {
    await fc.assert(
      fc.asyncProperty(commands(), fc.boolean(), async (cmds, syncIsActivity) => {
        const config = propertyConfig(syncIsActivity);
        const make = (interpretEveryEvent: boolean) => {
          const clock = new SimulatedClock();
          const engine = new PresenceEngine({ config: { server_name: 'test.local', rc_presence: { per_user: { per_second: 1000, burst_count: 1000 } }, ...config }, clock, logger: new MemoryLogger(), interpretEveryEvent });
          return { engine, driver: new Driver(engine, clock) };
        };
        const compiled = make(false);
        const interpreted = make(true);
        for (const c of cmds) {
          compiled.driver.apply(c);
          interpreted.driver.apply(c);
          await flushMicrotasks();
          for (const u of ALL_USERS_IN_TEST) {
            expect(interpreted.engine.getUserRecord(u)).toEqual(compiled.engine.getUserRecord(u));
            expect(interpreted.engine.actorState(u)).toEqual(compiled.engine.actorState(u));
          }
        }
        compiled.engine.stop();
        interpreted.engine.stop();
      }),
      fcParams(),
    );
  });
});
