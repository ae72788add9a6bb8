/** Operator routes: `/metrics` (Prometheus text format) and `/health`. */
import { MatrixHttpError, sendJson } from '../http.js';
import type { RequestContext, Route, RouteHost } from './route.js';

export function opsRoutes(host: RouteHost): Route[] {
  const { settings, metrics } = host;

  const metricsEndpoint = async (c: RequestContext): Promise<void> => {
    if (!settings.metrics) throw new MatrixHttpError(404, 'M_UNRECOGNIZED', 'metrics are disabled (service.metrics: false)');
    const text = await metrics.render();
    c.res.writeHead(200, { 'content-type': metrics.registry.contentType, 'content-length': String(Buffer.byteLength(text)) });
    c.res.end(text);
  };

  return [
    { name: 'metrics', pattern: /^\/metrics$/, methods: { GET: metricsEndpoint } },
    { name: 'health', pattern: /^\/health$/, methods: { GET: async (c) => sendJson(c.res, 200, { status: 'ok' }) } },
  ];
}
