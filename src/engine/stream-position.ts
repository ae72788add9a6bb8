/**
 * The presence stream position: the id of the latest notified change, join or
 * full-presence request. Stream tokens handed to readers are these ids.
 */
export class StreamPosition {
  constructor(private current = 0) {}

  get id(): number {
    return this.current;
  }

  /** The id of a new stream entry. */
  next(): number {
    return ++this.current;
  }

  /** Replayed or replicated entries carry their own ids: never go back. */
  advanceTo(id: number): void {
    if (id > this.current) this.current = id;
  }
}
