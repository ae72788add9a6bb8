/**
 * Presence for the application services of `app_service_config_files`
 * (docs/appservices.md): one `AppserviceDelivery` per registration, its
 * delivered position kept in `<log.path>/appservices/<id>.json` with a file
 * log (a memory log starts empty on every run, so positions live in memory),
 * and per-appservice metrics on the service's registry.
 */
import { join, resolve as resolvePath } from 'node:path';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  AppserviceDelivery,
  FilePositionStore,
  MemoryPositionStore,
  loadAppserviceRegistrations,
  type AppservicePositionStore,
  type Logger,
  type PresenceEngine,
} from '../src/index.js';
import type { AppserviceSettings } from './config.js';

export class ServiceAppservices {
  private constructor(readonly deliveries: readonly AppserviceDelivery[]) {}

  /** Load the registrations, start each delivery from its saved position, and register the metrics. @throws ConfigError */
  static async start(engine: PresenceEngine, settings: AppserviceSettings, options: { baseDir: string; logger: Logger; registry: Registry }): Promise<ServiceAppservices> {
    const registrations = await loadAppserviceRegistrations(settings.configFiles, engine.config.serverName, options.baseDir);
    if (registrations.length === 0) return new ServiceAppservices([]);
    const log = engine.config.log;
    const stateDir = log.kind === 'file' ? join(resolvePath(options.baseDir, log.path), 'appservices') : undefined;
    const latency = new Histogram({
      name: 'presence_appservice_transaction_seconds',
      help: 'Time of appservice transaction attempts, by appservice and result.',
      labelNames: ['appservice', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [options.registry],
    });
    const deliveries = registrations.map((registration) => {
      const store: AppservicePositionStore = stateDir === undefined ? new MemoryPositionStore() : FilePositionStore.inDirectory(stateDir, registration.id);
      return new AppserviceDelivery({
        engine,
        registration,
        store,
        logger: options.logger,
        maxEventsPerTransaction: settings.maxEventsPerTransaction,
        initialBackoffMs: settings.initialBackoffMs,
        maxBackoffMs: settings.maxBackoffMs,
        requestTimeoutMs: settings.requestTimeoutMs,
        onAttempt: ({ ok, ms }) => latency.observe({ appservice: registration.id, result: ok ? 'ok' : 'failed' }, ms / 1000),
      });
    });
    registerMetrics(deliveries, options.registry);
    for (const d of deliveries) await d.start();
    options.logger.info(`appservices: delivering presence to ${deliveries.map((d) => d.id).join(', ')}`);
    return new ServiceAppservices(deliveries);
  }

  async close(): Promise<void> {
    await Promise.all(this.deliveries.map((d) => d.stop()));
  }
}

function registerMetrics(deliveries: readonly AppserviceDelivery[], registry: Registry): void {
  const gauge = (name: string, help: string, read: (d: AppserviceDelivery) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['appservice'],
      registers: [registry],
      collect() {
        for (const d of deliveries) this.set({ appservice: d.id }, read(d));
      },
    });
  };
  const counter = (name: string, help: string, read: (d: AppserviceDelivery) => number): void => {
    const last = new Map<string, number>();
    new Counter({
      name,
      help,
      labelNames: ['appservice'],
      registers: [registry],
      collect() {
        for (const d of deliveries) {
          const v = read(d);
          const before = last.get(d.id) ?? 0;
          this.inc({ appservice: d.id }, Math.max(0, v - before));
          last.set(d.id, Math.max(before, v));
        }
      },
    });
  };
  gauge('presence_appservice_queue_users', 'Users waiting for the next transaction to an appservice.', (d) => d.queued);
  gauge('presence_appservice_in_flight', '1 while a transaction to the appservice is in flight or waiting for its retry.', (d) => (d.busy ? 1 : 0));
  gauge('presence_appservice_consecutive_failures', 'Failed attempts since the last acknowledged transaction.', (d) => d.stats.consecutiveFailures);
  gauge('presence_appservice_position', 'Log position up to which presence was delivered to the appservice.', (d) => d.stats.position);
  counter('presence_appservice_transactions_total', 'Transactions the appservice acknowledged.', (d) => d.stats.transactions);
  counter('presence_appservice_events_total', 'm.presence events in acknowledged transactions.', (d) => d.stats.events);
  counter('presence_appservice_failures_total', 'Failed transaction attempts (each is retried).', (d) => d.stats.failures);
}
