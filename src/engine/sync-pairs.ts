/**
 * Streamed syncs (`ingest`): a `sync.start` and its `sync.end` are paired by
 * (user, sync id); the handle of each open streamed sync is kept here.
 */
import type { UserId } from '../domain/ids.js';
import { InvalidInputError } from '../errors.js';
import type { SyncHandle } from './types.js';

export class SyncPairs {
  private readonly open = new Map<string, SyncHandle>();

  /** Start sync `syncId` of `userId` with `start`. @throws InvalidInputError when that sync is already open. */
  start(userId: UserId, syncId: string, start: () => SyncHandle): void {
    const key = `${userId}\u0000${syncId}`;
    if (this.open.has(key)) throw new InvalidInputError('syncId', `sync ${syncId} of ${userId} is already open`);
    this.open.set(key, start());
  }

  /** End sync `syncId` of `userId`. @throws InvalidInputError when no such sync is open. */
  end(userId: UserId, syncId: string): void {
    const key = `${userId}\u0000${syncId}`;
    const handle = this.open.get(key);
    if (handle === undefined) throw new InvalidInputError('syncId', `no open sync ${syncId} for ${userId}`);
    this.open.delete(key);
    handle.end();
  }
}
