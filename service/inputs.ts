/**
 * The service's writes to presence, in one place: a presence PUT, a sync's
 * presence effect and a membership change. A single process runs them on its
 * engine; a distributed process (distributed/forwarding.ts) runs them where
 * the user's partition is owned, forwarding to the owner when that is another
 * process. A resolved promise means what it means for one process: the change
 * is in the log.
 */
import type { PresenceEngine, UserId } from '../src/index.js';
import type { ServiceUser } from './config.js';

export type Membership = 'join' | 'leave' | 'ban';

export interface PresenceInputs {
  /** `PUT /presence/{userId}/status`: resolves once the change is logged (durable on its owner in distributed mode). */
  setPresence(user: ServiceUser, presence: string, statusMsg: string | undefined): Promise<void>;
  /** A membership change (config rooms, admin API): resolves once logged. */
  setMembership(roomId: string, userId: string, membership: Membership): Promise<void>;
  /**
   * A `/sync` request started; `end()` when it finishes. Never throws for
   * distributed reasons: a sync whose presence effect cannot reach the owner is
   * still served (presence from syncs is best effort, as in Synapse).
   */
  userSyncing(user: ServiceUser, setPresence: 'online' | 'unavailable' | 'offline'): { end(): void };
  /** A user replaces their visibility policy (docs/policies.md): resolves once logged. @throws InvalidInputError on a bad policy. */
  setPresencePolicy(userId: UserId, policy: unknown): Promise<void>;
}

/** One process: the engine runs everything; `committed` waits for a per-tick turn's commit. */
export function localInputs(engine: PresenceEngine, committed: () => Promise<void>): PresenceInputs {
  return {
    setPresence: async (user, presence, statusMsg) => {
      engine.setPresence(user.userId, { presence, statusMsg, deviceId: user.deviceId });
      await committed();
    },
    setMembership: async (roomId, userId, membership) => {
      engine.setMembership(roomId, userId, membership);
      await committed();
    },
    userSyncing: (user, setPresence) => engine.userSyncing(user.userId, { deviceId: user.deviceId, setPresence }),
    setPresencePolicy: async (userId, policy) => {
      engine.setPresencePolicy(userId, policy);
      await committed();
    },
  };
}
