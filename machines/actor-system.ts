/**
 * Per-user actors for the presence machine, kept in our own index (never as
 * children of one parent: XState spawning slows down quadratically there).
 *
 * An actor here is the user's machine snapshot plus the user's current record:
 * `send` advances the snapshot with `machine.transition` over one reused actor
 * scope. That is XState's own pure transition (the same guards, actions and
 * eventless transitions a `createActor` runs), without the ~3.6 KB and the
 * observer machinery of a full `Actor` object per user (architecture guide,
 * performance traps). Actors exist only for users who are not dormant (offline
 * with no devices and no open syncs); dormant users are compact records kept by
 * the engine, or nothing at all when they have the default state.
 *
 * Transition shortcut. Most inputs keep a user in the same presence state (an
 * activity bump while online, a second device syncing, a timer that finds
 * nothing due). For those the machine's whole transition is "run the named
 * action, then find no eventless transition to take": the snapshot's state
 * value cannot change. `send` therefore runs the named action (the same pure
 * function, looked up with `presenceStepFor` from the table the machine is
 * built from) and asks the interpreter only when the combined presence moves to
 * another leaf, which is when the machine has a transition to make. The
 * snapshot's context is then brought up to date first (a copy of the snapshot
 * with the current record: the state nodes are unchanged).
 * The record kept beside the snapshot is the authoritative one; the
 * snapshot's context catches up at the next transition. A property test
 * (test/property/actor-shortcut.test.ts) checks that records, outcomes and
 * state values equal those of running every event through the interpreter.
 */
import { createActor, type AnyActorScope, type SnapshotFrom } from 'xstate';
import type { UserId } from '../src/domain/ids.js';
import type { PresenceValue, RuleConfig, UserRecord } from '../src/domain/presence.js';
import {
  NO_CHANGE,
  presenceMachine,
  presenceStepFor,
  type PresenceMachineContext,
  type PresenceMachineEvent,
  type StepOutcome,
} from './presence-machine.js';

export type PresenceSnapshot = SnapshotFrom<typeof presenceMachine>;

export interface SendResult {
  readonly before: UserRecord;
  readonly after: UserRecord;
  readonly outcome: StepOutcome;
}

/** One live actor: the machine snapshot (its state value is the user's presence state) and the current record. */
interface PresenceActor {
  snapshot: PresenceSnapshot;
  record: UserRecord;
  readonly isMine: boolean;
}

/** The leaf of a snapshot value such as `{ local: 'online' }`. */
function leafOf(snapshot: PresenceSnapshot): string | undefined {
  const v = snapshot.value as unknown;
  if (typeof v !== 'object' || v === null) return undefined;
  const inner = (v as Record<string, unknown>)['local'] ?? (v as Record<string, unknown>)['remote'];
  return typeof inner === 'string' ? inner : undefined;
}

export interface ActorSystemOptions {
  /** Send every event through the interpreter (no shortcut): the reference behaviour, for tests. */
  readonly interpretEveryEvent?: boolean;
}

export class PresenceActorSystem {
  private readonly actors = new Map<UserId, PresenceActor>();
  private readonly scope: AnyActorScope;
  private readonly interpretAll: boolean;
  /** Reused context for running a named action outside the interpreter. */
  private readonly scratch: { record: UserRecord; isMine: boolean; rules: RuleConfig; outcome: StepOutcome };
  /**
   * Initial snapshots, computed by XState once per (local?, presence state);
   * see {@link PresenceActorSystem.start}. Index 1 holds local users.
   */
  private readonly initial: [Map<PresenceValue, PresenceSnapshot>, Map<PresenceValue, PresenceSnapshot>] = [new Map(), new Map()];
  /** Events delivered, how many of them the interpreter ran (the rest took the shortcut), and actors started. */
  readonly counts = { events: 0, interpreted: 0, spawned: 0 };

  constructor(
    private readonly rules: RuleConfig,
    options: ActorSystemOptions = {},
  ) {
    this.interpretAll = options.interpretEveryEvent === true;
    this.scratch = { record: undefined as unknown as UserRecord, isMine: true, rules, outcome: NO_CHANGE };
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

  /** The machine snapshot of a live actor (its context may lag behind {@link record}; its value never does). */
  snapshot(userId: UserId): PresenceSnapshot | undefined {
    return this.actors.get(userId)?.snapshot;
  }

  /** The record held by a live actor. */
  record(userId: UserId): UserRecord | undefined {
    return this.actors.get(userId)?.record;
  }

  /** Start an actor for a user from their current record (or the default). */
  spawn(userId: UserId, isMine: boolean, record: UserRecord): PresenceSnapshot {
    return this.start(userId, isMine, record).snapshot;
  }

  /**
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
  private start(userId: UserId, isMine: boolean, record: UserRecord): PresenceActor {
    const byState = this.initial[isMine ? 1 : 0];
    let template = byState.get(record.presence.state);
    if (template === undefined) {
      template = presenceMachine.getInitialSnapshot(this.scope, { record, isMine, rules: this.rules }) as PresenceSnapshot;
      byState.set(record.presence.state, template);
    }
    const snapshot: PresenceSnapshot = { ...template, context: { ...template.context, record } };
    this.counts.spawned++;
    const actor: PresenceActor = { snapshot, record, isMine };
    this.actors.set(userId, actor);
    return actor;
  }

  /** Deliver one event to a user's actor, spawning it from `restore` when absent. */
  send(userId: UserId, isMine: boolean, restore: () => UserRecord, event: PresenceMachineEvent): SendResult {
    const actor = this.actors.get(userId) ?? this.start(userId, isMine, restore());
    const before = actor.record;
    this.counts.events++;
    const step = presenceStepFor(actor.isMine, event.type);
    // The region ignores this event: nothing happens (the context's `outcome` still describes the previous event).
    if (step === undefined) return { before, after: before, outcome: NO_CHANGE };
    if (!this.interpretAll) {
      const ctx = this.scratch;
      ctx.record = before;
      ctx.isMine = actor.isMine;
      const patch = step(ctx as PresenceMachineContext, event);
      const after = patch.record ?? before;
      if (after.presence.state === leafOf(actor.snapshot)) {
        actor.record = after;
        return { before, after, outcome: patch.outcome ?? NO_CHANGE };
      }
    }
    this.counts.interpreted++;
    let current = actor.snapshot;
    if (current.context.record !== before) {
      // Same state nodes, newer context: what XState's own snapshot cloning does. A
      // plain copy costs ~0.05 µs where `machine.resolveState` re-resolves the
      // state value (~3 µs); the shortcut property test guards the equivalence.
      current = { ...current, context: { ...current.context, record: before } };
    }
    const next = presenceMachine.transition(current, event, this.scope) as PresenceSnapshot;
    actor.snapshot = next;
    actor.record = next.context.record;
    return { before, after: next.context.record, outcome: next.context.outcome };
  }

  /** Stop a user's actor (they became dormant); returns the final record. */
  release(userId: UserId): UserRecord | undefined {
    const actor = this.actors.get(userId);
    this.actors.delete(userId);
    return actor?.record;
  }

  /** Live users and their current records. */
  *records(): IterableIterator<[UserId, UserRecord]> {
    for (const [id, actor] of this.actors) yield [id, actor.record];
  }

  clear(): void {
    this.actors.clear();
  }
}
