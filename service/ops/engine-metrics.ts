/**
 * Metrics read from the engine's public observables: each committed turn's
 * log entries give state transitions and the delay from an input (or the
 * timer tick that changed a user) to its commit, after which the engine emits on the sync
 * streams in the same synchronous call.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { LogEntry, PresenceEngine } from '../../src/index.js';

export function registerEngineObservers(engine: PresenceEngine, registry: Registry): void {
  const latency = new Histogram({
    name: 'presence_input_to_emission_seconds',
    help: 'Delay from a notified presence change being applied (its input, or the timer tick) to its commit and emission on sync streams; engine clock, millisecond resolution.',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'presence_state_transitions_total',
    help: 'Presence state changes of users (local and remote) by previous and new state.',
    labelNames: ['from', 'to'],
    registers: [registry],
  });
  // Current state of every user who is not offline (the engine holds an actor for each of them
  // anyway); a restarted engine's restored states are read once, from a snapshot of its state.
  const notOffline = new Map<string, string>();
  if (engine.log.position > 0) {
    for (const [userId, record] of engine.snapshot().users) if (record.presence.state !== 'offline') notOffline.set(userId, record.presence.state);
  }
  engine.committed$.subscribe((entries: readonly LogEntry[]) => {
    const now = engine.clock.now();
    for (const { event } of entries) {
      if (event.type !== 'user.step') continue;
      if (event.streamId !== undefined) latency.observe(Math.max(0, now - event.at) / 1000);
      const to = event.presence?.state;
      if (to === undefined) continue;
      const from = notOffline.get(event.userId) ?? 'offline';
      if (to === 'offline') notOffline.delete(event.userId);
      else notOffline.set(event.userId, to);
      if (from !== to) transitions.inc({ from, to });
    }
  });
}
