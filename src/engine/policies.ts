/**
 * Policy inputs: setting a user's visibility policy inside a turn. The
 * change is logged (`user.policy`, the whole policy) and notified like a
 * presence change (next stream id, change index, the turn's changed users),
 * because who may see the user's truth changed: pushes, pulls from any
 * earlier token and federation all re-read the user through the new policy.
 */
import type { ChangeIndex } from '../../streams/change-index.js';
import type { PublishedEvent, UserPolicyEvent } from '../domain/events.js';
import type { UserId } from '../domain/ids.js';
import type { PresencePolicy } from '../domain/policy.js';
import type { StreamPosition } from './stream-position.js';
import type { TurnBuffer } from './turn-buffer.js';
import type { UserDirectory } from './user-directory.js';
import type { Visibility } from './visibility.js';

export class PolicyInputs {
  constructor(
    private readonly visibility: Visibility,
    private readonly users: UserDirectory,
    private readonly changes: ChangeIndex,
    private readonly stream: StreamPosition,
    private readonly turn: TurnBuffer,
  ) {}

  /** In a turn: set `userId`'s policy, log it and notify the change. */
  set(userId: UserId, policy: PresencePolicy, at: number): void {
    const streamId = this.apply(userId, policy);
    const event: UserPolicyEvent = { type: 'user.policy', userId, policy, streamId, at };
    this.turn.addEvent(event);
  }

  /** In a turn: a policy or damping release logged by the user's owner (distributed mode): applied and notified, not logged again. */
  replicated(e: UserPolicyEvent | PublishedEvent): void {
    if (e.type === 'user.policy') this.apply(e.userId, e.policy);
    else this.notify(this.users.indexOf(e.userId));
  }

  private apply(userId: UserId, policy: PresencePolicy): number {
    this.visibility.set(userId, policy);
    return this.notify(this.users.indexOf(userId));
  }

  /** A notified entry of user `idx`: next stream id, change index, the turn's changed users. */
  notify(idx: number): number {
    const lastStreamId = this.users.lastStreamId;
    this.turn.notified(idx, lastStreamId[idx] ?? 0);
    const streamId = this.stream.next();
    lastStreamId[idx] = streamId;
    this.changes.add(streamId, idx);
    return streamId;
  }
}
