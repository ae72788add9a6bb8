/**
 * Parse once: every input, from a direct call or from `ingest(input$)`, is
 * validated here into a typed command, and the engine executes commands
 * without checking them again. Anything wrong throws an
 * {@link InvalidInputError} naming the field; nothing is half-applied.
 */
import { DEFAULT_DEVICE, describe, parseDeviceId, parseRoomId, parseUserId, type DeviceId, type RoomId, type UserId } from '../domain/ids.js';
import { normalisePolicy, PresencePolicyInputSchema, type PresencePolicy } from '../domain/policy.js';
import type { PresenceValue } from '../domain/presence.js';
import { InvalidInputError } from '../errors.js';
import { PresenceInputEventSchema, PresenceInputSchema, SetPresenceInSyncSchema, StatusMsgSchema } from '../inputs.js';

export type SyncPresence = 'online' | 'unavailable' | 'offline';
export type Membership = 'join' | 'leave' | 'ban';

export interface SetPresenceCommand {
  readonly type: 'presence.set';
  readonly userId: UserId;
  readonly deviceId: DeviceId;
  readonly presence: PresenceValue;
  readonly statusMsg: string | null;
}

export interface SyncStartCommand {
  readonly type: 'sync.start';
  readonly userId: UserId;
  readonly deviceId: DeviceId;
  readonly setPresence: SyncPresence;
  /** Pairs a streamed start with its end (`ingest`); null for direct calls, which get a handle. */
  readonly syncId: string | null;
}

export interface SyncEndCommand {
  readonly type: 'sync.end';
  readonly userId: UserId;
  readonly syncId: string;
}

export interface ActivityCommand {
  readonly type: 'activity';
  readonly userId: UserId;
  readonly deviceId: DeviceId;
}

export interface MembershipCommand {
  readonly type: 'room.membership';
  readonly roomId: RoomId;
  readonly userId: UserId;
  readonly membership: Membership;
}

export interface FederationEduCommand {
  readonly type: 'federation.edu';
  readonly origin: string;
  readonly content: unknown;
}

export interface PolicySetCommand {
  readonly type: 'policy.set';
  readonly userId: UserId;
  readonly policy: PresencePolicy;
}

/** A validated input. */
export type PresenceCommand = SetPresenceCommand | SyncStartCommand | SyncEndCommand | ActivityCommand | MembershipCommand | FederationEduCommand | PolicySetCommand;

export interface CommandRules {
  readonly serverName: string;
  readonly busyEnabled: boolean;
  isMine(userId: string): boolean;
  /** Ids the engine has met were validated then: they skip the schema. */
  isKnownUser(userId: string): boolean;
}

export class CommandParser {
  constructor(private readonly rules: CommandRules) {}

  setPresence(userId: unknown, input: unknown): SetPresenceCommand {
    const id = this.user(userId);
    const fields = objectArg(input, '{ presence, statusMsg?, deviceId? }');
    const raw = fields['presence'];
    // The common values skip the schema (one input = one call here).
    const presence = raw === 'online' || raw === 'unavailable' || raw === 'offline' ? raw : this.presence(raw);
    const msg = fields['statusMsg'];
    const statusMsg = typeof msg === 'string' ? msg : statusMessage(msg);
    const deviceId = device(fields['deviceId']);
    return { type: 'presence.set', userId: this.mustBeLocal(id), deviceId, presence, statusMsg };
  }

  userSyncing(userId: unknown, input: unknown, syncId: string | null = null): SyncStartCommand {
    const id = this.user(userId);
    const fields = input === undefined ? NO_FIELDS : objectArg(input, '{ deviceId?, setPresence? }');
    const deviceId = device(fields['deviceId']);
    const set = fields['setPresence'] ?? 'online';
    const r = set === 'online' ? null : SetPresenceInSyncSchema.safeParse(set);
    if (r !== null && !r.success) throw new InvalidInputError('setPresence', r.error.issues[0]?.message ?? 'invalid');
    return { type: 'sync.start', userId: this.mustBeLocal(id), deviceId, setPresence: r === null ? 'online' : r.data, syncId };
  }

  activity(userId: unknown, deviceId: unknown): ActivityCommand {
    const id = this.user(userId);
    const parsedDevice = device(deviceId);
    return { type: 'activity', userId: this.mustBeLocal(id), deviceId: parsedDevice };
  }

  membership(roomId: unknown, userId: unknown, membership: unknown): MembershipCommand {
    const room = parseRoomId(roomId);
    const user = this.user(userId);
    if (membership !== 'join' && membership !== 'leave' && membership !== 'ban') throw new InvalidInputError('membership', 'must be join, leave or ban');
    return { type: 'room.membership', roomId: room, userId: user, membership };
  }

