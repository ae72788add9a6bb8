/**
 * Visibility policies (docs/policies.md), one rule at a time on every path:
 * push (sync streams), pull (`getNewEvents` with and without a token),
 * `GET /presence` and federation out; logged, replayed and snapshotted;
 * validated as inputs. The model-based suite (test/model) checks the same
 * rules against the reference model over random command sequences.
 */
import { describe, expect, it } from 'vitest';
import { createModuleApi, isPresenceError, PresenceEngine, type FederationTransmission, type PresenceEngine as Engine } from '../../src/index.js';
import type { UserId } from '../../src/domain/ids.js';
import { createTestEngine, InMemoryEventLog, MemoryLogger, recordSyncStream, SimulatedClock } from '../../src/testing/index.js';

const HS = 'hs.org';
const A = '@alice:hs.org' as UserId;
const B = '@bob:hs.org' as UserId;
const C = '@carol:hs.org' as UserId;
const R1 = '@rita:one.org' as UserId;
const R2 = '@ray:one.org' as UserId;
const S1 = '@sam:two.org' as UserId;
const ROOM = '!room:hs.org';

function world(log = new InMemoryEventLog()) {
  const clock = new SimulatedClock();
  const { engine } = createTestEngine({ serverName: HS, clock, log });
  for (const u of [A, B, C, R1, R2, S1]) engine.joinRoom(ROOM, u);
  const sent: FederationTransmission[] = [];
  engine.federationOutbound$.subscribe((t) => sent.push(t));
  return { engine, clock, log, sent };
}

/** The last item sent to `server` about `user`, in wire form. */
function lastSent(sent: readonly FederationTransmission[], server: string, user: string) {
  let found: Record<string, unknown> | undefined;
  for (const t of sent) if (t.destination === server) for (const e of t.edus) for (const p of e.content.push) if (p.user_id === user) found = { ...p };
  return found;
}

async function pulled(engine: Engine, viewer: string, target: string, since: number | null) {
  const r = await engine.getNewEvents(viewer, since, { includeOffline: true });
  return r.events.find((s) => s.userId === target);
}

describe('invisible', () => {
  it('others see the masked state on every path; the user\'s own devices see the truth', async () => {
    const { engine, sent } = world();
    const bob = recordSyncStream(engine, B);
    const own = recordSyncStream(engine, A);
    const start = engine.currentToken;
    engine.setPresencePolicy(A, { invisible: true });
    engine.setPresence(A, { presence: 'online', statusMsg: 'secret' });

    const masked = { userId: A, state: 'offline', lastActiveTs: 0, lastFederationUpdateTs: 0, lastUserSyncTs: 0, statusMsg: null, currentlyActive: false };
    expect(bob.view().get(A)).toEqual(masked);
    for (const b of bob.batches) for (const s of b.events) if (s.userId === A) expect(s.statusMsg).toBeNull();
    expect(await pulled(engine, B, A, start)).toEqual(masked);
    expect(await pulled(engine, B, A, null)).toEqual(masked);
    expect((await engine.getNewEvents(B, null)).events.map((s) => s.userId)).not.toContain(A); // offline users are left out of initial syncs
    expect(engine.getPresence(B, A)).toEqual({ presence: 'offline' });
    const wire = lastSent(sent, 'one.org', A);
    expect(wire).toMatchObject({ user_id: A, presence: 'offline' });
    expect(wire?.['status_msg'] ?? null).toBeNull();
    expect(wire?.['last_active_ago']).toBeUndefined();
    expect(wire?.['currently_active'] ?? false).toBe(false);

    expect(own.view().get(A)?.state).toBe('online');
    expect((await pulled(engine, A, A, start))?.statusMsg).toBe('secret');
    expect(engine.getPresence(A, A)).toMatchObject({ presence: 'online', status_msg: 'secret' });
    expect(engine.getUserPresence(A).state).toBe('online'); // the record (and the log) keep the truth
  });

  it('clearing the policy shows the truth again, on push, pull and federation', async () => {
    const { engine, sent } = world();
    engine.setPresencePolicy(A, { invisible: true });
    engine.setPresence(A, { presence: 'online' });
    const bob = recordSyncStream(engine, B);
    const before = engine.currentToken;
    engine.setPresencePolicy(A, {});
    expect(bob.view().get(A)?.state).toBe('online');
    expect((await pulled(engine, B, A, before))?.state).toBe('online');
    expect(lastSent(sent, 'two.org', A)?.presence).toBe('online');
    expect(engine.getPresencePolicy(A)).toEqual({ invisible: false, allow: null, deny: { users: [], servers: [] } });
  });
});

