/**
 * Admin routes (admin token only): room membership under
 * `/_presence/admin/v1/rooms/{roomId}/members[/{userId}]`.
 */
import { z } from 'zod';
import { RoomIdSchema } from '../../src/index.js';
import { parseUserParam } from '../errors.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from '../http.js';
import type { RequestContext, Route, RouteHost } from './route.js';

const MembershipBodySchema = z.strictObject({
  membership: z.enum(['join', 'leave', 'ban'], { error: 'membership must be join, leave or ban' }),
});

function parseRoomParam(value: string | undefined): string {
  const room = RoomIdSchema.safeParse(value);
  if (!room.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', `invalid room id: ${room.error.issues[0]?.message ?? ''}`);
  return room.data;
}

export function adminRoutes(host: RouteHost): Route[] {
  const { engine, settings, auth } = host;

  const setMembership = async (c: RequestContext): Promise<void> => {
    auth.authenticateAdmin(c);
    const room = parseRoomParam(c.params[0]);
    const user = parseUserParam(c.params[1]);
    const body = MembershipBodySchema.safeParse(parseJsonBody(await readBody(c.req, settings.maxBodyBytes, settings.readTimeoutMs)));
    if (!body.success) throw new MatrixHttpError(400, 'M_BAD_JSON', body.error.issues[0]?.message ?? 'invalid body');
    engine.setMembership(room, user, body.data.membership);
    await host.committed();
    sendJson(c.res, 200, { room_id: room, user_id: user, membership: body.data.membership });
  };

  const getMembers = async (c: RequestContext): Promise<void> => {
    auth.authenticateAdmin(c);
    const room = parseRoomParam(c.params[0]);
    sendJson(c.res, 200, { room_id: room, joined: engine.getRoomMembers(room) });
  };

  return [
    { name: 'admin_membership', pattern: /^\/_presence\/admin\/v1\/rooms\/([^/]+)\/members\/([^/]+)$/, methods: { PUT: setMembership } },
    { name: 'admin_members', pattern: /^\/_presence\/admin\/v1\/rooms\/([^/]+)\/members$/, methods: { GET: getMembers } },
  ];
}
