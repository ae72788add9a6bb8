/**
 * The `rooms` section of `/sync`: for each room the user is joined to, its
 * membership as Matrix state events (`m.room.create` and `m.room.member`),
 * enough for a client to list the rooms and their members. The service has no
 * room events beyond membership: timelines hold membership changes only.
 *
 * - No usable position (initial sync, `full_state`, a token from another run
 *   or older than the journal keeps): every joined room with its full state.
 * - Otherwise, from the journal's changes since the token: rooms where others
 *   joined or left get those events in their timeline; rooms the user joined
 *   get their state plus the join; rooms the user left go under `leave`.
 */
import { createHash } from 'node:crypto';
import type { PresenceEngine, RoomId, ServerName, UserId } from '../src/index.js';
import type { Membership, MembershipChange } from './membership-journal.js';

export interface ClientEvent {
  readonly type: string;
  readonly state_key: string;
  readonly sender: string;
  readonly content: Readonly<Record<string, unknown>>;
  readonly event_id: string;
  readonly origin_server_ts: number;
  readonly unsigned: Readonly<Record<string, unknown>>;
}

export interface JoinedRoomJson {
  readonly timeline: { readonly events: ClientEvent[]; readonly limited: boolean };
  readonly state: { readonly events: ClientEvent[] };
  readonly ephemeral: { readonly events: never[] };
  readonly account_data: { readonly events: never[] };
  readonly summary: { readonly 'm.heroes': string[]; readonly 'm.joined_member_count': number; readonly 'm.invited_member_count': number };
  readonly unread_notifications: { readonly notification_count: number; readonly highlight_count: number };
}

export interface LeftRoomJson {
  readonly timeline: { readonly events: ClientEvent[]; readonly limited: boolean };
  readonly state: { readonly events: ClientEvent[] };
}

export interface RoomsJson {
  readonly join: Record<string, JoinedRoomJson>;
  readonly leave: Record<string, LeftRoomJson>;
  readonly invite: Record<string, never>;
}

/** The service does not know who created a room: its create event is sent by this pseudo-user. */
export const creatorOf = (serverName: ServerName): UserId => `@presence:${serverName}` as UserId;

const shortHash = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 27);

export class RoomSync {
  constructor(
    private readonly engine: PresenceEngine,
    private readonly serverName: ServerName,
    private readonly epoch: string,
    /** Stands in for the time of joins the service did not see (before this run). */
    private readonly startedAt: number,
  ) {}

  /** Every joined room with its full current membership (`limited`: the client's timeline has a gap). */
  full(userId: UserId, limited: boolean): RoomsJson {
    const join: Record<string, JoinedRoomJson> = {};
    for (const roomId of this.engine.getRoomsForUser(userId)) join[roomId] = this.joined(roomId, userId, [], limited);
    return { join, leave: {}, invite: {} };
  }

  /** The rooms section for `changes` (the journal since the client's token), or undefined when nothing concerns the user. */
  incremental(userId: UserId, changes: readonly MembershipChange[]): RoomsJson | undefined {
    const joinedNow = new Set(this.engine.getRoomsForUser(userId));
    const byRoom = new Map<RoomId, MembershipChange[]>();
    for (const c of changes) {
      const list = byRoom.get(c.roomId);
      if (list === undefined) byRoom.set(c.roomId, [c]);
      else list.push(c);
    }
    const join: Record<string, JoinedRoomJson> = {};
    const leave: Record<string, LeftRoomJson> = {};
    for (const [roomId, list] of byRoom) {
      let lastOwn = -1;
      list.forEach((c, i) => {
        if (c.userId === userId) lastOwn = i;
      });
      if (joinedNow.has(roomId)) {
        if (lastOwn >= 0) {
          // Joined (again) in the window: the state, then the changes from the own join on.
          const from = list.findLastIndex((c, i) => i <= lastOwn && c.userId === userId && c.membership === 'join');
          join[roomId] = this.joined(roomId, userId, list.slice(Math.max(0, from)).map((c) => this.changeEvent(c)), false);
        } else {
          join[roomId] = this.joined(roomId, userId, list.map((c) => this.changeEvent(c)), false, true);
        }
      } else if (lastOwn >= 0) {
        leave[roomId] = { timeline: { events: list.slice(0, lastOwn + 1).map((c) => this.changeEvent(c)), limited: false }, state: { events: [] } };
      }
    }
    if (Object.keys(join).length === 0 && Object.keys(leave).length === 0) return undefined;
    return { join, leave, invite: {} };
  }

  /**
   * One joined room: `timeline` as given; `state` the create event and the
   * current members not in the timeline, unless `timelineOnly` (the client
   * already has the state).
   */
  private joined(roomId: RoomId, userId: UserId, timeline: ClientEvent[], limited: boolean, timelineOnly = false): JoinedRoomJson {
    const members = this.engine.getRoomMembers(roomId).sort();
    const inTimeline = new Set(timeline.map((e) => e.state_key));
    const state = timelineOnly ? [] : [this.createEvent(roomId), ...members.filter((m) => !inTimeline.has(m)).map((m) => this.memberStateEvent(roomId, m))];
    return {
      timeline: { events: timeline, limited },
      state: { events: state },
      ephemeral: { events: [] },
      account_data: { events: [] },
      summary: { 'm.heroes': members.filter((m) => m !== userId).slice(0, 5), 'm.joined_member_count': members.length, 'm.invited_member_count': 0 },
      unread_notifications: { notification_count: 0, highlight_count: 0 },
    };
  }

  private createEvent(roomId: RoomId): ClientEvent {
    const creator = creatorOf(this.serverName);
    return {
      type: 'm.room.create',
      state_key: '',
      sender: creator,
      content: { creator, room_version: '10' },
      event_id: `$create-${shortHash(roomId)}`,
      origin_server_ts: this.startedAt,
      unsigned: {},
    };
  }

  /** A current member's join, for state: the same id for the same room and user within one run. */
  private memberStateEvent(roomId: RoomId, userId: UserId): ClientEvent {
    return this.memberEvent(userId, 'join', this.startedAt, `$member-${shortHash(`${this.epoch}\u0000${roomId}\u0000${userId}`)}`);
  }

  private changeEvent(c: MembershipChange): ClientEvent {
    return this.memberEvent(c.userId, c.membership, c.at, `$change-${this.epoch}-${c.pos}`);
  }

  private memberEvent(userId: UserId, membership: Membership, ts: number, eventId: string): ClientEvent {
    return { type: 'm.room.member', state_key: userId, sender: userId, content: { membership }, event_id: eventId, origin_server_ts: ts, unsigned: {} };
  }
}
