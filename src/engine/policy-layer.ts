/**
 * The policy layer (docs/policies.md) as one part of the engine: per-user
 * visibility policies and their inputs, modules' `getVisibility` callbacks,
 * flap damping and large-room summary mode. The facade hands the delivery
 * paths `visibility` and a turn's changes to {@link PolicyLayer.deliverChanges};
 * each piece exists only when configured (or, for callbacks, registered).
 */
import type { PushFanOut } from '../../streams/push-fanout.js';
import type { ChangeIndex } from '../../streams/change-index.js';
import type { Clock } from '../clock.js';
import type { PresenceConfig } from '../config.js';
import type { PresenceEvent } from '../domain/events.js';
import type { UserId } from '../domain/ids.js';
import type { PresencePolicy } from '../domain/policy.js';
import type { GetVisibility, PresenceRouter } from '../router/presence-router.js';
import { Damping, explicitUsers, type DampingStats } from './damping.js';
import { LargeRooms, type LargeRoomStats } from './large-rooms.js';
import { OperatorVisibility } from './operator-visibility.js';
import { PolicyInputs } from './policies.js';
import type { StreamPosition } from './stream-position.js';
import type { TurnBuffer } from './turn-buffer.js';
import type { UserDirectory } from './user-directory.js';
import { Visibility } from './visibility.js';

export interface PolicyLayerHost {
  readonly config: PresenceConfig;
  readonly clock: Clock;
  readonly users: UserDirectory;
  readonly changes: ChangeIndex;
  readonly stream: StreamPosition;
  readonly turn: TurnBuffer;
  readonly push: PushFanOut;
  readonly router: PresenceRouter;
  /** Run a job as a turn of its own. */
  run(job: () => void): void;
  owned(userId: UserId): boolean;
  /** Offer user `idx`'s current state to their own streams only (a change damping holds from others). */
  offerOwn(idx: number): void;
  /** A `getVisibility` answer arrived late and said "visible": tell that viewer (a user id or a server name) now. */
  visibleLater(viewer: string, target: UserId): void;
}

export class PolicyLayer {
  /** Visibility policies; inactive until a user sets one or a module decides. */
  readonly visibility = new Visibility();
  readonly inputs: PolicyInputs;
  private operator: OperatorVisibility | undefined;
  private readonly largeRooms: LargeRooms | undefined;
  private readonly damping: Damping | undefined;

  constructor(private readonly host: PolicyLayerHost) {
    const { config, clock, users } = host;
    this.inputs = new PolicyInputs(this.visibility, users, host.changes, host.stream, host.turn);
    const large = config.largeRooms;
    this.largeRooms = large?.mode !== 'summary' ? undefined : new LargeRooms(large, clock, host.push, (job) => host.run(job));
    if (this.largeRooms !== undefined) host.push.setSummaryRooms(this.largeRooms);
    this.damping =
      config.damping === undefined
        ? undefined
        : new Damping(config.damping, clock, users, this.visibility, {
            run: (job) => host.run(job),
            notify: (idx) => this.inputs.notify(idx),
            addEvent: (e) => host.turn.addEvent(e),
            offerOwn: (idx) => host.offerOwn(idx),
            owned: (id) => host.owned(id),
          });
  }

  /** In a turn: set `userId`'s policy (logged and notified). */
  set(userId: UserId, policy: PresencePolicy): void {
    this.inputs.set(userId, policy, this.host.clock.now());
  }

  get(userId: UserId): PresencePolicy {
    return this.visibility.get(userId);
  }

  /** A module registered `getVisibility`: from now on every path consults the callbacks. */
  registerCallback(moduleName: string, getVisibility: GetVisibility): void {
    const host = this.host;
    host.router.registerVisibility(moduleName, getVisibility);
    this.operator ??= new OperatorVisibility(host.router, host.clock, host.config.visibilityCacheTtl, {
      isMine: (u) => host.users.isMine(u),
      visibleLater: (viewer, target) => host.visibleLater(viewer, target),
    });
    this.visibility.setOperator(this.operator);
  }

  /** Forget the callbacks' cached answers. */
  invalidate(): void {
    this.operator?.invalidate();
  }

  /** Deliver a turn's first `count` changed users, less those damping holds back. */
  deliverChanges(changed: readonly number[], count: number, events: readonly PresenceEvent[] | null, deliver: (changed: readonly number[], count: number) => void): void {
    if (this.damping === undefined) return deliver(changed, count);
    const shown = this.damping.filter(changed, count, explicitUsers(events));
    if (shown.count > 0) deliver(shown.changed, shown.count);
  }

  get dampingStats(): Readonly<DampingStats> | undefined {
    return this.damping?.stats;
  }

  get largeRoomStats(): Readonly<LargeRoomStats> | undefined {
    return this.largeRooms?.stats;
  }

  stop(): void {
    this.damping?.stop();
    this.largeRooms?.stop();
  }
}
