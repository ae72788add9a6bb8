/**
 * Large-room mode's rule (docs/policies.md): which rooms wake their listeners
 * with a rate-limited summary instead of once per change.
 */
import type { RoomId } from './ids.js';

export interface LargeRoomRule {
  /**
   * `summary`: a large room wakes its listeners with a summary at most once per interval;
   * `shared_rooms_only`: a large room shares no presence (members see each other only through other rooms).
   */
  readonly mode: 'summary' | 'shared_rooms_only';
  readonly memberThreshold: number;
  /** At most one summary batch per room per interval. */
  readonly intervalMs: number;
  /** Per-room choice: true = always summarised, false = never; absent = by member count. */
  readonly rooms: ReadonlyMap<RoomId, boolean>;
}

export function isLargeRoom(rule: LargeRoomRule, roomId: RoomId, members: number): boolean {
  return rule.rooms.get(roomId) ?? members >= rule.memberThreshold;
}
