/**
 * The `users_to_rooms` routing module from the early "rooms and users" design
 * (`presence.routing_modules`, see examples/router-users-to-rooms.yaml):
 *
 * - `users_to_rooms`: presence of each listed user is sent to every member of
 *   the listed rooms, whether or not they share a room with that user;
 * - `always_send_to_users`: these users are sent every update and read everyone.
 *
 * `users_to_rooms` may be written as a mapping (`"@alice:x": "!room:y"` or a
 * list of rooms) or, as in the draft's YAML, a list of one-key mappings.
 *
 * Interest mirrors routing: a user reads the presence of every configured user
 * routed to a room they are joined to. (Joined rooms are looked up when a sync
 * stream opens and on every read.)
 */
import { z } from 'zod';
import type { AllUsers, PresenceModuleApi, UserPresenceState } from '../../src/index.js';

const UserId = z.string().startsWith('@', 'must be a user id like @name:server');
const RoomId = z.string().startsWith('!', 'must be a room id like !room:server');
const Rooms = z.union([RoomId, z.array(RoomId)]);

const ConfigSchema = z.strictObject({
  always_send_to_users: z.array(UserId).default([]),
  users_to_rooms: z.union([z.record(UserId, Rooms), z.array(z.record(UserId, Rooms))]).default({}),
});

export interface UsersToRoomsConfig {
  readonly alwaysSendToUsers: ReadonlySet<string>;
  /** user id → rooms whose members receive that user's presence */
  readonly usersToRooms: ReadonlyMap<string, readonly string[]>;
}

export class UsersToRoomsRouter {
  static parseConfig(raw: Record<string, unknown>): UsersToRoomsConfig {
    const c = ConfigSchema.parse(raw);
    const usersToRooms = new Map<string, string[]>();
    const tables = Array.isArray(c.users_to_rooms) ? c.users_to_rooms : [c.users_to_rooms];
    for (const table of tables) {
      for (const [user, rooms] of Object.entries(table)) {
        const list = usersToRooms.get(user) ?? [];
        for (const r of typeof rooms === 'string' ? [rooms] : rooms) if (!list.includes(r)) list.push(r);
        usersToRooms.set(user, list);
      }
    }
    return { alwaysSendToUsers: new Set(c.always_send_to_users), usersToRooms };
  }

  constructor(
    private readonly config: UsersToRoomsConfig,
    private readonly api: PresenceModuleApi,
  ) {}

  /** Returns `[roomsToStates, usersToStates]`; room values name users whose given state to send. */
  getRoomsAndUsersForStates(states: readonly UserPresenceState[]): [Map<string, string[]>, Map<string, readonly UserPresenceState[]>] {
    const rooms = new Map<string, string[]>();
    const users = new Map<string, readonly UserPresenceState[]>();
    for (const userId of this.config.alwaysSendToUsers) users.set(userId, states);
    for (const s of states) {
      for (const room of this.config.usersToRooms.get(s.userId) ?? []) {
        const list = rooms.get(room) ?? [];
        list.push(s.userId);
        rooms.set(room, list);
      }
    }
    return [rooms, users];
  }

  getInterestedUsers(userId: string): ReadonlySet<string> | AllUsers {
    if (this.config.alwaysSendToUsers.has(userId)) return this.api.ALL_USERS;
    const joined = new Set(this.api.getRoomsForUser(userId));
    const out = new Set<string>();
    for (const [user, rooms] of this.config.usersToRooms) if (rooms.some((r) => joined.has(r))) out.add(user);
    return out;
  }
}
