/**
 * fast-check commands for the model-based test. Each command applies the same
 * input to the reference model and to the engine, then `checkAll` compares
 * presence, every open sync stream and `getNewEvents` from earlier tokens.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { isPresenceError } from '../../src/index.js';
import { recordSyncStream } from '../../src/testing/index.js';
import {
  checkAll,
  checkPresence,
  checkPull,
  DEVICES,
  EVERYONE,
  LOCALS,
  REMOTES,
  replayed,
  ROOMS,
  type Real,
  type World,
} from './harness.js';
import type { MPolicy, Presence, RemoteItem } from './reference-model.js';

type Cmd = fc.AsyncCommand<World, Real>;

const device = (d: string | undefined) => d ?? '';
const show = (v: unknown) => JSON.stringify(v);

class SetPresence implements Cmd {
  constructor(
    readonly user: string,
    readonly presence: Presence,
    readonly statusMsg: string | null | undefined,
    readonly deviceId: string | undefined,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    m.model.setPresence(this.user, this.presence, this.statusMsg, device(this.deviceId));
    r.engine.setPresence(this.user, { presence: this.presence, statusMsg: this.statusMsg, deviceId: this.deviceId });
    await checkAll(m, r);
  }
  toString = () => `setPresence(${this.user}, ${this.presence}, ${show(this.statusMsg)}, ${show(this.deviceId)})`;
}

class StartSync implements Cmd {
  constructor(
    readonly user: string,
    readonly deviceId: string | undefined,
    readonly setPresence: 'online' | 'unavailable' | 'offline' | undefined,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const counts = m.model.syncStart(this.user, device(this.deviceId), this.setPresence ?? 'online');
    const handle = r.engine.userSyncing(this.user, { deviceId: this.deviceId, setPresence: this.setPresence });
    expect(handle.affectsPresence).toBe(counts);
    r.syncs.push({ user: this.user, device: this.deviceId, handle });
    await checkAll(m, r);
  }
  toString = () => `userSyncing(${this.user}, ${show(this.deviceId)}, ${show(this.setPresence)})`;
}

class EndSync implements Cmd {
  constructor(readonly pick: number) {}
  check = () => true;
  async run(m: World, r: Real) {
    if (r.syncs.length === 0) return;
    const [s] = r.syncs.splice(this.pick % r.syncs.length, 1);
    if (s === undefined) return;
    if (s.handle.affectsPresence) m.model.syncEnd(s.user, device(s.device));
    s.handle.end();
    s.handle.end(); // idempotent
    await checkAll(m, r);
  }
  toString = () => `endSync(#${this.pick})`;
}

class Bump implements Cmd {
  constructor(
    readonly user: string,
    readonly deviceId: string | undefined,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    m.model.bump(this.user, device(this.deviceId));
    r.engine.bumpActive(this.user, this.deviceId);
    await checkAll(m, r);
  }
  toString = () => `bumpActive(${this.user}, ${show(this.deviceId)})`;
}

class Membership implements Cmd {
  constructor(
    readonly room: string,
    readonly user: string,
    readonly join: boolean,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    if (this.join) {
      m.model.join(this.room, this.user);
      r.engine.joinRoom(this.room, this.user);
    } else {
      m.model.leave(this.room, this.user);
      r.engine.leaveRoom(this.room, this.user);
    }
    await checkAll(m, r);
  }
  toString = () => `${this.join ? 'join' : 'leave'}(${this.room}, ${this.user})`;
}

/** Leave a room the user is actually in: picks among the current memberships. */
class LeaveJoined implements Cmd {
  constructor(readonly pick: number) {}
  check = () => true;
  async run(m: World, r: Real) {
    const pairs: [string, string][] = [];
    for (const [room, members] of m.model.rooms) for (const u of members) pairs.push([room, u]);
    if (pairs.length === 0) return;
    const [room, user] = pairs[this.pick % pairs.length] as [string, string];
    m.model.leave(room, user);
    r.engine.leaveRoom(room, user);
    await checkAll(m, r);
  }
  toString = () => `leaveJoined(#${this.pick})`;
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: World, r: Real) {
    m.model.advance(this.ms);
    r.clock.advance(this.ms);
    await checkAll(m, r);
  }
  toString = () => `advance(${this.ms})`;
}

