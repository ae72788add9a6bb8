/**
 * `GET /sync`: the presence section and the rooms the user is joined to
 * (membership only, room-sync.ts), long-polling until there is something new
 * since `since` (or the timeout, or shutdown).
 *
 * Tokens: `p<presence stream id>_m<membership position>_<epoch>`; the legacy
 * `p<presence stream id>` is still accepted (the rooms are then sent in full).
 */
import { z } from 'zod';
import { formatPresenceEvent, type NewEvents, type PresenceEventJson } from '../../src/index.js';
import type { ServiceUser } from '../config.js';
import { MatrixHttpError, sendJson } from '../http.js';
import type { RoomsJson } from '../room-sync.js';
import { CLIENT_PREFIX, type RequestContext, type Route, type RouteHost } from './route.js';

const TOKEN = /^p(0|[1-9][0-9]{0,14})(?:_m(0|[1-9][0-9]{0,14})_([0-9a-f]{1,32}))?$/;

interface SinceToken {
  readonly presence: number;
  /** Absent for a legacy `p<n>` token. */
  readonly rooms?: { readonly pos: number; readonly epoch: string };
}

const SinceSchema = z
  .string()
  .regex(TOKEN, 'since must be a next_batch token returned by this server')
  .transform((s): SinceToken => {
    const m = TOKEN.exec(s) as RegExpExecArray;
    return m[2] === undefined ? { presence: Number(m[1]) } : { presence: Number(m[1]), rooms: { pos: Number(m[2]), epoch: m[3] as string } };
  });

const SyncQuerySchema = z.object({
  since: SinceSchema.optional(),
  timeout: z
    .string()
    .regex(/^[0-9]{1,10}$/, 'timeout must be a non-negative integer number of milliseconds')
    .transform(Number)
    .optional(),
  set_presence: z.enum(['online', 'unavailable', 'offline'], { error: 'set_presence must be online, unavailable or offline' }).optional(),
  full_state: z.enum(['true', 'false'], { error: 'full_state must be true or false' }).optional(),
  filter: z.string().optional(),
});

interface SyncBody {
  next_batch: string;
  presence?: { events: PresenceEventJson[] };
  rooms?: RoomsJson;
}

export function syncRoutes(host: RouteHost): Route[] {
  const { engine, settings, metrics, auth, journal, roomSync } = host;

  const newEvents = (user: ServiceUser, since: number | null, initial: boolean): Promise<NewEvents> =>
    engine.getNewEvents(user.userId, since, initial ? {} : { includeOffline: true });

  /** The rooms section: everything when the token has no usable position, else the changes since it. */
  const roomsSince = (user: ServiceUser, since: SinceToken | null, full: boolean): RoomsJson | undefined => {
    const changes = since?.rooms === undefined ? undefined : journal.since(since.rooms.epoch, since.rooms.pos);
    if (since === null || full || changes === undefined) {
      const rooms = roomSync.full(user.userId, since !== null && changes === undefined);
      return since !== null && !full && Object.keys(rooms.join).length === 0 ? undefined : rooms;
    }
    return roomSync.incremental(user.userId, changes);
  };

  const sync = async (c: RequestContext): Promise<void> => {
    const user = auth.authenticate(c);
    const q = SyncQuerySchema.safeParse(Object.fromEntries(c.query));
    if (!q.success) {
      const issue = q.error.issues[0];
      throw new MatrixHttpError(400, 'M_INVALID_PARAM', issue?.message ?? 'invalid query parameter');
    }
    const { since: sinceToken, timeout: requestedTimeout, set_presence: setPresence, full_state: fullState } = q.data;
    const timeout = Math.min(requestedTimeout ?? 0, settings.maxSyncTimeoutMs);
    const full = fullState === 'true';
    // A token of another process (distributed mode: the client moved) names a position of another stream.
    const foreign = host.processScopedTokens && sinceToken !== undefined && sinceToken.rooms?.epoch !== journal.epoch;
    const since = full || foreign ? null : (sinceToken?.presence ?? null);
    const initial = since === null && !foreign;

    const set = setPresence ?? 'online';
    // rc_presence: the engine's /sync bucket (separate from PUT's); over it the sync is served without affecting presence.
    const handle = host.inputs.userSyncing(user, set);
    let woken = false;
    let wake: (() => void) | undefined;
    const rouse = (): void => {
      woken = true;
      wake?.();
    };
    const subscription = engine.syncStream(user.userId).subscribe({ next: rouse, complete: rouse });
    // Membership changes wake the poll when they are the user's own or in one of the user's rooms
    // (a set taken now: the user's own joins and leaves are caught by the first test).
    const myRooms = new Set<string>(engine.getRoomsForUser(user.userId));
    const stopWatchingRooms = journal.onChange((change) => {
      if (change.userId === user.userId || myRooms.has(change.roomId)) rouse();
    });
    let clientGone = false;
    const onClose = () => {
      clientGone = true;
      wake?.();
    };
    c.res.once('close', onClose);
    metrics.longPollsOpen.inc();
    try {
      let result = await newEvents(user, since, initial);
      let rooms = roomsSince(user, sinceToken ?? null, full);
      if (!initial && result.events.length === 0 && rooms === undefined && timeout > 0) {
        const deadline = Date.now() + timeout;
        for (;;) {
          if (clientGone || host.isClosing()) break;
          if (!woken) {
            const remaining = deadline - Date.now();
            if (remaining <= 0) break;
            await host.waitForWake(remaining, (fn) => (wake = fn));
            wake = undefined;
            if (clientGone) break;
          }
          woken = false;
          // Woken (or timed out, or shutting down): ask what this user may see since `since`.
          result = await newEvents(user, since, initial);
          rooms = roomsSince(user, sinceToken ?? null, full);
          if (result.events.length > 0 || rooms !== undefined || Date.now() >= deadline || host.isClosing()) break;
        }
      }
      if (clientGone) return;
      const now = engine.clock.now();
      const busy = engine.config.busyWireValue;
      const events: PresenceEventJson[] = result.events.map((s) => formatPresenceEvent(s, now, busy));
      const body: SyncBody = { next_batch: `p${result.nextToken}_m${journal.position}_${journal.epoch}` };
      if (events.length > 0) body.presence = { events };
      if (rooms !== undefined) body.rooms = rooms;
      sendJson(c.res, 200, body, host.isClosing() ? { connection: 'close' } : {});
    } finally {
      metrics.longPollsOpen.dec();
      c.res.off('close', onClose);
      subscription.unsubscribe();
      stopWatchingRooms();
      handle.end();
    }
  };

  return [{ name: 'sync', pattern: new RegExp(`^${CLIENT_PREFIX}/sync$`), methods: { GET: sync } }];
}
