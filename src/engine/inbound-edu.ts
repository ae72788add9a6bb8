/**
 * An inbound `m.presence` EDU, validated item by item: the latest update per
 * remote user, and the items dropped with why (invalid, or naming a user of
 * this server: another server cannot speak for our users).
 */
import type { UserId } from '../domain/ids.js';
import { parsePresenceEdu } from '../federation/edu.js';

type Accepted = ReturnType<typeof parsePresenceEdu>['accepted'][number];

export interface InboundUpdates {
  readonly updates: Map<UserId, Accepted['update']>;
  readonly dropped: { index: number; reason: string }[];
}

export function inboundUpdates(origin: string, content: unknown, isMine: (userId: string) => boolean, serverName: string): InboundUpdates {
  const { accepted, dropped } = parsePresenceEdu(origin, content);
  accepted.forEach((a, index) => {
    if (isMine(a.userId)) dropped.push({ index, reason: `user ${a.userId} is local to ${serverName}` });
  });
  const updates = new Map(accepted.filter((a) => !isMine(a.userId)).map((a) => [a.userId, a.update]));
  return { updates, dropped };
}