const THRESHOLDS = [60_000, 30_000, 300_000, 3_600_000, 1_500_000, 1_800_000] as const;
type Stamp = 'lastActiveTs' | 'lastUserSyncTs' | 'lastFederationUpdateTs';

/** Advance to exactly a user's timestamp + a threshold (±1 ms), when that is still ahead: boundaries on purpose. */
class AdvanceToBoundary implements Cmd {
  constructor(
    readonly user: string,
    readonly stamp: Stamp,
    readonly threshold: number,
    readonly delta: -1 | 0 | 1,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const base = m.model.stateOf(this.user)[this.stamp];
    const target = base + this.threshold + this.delta;
    if (base === 0 || target <= m.model.now) return;
    const ms = target - m.model.now;
    m.model.advance(ms);
    r.clock.advance(ms);
    await checkAll(m, r);
  }
  toString = () => `advanceTo(${this.user}.${this.stamp} + ${this.threshold} ${this.delta >= 0 ? '+' : '-'} ${Math.abs(this.delta)})`;
}

/**
 * The user's last activity is exactly one granularity (±1 ms) ago and something
 * re-evaluates them without new activity: a sync ends, or (no sync open) a
 * module re-sets their current state. `currently_active` is strict (§2.2).
 */
class TouchAtGranularity implements Cmd {
  constructor(
    readonly user: string,
    readonly delta: -1 | 0 | 1,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const s = m.model.stateOf(this.user);
    const target = s.lastActiveTs + 60_000 + this.delta;
    if (s.lastActiveTs === 0 || target <= m.model.now) return;
    m.model.advance(target - m.model.now);
    r.clock.advance(target - r.clock.now());
    const k = r.syncs.findIndex((x) => x.user === this.user && x.handle.affectsPresence);
    if (k >= 0) {
      const [open] = r.syncs.splice(k, 1);
      if (open !== undefined) {
        m.model.syncEnd(open.user, device(open.device));
        open.handle.end();
      }
    } else {
      const now = m.model.stateOf(this.user);
      m.model.moduleSet([[this.user, now.state, now.statusMsg]]);
      r.engine.setPresenceForUsers({ [this.user]: { presence: now.state, statusMsg: now.statusMsg } });
    }
    await checkAll(m, r);
  }
  toString = () => `touchAtGranularity(${this.user}, ${this.delta})`;
}

interface WireItem {
  readonly raw: Record<string, unknown>;
  /** The model's reading of the item, or undefined when it must be dropped. */
  readonly valid: RemoteItem | undefined;
}

class RemoteEdu implements Cmd {
  constructor(
    readonly origin: string,
    readonly items: readonly WireItem[],
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    const accepted = this.items.filter((i) => i.valid !== undefined && i.valid.userId.endsWith(`:${this.origin}`)).map((i) => i.valid as RemoteItem);
    m.model.receiveRemote(accepted);
    const res = r.engine.receiveFederationEdu(this.origin, { push: this.items.map((i) => i.raw) });
    expect(res.applied).toBe(new Set(accepted.map((a) => a.userId)).size);
    expect(res.dropped).toBe(this.items.length - accepted.length);
    await checkAll(m, r);
  }
  toString = () => `receiveFederationEdu(${this.origin}, ${show(this.items.map((i) => i.raw))})`;
}

