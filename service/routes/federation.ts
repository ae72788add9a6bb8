/**
 * Inbound federation: `PUT /_matrix/federation/v1/send/{txnId}` from configured
 * peers, authenticated with the shared-secret HMAC of http-transport.ts.
 * Transactions are deduplicated by (origin, txnId) over the last
 * `TXN_MEMORY` transactions; only `m.presence` EDUs are handled.
 */
import { z } from 'zod';
import { FederationEduSchema } from '../../src/index.js';
import { MatrixHttpError, parseJsonBody, readBody, sendJson } from '../http.js';
import { parseAuthHeader, signRequest, verifySignature } from '../http-transport.js';
import type { RequestContext, Route, RouteHost } from './route.js';

const TXN_MEMORY = 1_000;

const TransactionSchema = z.object({
  origin: z.string({ error: 'origin must be a string' }),
  origin_server_ts: z.number({ error: 'origin_server_ts must be a number' }).optional(),
  pdus: z.array(z.unknown(), { error: 'pdus must be an array' }).max(50, 'at most 50 PDUs per transaction').optional(),
  edus: z.array(z.unknown(), { error: 'edus must be an array' }).max(100, 'at most 100 EDUs per transaction').optional(),
});

export function federationRoutes(host: RouteHost): Route[] {
  const { engine, settings, metrics } = host;
  const seenTxns = new Map<string, true>();

  const federationSend = async (c: RequestContext): Promise<void> => {
    const txnId = c.params[0] ?? '';
    const header = c.req.headers.authorization;
    const auth = parseAuthHeader(typeof header === 'string' ? header : undefined);
    if (auth === undefined) throw new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Missing or malformed X-Presence-HMAC Authorization header');
    const peer = settings.peers.get(auth.origin as never);
    if (peer === undefined) throw new MatrixHttpError(401, 'M_UNAUTHORIZED', `${auth.origin} is not a configured federation peer`);
    if (auth.destination !== settings.serverName) throw new MatrixHttpError(401, 'M_UNAUTHORIZED', `this server is ${settings.serverName}, not ${auth.destination}`);
    const bodyBytes = await readBody(c.req, Math.max(settings.maxBodyBytes, 1024 * 1024));
    const rawPath = (c.req.url ?? '').split('?')[0] ?? '';
    const expected = signRequest(peer.sharedSecret, 'PUT', rawPath, auth.origin, auth.destination, bodyBytes.toString('utf8'));
    if (!verifySignature(expected, auth.sig)) {
      metrics.inboundTransaction(auth.origin, 'rejected');
      throw new MatrixHttpError(401, 'M_UNAUTHORIZED', 'Invalid signature');
    }
    const body = parseJsonBody(bodyBytes);
    const txn = TransactionSchema.safeParse(body);
    if (!txn.success) {
      metrics.inboundTransaction(auth.origin, 'rejected');
      throw new MatrixHttpError(400, 'M_BAD_JSON', txn.error.issues[0]?.message ?? 'invalid transaction');
    }
    if (txn.data.origin !== auth.origin) {
      metrics.inboundTransaction(auth.origin, 'rejected');
      throw new MatrixHttpError(403, 'M_FORBIDDEN', 'the transaction origin does not match the authenticated origin');
    }
    const key = `${auth.origin}\u0000${txnId}`;
    if (seenTxns.has(key)) {
      metrics.inboundTransaction(auth.origin, 'duplicate');
      sendJson(c.res, 200, { pdus: {} });
      return;
    }
    seenTxns.set(key, true);
    if (seenTxns.size > TXN_MEMORY) {
      const oldest = seenTxns.keys().next();
      if (oldest.done !== true) seenTxns.delete(oldest.value);
    }
    for (const raw of txn.data.edus ?? []) {
      const edu = FederationEduSchema.safeParse(raw);
      if (!edu.success) {
        metrics.droppedInbound(1, 'malformed_edu');
        continue;
      }
      if (edu.data.edu_type !== 'm.presence') continue; // other EDU types are not handled by this service
      engine.receiveFederationEdu(auth.origin, edu.data.content);
    }
    metrics.inboundTransaction(auth.origin, 'accepted');
    await host.committed();
    sendJson(c.res, 200, { pdus: {} });
  };

  return [{ name: 'federation_send', pattern: /^\/_matrix\/federation\/v1\/send\/([^/]+)$/, methods: { PUT: federationSend } }];
}
