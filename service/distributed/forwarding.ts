/**
 * Writes in a distributed deployment (docs/service.md, "Distributed mode").
 *
 * Every presence write runs on the process that owns the user's partition
 * (RedisPresenceNode). A process that receives a write for a user it does not
 * own forwards it to the owner over HTTP (`POST /_presence/internal/v1/forward`,
 * authenticated with `service.distributed.forward_secret`) and answers the
 * client with the owner's answer: forwarding, not redirecting, because Matrix
 * clients cannot follow a "go there" answer for PUT /presence.
 *
 * A write is answered 200 only once its owner acknowledged it (the change is in
 * Redis under a valid lease). While ownership moves (a process died, its leases
 * are expiring) the write waits and retries until `forward_timeout_ms`, then
 * gets 503. Retrying is safe: presence inputs carry absolute values. A forwarded
 * request is never forwarded again (the owner answers 409 when it no longer
 * owns the user, and the sender looks the owner up again).
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger, UserId } from '../../src/index.js';
import { NotDurableError, NotOwnerError, type RedisPresenceNode } from '../../src/hosting/redis-node.js';
import type { DistributedSettings, ServiceUser } from '../config.js';
import { verifySignature } from '../http-transport.js';
import { MatrixHttpError, accessTokenOf, parseJsonBody, readBody, sendJson } from '../http.js';
import type { Membership, PresenceInputs } from '../inputs.js';
import type { RequestContext, Route } from '../routes/route.js';
import type { OwnerDirectory } from './owners.js';

const ForwardSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('set_presence'), user_id: z.string(), device_id: z.string(), presence: z.string(), status_msg: z.string().optional() }),
  z.strictObject({ op: z.literal('membership'), room_id: z.string(), user_id: z.string(), membership: z.enum(['join', 'leave', 'ban']) }),
  z.strictObject({ op: z.literal('sync_start'), user_id: z.string(), device_id: z.string(), set_presence: z.enum(['online', 'unavailable']) }),
  z.strictObject({ op: z.literal('sync_end'), handle: z.string() }),
]);
type ForwardOp = z.infer<typeof ForwardSchema>;

export const FORWARD_PATH = '/_presence/internal/v1/forward';

/** What a forward attempt came to: done (with the owner's result), or "look the owner up again". */
type Attempt = { done: true; result: unknown } | { done: false; why: string };

export interface ForwardingOptions {
  readonly node: RedisPresenceNode;
  readonly owners: OwnerDirectory;
  readonly settings: DistributedSettings;
  readonly maxBodyBytes: number;
  /** Forwarded sync handles not ended by then (the forwarding process died) are ended by the owner. */
  readonly maxSyncMs: number;
  readonly logger: Logger;
}

export class ForwardingInputs implements PresenceInputs {
  /** Sync handles this process runs for syncs served elsewhere, by id. */
  private readonly handles = new Map<string, { end(): void; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(private readonly o: ForwardingOptions) {}

  async setPresence(user: ServiceUser, presence: string, statusMsg: string | undefined): Promise<void> {
    await this.route(user.userId, { op: 'set_presence', user_id: user.userId, device_id: user.deviceId, presence, ...(statusMsg !== undefined ? { status_msg: statusMsg } : {}) });
  }

  async setMembership(roomId: string, userId: string, membership: Membership): Promise<void> {
    await this.route(userId, { op: 'membership', room_id: roomId, user_id: userId, membership });
  }

  /** Refused: partition checkpoints do not carry policies yet, so a policy could be forgotten after a rebuild (docs/policies.md). */
  setPresencePolicy(): Promise<void> {
    return Promise.reject(new MatrixHttpError(501, 'M_UNRECOGNIZED', 'presence policies are not available in distributed mode yet: run the service as one process to use them (docs/policies.md)'));
  }

  userSyncing(user: ServiceUser, setPresence: 'online' | 'unavailable' | 'offline'): { end(): void } {
    if (setPresence === 'offline') return { end: () => {} }; // does not affect presence
    const started = this.route(user.userId, { op: 'sync_start', user_id: user.userId, device_id: user.deviceId, set_presence: setPresence }).catch((error: unknown) => {
      this.o.logger.debug(`distributed: the presence effect of ${user.userId}'s sync was not recorded: ${String(error)}`);
      return undefined;
    });
    return {
      end: () => {
        void started.then((s) => {
          if (s === undefined) return;
          const end: ForwardOp = { op: 'sync_end', handle: String(s.result) };
          if (s.via === 'local') void this.execute(end);
          else void this.post(s.via, end).catch(() => {}); // the owner ends it itself later (expiry, or the next owner's adoption)
        });
      },
    };
  }

  /** The internal endpoint: run a forwarded write here if this process owns its user, else 409. */
  internalRoute(): Route {
    const handler = async (c: RequestContext): Promise<void> => {
      const token = accessTokenOf(c.req, c.query);
      if (token === undefined || !verifySignature(this.o.settings.forwardSecret, token)) throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'forwarded writes need service.distributed.forward_secret');
      const parsed = ForwardSchema.safeParse(parseJsonBody(await readBody(c.req, this.o.maxBodyBytes)));
      if (!parsed.success) throw new MatrixHttpError(400, 'M_BAD_JSON', parsed.error.issues[0]?.message ?? 'invalid forwarded write');
      const op = parsed.data;
      if (op.op !== 'sync_end' && !this.o.node.ownsUser(op.user_id)) {
        sendJson(c.res, 409, { errcode: 'PE_NOT_OWNER', error: `${op.user_id} is not owned by ${this.o.node.instanceId}` });
        return;
      }
      try {
        sendJson(c.res, 200, { result: (await this.execute(op)) ?? null });
      } catch (error) {
        if (error instanceof NotOwnerError) sendJson(c.res, 409, { errcode: 'PE_NOT_OWNER', error: error.message });
        else if (error instanceof NotDurableError) sendJson(c.res, 503, { errcode: 'PE_NOT_DURABLE', error: error.message });
        else throw error;
      }
    };
    return { name: 'internal_forward', pattern: new RegExp(`^${FORWARD_PATH.replace(/\//g, '\\/')}$`), methods: { POST: handler } };
  }

