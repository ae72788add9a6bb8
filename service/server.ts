/**
 * The reference node service: a small Matrix-shaped HTTP front end over the
 * presence engine (node:http, no framework).
 *
 * Client API (v3, with r0 aliases): presence GET/PUT, /sync (presence section
 * only, long-polling), /versions, /account/whoami. Federation: inbound
 * `PUT /_matrix/federation/v1/send/{txnId}` from configured peers (shared-secret
 * HMAC, see http-transport.ts), outbound through `FederationSender`. Admin:
 * room membership. Ops: `/metrics` (Prometheus), `/health`.
 *
 * Every error is Matrix's `{errcode, error}`; every handler is wrapped so no
 * request can take the process down.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import {
  EngineStoppedError,
  ForbiddenError,
  InvalidInputError,
  RateLimitedError,
  RoomIdSchema,
  UserIdSchema,
  consoleLogger,
  formatPresenceEvent,
  isPresenceError,
  type Clock,
  type Logger,
  type PresenceEngine,
  type PresenceEventJson,
  type NewEvents,
  type FederationTransport,
  type FederationLink,
  FederationEduSchema,
} from '../src/index.js';
import { loadServiceConfigFile, parseServiceConfig, parseServiceConfigYaml, type LoadedServiceConfig, type ServiceSettings, type ServiceUser } from './config.js';
import { createServiceEngine } from './engine-factory.js';
import { CORS_HEADERS, MatrixHttpError, accessTokenOf, parseJsonBody, readBody, sendError, sendJson } from './http.js';
import { HttpFederationTransport, parseAuthHeader, signRequest, verifySignature } from './http-transport.js';
import { createServiceMetrics, type ServiceMetrics } from './metrics.js';
import { createDashboard, type Dashboard } from './dashboard/handler.js';

// ───────────────────────────── request schemas ─────────────────────────────

/** `PUT /presence/{userId}/status` body: `presence` required, `status_msg` optional; any other key is refused (Synapse). */
const PresenceBodySchema = z.record(z.string(), z.unknown());

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

const MembershipBodySchema = z.strictObject({
  membership: z.enum(['join', 'leave', 'ban'], { error: 'membership must be join, leave or ban' }),
});

const TransactionSchema = z.object({
  origin: z.string({ error: 'origin must be a string' }),
  origin_server_ts: z.number({ error: 'origin_server_ts must be a number' }).optional(),
  pdus: z.array(z.unknown(), { error: 'pdus must be an array' }).max(50, 'at most 50 PDUs per transaction').optional(),
  edus: z.array(z.unknown(), { error: 'edus must be an array' }).max(100, 'at most 100 EDUs per transaction').optional(),
});

// ───────────────────────────── options ─────────────────────────────

export interface PresenceServiceOptions {
  /** A YAML config file (relative router module paths resolve against its directory). */
  readonly configPath?: string;
  /** YAML config text. */
  readonly configText?: string;
  /** An already parsed config object. */
  readonly config?: unknown;
  /** Base directory for relative module paths when the config is not read from a file. Default: cwd. */
  readonly baseDir?: string;
  /** Override `service.listen.host` / `service.listen.port` (tests use port 0). */
  readonly host?: string;
  readonly port?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Outbound federation transport. Default: HTTP to the configured peers' URLs. */
  readonly transport?: FederationTransport;
  /** `fetch` used by the default HTTP transport. */
  readonly fetch?: typeof fetch;
  /** Include prom-client's default process metrics (default true). */
  readonly defaultMetrics?: boolean;
}

const SHUTDOWN_GRACE_MS = 2_000;
const TXN_MEMORY = 1_000;

interface Route {
  readonly name: string;
  readonly pattern: RegExp;
  readonly methods: Readonly<Record<string, (ctx: RequestContext) => Promise<void>>>;
}

interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: readonly string[];
  readonly query: URLSearchParams;
}

/** One running service: HTTP server, engine, outbound federation transport and metrics. */
export class PresenceService {
  readonly engine: PresenceEngine;
  readonly settings: ServiceSettings;
  readonly transport: FederationTransport;
  private readonly link: FederationLink;
  readonly metrics: ServiceMetrics;
  readonly dashboard: Dashboard;
  readonly logger: Logger;
  private readonly server: Server;
  private readonly routes: readonly Route[];
  private readonly waiters = new Set<() => void>();
  private readonly seenTxns = new Map<string, true>();
  private closing = false;
  private activeRequests = 0;
  private closed: Promise<void> | undefined;
  private address: AddressInfo | undefined;
  private readonly listenHost: string;
  private readonly listenPort: number;

