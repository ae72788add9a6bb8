/**
 * Jobs that step many users in one turn: a module's `set_presence_for_users`,
 * an inbound EDU's remote updates, ending in-flight syncs (restart, adoption)
 * and applying events replicated from another process. Each runs as one turn
 * (or inside the open one), every step at the turn's time.
 */
import type { PresenceEvent, PublishedEvent, UserPolicyEvent } from '../domain/events.js';
import type { UserId } from '../domain/ids.js';
import type { PresenceValue } from '../domain/presence.js';
import type { RemotePresenceUpdate } from '../domain/rules.js';
import type { Memberships } from './memberships.js';
import type { PresenceSteps } from './presence-steps.js';

export interface StepJobHost {
  run(job: () => void): void;
  now(): number;
  /** A replicated full-presence request (gets a stream id of this engine). */
  fullRequested(userIds: readonly UserId[]): void;
  /** A replicated visibility policy or damping release (applied and notified with a stream id of this engine). */
  notifiedReplicated(e: UserPolicyEvent | PublishedEvent): void;
}

export class StepJobs {
  constructor(
    private readonly steps: PresenceSteps,
    private readonly memberships: Memberships,
    private readonly host: StepJobHost,
  ) {}

  /** `set_presence_for_users`, always notified. */
  moduleSet(updates: readonly (readonly [UserId, PresenceValue, string | null])[], moduleName: string | undefined): void {
    this.host.run(() => {
      const now = this.host.now();
      for (const [id, presence, statusMsg] of updates) this.steps.step(id, { type: 'module.set', now, presence, statusMsg, module: moduleName });
    });
  }

  /** The latest update of each remote user from one inbound EDU. */
  remoteUpdates(updates: ReadonlyMap<UserId, RemotePresenceUpdate>): void {
    if (updates.size === 0) return;
    this.host.run(() => {
      const now = this.host.now();
      for (const [userId, update] of updates) this.steps.step(userId, { type: 'remote.update', now, update });
    });
  }

  /** End every in-flight sync of `userIds` now, so their devices time out normally. */
  endSyncs(userIds: readonly UserId[]): void {
    const open = this.steps.openSyncs(userIds);
    if (open.length === 0) return;
    this.host.run(() => {
      const now = this.host.now();
      for (const [id, d, n] of open) for (let k = 0; k < n; k++) this.steps.step(id, { type: 'sync.end', now, deviceId: d });
    });
  }

  /** Events logged by the owner of their users (distributed mode), in log order, as one turn. */
  replicated(events: readonly PresenceEvent[]): void {
    if (events.length === 0) return;
    this.host.run(() => {
      for (const e of events) {
        if (e.type === 'user.step') this.steps.applyLogged(e);
        else if (e.type === 'room.membership') this.memberships.replicated(e);
        else if (e.type === 'user.policy' || e.type === 'presence.published') this.host.notifiedReplicated(e);
        else this.host.fullRequested(e.userIds);
      }
    });
  }
}
