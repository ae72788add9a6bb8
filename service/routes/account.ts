/**
 * Accounts: `GET`/`POST /login` (`m.login.password` for users configured
 * with a password), `POST /logout`, `POST /logout/all` and
 * `GET /account/whoami`.
 */
import { z } from 'zod';
import { RateLimiter } from '../../src/rate-limit.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from '../http.js';
import { hashPassword, scryptParamsOf, verifyPassword, type PasswordCredential } from '../password.js';
import { newDeviceId } from '../sessions.js';
import { CLIENT_PREFIX, type RequestContext, type Route, type RouteHost } from './route.js';

/** Clients send more than this (e.g. `initial_device_display_name`, `refresh_token`): unknown keys are allowed. */
const LoginBodySchema = z.looseObject({
  type: z.string({ error: 'type must be a string, e.g. m.login.password' }),
  identifier: z.looseObject({ type: z.string({ error: 'identifier.type must be a string' }), user: z.string().optional() }).optional(),
  /** Deprecated top-level user (r0 clients). */
  user: z.string().optional(),
  password: z.string({ error: 'password must be a string' }).optional(),
  device_id: z.string().min(1, 'device_id must not be empty').max(255, 'device_id is at most 255 characters').optional(),
});

const FORBIDDEN = () => new MatrixHttpError(403, 'M_FORBIDDEN', 'Invalid username or password');

export function accountRoutes(host: RouteHost): Route[] {
  const { engine, settings, auth } = host;
  const attempts = new RateLimiter(settings.loginRateLimit.perSecond, settings.loginRateLimit.burstCount);
  // Unknown users are checked against this, hashed like the configured ones, so a wrong user name takes as long as a wrong password.
  let decoy: Promise<PasswordCredential> | undefined;
  const firstHash = [...settings.accounts.values()].find((a) => a.password.kind === 'scrypt')?.password;
  const decoyParams = firstHash?.kind === 'scrypt' ? scryptParamsOf(firstHash.hash) : undefined;
  // Matrix user ids are matched case-insensitively at login (as Synapse does).
  const accounts = new Map([...settings.accounts.values()].map((a) => [a.userId.toLowerCase(), a]));

  /** The user id a login names: a localpart or a full id on this server. */
  const userOf = (body: z.infer<typeof LoginBodySchema>): string => {
    if (body.identifier !== undefined && body.identifier.type !== 'm.id.user') {
      throw new MatrixHttpError(400, 'M_UNKNOWN', `Unknown login identifier type ${body.identifier.type}: only m.id.user is supported`);
    }
    const given = body.identifier?.user ?? body.user;
    if (given === undefined || given === '') throw new MatrixHttpError(400, 'M_MISSING_PARAM', 'Missing parameter: identifier.user');
    return given.startsWith('@') ? given.toLowerCase() : `@${given.toLowerCase()}:${settings.serverName}`;
  };

  const loginFlows = async (c: RequestContext): Promise<void> => {
    sendJson(c.res, 200, { flows: [{ type: 'm.login.password' }] });
  };

  const login = async (c: RequestContext): Promise<void> => {
    const raw = parseJsonBody(await readBody(c.req, settings.maxBodyBytes, settings.readTimeoutMs));
    const parsed = LoginBodySchema.safeParse(raw);
    if (!parsed.success) throw new MatrixHttpError(400, 'M_BAD_JSON', parsed.error.issues[0]?.message ?? 'invalid login body');
    const body = parsed.data;
    if (body.type !== 'm.login.password') throw new MatrixHttpError(400, 'M_UNKNOWN', `Unknown login type ${body.type}: this server offers m.login.password`);
    const name = userOf(body);
    if (body.password === undefined) throw new MatrixHttpError(400, 'M_MISSING_PARAM', 'Missing parameter: password');
    const wait = attempts.take(name, engine.clock.now());
    if (wait > 0) throw new MatrixHttpError(429, 'M_LIMIT_EXCEEDED', 'Too many login attempts for this account', { retry_after_ms: wait });
    const account = accounts.get(name);
    if (account === undefined) {
      decoy ??= hashPassword('decoy', decoyParams).then((hash) => ({ kind: 'scrypt', hash }));
      await verifyPassword(await decoy, body.password);
      throw FORBIDDEN();
    }
    if (!(await verifyPassword(account.password, body.password))) throw FORBIDDEN();
    const deviceId = body.device_id ?? newDeviceId();
    const token = await auth.sessions.issue(account.userId, deviceId, Date.now());
    host.logger.info(`login: ${account.userId} on device ${deviceId}`);
    sendJson(c.res, 200, { user_id: account.userId, access_token: token, device_id: deviceId, home_server: settings.serverName });
  };

  const logout = async (c: RequestContext): Promise<void> => {
    const me = auth.authenticate(c);
    if (me.source === 'config') {
      throw new MatrixHttpError(
        403,
        'M_FORBIDDEN',
        'this access token is set in the service config (service.users[].access_token) and cannot be logged out: remove it from the config instead',
      );
    }
    await auth.sessions.revoke(me.token);
    sendJson(c.res, 200, {});
  };

  const logoutAll = async (c: RequestContext): Promise<void> => {
    const me = auth.authenticate(c);
    await auth.sessions.revokeAll(me.userId);
    sendJson(c.res, 200, {});
  };

  const whoami = async (c: RequestContext): Promise<void> => {
    const me = auth.authenticate(c);
    sendJson(c.res, 200, { user_id: me.userId, device_id: me.deviceId, is_guest: false });
  };

  return [
    { name: 'login', pattern: new RegExp(`^${CLIENT_PREFIX}/login$`), methods: { GET: loginFlows, POST: login } },
    { name: 'logout', pattern: new RegExp(`^${CLIENT_PREFIX}/logout$`), methods: { POST: logout } },
    { name: 'logout_all', pattern: new RegExp(`^${CLIENT_PREFIX}/logout/all$`), methods: { POST: logoutAll } },
    { name: 'whoami', pattern: new RegExp(`^${CLIENT_PREFIX}/account/whoami$`), methods: { GET: whoami } },
  ];
}
