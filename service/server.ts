/**
 * The reference node service: a small Matrix-shaped HTTP front end over the
 * presence engine (node:http, no framework). This file owns the lifecycle
 * (create, listen, close) and dispatch; the endpoints live in routes/:
 *
 * - routes/account.ts: /login, /logout, /account/whoami
 * - routes/client-config.ts: /versions, /capabilities, /pushrules/, filters
 * - routes/presence.ts: presence GET/PUT
 * - routes/sync.ts: /sync (presence and room membership, long-polling)
 * - routes/federation.ts: inbound `PUT /_matrix/federation/v1/send/{txnId}`
 *   (shared-secret HMAC, see http-transport.ts); outbound goes through
 *   `FederationSender` over `HttpFederationTransport`
 * - routes/admin.ts: room membership (admin token)
 * - routes/ops.ts: `/metrics` (Prometheus), `/health`
 *
 * Every error is Matrix's `{errcode, error}` (errors.ts); every handler is
 * wrapped so no request can take the process down.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import { ConfigError, InvalidInputError, consoleLogger, type PresenceConfig, type Clock, type Logger, type PresenceEngine, type FederationTransport, type FederationLink } from '../src/index.js';
import { loadServiceConfigFile, parseServiceConfig, parseServiceConfigYaml, type LoadedServiceConfig, type ServiceSettings } from './config.js';
import { ServiceAppservices } from './appservices.js';
import { Authenticator } from './auth.js';
import { createServiceEngine } from './engine-factory.js';
import { decodeParam, toMatrixError } from './errors.js';
import { CORS_HEADERS, MatrixHttpError, answerClientError, sendError } from './http.js';
import { HttpFederationTransport } from './http-transport.js';
import { MembershipJournal } from './membership-journal.js';
import { createServiceMetrics, type ServiceMetrics } from './metrics.js';
import { RoomSync } from './room-sync.js';
import { accountRoutes } from './routes/account.js';
import { adminRoutes } from './routes/admin.js';
import { clientConfigRoutes } from './routes/client-config.js';
import { federationRoutes } from './routes/federation.js';
import { opsRoutes } from './routes/ops.js';
import { presenceRoutes } from './routes/presence.js';
import { presencePolicyRoutes } from './routes/presence-policy.js';
import type { Route, RouteHost } from './routes/route.js';
import { syncRoutes } from './routes/sync.js';
import { SessionStore, type SessionBackend } from './sessions.js';
import { localInputs, type PresenceInputs } from './inputs.js';
import type { DistributedPart } from './distributed-part.js';
import { logAccess } from './ops/access-log.js';
import { healthOf, sendHealth, watchEngineStop } from './ops/health.js';
import { probesOf } from './ops/probes.js';
import { timeFederationSends } from './ops/timed-transport.js';
import { createDashboard, type Dashboard } from './dashboard/handler.js';


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

/** One running service: HTTP server, engine, outbound federation transport and metrics. */
export class PresenceService {
  readonly engine: PresenceEngine;
  readonly settings: ServiceSettings;
  readonly transport: FederationTransport;
  private readonly link: FederationLink;
  readonly metrics: ServiceMetrics;
  readonly dashboard: Dashboard;
  readonly logger: Logger;
  readonly auth: Authenticator;
  private readonly journal: MembershipJournal;
  private readonly roomSync: RoomSync;
  private readonly server: Server;
  private readonly routes: readonly Route[];
  private readonly waiters = new Set<() => void>();
  private closing = false;
  private activeRequests = 0;
  private closed: Promise<void> | undefined;
  private address: AddressInfo | undefined;
  private readonly listenHost: string;
  private readonly listenPort: number;
  /** Presence delivery to `app_service_config_files` (docs/appservices.md). */
  appservices: ServiceAppservices | undefined;
  /** Distributed mode: this process's part of the deployment (docs/service.md, "Distributed mode"). */
  readonly distributed: DistributedPart | undefined;
  private readonly inputs: PresenceInputs;

