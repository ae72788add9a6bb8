/**
 * Per-user actors for the presence machine, kept in our own index (never as
 * children of one parent: XState spawning slows down quadratically there).
 *
 * An actor here is the user's machine snapshot plus this system's mailbox:
 * `send` advances the snapshot with `machine.transition` over one reused actor
 * scope. That is XState's own pure transition (the same guards, actions and
 * eventless transitions a `createActor` runs), without the ~3.6 KB and the
 * observer machinery of a full `Actor` object per user (architecture guide,
 * performance traps). Actors exist only for users who are not dormant (offline
 * with no devices and no open syncs); dormant users are compact records kept by
 * the engine, or nothing at all when they have the default state.
 */
import { createActor, type AnyActorScope, type SnapshotFrom } from 'xstate';
import type { UserId } from '../src/domain/ids.js';
import type { PresenceValue, RuleConfig, UserRecord } from '../src/domain/presence.js';
import { presenceMachine, type PresenceMachineEvent, type StepOutcome } from './presence-machine.js';

export type PresenceSnapshot = SnapshotFrom<typeof presenceMachine>;

export interface SendResult {
  readonly before: UserRecord;
  readonly after: UserRecord;
  readonly outcome: StepOutcome;
}

export class PresenceActorSystem {
  private readonly actors = new Map<UserId, PresenceSnapshot>();
  private readonly scope: AnyActorScope;
  /**
   * Initial snapshots, computed by XState once per (local?, presence state);
   * see {@link PresenceActorSystem.spawn}. Index 1 holds local users.
   */
  private readonly initial: [Map<PresenceValue, PresenceSnapshot>, Map<PresenceValue, PresenceSnapshot>] = [new Map(), new Map()];

  constructor(private readonly rules: RuleConfig) {
    const self = createActor(presenceMachine, { input: { record: undefined as never, isMine: true, rules } });
    this.scope = {
      self,
      id: 'presence-actor-system',
      sessionId: 'presence-actor-system',
      logger: () => {},
      defer: () => {},
      emit: () => {},
      stopChild: () => {},
      system: self.system,
      actionExecutor: () => {},
    } as unknown as AnyActorScope;
  }

  /** Number of live actors. */
  get size(): number {
    return this.actors.size;
  }

  has(userId: UserId): boolean {
    return this.actors.has(userId);
  }

  snapshot(userId: UserId): PresenceSnapshot | undefined {
    return this.actors.get(userId);
  }

  /** The record held by a live actor. */
  record(userId: UserId): UserRecord | undefined {
    return this.actors.get(userId)?.context.record;
  }

  /**
   * Start an actor for a user from their current record (or the default).
   *
   * A new actor's snapshot depends on the record only through `isMine` and
   * `record.presence.state`: starting the machine (init → local/remote → the
   * leaf matching the presence) evaluates guards on those two and runs no
   * actions. So `getInitialSnapshot` (about 15 µs) runs once per combination,
   * and each actor gets that snapshot with its own context. Sharing the
   * snapshot's other parts (`value`, `_nodes`, `tags`, …) between actors is
   * safe because XState never mutates a snapshot (it already shares `_nodes`
   * and `historyValue` between one actor's successive snapshots). Replay spawns every
   * non-dormant user, so this is most of its start-up cost otherwise. A unit
   * test checks the result equals `getInitialSnapshot` for any record.
   */
  spawn(userId: UserId, isMine: boolean, record: UserRecord): PresenceSnapshot {
    const byState = this.initial[isMine ? 1 : 0];
    let template = byState.get(record.presence.state);
    if (template === undefined) {
      template = presenceMachine.getInitialSnapshot(this.scope, { record, isMine, rules: this.rules }) as PresenceSnapshot;
      byState.set(record.presence.state, template);
    }
    const snap: PresenceSnapshot = { ...template, context: { ...template.context, record } };
    this.actors.set(userId, snap);
    return snap;
  }

  /** Deliver one event to a user's actor, spawning it from `restore` when absent. */
  send(userId: UserId, isMine: boolean, restore: () => UserRecord, event: PresenceMachineEvent): SendResult {
    const current = this.actors.get(userId) ?? this.spawn(userId, isMine, restore());
    const next = presenceMachine.transition(current, event, this.scope) as PresenceSnapshot;
    this.actors.set(userId, next);
    return { before: current.context.record, after: next.context.record, outcome: next.context.outcome };
  }

  /** Stop a user's actor (they became dormant); returns the final record. */
  release(userId: UserId): UserRecord | undefined {
    const snap = this.actors.get(userId);
    this.actors.delete(userId);
    return snap?.context.record;
  }

  entries(): IterableIterator<[UserId, PresenceSnapshot]> {
    return this.actors.entries();
  }

  clear(): void {
    this.actors.clear();
  }
}
