/**
 * `/_presence/dashboard`: the page, its assets, its event stream (SSE) and the
 * user search. Who may open it: requests carrying `service.admin_token`
 * (`Authorization: Bearer` or `?access_token=`), and, unless
 * `service.dashboard.allow_loopback` is false, requests from a loopback
 * address that were not forwarded by a proxy. The assets (code, no data) are
 * served to anyone.
 *
 * Mount: `createDashboard(...)` in the service's constructor, one route that
 * hands `/_presence/dashboard…` GETs to `handle`, and `close()` on shutdown.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { UserIdSchema, type PresenceEngine, type ServerName } from '../../src/index.js';
import type { ServiceSettings } from '../config.js';
import { MatrixHttpError, accessTokenOf } from '../http.js';
import { verifySignature, type HttpFederationTransport } from '../http-transport.js';
import { DashboardAssets, type Asset } from './assets.js';
import { DashboardCollector } from './collector.js';
import type { DashboardFrame } from './frame.js';

export const DASHBOARD_PATH = '/_presence/dashboard';

export interface DashboardOptions {
  readonly engine: PresenceEngine;
  readonly settings: ServiceSettings;
  /** The service's HTTP server: the dashboard counts its 429 answers. */
  readonly server: Server;
  /** The default HTTP federation transport (per-destination counters), if used. */
  readonly transport: HttpFederationTransport | undefined;
}

/** Larger than this in a page's send buffer and frames are skipped for it until it catches up. */
const SLOW_CLIENT_BYTES = 4 * 1024 * 1024;

const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // the admin token may be in the page's URL
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
};

export interface Dashboard {
  readonly collector: DashboardCollector | undefined;
  /** Serve `GET /_presence/dashboard{rest}`; `rest` is the decoded path after the prefix ('' or '/…'). */
  handle(req: IncomingMessage, res: ServerResponse, rest: string, query: URLSearchParams): Promise<void>;
  /** End every event stream and stop collecting. Idempotent. */
  close(): void;
}

export function createDashboard(options: DashboardOptions): Dashboard {
  const settings = options.settings.dashboard;
  if (!settings.enabled) {
    return {
      collector: undefined,
      handle: async () => {
        throw new MatrixHttpError(404, 'M_UNRECOGNIZED', 'the dashboard is disabled (service.dashboard.enabled: false)');
      },
      close: () => {},
    };
  }
  return new LiveDashboard(options);
}

class LiveDashboard implements Dashboard {
  readonly collector: DashboardCollector;
  private readonly settings: ServiceSettings;
  private files: DashboardAssets | undefined;
  private readonly streams = new Set<ServerResponse>();
  private readonly server: Server;
  private closed = false;

  constructor(options: DashboardOptions) {
    this.settings = options.settings;
    const cfg = options.engine.config;
    const modules = [...cfg.modules, ...(cfg.presenceRouter === undefined ? [] : [cfg.presenceRouter]), ...cfg.routingModules].map((m) => m.module);
    this.collector = new DashboardCollector({
      engine: options.engine,
      settings: options.settings.dashboard,
      peers: [...options.settings.peers.keys()] as ServerName[],
      transport: options.transport,
      modules,
    });
    this.collector.start();
    this.server = options.server;
    this.server.on('request', this.onRequest);
  }