  close(): void {
    this.closed = true;
    for (const h of this.handles.values()) clearTimeout(h.timer);
    this.handles.clear();
  }

  /** Run `op` on the owner of `userId` (here or forwarded), retrying while ownership moves. */
  private async route(userId: UserId | string, op: ForwardOp): Promise<{ result: unknown; via: 'local' | string }> {
    const { node, owners, settings } = this.o;
    const deadline = Date.now() + settings.forwardTimeoutMs;
    const pause = Math.min(100, node.renewIntervalMs);
    let last = 'no process owns the user';
    for (;;) {
      if (this.closed) throw new MatrixHttpError(503, 'M_UNKNOWN', 'The server is shutting down');
      if (node.ownsUser(userId)) {
        try {
          return { result: await this.execute(op), via: 'local' };
        } catch (error) {
          if (!(error instanceof NotOwnerError || error instanceof NotDurableError)) throw error;
          last = error.message; // fenced or lost meanwhile: undone here; look the owner up again
        }
      } else {
        const owner = await node.ownerOf(userId).catch(() => null);
        const url = owner === null || owner === node.instanceId ? undefined : await owners.urlOf(owner);
        if (url !== undefined) {
          const attempt = await this.post(url, op, deadline);
          if (attempt.done) return { result: attempt.result, via: url };
          last = attempt.why;
        } else if (owner !== null && owner !== node.instanceId) last = `the owner ${owner} has not published its address`;
      }
      if (Date.now() + pause > deadline) {
        throw new MatrixHttpError(503, 'M_UNKNOWN', `No service process could take the write for ${userId} within ${settings.forwardTimeoutMs} ms (${last}); retry`);
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  }

  /** Forward `op` to the process at `url`. Throws the owner's Matrix error (rate limit, bad input) as is. */
  private async post(url: string, op: ForwardOp, deadline = Date.now() + this.o.settings.forwardTimeoutMs): Promise<Attempt> {
    // A frozen owner loses its lease within a TTL: do not wait on it for longer than that.
    const timeout = Math.max(250, Math.min(deadline - Date.now(), 2 * this.o.node.leaseTtlMs));
    let res: Response;
    try {
      res = await fetch(`${url}${FORWARD_PATH}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.o.settings.forwardSecret}`, 'content-type': 'application/json' },
        body: JSON.stringify(op),
        signal: AbortSignal.timeout(timeout),
      });
    } catch (error) {
      return { done: false, why: `${url} did not answer (${(error as Error).message})` };
    }
    const body = (await res.json().catch(() => ({}))) as { result?: unknown; errcode?: string; error?: string; [k: string]: unknown };
    if (res.status === 200) return { done: true, result: body.result };
    if (res.status === 409 || body.errcode === 'PE_NOT_DURABLE' || (res.status === 503 && body.errcode === 'M_UNKNOWN')) return { done: false, why: `${url}: ${body.error ?? res.status}` };
    const { errcode, error, ...extra } = body;
    throw new MatrixHttpError(res.status, errcode ?? 'M_UNKNOWN', error ?? `the owning process answered ${res.status}`, extra);
  }

  /** Run a write on this process (it owns the user, or it holds the sync handle). */
  private async execute(op: ForwardOp): Promise<unknown> {
    const { node } = this.o;
    switch (op.op) {
      case 'set_presence':
        return node.setPresence(op.user_id, { presence: op.presence, statusMsg: op.status_msg, deviceId: op.device_id });
      case 'membership':
        return node.setMembership(op.room_id, op.user_id, op.membership);
      case 'sync_start': {
        const handle = node.userSyncing(op.user_id, { deviceId: op.device_id, setPresence: op.set_presence });
        const id = randomUUID();
        const timer = setTimeout(() => this.endHandle(id), this.o.maxSyncMs + 30_000);
        timer.unref?.();
        this.handles.set(id, { end: () => handle.end(), timer });
        await handle.written.catch(() => {}); // best effort, like a sync's presence effect on one process
        return id;
      }
      case 'sync_end':
        this.endHandle(op.handle);
        return undefined;
    }
  }

  private endHandle(id: string): void {
    const h = this.handles.get(id);
    if (h === undefined) return;
    this.handles.delete(id);
    clearTimeout(h.timer);
    h.end();
  }
}