describe('allow and deny lists', () => {
  it('deny by user and by server hides from those viewers only', async () => {
    const { engine, sent } = world();
    engine.setPresence(A, { presence: 'online' });
    const bob = recordSyncStream(engine, B);
    const carol = recordSyncStream(engine, C);
    engine.setPresencePolicy(A, { deny: { users: [B], servers: ['two.org'] } });
    engine.setPresence(A, { presence: 'unavailable' });
    expect(bob.view().get(A)?.state).toBe('offline');
    expect(carol.view().get(A)?.state).toBe('unavailable');
    expect(engine.getPresence(B, A).presence).toBe('offline');
    expect(engine.getPresence(C, A).presence).toBe('unavailable');
    expect(lastSent(sent, 'two.org', A)?.presence).toBe('offline');
    expect(lastSent(sent, 'one.org', A)?.presence).toBe('unavailable');
  });

  it('a denied remote user hides the truth from their whole server', () => {
    const { engine, sent } = world();
    engine.setPresencePolicy(A, { deny: { users: [R1] } });
    engine.setPresence(A, { presence: 'online' });
    expect(lastSent(sent, 'one.org', A)?.presence).toBe('offline'); // @ray:one.org loses it too: a server is one audience
    expect(lastSent(sent, 'two.org', A)?.presence).toBe('online');
  });

  it('an allow list shows the truth to the listed users and servers only', async () => {
    const { engine, sent } = world();
    engine.setPresencePolicy(A, { allow: { users: [C, R1], servers: ['two.org'] } });
    engine.setPresence(A, { presence: 'online' });
    expect(engine.getPresence(B, A).presence).toBe('offline');
    expect(engine.getPresence(C, A).presence).toBe('online');
    expect((await pulled(engine, B, A, null))?.state).toBe('offline');
    expect((await pulled(engine, C, A, null))?.state).toBe('online');
    // allowing one remote user does not allow their server (it would re-share with all its users)
    expect(lastSent(sent, 'one.org', A)?.presence).toBe('offline');
    expect(lastSent(sent, 'two.org', A)?.presence).toBe('online');
  });

  it('an empty allow list hides from everyone but the user', () => {
    const { engine } = world();
    engine.setPresencePolicy(A, { allow: {} });
    engine.setPresence(A, { presence: 'online' });
    expect(engine.getPresence(C, A).presence).toBe('offline');
    expect(engine.getPresence(A, A).presence).toBe('online');
  });

  it('a policy never grants visibility: without a shared room GET /presence stays forbidden', () => {
    const { engine } = world();
    engine.setPresencePolicy(A, { allow: { users: ['@dave:hs.org'] } });
    expect(() => engine.getPresence('@dave:hs.org', A)).toThrow(/share no joined room/);
  });
});

describe('policies are logged inputs', () => {
  it('replay from the log and from a snapshot restores them', async () => {
    const { engine, clock, log } = world();
    engine.setPresence(A, { presence: 'online' });
    engine.setPresencePolicy(A, { deny: { users: [B] } });
    const snap = JSON.parse(JSON.stringify(engine.snapshot())) as ReturnType<Engine['snapshot']>;
    engine.setPresencePolicy(C, { invisible: true });
    engine.setPresence(C, { presence: 'online' });
    const fromLog = new PresenceEngine({ config: engine.config, clock, log, logger: new MemoryLogger() });
    const tail = new InMemoryEventLog(snap.position);
    tail.append([...log.read(snap.position)].map((e) => e.event));
    const fromSnap = new PresenceEngine({ config: engine.config, clock, log: tail, snapshot: snap, logger: new MemoryLogger() });
    for (const e of [fromLog, fromSnap]) {
      expect(e.getPresencePolicy(A)).toEqual(engine.getPresencePolicy(A));
      expect(e.getPresencePolicy(C)).toEqual(engine.getPresencePolicy(C));
      expect(e.getPresence(B, A).presence).toBe('offline');
      expect(e.getPresence(B, C).presence).toBe('offline');
      expect(e.getPresence(A, C).presence).toBe('offline');
      expect(e.currentToken).toBe(engine.currentToken);
      // tokens older than a snapshot are answered in full by design: read from the snapshot's token
      const byUser = (r: { events: { userId: string }[] }) => r.events.map((s) => ({ ...s })).sort((x, y) => x.userId.localeCompare(y.userId));
      expect(byUser(await e.getNewEvents(B, snap.streamId))).toEqual(byUser(await engine.getNewEvents(B, snap.streamId)));
      e.stop();
    }
    const policyUsers = [...log.read(0)].flatMap((e) => (e.event.type === 'user.policy' ? [e.event.userId] : []));
    expect(policyUsers).toEqual([A, C]);
  });

  it('ingest takes policy.set events; invalid policies are rejected with the field named, and change nothing', () => {
    const { engine } = world();
    engine.apply({ type: 'policy.set', userId: A, policy: { deny: { servers: ['one.org', 'one.org'] } } });
    expect(engine.getPresencePolicy(A).deny.servers).toEqual(['one.org']);
    const token = engine.currentToken;
    const attempts: [() => unknown, RegExp][] = [
      [() => engine.setPresencePolicy(A, { invisible: 'yes' }), /policy\.invisible/],
      [() => engine.setPresencePolicy(A, { deny: { users: ['bob'] } }), /policy\.deny\.users\.0/],
      [() => engine.setPresencePolicy(A, { hidden: true }), /policy/],
      [() => engine.setPresencePolicy(R1, { invisible: true }), /not a local user/],
      [() => engine.apply({ type: 'policy.set', userId: A, policy: { allow: { servers: ['not a server'] } } } as never), /policy\.allow\.servers\.0/],
    ];
    for (const [attempt, message] of attempts) {
      let thrown: unknown;
      try {
        attempt();
      } catch (e) {
        thrown = e;
      }
      expect(isPresenceError(thrown), String(thrown)).toBe(true);
      expect(String((thrown as Error).message) + String((thrown as { field?: string }).field ?? '')).toMatch(message);
    }
    expect(engine.currentToken).toBe(token);
    expect(engine.getPresencePolicy(A).deny.servers).toEqual(['one.org']);
  });
});

describe('module API', () => {
  it('a module sets and reads policies like a client, logged', () => {
    const { engine, log } = world();
    const api = createModuleApi(engine, 'directory-sync');
    api.setPresencePolicy(A, { deny: { servers: ['one.org'] } });
    expect(api.getPresencePolicy(A).deny.servers).toEqual(['one.org']);
    engine.setPresence(A, { presence: 'online' });
    expect(engine.getPresence(B, A).presence).toBe('online');
    expect([...log.read(0)].some((e) => e.event.type === 'user.policy')).toBe(true);
    expect(() => api.setPresencePolicy(R1, { invisible: true })).toThrow(/not a local user/);
  });
});
