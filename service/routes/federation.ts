/**
 * Inbound federation: `PUT /_matrix/federation/v1/send/{txnId}` from configured
 * peers. Authentication (before the body is read), limits and the bounded
 * handling of a transaction's items live in federation-endpoint.ts.
 */
import { FederationEndpoint } from '../federation-endpoint.js';
import type { RequestContext, Route, RouteHost } from './route.js';

export function federationRoutes(host: RouteHost): Route[] {
  const endpoint = new FederationEndpoint({ engine: host.engine, settings: host.settings, metrics: host.metrics, logger: host.logger, committed: () => host.committed() });
  const federationSend = (c: RequestContext): Promise<void> => endpoint.handle(c.req, c.res, c.params[0] ?? '');
  return [{ name: 'federation_send', pattern: /^\/_matrix\/federation\/v1\/send\/([^/]+)$/, methods: { PUT: federationSend } }];
}
