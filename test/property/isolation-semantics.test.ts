/**
 * Isolation (issue 5): arbitrary values returned or thrown by router modules,
 * arbitrary invalid inputs and arbitrary inbound EDUs never throw an untyped
 * error out of the engine and never change state they should not.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPresenceError, type PresenceEngine, type PresenceRouterCallbacks } from '../../src/index.js';
import { createTestEngine, flushMicrotasks, recordSyncStream } from '../../src/testing/index.js';
import { PresenceModel, type Presence, type RemoteItem } from '../model/reference-model.js';
import { fcParams } from '../support/fc.js';

const LOCALS = ['@a:test.local', '@b:test.local', '@c:test.local'];
const REMOTES = ['@r1:remote.one', '@r2:remote.one', '@s1:remote.two'];
const EVERYONE = [...LOCALS, ...REMOTES];

/** Everything observable about presence: each user's state and the stream token. */
function observe(engine: PresenceEngine) {
  return { token: engine.currentToken, users: EVERYONE.map((u) => ({ ...engine.getUserPresence(u) })) };
}

/** Run `fn`; anything it throws must be a typed PresenceError. Returns whether it threw. */
function typedOnly(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (error) {
    expect(isPresenceError(error), `untyped error escaped: ${String(error)}`).toBe(true);
    return true;
  }
}

/** A scripted workload, the same for the engine with junk routers and its router-less twin. */
async function workload(engine: PresenceEngine, advance: (ms: number) => void): Promise<void> {
  engine.joinRoom('!r:test.local', '@a:test.local');
  engine.joinRoom('!r:test.local', '@b:test.local');
  engine.joinRoom('!r:test.local', '@r1:remote.one');
  engine.setPresence('@a:test.local', { presence: 'online', statusMsg: 'hi' });
  const h = engine.userSyncing('@b:test.local', { setPresence: 'unavailable' });
  engine.receiveFederationEdu('remote.one', { push: [{ user_id: '@r1:remote.one', presence: 'online' }] });
  engine.setPresenceForUsers({ '@c:test.local': { presence: 'online' } });
  engine.sendLocalOnlinePresenceTo(['@a:test.local', '@s1:remote.two']);
  advance(40_000);
  h.end();
  engine.bumpActive('@c:test.local');
  advance(400_000);
  engine.leaveRoom('!r:test.local', '@b:test.local');
  await flushMicrotasks(50);
}

const junk = fc.anything().filter((v) => v !== 'ALL');
const answerArb = fc.oneof(
  junk.map((v) => ({ throws: false, value: v })),
  junk.map((v) => ({ throws: true, value: v })),
  fc.constant({ throws: true, value: new Error('boom') }),
);

