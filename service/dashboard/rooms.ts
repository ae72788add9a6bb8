/**
 * Top rooms by wake-ups over the last minute. Each notified change of a user
 * counts once for every room the user is in, weighted by the room's other
 * members: the sync streams it can wake. The engine does not expose how many
 * of them were listening (docs/service.md), so this is an upper bound.
 */
import type { PresenceEngine, RoomId, UserId } from '../../src/index.js';
import type { RoomRow } from './frame.js';

interface Counts {
  changes: number;
  wakeups: number;
}

export class RoomWindow {
  private readonly buckets: Map<RoomId, Counts>[] = [];
  private current = new Map<RoomId, Counts>();
  private readonly totals = new Map<RoomId, Counts>();
  private readonly memberCounts = new Map<RoomId, number>();

  constructor(
    private readonly engine: PresenceEngine,
    private readonly seconds = 60,
  ) {}

  /** Membership of `roomId` changed: re-read its size when next needed. */
  membershipChanged(roomId: RoomId): void {
    this.memberCounts.delete(roomId);
  }

  /** A notified change of `userId`, standing for `weight` changes (the collector samples at high rates). */
  changed(userId: UserId, weight = 1): void {
    for (const roomId of this.engine.getRoomsForUser(userId)) {
      let c = this.current.get(roomId);
      if (c === undefined) this.current.set(roomId, (c = { changes: 0, wakeups: 0 }));
      c.changes += weight;
      c.wakeups += weight * Math.max(0, this.members(roomId) - 1);
    }
  }

  /** Close the current second; returns the top `n` rooms of the window. */
  tick(n: number): RoomRow[] {
    const closed = this.current;
    this.current = new Map();
    this.buckets.push(closed);
    this.add(closed, 1);
    if (this.buckets.length > this.seconds) this.add(this.buckets.shift() as Map<RoomId, Counts>, -1);
    const rows: RoomRow[] = [];
    for (const [roomId, c] of this.totals) rows.push({ roomId, members: this.members(roomId), changes: c.changes, wakeups: c.wakeups });
    rows.sort((a, b) => b.wakeups - a.wakeups || b.changes - a.changes);
    return rows.slice(0, n);
  }

  private add(bucket: Map<RoomId, Counts>, sign: 1 | -1): void {
    for (const [roomId, c] of bucket) {
      let t = this.totals.get(roomId);
      if (t === undefined) this.totals.set(roomId, (t = { changes: 0, wakeups: 0 }));
      t.changes += sign * c.changes;
      t.wakeups += sign * c.wakeups;
      if (t.changes <= 0) this.totals.delete(roomId);
    }
  }

  private members(roomId: RoomId): number {
    let m = this.memberCounts.get(roomId);
    if (m === undefined) {
      m = this.engine.getRoomMembers(roomId).length;
      this.memberCounts.set(roomId, m);
    }
    return m;
  }
}
