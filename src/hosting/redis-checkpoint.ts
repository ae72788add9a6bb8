/**
 * One partition's state as log entries: the checkpoint a distributed process
 * writes when it compacts a partition it owns, and the corrections that make
 * a process's view of a partition equal to a fold of its stream (after the
 * process lost the partition, or on another process's checkpoint).
 */
import type { PresenceEvent, UserStepEvent } from '../domain/events.js';
import { diffRecords } from '../domain/evolve.js';
import type { RoomId, UserId } from '../domain/ids.js';
import { defaultRecord, type UserRecord } from '../domain/presence.js';
import type { EngineSnapshot } from '../domain/snapshot.js';
import type { Redis } from 'ioredis';
import type { RedisPartitionedLog } from '../log/redis-log.js';
import { partitionOf, type Checkpoint } from '../log/redis-partitions.js';
import type { PartitionFold } from '../log/redis-replicator.js';

/** The full records and joined rooms of partition `p`'s users in `snap`. */
export function partitionCheckpoint(snap: EngineSnapshot, p: number, partitions: number, now: number): Checkpoint {
  const records: [UserId, UserStepEvent][] = [];
  for (const [id, record] of snap.users) {
    if (partitionOf(id, partitions) !== p) continue;
    const step = diffRecords(id, defaultRecord(id), record, now);
    if (step !== null) records.push([id, step]);
  }
  const joined: [RoomId, UserId[]][] = [];
  for (const [roomId, members] of snap.rooms) {
    const mine = members.filter((m) => partitionOf(m, partitions) === p);
    if (mine.length > 0) joined.push([roomId, mine]);
  }
  return { records, joined };
}

/** Events that turn partition `p` of the view `snap` (records read by `recordOf`) into `fold`. */
export function correctionsTo(fold: PartitionFold, snap: EngineSnapshot, p: number, partitions: number, recordOf: (id: UserId) => UserRecord, now: number): PresenceEvent[] {
  const users = new Set<UserId>(fold.records.keys());
  for (const [id] of snap.users) if (partitionOf(id, partitions) === p) users.add(id);
  const events: PresenceEvent[] = [];
  for (const id of users) {
    const d = diffRecords(id, recordOf(id), fold.records.get(id) ?? defaultRecord(id), now);
    // A presence correction is notified (it wakes local streams, like any change).
    if (d !== null) events.push(d.presence !== undefined ? { ...d, streamId: 0 } : d);
  }
  const current = new Map<RoomId, Set<UserId>>();
  for (const [roomId, members] of snap.rooms) {
    const mine = members.filter((m) => partitionOf(m, partitions) === p);
    if (mine.length > 0) current.set(roomId, new Set(mine));
  }
  for (const [roomId, members] of current) {
    for (const m of members) if (!fold.joined.get(roomId)?.has(m)) events.push({ type: 'room.membership', roomId, userId: m, membership: 'leave', at: now });
  }
  for (const [roomId, members] of fold.joined) {
    for (const m of members) if (!current.get(roomId)?.has(m)) events.push({ type: 'room.membership', roomId, userId: m, membership: 'join', at: now });
  }
  return events;
}

/**
 * Append `checkpoint` to partition `p` (ordered after everything logged so
 * far), then trim every entry before it (`XTRIM MINID`). Resolves with the
 * checkpoint's stream id and the number of entries trimmed.
 */
export function appendAndTrim(
  log: RedisPartitionedLog,
  redis: Redis,
  stream: string,
  p: number,
  checkpoint: Checkpoint,
  notOwner: () => Error,
): Promise<{ id: string; trimmed: number }> {
  return new Promise((resolve, reject) => {
    const queued = log.appendCheckpoint(p, JSON.stringify({ checkpoint }), (id) => {
      redis.xtrim(stream, 'MINID', id).then(
        (trimmed) => resolve({ id, trimmed }),
        (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
      );
    });
    if (!queued) reject(notOwner());
  });
}
