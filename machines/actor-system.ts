/**
 * Per-user actors for the presence machine, kept in our own index (never as
 * children of one parent: XState spawning slows down quadratically there).
 *
 * An actor here is the user's machine snapshot plus the user's current record,
 * the outcome of their last event and their leaf state. It is not a full XState
 * `Actor` object (about 3.6 KB and observer machinery per user; architecture
 * guide, performance traps). Actors exist only for users who are not dormant
 * (offline with no devices and no open syncs); dormant users are compact
 * records kept by the engine, or nothing at all when they have the default
 * state.
 *
 * How an event is applied (the compiled path). The machine
 * (`presence-machine.ts`) has one shape: a region per origin (`local`,
 * `remote`) whose events each run one named action, and leaf states that
 * follow the combined presence through guarded eventless transitions
 * (`presenceIs(s)` → `s`). So a transition is always "run the named action,
 * then settle in the leaf named by the new record's presence". `send` does
 * exactly that: it runs the named action, looked up with `presenceStepFor` in
 * the handler table the machine's `on` is built from, and when the presence
 * moved it switches the actor to the snapshot XState itself computed for that
 * leaf (`getInitialSnapshot`, once per region and leaf, see `start`). The
 * snapshot's context is brought up to date when someone reads it
 * ({@link PresenceActorSystem.snapshot}), so a step allocates nothing beyond
 * the rules' new record. XState's interpreter (`machine.transition`: about
 * 15–20 µs and 13 KB of garbage per state change, measured) is therefore not on
 * the hot path; `interpretEveryEvent` runs it for every event instead, and a
 * property test (test/property/actor-shortcut.test.ts) checks that both give
 * equal snapshots (value, context and all), records and outcomes for any
 * sequence of events. A change to the machine's shape must keep that test
 * green, or extend this path.
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
  private readonly scope: AnyActorScope;
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
   * `record.presence.state`: starting the machine (init → local/remote → the
   * leaf matching the presence) evaluates guards on those two and runs no
   * actions. So `getInitialSnapshot` (about 15 µs) runs once per combination,
   * and each actor starts with that snapshot (its context is filled in when
   * read). Sharing the snapshot's other parts (`value`, `_nodes`, `tags`, …)
   * between actors is safe because XState never mutates a snapshot (it already
   * shares `_nodes` and `historyValue` between one actor's successive
   * snapshots). The same snapshots serve as the target of every change of
   * leaf: the property test checks they equal what `machine.transition` gives.
   * Replay spawns every non-dormant user, so this is most of its start-up cost
   * otherwise. A unit test checks a spawned actor's snapshot equals
   * `getInitialSnapshot` for any record.
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
      template = presenceMachine.getInitialSnapshot(this.scope, { record, isMine, rules: this.rules }) as PresenceSnapshot;
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

  /** The reference path: XState's `machine.transition` on the actor's up-to-date snapshot. */
  private interpret(actor: PresenceActor, event: PresenceMachineEvent): SendResult {
    const before = actor.record;
    this.counts.interpreted++;
    const next = presenceMachine.transition(this.current(actor), event, this.scope) as PresenceSnapshot;
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
