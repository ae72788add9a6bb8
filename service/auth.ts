/**
 * Who is calling: static access tokens of local users
 * (`service.users[].access_token`), tokens issued by `POST /login`
 * (sessions.ts) and the admin token (`service.admin_token`).
 */
import type { ServiceSettings, ServiceUser } from './config.js';
import { MatrixHttpError, accessTokenOf } from './http.js';
import { verifySignature } from './http-transport.js';
import type { IncomingMessage } from 'node:http';
import type { SessionBackend } from './sessions.js';

/** The parts of a request that carry its access token. */
interface TokenCarrier {
  readonly req: IncomingMessage;
  readonly query: URLSearchParams;
}

/** The caller: the user, their device, their token and where the token comes from. */
export interface Requester extends ServiceUser {
  readonly token: string;
  /** `config`: a static token from the config (cannot be logged out); `session`: issued by `/login`. */
  readonly source: 'config' | 'session';
}

export class Authenticator {
  constructor(
    private readonly settings: ServiceSettings,
    readonly sessions: SessionBackend,
  ) {}

  /** Before dispatch: let a shared session store refresh the request's token (config tokens need nothing). */
  async prepare(c: TokenCarrier): Promise<void> {
    const token = accessTokenOf(c.req, c.query);
    if (token === undefined || this.settings.tokens.has(token) || this.sessions.prepare === undefined) return;
    await this.sessions.prepare(token);
  }

  /** The user whose access token the request carries, or 401. */
  authenticate(c: TokenCarrier): Requester {
    const token = accessTokenOf(c.req, c.query);
    if (token === undefined) throw new MatrixHttpError(401, 'M_MISSING_TOKEN', 'Missing access token.');
    const fixed = this.settings.tokens.get(token);
    if (fixed !== undefined) return { ...fixed, token, source: 'config' };
    const session = this.sessions.lookup(token);
    if (session !== undefined) return { userId: session.userId, deviceId: session.deviceId, token, source: 'session' };
    throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
  }

  /** The user an access token belongs to (config or session), for the access log; undefined when unknown. */
  userOf(token: string): string | undefined {
    return this.settings.tokens.get(token)?.userId ?? this.sessions.lookup(token)?.userId;
  }

  /** Accept only the admin token: 403 for a user's token, 401 otherwise. */
  authenticateAdmin(c: TokenCarrier): void {
    const token = accessTokenOf(c.req, c.query);
    if (token === undefined) throw new MatrixHttpError(401, 'M_MISSING_TOKEN', 'Missing access token.');
    if (this.settings.adminToken !== undefined && verifySignature(this.settings.adminToken, token)) return;
    if (this.settings.tokens.has(token) || this.sessions.lookup(token) !== undefined) {
      throw new MatrixHttpError(403, 'M_FORBIDDEN', 'You are not a server admin (use service.admin_token).');
    }
    throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
  }
}
