/**
 * What a route module sees of the service: one request's context, the route
 * table entry shape, and the `RouteHost` (engine, settings, metrics, and the
 * few service-wide helpers handlers share). Route modules export a function
 * `(host) => Route[]`; server.ts only dispatches.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger, PresenceEngine } from '../../src/index.js';
import type { Authenticator } from '../auth.js';
import type { ServiceSettings } from '../config.js';
import type { PresenceInputs } from '../inputs.js';
import type { MembershipJournal } from '../membership-journal.js';
import type { ServiceMetrics } from '../metrics.js';
import type { RoomSync } from '../room-sync.js';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The route pattern's capture groups, percent-decoded. */
  readonly params: readonly string[];
  readonly query: URLSearchParams;
}

export type Handler = (ctx: RequestContext) => Promise<void>;

export interface Route {
  /** Metrics label. */
  readonly name: string;
  readonly pattern: RegExp;
  readonly methods: Readonly<Record<string, Handler>>;
}

export interface RouteHost {
  readonly engine: PresenceEngine;
  readonly settings: ServiceSettings;
  readonly metrics: ServiceMetrics;
  readonly logger: Logger;
  /** Access tokens (config and `/login` sessions) and the admin token. */
  readonly auth: Authenticator;
  /** Room membership changes, for /sync's rooms section. */
  readonly journal: MembershipJournal;
  readonly roomSync: RoomSync;
  /** True once the service started shutting down (long-polls answer at once). */
  isClosing(): boolean;
  /** Resolve after `ms` or when woken (the wake function is handed to `register`); shutdown wakes every waiter. */
  waitForWake(ms: number, register: (wake: () => void) => void): Promise<void>;
  /** Resolve once this request's inputs are in the log (see server.ts). */
  committed(): Promise<void>;
  /** Presence writes: on the engine, or on the user's owner in distributed mode (inputs.ts). */
  readonly inputs: PresenceInputs;
  /**
   * Distributed mode: stream positions are this process's own, so a sync token
   * minted by another process (the client moved) is answered in full.
   */
  readonly processScopedTokens: boolean;
}

/** The client-server API prefix, v3 with r0 aliases. */
export const CLIENT_PREFIX = '/_matrix/client/(?:v3|r0)';
