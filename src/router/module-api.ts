/**
 * The module API: the object every presence module receives as the second
 * constructor argument (`new Module(config, moduleApi)`), like Synapse's
 * `ModuleApi`. One instance per loaded module, so registrations and log lines
 * carry the module's name.
 */
import type { PresenceModuleHost } from './module-host.js';
import type { PresencePolicy, PresencePolicyInput } from '../domain/policy.js';
import { ModuleError } from '../errors.js';
import type { Logger } from '../logger.js';
import { ALL_USERS, type AllUsers, type GetVisibility, type PresenceRouterCallbacks } from './presence-router.js';

/** What `registerPresenceRouterCallbacks` accepts: both callbacks or neither (Synapse's pairing rule). */
export interface PresenceRouterCallbacksInput {
  readonly getUsersForStates?: PresenceRouterCallbacks['getUsersForStates'] | undefined;
  readonly getInterestedUsers?: PresenceRouterCallbacks['getInterestedUsers'] | undefined;
}

/** Presence to set through {@link PresenceModuleApi.setPresenceForUsers}. */
export interface ModulePresenceUpdate {
  readonly presence: string;
  /** A missing or null message clears the status message. */
  readonly statusMsg?: string | null | undefined;
}

export interface PresenceModuleApi {
  /** This homeserver's name, e.g. `example.org`. */
  readonly serverName: string;
  /** The marker `getInterestedUsers` returns for "every known user" (`"ALL"`). */
  readonly ALL_USERS: AllUsers;
  /** A logger whose lines name the module. */
  readonly logger: Logger;
  /** The engine's clock (simulated in tests). */
  readonly clock: { now(): number };
  /** True when `userId` belongs to this homeserver. */
  isMine(userId: string): boolean;
  /**
   * Register presence router callbacks. Both or neither: registering exactly one
   * throws a {@link ModuleError} (at start-up this fails loading with a ConfigError).
   * May be called several times; each pair is combined with every other module's.
   */
  registerPresenceRouterCallbacks(callbacks: PresenceRouterCallbacksInput): void;
  /**
   * Synapse's `send_local_online_presence_to`: local targets get, on their next
   * read, the presence of every non-offline user they are interested in; remote
   * targets' servers are sent the non-offline local users their users can see.
   * Nobody's presence changes.
   * @throws InvalidInputError when an id is malformed (nothing is sent).
   */
  sendLocalOnlinePresenceTo(userIds: Iterable<string>): void;
  /**
   * Synapse's `set_presence_for_users`: set the state and status message of local
   * or remote users, always notified. The way to drive presence with
   * `presence.enabled: untracked`.
   * @throws InvalidInputError when an id or presence value is invalid (nothing changes).
   */
  setPresenceForUsers(users: Readonly<Record<string, ModulePresenceUpdate>>): void;
  /**
   * Replace a local user's visibility policy (docs/policies.md):
   * `{ invisible?, allow?: { users?, servers? } | null, deny?: { users?, servers? } }`.
   * Logged like a client's change.
   * @throws InvalidInputError when the user is not local or the policy is invalid (nothing changes).
   */
  setPresencePolicy(userId: string, policy: PresencePolicyInput): void;
  /** A user's visibility policy (the default when none is set). */
  getPresencePolicy(userId: string): PresencePolicy;
  /**
   * Register an operator policy callback (docs/policies.md): `getVisibility(viewer, target)`
   * answers `false` to hide local user `target`'s truth from `viewer` (a user id, or a
   * server name for federation). It can only hide. Same deadline and isolation as routers;
   * answers are cached for `presence.visibility_cache_ttl`.
   * @throws ModuleError when `getVisibility` is not a function.
   */
  registerPresencePolicyCallbacks(callbacks: { getVisibility: GetVisibility }): void;
  /** Forget cached `getVisibility` answers (call it when your decisions change). */
  invalidateVisibility(): void;
  /** Rooms `userId` is joined to (ids the engine knows). */
  getRoomsForUser(userId: string): string[];
  /** Users joined to `roomId` (empty for rooms the engine does not know). */
  getRoomMembers(roomId: string): string[];
}

const CALLBACK_NAMES = new Set(['getUsersForStates', 'getInterestedUsers']);