class ModuleSet implements Cmd {
  constructor(readonly users: readonly (readonly [string, Presence, string | null])[]) {}
  check = () => true;
  async run(m: World, r: Real) {
    const unique = [...new Map(this.users.map((u) => [u[0], u])).values()];
    m.model.moduleSet(unique);
    r.engine.setPresenceForUsers(Object.fromEntries(unique.map(([u, presence, statusMsg]) => [u, { presence, statusMsg }])));
    await checkAll(m, r);
  }
  toString = () => `setPresenceForUsers(${show(this.users)})`;
}

class SendLocalOnline implements Cmd {
  constructor(readonly users: readonly string[]) {}
  check = () => true;
  async run(m: World, r: Real) {
    const expected = m.model.onlineSentTo(this.users);
    m.model.sendLocalOnlinePresenceTo(this.users);
    const sent = new Map<string, Set<string>>();
    const tap = r.engine.federationOutbound$.subscribe((t) => {
      for (const edu of t.edus) for (const p of edu.content.push) sent.set(t.destination, (sent.get(t.destination) ?? new Set()).add(p.user_id ?? ''));
    });
    r.engine.sendLocalOnlinePresenceTo(this.users);
    tap.unsubscribe();
    expect(sent).toEqual(expected);
    await checkAll(m, r);
  }
  toString = () => `sendLocalOnlinePresenceTo(${show(this.users)})`;
}

/** docs/policies.md: a local user's visibility policy, replaced whole. */
class SetPolicy implements Cmd {
  constructor(
    readonly user: string,
    readonly policy: MPolicy,
  ) {}
  check = () => true;
  async run(m: World, r: Real) {
    m.model.setPolicy(this.user, this.policy);
    r.engine.setPresencePolicy(this.user, this.policy);
    expect(r.engine.getPresencePolicy(this.user).invisible).toBe(this.policy.invisible);
    await checkAll(m, r);
  }
  toString = () => `setPresencePolicy(${this.user}, ${show(this.policy)})`;
}

class OpenStream implements Cmd {
  constructor(readonly user: string) {}
  check = () => true;
  async run(m: World, r: Real) {
    const id = r.nextSubscription++;
    m.model.subscribe(id, this.user);
    r.recorders.set(id, recordSyncStream(r.engine, this.user));
    await checkAll(m, r);
  }
  toString = () => `openSyncStream(${this.user})`;
}

class CloseStream implements Cmd {
  constructor(readonly pick: number) {}
  check = () => true;
  async run(m: World, r: Real) {
    const ids = [...r.recorders.keys()];
    if (ids.length === 0) return;
    const id = ids[this.pick % ids.length] as number;
    r.recorders.get(id)?.stop();
    r.recorders.delete(id);
    m.model.unsubscribe(id);
    await checkAll(m, r);
  }
  toString = () => `closeSyncStream(#${this.pick})`;
}

/** Rebuild an engine from the log (and from the last snapshot plus the log after it) and compare it with the model. */
class Replay implements Cmd {
  check = () => true;
  async run(m: World, r: Real) {
    const fromLog = replayed(r);
    checkPresence(fromLog, m.model, 'replayed from log');
    await checkPull(fromLog, m.model, r.checkpoints, 'replayed from log');
    fromLog.stop();
    if (r.snapshot !== undefined) {
      const fromSnap = replayed(r, r.snapshot.snap);
      checkPresence(fromSnap, m.model, 'restored from snapshot');
      // tokens older than the snapshot are answered in full by design (decisions.md); compare the later ones
      await checkPull(
        fromSnap,
        m.model,
        r.checkpoints.filter((c) => c.position >= (r.snapshot?.position ?? 0)),
        'restored from snapshot',
      );
      fromSnap.stop();
    }
    r.snapshot = { snap: r.engine.snapshot(), position: m.model.position };
    await checkAll(m, r);
  }
  toString = () => 'replayFromLog()';
}

