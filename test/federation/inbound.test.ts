/** Inbound federation: validation, spoofing, fan-out to local users, expiry of remote users. */
import { describe, expect, it } from 'vitest';
import { ALL_USERS } from '../../src/router/presence-router.js';
import { receiveTransactionEdus } from '../../src/federation/inbound.js';
import type { UserPresenceState } from '../../src/domain/presence.js';
import { createTestEngine, recordSyncStream } from '../../src/testing/index.js';

const ROOM = '!room:b.test';

function setup(config: Record<string, unknown> = {}) {
  return createTestEngine({ serverName: 'b.test', config, rooms: { [ROOM]: ['@bob:b.test', '@alice:a.test'] } });
}

describe('receiveFederationEdu', () => {
  it('applies valid items (spec §3.9) and fans them out to local users sharing a room', () => {
    const { engine, clock } = setup();
    const bob = recordSyncStream(engine, '@bob:b.test');
    const r = engine.receiveFederationEdu('a.test', {
      push: [{ user_id: '@alice:a.test', presence: 'online', last_active_ago: 2000, currently_active: true, status_msg: 'hi' }],
    });
    expect(r).toEqual({ applied: 1, dropped: 0 });
    const s = engine.getUserPresence('@alice:a.test');
    expect(s).toMatchObject({ state: 'online', lastActiveTs: clock.now() - 2000, statusMsg: 'hi', currentlyActive: true, lastFederationUpdateTs: clock.now() });
    expect(bob.view().get(s.userId)).toEqual(s);
    expect(engine.getPresence('@bob:b.test', '@alice:a.test')).toEqual({ presence: 'online', last_active_ago: 2000, status_msg: 'hi', currently_active: true });
  });

  it('keeps last_active_ts when last_active_ago is absent and defaults status_msg and currently_active', () => {
    const { engine, clock } = setup();
    engine.receiveFederationEdu('a.test', { push: [{ user_id: '@alice:a.test', presence: 'online', last_active_ago: 0, status_msg: 'x', currently_active: true }] });
    const t0 = clock.now();
    clock.advance(5000);
    engine.receiveFederationEdu('a.test', { push: [{ user_id: '@alice:a.test', presence: 'unavailable' }] });
    expect(engine.getUserPresence('@alice:a.test')).toMatchObject({ state: 'unavailable', lastActiveTs: t0, statusMsg: null, currentlyActive: false });
  });

  it('accepts both busy wire values', () => {
    const { engine } = setup();
    engine.receiveFederationEdu('a.test', { push: [{ user_id: '@alice:a.test', presence: 'org.matrix.msc3026.busy' }] });
    expect(engine.getUserPresence('@alice:a.test').state).toBe('busy');
    engine.receiveFederationEdu('a.test', { push: [{ user_id: '@alice:a.test', presence: 'online' }, { user_id: '@alice:a.test', presence: 'busy' }] });
    expect(engine.getUserPresence('@alice:a.test').state).toBe('busy'); // last item per user wins
  });

  it('rejects items whose user does not belong to the origin (spoofing) but applies the rest', () => {
    const { engine, logger } = setup();
    const r = engine.receiveFederationEdu('evil.test', {
      push: [
        { user_id: '@alice:a.test', presence: 'online' },
        { user_id: '@mallory:evil.test', presence: 'unavailable' },
      ],
    });
    expect(r).toEqual({ applied: 1, dropped: 1 });
    expect(engine.getUserPresence('@alice:a.test').state).toBe('offline');
    expect(engine.getUserPresence('@mallory:evil.test').state).toBe('unavailable');
    expect(engine.stats.droppedInboundItems).toBe(1);
    expect(logger.warnings().some((m) => m.includes('evil.test'))).toBe(true);
  });

  it('rejects items for our own users, even when the origin claims to be us', () => {
    const { engine } = setup();
    engine.setPresence('@bob:b.test', { presence: 'online' });
    const r = engine.receiveFederationEdu('b.test', { push: [{ user_id: '@bob:b.test', presence: 'offline' }] });
    expect(r).toEqual({ applied: 0, dropped: 1 });
    expect(engine.getUserPresence('@bob:b.test').state).toBe('online');
    expect(engine.stats.droppedInboundItems).toBe(1);
  });

  it('drops and counts items with unknown states or wrong field types; valid items still apply', () => {
    const { engine } = setup();
    const bad: unknown[] = [
      { user_id: '@alice:a.test', presence: 'away' },
      { user_id: '@alice:a.test', presence: '' },
      { user_id: '@alice:a.test' },
      { presence: 'online' },
      { user_id: 'alice', presence: 'online' },
      { user_id: 42, presence: 'online' },
      { user_id: '@alice:a.test', presence: 'online', last_active_ago: '5' },
      { user_id: '@alice:a.test', presence: 'online', last_active_ago: -1 },
      { user_id: '@alice:a.test', presence: 'online', last_active_ago: 1.5 },
      { user_id: '@alice:a.test', presence: 'online', status_msg: 7 },
      { user_id: '@alice:a.test', presence: 'online', currently_active: 'yes' },
      'not an object',
      null,
    ];
    const r = engine.receiveFederationEdu('a.test', { push: [...bad, { user_id: '@carol:a.test', presence: 'unavailable' }] });
    expect(r).toEqual({ applied: 1, dropped: bad.length });
    expect(engine.stats.droppedInboundItems).toBe(bad.length);
    expect(engine.getUserPresence('@alice:a.test').state).toBe('offline');
    expect(engine.getUserPresence('@carol:a.test').state).toBe('unavailable');
  });

  it('drops malformed content as a whole and treats a missing push as empty', () => {
    const { engine } = setup();
    expect(engine.receiveFederationEdu('a.test', { push: 'nope' })).toEqual({ applied: 0, dropped: 1 });
    expect(engine.receiveFederationEdu('a.test', 'nope')).toEqual({ applied: 0, dropped: 1 });
    expect(engine.receiveFederationEdu('a.test', {})).toEqual({ applied: 0, dropped: 0 });
  });

  it('ignores EDUs entirely when presence is disabled or untracked', () => {
    for (const enabled of [false, 'untracked'] as const) {
      const { engine } = setup({ presence: { enabled } });
      expect(engine.receiveFederationEdu('a.test', { push: [{ user_id: '@alice:a.test', presence: 'online' }] })).toEqual({ applied: 0, dropped: 0 });
      expect(engine.getUserPresence('@alice:a.test').state).toBe('offline');
    }
  });

  it('expires a remote user to offline after 30 minutes without an update, and notifies local users', () => {
    const { engine, clock } = setup();
    const bob = recordSyncStream(engine, '@bob:b.test');
    const push = { push: [{ user_id: '@alice:a.test', presence: 'online', last_active_ago: 0, currently_active: true }] };
    engine.receiveFederationEdu('a.test', push);
    clock.advance(25 * 60_000);
    engine.receiveFederationEdu('a.test', push); // a keep-alive: not notified, but refreshes the expiry
    expect(bob.batches).toHaveLength(1);
    clock.advance(29 * 60_000);
    expect(engine.getUserPresence('@alice:a.test').state).toBe('online');
    clock.advance(60_000 + 10_000);
    expect(engine.getUserPresence('@alice:a.test').state).toBe('offline');
    expect(bob.view().get(engine.getUserPresence('@alice:a.test').userId)?.state).toBe('offline');
    // offline remote users never expire further and need no timer
    clock.advance(10 * 3_600_000);
    expect(engine.getUserPresence('@alice:a.test').state).toBe('offline');
  });

  it('routes remote changes through the presence router like local ones (router recipients and ALL_USERS)', () => {
    const { engine } = setup();
    engine.registerPresenceRouter('test', {
      getUsersForStates: (states: readonly UserPresenceState[]) => {
        const out = new Map<string, Set<UserPresenceState>>();
        const carol = states.filter((s) => s.userId === '@dave:a.test');
        if (carol.length > 0) out.set('@carol:b.test', new Set(carol));
        out.set('@admin:b.test', new Set(states));
        return out;
      },
      getInterestedUsers: (userId: string) =>
        userId === '@admin:b.test' ? ALL_USERS : userId === '@carol:b.test' ? new Set(['@dave:a.test']) : new Set<string>(),
    });
    const carol = recordSyncStream(engine, '@carol:b.test');
    const admin = recordSyncStream(engine, '@admin:b.test');
    const bob = recordSyncStream(engine, '@bob:b.test');
    engine.receiveFederationEdu('a.test', { push: [{ user_id: '@dave:a.test', presence: 'online' }] });
    expect([...carol.view().keys()]).toEqual(['@dave:a.test']);
    expect([...admin.view().keys()]).toEqual(['@dave:a.test']);
    expect(bob.view().size).toBe(0); // shares no room with dave
  });
});

describe('receiveTransactionEdus', () => {
  it('feeds m.presence EDUs to the engine and ignores other EDUs and malformed envelopes', () => {
    const { engine } = setup();
    const r = receiveTransactionEdus(engine, 'a.test', [
      { edu_type: 'm.typing', content: {} },
      { edu_type: 'm.presence', content: { push: [{ user_id: '@alice:a.test', presence: 'online' }, { user_id: '@x:c.test', presence: 'online' }] } },
      { content: {} },
      7,
    ]);
    expect(r).toEqual({ applied: 1, dropped: 1, ignoredEdus: 3 });
    expect(receiveTransactionEdus(engine, 'a.test', 'nope')).toEqual({ applied: 0, dropped: 0, ignoredEdus: 0 });
  });
});
