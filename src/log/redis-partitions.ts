/**
 * Distributed presence on Redis Streams (docs/distributed.md): partitioning,
 * key layout, the Lua scripts behind leases and fenced appends, and the entry
 * format. Everything here is shared by the writer ({@link RedisPartitionedLog}),
 * the reader ({@link RedisReplicator}), the leases and the node.
 */
import type { Redis } from 'ioredis';
import { LogError } from '../errors.js';
import type { PresenceEvent, UserStepEvent } from '../domain/events.js';
import type { RoomId, UserId } from '../domain/ids.js';

/**
 * The partition of a user id: FNV-1a (32 bit) over the id's UTF-16 code units,
 * modulo the partition count. Stable across processes and releases: changing it
 * (or the partition count) requires an empty Redis (docs/distributed.md).
 */
export function partitionOf(userId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/**
 * Key names. Each partition's keys share a Redis Cluster hash tag (`{prefix.pN}`),
 * so the Lua scripts touching a lease and a stream stay in one slot.
 */
export class RedisKeys {
  constructor(
    readonly prefix: string,
    readonly partitions: number,
  ) {}

  private tag(p: number): string {
    return `${this.prefix}:{${this.prefix}.p${p}}`;
  }

  /** The partition's event stream. */
  stream(p: number): string {
    return `${this.tag(p)}:log`;
  }

  /** The partition's writer lease: `<instance>/<epoch>`, with a TTL. */
  lease(p: number): string {
    return `${this.tag(p)}:lease`;
  }

  /** The partition's lease epoch counter (the fencing token source). */
  epoch(p: number): string {
    return `${this.tag(p)}:epoch`;
  }

  /** The partition's last appended entry: `<lease value> <sequence>` (makes a resent append idempotent). */
  last(p: number): string {
    return `${this.tag(p)}:last`;
  }

  /** The partition's copy of the deployment's generation (written when the generation starts; checked by every lease script). */
  gen(p: number): string {
    return `${this.tag(p)}:gen`;
  }

  /** A recovery seed of partition `p` (its last owner's view) for the recovery of generation `round`. */
  seed(p: number, round: string): string {
    return `${this.tag(p)}:seed:${round}`;
  }

  /** The deployment's generation `<n>-<random>`: changes only when Redis lost data and was re-seeded. */
  get generation(): string {
    return `${this.prefix}:generation`;
  }

  /** Coordinator lock of the recovery of generation `round`. */
  recovery(round: string): string {
    return `${this.prefix}:recovery:${round}`;
  }

  /** Sorted set of live node instance ids, scored by their last heartbeat (Redis time, ms). */
  get nodes(): string {
    return `${this.prefix}:nodes`;
  }
}

/**
 * Every lease script first checks the partition's generation key against the
 * caller's generation: a missing or different key means Redis lost data (or was
 * re-seeded since), and the script refuses with GENERATION (docs/distributed.md,
 * "Redis data loss").
 */
const GEN = (key: string, arg: string) =>
  `if redis.call('GET', ${key}) ~= ${arg} then return redis.error_reply('GENERATION partition key ' .. ${key} .. ' does not hold generation ' .. ${arg}) end`;

/** Lua: take a free lease. Returns the lease value `<instance>/<epoch>`, or nil when held. KEYS: lease, epoch, gen. ARGV: instance, ttl, generation. */
const ACQUIRE = `
${GEN('KEYS[3]', 'ARGV[3]')}
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local e = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. '/' .. e
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return v`;

/** Lua: extend a lease we hold. 1 = renewed, 0 = lost. KEYS: lease, gen. ARGV: value, ttl, generation. */
const RENEW = `
${GEN('KEYS[2]', 'ARGV[3]')}
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;

/** Lua: give a lease up (only if still ours). */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

/**
 * The gap check of `presenceAppendInOrder` (Redis Cluster, where a partition's
 * calls are sent one after the other): a tenure's sequence numbers land in order,
 * so a call whose earlier sequence numbers are not recorded in `last` finds that
 * Redis lost entries of its own (a lossy replica fail-over): LOST, nothing
 * appended. It runs after the fence check: a writer whose lease was taken over
 * finds another writer's entry in `last`, which is a takeover (FENCED), not a
 * loss. Not used on one pipelined connection, where a reconnect may resend a
 * later call before an earlier one is retried.
 */
const GAP = `
if seq > 1 then
  local prev = 0
  if last then
    local sp = string.find(last, ' ', 1, true)
    if string.sub(last, 1, sp - 1) == ARGV[1] then prev = tonumber(string.sub(last, sp + 1)) end
  end
  if prev < seq - 1 then return redis.error_reply('LOST ' .. KEYS[2] .. ' lacks entries ' .. (prev + 1) .. '..' .. (seq - 1) .. ' of ' .. ARGV[1]) end
end
`;

/**
 * Lua: the fenced, idempotent append. KEYS: lease, stream, last, gen. ARGV:
 * lease value, first sequence number, generation, payloads…
 *
 * Entries whose (writer, sequence) is already recorded in `last` landed on an
 * earlier try whose reply was lost: they are skipped, and when all of them did,
 * the call succeeds even if the lease has moved on since (the caller's data is
 * in the stream, so its acknowledgement is true). Anything still to write needs
 * the caller's lease to be current, else FENCED and nothing is appended.
 * Returns the id of the last entry written (or '' when all had landed).
 */
const appendScript = (gap: string): string => `
${GEN('KEYS[4]', 'ARGV[3]')}
local seq = tonumber(ARGV[2])
local n = #ARGV - 3
local skip = 0
local last = redis.call('GET', KEYS[3])
if last then
  local sp = string.find(last, ' ', 1, true)
  if string.sub(last, 1, sp - 1) == ARGV[1] then
    local done = tonumber(string.sub(last, sp + 1))
    if done >= seq then skip = math.min(n, done - seq + 1) end
  end
end
if skip == n then return '' end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED lease ' .. KEYS[1] .. ' is not held by ' .. ARGV[1]) end
${gap}local id = ''
for i = 4 + skip, #ARGV do
  id = redis.call('XADD', KEYS[2], '*', 'w', ARGV[1], 's', tostring(seq + i - 4), 'e', ARGV[i])
end
redis.call('SET', KEYS[3], ARGV[1] .. ' ' .. tostring(seq + n - 1))
return id`;
const APPEND = appendScript('');
const APPEND_IN_ORDER = appendScript(GAP);

/**
 * Lua: re-seed a partition after Redis lost data: its stream restarts with one
 * checkpoint entry, its lease and dedup keys are cleared, and its generation key
 * moves to the new generation. KEYS: stream, lease, last, gen. ARGV: generation,
 * writer, checkpoint entry.
 */
const RESEED = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local id = redis.call('XADD', KEYS[1], '*', 'w', ARGV[2], 's', '1', 'e', ARGV[3])
redis.call('SET', KEYS[4], ARGV[1])
return id`;

/** The scripts as ioredis custom commands (EVALSHA with automatic EVAL fallback). */
export interface PresenceScripts {
  presenceAcquire(lease: string, epoch: string, gen: string, instance: string, ttlMs: number, generation: string): Promise<string | null>;
  presenceRenew(lease: string, gen: string, value: string, ttlMs: number, generation: string): Promise<number>;
  presenceRelease(lease: string, value: string): Promise<number>;
  presenceAppend(lease: string, stream: string, last: string, gen: string, value: string, firstSeq: number, generation: string, ...payloads: string[]): Promise<string>;
  /** `presenceAppend` with the gap check (calls of a partition sent one after the other). */
  presenceAppendInOrder(lease: string, stream: string, last: string, gen: string, value: string, firstSeq: number, generation: string, ...payloads: string[]): Promise<string>;
  presenceReseed(stream: string, lease: string, last: string, gen: string, generation: string, writer: string, checkpoint: string): Promise<string>;
}

const defined = new WeakSet<Redis>();

/** Register the scripts on a connection (idempotent) and return it typed with them. */
export function withScripts(redis: Redis): Redis & PresenceScripts {
  if (!defined.has(redis)) {
    redis.defineCommand('presenceAcquire', { numberOfKeys: 3, lua: ACQUIRE });
    redis.defineCommand('presenceRenew', { numberOfKeys: 2, lua: RENEW });
    redis.defineCommand('presenceReseed', { numberOfKeys: 4, lua: RESEED });
    redis.defineCommand('presenceRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('presenceAppend', { numberOfKeys: 4, lua: APPEND });
    redis.defineCommand('presenceAppendInOrder', { numberOfKeys: 4, lua: APPEND_IN_ORDER });
    defined.add(redis);
  }
  return redis as Redis & PresenceScripts;
}

/** The instance id in a lease value `<instance>/<epoch>`. */
export function leaseHolder(value: string): string {
  const i = value.lastIndexOf('/');
  return i < 0 ? value : value.slice(0, i);
}

/**
 * A compaction checkpoint: the whole state of a partition's users (each record
 * as a step from the default record) and their joined rooms. Entries before it
 * are trimmed; readers apply it as "replace" (see RedisPresenceNode.compact).
 */
export interface Checkpoint {
  readonly records: readonly (readonly [UserId, UserStepEvent])[];
  readonly joined: readonly (readonly [RoomId, readonly UserId[]])[];
}

/** One stream entry, decoded: written by `writer` (a lease value) as its `seq`-th entry of that tenure. */
export interface StreamRecord {
  readonly id: string;
  readonly writer: string;
  readonly seq: number;
  readonly events: readonly PresenceEvent[];
  /** Set on a checkpoint entry (its `e` is `{ "checkpoint": … }`; `events` is empty). */
  readonly checkpoint?: Checkpoint;
}

/** Decode an XRANGE/XREAD entry. @throws LogError on a malformed entry. */
export function decodeEntry(id: string, fields: readonly string[]): StreamRecord {
  let writer: string | undefined;
  let seq: number | undefined;
  let events: unknown;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const k = fields[i];
    const v = fields[i + 1] as string;
    if (k === 'w') writer = v;
    else if (k === 's') seq = Number(v);
    else if (k === 'e') {
      try {
        events = JSON.parse(v);
      } catch (error) {
        throw new LogError(`stream entry ${id}: the events are not JSON (${(error as Error).message})`);
      }
    }
  }
  if (writer === undefined || seq === undefined || !Number.isSafeInteger(seq)) {
    throw new LogError(`stream entry ${id} is not a presence entry (fields w, s, e expected)`);
  }
  if (Array.isArray(events)) return { id, writer, seq, events: events as PresenceEvent[] };
  const checkpoint = (events as { checkpoint?: Checkpoint } | null)?.checkpoint;
  if (checkpoint === undefined || !Array.isArray(checkpoint.records) || !Array.isArray(checkpoint.joined)) {
    throw new LogError(`stream entry ${id}: e is neither an event array nor a checkpoint`);
  }
  return { id, writer, seq, events: [], checkpoint };
}

/** Compare two stream ids `ms-seq`: negative, 0 or positive. */
export function compareStreamIds(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const ma = Number(a.slice(0, da));
  const mb = Number(b.slice(0, db));
  if (ma !== mb) return ma - mb;
  return Number(a.slice(da + 1)) - Number(b.slice(db + 1));
}

/** The partition(s) a logged event belongs to, with the event (split per partition when it names several users). */
export function routeEvent(e: PresenceEvent, partitions: number): [number, PresenceEvent][] {
  switch (e.type) {
    case 'user.step':
    case 'room.membership':
    case 'user.policy':
    case 'presence.published':
      return [[partitionOf(e.userId, partitions), e]];
    case 'presence.full_requested': {
      const by = new Map<number, (typeof e.userIds)[number][]>();
      for (const u of e.userIds) {
        const p = partitionOf(u, partitions);
        let list = by.get(p);
        if (list === undefined) by.set(p, (list = []));
        list.push(u);
      }
      return [...by].map(([p, userIds]) => [p, { ...e, userIds }]);
    }
  }
}

/** The counter part of a generation `<n>-<random>` (0 for none). */
export function generationNumber(generation: string | null | undefined): number {
  const n = Number((generation ?? '0').split('-')[0]);
  return Number.isSafeInteger(n) ? n : 0;
}
