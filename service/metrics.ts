/**
 * `/metrics` in the Prometheus text format, with prom-client. Each service has
 * its own registry (so several services can live in one process, as in tests).
 * Engine and router counters are read from `engine.stats` / `engine.router.stats`
 * (per module) at scrape time; HTTP metrics are recorded per request.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PresenceEngine } from '../src/index.js';
import type { HttpFederationTransport } from './http-transport.js';
import { registerEngineObservers } from './ops/engine-metrics.js';
import { probesOf } from './ops/probes.js';

/** The inbound federation limits counted by `presence_federation_inbound_limited_total`. */
const INBOUND_LIMITS = ['in_flight', 'body_bytes', 'items', 'remote_users_per_server', 'remote_users_total'] as const;
export type InboundLimitName = (typeof INBOUND_LIMITS)[number];

export interface ServiceMetrics {
  readonly registry: Registry;
  /** Record one finished HTTP request. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** Count inbound federation items the service dropped before they reached the engine (e.g. non-object EDUs). */
  droppedInbound(count: number, reason: string): void;
  inboundTransaction(origin: string, result: 'accepted' | 'duplicate' | 'rejected'): void;
  /** Count a federation limit hit (`limit`: which one; `count`: requests, items or users refused). */
  inboundLimited(origin: string, limit: InboundLimitName, count: number): void;
  longPollsOpen: Gauge;
  /** Refresh the scrape-time counters and render the text exposition. */
  render(): Promise<string>;
}

/** A counter that mirrors a monotonically growing number read at scrape time. */
function mirrorCounter(registry: Registry, name: string, help: string, read: () => number): void {
  let last = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      if (v > last) this.inc(v - last);
      last = Math.max(last, v);
    },
  });
}

