/**
 * What a stock client asks for before its first sync: `/versions`,
 * `/capabilities`, `/pushrules/` (the spec's default rules) and filters
 * (`POST`/`GET /user/{userId}/filter[/{filterId}]`).
 *
 * Filters are kept so clients can create and read them back (in memory, per
 * user, the newest `MAX_FILTERS_PER_USER`); `/sync` does not apply them: it
 * serves presence and membership only, which filters rarely narrow.
 */
import { z } from 'zod';
import type { UserId } from '../../src/index.js';
import { parseUserParam } from '../errors.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from '../http.js';
import { defaultPushRules } from '../push-rules.js';
import { CLIENT_PREFIX, type RequestContext, type Route, type RouteHost } from './route.js';

const MAX_FILTERS_PER_USER = 50;
const FilterSchema = z.record(z.string(), z.unknown(), { error: 'a filter must be a JSON object' });

export function clientConfigRoutes(host: RouteHost): Route[] {
  const { engine, settings, auth } = host;
  /** user → filter id → filter JSON (insertion order = age) */
  const filters = new Map<UserId, Map<string, string>>();
  let nextFilterId = 0;

  const versions = async (c: RequestContext): Promise<void> => {
    sendJson(c.res, 200, {
      versions: ['r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1', 'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11'],
      unstable_features: { 'org.matrix.msc3026.busy_presence': engine.config.busyEnabled },
    });
  };

  const capabilities = async (c: RequestContext): Promise<void> => {
    auth.authenticate(c);
    sendJson(c.res, 200, {
      capabilities: {
        'm.change_password': { enabled: false },
        'm.set_displayname': { enabled: false },
        'm.set_avatar_url': { enabled: false },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: false },
        'm.room_versions': { default: '10', available: { '10': 'stable' } },
      },
    });
  };

  const pushRules = async (c: RequestContext): Promise<void> => {
    const me = auth.authenticate(c);
    sendJson(c.res, 200, { global: defaultPushRules(me.userId) });
  };

  const pushRulesGlobal = async (c: RequestContext): Promise<void> => {
    const me = auth.authenticate(c);
    sendJson(c.res, 200, defaultPushRules(me.userId));
  };

  /** Only one's own filters (Synapse: 403 "Cannot create filters for other users"). */
  const ownUser = (c: RequestContext, verb: string): UserId => {
    const me = auth.authenticate(c);
    const target = parseUserParam(c.params[0]);
    if (target !== me.userId) throw new MatrixHttpError(403, 'M_FORBIDDEN', `Cannot ${verb} filters for other users`);
    return me.userId;
  };

  const createFilter = async (c: RequestContext): Promise<void> => {
    const userId = ownUser(c, 'create');
    const parsed = FilterSchema.safeParse(parseJsonBody(await readBody(c.req, settings.maxBodyBytes, settings.readTimeoutMs)));
    if (!parsed.success) throw new MatrixHttpError(400, 'M_BAD_JSON', 'a filter must be a JSON object');
    const text = JSON.stringify(parsed.data);
    let mine = filters.get(userId);
    if (mine === undefined) filters.set(userId, (mine = new Map()));
    // The same filter again gets the same id (clients create theirs on every start).
    for (const [id, existing] of mine) {
      if (existing === text) {
        sendJson(c.res, 200, { filter_id: id });
        return;
      }
    }
    const id = String(nextFilterId++);
    mine.set(id, text);
    if (mine.size > MAX_FILTERS_PER_USER) {
      const oldest = mine.keys().next();
      if (oldest.done !== true) mine.delete(oldest.value);
    }
    sendJson(c.res, 200, { filter_id: id });
  };

  const getFilter = async (c: RequestContext): Promise<void> => {
    const userId = ownUser(c, 'get');
    const text = filters.get(userId)?.get(c.params[1] ?? '');
    if (text === undefined) throw new MatrixHttpError(404, 'M_NOT_FOUND', 'No such filter');
    sendJson(c.res, 200, JSON.parse(text) as unknown);
  };

  return [
    { name: 'versions', pattern: /^\/_matrix\/client\/versions$/, methods: { GET: versions } },
    { name: 'capabilities', pattern: new RegExp(`^${CLIENT_PREFIX}/capabilities$`), methods: { GET: capabilities } },
    { name: 'pushrules', pattern: new RegExp(`^${CLIENT_PREFIX}/pushrules/?$`), methods: { GET: pushRules } },
    { name: 'pushrules_global', pattern: new RegExp(`^${CLIENT_PREFIX}/pushrules/global/?$`), methods: { GET: pushRulesGlobal } },
    { name: 'filter_create', pattern: new RegExp(`^${CLIENT_PREFIX}/user/([^/]+)/filter$`), methods: { POST: createFilter } },
    { name: 'filter_get', pattern: new RegExp(`^${CLIENT_PREFIX}/user/([^/]+)/filter/([^/]+)$`), methods: { GET: getFilter } },
  ];
}
