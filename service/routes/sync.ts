/**
 * `GET /sync`: the presence section, long-polling until the user may see
 * something new since `since` (or the timeout, or shutdown).
 */
import { z } from 'zod';
import { formatPresenceEvent, type NewEvents, type PresenceEventJson } from '../../src/index.js';
import { authenticate } from '../auth.js';
import type { ServiceUser } from '../config.js';
import { MatrixHttpError, sendJson } from '../http.js';
import { CLIENT_PREFIX, type RequestContext, type Route, type RouteHost } from './route.js';

/** `since` tokens are `p<presence stream id>`. */
const SinceSchema = z
  .string()
  .regex(/^p(0|[1-9][0-9]{0,14})$/, 'since must be a next_batch token returned by this server (p<number>)')
  .transform((s) => Number(s.slice(1)));

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

export function syncRoutes(host: RouteHost): Route[] {
  const { engine, settings, metrics } = host;

  const newEvents = (user: ServiceUser, since: number | null, initial: boolean): Promise<NewEvents> =>
    engine.getNewEvents(user.userId, since, initial ? {} : { includeOffline: true });

  const sync = async (c: RequestContext): Promise<void> => {
    const user = authenticate(settings, c);
    const q = SyncQuerySchema.safeParse(Object.fromEntries(c.query));
    if (!q.success) {
      const issue = q.error.issues[0];
      throw new MatrixHttpError(400, 'M_INVALID_PARAM', issue?.message ?? 'invalid query parameter');
    }
    const { since: sinceToken, timeout: requestedTimeout, set_presence: setPresence, full_state: fullState } = q.data;
    const timeout = Math.min(requestedTimeout ?? 0, settings.maxSyncTimeoutMs);
    const full = fullState === 'true';
    const since = full ? null : (sinceToken ?? null);
    const initial = since === null;

    const handle = engine.userSyncing(user.userId, { deviceId: user.deviceId, setPresence: setPresence ?? 'online' });
    let woken = false;
    let wake: (() => void) | undefined;
    const subscription = engine.syncStream(user.userId).subscribe({
      next: () => {
        woken = true;
        wake?.();
      },
      complete: () => {
        woken = true;
        wake?.();
      },
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
      if (!initial && result.events.length === 0 && timeout > 0) {
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
          // Woken (or timed out, or shutting down): ask the engine what this user may see since `since`.
          result = await newEvents(user, since, initial);
          if (result.events.length > 0 || Date.now() >= deadline || host.isClosing()) break;
        }
      }
      if (clientGone) return;
      const now = engine.clock.now();
      const busy = engine.config.busyWireValue;
      const events: PresenceEventJson[] = result.events.map((s) => formatPresenceEvent(s, now, busy));
      const body: { next_batch: string; presence?: { events: PresenceEventJson[] } } = { next_batch: `p${result.nextToken}` };
      if (events.length > 0 && engine.config.enabled !== false) body.presence = { events };
      sendJson(c.res, 200, body, host.isClosing() ? { connection: 'close' } : {});
    } finally {
      metrics.longPollsOpen.dec();
      c.res.off('close', onClose);
      subscription.unsubscribe();
      handle.end();
    }
  };

  return [{ name: 'sync', pattern: new RegExp(`^${CLIENT_PREFIX}/sync$`), methods: { GET: sync } }];
}
