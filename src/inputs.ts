/**
 * Engine inputs as a discriminated union, validated with zod at the boundary.
 * `engine.ingest(input$)` accepts an Observable of these; the engine's methods
 * take the same shapes as arguments.
 */
import { z } from 'zod';
import { DeviceIdSchema, RoomIdSchema, UserIdSchema } from './domain/ids.js';
import { PresencePolicyInputSchema } from './domain/policy.js';

/** Presence values accepted from clients: the stable names, plus busy's wire values. */
export const PresenceInputSchema = z.enum(['online', 'unavailable', 'offline', 'busy', 'org.matrix.msc3026.busy'], {
  error: 'must be one of online, unavailable, offline (or busy when enabled)',
});
export const SetPresenceInSyncSchema = z.enum(['online', 'unavailable', 'offline'], {
  error: 'set_presence must be online, unavailable or offline',
});
export const StatusMsgSchema = z.string({ error: 'status_msg must be a string' }).nullable().optional();

export const PresenceInputEventSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('presence.set'),
    userId: UserIdSchema,
    presence: PresenceInputSchema,
    statusMsg: StatusMsgSchema,
    deviceId: DeviceIdSchema.optional(),
  }),
  z.strictObject({
    type: z.literal('sync.start'),
    userId: UserIdSchema,
    /** Caller-chosen id pairing this start with its `sync.end`. */
    syncId: z.string().min(1),
    deviceId: DeviceIdSchema.optional(),
    setPresence: SetPresenceInSyncSchema.optional(),
  }),
  z.strictObject({ type: z.literal('sync.end'), userId: UserIdSchema, syncId: z.string().min(1) }),
  z.strictObject({ type: z.literal('activity'), userId: UserIdSchema, deviceId: DeviceIdSchema.optional() }),
  z.strictObject({
    type: z.literal('room.membership'),
    roomId: RoomIdSchema,
    userId: UserIdSchema,
    membership: z.enum(['join', 'leave', 'ban']),
  }),
  z.strictObject({ type: z.literal('federation.edu'), origin: z.string().min(1), content: z.unknown() }),
  /** A local user's visibility policy, replacing the previous one (docs/policies.md). */
  z.strictObject({ type: z.literal('policy.set'), userId: UserIdSchema, policy: PresencePolicyInputSchema }),
]);

export type PresenceInputEvent = z.input<typeof PresenceInputEventSchema>;
