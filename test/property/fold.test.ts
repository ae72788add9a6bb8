import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffRecords, evolveUser, evolveUserSteps } from '../../src/domain/evolve.js';
import type { UserStepEvent } from '../../src/domain/events.js';
import type { DeviceId, UserId } from '../../src/domain/ids.js';
import { defaultRecord, type UserRecord } from '../../src/domain/presence.js';
import { fcParams } from '../support/fc.js';

const user = '@u:test.local' as UserId;
const device = fc.constantFrom('', 'A', 'B') as fc.Arbitrary<DeviceId>;
const devicePresence = fc.record({
  state: fc.constantFrom('online', 'unavailable', 'offline', 'busy' as const),
  lastActiveTs: fc.nat(),
  lastSyncTs: fc.nat(),
});
const step: fc.Arbitrary<UserStepEvent> = fc.record(
  {
    type: fc.constant('user.step' as const),
    userId: fc.constant(user),
    at: fc.nat(),
    presence: fc.record(
      {
        state: fc.constantFrom('online', 'unavailable', 'offline', 'busy' as const),
        lastActiveTs: fc.nat(),
        statusMsg: fc.option(fc.string(), { nil: null }),
        currentlyActive: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    devices: fc.dictionary(device, fc.option(devicePresence, { nil: null })),
    syncs: fc.dictionary(device, fc.option(fc.integer({ min: 1, max: 3 }), { nil: null })),
  },
  { requiredKeys: ['type', 'userId', 'at'] },
) as fc.Arbitrary<UserStepEvent>;

describe('the fold (immer reducer over one user’s record)', () => {
  it('folding a run of steps in one produce equals folding them one by one', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const oneByOne = steps.reduce<UserRecord>((r, s) => evolveUser(r, s), defaultRecord(user));
        expect(evolveUserSteps(user, undefined, steps)).toEqual(oneByOne);
      }),
      fcParams(200),
    );
  });

  it('diffRecords then evolveUser reproduces the target record', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 10 }), fc.array(step, { maxLength: 10 }), (a, b) => {
        const from = evolveUserSteps(user, undefined, a);
        const to = evolveUserSteps(user, from, b);
        const diff = diffRecords(user, from, to, 0);
        expect(diff === null ? from : evolveUser(from, diff)).toEqual(to);
      }),
      fcParams(200),
    );
  });
});
