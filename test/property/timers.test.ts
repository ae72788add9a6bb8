/**
 * Timers (spec §2.4, §2.13 HEAD): a local user who neither syncs nor does
 * anything does not stay non-offline longer than the sync timeout (busy: the
 * busy timeout) plus one timer period; a remote user not refreshed does not
 * stay non-offline longer than the federation timeout plus one period.
 * Checked after every input, with client-driven inputs only (module-set
 * presence has no devices and is not subject to these timeouts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createTestEngine } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { Driver, LOCAL_USERS, propertyConfig, REMOTE_USERS, clientCommand, commands, type Command } from './engine-commands.js';

const PERIOD = 5_000;
const SYNC_TIMEOUT = 30_000;
const BUSY_TIMEOUT = 3_600_000;
const FEDERATION_TIMEOUT = 1_800_000;

describe('timeouts bound how long anyone stays non-offline', () => {
  it('local users: sync timeout + period (busy: busy timeout + period) after their last sync or activity; remote: federation timeout + period', () => {
    fc.assert(
      fc.property(commands(clientCommand, 80), fc.boolean(), (cmds: Command[], syncIsActivity) => {
        const { engine, clock } = createTestEngine({ config: propertyConfig(syncIsActivity) });
        const d = new Driver(engine, clock);
        /** Last time each user did something that counts (explicit presence, sync start/end, activity, EDU). */
        const lastTouch = new Map<string, number>();
        const touch = (u: string) => lastTouch.set(u, clock.now());
        for (const c of cmds) {
          if (c.kind === 'syncEnd' && d.open.length > 0) touch(d.open[c.pick % d.open.length]?.user ?? '');
          d.apply(c);
          if (c.kind === 'set' || c.kind === 'bump' || (c.kind === 'syncStart' && c.setPresence !== 'offline') || c.kind === 'edu') touch(c.user);
          const now = clock.now();
          for (const u of LOCAL_USERS) {
            if (d.syncing(u)) continue;
            const p = engine.getUserPresence(u);
            if (p.state === 'offline') continue;
            const limit = (p.state === 'busy' ? BUSY_TIMEOUT : SYNC_TIMEOUT) + PERIOD;
            expect({ user: u, state: p.state, idleFor: now - (lastTouch.get(u) ?? -Infinity) <= limit }).toEqual({
              user: u,
              state: p.state,
              idleFor: true,
            });
          }
          for (const u of REMOTE_USERS) {
            const p = engine.getUserPresence(u);
            if (p.state === 'offline') continue;
            expect(now - (lastTouch.get(u) ?? -Infinity)).toBeLessThanOrEqual(FEDERATION_TIMEOUT + PERIOD);
          }
        }
        // and once everything stops, everyone ends offline
        d.endAll();
        clock.advance(BUSY_TIMEOUT + PERIOD);
        for (const u of [...LOCAL_USERS, ...REMOTE_USERS]) expect(engine.getUserPresence(u).state).toBe('offline');
        expect(engine.stats.liveActors).toBe(0);
        engine.stop();
      }),
      fcParams(150),
    );
  });

  it('without busy, everyone is offline sync timeout + period after the last input', () => {
    fc.assert(
      fc.property(commands(clientCommand.filter((c) => !(c.kind === 'set' && c.presence === 'busy')), 60), fc.boolean(), (cmds, syncIsActivity) => {
        const { engine, clock } = createTestEngine({ config: propertyConfig(syncIsActivity) });
        const d = new Driver(engine, clock);
        for (const c of cmds) d.apply(c);
        d.endAll();
        clock.advance(SYNC_TIMEOUT + PERIOD);
        for (const u of LOCAL_USERS) expect(engine.getUserPresence(u).state).toBe('offline');
        engine.stop();
      }),
      fcParams(150),
    );
  });
});