  private constructor(engine: PresenceEngine, loaded: LoadedServiceConfig, options: PresenceServiceOptions, logger: Logger) {
    this.engine = engine;
    this.settings = loaded.settings;
    this.logger = logger;
    this.listenHost = options.host ?? this.settings.host;
    this.listenPort = options.port ?? this.settings.port;
    const http =
      options.transport === undefined
        ? new HttpFederationTransport({
            serverName: this.settings.serverName,
            peers: this.settings.peers,
            requestTimeoutMs: this.settings.federationRequestTimeoutMs,
            logger,
            fetch: options.fetch,
            now: () => engine.clock.now(),
          })
        : undefined;
    this.transport = options.transport ?? (http as HttpFederationTransport);
    this.link = engine.attachFederationTransport(this.transport, this.settings.federationTransport);
    this.metrics = createServiceMetrics(engine, http, { defaultMetrics: options.defaultMetrics ?? true, peers: [...this.settings.peers.keys()] });
    this.routes = this.buildRoutes();
    this.server = createServer({ requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      // Unparsable HTTP: answer in the Matrix error shape when the socket still allows it.
      const [status, reason] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
      const body = JSON.stringify({ errcode: status === 431 ? 'M_TOO_LARGE' : 'M_UNKNOWN', error: `malformed HTTP request: ${reason}` });
      if (socket.writable) {
        socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      } else socket.destroy();
      this.logger.debug(`http: client error: ${error.message}`);
    });
    this.dashboard = createDashboard({ engine, settings: this.settings, server: this.server, transport: http });
  }

  /** Create the engine from the config, preload rooms, and build the service (not listening yet). */
  static async create(options: PresenceServiceOptions): Promise<PresenceService> {
    const logger = options.logger ?? consoleLogger;
    let loaded: LoadedServiceConfig;
    let baseDir = options.baseDir ?? process.cwd();
    if (options.config !== undefined) loaded = parseServiceConfig(options.config);
    else if (options.configText !== undefined) loaded = parseServiceConfigYaml(options.configText);
    else if (options.configPath !== undefined) {
      loaded = await loadServiceConfigFile(options.configPath);
      if (options.baseDir === undefined) baseDir = dirname(resolvePath(options.configPath));
    } else throw new InvalidInputError('options', 'give configPath, configText or config');
    const engine = await createServiceEngine({ raw: loaded.raw, baseDir, clock: options.clock, logger });
    // Attach federation first, so presence sent on the preloaded joins goes out.
    const service = new PresenceService(engine, loaded, options, logger);
    // One turn, committed before `create` resolves (also with per-tick turns, where a batch made outside a tick commits at once).
    engine.batch(() => {
      for (const room of loaded.settings.rooms) for (const m of room.members) engine.joinRoom(room.roomId, m);
    });
    return service;
  }

