/**
 * Timer properties (issue 5), checked on the engine alone with the spec's
 * bounds: a fired timer is handled at the first tick of the timer period after
 * a strict deadline (spec §1.7), so
 * - no local user stays non-offline longer than sync timeout + one timer period
 *   after their last sync or activity (busy devices: the busy timeout, §2.13);
 * - a user with an open sync (set_presence online/unavailable) is never offline
 *   unless they explicitly set themselves offline during it;
 * - a device refreshed by the last input keeps the user non-offline through the
 *   sync timeout, and a device set busy keeps them busy through the busy
 *   timeout (timeouts are strict);
 * - remote users keep what they were sent through the federation timeout and are
 *   offline one timer period after it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SyncHandle } from '../../src/index.js';
import { createTestEngine } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const USERS = ['@a:test.local', '@b:test.local', '@c:test.local'] as const;
const REMOTES = ['@r1:remote.one', '@r2:remote.two'] as const;
const DEVICES = [undefined, 'PHONE', 'LAPTOP'] as const;

type Op =
  | { kind: 'set'; user: number; presence: 'online' | 'unavailable' | 'offline' | 'busy'; device: number }
  | { kind: 'sync'; user: number; presence: 'online' | 'unavailable'; device: number }
  | { kind: 'end'; pick: number }
  | { kind: 'bump'; user: number; device: number }
  | { kind: 'wait'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    user: fc.nat(2),
    presence: fc.constantFrom('online' as const, 'unavailable' as const, 'offline' as const, 'busy' as const),
    device: fc.nat(2),
  }),
  fc.record({ kind: fc.constant('sync' as const), user: fc.nat(2), presence: fc.constantFrom('online' as const, 'unavailable' as const), device: fc.nat(2) }),
  fc.record({ kind: fc.constant('end' as const), pick: fc.nat(10) }),
  fc.record({ kind: fc.constant('bump' as const), user: fc.nat(2), device: fc.nat(2) }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 0, max: 40_000 }), fc.integer({ min: 0, max: 700_000 })) }),
);

describe('timer semantics', () => {
  it('local users go offline within sync timeout (busy: busy timeout) + one timer period, never while syncing', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), fc.integer({ min: 0, max: 4_999 }), (ops, phase) => {
        const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: true } } });
        clock.advance(phase);
        const t = engine.config.timers;
        const period = engine.config.timerPeriod;
        /** Open syncs; `pinned` is false once the user explicitly set themselves offline during it. */
        const open: { user: string; handle: SyncHandle; pinned: boolean }[] = [];
        const last = new Map<string, number>();
        const everBusy = new Set<string>();
        /** When the user's last `setPresence(busy)` happened. */
        const lastBusy = new Map<string, number>();
        /** Users whose last input refreshed a non-offline device, with its time. */
        const refreshed = new Map<string, number>();
        const checkSyncing = () => {
          for (const s of open) if (s.pinned) expect(engine.getUserPresence(s.user).state, `${s.user} is syncing`).not.toBe('offline');
        };
        for (const op of ops) {
          const now = clock.now();
          if (op.kind === 'wait') {
            // step through the wait so the syncing invariant is checked along the way
            for (let left = op.ms; left > 0; left -= 10_000) {
              clock.advance(Math.min(10_000, left));
              checkSyncing();
            }
            continue;
          }
          if (op.kind === 'end') {
            if (open.length === 0) continue;
            const [s] = open.splice(op.pick % open.length, 1);
            if (s === undefined) continue;
            s.handle.end();
            last.set(s.user, now);
            lastBusy.delete(s.user);
            if (s.pinned) refreshed.set(s.user, now);
            else refreshed.delete(s.user);
            continue;
          }
          const user = USERS[op.user] as string;
          const device = DEVICES[op.device];
          last.set(user, now);
          lastBusy.delete(user);
          if (op.kind === 'set') {
            engine.setPresence(user, { presence: op.presence, deviceId: device });
            if (op.presence === 'busy') {
              everBusy.add(user);
              lastBusy.set(user, now);
            }
            if (op.presence === 'offline') {
              refreshed.delete(user);
              for (const s of open) if (s.user === user) s.pinned = false; // PUT offline beats a sync on that device
            }
            else refreshed.set(user, now);
          } else if (op.kind === 'sync') {
            open.push({ user, handle: engine.userSyncing(user, { deviceId: device, setPresence: op.presence }), pinned: true });
            refreshed.set(user, now);
          } else {
            engine.bumpActive(user, device);
            refreshed.delete(user); // a bump on a device that had expired creates an offline device
          }
          checkSyncing();
        }
        for (const s of open.splice(0)) {
          s.handle.end();
          last.set(s.user, clock.now());
          lastBusy.delete(s.user);
          if (s.pinned) refreshed.set(s.user, clock.now());
          else refreshed.delete(s.user);
        }
        const start = clock.now();
        // Lower bounds: a refreshed non-offline device outlives the (strict) sync timeout,
        // and a device set busy by the user's last input keeps them busy through the busy timeout.
        const checks: { user: string; due: number; busy: boolean; at: number }[] = [];
        for (const [u, at] of refreshed) {
          if (last.get(u) !== at) continue;
          if (lastBusy.get(u) === at) checks.push({ user: u, due: at + t.busyTimeout, busy: true, at });
          else if (!everBusy.has(u)) checks.push({ user: u, due: at + t.syncOnlineTimeout, busy: false, at });
        }
        for (const c of checks.sort((x, y) => x.due - y.due)) {
          if (c.due > clock.now()) clock.advance(c.due - clock.now());
          if (clock.now() !== c.due) continue;
          const state = engine.getUserPresence(c.user).state;
          if (c.busy) expect(state, `${c.user} set busy at ${c.at}, now ${c.due}`).toBe('busy');
          else expect(state, `${c.user} refreshed at ${c.at}, now ${c.due}`).not.toBe('offline');
        }
        // Upper bounds, checked at every 1 s step up to the busy timeout.
        const horizon = start + t.busyTimeout + period + 1_000;
        while (clock.now() < horizon) {
          clock.advance(clock.now() - start < 120_000 ? 1_000 : 10_000);
          const now = clock.now();
          for (const u of USERS) {
            const since = last.get(u);
            if (since === undefined) continue;
            const limit = everBusy.has(u) ? t.busyTimeout : t.syncOnlineTimeout;
            if (now - since >= limit + period) expect(engine.getUserPresence(u).state, `${u}: last input at ${since}, now ${now}`).toBe('offline');
          }
        }
        engine.stop();
      }),
      fcParams(60),
    );
  });

  it('remote users keep their state through the federation timeout and expire one timer period after it', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            user: fc.constantFrom(...REMOTES),
            presence: fc.constantFrom('online', 'unavailable', 'busy', 'org.matrix.msc3026.busy'),
            wait: fc.integer({ min: 0, max: 2_000_000 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        (updates) => {
          const { engine, clock } = createTestEngine();
          const t = engine.config.timers;
          const period = engine.config.timerPeriod;
          const sent = new Map<string, { at: number; state: string }>();
          const check = () => {
            for (const [u, { at, state }] of sent) {
              const now = clock.now();
              const got = engine.getUserPresence(u).state;
              if (now - at <= t.federationTimeout) expect(got, `${u} sent ${state} at ${at}, now ${now}`).toBe(state);
              if (now - at >= t.federationTimeout + period) expect(got, `${u} sent at ${at}, now ${now}`).toBe('offline');
            }
          };
          for (const u of updates) {
            const origin = u.user.slice(u.user.indexOf(':') + 1);
            engine.receiveFederationEdu(origin, { push: [{ user_id: u.user, presence: u.presence }] });
            sent.set(u.user, { at: clock.now(), state: u.presence === 'org.matrix.msc3026.busy' ? 'busy' : u.presence });
            check();
            for (let left = u.wait; left > 0; left -= 50_000) {
              clock.advance(Math.min(50_000, left));
              check();
            }
          }
          const end = clock.now() + t.federationTimeout + period + 1;
          while (clock.now() < end) {
            clock.advance(Math.min(20_000, end - clock.now()));
            check();
          }
          for (const u of sent.keys()) expect(engine.getUserPresence(u).state).toBe('offline');
          engine.stop();
        },
      ),
      fcParams(60),
    );
  });
});
