/**
 * The access log: one structured line per finished HTTP request with method,
 * path (query kept, access tokens removed), status, duration and the
 * authenticated user. Scrapes and health checks log at debug so they do not
 * drown the requests that matter.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../../src/index.js';
import { accessTokenOf } from '../http.js';

const QUIET_ROUTES = new Set(['metrics', 'health', 'presence_health']);

export interface AccessLogEntry {
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly status: number;
  readonly durationMs: number;
  readonly user?: string;
}

/** The request path with `access_token` removed from the query. */
export function redactedPath(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  if (q < 0) return rawUrl;
  const query = new URLSearchParams(rawUrl.slice(q + 1));
  query.delete('access_token');
  const rest = query.toString();
  return rest.length > 0 ? `${rawUrl.slice(0, q)}?${rest}` : rawUrl.slice(0, q);
}

export function logAccess(logger: Logger, req: IncomingMessage, route: string, status: number, seconds: number, userOf: (token: string) => string | undefined): void {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const token = accessTokenOf(req, new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)));
  const user = token === undefined ? undefined : userOf(token);
  const entry: AccessLogEntry = {
    method: req.method ?? '?',
    path: redactedPath(raw),
    route,
    status,
    durationMs: Math.round(seconds * 1e6) / 1e3,
    ...(user !== undefined ? { user } : {}),
  };
  const line = `${entry.method} ${entry.path} ${status}`;
  if (QUIET_ROUTES.has(route)) logger.debug(line, { access: entry });
  else logger.info(line, { access: entry });
}
