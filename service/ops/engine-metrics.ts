/**
 * Metrics read from the engine's public observables: each committed turn's
 * log entries give state transitions and the delay from an input (or a
 * timer's due time) to its commit, after which the engine emits on the sync
 * streams in the same synchronous call.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { LogEntry, PresenceEngine } from '../../src/index.js';

export function registerEngineObservers(engine: PresenceEngine, registry: Registry): void {
  const latency = new Histogram({
    name: 'presence_input_to_emission_seconds',
    help: 'Delay from a notified presence change being applied (its input, or the timer due time) to its commit and emission on sync streams; engine clock, millisecond resolution.',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'presence_state_transitions_total',
    help: 'Presence state changes of users by from and to state (from="unknown": the first change this process saw of a user restored from a snapshot or log).',
    labelNames: ['from', 'to'],
    registers: [registry],
  });
  // A fresh engine starts every user offline; after a restart, earlier states are not known here.
  const freshStart = engine.log.position === 0;
  const last = new Map<string, string>();
  engine.committed$.subscribe((entries: readonly LogEntry[]) => {
    const now = engine.clock.now();
    for (const { event } of entries) {
      if (event.type !== 'user.step') continue;
      if (event.streamId !== undefined) latency.observe(Math.max(0, now - event.at) / 1000);
      const to = event.presence?.state;
      if (to === undefined) continue;
      const from = last.get(event.userId) ?? (freshStart ? 'offline' : 'unknown');
      last.set(event.userId, to);
      if (from !== to) transitions.inc({ from, to });
    }
  });
}
