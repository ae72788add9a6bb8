/**
 * Visibility: the per-user policies (src/domain/policy.ts) between a
 * committed state and the viewers that rooms and routers chose. Every path
 * asks this part: pushes (a view of each emitted batch), pulls, `GET
 * /presence`, and federation (a view per destination server). With no policy
 * set `active` is false and each path pays one boolean check.
 */
import type { BatchView, PresenceBatch } from '../../streams/sync-notifier.js';
import type { ServerName, UserId } from '../domain/ids.js';
import { CompiledPolicy, DEFAULT_POLICY, isDefaultPolicy, maskedState, type PresencePolicy } from '../domain/policy.js';
import type { OperatorVisibility } from './operator-visibility.js';
import type { UserPresenceState } from '../domain/presence.js';

export class Visibility {
  private readonly policies = new Map<UserId, CompiledPolicy>();
  /** Flap damping (src/engine/damping.ts): users with a held change → the state others were last shown. */
  private readonly damped = new Map<UserId, UserPresenceState>();
  /** The operator callback (`getVisibility`), once a module registers one. */
  private operator: OperatorVisibility | null = null;
  /** Some user has a policy or a held change, or a module decides: the paths consult {@link view}. */
  active = false;

  /** Consult modules' `getVisibility` too (a module registered one). */
  setOperator(operator: OperatorVisibility): void {
    this.operator = operator;
    this.refresh();
  }

  private refresh(): void {
    this.active = this.policies.size > 0 || this.damped.size > 0 || (this.operator?.active ?? false);
  }

  /** A pull is about to view `states` for `viewer`: wait for the operator's answers it needs (null when there is nothing to wait for). */
  prefetch(viewer: UserId, states: readonly UserPresenceState[]): Promise<void> | null {
    const op = this.operator;
    if (op === null || !op.active) return null;
    return op.prefetch(viewer, states.map((s) => s.userId));
  }

  /** A user's policy (the default when none is set). */
  get(userId: UserId): PresencePolicy {
    return this.policies.get(userId)?.policy ?? DEFAULT_POLICY;
  }

  /** Set (or, with the default policy, clear) a user's policy. */
  set(userId: UserId, policy: PresencePolicy): void {
    if (isDefaultPolicy(policy)) this.policies.delete(userId);
    else this.policies.set(userId, new CompiledPolicy(userId, policy));
    this.refresh();
  }

  /** Show others `shown` instead of user `userId`'s truth while a change is held (null: the hold ended). */
  setDamped(userId: UserId, shown: UserPresenceState | null): void {
    if (shown === null) this.damped.delete(userId);
    else this.damped.set(userId, shown);
    this.refresh();
  }

  /** Every non-default policy (for snapshots). */
  entries(): [UserId, PresencePolicy][] {
    return Array.from(this.policies, ([id, p]) => [id, p.policy]);
  }

  /** The state `viewer` sees of `s`: the truth, or the masked state when the target's policy hides it from them. */
  view(viewer: UserId, s: UserPresenceState): UserPresenceState {
    const p = this.policies.get(s.userId);
    if (p !== undefined && p.hidesFrom(viewer)) return p.masked;
    if (viewer === s.userId) return s;
    if (this.operator !== null && !this.operator.visibleNow(viewer, s.userId)) return maskedState(s.userId);
    if (this.damped.size === 0) return s;
    return this.damped.get(s.userId) ?? s;
  }

  /** The state remote server `server` is sent of local user state `s`. */
  forServer(server: ServerName, s: UserPresenceState): UserPresenceState {
    const p = this.policies.get(s.userId);
    if (p !== undefined && p.hidesFromServer(server)) return p.masked;
    if (this.operator !== null && !this.operator.visibleNow(server, s.userId)) return maskedState(s.userId);
    return this.damped.size === 0 ? s : (this.damped.get(s.userId) ?? s);
  }

  /**
   * `viewer`'s view of a list of states; with `dropOffline` (an initial sync
   * without offline users) a state masked to offline is left out, exactly as
   * an offline user would be.
   */
  viewList(viewer: UserId, states: readonly UserPresenceState[], dropOffline: boolean): UserPresenceState[] {
    const out: UserPresenceState[] = [];
    for (const s of states) {
      const v = this.view(viewer, s);
      if (dropOffline && v !== s && v.state === 'offline') continue;
      out.push(v);
    }
    return out;
  }

  /** The push path's view: a copy of the batch only when one of its states is masked for this viewer. */
  readonly viewBatch: BatchView = (viewer: UserId, batch: PresenceBatch): PresenceBatch => {
    const events = batch.events;
    for (let k = 0; k < events.length; k++) {
      const s = events[k] as UserPresenceState;
      if (this.view(viewer, s) === s) continue;
      const copy = events.slice(0, k);
      for (let j = k; j < events.length; j++) copy.push(this.view(viewer, events[j] as UserPresenceState));
      return { events: copy, token: batch.token };
    }
    return batch;
  };
}
