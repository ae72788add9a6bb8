/**
 * Delivery contract of the sync streams (decisions.md: deduplication is a contract):
 * - no batch holds two states for one user, and each delivered state is the
 *   user's state at emission time;
 * - no lost update: after any sequence of inputs, the last state each
 *   subscriber received for each user visible to it equals (in everything a
 *   client is notified about: state, status message, currently_active while
 *   online) that user's current state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PresenceBatch, PresenceEngine, UserPresenceState } from '../../src/index.js';
import { createTestEngine, flushMicrotasks } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';
import { Driver, LOCAL_USERS, PROPERTY_CONFIG, anyCommand, commands, notified, visibleTo } from './engine-commands.js';

function subscribeAll(engine: PresenceEngine, onBatch: (user: string, batch: PresenceBatch) => void) {
  return LOCAL_USERS.map((u) => engine.syncStream(u).subscribe((b) => onBatch(u, b)));
}

describe('sync stream delivery', () => {
  it('deduplication: one state per user per batch, each equal to the user state at emission', async () => {
    await fc.assert(
      fc.asyncProperty(commands(), async (cmds) => {
        const { engine, clock } = createTestEngine({ config: PROPERTY_CONFIG });
        const problems: string[] = [];
        const subs = subscribeAll(engine, (user, batch) => {
          const seen = new Set<string>();
          for (const s of batch.events) {
            if (seen.has(s.userId)) problems.push(`${user} got ${s.userId} twice in one batch`);
            seen.add(s.userId);
            const current = engine.getUserPresence(s.userId);
            if (JSON.stringify(current) !== JSON.stringify(s)) problems.push(`${user} got a stale state of ${s.userId}`);
          }
          if (batch.token !== engine.currentToken) problems.push(`${user} got token ${batch.token}, current ${engine.currentToken}`);
        });
        const d = new Driver(engine, clock);
        for (const c of cmds) {
          d.apply(c);
          await flushMicrotasks();
        }
        expect(problems).toEqual([]);
        for (const s of subs) s.unsubscribe();
        engine.stop();
      }),
      fcParams(100),
    );
  });

  it('no lost update: the last delivered state of every visible user is their current state', async () => {
    await fc.assert(
      fc.asyncProperty(commands(), async (cmds) => {
        const { engine, clock } = createTestEngine({ config: PROPERTY_CONFIG });
        const last = new Map<string, Map<string, UserPresenceState>>(LOCAL_USERS.map((u) => [u, new Map()]));
        const subs = subscribeAll(engine, (user, batch) => {
          for (const s of batch.events) last.get(user)?.set(s.userId, s);
        });
        const d = new Driver(engine, clock);
        for (const c of cmds) {
          d.apply(c);
          await flushMicrotasks();
        }
        for (const user of LOCAL_USERS) {
          for (const other of visibleTo(engine, user)) {
            expect({ user, other, ...notified(last.get(user)?.get(other)) }).toEqual({
              user,
              other,
              ...notified(engine.getUserPresence(other)),
            });
          }
        }
        for (const s of subs) s.unsubscribe();
        engine.stop();
      }),
      fcParams(100),
    );
  });
});

describe('pull side (getNewEvents)', () => {
  it('no lost update for a client polling incrementally, stale-token fallbacks included', async () => {
    await fc.assert(
      fc.asyncProperty(commands(anyCommand.filter((c) => c.kind !== 'full')), async (cmds) => {
        // a tiny change index, so that slow readers fall back to full answers
        const { engine, clock } = createTestEngine({ config: { ...PROPERTY_CONFIG, presence: { ...PROPERTY_CONFIG.presence, change_index_size: 16 } } });
        const view = new Map<string, Map<string, UserPresenceState>>(LOCAL_USERS.map((u) => [u, new Map()]));
        const token = new Map<string, number | null>(LOCAL_USERS.map((u) => [u, null]));
        const poll = async (user: string) => {
          const r = await engine.getNewEvents(user, token.get(user) ?? null, { includeOffline: true });
          for (const s of r.events) view.get(user)?.set(s.userId, s);
          token.set(user, r.nextToken);
        };
        const d = new Driver(engine, clock);
        for (const [i, c] of cmds.entries()) {
          d.apply(c);
          // users poll at different rates
          for (const [k, u] of LOCAL_USERS.entries()) if (i % (k * 7 + 1) === 0) await poll(u);
        }
        for (const u of LOCAL_USERS) await poll(u);
        for (const user of LOCAL_USERS) {
          for (const other of visibleTo(engine, user)) {
            expect({ user, other, ...notified(view.get(user)?.get(other)) }).toEqual({ user, other, ...notified(engine.getUserPresence(other)) });
          }
        }
        engine.stop();
      }),
      fcParams(150),
    );
  });
});
