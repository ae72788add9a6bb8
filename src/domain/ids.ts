import { z } from 'zod';
import { InvalidInputError } from '../errors.js';

/**
 * Matrix identifiers, validated at the edge and branded so an unchecked string
 * cannot reach the core. Grammar (Matrix spec, appendices "Identifier Grammar"):
 * a server name is `hostname[:port]` (DNS name, IPv4 or bracketed IPv6);
 * user ids are `@localpart:server`, room ids `!opaque:server`.
 * Localparts accept the historical character set (any printable ASCII except `:`),
 * because federated servers still send such ids; the whole id is at most 255 bytes.
 */

const serverNamePattern =
  /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$/;
const userIdPattern = /^@[\x21-\x39\x3B-\x7E]+:(.+)$/;
const roomIdPattern = /^![\x21-\x39\x3B-\x7E]+:(.+)$/;

export const ServerNameSchema = z
  .string()
  .max(255)
  .regex(serverNamePattern, 'must be a hostname with an optional :port, e.g. example.org')
  .brand<'ServerName'>();
export type ServerName = z.infer<typeof ServerNameSchema>;

export const UserIdSchema = z
  .string()
  .max(255, 'a user id is at most 255 characters')
  .refine((s) => {
    const m = userIdPattern.exec(s);
    return m !== null && serverNamePattern.test(m[1] ?? '');
  }, 'must look like @localpart:server.name')
  .brand<'UserId'>();
export type UserId = z.infer<typeof UserIdSchema>;

export const RoomIdSchema = z
  .string()
  .max(255, 'a room id is at most 255 characters')
  .refine((s) => {
    const m = roomIdPattern.exec(s);
    return m !== null && serverNamePattern.test(m[1] ?? '');
  }, 'must look like !opaque:server.name')
  .brand<'RoomId'>();
export type RoomId = z.infer<typeof RoomIdSchema>;

/**
 * Device ids are opaque, but they key plain objects in records (devices, syncs),
 * so `__proto__` (which would set an object's prototype when assigned) is refused.
 */
export const DeviceIdSchema = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => s !== '__proto__', 'must not be "__proto__"')
  .brand<'DeviceId'>();
export type DeviceId = z.infer<typeof DeviceIdSchema>;

/** The device used when a call names no device (Synapse's `device_id = None`). */
export const DEFAULT_DEVICE = '' as DeviceId;

/** The server part of a user or room id (everything after the first `:`). */
export function serverNameOf(id: UserId | RoomId | string): ServerName {
  const i = id.indexOf(':');
  return (i < 0 ? '' : id.slice(i + 1)) as ServerName;
}

/** Validate a user id or throw {@link InvalidInputError} naming `field`. */
export function parseUserId(value: unknown, field = 'userId'): UserId {
  const r = UserIdSchema.safeParse(value);
  if (!r.success) {
    throw new InvalidInputError(field, `${describe(value)} ${r.error.issues[0]?.message ?? 'is not a user id'}`);
  }
  return r.data;
}

export function parseRoomId(value: unknown, field = 'roomId'): RoomId {
  const r = RoomIdSchema.safeParse(value);
  if (!r.success) {
    throw new InvalidInputError(field, `${describe(value)} ${r.error.issues[0]?.message ?? 'is not a room id'}`);
  }
  return r.data;
}

export function parseDeviceId(value: unknown, field = 'deviceId'): DeviceId {
  if (value === undefined || value === null) return DEFAULT_DEVICE;
  const r = DeviceIdSchema.safeParse(value);
  if (!r.success) throw new InvalidInputError(field, `${describe(value)} must be a non-empty string of at most 255 characters, other than "__proto__"`);
  return r.data;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (value === null) return 'null';
  return `a value of type ${typeof value}`;
}
