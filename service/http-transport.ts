/**
 * Outbound federation over HTTP, and the shared-secret request authentication
 * both directions use.
 *
 * Real Matrix federation signs requests with the origin server's ed25519 key
 * (`Authorization: X-Matrix …`). That is out of scope here: each pair of peers
 * shares a secret from the config and every transaction carries
 * `Authorization: X-Presence-HMAC origin="…",destination="…",sig="…"`, an
 * HMAC-SHA256 over the method, path, origin, destination and body.
 *
 * `HttpFederationTransport` implements the engine's `FederationTransport`: each
 * `send` is one `PUT /_matrix/federation/v1/send/{txnId}` to the peer's
 * configured URL. Queueing, coalescing, one send in flight per destination and
 * retries with back-off are the engine's (`engine.attachFederationTransport`).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FederationError, type FederationTransport, type Logger, type PresenceEdu, type ServerName } from '../src/index.js';
import type { ServicePeer } from './config.js';

export const AUTH_SCHEME = 'X-Presence-HMAC';

export function signRequest(secret: string, method: string, path: string, origin: string, destination: string, body: string): string {
  return createHmac('sha256', secret).update(`${method.toUpperCase()}\n${path}\n${origin}\n${destination}\n${body}`).digest('base64url');
}

/**
 * The signature over the request line and headers alone (`hsig`): it lets the
 * receiver authenticate the peer before reading the body. It covers the
 * announced body length, so a body of another size is refused unread.
 */
export function signHeaders(secret: string, method: string, path: string, origin: string, destination: string, contentLength: number): string {
  return createHmac('sha256', secret).update(`headers\n${method.toUpperCase()}\n${path}\n${origin}\n${destination}\n${contentLength}`).digest('base64url');
}

/** The whole `Authorization` header value of a transaction: origin, destination, header signature and body signature. */
export function authorizationHeader(secret: string, method: string, path: string, origin: string, destination: string, body: string): string {
  const hsig = signHeaders(secret, method, path, origin, destination, Buffer.byteLength(body));
  const sig = signRequest(secret, method, path, origin, destination, body);
  return `${AUTH_SCHEME} origin="${origin}",destination="${destination}",hsig="${hsig}",sig="${sig}"`;
}

export interface ParsedAuth {
  readonly origin: string;
  readonly destination: string;
  /** Header signature; absent from peers of earlier versions (refused). */
  readonly hsig: string | undefined;
  readonly sig: string;
}

/** Parse `X-Presence-HMAC origin="…",destination="…",sig="…"`; undefined when absent or malformed. */
export function parseAuthHeader(header: string | undefined): ParsedAuth | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space) !== AUTH_SCHEME) return undefined;
  const params = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const m = /^\s*([a-z]+)="([^"]*)"\s*$/.exec(part);
    if (m === null) return undefined;
    params.set(m[1] as string, m[2] as string);
  }
  const origin = params.get('origin');
  const destination = params.get('destination');
  const sig = params.get('sig');
  if (origin === undefined || destination === undefined || sig === undefined) return undefined;
  return { origin, destination, hsig: params.get('hsig'), sig };
}

export function verifySignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface HttpFederationTransportOptions {
  readonly serverName: string;
  readonly peers: ReadonlyMap<ServerName, ServicePeer>;
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
  /** Defaults to the global fetch. */
  readonly fetch?: typeof fetch | undefined;
  readonly now?: (() => number) | undefined;
}

/** Per-destination counters of the HTTP transport (for /metrics). */
export interface DestinationStats {
  /** Transactions answered 2xx. */
  sent: number;
  /** Transactions that failed (network error, timeout, non-2xx). */
  failed: number;
  /** EDUs dropped because no peer is configured for the destination. */
  droppedEdus: number;
  /** Requests in flight. */
  inFlight: number;
}

/**
 * One HTTP transaction per `send`. Destinations without a configured peer are
 * not retried (there is no server discovery): their EDUs are dropped, counted
 * and logged once per destination.
 */
export class HttpFederationTransport implements FederationTransport {
  private readonly urls = new Map<string, ServicePeer>();
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private txnCounter = 0;
  private readonly txnPrefix = randomBytes(6).toString('hex');
  private readonly counters = new Map<string, DestinationStats>();
  private readonly aborter = new AbortController();
  private readonly warnedUnknown = new Set<string>();

  constructor(private readonly options: HttpFederationTransportOptions) {
    for (const [name, peer] of options.peers) this.urls.set(name, peer);
    this.fetchFn = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
  }

  /** Per-destination counters. */
  stats(): ReadonlyMap<string, Readonly<DestinationStats>> {
    return this.counters;
  }

  /** Abort requests in flight (shutdown). */
  close(): void {
    this.aborter.abort(new Error('the service is shutting down'));
  }

  /** Known peer? */
  has(destination: string): boolean {
    return this.urls.has(destination);
  }

  /** Change a peer's URL at run time (e.g. when peers listen on ephemeral ports). */
  setPeerUrl(destination: string, url: string): void {
    const peer = this.urls.get(destination);
    if (peer === undefined) throw new Error(`${destination} is not a configured federation peer`);
    this.urls.set(destination, { ...peer, url: url.replace(/\/+$/, '') });
  }

  async send(destination: ServerName, edus: readonly PresenceEdu[]): Promise<void> {
    const stats = this.statsOf(destination);
    const peer = this.urls.get(destination);
    if (peer === undefined) {
      stats.droppedEdus += edus.length;
      if (!this.warnedUnknown.has(destination)) {
        this.warnedUnknown.add(destination);
        this.options.logger.warn(`federation: no peer configured for ${destination}; its presence EDUs are dropped (add it to service.federation.peers)`);
      }
      return;
    }
    stats.inFlight++;
    try {
      await this.put(destination, peer, edus);
      stats.sent++;
    } catch (error) {
      stats.failed++;
      throw error instanceof FederationError ? error : new FederationError(destination, error instanceof Error ? error.message : String(error), { cause: error });
    } finally {
      stats.inFlight--;
    }
  }

  private statsOf(destination: string): DestinationStats {
    let s = this.counters.get(destination);
    if (s === undefined) this.counters.set(destination, (s = { sent: 0, failed: 0, droppedEdus: 0, inFlight: 0 }));
    return s;
  }

  private async put(destination: ServerName, peer: ServicePeer, edus: readonly PresenceEdu[]): Promise<void> {
    const txnId = `${this.txnPrefix}-${++this.txnCounter}`;
    const path = `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`;
    const body = JSON.stringify({ origin: this.options.serverName, origin_server_ts: this.now(), pdus: [], edus });
    const res = await this.fetchFn(`${peer.url}${path}`, {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        authorization: authorizationHeader(peer.sharedSecret, 'PUT', path, this.options.serverName, destination, body),
      },
      body,
      signal: AbortSignal.any([AbortSignal.timeout(this.options.requestTimeoutMs), this.aborter.signal]),
    });
    const text = await res.text();
    if (!res.ok) throw new FederationError(destination, `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
}