  /** Start listening. Resolves with the bound address. */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen(this.listenPort, this.listenHost, () => {
        this.server.off('error', onError);
        this.address = this.server.address() as AddressInfo;
        resolve(this.address);
      });
    });
  }

  /** Base URL, e.g. `http://127.0.0.1:8008` (after `listen`). */
  get url(): string {
    if (this.address === undefined) throw new Error('the service is not listening yet');
    const host = this.address.family === 'IPv6' ? `[${this.address.address}]` : this.address.address;
    return `http://${host}:${this.address.port}`;
  }

  /** Change a federation peer's URL (peers on ephemeral ports). Only for the default HTTP transport. */
  setPeerUrl(serverName: string, url: string): void {
    if (!(this.transport instanceof HttpFederationTransport)) throw new Error('setPeerUrl needs the default HTTP transport');
    this.transport.setPeerUrl(serverName, url);
  }

  /**
   * Shut down: stop accepting connections, answer open long-polls, let requests
   * in flight finish (bounded), close the remaining connections, abort outbound
   * federation requests and stop the engine. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= this.doClose();
    return this.closed;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.dashboard.close();
    for (const wake of [...this.waiters]) wake();
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
    });
    this.server.closeIdleConnections();
    // Let requests in flight (long-polls were just woken) finish, bounded; then drop every connection left.
    const deadline = Date.now() + SHUTDOWN_GRACE_MS;
    while (this.activeRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.server.closeAllConnections();
    await serverClosed;
    this.link.detach();
    if (this.transport instanceof HttpFederationTransport) this.transport.close();
    await this.engine.close();
  }

  // ───────────────────────────── dispatch ─────────────────────────────

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    this.activeRequests++;
    res.once('close', () => this.activeRequests--);
    let routeName = 'unknown';
    try {
      const raw = req.url ?? '/';
      const q = raw.indexOf('?');
      const path = q < 0 ? raw : raw.slice(0, q);
      const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
      const method = req.method ?? 'GET';
      if (this.closing) res.setHeader('connection', 'close');
      if (method === 'OPTIONS') {
        routeName = 'options';
        res.writeHead(204, { ...CORS_HEADERS });
        res.end();
        return;
      }
      for (const route of this.routes) {
        const m = route.pattern.exec(path);
        if (m === null) continue;
        routeName = route.name;
        const handler = route.methods[method];
        if (handler === undefined) throw new MatrixHttpError(405, 'M_UNRECOGNIZED', `${method} is not supported on this endpoint`);
        const params = m.slice(1).map((p) => decodeParam(p ?? ''));
        await handler({ req, res, params, query });
        return;
      }
      throw new MatrixHttpError(404, 'M_UNRECOGNIZED', 'Unrecognized request');
    } catch (error) {
      this.sendFailure(req, res, error);
    } finally {
      const finish = () =>
        this.metrics.observeRequest(req.method ?? '?', routeName, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
      if (res.writableFinished) finish();
      else res.once('close', finish);
    }
  }

  private sendFailure(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    const e = toMatrixError(error);
    if (e.status >= 500) this.logger.error(`http: ${req.method ?? '?'} ${(req.url ?? '').split('?')[0] ?? ''} failed`, { error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    const headers: Record<string, string> = {};
    if (e.status === 413) {
      headers.connection = 'close';
      // Drain what the client is still sending (bounded in readBody) so it can read the answer.
      req.resume();
    }
    if (e.status === 429 && typeof e.extra.retry_after_ms === 'number') headers['retry-after'] = String(Math.ceil(e.extra.retry_after_ms / 1000));
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, e, headers);
  }

  private buildRoutes(): Route[] {
    const client = '/_matrix/client/(?:v3|r0)';
    return [
      {
        name: 'presence',
        pattern: new RegExp(`^/_matrix/client/(?:v3|r0|api/v1)/presence/([^/]+)/status$`),
        methods: { GET: (c) => this.getPresence(c), PUT: (c) => this.putPresence(c) },
      },
      { name: 'sync', pattern: new RegExp(`^${client}/sync$`), methods: { GET: (c) => this.sync(c) } },
      { name: 'versions', pattern: /^\/_matrix\/client\/versions$/, methods: { GET: (c) => this.versions(c) } },
      { name: 'whoami', pattern: new RegExp(`^${client}/account/whoami$`), methods: { GET: (c) => this.whoami(c) } },
      { name: 'federation_send', pattern: /^\/_matrix\/federation\/v1\/send\/([^/]+)$/, methods: { PUT: (c) => this.federationSend(c) } },
      {
        name: 'admin_membership',
        pattern: /^\/_presence\/admin\/v1\/rooms\/([^/]+)\/members\/([^/]+)$/,
        methods: { PUT: (c) => this.adminSetMembership(c) },
      },
      { name: 'admin_members', pattern: /^\/_presence\/admin\/v1\/rooms\/([^/]+)\/members$/, methods: { GET: (c) => this.adminGetMembers(c) } },
      { name: 'metrics', pattern: /^\/metrics$/, methods: { GET: (c) => this.metricsEndpoint(c) } },
      { name: 'dashboard', pattern: /^\/_presence\/dashboard(\/.*)?$/, methods: { GET: (c) => this.dashboard.handle(c.req, c.res, c.params[0] ?? '', c.query) } },
      { name: 'health', pattern: /^\/health$/, methods: { GET: async (c) => sendJson(c.res, 200, { status: 'ok' }) } },
    ];
  }

  // ───────────────────────────── auth ─────────────────────────────

  private authenticate(c: RequestContext): ServiceUser {
    const token = accessTokenOf(c.req, c.query);
    if (token === undefined) throw new MatrixHttpError(401, 'M_MISSING_TOKEN', 'Missing access token.');
    const user = this.settings.tokens.get(token);
    if (user === undefined) throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
    return user;
  }

  private authenticateAdmin(c: RequestContext): void {
    const token = accessTokenOf(c.req, c.query);
    if (token === undefined) throw new MatrixHttpError(401, 'M_MISSING_TOKEN', 'Missing access token.');
    if (this.settings.adminToken !== undefined && verifySignature(this.settings.adminToken, token)) return;
    if (this.settings.tokens.has(token)) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'You are not a server admin (use service.admin_token).');
    throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
  }

  // ───────────────────────────── client API ─────────────────────────────

  private async versions(c: RequestContext): Promise<void> {
    sendJson(c.res, 200, {
      versions: ['r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1', 'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11'],
      unstable_features: { 'org.matrix.msc3026.busy_presence': this.engine.config.busyEnabled },
    });
  }

  private async whoami(c: RequestContext): Promise<void> {
    const user = this.authenticate(c);
    sendJson(c.res, 200, { user_id: user.userId, device_id: user.deviceId, is_guest: false });
  }

  private async getPresence(c: RequestContext): Promise<void> {
    const user = this.authenticate(c);
    const target = parseUserParam(c.params[0]);
    if (this.engine.config.enabled === false) {
      sendJson(c.res, 200, { presence: 'offline' });
      return;
    }
    try {
      sendJson(c.res, 200, this.engine.getPresence(user.userId, target));
    } catch (error) {
      if (error instanceof ForbiddenError) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'You are not allowed to see their presence.');
      throw error;
    }
  }

  private async putPresence(c: RequestContext): Promise<void> {
    const user = this.authenticate(c);
    const target = parseUserParam(c.params[0]);
    if (target !== user.userId) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'Can only set your own presence state');
    const body = parseJsonBody(await readBody(c.req, this.settings.maxBodyBytes));
    const parsed = PresenceBodySchema.safeParse(body);
    if (!parsed.success || Array.isArray(body)) throw new MatrixHttpError(400, 'M_BAD_JSON', 'Unable to parse state: the body must be a JSON object');
    const fields = parsed.data;
    const unknown = Object.keys(fields).filter((k) => k !== 'presence' && k !== 'status_msg');
    if (!('presence' in fields)) throw new MatrixHttpError(400, 'M_BAD_JSON', 'Unable to parse state: presence is required');
    if (unknown.length > 0) throw new MatrixHttpError(400, 'M_BAD_JSON', `Unable to parse state: unknown key(s) ${unknown.join(', ')}`);
    if (typeof fields.presence !== 'string') throw new MatrixHttpError(400, 'M_INVALID_PARAM', 'Invalid presence state: presence must be a string');
    if ('status_msg' in fields && typeof fields.status_msg !== 'string') throw new MatrixHttpError(400, 'M_INVALID_PARAM', 'status_msg must be a string.');
    // Spec §2.12 / §3.7: when presence is not tracked the handler is skipped (even invalid states get 200).
    if (this.engine.config.enabled === true) {
      this.engine.setPresence(user.userId, {
        presence: fields.presence,
        statusMsg: typeof fields.status_msg === 'string' ? fields.status_msg : undefined,
        deviceId: user.deviceId,
      });
    }
    await this.committed();
    sendJson(c.res, 200, {});
  }

  /**
   * With `presence.turns: per_tick`, wait for the end of the tick, where the
   * engine appends this request's inputs to its log: the reply then means
   * what it means with per-input turns, that the log holds them. The engine
   * scheduled its commit when the tick's first input arrived, so a
   * `setImmediate` scheduled now runs after it.
   */
  private async committed(): Promise<void> {
    if (this.engine.config.turns !== 'per_tick') return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private async sync(c: RequestContext): Promise<void> {
    const user = this.authenticate(c);
    const q = SyncQuerySchema.safeParse(Object.fromEntries(c.query));
    if (!q.success) {
      const issue = q.error.issues[0];
      throw new MatrixHttpError(400, 'M_INVALID_PARAM', issue?.message ?? 'invalid query parameter');
    }
    const { since: sinceToken, timeout: requestedTimeout, set_presence: setPresence, full_state: fullState } = q.data;
    const timeout = Math.min(requestedTimeout ?? 0, this.settings.maxSyncTimeoutMs);
    const full = fullState === 'true';
    const since = full ? null : (sinceToken ?? null);
    const initial = since === null;

    const handle = this.engine.userSyncing(user.userId, { deviceId: user.deviceId, setPresence: setPresence ?? 'online' });
    let woken = false;
    let wake: (() => void) | undefined;
    const subscription = this.engine.syncStream(user.userId).subscribe({
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
    this.metrics.longPollsOpen.inc();
    try {
      let result = await this.newEvents(user, since, initial);
      if (!initial && result.events.length === 0 && timeout > 0) {
        const deadline = Date.now() + timeout;
        for (;;) {
          if (clientGone || this.closing) break;
          if (!woken) {
            const remaining = deadline - Date.now();
            if (remaining <= 0) break;
            await this.waitForWake(remaining, (fn) => (wake = fn));
            wake = undefined;
            if (clientGone) break;
          }
          woken = false;
          // Woken (or timed out, or shutting down): ask the engine what this user may see since `since`.
          result = await this.newEvents(user, since, initial);
          if (result.events.length > 0 || Date.now() >= deadline || this.closing) break;
        }
      }
      if (clientGone) return;
      const now = this.engine.clock.now();
      const busy = this.engine.config.busyWireValue;
      const events: PresenceEventJson[] = result.events.map((s) => formatPresenceEvent(s, now, busy));
      const body: { next_batch: string; presence?: { events: PresenceEventJson[] } } = { next_batch: `p${result.nextToken}` };
      if (events.length > 0 && this.engine.config.enabled !== false) body.presence = { events };
      sendJson(c.res, 200, body, this.closing ? { connection: 'close' } : {});
    } finally {
      this.metrics.longPollsOpen.dec();
      c.res.off('close', onClose);
      subscription.unsubscribe();
      handle.end();
    }
  }

  private async newEvents(user: ServiceUser, since: number | null, initial: boolean): Promise<NewEvents> {
    return this.engine.getNewEvents(user.userId, since, initial ? {} : { includeOffline: true });
  }

  /** Resolve after `ms` or when woken (the wake function is handed to `register`). */
  private waitForWake(ms: number, register: (wake: () => void) => void): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      register(done);
    });
  }

  // ───────────────────────────── federation ─────────────────────────────

  private async federationSend(c: RequestContext): Promise<void> {
    const txnId = c.params[0] ?? '';
    const header = c.req.headers.authorization;
    const auth = parseAuthHeader(typeof header === 'string' ? header : undefined);
    if (auth === undefined) throw new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Missing or malformed X-Presence-HMAC Authorization header');
    const peer = this.settings.peers.get(auth.origin as never);
    if (peer === undefined) throw new MatrixHttpError(401, 'M_UNAUTHORIZED', `${auth.origin} is not a configured federation peer`);
    if (auth.destination !== this.settings.serverName) throw new MatrixHttpError(401, 'M_UNAUTHORIZED', `this server is ${this.settings.serverName}, not ${auth.destination}`);
    const bodyBytes = await readBody(c.req, Math.max(this.settings.maxBodyBytes, 1024 * 1024));
    const rawPath = (c.req.url ?? '').split('?')[0] ?? '';
    const expected = signRequest(peer.sharedSecret, 'PUT', rawPath, auth.origin, auth.destination, bodyBytes.toString('utf8'));
    if (!verifySignature(expected, auth.sig)) {
      this.metrics.inboundTransaction(auth.origin, 'rejected');
      throw new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Invalid signature');
    }
    const body = parseJsonBody(bodyBytes);
    const txn = TransactionSchema.safeParse(body);
    if (!txn.success) {
      this.metrics.inboundTransaction(auth.origin, 'rejected');
      throw new MatrixHttpError(400, 'M_BAD_JSON', txn.error.issues[0]?.message ?? 'invalid transaction');
    }
    if (txn.data.origin !== auth.origin) {
      this.metrics.inboundTransaction(auth.origin, 'rejected');
      throw new MatrixHttpError(403, 'M_FORBIDDEN', 'the transaction origin does not match the authenticated origin');
    }
    const key = `${auth.origin}\u0000${txnId}`;
    if (this.seenTxns.has(key)) {
      this.metrics.inboundTransaction(auth.origin, 'duplicate');
      sendJson(c.res, 200, { pdus: {} });
      return;
    }
    this.seenTxns.set(key, true);
    if (this.seenTxns.size > TXN_MEMORY) {
      const oldest = this.seenTxns.keys().next();
      if (oldest.done !== true) this.seenTxns.delete(oldest.value);
    }
    for (const raw of txn.data.edus ?? []) {
      const edu = FederationEduSchema.safeParse(raw);
      if (!edu.success) {
        this.metrics.droppedInbound(1, 'malformed_edu');
        continue;
      }
      if (edu.data.edu_type !== 'm.presence') continue; // other EDU types are not handled by this service
      this.engine.receiveFederationEdu(auth.origin, edu.data.content);
    }
    this.metrics.inboundTransaction(auth.origin, 'accepted');
    await this.committed();
    sendJson(c.res, 200, { pdus: {} });
  }

  // ───────────────────────────── admin ─────────────────────────────

  private async adminSetMembership(c: RequestContext): Promise<void> {
    this.authenticateAdmin(c);
    const room = RoomIdSchema.safeParse(c.params[0]);
    if (!room.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', `invalid room id: ${room.error.issues[0]?.message ?? ''}`);
    const user = parseUserParam(c.params[1]);
    const body = MembershipBodySchema.safeParse(parseJsonBody(await readBody(c.req, this.settings.maxBodyBytes)));
    if (!body.success) throw new MatrixHttpError(400, 'M_BAD_JSON', body.error.issues[0]?.message ?? 'invalid body');
    this.engine.setMembership(room.data, user, body.data.membership);
    await this.committed();
    sendJson(c.res, 200, { room_id: room.data, user_id: user, membership: body.data.membership });
  }

  private async adminGetMembers(c: RequestContext): Promise<void> {
    this.authenticateAdmin(c);
    const room = RoomIdSchema.safeParse(c.params[0]);
    if (!room.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', `invalid room id: ${room.error.issues[0]?.message ?? ''}`);
    sendJson(c.res, 200, { room_id: room.data, joined: this.engine.getRoomMembers(room.data) });
  }

  private async metricsEndpoint(c: RequestContext): Promise<void> {
    if (!this.settings.metrics) throw new MatrixHttpError(404, 'M_UNRECOGNIZED', 'metrics are disabled (service.metrics: false)');
    const text = await this.metrics.render();
    c.res.writeHead(200, { 'content-type': this.metrics.registry.contentType, 'content-length': String(Buffer.byteLength(text)) });
    c.res.end(text);
  }
}

// ───────────────────────────── helpers ─────────────────────────────

function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new MatrixHttpError(400, 'M_INVALID_PARAM', 'malformed percent-encoding in the path');
  }
}

