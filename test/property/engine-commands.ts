/**
 * Arbitrary input sequences for the engine core properties: a small universe of
 * local and remote users, rooms (one excluded from presence), and every kind of
 * input (explicit presence, syncs, activity, memberships, federation, module
 * calls, time passing).
 */
import fc from 'fast-check';
import type { PresenceEngine, SyncHandle, UserPresenceState } from '../../src/index.js';
import type { SimulatedClock } from '../../src/testing/index.js';

export const SERVER = 'test.local';
export const LOCAL_USERS = ['@a:test.local', '@b:test.local', '@c:test.local'] as const;
export const REMOTE_USERS = ['@r:remote.example', '@s:other.example'] as const;
export const ALL_USERS_IN_TEST = [...LOCAL_USERS, ...REMOTE_USERS] as const;
export const EXCLUDED_ROOM = '!hidden:test.local';
export const ROOMS = ['!one:test.local', '!two:test.local', EXCLUDED_ROOM] as const;

/** Config for every property engine: busy on, one room excluded. */
export const PROPERTY_CONFIG = {
  presence: { busy_enabled: true },
  exclude_rooms_from_presence: [EXCLUDED_ROOM],
};

/** PROPERTY_CONFIG with the `sync_counts_as_activity` choice (decisions.md) made explicit. */
export function propertyConfig(syncCountsAsActivity: boolean) {
  return { ...PROPERTY_CONFIG, presence: { ...PROPERTY_CONFIG.presence, sync_counts_as_activity: syncCountsAsActivity } };
}

export type Command =
  | { kind: 'set'; user: string; presence: 'online' | 'unavailable' | 'offline' | 'busy'; statusMsg: string | null | undefined; device: string | undefined }
  | { kind: 'syncStart'; user: string; device: string | undefined; setPresence: 'online' | 'unavailable' | 'offline' }
  | { kind: 'syncEnd'; pick: number }
  | { kind: 'bump'; user: string; device: string | undefined }
  | { kind: 'advance'; ms: number }
  | { kind: 'membership'; room: string; user: string; membership: 'join' | 'leave' }
  | { kind: 'edu'; user: string; presence: 'online' | 'unavailable' | 'offline'; statusMsg: string | undefined; lastActiveAgo: number | undefined }
  | { kind: 'module'; user: string; presence: 'online' | 'unavailable' | 'offline' | 'busy'; statusMsg: string | null }
  | { kind: 'full'; users: string[] }
  /** Several inputs in one turn (`engine.batch`): one emission per listener for all of them. */
  | { kind: 'batch'; commands: Command[] };

const local = fc.constantFrom(...LOCAL_USERS);
const remote = fc.constantFrom(...REMOTE_USERS);
const anyUser = fc.constantFrom(...ALL_USERS_IN_TEST);
const device = fc.constantFrom(undefined, 'D1', 'D2');
const msg = fc.constantFrom(undefined, null, 'hi', '');

/** Client-driven inputs only (no module calls): what the timer property is about. */
export const clientCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), user: local, presence: fc.constantFrom('online', 'unavailable', 'offline', 'busy'), statusMsg: msg, device }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('syncStart' as const), user: local, device, setPresence: fc.constantFrom('online', 'online', 'unavailable', 'offline') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('syncEnd' as const), pick: fc.nat(20) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('bump' as const), user: local, device }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 40_000 }) }, { weight: 2, arbitrary: fc.integer({ min: 40_000, max: 400_000 }) }, { weight: 1, arbitrary: fc.constant(3_700_000) }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('membership' as const), room: fc.constantFrom(...ROOMS), user: anyUser, membership: fc.constantFrom('join', 'join', 'leave') }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('edu' as const),
      user: remote,
      presence: fc.constantFrom('online', 'unavailable', 'offline'),
      statusMsg: fc.constantFrom(undefined, 'remote msg'),
      lastActiveAgo: fc.option(fc.integer({ min: 0, max: 600_000 }), { nil: undefined }),
    }),
  },
);

