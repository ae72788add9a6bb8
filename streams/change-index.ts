/**
 * Recent changes in stream order, for incremental sync: a fixed-capacity ring
 * of (stream id, user, room) entries. `room >= 0` marks "user joined room".
 * Older positions are forgotten; asking about them answers `'unknown'` and the
 * caller falls back to a full answer (decisions.md).
 */
export class ChangeIndex {
  private readonly streamIds: Float64Array;
  private readonly users: Int32Array;
  private readonly rooms: Int32Array;
  private start = 0; // ring index of the oldest entry
  private count = 0;
  /** Every change with stream id > `floor` is known. */
  private floor: number;

  constructor(readonly capacity: number, initialStreamId = 0) {
    this.streamIds = new Float64Array(capacity);
    this.users = new Int32Array(capacity);
    this.rooms = new Int32Array(capacity);
    this.floor = initialStreamId;
  }

  add(streamId: number, user: number, room = -1): void {
    const cap = this.capacity;
    if (this.count === cap) {
      this.floor = this.streamIds[this.start] as number;
      this.start = (this.start + 1) % cap;
      this.count--;
    }
    const i = (this.start + this.count) % cap;
    this.streamIds[i] = streamId;
    this.users[i] = user;
    this.rooms[i] = room;
    this.count++;
  }

  /** Can changes after `since` be listed? */
  covers(since: number): boolean {
    return since >= this.floor;
  }

  /**
   * Visit every entry with stream id > `since`, oldest first.
   * @returns false when `since` is older than what the index remembers.
   */
  forEachSince(since: number, visit: (user: number, room: number, streamId: number) => void): boolean {
    const first = this.firstAfter(since);
    if (first < 0) return false;
    for (let k = first; k < this.count; k++) {
      const i = this.slot(k);
      visit(this.users[i] as number, this.rooms[i] as number, this.streamIds[i] as number);
    }
    return true;
  }

  /**
   * Position of the first entry with stream id > `since` (positions count from
   * the oldest remembered entry, 0, to `length - 1`), or -1 when `since` is older
   * than what the index remembers. A loop over positions with `userAt`/`roomAt`
   * reads what `forEachSince` visits, without a callback per entry.
   */
  firstAfter(since: number): number {
    if (since < this.floor) return -1;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.streamIds[this.slot(mid)] as number) > since) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Number of remembered entries (positions 0 to `length - 1`). */
  get length(): number {
    return this.count;
  }

  /** User of the entry at `position` (see `firstAfter`). */
  userAt(position: number): number {
    return this.users[this.slot(position)] as number;
  }

  /** Room of the entry at `position` (see `firstAfter`): >= 0 for "user joined room", -1 for a presence change. */
  roomAt(position: number): number {
    return this.rooms[this.slot(position)] as number;
  }

  private slot(position: number): number {
    const i = this.start + position;
    return i < this.capacity ? i : i - this.capacity;
  }
}
