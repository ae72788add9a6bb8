/**
 * The actor system's compiled path (machines/actor-system.ts): every event runs
 * the machine's named action without the interpreter, and a change of presence
 * switches the actor to XState's snapshot of the new leaf. For any sequence of
 * events, for local and remote users alike, every step must give the same
 * record, the same outcome and the same snapshot (value, context, nodes, all of
 * it) as running every event through XState's `machine.transition`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PresenceActorSystem } from '../../machines/actor-system.js';
import type { PresenceMachineEvent } from '../../machines/presence-machine.js';
import type { DeviceId, UserId } from '../../src/domain/ids.js';
import { DEFAULT_TIMERS, defaultRecord, type RuleConfig } from '../../src/domain/presence.js';
import { fcParams } from '../support/fc.js';

const users = ['@a:test.local', '@b:test.local', '@c:remote.example'] as UserId[];
const isMine = (u: UserId) => u.endsWith(':test.local');
const device = fc.constantFrom('A', 'B', 'C') as fc.Arbitrary<DeviceId>;
const presence = fc.constantFrom('online', 'unavailable', 'offline', 'busy' as const);
const statusMsg = fc.option(fc.constantFrom('hi', 'lunch'), { nil: null });

/** An event without its time; time advances by `dt` before it (timers of seconds to hours). */
type Timeless = PresenceMachineEvent extends infer E ? (E extends PresenceMachineEvent ? Omit<E, 'now'> : never) : never;
const event: fc.Arbitrary<Timeless> = fc.oneof(
  fc.record({ type: fc.constant('presence.set' as const), deviceId: device, presence, statusMsg }),
  fc.record({ type: fc.constant('sync.start' as const), deviceId: device, presence: fc.constantFrom('online', 'unavailable' as const) }),
  fc.record({ type: fc.constant('sync.end' as const), deviceId: device }),
  fc.record({ type: fc.constant('activity' as const), deviceId: device }),
  fc.record({ type: fc.constant('timeout' as const) }),
  fc.record({
    type: fc.constant('remote.update' as const),
    update: fc.record({ presence, statusMsg, currentlyActive: fc.boolean(), lastActiveAgo: fc.option(fc.nat(3_600_000), { nil: undefined }) }, { requiredKeys: ['presence', 'statusMsg', 'currentlyActive'] }),
  }),
  fc.record({ type: fc.constant('module.set' as const), presence, statusMsg }),
);
const dt = fc.oneof(fc.constant(0), fc.nat(2_000), fc.nat(400_000), fc.nat(5_000_000));
const command = fc.tuple(fc.nat(users.length - 1), dt, event);

describe('actor system: the compiled path equals the interpreter', () => {
  for (const syncCountsAsActivity of [true, false]) {
    it(`records, outcomes and snapshots agree on every step (sync_counts_as_activity: ${syncCountsAsActivity})`, () => {
      const rules: RuleConfig = { timers: DEFAULT_TIMERS, syncCountsAsActivity };
      let interpreted = 0;
      fc.assert(
        fc.property(fc.array(command, { minLength: 1, maxLength: 80 }), (commands) => {
          const reference = new PresenceActorSystem(rules, { interpretEveryEvent: true });
          const fast = new PresenceActorSystem(rules);
          let now = 1_700_000_000_000;
          for (const [u, step, e] of commands) {
            now += step;
            const id = users[u] as UserId;
            const ev = { ...e, now } as PresenceMachineEvent;
            const want = reference.send(id, isMine(id), () => defaultRecord(id), ev);
            const got = fast.send(id, isMine(id), () => defaultRecord(id), ev);
            expect(got.after).toEqual(want.after);
            expect(got.outcome).toEqual(want.outcome);
            expect(fast.record(id)).toEqual(reference.snapshot(id)?.context.record);
            expect(fast.snapshot(id)).toStrictEqual(reference.snapshot(id));
          }
          // the compiled path must actually be taken, or this would prove nothing
          expect(fast.counts.interpreted).toBe(0);
          interpreted += reference.counts.interpreted;
        }),
        fcParams(300),
      );
      expect(interpreted).toBeGreaterThan(0); // and the reference did interpret
    });
  }

  it('moves through the leaves without the interpreter, and the snapshot read is current', () => {
    const rules: RuleConfig = { timers: DEFAULT_TIMERS, syncCountsAsActivity: true };
    const s = new PresenceActorSystem(rules);
    const id = users[0] as UserId;
    const D = 'A' as DeviceId;
    const t = 1_700_000_000_000;
    s.send(id, true, () => defaultRecord(id), { type: 'sync.start', now: t, deviceId: D, presence: 'online' });
    expect(s.snapshot(id)?.value).toEqual({ local: 'online' }); // offline → online
    s.send(id, true, () => defaultRecord(id), { type: 'activity', now: t + 1_000, deviceId: D });
    s.send(id, true, () => defaultRecord(id), { type: 'activity', now: t + 2_000, deviceId: D });
    expect(s.record(id)?.presence.lastActiveTs).toBe(t + 2_000);
    const r = s.send(id, true, () => defaultRecord(id), { type: 'presence.set', now: t + 3_000, deviceId: D, presence: 'unavailable', statusMsg: null });
    expect(s.counts).toMatchObject({ events: 4, interpreted: 0 });
    expect(s.snapshot(id)?.value).toEqual({ local: 'unavailable' }); // online → unavailable
    expect(s.snapshot(id)?.context.record).toBe(s.record(id));
    expect(s.snapshot(id)?.context.outcome).toBe(r.outcome);
    expect(s.snapshot(id)).toBe(s.snapshot(id)); // made once, then kept
  });
});