/** Inputs that must be rejected with a typed error and change nothing. */
class Invalid implements Cmd {
  constructor(readonly kind: number) {}
  check = () => true;
  async run(m: World, r: Real) {
    const e = r.engine;
    const attempts: (() => unknown)[] = [
      () => e.setPresence('@r1:remote.one', { presence: 'online' }),
      () => e.setPresence('@a:test.local', { presence: 'away' }),
      () => e.setPresence('@a:test.local', { presence: 'online', statusMsg: 42 as unknown as string }),
      () => e.setPresence('alice', { presence: 'online' }),
      () => e.setPresence('@a:test.local', { presence: 'online', deviceId: '' }),
      () => e.userSyncing('@b:test.local', { setPresence: 'busy' as 'online' }),
      () => e.userSyncing('@s1:remote.two'),
      () => e.bumpActive('@c:test.local', 7 as unknown as string),
      () => e.joinRoom('not-a-room', '@a:test.local'),
      () => e.setPresenceForUsers({ '@a:test.local': { presence: 'online' }, nope: { presence: 'online' } }),
      () => e.setPresenceForUsers({ '@b:test.local': { presence: 'dancing' } }),
      () => e.sendLocalOnlinePresenceTo(['@a:test.local', '']),
    ];
    const attempt = attempts[this.kind % attempts.length] as () => unknown;
    let thrown: unknown;
    try {
      attempt();
    } catch (error) {
      thrown = error;
    }
    expect(isPresenceError(thrown), `${String(thrown)}`).toBe(true);
    await checkAll(m, r);
  }
  toString = () => `invalidInput(#${this.kind})`;
}

// ─────────────── arbitraries ───────────────

const SERVERS = ['test.local', 'remote.one', 'remote.two'] as const;
const policyListArb = fc.record({ users: fc.subarray([...EVERYONE], { maxLength: 3 }), servers: fc.subarray([...SERVERS], { maxLength: 2 }) });
const NO_LIST = { users: [], servers: [] };
/** Policies: the default (clearing), invisible, allow lists, deny lists and mixes. */
const policyArb: fc.Arbitrary<MPolicy> = fc.oneof(
  fc.constant<MPolicy>({ invisible: false, allow: null, deny: NO_LIST }),
  fc.constant<MPolicy>({ invisible: true, allow: null, deny: NO_LIST }),
  policyListArb.map((allow): MPolicy => ({ invisible: false, allow, deny: NO_LIST })),
  policyListArb.map((deny): MPolicy => ({ invisible: false, allow: null, deny })),
  fc.record({ invisible: fc.boolean(), allow: fc.option(policyListArb, { nil: null }), deny: policyListArb }),
);

const local = fc.constantFrom(...LOCALS);
const anyUser = fc.constantFrom(...EVERYONE);
const deviceArb = fc.constantFrom(...DEVICES);
const presenceArb = fc.constantFrom<Presence>('online', 'unavailable', 'offline', 'busy');
const statusArb = fc.constantFrom<string | null | undefined>(undefined, null, '', 'hi', 'in a meeting');

/** Time steps: small, around every threshold (granularity, sync, idle, ping, federation, busy) and large. */
export const advanceArb = fc.oneof(
  fc.integer({ min: 0, max: 12_000 }),
  fc.constantFrom(1, 4_999, 5_000, 5_001, 25_000, 30_000, 30_001, 35_000, 60_000, 65_000, 300_000, 305_000, 1_500_000, 1_505_000, 1_800_000, 1_805_000, 3_600_000, 3_605_000),
  fc.integer({ min: 0, max: 4_000_000 }),
);

