/**
 * Large-room mode (docs/policies.md): a room at or above `memberThreshold`
 * members (or named in `rooms`) wakes its listeners with a summary at most
 * once per `intervalMs` instead of once per turn. The push fan-out holds the
 * room's changed members (streams/push-fanout.ts `SummaryRooms`); this part
 * arms one timer per room with held changes and runs the summary as a turn of
 * its own, whose flush reads every held member's current state. Pulls and
 * federation are not changed: they cost no wake-ups of room members.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { isLargeRoom, type LargeRoomRule } from '../domain/large-room.js';
import type { PushFanOut, PushRoom, SummaryRooms } from '../../streams/push-fanout.js';

export interface LargeRoomStats {
  /** Summary batches delivered (one per room per interval at most). */
  summaries: number;
}

export class LargeRooms implements SummaryRooms {
  readonly stats: LargeRoomStats = { summaries: 0 };
  private readonly timers = new Map<number, TimerHandle>();
  private readonly last = new Map<number, number>();

  constructor(
    private readonly rule: LargeRoomRule,
    private readonly clock: Clock,
    private readonly push: PushFanOut,
    private readonly run: (job: () => void) => void,
  ) {}

  isSummary(room: PushRoom): boolean {
    return isLargeRoom(this.rule, room.id, room.members.size);
  }

  pending(room: number): void {
    if (this.timers.has(room)) return;
    const last = this.last.get(room);
    const delay = last === undefined ? 0 : Math.max(0, last + this.rule.intervalMs - this.clock.now());
    this.timers.set(
      room,
      this.clock.setTimer(delay, () => {
        this.timers.delete(room);
        this.run(() => {
          this.last.set(room, this.clock.now());
          this.stats.summaries++;
          this.push.summaryDue(room);
        });
      }),
    );
  }

  stop(): void {
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
  }
}
