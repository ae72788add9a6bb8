/**
 * Top rooms by wake-ups over the last minute, from the engine's push fan-out:
 * while the dashboard runs, the fan-out counts per room the sync streams each
 * turn's changes woke (and the changed members), and each tick takes the
 * second's counts (`roomWakeups`, streams/push-fanout.ts).
 */
import type { PresenceEngine, RoomId, RoomWakeupCount, RoomWakeups } from '../../src/index.js';
import type { RoomRow } from './frame.js';

/** The engine's opt-in wake-up counter. */
function roomWakeupsOf(engine: PresenceEngine): RoomWakeups {
  return engine.roomWakeups;
}

interface Counts {
  changes: number;
  wakeups: number;
}

export class RoomWindow {
  private readonly buckets: ReadonlyMap<RoomId, RoomWakeupCount>[] = [];
  private readonly totals = new Map<RoomId, Counts>();
  private readonly memberCounts = new Map<RoomId, number>();
  private readonly wakeups: RoomWakeups;

  constructor(
    private readonly engine: PresenceEngine,
    private readonly seconds = 60,
  ) {
    this.wakeups = roomWakeupsOf(engine);
  }

  start(): void {
    this.wakeups.count(true);
  }

  stop(): void {
    this.wakeups.count(false);
  }

  /** Membership of `roomId` changed: re-read its size when next needed. */
  membershipChanged(roomId: RoomId): void {
    this.memberCounts.delete(roomId);
  }

  /** Close the current second; returns the top `n` rooms of the window. */
  tick(n: number): RoomRow[] {
    const closed = this.wakeups.take();
    this.buckets.push(closed);
    this.add(closed, 1);
    if (this.buckets.length > this.seconds) this.add(this.buckets.shift() as ReadonlyMap<RoomId, RoomWakeupCount>, -1);
    const rows: RoomRow[] = [];
    for (const [roomId, c] of this.totals) rows.push({ roomId, members: 0, changes: c.changes, wakeups: c.wakeups });
    rows.sort((a, b) => b.wakeups - a.wakeups || b.changes - a.changes);
    return rows.slice(0, n).map((r) => ({ ...r, members: this.members(r.roomId as RoomId) }));
  }

  private add(bucket: ReadonlyMap<RoomId, RoomWakeupCount>, sign: 1 | -1): void {
    for (const [roomId, c] of bucket) {
      let t = this.totals.get(roomId);
      if (t === undefined) this.totals.set(roomId, (t = { changes: 0, wakeups: 0 }));
      t.changes += sign * c.changes;
      t.wakeups += sign * c.wakeups;
      if (t.wakeups <= 0) this.totals.delete(roomId);
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
