/**
 * Per-user visibility policies (docs/policies.md): rules that can only hide a
 * user's presence from viewers the rooms and routers would otherwise show it
 * to. A hidden viewer sees the *masked* state: the state of a user never
 * seen (offline, no status message, no activity times), so nothing about the
 * truth leaks through its fields. The user's own view is never masked.
 *
 * A policy is stored and logged whole (absolute values, sorted lists), so
 * replaying its last `user.policy` event restores it exactly.
 */
import { z } from 'zod';
import { ServerNameSchema, UserIdSchema, serverNameOf, type ServerName, type UserId } from './ids.js';
import { defaultPresence, type UserPresenceState } from './presence.js';

/** Most entries of one list: a policy is logged whole on every change. */
export const MAX_POLICY_ENTRIES = 1000;

export interface PolicyList {
  readonly users: readonly UserId[];
  readonly servers: readonly ServerName[];
}

export interface PresencePolicy {
  /** Everyone else sees the masked state (the user's own devices see the truth). */
  readonly invisible: boolean;
  /** When set, only these users and the users of these servers may see the truth. */
  readonly allow: PolicyList | null;
  /** These users and the users of these servers never see the truth. */
  readonly deny: PolicyList;
}

export const DEFAULT_POLICY: PresencePolicy = Object.freeze({ invisible: false, allow: null, deny: Object.freeze({ users: [], servers: [] }) });

const ListSchema = z.strictObject({
  users: z.array(UserIdSchema).max(MAX_POLICY_ENTRIES, `at most ${MAX_POLICY_ENTRIES} users`).optional(),
  servers: z.array(ServerNameSchema).max(MAX_POLICY_ENTRIES, `at most ${MAX_POLICY_ENTRIES} servers`).optional(),
});

/** What a client or module sends: every key optional (absent = default: visible, no allow list, empty deny list). */
export const PresencePolicyInputSchema = z.strictObject({
  invisible: z.boolean({ error: 'invisible must be true or false' }).optional(),
  allow: ListSchema.nullable().optional(),
  deny: ListSchema.optional(),
});
export type PresencePolicyInput = z.input<typeof PresencePolicyInputSchema>;

/** A validated input as a normalised policy (lists sorted and without duplicates). */
export function normalisePolicy(input: z.output<typeof PresencePolicyInputSchema>): PresencePolicy {
  const list = (l: { users?: UserId[] | undefined; servers?: ServerName[] | undefined }): PolicyList => ({
    users: [...new Set(l.users ?? [])].sort(),
    servers: [...new Set(l.servers ?? [])].sort(),
  });
  return { invisible: input.invisible ?? false, allow: input.allow === undefined || input.allow === null ? null : list(input.allow), deny: list(input.deny ?? {}) };
}

export function isDefaultPolicy(p: PresencePolicy): boolean {
  return !p.invisible && p.allow === null && p.deny.users.length === 0 && p.deny.servers.length === 0;
}

/** The state a viewer the policy hides from sees: that of a user never seen. */
export function maskedState(userId: UserId): UserPresenceState {
  return defaultPresence(userId);
}

/** A policy with its lists as sets, for the per-delivery checks. */
export class CompiledPolicy {
  private readonly allowUsers: ReadonlySet<string> | null;
  private readonly allowServers: ReadonlySet<string> | null;
  private readonly denyUsers: ReadonlySet<string>;
  private readonly denyServers: ReadonlySet<string>;
  /** Servers of denied users: a server is one audience on federation, so it loses the truth for all its users. */
  private readonly denyUserServers: ReadonlySet<string>;
  readonly masked: UserPresenceState;

  constructor(
    readonly userId: UserId,
    readonly policy: PresencePolicy,
  ) {
    this.allowUsers = policy.allow === null ? null : new Set(policy.allow.users);
    this.allowServers = policy.allow === null ? null : new Set(policy.allow.servers);
    this.denyUsers = new Set(policy.deny.users);
    this.denyServers = new Set(policy.deny.servers);
    this.denyUserServers = new Set(policy.deny.users.map(serverNameOf));
    this.masked = Object.freeze(maskedState(userId));
  }

  /** Does the policy hide the truth from `viewer`? Never from the user themself. */
  hidesFrom(viewer: UserId): boolean {
    if (viewer === this.userId) return false;
    if (this.policy.invisible) return true;
    const server = serverNameOf(viewer);
    if (this.denyUsers.has(viewer) || this.denyServers.has(server)) return true;
    if (this.allowUsers !== null && !this.allowUsers.has(viewer) && !(this.allowServers as ReadonlySet<string>).has(server)) return true;
    return false;
  }

  /**
   * Does the policy hide the truth from remote server `server`? A server
   * re-shares what it receives with all its users, so it gets the truth only
   * when every one of its users may see it: not invisible, the server not
   * denied nor home to a denied user, and (with an allow list) the server
   * itself allowed; allowing one remote user does not allow their server.
   */
  hidesFromServer(server: ServerName): boolean {
    if (this.policy.invisible) return true;
    if (this.denyServers.has(server) || this.denyUserServers.has(server)) return true;
    return this.allowServers !== null && !this.allowServers.has(server);
  }
}
