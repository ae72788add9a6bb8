/**
 * What the server sees of distributed mode (service/distributed/host.ts), as a
 * plain interface: server.ts loads the implementation with a dynamic import, so
 * a single-process service (and its typings) never reach ioredis, an optional
 * peer dependency.
 */
import type { Observable } from 'rxjs';
import type { FederationLink, FederationTransport, FederationTransportOptions, PresenceEngine, PresenceEvent } from '../src/index.js';
import type { ServiceSettings } from './config.js';
import type { PresenceInputs } from './inputs.js';
import type { Route } from './routes/route.js';
import type { SessionBackend } from './sessions.js';

export interface DistributedPart {
  /** The engine of this process's RedisPresenceNode. */
  readonly engine: PresenceEngine;
  /** Sessions shared by every process (Redis). */
  readonly sessions: SessionBackend;
  /** Writes run on their user's owner, forwarded when that is another process. */
  readonly inputs: PresenceInputs;
  /** Events applied from the other processes (the membership journal needs them). */
  readonly replicated$: Observable<readonly PresenceEvent[]>;
  /** The internal endpoint forwarded writes arrive at. */
  readonly routes: readonly Route[];
  /** Outbound federation, sent only once durable (RedisPresenceNode.attachFederationTransport). */
  attachFederationTransport(transport: FederationTransport, options: FederationTransportOptions): FederationLink;
  /** Join the configured rooms' members through their owners, retrying until each is acknowledged (background). */
  preload(rooms: ServiceSettings['rooms']): void;
  close(): Promise<void>;
}