export function createServiceMetrics(
  engine: PresenceEngine,
  transport: HttpFederationTransport | undefined,
  options: { defaultMetrics?: boolean; peers?: readonly string[] } = {},
): ServiceMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  for (const metric of probesOf(engine).all()) registry.registerMetric(metric);
  registerEngineObservers(engine, registry);

  mirrorCounter(registry, 'presence_updates_total', 'Notified presence changes (each got a stream id).', () => engine.stats.updates);
  mirrorCounter(registry, 'presence_deliveries_total', '(recipient, changed user) pairs emitted on sync streams.', () => engine.stats.deliveries);
  mirrorCounter(registry, 'presence_rejected_inputs_total', 'Engine inputs rejected with a typed error.', () => engine.stats.rejectedInputs);

  const dropped = new Counter({
    name: 'presence_inbound_dropped_items_total',
    help: 'Inbound federation presence items dropped by validation (reason="engine": invalid m.presence items; others: dropped by the service).',
    labelNames: ['reason'],
    registers: [registry],
  });
  let lastEngineDropped = 0;
  dropped.inc({ reason: 'engine' }, 0);
  const collectEngineDropped = (): void => {
    const v = engine.stats.droppedInboundItems;
    if (v > lastEngineDropped) dropped.inc({ reason: 'engine' }, v - lastEngineDropped);
    lastEngineDropped = Math.max(lastEngineDropped, v);
  };

  new Gauge({
    name: 'presence_notifier_streams_open',
    help: 'Users with at least one open sync stream (notifier).',
    registers: [registry],
    collect() {
      this.set(engine.stats.openSyncStreams);
    },
  });
  new Gauge({
    name: 'presence_live_actors',
    help: 'Live per-user presence actors.',
    registers: [registry],
    collect() {
      this.set(engine.stats.liveActors);
    },
  });
  new Gauge({
    name: 'presence_dormant_records',
    help: 'Dormant users kept as compact records.',
    registers: [registry],
    collect() {
      this.set(engine.stats.dormantRecords);
    },
  });

  const routerCalls = new Counter({
    name: 'presence_router_calls_total',
    help: 'Presence router callback calls, by module.',
    labelNames: ['module'],
    registers: [registry],
  });
  const routerFailures = new Counter({
    name: 'presence_router_call_failures_total',
    help: 'Presence router callback calls that failed, by module and kind (exception, timeout, invalid_result).',
    labelNames: ['module', 'kind'],
    registers: [registry],
  });
  const lastRouter = new Map<string, { calls: number; exception: number; timeout: number; invalid_result: number }>();
  const collectRouter = (): void => {
    for (const [module, s] of engine.router.stats.modules) {
      let last = lastRouter.get(module);
      if (last === undefined) {
        lastRouter.set(module, (last = { calls: 0, exception: 0, timeout: 0, invalid_result: 0 }));
        routerCalls.inc({ module }, 0);
        for (const kind of ['exception', 'timeout', 'invalid_result'] as const) routerFailures.inc({ module, kind }, 0);
      }
      if (s.calls > last.calls) routerCalls.inc({ module }, s.calls - last.calls);
      last.calls = Math.max(last.calls, s.calls);
      const now = { exception: s.failures, timeout: s.timeouts, invalid_result: s.invalidResults };
      for (const kind of ['exception', 'timeout', 'invalid_result'] as const) {
        if (now[kind] > last[kind]) routerFailures.inc({ module, kind }, now[kind] - last[kind]);
        last[kind] = Math.max(last[kind], now[kind]);
      }
    }
  };

  const fed = () => engine.federationStats;
  const peers = options.peers ?? [];
  new Gauge({
    name: 'presence_federation_queue_size',
    help: 'Presence states waiting in the outbound federation queue, per configured peer.',
    labelNames: ['destination'],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of peers) this.set({ destination: d }, engine.federationPending(d));
    },
  });
  new Gauge({
    name: 'presence_federation_queue_states',
    help: 'Presence states waiting in the outbound federation queue for all destinations (configured peers or not).',
    registers: [registry],
    collect() {
      this.set(fed().pendingStates);
    },
  });
  new Gauge({
    name: 'presence_federation_destinations',
    help: 'Outbound federation destinations by phase (sending: a transaction in flight; backoff: waiting to retry).',
    labelNames: ['phase'],
    registers: [registry],
    collect() {
      const s = fed();
      this.set({ phase: 'sending' }, s.destinationsInFlight);
      this.set({ phase: 'backoff' }, s.destinationsBackingOff);
    },
  });
  mirrorCounter(registry, 'presence_federation_transmissions_total', 'Outbound federation transmissions (one transaction each).', () => fed().transmissions);
  mirrorCounter(registry, 'presence_federation_states_sent_total', 'Presence states carried by outbound transmissions (re-sends included).', () => fed().statesSent);
  mirrorCounter(registry, 'presence_federation_send_failures_total', 'Outbound transactions that failed or timed out (retried with back-off).', () => fed().sendFailures);
  mirrorCounter(registry, 'presence_federation_dropped_states_total', 'Outbound presence states dropped after a peer kept failing for drop_after_ms.', () => fed().droppedStates);

  const lastSender = new Map<string, { sent: number; failed: number; dropped: number }>();
  const txns = new Counter({
    name: 'presence_federation_transactions_total',
    help: 'Outbound HTTP federation transactions by destination and result (sent, failed).',
    labelNames: ['destination', 'result'],
    registers: [registry],
  });
  const droppedOut = new Counter({
    name: 'presence_federation_unroutable_edus_total',
    help: 'Outbound EDUs dropped because no peer is configured for their destination.',
    labelNames: ['destination'],
    registers: [registry],
  });
  const collectSender = (): void => {
    if (transport === undefined) return;
    for (const [d, s] of transport.stats()) {
      const last = lastSender.get(d) ?? { sent: 0, failed: 0, dropped: 0 };
      if (s.sent > last.sent) txns.inc({ destination: d, result: 'sent' }, s.sent - last.sent);
      if (s.failed > last.failed) txns.inc({ destination: d, result: 'failed' }, s.failed - last.failed);
      if (s.droppedEdus > last.dropped) droppedOut.inc({ destination: d }, s.droppedEdus - last.dropped);
      lastSender.set(d, { sent: s.sent, failed: s.failed, dropped: s.droppedEdus });
    }
  };

  const inbound = new Counter({
    name: 'presence_federation_inbound_transactions_total',
    help: 'Inbound federation transactions by origin and result (accepted, duplicate, rejected).',
    labelNames: ['origin', 'result'],
    registers: [registry],
  });

  const limited = new Counter({
    name: 'presence_federation_inbound_limited_total',
    help: 'Inbound federation limits hit, by origin and limit: in_flight and body_bytes count refused requests, items the presence items dropped past max_items_per_transaction, remote_users_* the items of new remote users refused by a cap.',
    labelNames: ['origin', 'limit'],
    registers: [registry],
  });
  // Every configured peer's series exists from the start (0), so a rate() over it never starts from nothing.
  for (const origin of options.peers ?? []) for (const limit of INBOUND_LIMITS) limited.inc({ origin, limit }, 0);

  const requests = new Counter({
    name: 'presence_http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'presence_http_request_duration_seconds',
    help: 'HTTP request durations (long-polling /sync included) by route.',
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'presence_rate_limited_requests_total',
    help: 'Requests refused with 429 M_LIMIT_EXCEEDED (rc_presence), by route.',
    labelNames: ['route'],
    registers: [registry],
  });
  const longPollsOpen = new Gauge({ name: 'presence_sync_long_polls_open', help: 'Open /sync requests waiting for presence.', registers: [registry] });

  return {
    registry,
    longPollsOpen,
    async render() {
      collectEngineDropped();
      collectRouter();
      collectSender();
      return registry.metrics();
    },
    observeRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      durations.observe({ route }, seconds);
      if (status === 429) rateLimited.inc({ route });
    },
    droppedInbound(count, reason) {
      dropped.inc({ reason }, count);
    },
    inboundLimited(origin, limit, count) {
      limited.inc({ origin, limit }, count);
    },
    inboundTransaction(origin, result) {
      inbound.inc({ origin, result });
    },
  };
}