  private readonly onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    res.once('finish', () => this.collector.countHttp(res.statusCode));
  };

  /** The page's files, found on first use: a package without them serves everything but the page. */
  private get assets(): DashboardAssets {
    try {
      this.files ??= new DashboardAssets();
      return this.files;
    } catch (error) {
      throw new MatrixHttpError(500, 'M_UNKNOWN', error instanceof Error ? error.message : String(error));
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse, rest: string, query: URLSearchParams): Promise<void> {
    if (rest.startsWith('/assets/')) return this.sendAsset(res, this.assets.get(rest.slice('/assets/'.length)));
    this.authorize(req, query);
    switch (rest) {
      case '':
      case '/':
        return this.sendAsset(res, this.assets.index(), PAGE_HEADERS);
      case '/events':
        return this.events(res);
      case '/api/user': {
        const parsed = UserIdSchema.safeParse(query.get('user_id') ?? '');
        if (!parsed.success) throw new MatrixHttpError(400, 'M_INVALID_PARAM', `user_id must be a user id like @alice:example.org: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
        sendDashboardJson(res, this.collector.lookup(parsed.data));
        return;
      }
      case '/api/frame':
        sendDashboardJson(res, { hello: this.collector.hello(), frame: this.collector.latestFrame ?? null });
        return;
      default:
        throw new MatrixHttpError(404, 'M_UNRECOGNIZED', `no dashboard resource at ${DASHBOARD_PATH}${rest}`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.off('request', this.onRequest);
    this.collector.stop();
    for (const res of [...this.streams]) res.end();
    this.streams.clear();
  }

  /** Admin token, or a direct loopback request when allowed. @throws MatrixHttpError 401/403 */
  private authorize(req: IncomingMessage, query: URLSearchParams): void {
    const token = accessTokenOf(req, query);
    const admin = this.settings.adminToken;
    if (token !== undefined) {
      if (admin !== undefined && verifySignature(admin, token)) return;
      if (this.settings.tokens.has(token)) throw new MatrixHttpError(403, 'M_FORBIDDEN', 'the dashboard needs the admin token (service.admin_token), not a user token');
      throw new MatrixHttpError(401, 'M_UNKNOWN_TOKEN', 'Invalid access token passed.', { soft_logout: false });
    }
    if (this.settings.dashboard.allow_loopback && isDirectLoopback(req)) return;
    const how =
      admin === undefined
        ? 'set service.admin_token and pass it as ?access_token=… or Authorization: Bearer'
        : 'pass service.admin_token as ?access_token=… or Authorization: Bearer';
    throw new MatrixHttpError(401, 'M_MISSING_TOKEN', `the dashboard is open without a token only to loopback clients; ${how}`);
  }

  private sendAsset(res: ServerResponse, asset: Asset | undefined, headers: Readonly<Record<string, string>> = { 'cache-control': 'no-cache' }): void {
    if (asset === undefined) throw new MatrixHttpError(404, 'M_NOT_FOUND', 'no such dashboard asset');
    res.writeHead(200, { 'content-type': asset.type, 'content-length': String(asset.body.length), 'x-content-type-options': 'nosniff', ...headers });
    res.end(asset.body);
  }

  private events(res: ServerResponse): Promise<void> {
    if (this.closed) throw new MatrixHttpError(503, 'M_UNKNOWN', 'The server is shutting down');
    if (this.streams.size >= this.settings.dashboard.max_clients) {
      throw new MatrixHttpError(503, 'M_LIMIT_EXCEEDED', `at most ${this.settings.dashboard.max_clients} dashboards may be open at once (service.dashboard.max_clients)`);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 3000\n\n');
    send('hello', this.collector.hello());
    send('history', this.collector.historySnapshot());
    const latest = this.collector.latestFrame;
    if (latest !== undefined) send('frame', latest);
    this.streams.add(res);
    const off = this.collector.onFrame((frame: DashboardFrame) => {
      if (res.writableLength > SLOW_CLIENT_BYTES) return; // a page that does not keep up misses frames
      send('frame', frame);
    });
    return new Promise((resolve) => {
      const done = () => {
        off();
        this.streams.delete(res);
        resolve();
      };
      res.once('close', done);
    });
  }
}

/**
 * From 127.0.0.0/8 or ::1, not relayed by a proxy on this host (which would
 * make every client look local), and addressed to a loopback host name: a
 * page from another site whose name was made to resolve to 127.0.0.1 (DNS
 * rebinding) sends its own name in `Host` and is refused.
 */
function isDirectLoopback(req: IncomingMessage): boolean {
  if (req.headers['x-forwarded-for'] !== undefined || req.headers.forwarded !== undefined || req.headers['x-real-ip'] !== undefined) return false;
  const a = req.socket.remoteAddress ?? '';
  if (!(a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.'))) return false;
  const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** JSON without the client API's `access-control-allow-origin: *`: other sites' pages must not read the dashboard's data. */
function sendDashboardJson(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}
