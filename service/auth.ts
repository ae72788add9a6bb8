/**
 * Who is calling: access tokens of local users (`service.users[].access_token`)
 * and the admin token (`service.admin_token`).
 */
import type { ServiceSettings, ServiceUser } from './config.js';
import { MatrixHttpError, accessTokenOf } from './http.js';
import { verifySignature } from './http-transport.js';
import type { RequestContext } from './routes/route.js';

/** The user whose access token the request carries, or 401. */
export function authenticate(settings: ServiceSettings, c: RequestContext): ServiceUser {
  const token = accessTokenOf(c.req, c.query);
  if (token === undefined) throw new MatrixHttpError(401, 'M_MISSING_TOKEN', 'Missing access token.');
  const user = settings.tokens.get(token);
  if (user === undefined) throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
  return user;
}

/** Accept only the admin token: 403 for a user's token, 401 otherwise. */
export function authenticateAdmin(settings: ServiceSettings, c: RequestContext): void {
  const token = accessTokenOf(c.req, c.query);
  if (token === undefined) throw new MatrixHttpError(401, 'M_MISSING_TOKEN', 'Missing access token.');
  if (settings.adminToken !== undefined && verifySignature(settings.adminToken, token)) return;
  if (settings.tokens.has(token)) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'You are not a server admin (use service.admin_token).');
  throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
}