describe('isolation', () => {
  it('router modules returning or throwing arbitrary values change nothing and crash nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(answerArb, answerArb), { minLength: 1, maxLength: 3 }), async (modules) => {
        const a = createTestEngine();
        const b = createTestEngine();
        modules.forEach(([forStates, interest], i) => {
          const answer = (x: { throws: boolean; value: unknown }) => () => {
            if (x.throws) throw x.value;
            return x.value;
          };
          a.engine.registerPresenceRouter(`junk${i}`, {
            getUsersForStates: answer(forStates) as unknown as PresenceRouterCallbacks['getUsersForStates'],
            getInterestedUsers: answer(interest) as unknown as PresenceRouterCallbacks['getInterestedUsers'],
          });
        });
        const streamsA = LOCALS.map((u) => recordSyncStream(a.engine, u));
        const streamsB = LOCALS.map((u) => recordSyncStream(b.engine, u));
        await workload(a.engine, (ms) => a.clock.advance(ms));
        await workload(b.engine, (ms) => b.clock.advance(ms));
        expect(observe(a.engine)).toEqual(observe(b.engine));
        for (let i = 0; i < LOCALS.length; i++) {
          expect([...(streamsA[i]?.view().values() ?? [])]).toEqual([...(streamsB[i]?.view().values() ?? [])]);
          const u = LOCALS[i] as string;
          for (const since of [null, 0, 2, a.engine.currentToken - 1]) {
            expect((await a.engine.getNewEvents(u, since)).events).toEqual((await b.engine.getNewEvents(u, since)).events);
          }
        }
        a.engine.stop();
        b.engine.stop();
      }),
      fcParams(60),
    );
  });

  it('arbitrary invalid inputs throw only typed errors and change nothing', async () => {
    const anyArg = fc.oneof(fc.anything(), fc.string(), fc.constantFrom('@a:test.local', '!r:test.local', 'online', 'busy', '', '@x:remote.one'));
    const call = fc.oneof(
      fc.tuple(anyArg, anyArg, anyArg).map(([u, p, s]) => ['setPresence', (e: PresenceEngine) => e.setPresence(u as string, { presence: p as string, statusMsg: s as string })] as const),
      fc.tuple(anyArg, anyArg).map(([u, input]) => ['setPresence(raw)', (e: PresenceEngine) => e.setPresence(u as string, input as never)] as const),
      fc.tuple(anyArg, anyArg, anyArg).map(([u, d, p]) => ['userSyncing', (e: PresenceEngine) => e.userSyncing(u as string, { deviceId: d as string, setPresence: p as 'online' }).end()] as const),
      fc.tuple(anyArg, anyArg).map(([u, d]) => ['bumpActive', (e: PresenceEngine) => e.bumpActive(u as string, d as string)] as const),
      fc.tuple(anyArg, anyArg, anyArg).map(([r, u, m]) => ['setMembership', (e: PresenceEngine) => e.setMembership(r as string, u as string, m as 'join')] as const),
      fc.tuple(anyArg, anyArg).map(([users, x]) => ['setPresenceForUsers', (e: PresenceEngine) => e.setPresenceForUsers({ [String(users)]: x as never })] as const),
      fc.array(anyArg, { maxLength: 3 }).map((ids) => ['sendLocalOnlinePresenceTo', (e: PresenceEngine) => e.sendLocalOnlinePresenceTo(ids as string[])] as const),
      anyArg.map((raw) => ['apply', (e: PresenceEngine) => e.apply(raw as never)] as const),
      fc.tuple(anyArg, anyArg).map(([r, t]) => ['getPresence', (e: PresenceEngine) => e.getPresence(r as string, t as string)] as const),
      fc.tuple(anyArg, anyArg).map(([u, since]) => ['getNewEvents', (e: PresenceEngine) => void e.getNewEvents(u as string, since as number).catch((err: unknown) => {
        if (!isPresenceError(err)) throw err;
      })] as const),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 6 }), async (calls) => {
        const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: false } } });
        engine.joinRoom('!r:test.local', '@a:test.local');
        engine.joinRoom('!r:test.local', '@b:test.local');
        engine.setPresence('@a:test.local', { presence: 'online' });
        for (const [, fn] of calls) {
          const before = observe(engine);
          const threw = typedOnly(() => fn(engine));
          await flushMicrotasks();
          if (threw) expect(observe(engine), 'a rejected input changed state').toEqual(before);
          clock.advance(1_000);
        }
        engine.stop();
      }),
      fcParams(200),
    );
  });

  it('arbitrary inbound EDUs never throw, never touch local users or users of other servers, and apply exactly their valid items', () => {
    const userArb = fc.constantFrom(...EVERYONE, '@x:remote.one', 'nope', '', '@a:test.local');
    const item = fc.oneof(
      fc.anything(),
      // mostly-valid items with, now and then, one bad field
      fc.record(
        {
          user_id: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...REMOTES) }, { weight: 1, arbitrary: userArb }, { weight: 1, arbitrary: fc.anything() }),
          presence: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('online', 'unavailable', 'offline', 'busy', 'org.matrix.msc3026.busy') }, { weight: 1, arbitrary: fc.constantFrom('dancing', '', 'ONLINE') }, { weight: 1, arbitrary: fc.anything() }),
          last_active_ago: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 10_000_000 }) }, fc.integer({ min: -10, max: -1 }), fc.constant(null), fc.double(), fc.anything()),
          status_msg: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(null, '', 'hi') }, fc.anything()),
          currently_active: fc.oneof({ weight: 4, arbitrary: fc.boolean() }, fc.constant(null), fc.anything()),
        },
        { requiredKeys: ['presence'] },
      ),
    );
    const content = fc.oneof(fc.anything(), fc.record({ push: fc.array(item, { maxLength: 5 }) }), fc.record({ push: fc.anything() }));
    fc.assert(
      fc.property(fc.constantFrom('remote.one', 'remote.two', 'test.local', '', 'evil'), fc.array(content, { minLength: 1, maxLength: 4 }), (origin, edus) => {
        const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: false } } });
        const model = new PresenceModel({ now: clock.now(), serverName: 'test.local' });
        engine.setPresence('@a:test.local', { presence: 'online' });
        model.setPresence('@a:test.local', 'online', undefined, '');
        for (const c of edus) {
          const before = observe(engine);
          let result: { applied: number; dropped: number } | undefined;
          expect(typedOnly(() => (result = engine.receiveFederationEdu(origin, c)))).toBe(false);
          model.receiveRemote(validItems(origin, c));
          const after = observe(engine);
          for (let i = 0; i < EVERYONE.length; i++) {
            const u = EVERYONE[i] as string;
            if (u.endsWith(`:${origin}`) && origin !== 'test.local') continue;
            expect(after.users[i], `${u} must not change on an EDU from ${origin}`).toEqual(before.users[i]);
          }
          for (const u of EVERYONE) expect({ ...engine.getUserPresence(u) }, u).toEqual(model.stateOf(u));
          expect(result?.applied).toBe(new Set(validItems(origin, c).filter((i) => !i.userId.endsWith(':test.local')).map((i) => i.userId)).size);
          clock.advance(10_000);
          model.advance(10_000);
        }
        engine.stop();
      }),
      fcParams(150),
    );
  });
});

