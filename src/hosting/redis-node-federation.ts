/**
 * Outbound federation of a distributed process, sent only once durable: a
 * transmission waits until everything committed before it is written to the
 * partition streams, and leaves out the users of a partition where a write
 * failed since the previous transmission to that destination (their change was
 * undone; the remote keeps the state it had, which is the stream's).
 */
import type { PresenceEdu } from '../federation/edu.js';
import type { FederationTransport } from '../federation/outbound.js';
import type { RedisPartitionedLog } from '../log/redis-log.js';

export function durableTransport(transport: FederationTransport, log: RedisPartitionedLog, partitionOf: (userId: string) => number): FederationTransport {
  const sentUpTo = new Map<string, number>();
  const attachedAt = log.lastIndex;
  return {
    send: async (destination, edus) => {
      const to = log.lastIndex;
      await log.ack(to, to);
      const from = sentUpTo.get(destination) ?? attachedAt;
      sentUpTo.set(destination, to);
      const keep: PresenceEdu[] = [];
      for (const edu of edus) {
        const push = edu.content.push.filter((item) => log.lastFailure(partitionOf(String(item.user_id))) <= from);
        if (push.length > 0) keep.push({ ...edu, content: { ...edu.content, push } });
      }
      if (keep.length > 0) await transport.send(destination, keep);
    },
  };
}
