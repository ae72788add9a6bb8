/**
 * Outbound federation per destination: the engine's queue length
 * (`federationPending`) and, from the HTTP transport's counters, whether a
 * send is in flight and how the last ones ended. The engine keeps each
 * destination's back-off phase private (only a count is public), so a
 * destination whose last send failed and that has nothing in flight is shown
 * as backing off: the engine sends nothing to it until its retry is due.
 */
import type { PresenceEngine, ServerName } from '../../src/index.js';
import type { HttpFederationTransport } from '../http-transport.js';
import type { DestinationPhase, DestinationRow } from './frame.js';

interface Seen {
  sent: number;
  failed: number;
  lastFailed: boolean;
  consecutive: number;
  failingSince: number | null;
}

export class FederationView {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly engine: PresenceEngine,
    private readonly peers: readonly ServerName[],
    private readonly transport: HttpFederationTransport | undefined,
  ) {}

  rows(now: number): DestinationRow[] {
    const stats = this.transport?.stats();
    const names = new Set<string>(this.peers);
    if (stats !== undefined) for (const d of stats.keys()) names.add(d);
    const rows: DestinationRow[] = [];
    for (const d of names) {
      const s = stats?.get(d);
      const sent = s?.sent ?? 0;
      const failed = s?.failed ?? 0;
      let seen = this.seen.get(d);
      if (seen === undefined) this.seen.set(d, (seen = { sent: 0, failed: 0, lastFailed: false, consecutive: 0, failingSince: null }));
      const newFailures = failed - seen.failed;
      const newSends = sent - seen.sent;
      if (newFailures > 0 && newSends === 0) {
        seen.consecutive += newFailures;
        seen.failingSince ??= now;
        seen.lastFailed = true;
      } else if (newSends > 0 && newFailures === 0) {
        seen.consecutive = 0;
        seen.failingSince = null;
        seen.lastFailed = false;
      } else if (newSends > 0 && newFailures > 0) {
        // both within one second: a retry that succeeded, or a success then a failure
        seen.consecutive = 0;
        seen.failingSince = null;
        seen.lastFailed = false;
      }
      seen.sent = sent;
      seen.failed = failed;
      const pending = this.engine.federationPending(d);
      let phase: DestinationPhase = 'idle';
      if (s !== undefined && s.droppedEdus > 0 && !this.peers.includes(d as ServerName)) phase = 'no_peer';
      else if ((s?.inFlight ?? 0) > 0) phase = 'sending';
      else if (seen.lastFailed) phase = 'backoff';
      rows.push({ destination: d, pending, phase, sent, failed, consecutiveFailures: seen.consecutive, failingSince: seen.failingSince });
    }
    rows.sort((a, b) => b.pending - a.pending || a.destination.localeCompare(b.destination));
    return rows;
  }
}
