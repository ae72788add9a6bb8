/**
 * Which users' presence an appservice is interested in:
 *
 * 1. users in its namespaces (and its sender);
 * 2. users sharing a joined room (not excluded from presence) with a namespace
 *    user: Synapse's rule for appservice presence;
 * 3. what presence routers grant namespace users: their `getInterestedUsers`
 *    sets, and every state `getUsersForStates` routes to a namespace user (the
 *    only way an `ALL_USERS` namespace user receives anything, as on sync);
 * 4. our `presence` registration extension (users, regexes, all users).
 *
 * Rules 1, 2 and 4 are answered synchronously from the engine's room index,
 * with "does this room hold a namespace user" cached per room and dropped when
 * the room's membership changes. Rule 3 is asked once per transaction.
 */
import type { PresenceEngine } from '../engine.js';
import type { RoomId, UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import { ALL_USERS } from '../router/presence-router.js';
import type { AppserviceRegistration } from './registration.js';

export class AppserviceInterest {
  private readonly roomHasMember = new Map<RoomId, boolean>();
  /** Namespace users met so far (rooms scanned, log entries): whose router interest is asked. */
  readonly namespaceUsers = new Set<UserId>();
  /** Union of the routers' `getInterestedUsers` sets of namespace users (refreshed per transaction). */
  private routerGranted: ReadonlySet<UserId> = new Set();

  constructor(
    private readonly engine: PresenceEngine,
    private readonly registration: AppserviceRegistration,
  ) {
    this.namespaceUsers.add(registration.sender);
  }

  /** Is `userId` in one of the appservice's user namespaces (or its sender)? */
  inNamespace(userId: UserId): boolean {
    if (userId === this.registration.sender) return true;
    for (const n of this.registration.userNamespaces) if (n.regex.test(userId)) return true;
    return false;
  }

  /** Note a user seen in the log: namespace users join the set whose router interest is asked. */
  noteUser(userId: UserId): void {
    if (!this.namespaceUsers.has(userId) && this.inNamespace(userId)) this.namespaceUsers.add(userId);
  }

  /** A membership of `roomId` changed: its cached answer is stale. */
  roomChanged(roomId: RoomId): void {
    this.roomHasMember.delete(roomId);
  }

  /** Does `roomId` hold a namespace user now? */
  roomHasNamespaceMember(roomId: RoomId): boolean {
    const cached = this.roomHasMember.get(roomId);
    if (cached !== undefined) return cached;
    let found = false;
    for (const m of this.engine.getRoomMembers(roomId))
      if (this.inNamespace(m)) {
        found = true;
        this.namespaceUsers.add(m);
      }
    this.roomHasMember.set(roomId, found);
    return found;
  }

  /** Rules 1, 2, 4 and the routers' interest sets: answered without asking a module. */
  interestedNow(userId: UserId): boolean {
    if (this.inNamespace(userId)) return true;
    const ext = this.registration.presence;
    if (ext.allUsers || ext.users.has(userId) || this.routerGranted.has(userId)) return true;
    for (const re of ext.userRegexes) if (re.test(userId)) return true;
    const excluded = this.engine.config.excludeRoomsFromPresence;
    for (const room of this.engine.getRoomsForUser(userId)) if (!excluded.has(room) && this.roomHasNamespaceMember(room)) return true;
    return false;
  }

  /** Refresh the routers' interest sets of the namespace users (rule 3, pull side). */
  async refreshRouterInterest(): Promise<void> {
    if (!this.engine.router.active) return;
    const granted = new Set<UserId>();
    for (const u of this.namespaceUsers) {
      const interest = await this.engine.router.interestedUsers(u);
      if (interest !== ALL_USERS) for (const g of interest) granted.add(g);
    }
    this.routerGranted = granted;
  }

  /** Of `states` not interesting by the other rules, those a router routes to a namespace user (rule 3, push side). */
  async routedToNamespace(states: readonly UserPresenceState[]): Promise<Set<UserId>> {
    const out = new Set<UserId>();
    if (!this.engine.router.active || states.length === 0) return out;
    const routed = await this.engine.router.usersForStates(states);
    for (const [recipient, given] of routed) {
      if (!this.inNamespace(recipient)) continue;
      this.namespaceUsers.add(recipient);
      for (const s of given) out.add(s.userId);
    }
    return out;
  }
}
