/**
 * Outbound federation presence: per-destination pending maps that coalesce
 * (latest state per user) until the next transmission. The engine enqueues at
 * the end of each turn and calls `flush`; each ready destination gets one
 * transmission of EDUs holding at most 50 states each, oldest first.
 */
import { Subject } from 'rxjs';
import type { ServerName, UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { BusyWireValue } from '../domain/format.js';
import { buildPresenceEdus, type PresenceEdu } from './edu.js';

export interface FederationTransmission {
  readonly destination: ServerName;
  readonly edus: readonly PresenceEdu[];
}

export class FederationOutbound {
  readonly transmissions$ = new Subject<FederationTransmission>();
  private readonly pending = new Map<ServerName, Map<UserId, UserPresenceState>>();
  private readonly dirty = new Set<ServerName>();

  constructor(private readonly ownServer: ServerName, private readonly busy: BusyWireValue) {}

  /** Queue `states` (local users only) for each destination except ourselves. */
  enqueue(destinations: Iterable<ServerName>, states: readonly UserPresenceState[]): void {
    if (states.length === 0) return;
    for (const d of destinations) {
      if (d === this.ownServer) continue;
      let map = this.pending.get(d);
      if (map === undefined) {
        map = new Map();
        this.pending.set(d, map);
      }
      for (const s of states) {
        map.delete(s.userId); // keep insertion order = age of the latest state
        map.set(s.userId, s);
      }
      this.dirty.add(d);
    }
  }

  /** Pending states for a destination (for tests and metrics). */
  pendingFor(destination: ServerName): number {
    return this.pending.get(destination)?.size ?? 0;
  }

  /** Emit one transmission per destination with pending presence. */
  flush(now: number): void {
    if (this.dirty.size === 0) return;
    const ready = [...this.dirty];
    this.dirty.clear();
    for (const d of ready) {
      const map = this.pending.get(d);
      if (map === undefined || map.size === 0) continue;
      this.pending.delete(d);
      this.transmissions$.next({ destination: d, edus: buildPresenceEdus([...map.values()], now, this.busy) });
    }
  }
}