const remoteItemArb: fc.Arbitrary<WireItem> = fc.oneof(
  { weight: 4, arbitrary: fc
    .record({
      userId: fc.constantFrom(...REMOTES),
      presence: fc.constantFrom('online', 'unavailable', 'offline', 'busy', 'org.matrix.msc3026.busy'),
      ago: fc.option(fc.integer({ min: 0, max: 4_000_000 }), { nil: undefined }),
      status: fc.constantFrom<string | null | undefined>(undefined, null, '', 'away'),
      active: fc.option(fc.boolean(), { nil: undefined }),
    })
    .map(({ userId, presence, ago, status, active }) => {
      const raw: Record<string, unknown> = { user_id: userId, presence };
      if (ago !== undefined) raw.last_active_ago = ago;
      if (status !== undefined) raw.status_msg = status;
      if (active !== undefined) raw.currently_active = active;
      const valid: RemoteItem = {
        userId,
        presence: presence === 'org.matrix.msc3026.busy' ? 'busy' : (presence as Presence),
        lastActiveAgo: ago,
        statusMsg: status ?? null,
        currentlyActive: active ?? false,
      };
      return { raw, valid };
    }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<WireItem>(
      { raw: { user_id: '@r1:remote.one', presence: 'dancing' }, valid: undefined },
      { raw: { user_id: '@r1:remote.one', presence: 'online', last_active_ago: -5 }, valid: undefined },
      { raw: { user_id: '@r2:remote.one', presence: 'online', status_msg: 3 }, valid: undefined },
      { raw: { presence: 'online' }, valid: undefined },
      { raw: { user_id: 'r1', presence: 'online' }, valid: undefined },
    ),
  },
);

export function commandsArb(size: number): fc.Arbitrary<Iterable<Cmd>> {
  const arbs: fc.Arbitrary<Cmd>[] = [
      fc.tuple(local, presenceArb, statusArb, deviceArb).map(([u, p, s, d]) => new SetPresence(u, p, s, d)),
      fc.tuple(local, deviceArb, fc.constantFrom(undefined, 'online' as const, 'unavailable' as const, 'offline' as const)).map(
        ([u, d, p]) => new StartSync(u, d, p),
      ),
      fc.nat(20).map((i) => new EndSync(i)),
      fc.tuple(local, deviceArb).map(([u, d]) => new Bump(u, d)),
      fc.tuple(fc.constantFrom(...ROOMS), anyUser, fc.boolean()).map(([room, u, j]) => new Membership(room, u, j)),
      fc.tuple(fc.constantFrom(...ROOMS), anyUser).map(([room, u]) => new Membership(room, u, true)),
      fc.nat(30).map((i) => new LeaveJoined(i)),
      fc.tuple(local, fc.constantFrom(-1 as const, 0 as const, 1 as const)).map(([u, d]) => new TouchAtGranularity(u, d)),
      fc
        .tuple(anyUser, fc.constantFrom<Stamp>('lastActiveTs', 'lastUserSyncTs', 'lastFederationUpdateTs'), fc.constantFrom(...THRESHOLDS), fc.constantFrom(-1 as const, 0 as const, 1 as const))
        .map(([u, st, th, d]) => new AdvanceToBoundary(u, st, th, d)),
      advanceArb.map((ms) => new Advance(ms)),
      advanceArb.map((ms) => new Advance(ms)),
      fc.tuple(fc.constantFrom('remote.one', 'remote.two'), fc.array(remoteItemArb, { minLength: 1, maxLength: 3 })).map(
        ([o, items]) => new RemoteEdu(o, items),
      ),
      fc
        .array(fc.tuple(anyUser, presenceArb, fc.constantFrom<string | null>(null, 'set by module')), { minLength: 1, maxLength: 3 })
        .map((u) => new ModuleSet(u)),
      fc.subarray([...EVERYONE], { minLength: 1, maxLength: 3 }).map((u) => new SendLocalOnline(u)),
      local.map((u) => new OpenStream(u)),
      local.map((u) => new OpenStream(u)),
      fc.tuple(local, policyArb).map(([u, p]) => new SetPolicy(u, p)),
      fc.nat(10).map((i) => new CloseStream(i)),
      fc.constant(new Replay()),
      fc.nat(40).map((k) => new Invalid(k)),
  ];
  return fc.commands(arbs, { size: 'max', maxCommands: size });
}
