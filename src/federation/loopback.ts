/**
 * An in-process federation network: `connectLoopback([engineA, engineB, …])`
 * attaches a {@link FederationTransport} to every engine that delivers its
 * transmissions to the destination engine's `receiveFederationEdu`, as a JSON
 * copy (what would cross the wire). For tests and demos.
 *
 * - `mode: 'auto'` (default): each send is delivered on a microtask; `await
 *   network.settle()` waits until nothing is in flight.
 * - `mode: 'manual'`: sends wait in {@link LoopbackNetwork.queued} until the
 *   test delivers or fails them (`deliverNext`, `failNext`, `deliverAll`),
 *   so tests choose the interleaving.
 *
 * Fault injection: `options.fault(send)` returning true fails a send (the
 * destination gets nothing), and {@link LoopbackNetwork.setLinkDown} fails every
 * send on a link until it is brought back up. A send to an unknown or stopped
 * engine fails too.
 */
import type { ServerName } from '../domain/ids.js';
import { FederationError } from '../errors.js';
import type { PresenceEdu } from './edu.js';
import type { FederationLink, FederationTransport, FederationTransportOptions } from './outbound.js';

/** One send on the network. */
export interface LoopbackSend {
  readonly seq: number;
  readonly origin: ServerName;
  readonly destination: ServerName;
  readonly edus: readonly PresenceEdu[];
}

export interface LoopbackOptions {
  /** `auto` (default): deliver on a microtask. `manual`: hold sends until the test delivers or fails them. */
  readonly mode?: 'auto' | 'manual';
  /** Consulted for every send before delivery: return true to fail it without delivering. */
  readonly fault?: (send: LoopbackSend) => boolean;
  /** Back-off and size options for every engine's attached transport. */
  readonly transport?: FederationTransportOptions;
}

export interface LoopbackStats {
  sent: number;
  delivered: number;
  failed: number;
}

/** The engine surface the loopback needs. */
export interface LoopbackPeer {
  readonly config: { readonly serverName: ServerName };
  receiveFederationEdu(origin: string, content: unknown): unknown;
  attachFederationTransport(transport: FederationTransport, options?: FederationTransportOptions): FederationLink;
}

interface Held {
  readonly send: LoopbackSend;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

type Predicate = (send: LoopbackSend) => boolean;

export class LoopbackNetwork {
  readonly stats: LoopbackStats = { sent: 0, delivered: 0, failed: 0 };
  private readonly peers = new Map<ServerName, LoopbackPeer>();
  private readonly links: FederationLink[] = [];
  private readonly held: Held[] = [];
  private readonly down = new Set<string>();
  private outstanding = 0;
  private seq = 0;
  private connected = true;

  constructor(
    engines: readonly LoopbackPeer[],
    private readonly options: LoopbackOptions = {},
  ) {
    for (const e of engines) {
      const name = e.config.serverName;
      if (this.peers.has(name)) throw new FederationError(name, 'two engines on a loopback network have the same server name');
      this.peers.set(name, e);
    }
    for (const [name, e] of this.peers) this.links.push(e.attachFederationTransport(this.transportFor(name), options.transport ?? {}));
  }

  /** Sends held in manual mode, oldest first. */
  get queued(): readonly LoopbackSend[] {
    return this.held.map((h) => h.send);
  }

  /** Fail every send from `origin` to `destination` (one direction) while down. */
  setLinkDown(origin: string, destination: string, down = true): void {
    const key = `${origin}\u0000${destination}`;
    if (down) this.down.add(key);
    else this.down.delete(key);
  }

  /** Manual mode: deliver the oldest held send matching `predicate`. Returns false when there is none. */
  deliverNext(predicate: Predicate = () => true): boolean {
    const h = this.take(predicate);
    if (h === undefined) return false;
    this.complete(h);
    return true;
  }

  /**
   * Manual mode: fail the oldest held send matching `predicate`. With
   * `delivered: true` the destination gets it but the sender sees a failure
   * (a lost acknowledgement).
   */
  failNext(predicate: Predicate = () => true, options: { delivered?: boolean } = {}): boolean {
    const h = this.take(predicate);
    if (h === undefined) return false;
    if (options.delivered === true) {
      try {
        this.deliver(h.send);
      } catch {
        // the sender sees a failure either way
      }
    }
    this.stats.failed++;
    h.reject(new FederationError(h.send.destination, 'injected failure'));
    return true;
  }

  /** Manual mode: deliver every send held now (not the ones they cause). Returns how many. */
  deliverAll(): number {
    let n = 0;
    while (this.deliverNext()) n++;
    return n;
  }

  /** Wait until no delivery is pending (auto mode) and sender acknowledgements have run. */
  async settle(maxRounds = 1000): Promise<void> {
    for (let i = 0; i < maxRounds; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.outstanding === 0) return;
    }
  }

  /**
   * Advance a simulated clock by `ms` in steps of `stepMs`, settling the network
   * after each step, so sends complete between timer firings as they would on a
   * fast network (one big synchronous advance would let send timeouts fire first).
   */
  async advance(clock: { advance(ms: number): void }, ms: number, stepMs = 1000): Promise<void> {
    await this.settle(); // let work started before the call finish first
    let left = ms;
    while (left > 0) {
      const d = Math.min(stepMs, left);
      clock.advance(d);
      left -= d;
      await this.settle();
    }
  }

  /** Detach every transport; held sends fail. */
  disconnect(): void {
    if (!this.connected) return;
    this.connected = false;
    for (const l of this.links) l.detach();
    for (const h of this.held.splice(0)) h.reject(new FederationError(h.send.destination, 'loopback network disconnected'));
  }

  private transportFor(origin: ServerName): FederationTransport {
    return {
      send: (destination, edus) => {
        const send: LoopbackSend = { seq: ++this.seq, origin, destination, edus };
        this.stats.sent++;
        return new Promise<void>((resolve, reject) => {
          const h: Held = { send, resolve, reject };
          if (this.options.mode === 'manual') {
            this.held.push(h);
            return;
          }
          this.outstanding++;
          queueMicrotask(() => {
            this.outstanding--;
            this.complete(h);
          });
        });
      },
    };
  }

  private take(predicate: Predicate): Held | undefined {
    const i = this.held.findIndex((h) => predicate(h.send));
    if (i < 0) return undefined;
    return this.held.splice(i, 1)[0];
  }

  private complete(h: Held): void {
    const { send } = h;
    const faulty = !this.connected || this.down.has(`${send.origin}\u0000${send.destination}`) || this.options.fault?.(send) === true;
    if (faulty) {
      this.stats.failed++;
      h.reject(new FederationError(send.destination, 'injected failure'));
      return;
    }
    try {
      this.deliver(send);
    } catch (error) {
      this.stats.failed++;
      h.reject(error);
      return;
    }
    this.stats.delivered++;
    h.resolve();
  }

  private deliver(send: LoopbackSend): void {
    const peer = this.peers.get(send.destination);
    if (peer === undefined) throw new FederationError(send.destination, 'no engine with that server name on this loopback network');
    const wire = JSON.parse(JSON.stringify(send.edus)) as { edu_type: string; content: unknown }[];
    for (const edu of wire) if (edu.edu_type === 'm.presence') peer.receiveFederationEdu(send.origin, edu.content);
  }
}

/** Connect engines (distinct server names) with an in-process federation network. */
export function connectLoopback(engines: readonly LoopbackPeer[], options: LoopbackOptions = {}): LoopbackNetwork {
  return new LoopbackNetwork(engines, options);
}
