/**
 * The visibility policy endpoint (docs/policies.md): `GET`/`PUT
 * /_matrix/client/v3/user/{userId}/org.example.presence_policy`. A user reads
 * and replaces their own policy; the body is the policy itself
 * (`{ invisible?, allow?: { users?, servers? } | null, deny?: { users?, servers? } }`).
 */
import { InvalidInputError } from '../../src/index.js';
import { parseUserParam } from '../errors.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from '../http.js';
import { CLIENT_PREFIX, type RequestContext, type Route, type RouteHost } from './route.js';

export function presencePolicyRoutes(host: RouteHost): Route[] {
  const { engine, settings, auth } = host;

  const own = (c: RequestContext) => {
    const user = auth.authenticate(c);
    const target = parseUserParam(c.params[0]);
    if (target !== user.userId) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'Can only read or set your own presence policy');
    return user.userId;
  };

  const getPolicy = async (c: RequestContext): Promise<void> => {
    sendJson(c.res, 200, engine.getPresencePolicy(own(c)));
  };

  const putPolicy = async (c: RequestContext): Promise<void> => {
    const userId = own(c);
    const body = parseJsonBody(await readBody(c.req, settings.maxBodyBytes, settings.readTimeoutMs));
    try {
      await host.inputs.setPresencePolicy(userId, body);
    } catch (error) {
      if (error instanceof InvalidInputError) throw new MatrixHttpError(400, 'M_INVALID_PARAM', error.message);
      throw error;
    }
    sendJson(c.res, 200, engine.getPresencePolicy(userId));
  };

  return [
    {
      name: 'presence_policy',
      pattern: new RegExp(`^${CLIENT_PREFIX}/user/([^/]+)/org\\.example\\.presence_policy$`),
      methods: { GET: getPolicy, PUT: putPolicy },
    },
  ];
}
