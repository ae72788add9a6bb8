/**
 * Per-user actors for the presence machine, kept in our own index (never as
 * children of one parent). An actor here is the user's machine snapshot plus
 * their current record, the outcome of their last event and their leaf state,
 * not a full XState `Actor` object (whose per-actor overhead would not fit the
 * memory budget of an online user). Dormant users (offline, no devices, no
 * syncs) have no actor.
 *
 * The machine (`presence-machine.ts`) defines every step: a region per origin
 * whose events each run one named action, and leaf states that follow the
 * combined presence through guarded eventless transitions. With
 * `interpretEveryEvent`, every event runs through XState's pure `transition`.
 * By default a compiled path applies the same definition: it runs the named
 * action (looked up with `presenceStepFor` in the table the machine's `on` is
 * built from) and, when the presence moved, switches the actor to the snapshot
 * XState's `initialTransition` computed for that leaf. A property test
 * (test/property/actor-shortcut.test.ts) pins the compiled path to the
 * interpreted machine: equal snapshots, records and outcomes for any sequence
 * of events. A change to the machine's shape must keep that test green.
 */
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
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

/**
 * One live actor. `snapshot` is XState's snapshot of the actor's leaf; its
 * context is current only when `snapshot.context.record === record` and its
 * outcome is `outcome` (otherwise {@link PresenceActorSystem.snapshot} brings
 * it up to date on read). `leaf` is the leaf state, which always equals
 * `record.presence.state`.
 */
interface PresenceActor {
  snapshot: PresenceSnapshot;
  record: UserRecord;
  outcome: StepOutcome;
  leaf: PresenceValue;
  readonly isMine: boolean;
}

export interface ActorSystemOptions {
  /** Send every event through XState's interpreter instead of the compiled path: the reference behaviour, for tests. */
  readonly interpretEveryEvent?: boolean;
}

export class PresenceActorSystem {
  private readonly actors = new Map<UserId, PresenceActor>();
  private readonly interpretAll: boolean;
  /** Reused context for running a named action outside the interpreter. */
  private readonly scratch: { record: UserRecord; isMine: boolean; rules: RuleConfig; outcome: StepOutcome };
  /**
   * XState's snapshot of each leaf, computed once per (local?, presence state)
   * and shared by every actor in that leaf; see {@link PresenceActorSystem.start}.
   * Index 1 holds local users.
   */
  private readonly initial: [Map<PresenceValue, PresenceSnapshot>, Map<PresenceValue, PresenceSnapshot>] = [new Map(), new Map()];
  /** Events delivered, how many of them the interpreter ran (only with `interpretEveryEvent`), and actors started. */
  readonly counts = { events: 0, interpreted: 0, spawned: 0 };

  constructor(
    private readonly rules: RuleConfig,
    options: ActorSystemOptions = {},
  ) {
    this.interpretAll = options.interpretEveryEvent === true;
    this.scratch = { record: undefined as unknown as UserRecord, isMine: true, rules, outcome: NO_CHANGE };
  }

  /** Number of live actors. */
  get size(): number {
    return this.actors.size;
  }

  has(userId: UserId): boolean {
    return this.actors.has(userId);
  }

  /** The machine snapshot of a live actor, with its context up to date. */
  snapshot(userId: UserId): PresenceSnapshot | undefined {
    const actor = this.actors.get(userId);
    return actor === undefined ? undefined : this.current(actor);
  }

  /** The actor's snapshot with the current record and outcome in its context (made, and kept, on demand). */
  private current(actor: PresenceActor): PresenceSnapshot {
    const s = actor.snapshot;
    if (s.context.record === actor.record && s.context.outcome === actor.outcome) return s;
    // Same state nodes, newer context: what XState's own snapshot cloning does (a
    // plain copy; `machine.resolveState` would re-resolve the state value).
    const context: PresenceMachineContext = { record: actor.record, isMine: actor.isMine, rules: this.rules, outcome: actor.outcome };
    actor.snapshot = { ...s, context };
    return actor.snapshot;
  }

  /** The record held by a live actor. */
  record(userId: UserId): UserRecord | undefined {
    return this.actors.get(userId)?.record;
  }

  /** Start an actor for a user from their current record (or the default). */
  spawn(userId: UserId, isMine: boolean, record: UserRecord): void {
    this.start(userId, isMine, record);
  }

  /**
   * A new actor's snapshot depends on the record only through `isMine` and
   * `record.presence.state` (starting the machine evaluates guards on those
   * two and runs no actions), so `initialTransition` runs once per
   * combination and actors share its snapshot; their context is filled in
   * when read. Sharing is safe because XState never mutates a snapshot. The
   * same snapshots are the target of every change of leaf (property-tested).
   */
  private start(userId: UserId, isMine: boolean, record: UserRecord): PresenceActor {
    const leaf = record.presence.state;
    this.counts.spawned++;
    const actor: PresenceActor = { snapshot: this.leafSnapshot(isMine, leaf, record), record, outcome: NO_CHANGE, leaf, isMine };
    this.actors.set(userId, actor);
    return actor;
  }

  /** XState's snapshot of the machine settled in `leaf` of the local or remote region. */
  private leafSnapshot(isMine: boolean, leaf: PresenceValue, record: UserRecord): PresenceSnapshot {
    const byState = this.initial[isMine ? 1 : 0];
    let template = byState.get(leaf);
    if (template === undefined) {
      [template] = initialTransition(presenceMachine, { record, isMine, rules: this.rules });
      byState.set(leaf, template);
    }
    return template;
  }

  /**
   * Deliver one event to a user's actor, spawning it from `restore(userId)` when
   * absent (one function for every user: no closure per event).
   */
  send(userId: UserId, isMine: boolean, restore: (userId: UserId) => UserRecord, event: PresenceMachineEvent): SendResult {
    const actor = this.actors.get(userId) ?? this.start(userId, isMine, restore(userId));
    const before = actor.record;
    this.counts.events++;
    const step = presenceStepFor(actor.isMine, event.type);
    // The region ignores this event: nothing happens (the context's `outcome` still describes the previous event).
    if (step === undefined) return { before, after: before, outcome: NO_CHANGE };
    if (this.interpretAll) return this.interpret(actor, event);
    const ctx = this.scratch;
    ctx.record = before;
    ctx.isMine = actor.isMine;
    const patch = step(ctx as PresenceMachineContext, event);
    const after = patch.record ?? before;
    const outcome = patch.outcome ?? actor.outcome;
    actor.record = after;
    actor.outcome = outcome;
    const leaf = after.presence.state;
    if (leaf !== actor.leaf) {
      // the machine's eventless transitions settle in the leaf of the new presence
      actor.leaf = leaf;
      actor.snapshot = this.leafSnapshot(actor.isMine, leaf, after);
    }
    return { before, after, outcome };
  }

  /** The reference path: XState's pure `transition` on the actor's up-to-date snapshot. */
  private interpret(actor: PresenceActor, event: PresenceMachineEvent): SendResult {
    const before = actor.record;
    this.counts.interpreted++;
    const [next] = transition(presenceMachine, this.current(actor), event);
    actor.snapshot = next;
    actor.record = next.context.record;
    actor.outcome = next.context.outcome;
    actor.leaf = actor.record.presence.state;
    return { before, after: actor.record, outcome: actor.outcome };
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
