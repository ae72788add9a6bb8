/**
 * ALL_USERS (spec §4.4, issue 5): a listening user whose router interest is
 * ALL_USERS sees exactly the router-filtered set of all changes — nothing
 * missing, nothing extra — on the push side (sync stream) and the pull side
 * (`getNewEvents` from any earlier token). "All changes" is read from the
 * engine's own committed log (every entry that got a presence stream id), so
 * this property does not depend on the reference model.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALL_USERS, type SyncHandle, type UserPresenceState } from '../../src/index.js';
import { createTestEngine, flushMicrotasks, recordSyncStream } from '../../src/testing/index.js';
import { fcParams } from '../support/fc.js';

const LOCALS = ['@a:test.local', '@b:test.local', '@c:test.local'];
const REMOTES = ['@r1:remote.one', '@s1:remote.two'];
const EVERYONE = [...LOCALS, ...REMOTES];
const WATCHER = '@watcher:test.local';

type Op =
  | { kind: 'set'; user: string; presence: 'online' | 'unavailable' | 'offline' | 'busy'; status: string | undefined }
  | { kind: 'sync'; user: string; presence: 'online' | 'unavailable' | 'offline' }
  | { kind: 'end'; pick: number }
  | { kind: 'bump'; user: string }
  | { kind: 'join'; user: string; room: string; join: boolean }
  | { kind: 'remote'; user: string; presence: 'online' | 'unavailable' | 'offline' }
  | { kind: 'module'; user: string; presence: 'online' | 'offline' }
  | { kind: 'wait'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    user: fc.constantFrom(...LOCALS, WATCHER),
    presence: fc.constantFrom('online' as const, 'unavailable' as const, 'offline' as const, 'busy' as const),
    status: fc.constantFrom(undefined, 'hi'),
  }),
  fc.record({ kind: fc.constant('sync' as const), user: fc.constantFrom(...LOCALS), presence: fc.constantFrom('online' as const, 'unavailable' as const, 'offline' as const) }),
  fc.record({ kind: fc.constant('end' as const), pick: fc.nat(10) }),
  fc.record({ kind: fc.constant('bump' as const), user: fc.constantFrom(...LOCALS) }),
  fc.record({ kind: fc.constant('join' as const), user: fc.constantFrom(...EVERYONE, WATCHER), room: fc.constantFrom('!r:test.local', '!q:test.local'), join: fc.boolean() }),
  fc.record({ kind: fc.constant('remote' as const), user: fc.constantFrom(...REMOTES), presence: fc.constantFrom('online' as const, 'unavailable' as const, 'offline' as const) }),
  fc.record({ kind: fc.constant('module' as const), user: fc.constantFrom(...EVERYONE), presence: fc.constantFrom('online' as const, 'offline' as const) }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constantFrom(300_000, 1_800_000, 3_600_000)) }),
);

/** What the router sends the watcher: changed user → recipients; optionally only some states. */
const routingArb = fc.record({
  routeTo: fc.record(Object.fromEntries([...EVERYONE, WATCHER].map((u) => [u, fc.boolean()]))) as fc.Arbitrary<Record<string, boolean>>,
  onlyState: fc.constantFrom(undefined, 'online', 'offline'),
});

const sortByUser = (xs: readonly UserPresenceState[]) => [...xs].map((s) => ({ ...s })).sort((a, b) => a.userId.localeCompare(b.userId));

describe('ALL_USERS semantics', () => {
  it('an ALL_USERS listener sees exactly the router-filtered set of all changes (push and pull)', async () => {
    await fc.assert(
      fc.asyncProperty(routingArb, fc.array(opArb, { maxLength: 30 }), async (routing, ops) => {
        const { engine, clock } = createTestEngine({ config: { presence: { busy_enabled: true } } });
        const routed = (s: UserPresenceState) => routing.routeTo[s.userId] === true && (routing.onlyState === undefined || s.state === routing.onlyState);
        engine.registerPresenceRouter('all-for-watcher', {
          getInterestedUsers: (u) => (u === WATCHER ? ALL_USERS : new Set<string>()),
          getUsersForStates: (states) => {
            const mine = states.filter(routed);
            // also route to someone else, who must not leak into the watcher's view
            return new Map([
              [WATCHER, new Set(mine)],
              ['@a:test.local', new Set(states)],
            ]);
          },
        });
        const changes: { streamId: number; userId: string }[] = [];
        const expectedView = new Map<string, UserPresenceState>();
        engine.committed$.subscribe((entries) => {
          for (const { event } of entries) {
            if (event.type !== 'user.step' || event.streamId === undefined) continue;
            changes.push({ streamId: event.streamId, userId: event.userId });
            const s = engine.getUserPresence(event.userId); // the state at the end of this turn
            if (routed(s)) expectedView.set(s.userId, s);
          }
        });
        const watcher = recordSyncStream(engine, WATCHER);
        const tokens: number[] = [engine.currentToken];
        const open: SyncHandle[] = [];
        for (const op of ops) {
          switch (op.kind) {
            case 'set':
              engine.setPresence(op.user, { presence: op.presence, statusMsg: op.status });
              break;
            case 'sync':
              open.push(engine.userSyncing(op.user, { setPresence: op.presence }));
              break;
            case 'end':
              if (open.length > 0) open.splice(op.pick % open.length, 1)[0]?.end();
              break;
            case 'bump':
              engine.bumpActive(op.user);
              break;
            case 'join':
              if (op.join) engine.joinRoom(op.room, op.user);
              else engine.leaveRoom(op.room, op.user);
              break;
            case 'remote':
              engine.receiveFederationEdu(op.user.slice(op.user.indexOf(':') + 1), { push: [{ user_id: op.user, presence: op.presence }] });
              break;
            case 'module':
              engine.setPresenceForUsers({ [op.user]: { presence: op.presence } });
              break;
            case 'wait':
              clock.advance(op.ms);
              break;
          }
          await flushMicrotasks();
          // push: exactly the routed changes, each as it was when delivered
          expect(sortByUser([...watcher.view().values()])).toEqual(sortByUser([...expectedView.values()]));
          // pull: from every earlier token, the routed subset of the users changed since, in their current state
          for (const token of tokens) {
            const since = new Set(changes.filter((c) => c.streamId > token).map((c) => c.userId));
            const want = [...since].map((u) => engine.getUserPresence(u)).filter(routed);
            const got = await engine.getNewEvents(WATCHER, token);
            expect(sortByUser(got.events), `getNewEvents(watcher, ${token})`).toEqual(sortByUser(want));
          }
          tokens.push(engine.currentToken);
        }
        watcher.stop();
        engine.stop();
      }),
      fcParams(80),
    );
  });
});
