/**
 * Matrix wire formats (spec §3.6). One function builds the presence content for
 * every surface; the envelopes differ only in `user_id` and the event wrapper.
 */
import type { UserPresenceState } from './presence.js';

export type BusyWireValue = 'org.matrix.msc3026.busy' | 'busy';

/** `m.presence` content as sent to clients and over federation. */
export interface PresenceContent {
  presence: string;
  user_id?: string;
  last_active_ago?: number;
  status_msg?: string;
  currently_active?: boolean;
}

/** A sync `m.presence` event. */
export interface PresenceEventJson {
  type: 'm.presence';
  sender: string;
  content: PresenceContent;
}

export function wirePresence(state: UserPresenceState['state'], busy: BusyWireValue): string {
  return state === 'busy' ? busy : state;
}

/**
 * Spec §3.6 `format_user_presence_state`: `last_active_ago` only when the user
 * was ever active, `status_msg` only when non-empty, `currently_active` only when online.
 */
export function formatPresence(
  s: UserPresenceState,
  now: number,
  options: { includeUserId?: boolean; busy?: BusyWireValue } = {},
): PresenceContent {
  const content: PresenceContent = { presence: wirePresence(s.state, options.busy ?? 'org.matrix.msc3026.busy') };
  if (options.includeUserId === true) content.user_id = s.userId;
  if (s.lastActiveTs !== 0) content.last_active_ago = Math.max(0, now - s.lastActiveTs);
  if (s.statusMsg) content.status_msg = s.statusMsg;
  if (s.state === 'online') content.currently_active = s.currentlyActive;
  return content;
}

/** The `/sync` `presence.events[]` form. */
export function formatPresenceEvent(s: UserPresenceState, now: number, busy?: BusyWireValue): PresenceEventJson {
  return { type: 'm.presence', sender: s.userId, content: formatPresence(s, now, busy ? { busy } : {}) };
}
