/**
 * The inbound federation endpoint, `PUT /_matrix/federation/v1/send/{txnId}`,
 * with the limits that keep a peer (or someone posing as one) from holding
 * memory or the event loop:
 *
 * 1. The peer is authenticated before the body is read: the Authorization
 *    header must name a configured peer, this server, and carry `hsig`, an
 *    HMAC over the request line and the announced body length. Anything else
 *    is refused with the connection closed, unread.
 * 2. Bodies are capped (`service.federation.max_body_bytes`, announced and
 *    actual) and must arrive within `service.read_timeout_ms` (408).
 * 3. Each peer has at most `max_in_flight_per_peer` transactions in flight
 *    (429 beyond, before the body is read).
 * 4. The body's own HMAC (`sig`) is then checked, and the EDUs go through
 *    `InboundFederation`: at most `max_items_per_transaction` items, validated
 *    in slices with a yield between slices, and caps on remote users per
 *    origin and in total (typed errors, logged and counted).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { InboundFederation, type Logger, type PresenceEngine } from '../src/index.js';
import type { ServiceSettings } from './config.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from './http.js';
import { parseAuthHeader, signHeaders, signRequest, verifySignature } from './http-transport.js';
import type { ServiceMetrics } from './metrics.js';

const TransactionSchema = z.object({
  origin: z.string({ error: 'origin must be a string' }),
  origin_server_ts: z.number({ error: 'origin_server_ts must be a number' }).optional(),
  pdus: z.array(z.unknown(), { error: 'pdus must be an array' }).max(50, 'at most 50 PDUs per transaction').optional(),
  edus: z.array(z.unknown(), { error: 'edus must be an array' }).max(100, 'at most 100 EDUs per transaction').optional(),
});

/** Transaction ids remembered per service for de-duplication. */
const TXN_MEMORY = 1_000;
/** Retry hint for a peer over its in-flight cap. */
const RETRY_AFTER_MS = 1_000;

export interface FederationEndpointDeps {
  readonly engine: PresenceEngine;
  readonly settings: ServiceSettings;
  readonly metrics: ServiceMetrics;
  readonly logger: Logger;
  /** Resolves once the engine has committed the inputs of this request (per-tick turns). */
  readonly committed: () => Promise<void>;
}

