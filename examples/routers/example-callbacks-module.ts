/**
 * The same example router as example-presence-router.ts, written as a generic
 * module (top-level `modules:`, see examples/router-callbacks.yaml) that
 * registers its callbacks through the module API, the interface Synapse
 * recommends since v1.42. Its callbacks answer synchronously.
 */
import { z } from 'zod';
import type { AllUsers, PresenceModuleApi, UserPresenceState } from '../../src/index.js';

const ConfigSchema = z.strictObject({
  always_send_to_users: z.array(z.string().startsWith('@', 'must be a user id like @name:server')).default([]),
  blacklisted_users: z.array(z.string().startsWith('@', 'must be a user id like @name:server')).default([]),
});

export default class ExampleCallbacksModule {
  private readonly alwaysSendTo: ReadonlySet<string>;
  private readonly blacklisted: ReadonlySet<string>;

  /** Without a static parseConfig the raw `config:` mapping arrives here; validate it in the constructor. */
  constructor(config: Record<string, unknown>, api: PresenceModuleApi) {
    const c = ConfigSchema.parse(config);
    this.alwaysSendTo = new Set(c.always_send_to_users);
    this.blacklisted = new Set(c.blacklisted_users);
    api.registerPresenceRouterCallbacks({
      getUsersForStates: (states) => this.usersForStates(states),
      getInterestedUsers: (userId) => this.interestedUsers(userId, api.ALL_USERS),
    });
  }

  private usersForStates(states: readonly UserPresenceState[]): Map<string, Set<UserPresenceState>> {
    const wanted = new Set(states.filter((s) => !this.blacklisted.has(s.userId)));
    const out = new Map<string, Set<UserPresenceState>>();
    if (wanted.size > 0) for (const userId of this.alwaysSendTo) out.set(userId, wanted);
    return out;
  }

  private interestedUsers(userId: string, all: AllUsers): ReadonlySet<string> | AllUsers {
    return this.alwaysSendTo.has(userId) ? all : new Set<string>();
  }
}
