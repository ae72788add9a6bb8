/**
 * Client API presence routes: `GET`/`PUT /presence/{userId}/status` (v3, r0
 * and the legacy api/v1 prefix).
 */
import { z } from 'zod';
import { ForbiddenError } from '../../src/index.js';
import { parseUserParam } from '../errors.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from '../http.js';
import { type RequestContext, type Route, type RouteHost } from './route.js';

/** `PUT /presence/{userId}/status` body: `presence` required, `status_msg` optional; any other key is refused (Synapse). */
const PresenceBodySchema = z.record(z.string(), z.unknown());

export function presenceRoutes(host: RouteHost): Route[] {
  const { engine, settings, auth } = host;

  const getPresence = async (c: RequestContext): Promise<void> => {
    const user = auth.authenticate(c);
    const target = parseUserParam(c.params[0]);
    if (engine.config.enabled === false) {
      sendJson(c.res, 200, { presence: 'offline' });
      return;
    }
    try {
      sendJson(c.res, 200, engine.getPresence(user.userId, target));
    } catch (error) {
      if (error instanceof ForbiddenError) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'You are not allowed to see their presence.');
      throw error;
    }
  };

  const putPresence = async (c: RequestContext): Promise<void> => {
    const user = auth.authenticate(c);
    const target = parseUserParam(c.params[0]);
    if (target !== user.userId) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'Can only set your own presence state');
    const body = parseJsonBody(await readBody(c.req, settings.maxBodyBytes, settings.readTimeoutMs));
    const parsed = PresenceBodySchema.safeParse(body);
    if (!parsed.success || Array.isArray(body)) throw new MatrixHttpError(400, 'M_BAD_JSON', 'Unable to parse state: the body must be a JSON object');
    const fields = parsed.data;
    const unknown = Object.keys(fields).filter((k) => k !== 'presence' && k !== 'status_msg');
    if (!('presence' in fields)) throw new MatrixHttpError(400, 'M_BAD_JSON', 'Unable to parse state: presence is required');
    if (unknown.length > 0) throw new MatrixHttpError(400, 'M_BAD_JSON', `Unable to parse state: unknown key(s) ${unknown.join(', ')}`);
    if (typeof fields.presence !== 'string') throw new MatrixHttpError(400, 'M_INVALID_PARAM', 'Invalid presence state: presence must be a string');
    if ('status_msg' in fields && typeof fields.status_msg !== 'string') throw new MatrixHttpError(400, 'M_INVALID_PARAM', 'status_msg must be a string.');
    // Spec §2.12 / §3.7: when presence is not tracked the handler is skipped (even invalid states get 200).
    if (engine.config.enabled === true) {
      await host.inputs.setPresence(user, fields.presence, typeof fields.status_msg === 'string' ? fields.status_msg : undefined);
    } else await host.committed();
    sendJson(c.res, 200, {});
  };

  return [
    {
      name: 'presence',
      pattern: new RegExp(`^/_matrix/client/(?:v3|r0|api/v1)/presence/([^/]+)/status$`),
      methods: { GET: getPresence, PUT: putPresence },
    },
  ];
}