export class FederationEndpoint {
  readonly inbound: InboundFederation;
  private readonly seenTxns = new Map<string, true>();
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly deps: FederationEndpointDeps) {
    const { engine } = deps;
    const known: string[] = [];
    for (const p of engine.knownUsers()) if (!engine.isMine(p.userId)) known.push(p.userId);
    this.inbound = new InboundFederation(engine, deps.settings.federationInbound.limits, { knownRemoteUsers: known });
  }

  async handle(req: IncomingMessage, res: ServerResponse, txnId: string): Promise<void> {
    const { settings, metrics } = this.deps;
    const limits = settings.federationInbound;
    // Until the body is read, every refusal closes the connection: the body is never read.
    const refuse = (error: MatrixHttpError): never => {
      res.setHeader('connection', 'close');
      throw error;
    };
    const header = req.headers.authorization;
    const auth = parseAuthHeader(typeof header === 'string' ? header : undefined);
    if (auth === undefined) refuse(new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Missing or malformed X-Presence-HMAC Authorization header'));
    const { origin } = auth as NonNullable<typeof auth>;
    const peer = settings.peers.get(origin as never);
    if (peer === undefined) refuse(new MatrixHttpError(401, 'M_UNAUTHORIZED', `${origin} is not a configured federation peer`));
    const { sharedSecret } = peer as NonNullable<typeof peer>;
    const { destination, hsig, sig } = auth as NonNullable<typeof auth>;
    if (destination !== settings.serverName) refuse(new MatrixHttpError(401, 'M_UNAUTHORIZED', `this server is ${settings.serverName}, not ${destination}`));
    const rawPath = (req.url ?? '').split('?')[0] ?? '';
    const announced = req.headers['content-length'];
    const length = announced === undefined ? NaN : Number(announced);
    if (!Number.isSafeInteger(length) || length < 0) {
      refuse(new MatrixHttpError(411, 'M_UNKNOWN', 'a federation transaction needs a Content-Length header (chunked bodies are refused)'));
    }
    if (hsig === undefined || !verifySignature(signHeaders(sharedSecret, 'PUT', rawPath, origin, destination, length), hsig)) {
      metrics.inboundTransaction(origin, 'rejected');
      refuse(new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Invalid or missing header signature (hsig): the peer must sign the request line and Content-Length'));
    }
    if (length > limits.maxBodyBytes) {
      metrics.inboundLimited(origin, 'body_bytes', 1);
      refuse(new MatrixHttpError(413, 'M_TOO_LARGE', `transaction too large: the limit is ${limits.maxBodyBytes} bytes`));
    }
    const open = this.inFlight.get(origin) ?? 0;
    if (open >= limits.maxInFlightPerPeer) {
      metrics.inboundLimited(origin, 'in_flight', 1);
      refuse(new MatrixHttpError(429, 'M_LIMIT_EXCEEDED', `${origin} already has ${open} transactions in flight (the limit)`, { retry_after_ms: RETRY_AFTER_MS }));
    }
    this.inFlight.set(origin, open + 1);
    try {
      await this.receive(req, res, { origin, destination, sig, sharedSecret, rawPath, txnId });
    } finally {
      const n = (this.inFlight.get(origin) ?? 1) - 1;
      if (n > 0) this.inFlight.set(origin, n);
      else this.inFlight.delete(origin);
    }
  }

  private async receive(
    req: IncomingMessage,
    res: ServerResponse,
    t: { origin: string; destination: string; sig: string; sharedSecret: string; rawPath: string; txnId: string },
  ): Promise<void> {
    const { settings, metrics, logger } = this.deps;
    const bodyBytes = await readBody(req, settings.federationInbound.maxBodyBytes, settings.readTimeoutMs);
    const expected = signRequest(t.sharedSecret, 'PUT', t.rawPath, t.origin, t.destination, bodyBytes.toString('utf8'));
    if (!verifySignature(expected, t.sig)) {
      metrics.inboundTransaction(t.origin, 'rejected');
      throw new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Invalid signature');
    }
    const body = parseJsonBody(bodyBytes);
    const txn = TransactionSchema.safeParse(body);
    if (!txn.success) {
      metrics.inboundTransaction(t.origin, 'rejected');
      throw new MatrixHttpError(400, 'M_BAD_JSON', txn.error.issues[0]?.message ?? 'invalid transaction');
    }
    if (txn.data.origin !== t.origin) {
      metrics.inboundTransaction(t.origin, 'rejected');
      throw new MatrixHttpError(403, 'M_FORBIDDEN', 'the transaction origin does not match the authenticated origin');
    }
    const key = `${t.origin}\u0000${t.txnId}`;
    if (this.seenTxns.has(key)) {
      metrics.inboundTransaction(t.origin, 'duplicate');
      sendJson(res, 200, { pdus: {} });
      return;
    }
    this.seenTxns.set(key, true);
    if (this.seenTxns.size > TXN_MEMORY) {
      const oldest = this.seenTxns.keys().next();
      if (oldest.done !== true) this.seenTxns.delete(oldest.value);
    }
    const r = await this.inbound.receive(t.origin, txn.data.edus ?? []);
    if (r.malformedEdus > 0) metrics.droppedInbound(r.malformedEdus, 'malformed_edu');
    if (r.overLimitItems > 0) {
      metrics.inboundLimited(t.origin, 'items', r.overLimitItems);
      logger.warn(`federation: ${t.origin} sent more than ${settings.federationInbound.limits.maxItemsPerTransaction} presence items in one transaction; ${r.overLimitItems} dropped`);
    }
    for (const e of r.limitErrors) {
      metrics.inboundLimited(t.origin, e.scope === 'server' ? 'remote_users_per_server' : 'remote_users_total', e.refused);
      logger.warn(`federation: ${e.message}`, { code: e.code, origin: e.origin, scope: e.scope, limit: e.limit });
    }
    metrics.inboundTransaction(t.origin, 'accepted');
    await this.deps.committed();
    sendJson(res, 200, { pdus: {} });
  }
}
