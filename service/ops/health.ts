/**
 * `GET /_presence/health`: whether the service can take presence now (200
 * `ready`, or 503 with the reasons) and how far the log's durable position
 * trails its end. For load balancers and systemd watchdogs alike.
 */
import type { ServerResponse } from 'node:http';
import type { PresenceEngine } from '../../src/index.js';
import { sendJson } from '../http.js';
import { probesOf } from './probes.js';

export interface HealthReport {
  readonly status: 'ready' | 'not_ready';
  readonly reasons: readonly string[];
  readonly log: {
    readonly kind: 'memory' | 'file';
    readonly position: number;
    /** Entries appended but not yet fsynced (0 for a memory log, which is never durable). */
    readonly lag_entries: number;
    /** Position up to which the file log is fsynced. */
    readonly synced_position?: number;
  };
}

const stoppedEngines = new WeakSet<PresenceEngine>();

/** Remember when an engine stops (its committed$ completes then); call once per engine. */
export function watchEngineStop(engine: PresenceEngine): void {
  engine.committed$.subscribe({ complete: () => stoppedEngines.add(engine) });
}

export function healthOf(engine: PresenceEngine, state: { readonly closing: boolean; readonly listening: boolean }): HealthReport {
  const reasons: string[] = [];
  if (state.closing) reasons.push('the service is shutting down');
  if (!state.listening) reasons.push('the service is not listening');
  if (stoppedEngines.has(engine)) reasons.push('the engine is stopped');
  const file = probesOf(engine).fileLog;
  const position = engine.log.position;
  let log: HealthReport['log'];
  if (file !== undefined) {
    const failed = file.failed;
    if (failed !== undefined) reasons.push(`the log refuses appends: ${failed.message}`);
    log = { kind: 'file', position, synced_position: file.syncedPosition, lag_entries: position - file.syncedPosition };
  } else {
    log = { kind: 'memory', position, lag_entries: 0 };
  }
  return { status: reasons.length === 0 ? 'ready' : 'not_ready', reasons, log };
}

export function sendHealth(res: ServerResponse, report: HealthReport): void {
  sendJson(res, report.status === 'ready' ? 200 : 503, report);
}
