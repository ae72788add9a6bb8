/**
 * The service's record of room membership changes, so `/sync` can tell a
 * client which rooms it is in and who joined or left since its last sync.
 *
 * The engine's log is the source: every committed `room.membership` entry
 * (from the config's rooms, the admin API or a module) is appended here with a
 * position of its own. The journal lives in memory and keeps the newest
 * `retain` changes; it is numbered per process run (`epoch`), so a sync token
 * from before a restart, or older than what is kept, is answered with the
 * rooms' full current membership instead of the changes.
 */
import { randomBytes } from 'node:crypto';
import type { Observable, Subscription } from 'rxjs';
import type { PresenceEngine, PresenceEvent, RoomId, UserId } from '../src/index.js';

export type Membership = 'join' | 'leave' | 'ban';

export interface MembershipChange {
  /** 1, 2, 3, … within this journal's epoch. */
  readonly pos: number;
  readonly roomId: RoomId;
  readonly userId: UserId;
  readonly membership: Membership;
  /** Engine clock time of the change (ms). */
  readonly at: number;
}

const DEFAULT_RETAIN = 50_000;

export class MembershipJournal {
  /** Names this run's positions: tokens carry it, and one from another run means "position unknown". */
  readonly epoch: string = randomBytes(6).toString('hex');
  private readonly changes: MembershipChange[] = [];
  private firstPos = 1;
  private lastPos = 0;
  private readonly listeners = new Set<(change: MembershipChange) => void>();
  private readonly subscription: Subscription;

  /**
   * @param replicated distributed mode: the events this process applied from the
   *   other processes (RedisPresenceNode `onReplicated`); `committed$` has only its own.
   */
  constructor(engine: PresenceEngine, private readonly retain = DEFAULT_RETAIN, replicated?: Observable<readonly PresenceEvent[]>) {
    this.subscription = engine.committed$.subscribe((entries) => {
      for (const { event } of entries) this.record(event);
    });
    if (replicated !== undefined) this.subscription.add(replicated.subscribe((events) => events.forEach((e) => this.record(e))));
  }

  private record(event: PresenceEvent): void {
    if (event.type !== 'room.membership') return;
    const change: MembershipChange = { pos: ++this.lastPos, roomId: event.roomId, userId: event.userId, membership: event.membership, at: event.at };
    this.changes.push(change);
    if (this.changes.length > this.retain * 2) {
      // Drop in halves so trimming is amortised O(1) per change.
      const drop = this.changes.length - this.retain;
      this.changes.splice(0, drop);
      this.firstPos += drop;
    }
    for (const listener of this.listeners) listener(change);
  }

  /** The position of the newest change (0 before any). */
  get position(): number {
    return this.lastPos;
  }

  /**
   * The changes after `pos` of this epoch, oldest first; `undefined` when the
   * journal cannot answer (another epoch, a position it never had, or changes
   * it no longer keeps).
   */
  since(epoch: string, pos: number): readonly MembershipChange[] | undefined {
    if (epoch !== this.epoch || pos > this.lastPos || pos < this.firstPos - 1) return undefined;
    return this.changes.slice(pos - this.firstPos + 1);
  }

  /** Call `listener` for every new change; returns the unsubscribe function. */
  onChange(listener: (change: MembershipChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.subscription.unsubscribe();
    this.listeners.clear();
  }
}
