/**
 * Model-based test (issue 5): random command sequences run against the engine
 * and the reference model (test/model/reference-model.ts). After every command:
 * every user's presence equals the model's; what each open sync stream has
 * delivered, folded per changed user, equals the model's view for that
 * subscriber; `getNewEvents` from earlier tokens (and with no token) answers
 * exactly the model's changed-and-visible set. Each run picks a router
 * configuration (none, fixed extras, ALL_USERS for some users, a misbehaving
 * module alone or among good ones).
 *
 * Seed: FC_SEED (printed on failure); runs: FC_NUM_RUNS (`npm run test:deep`).
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { fcParams } from '../support/fc.js';
import { commandsArb } from './commands.js';
import { EVERYONE, LOCALS, setup } from './harness.js';
import { routerConfigArb } from './routers.js';

/** Operator callback (docs/policies.md): none, or some viewer→target pairs hidden (viewers: users and servers). */
const VIEWERS = [...EVERYONE, 'test.local', 'remote.one', 'remote.two'];
const operatorArb = fc.option(
  fc.subarray(
    VIEWERS.flatMap((v) => LOCALS.map((t) => `${v}→${t}`)),
    { maxLength: 8 },
  ),
  { nil: null },
);

/** Large-room mode `shared_rooms_only` (docs/policies.md): off, or rooms of 3 or more members share no presence. */
const largeRoomArb = fc.constantFrom<number | null>(null, null, 3);

/** FC_PATH (printed as `path` on failure, with the seed) replays one failing case directly, already shrunk. */
const params = fcParams(120, { endOnFailure: false, ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}) });
/** Deep runs (FC_NUM_RUNS) need more than the default 60 s. */
const timeout = Math.max(120_000, (params.numRuns ?? 100) * 1_000);

describe('engine ≡ reference model', () => {
  it('presence, sync streams and getNewEvents agree after every command', async () => {
    await fc.assert(
      fc.asyncProperty(routerConfigArb(EVERYONE), operatorArb, largeRoomArb, commandsArb(40), async (modules, operator, large, cmds) => {
        const { model, real } = setup(modules, operator, large);
        try {
          await fc.asyncModelRun(() => ({ model, real }), cmds);
        } finally {
          real.engine.stop();
        }
      }),
      params,
    );
  }, timeout);
});
