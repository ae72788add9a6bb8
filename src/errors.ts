/**
 * Typed errors. Every error the engine throws on purpose is a {@link PresenceError}
 * with a stable `code`; messages say what was wrong and how to fix it.
 */

export type PresenceErrorCode =
  | 'CONFIG'
  | 'INVALID_INPUT'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'PRESENCE_DISABLED'
  | 'MODULE'
  | 'LOG'
  | 'NOT_OWNER'
  | 'ENGINE_STOPPED'
  | 'FEDERATION'
  | 'REMOTE_USER_LIMIT';

export abstract class PresenceError extends Error {
  abstract readonly code: PresenceErrorCode;
  override readonly name: string = this.constructor.name;
}

/** Configuration could not be parsed or a module could not be loaded at start-up. */
export class ConfigError extends PresenceError {
  readonly code = 'CONFIG' as const;
  /** Dotted path of the offending config key, e.g. `presence.idle_timeout`. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`config error at ${path || '<root>'}: ${message}`, options);
    this.path = path;
  }
}

/** An input (user id, room id, presence value, EDU, …) failed validation. Nothing changed. */
export class InvalidInputError extends PresenceError {
  readonly code = 'INVALID_INPUT' as const;
  /** Which argument or field was wrong (e.g. `userId`, `presence`). */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`invalid ${field}: ${message}`);
    this.field = field;
  }
}

/** The requester may not see or change the target's presence. */
export class ForbiddenError extends PresenceError {
  readonly code = 'FORBIDDEN' as const;
}

/** Explicit presence changes exceeded `rc_presence.per_user`. Retry after `retryAfterMs`. */
export class RateLimitedError extends PresenceError {
  readonly code = 'RATE_LIMITED' as const;
  readonly retryAfterMs: number;
  constructor(userId: string, retryAfterMs: number) {
    super(
      `too many presence changes for ${userId}: retry after ${retryAfterMs} ms ` +
        `(limit set by rc_presence.per_user in the config)`,
    );
    this.retryAfterMs = retryAfterMs;
  }
}

/** A presence router module misbehaved. Logged and isolated; only thrown at start-up. */
export class ModuleError extends PresenceError {
  readonly code = 'MODULE' as const;
  readonly moduleName: string;
  constructor(moduleName: string, message: string, options?: { cause?: unknown }) {
    super(`presence router module ${moduleName}: ${message}`, options);
    this.moduleName = moduleName;
  }
}

/** The event log refused an append or could not be read. */
export class LogError extends PresenceError {
  readonly code = 'LOG' as const;
}

/** One damaged place found in a log segment on open (see docs/durability.md, "Recovery"). */
export interface LogCorruption {
  /** The segment file. */
  readonly file: string;
  /** Damaged byte range `[startOffset, endOffset)` in the segment as found (empty when only entries are missing). */
  readonly startOffset: number;
  readonly endOffset: number;
  readonly reason: string;
  /** Entries in no intact record: positions `firstLost … lastLost` (none when `lostEntries` is 0). */
  readonly lostEntries: number;
  readonly firstLost: number | undefined;
  readonly lastLost: number | undefined;
  /** Where the damaged bytes were moved (unset when refused, or when no bytes were damaged). */
  readonly quarantineFile: string | undefined;
}

/**
 * The log has damage a crash cannot explain (not just a torn tail) and
 * `log.on_corruption` is `refuse`: nothing on disk was changed.
 */
export class LogCorruptionError extends LogError {
  readonly corruption: readonly LogCorruption[];
  constructor(message: string, corruption: readonly LogCorruption[]) {
    super(message);
    this.corruption = corruption;
  }
}

/** The engine was stopped; create a new one (or `replay` the log) to continue. */
export class EngineStoppedError extends PresenceError {
  readonly code = 'ENGINE_STOPPED' as const;
  constructor() {
    super('the presence engine has been stopped; create a new engine to continue');
  }
}

/** A federation send to `destination` failed (transport error, refusal or timeout); the outbound queue retries with back-off. */
export class FederationError extends PresenceError {
  readonly code = 'FEDERATION' as const;
  readonly destination: string;
  constructor(destination: string, message: string, options?: { cause?: unknown }) {
    super(`federation send to ${destination} failed: ${message}`, options);
    this.destination = destination;
  }
}

/**
 * Inbound federation named a remote user this server does not hold yet while
 * the cap on remote users (per origin server, or in total) is reached: the
 * user's presence items are dropped until the count falls or the cap is raised.
 */
export class RemoteUserLimitError extends PresenceError {
  readonly code = 'REMOTE_USER_LIMIT' as const;
  readonly origin: string;
  /** `server`: the origin's own cap; `total`: the cap over every origin. */
  readonly scope: 'server' | 'total';
  readonly limit: number;
  /** New users refused in the transaction that hit the cap. */
  readonly refused: number;
  constructor(origin: string, scope: 'server' | 'total', limit: number, refused: number) {
    super(
      scope === 'server'
        ? `${origin} already has ${limit} remote users here (the cap per server); ${refused} new user(s) refused. Raise service.federation.max_remote_users_per_server if this is expected`
        : `this server already holds ${limit} remote users (the total cap); ${refused} new user(s) from ${origin} refused. Raise service.federation.max_remote_users if this is expected`,
    );
    this.origin = origin;
    this.scope = scope;
    this.limit = limit;
    this.refused = refused;
  }
}

/** Type guard for errors thrown by this library. */
export function isPresenceError(error: unknown): error is PresenceError {
  return error instanceof PresenceError;
}
