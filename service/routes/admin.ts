/**
 * Admin routes (admin token only): room membership under
 * `/_presence/admin/v1/rooms/{roomId}/members[/{userId}]`, and "why is this
 * user in this state?" under `/_presence/admin/explain/{userId}` and
 * `/_presence/admin/inspect/{userId}` (also under `v1/`).
 */
import { z } from 'zod';
import { RoomIdSchema, type Explanation } from '../../src/index.js';
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

const ExplainQuerySchema = z.object({
  since: z.coerce.number({ error: 'since must be a log position' }).int('since must be a whole number').nonnegative('since must be ≥ 0').optional(),
  recipients: z.enum(['true', 'false'], { error: 'recipients must be true or false' }).optional(),
});

/** The explanation in the admin API's snake_case. */
function explanationJson(x: Explanation): Record<string, unknown> {
  return {
    user_id: x.userId,
    state: x.state,
    complete: x.complete,
    read_from: x.readFrom,
    ...(x.audience !== undefined
      ? { audience: { local_users: x.audience.localUsers, ...(x.audience.localUserIds !== undefined ? { local_user_ids: x.audience.localUserIds } : {}), remote_servers: x.audience.remoteServers, routers: x.audience.routers } }
      : {}),
    steps: x.steps.map((s) => ({
      position: s.position,
      at: s.at,
      ...(s.streamId !== undefined ? { stream_id: s.streamId } : {}),
      from: s.from,
      to: s.to,
      ...(s.statusMsg !== undefined ? { status_msg: s.statusMsg } : {}),
      cause: s.cause,
      rule: s.rule,
      ...(s.deliveredTo !== undefined
        ? {
            delivered_to: {
              local_users: s.deliveredTo.localUsers,
              ...(s.deliveredTo.localUserIds !== undefined ? { local_user_ids: s.deliveredTo.localUserIds } : {}),
              remote_servers: s.deliveredTo.remoteServers,
              routers: s.deliveredTo.routers,
              complete: s.deliveredTo.complete,
            },
          }
        : {}),
    })),
  };
}

export function adminRoutes(host: RouteHost): Route[] {
  const { engine, settings, auth } = host;

  const setMembership = async (c: RequestContext): Promise<void> => {
    auth.authenticateAdmin(c);
    const room = parseRoomParam(c.params[0]);
    const user = parseUserParam(c.params[1]);
    const body = MembershipBodySchema.safeParse(parseJsonBody(await readBody(c.req, settings.maxBodyBytes, settings.readTimeoutMs)));
    if (!body.success) throw new MatrixHttpError(400, 'M_BAD_JSON', body.error.issues[0]?.message ?? 'invalid body');
    await host.inputs.setMembership(room, user, body.data.membership);
    sendJson(c.res, 200, { room_id: room, user_id: user, membership: body.data.membership });
  };

  const getMembers = async (c: RequestContext): Promise<void> => {
    auth.authenticateAdmin(c);
    const room = parseRoomParam(c.params[0]);
    sendJson(c.res, 200, { room_id: room, joined: engine.getRoomMembers(room) });
  };

  const explain = (c: RequestContext): Promise<void> => {
    auth.authenticateAdmin(c);
    const user = parseUserParam(c.params[0]);
    const q = ExplainQuerySchema.safeParse(Object.fromEntries(c.query));
    if (!q.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', q.error.issues[0]?.message ?? 'invalid query parameter');
    const recipients = q.data.recipients === 'true';
    sendJson(c.res, 200, explanationJson(engine.explain(user, q.data.since === undefined ? { recipients } : { since: q.data.since, recipients })));
    return Promise.resolve();
  };

  const inspect = (c: RequestContext): Promise<void> => {
    auth.authenticateAdmin(c);
    const i = engine.inspect(parseUserParam(c.params[0]));
    sendJson(c.res, 200, {
      user_id: i.userId,
      local: i.local,
      owned: i.owned,
      live: i.live,
      presence: i.record.presence,
      devices: i.record.devices,
      open_syncs: i.openSyncs,
      deadlines: i.deadlines.map((d) => ({ kind: d.kind, due_at: d.dueAt, ...(d.deviceId !== undefined ? { device_id: d.deviceId } : {}) })),
      next_check_at: i.nextCheckAt,
    });
    return Promise.resolve();
  };

  return [
    { name: 'admin_explain', pattern: /^\/_presence\/admin\/(?:v1\/)?explain\/([^/]+)$/, methods: { GET: explain } },
    { name: 'admin_inspect', pattern: /^\/_presence\/admin\/(?:v1\/)?inspect\/([^/]+)$/, methods: { GET: inspect } },
    { name: 'admin_membership', pattern: /^\/_presence\/admin\/v1\/rooms\/([^/]+)\/members\/([^/]+)$/, methods: { PUT: setMembership } },
    { name: 'admin_members', pattern: /^\/_presence\/admin\/v1\/rooms\/([^/]+)\/members$/, methods: { GET: getMembers } },
  ];
}