/** A logger that prefixes every line with the module's name. */
export function moduleLogger(base: Logger, moduleName: string): Logger {
  const p = `[module ${moduleName}] `;
  return {
    debug: (m, f) => base.debug(p + m, f),
    info: (m, f) => base.info(p + m, f),
    warn: (m, f) => base.warn(p + m, f),
    error: (m, f) => base.error(p + m, f),
  };
}

/**
 * Validate a registration: an object with both callbacks as functions, or
 * neither. Returns the pair, or `undefined` when neither was given.
 * @throws ModuleError naming the module and the problem.
 */
export function checkRouterCallbacks(moduleName: string, callbacks: unknown): PresenceRouterCallbacks | undefined {
  if (typeof callbacks !== 'object' || callbacks === null) {
    throw new ModuleError(moduleName, 'registerPresenceRouterCallbacks takes an object { getUsersForStates, getInterestedUsers }');
  }
  const unknown = Object.keys(callbacks).filter((k) => !CALLBACK_NAMES.has(k));
  if (unknown.length > 0) {
    throw new ModuleError(
      moduleName,
      `registerPresenceRouterCallbacks got unknown callback(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; ` +
        'the presence router callbacks are getUsersForStates and getInterestedUsers (camelCase)',
    );
  }
  const { getUsersForStates: forStates, getInterestedUsers: interested } = callbacks as Record<string, unknown>;
  for (const [name, fn] of [
    ['getUsersForStates', forStates],
    ['getInterestedUsers', interested],
  ] as const) {
    if (fn !== undefined && fn !== null && typeof fn !== 'function') {
      throw new ModuleError(moduleName, `${name} must be a function, got ${typeof fn}`);
    }
  }
  const hasForStates = typeof forStates === 'function';
  const hasInterested = typeof interested === 'function';
  if (hasForStates !== hasInterested) {
    const [given, missing] = hasForStates ? ['getUsersForStates', 'getInterestedUsers'] : ['getInterestedUsers', 'getUsersForStates'];
    throw new ModuleError(
      moduleName,
      `registered ${given} without ${missing}: presence router callbacks must be registered in pairs (both or neither), ` +
        'because one decides who receives a state and the other what a syncing user reads',
    );
  }
  if (!hasForStates) return undefined;
  return {
    getUsersForStates: forStates as PresenceRouterCallbacks['getUsersForStates'],
    getInterestedUsers: interested as PresenceRouterCallbacks['getInterestedUsers'],
  };
}

/** Build the module API object handed to one module. */
export function createModuleApi(engine: PresenceModuleHost, moduleName: string): PresenceModuleApi {
  const logger = moduleLogger(engine.logger, moduleName);
  const clock = engine.clock;
  return Object.freeze({
    serverName: engine.config.serverName,
    ALL_USERS,
    logger,
    clock: Object.freeze({ now: () => clock.now() }),
    isMine: (userId: string) => engine.isMine(userId),
    registerPresenceRouterCallbacks: (callbacks: PresenceRouterCallbacksInput) => {
      const pair = checkRouterCallbacks(moduleName, callbacks);
      if (pair !== undefined) engine.registerPresenceRouter(moduleName, pair);
    },
    sendLocalOnlinePresenceTo: (userIds: Iterable<string>) => engine.sendLocalOnlinePresenceTo([...userIds]),
    setPresenceForUsers: (users: Readonly<Record<string, ModulePresenceUpdate>>) => engine.setPresenceForUsers(users, moduleName),
    setPresencePolicy: (userId: string, policy: PresencePolicyInput) => engine.setPresencePolicy(userId, policy),
    getPresencePolicy: (userId: string): PresencePolicy => engine.getPresencePolicy(userId),
    registerPresencePolicyCallbacks: (callbacks: { getVisibility: GetVisibility }) => {
      const fn = typeof callbacks === 'object' && callbacks !== null ? (callbacks as { getVisibility?: unknown }).getVisibility : undefined;
      if (typeof fn !== 'function') throw new ModuleError(moduleName, 'registerPresencePolicyCallbacks needs { getVisibility(viewer, target) } (a function)');
      engine.registerPresencePolicyCallback(moduleName, fn as GetVisibility);
    },
    invalidateVisibility: () => engine.invalidateVisibility(),
    getRoomsForUser: (userId: string): string[] => engine.getRoomsForUser(userId),
    getRoomMembers: (roomId: string): string[] => engine.getRoomMembers(roomId),
  });
}
