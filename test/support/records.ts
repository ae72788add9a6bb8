/**
 * fast-check arbitraries for one user's record and logged steps, shared by the
 * fold properties and the actor tests: any record (not only those reachable
 * from the default one) and any step (every presence field, devices and syncs
 * set or removed, with or without a stream id).
 */
import fc from 'fast-check';
import type { UserStepEvent } from '../../src/domain/events.js';
import type { DeviceId, UserId } from '../../src/domain/ids.js';
import { PRESENCE_VALUES, type UserRecord } from '../../src/domain/presence.js';

export const anyDevice = fc.constantFrom('', 'A', 'B') as fc.Arbitrary<DeviceId>;
export const anyPresenceValue = fc.constantFrom(...PRESENCE_VALUES);
export const anyDevicePresence = fc.record({ state: anyPresenceValue, lastActiveTs: fc.nat(), lastSyncTs: fc.nat() });

/** Every presence field but the user id: all present in a record, any subset in a step. */
const presenceFields = {
  state: anyPresenceValue,
  lastActiveTs: fc.nat(),
  lastFederationUpdateTs: fc.nat(),
  lastUserSyncTs: fc.nat(),
  statusMsg: fc.option(fc.string(), { nil: null }),
  currentlyActive: fc.boolean(),
};

export function anyRecord(userId: UserId): fc.Arbitrary<UserRecord> {
  return fc.record({
    presence: fc.record({ userId: fc.constant(userId), ...presenceFields }),
    devices: fc.dictionary(anyDevice, anyDevicePresence),
    syncs: fc.dictionary(anyDevice, fc.integer({ min: 1, max: 3 })),
  });
}

export function anyStep(userId: UserId): fc.Arbitrary<UserStepEvent> {
  return fc.record(
    {
      type: fc.constant('user.step' as const),
      userId: fc.constant(userId),
      at: fc.nat(),
      streamId: fc.nat(),
      presence: fc.record(presenceFields, { requiredKeys: [] }),
      devices: fc.dictionary(anyDevice, fc.option(anyDevicePresence, { nil: null })),
      syncs: fc.dictionary(anyDevice, fc.option(fc.integer({ min: 1, max: 3 }), { nil: null })),
    },
    { requiredKeys: ['type', 'userId', 'at'] },
  ) as fc.Arbitrary<UserStepEvent>;
}
