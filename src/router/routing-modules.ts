/**
 * Adapter for the early "rooms and users" routing modules (spec §4.8, the
 * draft seed): `getRoomsAndUsersForStates(states)` returns
 * `[roomsToStates, usersToStates]`; a room destination means every user joined
 * to that room. The adapter turns such a module into the engine's
 * {@link PresenceRouterCallbacks}, so the combined router validates, isolates
 * and times it out like any other module.
 *
 * Accepted shapes, leniently (the draft's own example returns lists of user ids
 * for rooms and the whole input list for users):
 * - each of the two destination tables is a `Map` or a plain object, or
 *   `null`/`undefined` for "none";
 * - each value is an array or a `Set` whose items are presence states (matched
 *   to the given states by `userId`) or user ids (the given state of that user).
 * Items that match none of the given states are ignored. A malformed table or
 * entry is logged and skipped; a malformed top-level result makes the call fail
 * (logged and skipped by the combined router).
 */
import { RoomIdSchema, UserIdSchema } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { Logger } from '../logger.js';
import type { AllUsers, PresenceRouterCallbacks } from './presence-router.js';

type MaybePromise<T> = T | PromiseLike<T>;

/** One destination table: destination id → states (or user ids whose given state to send). */
export type RoutingDestinations =
  | ReadonlyMap<string, Iterable<UserPresenceState | string>>
  | Readonly<Record<string, Iterable<UserPresenceState | string>>>;

/** `[roomsToStates, usersToStates]`. */
export type RoomsAndUsersResult = readonly [RoutingDestinations | null | undefined, RoutingDestinations | null | undefined];

/** The interface of a `presence.routing_modules` entry. */
export interface RoomsAndUsersRoutingModule {
  getRoomsAndUsersForStates(states: readonly UserPresenceState[]): MaybePromise<RoomsAndUsersResult>;
  /** Optional; without it local users are not "interested" in anything this module routes (see docs/modules.md). */
  getInterestedUsers?(userId: string): MaybePromise<ReadonlySet<string> | AllUsers>;
}

/** What the adapter needs from the engine. */
export interface RoomDirectory {
  getRoomMembers(roomId: string): readonly string[];
}

const MAX_WARNED_ROOMS = 1_000;
const EMPTY: ReadonlySet<string> = new Set();

/** Wrap a routing module as presence router callbacks. */
export function adaptRoutingModule(
  instance: RoomsAndUsersRoutingModule,
  rooms: RoomDirectory,
  logger: Logger,
  moduleName: string,
): PresenceRouterCallbacks {
  const warnedRooms = new Set<string>();
  const warnRoom = (roomId: string, why: string) => {
    if (warnedRooms.has(roomId)) return;
    if (warnedRooms.size < MAX_WARNED_ROOMS) warnedRooms.add(roomId);
    logger.warn(`routing module ${moduleName}: room ${JSON.stringify(roomId).slice(0, 100)} ${why}; skipped`);
  };

  const convert = (value: unknown, states: readonly UserPresenceState[]): Map<string, Set<UserPresenceState>> => {
    if (!Array.isArray(value) || value.length !== 2) {
      throw new TypeError('getRoomsAndUsersForStates must return a pair [roomsToStates, usersToStates]');
    }
    const byUser = new Map<string, UserPresenceState>();
    for (const s of states) byUser.set(s.userId, s);
    const out = new Map<string, Set<UserPresenceState>>();
    const add = (recipient: string, items: readonly UserPresenceState[]) => {
      let set = out.get(recipient);
      if (set === undefined) out.set(recipient, (set = new Set()));
      for (const s of items) set.add(s);
    };
    const [roomTable, userTable] = value as [unknown, unknown];
    forEachEntry(roomTable, 'roomsToStates', logger, moduleName, (roomId, items) => {
      if (!RoomIdSchema.safeParse(roomId).success) return warnRoom(roomId, 'is not a room id');
      const resolved = resolveStates(items, byUser);
      if (resolved === undefined) {
        logger.warn(`routing module ${moduleName}: states for room ${roomId} are not an array or a Set; skipped`);
        return;
      }
      if (resolved.length === 0) return;
      const members = rooms.getRoomMembers(roomId);
      if (members.length === 0) return warnRoom(roomId, 'is not known to this server (no joined members)');
      for (const m of members) add(m, resolved);
    });
    forEachEntry(userTable, 'usersToStates', logger, moduleName, (userId, items) => {
      if (!UserIdSchema.safeParse(userId).success) {
        logger.warn(`routing module ${moduleName}: ${JSON.stringify(userId).slice(0, 100)} is not a user id; skipped`);
        return;
      }
      const resolved = resolveStates(items, byUser);
      if (resolved === undefined) {
        logger.warn(`routing module ${moduleName}: states for user ${userId} are not an array or a Set; skipped`);
        return;
      }
      if (resolved.length > 0) add(userId, resolved);
    });
    return out;
  };

  return {
    getUsersForStates: (states) => {
      const r = instance.getRoomsAndUsersForStates(states);
      return isPromiseLike(r) ? Promise.resolve(r).then((v) => convert(v, states)) : convert(r, states);
    },
    getInterestedUsers: (userId) =>
      typeof instance.getInterestedUsers === 'function' ? instance.getInterestedUsers(userId) : EMPTY,
  };
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}

function forEachEntry(
  table: unknown,
  what: string,
  logger: Logger,
  moduleName: string,
  fn: (key: string, items: unknown) => void,
): void {
  if (table === undefined || table === null) return;
  let entries: Iterable<[unknown, unknown]>;
  if (table instanceof Map) entries = table.entries();
  else if (isPlainObject(table)) entries = Object.entries(table);
  else {
    logger.warn(`routing module ${moduleName}: ${what} must be a Map or a plain object; ignored`);
    return;
  }
  for (const [key, items] of entries) {
    if (typeof key !== 'string') {
      logger.warn(`routing module ${moduleName}: a ${what} key is not a string; skipped`);
      continue;
    }
    fn(key, items);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Items (states or user ids) → the given states they name; `undefined` when `items` is not an array or a Set. */
function resolveStates(items: unknown, byUser: ReadonlyMap<string, UserPresenceState>): UserPresenceState[] | undefined {
  if (!Array.isArray(items) && !(items instanceof Set)) return undefined;
  const out: UserPresenceState[] = [];
  for (const item of items as Iterable<unknown>) {
    const userId = typeof item === 'string' ? item : typeof item === 'object' && item !== null ? (item as { userId?: unknown }).userId : undefined;
    const s = typeof userId === 'string' ? byUser.get(userId) : undefined;
    if (s !== undefined) out.push(s);
  }
  return out;
}
