/**
 * The example presence router from the presence router docs, written against
 * the legacy class interface (`presence.presence_router`, see
 * examples/router-class.yaml):
 *
 * - every presence update (except those of `blacklisted_users`) is sent to each
 *   user in `always_send_to_users`, and those users read everyone's presence
 *   (`getInterestedUsers` returns ALL_USERS for them);
 * - `blacklisted_users` only stops *routed* updates; users who share a room
 *   still see each other as usual.
 *
 * Both methods are async here, as in Synapse; synchronous methods work too.
 */
import { z } from 'zod';
import type { AllUsers, PresenceModuleApi, UserPresenceState } from '../../src/index.js';

const ConfigSchema = z.strictObject({
  always_send_to_users: z.array(z.string().startsWith('@', 'must be a user id like @name:server')).default([]),
  blacklisted_users: z.array(z.string().startsWith('@', 'must be a user id like @name:server')).default([]),
});

export interface ExamplePresenceRouterConfig {
  readonly alwaysSendToUsers: ReadonlySet<string>;
  readonly blacklistedUsers: ReadonlySet<string>;
}

export class ExamplePresenceRouter {
  /** Validate the `config:` mapping; a thrown error is reported at `presence.presence_router.config`. */
  static parseConfig(raw: Record<string, unknown>): ExamplePresenceRouterConfig {
    const c = ConfigSchema.parse(raw);
    return { alwaysSendToUsers: new Set(c.always_send_to_users), blacklistedUsers: new Set(c.blacklisted_users) };
  }

  constructor(
    private readonly config: ExamplePresenceRouterConfig,
    private readonly api: PresenceModuleApi,
  ) {}

  async getUsersForStates(states: readonly UserPresenceState[]): Promise<Map<string, Set<UserPresenceState>>> {
    const wanted = new Set(states.filter((s) => !this.config.blacklistedUsers.has(s.userId)));
    const out = new Map<string, Set<UserPresenceState>>();
    if (wanted.size === 0) return out;
    for (const userId of this.config.alwaysSendToUsers) out.set(userId, wanted);
    return out;
  }

  async getInterestedUsers(userId: string): Promise<ReadonlySet<string> | AllUsers> {
    // The mirror image of getUsersForStates: whoever is sent everything reads everything.
    return this.config.alwaysSendToUsers.has(userId) ? this.api.ALL_USERS : new Set<string>();
  }
}