  /** `set_presence_for_users` arguments: user id → { presence, statusMsg? }. */
  moduleUpdates(users: unknown): (readonly [UserId, PresenceValue, string | null])[] {
    const entries = Object.entries(objectArg(users, 'of user id → { presence, statusMsg? }'));
    return entries.map(([u, v]) => {
      const update = objectArg(v, `{ presence, statusMsg? } for ${u}`);
      return [this.user(u), this.presence(update['presence']), statusMessage(update['statusMsg'])] as const;
    });
  }

  /** A local user's visibility policy (`{ invisible?, allow?, deny? }`, docs/policies.md). */
  policy(userId: unknown, input: unknown): PolicySetCommand {
    const id = this.user(userId);
    const r = PresencePolicyInputSchema.safeParse(input);
    if (!r.success) {
      const issue = r.error.issues[0];
      const path = ['policy', ...(issue?.path ?? [])].join('.');
      throw new InvalidInputError(path, `${issue?.message ?? 'invalid'}; expected { invisible?: boolean, allow?: { users?, servers? } | null, deny?: { users?, servers? } }`);
    }
    return { type: 'policy.set', userId: this.mustBeLocal(id), policy: normalisePolicy(r.data) };
  }

  /** A list of user ids (local or remote). */
  userList(userIds: unknown, field = 'userIds'): UserId[] {
    if (!Array.isArray(userIds)) throw new InvalidInputError(field, `expected an array of user ids, got ${describe(userIds)}`);
    return userIds.map((u: unknown) => this.user(u));
  }

  /** An `ingest` input event (`PresenceInputEvent`), validated with its schema once. */
  event(raw: unknown): PresenceCommand {
    const r = PresenceInputEventSchema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new InvalidInputError(issue?.path.join('.') || 'input', issue?.message ?? 'invalid input');
    }
    const e = r.data;
    switch (e.type) {
      case 'presence.set':
        return {
          type: 'presence.set',
          userId: this.mustBeLocal(e.userId),
          deviceId: e.deviceId ?? DEFAULT_DEVICE,
          presence: this.presence(e.presence),
          statusMsg: e.statusMsg ?? null,
        };
      case 'sync.start':
        return { type: 'sync.start', userId: this.mustBeLocal(e.userId), deviceId: e.deviceId ?? DEFAULT_DEVICE, setPresence: e.setPresence ?? 'online', syncId: e.syncId };
      case 'sync.end':
        return { type: 'sync.end', userId: e.userId, syncId: e.syncId };
      case 'activity':
        return { type: 'activity', userId: this.mustBeLocal(e.userId), deviceId: e.deviceId ?? DEFAULT_DEVICE };
      case 'room.membership':
        return e;
      case 'federation.edu':
        return { type: 'federation.edu', origin: e.origin, content: e.content };
      case 'policy.set':
        return { type: 'policy.set', userId: this.mustBeLocal(e.userId), policy: normalisePolicy(e.policy) };
    }
  }

  /** A presence value: the stable names, and busy (or its MSC3026 wire value) when enabled. */
  presence(value: unknown): PresenceValue {
    if (value === 'online' || value === 'unavailable' || value === 'offline') return value;
    const r = PresenceInputSchema.safeParse(value);
    if (!r.success) throw new InvalidInputError('presence', `${describe(value)} ${r.error.issues[0]?.message ?? ''}`);
    const v = r.data === 'org.matrix.msc3026.busy' ? 'busy' : r.data;
    if (v === 'busy' && !this.rules.busyEnabled) {
      throw new InvalidInputError('presence', 'busy is not enabled; set presence.busy_enabled (or experimental_features.msc3026_enabled) to true');
    }
    return v;
  }

  /** A user id, local or remote. */
  user(raw: unknown, field = 'userId'): UserId {
    if (typeof raw === 'string' && this.rules.isKnownUser(raw)) return raw as UserId;
    return parseUserId(raw, field);
  }

  private mustBeLocal(id: UserId): UserId {
    if (!this.rules.isMine(id)) throw new InvalidInputError('userId', `${id} is not a local user of ${this.rules.serverName}`);
    return id;
  }
}

/** A status message: a string, or null/absent to clear it. */
export function statusMessage(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const r = StatusMsgSchema.safeParse(value);
  if (!r.success) throw new InvalidInputError('statusMsg', 'status_msg must be a string (or null/absent to clear it)');
  return r.data ?? null;
}

const NO_FIELDS: Readonly<Record<string, unknown>> = Object.freeze(Object.create(null) as Record<string, unknown>);

function device(raw: unknown): DeviceId {
  return raw === undefined || raw === null ? DEFAULT_DEVICE : parseDeviceId(raw);
}

/** An options argument must be an object: reading a field of `null` would be a TypeError, not an input error. */
function objectArg(value: unknown, shape: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError('input', `expected an object ${shape}, got ${describe(value)}`);
  }
  return value as Readonly<Record<string, unknown>>;
}