const PRESENCE: Record<string, Presence> = { online: 'online', unavailable: 'unavailable', offline: 'offline', busy: 'busy', 'org.matrix.msc3026.busy': 'busy' };

/** The spec's validation (§3.9 + decisions.md), written independently of the engine's schema. */
function validItems(origin: string, content: unknown): RemoteItem[] {
  if (typeof content !== 'object' || content === null || Array.isArray(content)) return [];
  const push = (content as { push?: unknown }).push;
  if (!Array.isArray(push)) return [];
  const out: RemoteItem[] = [];
  for (const raw of push) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) continue;
    const it = raw as Record<string, unknown>;
    const user = it.user_id;
    if (typeof user !== 'string' || !/^@[^:]+:[a-z0-9.-]+$/.test(user) || user.slice(user.indexOf(':') + 1) !== origin) continue;
    const presence = typeof it.presence === 'string' && Object.hasOwn(PRESENCE, it.presence) ? PRESENCE[it.presence] : undefined;
    if (presence === undefined) continue;
    // a non-negative integer (decisions.md); beyond 2^53 it is not an exact integer, so it is rejected too
    const ago = it.last_active_ago;
    if (!(ago === undefined || ago === null || (typeof ago === 'number' && Number.isSafeInteger(ago) && ago >= 0))) continue;
    const status = it.status_msg;
    if (!(status === undefined || status === null || typeof status === 'string')) continue;
    const active = it.currently_active;
    if (!(active === undefined || active === null || typeof active === 'boolean')) continue;
    out.push({ userId: user, presence, lastActiveAgo: ago ?? undefined, statusMsg: status ?? null, currentlyActive: active ?? false });
  }
  return out;
}
