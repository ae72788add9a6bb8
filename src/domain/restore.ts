/**
 * Start an engine from plain user states, as a previous run (or another
 * server) left them: `snapshotFromStates` builds the {@link EngineSnapshot}
 * an engine starts from. A restored local user who is not offline gets the
 * pseudo-device Synapse gives restored states (spec §2.13), so their devices
 * time out as a fresh process's would unless they sync again.
 */
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import { DEFAULT_DEVICE, RoomIdSchema, ServerNameSchema, UserIdSchema, serverNameOf, type UserId } from './ids.js';
import { EMPTY_MAP, type UserPresenceState, type UserRecord } from './presence.js';
import type { EngineSnapshot } from './snapshot.js';

const Timestamp = z.number().int().nonnegative();

/** One user's state as a previous run left it (Synapse's seven presence fields; all but the first two optional). */
export const RestoredStateSchema = z.strictObject({
  userId: UserIdSchema,
  state: z.enum(['online', 'unavailable', 'offline', 'busy']),
  lastActiveTs: Timestamp.default(0),
  lastFederationUpdateTs: Timestamp.default(0),
  lastUserSyncTs: Timestamp.default(0),
  statusMsg: z.string().nullable().default(null),
  currentlyActive: z.boolean().default(false),
});

export const RestoreInputSchema = z.strictObject({
  /** This server's name: decides which users are local. */
  serverName: ServerNameSchema,
  users: z.array(RestoredStateSchema),
  /** Joined members per room. */
  rooms: z.record(RoomIdSchema, z.array(UserIdSchema)).default({}),
});

export type RestoreInput = z.input<typeof RestoreInputSchema>;

/**
 * The snapshot of an engine holding exactly these users and rooms (log
 * position 0, stream id 0): pass it as `snapshot` to `new PresenceEngine`.
 * @throws InvalidInputError naming the first field that is wrong.
 */
export function snapshotFromStates(input: RestoreInput): EngineSnapshot {
  const r = RestoreInputSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new InvalidInputError(issue?.path.join('.') || 'input', issue?.message ?? 'invalid restore input');
  }
  const { serverName, users, rooms } = r.data;
  const seen = new Set<UserId>();
  const out: [UserId, UserRecord, number][] = [];
  for (const [k, s] of users.entries()) {
    if (seen.has(s.userId)) throw new InvalidInputError(`users.${k}.userId`, `${s.userId} is listed twice`);
    seen.add(s.userId);
    const presence: UserPresenceState = { ...s, userId: s.userId };
    const local = serverNameOf(s.userId) === serverName;
    const devices = local && s.state !== 'offline' ? { [DEFAULT_DEVICE]: { state: s.state, lastActiveTs: s.lastActiveTs, lastSyncTs: s.lastUserSyncTs } } : EMPTY_MAP;
    out.push([s.userId, { presence, devices, syncs: EMPTY_MAP }, 0]);
  }
  return { version: 1, position: 0, streamId: 0, users: out, rooms: Object.entries(rooms).map(([room, members]) => [room as never, members]), fullRequests: [] };
}