  private constructor(engine: PresenceEngine, loaded: LoadedServiceConfig, options: PresenceServiceOptions, logger: Logger, sessions: SessionBackend, distributed: DistributedPart | undefined) {
    this.engine = engine;
    this.distributed = distributed;
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
    const sends = probesOf(engine).federationSend;
    const timed = timeFederationSends(this.transport, (s, result) => sends.observe({ result }, s));
    // Distributed: a transmission waits until what it carries is durable (RedisPresenceNode).
    this.link = (distributed ?? engine).attachFederationTransport(timed, this.settings.federationTransport);
    watchEngineStop(engine);
    this.metrics = createServiceMetrics(engine, http, { defaultMetrics: options.defaultMetrics ?? true, peers: [...this.settings.peers.keys()] });
    this.auth = new Authenticator(this.settings, sessions);
    // Subscribed before the configured rooms are joined, so those joins are its first changes.
    this.journal = new MembershipJournal(engine, undefined, distributed?.replicated$);
    this.inputs = distributed?.inputs ?? localInputs(engine, () => this.committed());
    this.roomSync = new RoomSync(engine, this.settings.serverName, this.journal.epoch, engine.clock.now());
    this.routes = this.buildRoutes();
    // Headers get `read_timeout_ms` (408 from answerClientError); bodies get as long again (readBody).
    const readTimeout = this.settings.readTimeoutMs;
    this.server = createServer(
      { requestTimeout: 0, headersTimeout: readTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(readTimeout / 4))) },
      (req, res) => {
        void this.handle(req, res);
      },
    );
    this.server.maxConnections = this.settings.maxConnections;
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      // Unparsable or late HTTP: answered in the Matrix error shape when the socket still allows it.
      answerClientError(error, socket);
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
    const { sessionsFile, maxSessionsPerUser } = loaded.settings;
    for (const account of loaded.settings.accounts.values()) {
      if (account.password.kind === 'plain') {
        logger.warn(`config: ${account.userId} has a plain-text password (service.users[].password); use password_hash (npm run hash-password) outside tests and demos`);
      }
    }
    let distributed: DistributedPart | undefined;
    const openRedis = async (config: PresenceConfig): Promise<PresenceEngine> => {
      const d = loaded.settings.distributed;
      if (d === undefined) throw new ConfigError('service.distributed', 'a redis log needs service.distributed (docs/service.md, "Distributed mode")');
      // Loaded only here: a single-process service never loads ioredis (an optional peer dependency).
      const { startDistributedHost } = await import('./distributed/host.js');
      const part = await startDistributedHost({ config, settings: loaded.settings, distributed: d, clock: options.clock, logger });
      distributed = part;
      return part.engine;
    };
    let engine: PresenceEngine;
    try {
      engine = await createServiceEngine({ raw: loaded.raw, baseDir, clock: options.clock, logger, openRedis, recordDeliveries: loaded.settings.recordDeliveries });
    } catch (error) {
      // A module that failed to load after the node started: stop the node too (leases released, timers cleared).
      await (distributed as DistributedPart | undefined)?.close().catch(() => {});
      throw error;
    }
    let sessions: SessionBackend;
    try {
      sessions = distributed?.sessions ?? (await SessionStore.open({ file: sessionsFile === undefined ? undefined : resolvePath(baseDir, sessionsFile), maxPerUser: maxSessionsPerUser, logger }));
    } catch (error) {
      await (distributed?.close() ?? engine.close());
      throw error;
    }
    // Attach federation first, so presence sent on the preloaded joins goes out.
    const service = new PresenceService(engine, loaded, options, logger, sessions, distributed);
    try {
      service.appservices = await ServiceAppservices.start(engine, loaded.settings.appservices, { baseDir, logger, registry: service.metrics.registry });
    } catch (error) {
      await service.close();
      throw error;
    }
    // Distributed: each member is joined by its owner, in the background (owners are still being settled).
    if (distributed !== undefined) {
      distributed.preload(loaded.settings.rooms);
      return service;
    }
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
    this.journal.close();
    await this.appservices?.close();
    if (this.distributed !== undefined) await this.distributed.close();
    else await this.engine.close();
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
      // Shared sessions (distributed mode) are read from Redis before the handlers look them up.
      await this.auth.prepare({ req, query });
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
      const finish = () => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        this.metrics.observeRequest(req.method ?? '?', routeName, res.statusCode, seconds);
        logAccess(this.logger, req, routeName, res.statusCode, seconds, (token) => this.auth.userOf(token));
      };
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
    const host: RouteHost = {
      engine: this.engine,
      settings: this.settings,
      metrics: this.metrics,
      logger: this.logger,
      auth: this.auth,
      journal: this.journal,
      roomSync: this.roomSync,
      isClosing: () => this.closing,
      waitForWake: (ms, register) => this.waitForWake(ms, register),
      committed: () => this.committed(),
      inputs: this.inputs,
      processScopedTokens: this.distributed !== undefined,
    };
    const health: Route = {
      name: 'presence_health',
      pattern: /^\/_presence\/health$/,
      methods: { GET: async (c) => sendHealth(c.res, healthOf(this.engine, { closing: this.closing, listening: this.server.listening })) },
    };
    const dashboard: Route = {
      name: 'dashboard',
      pattern: /^\/_presence\/dashboard(\/.*)?$/,
      methods: { GET: (c) => this.dashboard.handle(c.req, c.res, c.params[0] ?? '', c.query) },
    };
    return [health, dashboard, ...accountRoutes(host), ...clientConfigRoutes(host), ...presenceRoutes(host), ...presencePolicyRoutes(host), ...syncRoutes(host), ...federationRoutes(host), ...adminRoutes(host), ...opsRoutes(host), ...(this.distributed?.routes ?? [])];
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
}

/** Create and start a service (`listen`), logging where it listens. */
export async function startPresenceService(options: PresenceServiceOptions): Promise<PresenceService> {
  const service = await PresenceService.create(options);
  await service.listen();
  service.logger.info(`presence service for ${service.settings.serverName} listening on ${service.url}`);
  return service;
}