function parseUserParam(value: string | undefined): string {
  const r = UserIdSchema.safeParse(value);
  if (!r.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', `Invalid user id: ${r.error.issues[0]?.message ?? 'malformed'}`);
  return r.data;
}

/** Map anything thrown by a handler to a Matrix error. */
export function toMatrixError(error: unknown): MatrixHttpError {
  if (error instanceof MatrixHttpError) return error;
  if (error instanceof RateLimitedError) {
    return new MatrixHttpError(429, 'M_LIMIT_EXCEEDED', 'Too many requests', { retry_after_ms: error.retryAfterMs });
  }
  if (error instanceof ForbiddenError) return new MatrixHttpError(403, 'M_FORBIDDEN', error.message);
  if (error instanceof InvalidInputError) {
    if (error.field === 'presence') return new MatrixHttpError(400, 'M_INVALID_PARAM', `Invalid presence state: ${error.message}`);
    return new MatrixHttpError(400, 'M_INVALID_PARAM', error.message);
  }
  if (error instanceof EngineStoppedError) return new MatrixHttpError(503, 'M_UNKNOWN', 'The server is shutting down');
  if (isPresenceError(error)) return new MatrixHttpError(500, 'M_UNKNOWN', error.message);
  return new MatrixHttpError(500, 'M_UNKNOWN', 'Internal server error');
}

/** Create and start a service (`listen`), logging where it listens. */
export async function startPresenceService(options: PresenceServiceOptions): Promise<PresenceService> {
  const service = await PresenceService.create(options);
  await service.listen();
  service.logger.info(`presence service for ${service.settings.serverName} listening on ${service.url}`);
  return service;
}