/** Every kind of input, module calls included, alone or several in one turn. */
export const anyCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 10, arbitrary: clientCommand },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('batch' as const), commands: fc.array(clientCommand, { minLength: 2, maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('module' as const), user: anyUser, presence: fc.constantFrom('online', 'unavailable', 'offline', 'busy'), statusMsg: fc.constantFrom(null, 'mod') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('full' as const), users: fc.subarray([...LOCAL_USERS, ...REMOTE_USERS], { minLength: 1 }) }) },
);

export const commands = (arb: fc.Arbitrary<Command> = anyCommand, maxLength = 60) => fc.array(arb, { minLength: 1, maxLength, size: 'max' });

/** Drives an engine with commands, keeping the open sync handles. */
export class Driver {
  readonly open: { user: string; handle: SyncHandle }[] = [];
  constructor(readonly engine: PresenceEngine, readonly clock: SimulatedClock) {}

  apply(c: Command): void {
    const e = this.engine;
    switch (c.kind) {
      case 'set':
        e.setPresence(c.user, { presence: c.presence, statusMsg: c.statusMsg, deviceId: c.device });
        return;
      case 'syncStart': {
        const handle = e.userSyncing(c.user, { deviceId: c.device, setPresence: c.setPresence });
        if (handle.affectsPresence) this.open.push({ user: c.user, handle });
        return;
      }
      case 'syncEnd': {
        if (this.open.length === 0) return;
        const [s] = this.open.splice(c.pick % this.open.length, 1);
        s?.handle.end();
        return;
      }
      case 'bump':
        e.bumpActive(c.user, c.device);
        return;
      case 'advance':
        this.clock.advance(c.ms);
        return;
      case 'membership':
        e.setMembership(c.room, c.user, c.membership);
        return;
      case 'edu': {
        const item: Record<string, unknown> = { user_id: c.user, presence: c.presence };
        if (c.statusMsg !== undefined) item.status_msg = c.statusMsg;
        if (c.lastActiveAgo !== undefined) item.last_active_ago = c.lastActiveAgo;
        e.receiveFederationEdu(c.user.slice(c.user.indexOf(':') + 1), { push: [item] });
        return;
      }
      case 'module':
        e.setPresenceForUsers({ [c.user]: { presence: c.presence, statusMsg: c.statusMsg } });
        return;
      case 'full':
        e.sendLocalOnlinePresenceTo(c.users);
        return;
      case 'batch':
        e.batch(() => {
          for (const inner of c.commands) this.apply(inner);
        });
        return;
    }
  }

  endAll(): void {
    for (const s of this.open.splice(0)) s.handle.end();
  }

  syncing(user: string): boolean {
    return this.open.some((s) => s.user === user);
  }
}

/** What a client is told about: a change of any of these is always notified (spec §2.3). */
export function notified(s: UserPresenceState | undefined) {
  if (s === undefined) return { state: 'offline', statusMsg: null, currentlyActive: undefined };
  return { state: s.state, statusMsg: s.statusMsg, currentlyActive: s.state === 'online' ? s.currentlyActive : undefined };
}

/** A local user and everyone sharing a room with them (the excluded room does not count). */
export function visibleTo(engine: PresenceEngine, user: string): Set<string> {
  const out = new Set<string>([user]);
  for (const room of engine.getRoomsForUser(user)) {
    if (room === EXCLUDED_ROOM) continue;
    for (const m of engine.getRoomMembers(room)) out.add(m);
  }
  return out;
}

/**
 * What the event-sourcing laws compare between engines: every user's record,
 * the stream token and the room memberships (seen from the rooms and from
 * each user's list of rooms, a second index of the same memberships).
 */
export function observable(engine: PresenceEngine) {
  return {
    token: engine.currentToken,
    users: ALL_USERS_IN_TEST.map((u) => engine.getUserRecord(u)),
    rooms: ROOMS.map((r) => engine.getRoomMembers(r).sort()),
    roomsOfUser: ALL_USERS_IN_TEST.map((u) => engine.getRoomsForUser(u).sort()),
  };
}
