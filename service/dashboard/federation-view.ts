/**
 * Outbound federation per destination: the engine's own view of each
 * destination (`engine.federationStats.destinations`: phase, queue, failures
 * in a row, failing since, next retry) and, from the service's HTTP transport,
 * how many transactions were sent and failed. Configured peers are listed even
 * while the engine tracks nothing for them; a destination the transport drops
 * EDUs for because no peer is configured shows as `no_peer`.
 */
import type { FederationDestinationState, PresenceEngine, ServerName } from '../../src/index.js';
import type { HttpFederationTransport } from '../http-transport.js';
import type { DestinationPhase, DestinationRow } from './frame.js';

export class FederationView {
  constructor(
    private readonly engine: PresenceEngine,
    private readonly peers: readonly ServerName[],
    private readonly transport: HttpFederationTransport | undefined,
  ) {}

  rows(destinations: readonly FederationDestinationState[]): DestinationRow[] {
    const now = this.engine.clock.now();
    const sender = this.transport?.stats();
    const engineView = new Map<string, FederationDestinationState>();
    for (const d of destinations) engineView.set(d.destination, d);
    const names = new Set<string>([...this.peers, ...engineView.keys()]);
    if (sender !== undefined) for (const d of sender.keys()) names.add(d);
    const rows: DestinationRow[] = [];
    for (const name of names) {
      const e = engineView.get(name);
      const s = sender?.get(name);
      let phase: DestinationPhase = e?.phase ?? 'idle';
      if (s !== undefined && s.droppedEdus > 0 && !this.peers.includes(name as ServerName)) phase = 'no_peer';
      rows.push({
        destination: name,
        pending: e?.pending ?? 0,
        inFlight: e?.inFlight ?? 0,
        phase,
        sent: s?.sent ?? 0,
        failed: s?.failed ?? 0,
        consecutiveFailures: e?.consecutiveFailures ?? 0,
        failingForMs: e === undefined || e.failingSince === null ? null : Math.max(0, now - e.failingSince),
        retryInMs: e === undefined || e.retryAt === null ? null : Math.max(0, e.retryAt - now),
      });
    }
    rows.sort((a, b) => b.pending - a.pending || a.destination.localeCompare(b.destination));
    return rows;
  }
}
