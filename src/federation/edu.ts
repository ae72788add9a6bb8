/**
 * Federation `m.presence` EDUs: inbound validation (spec §3.9 plus decisions.md)
 * and outbound building (spec §3.8.3, at most 50 states per EDU).
 */
import { z } from 'zod';
import { UserIdSchema, serverNameOf, type UserId } from '../domain/ids.js';
import { formatPresence, type BusyWireValue, type PresenceContent } from '../domain/format.js';
import type { PresenceValue, UserPresenceState } from '../domain/presence.js';
import type { RemotePresenceUpdate } from '../domain/rules.js';

/** Maximum presence states in one EDU (Synapse HEAD). */
export const MAX_PRESENCE_STATES_PER_EDU = 50;

const WirePresenceSchema = z
  .enum(['online', 'unavailable', 'offline', 'busy', 'org.matrix.msc3026.busy'])
  .transform((v): PresenceValue => (v === 'org.matrix.msc3026.busy' ? 'busy' : v));

/** One item of `content.push`. */
export const PresencePushItemSchema = z.object({
  user_id: UserIdSchema,
  presence: WirePresenceSchema,
  last_active_ago: z.number().int().nonnegative().nullish(),
  status_msg: z.string().nullish(),
  currently_active: z.boolean().nullish(),
});

/** The EDU content. Items are validated one by one so one bad item does not drop the rest. */
export const PresenceEduContentSchema = z.object({ push: z.array(z.unknown()).optional() });

export interface PresenceEdu {
  edu_type: 'm.presence';
  content: { push: PresenceContent[] };
}

export interface AcceptedRemoteUpdate {
  readonly userId: UserId;
  readonly update: RemotePresenceUpdate;
}

export interface InboundResult {
  readonly accepted: AcceptedRemoteUpdate[];
  /** Dropped items with the reason, for counting and logging. */
  readonly dropped: { index: number; reason: string }[];
}

/** Validate an inbound EDU's content from `origin`. Never throws. */
export function parsePresenceEdu(origin: string, content: unknown): InboundResult {
  const dropped: { index: number; reason: string }[] = [];
  const accepted: AcceptedRemoteUpdate[] = [];
  const outer = PresenceEduContentSchema.safeParse(content);
  if (!outer.success) return { accepted, dropped: [{ index: -1, reason: 'content is not an object with a push array' }] };
  const items = outer.data.push ?? [];
  items.forEach((raw, index) => {
    const r = PresencePushItemSchema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      dropped.push({ index, reason: `${issue?.path.join('.') || 'item'}: ${issue?.message ?? 'invalid'}` });
      return;
    }
    const item = r.data;
    if (serverNameOf(item.user_id) !== origin) {
      dropped.push({ index, reason: `user ${item.user_id} does not belong to origin ${origin}` });
      return;
    }
    accepted.push({
      userId: item.user_id,
      update: {
        presence: item.presence,
        lastActiveAgo: item.last_active_ago ?? undefined,
        statusMsg: item.status_msg ?? null,
        currentlyActive: item.currently_active ?? false,
      },
    });
  });
  return { accepted, dropped };
}

/** Build EDUs of at most {@link MAX_PRESENCE_STATES_PER_EDU} states, oldest first. */
export function buildPresenceEdus(states: readonly UserPresenceState[], now: number, busy: BusyWireValue): PresenceEdu[] {
  const edus: PresenceEdu[] = [];
  for (let i = 0; i < states.length; i += MAX_PRESENCE_STATES_PER_EDU) {
    edus.push({
      edu_type: 'm.presence',
      content: {
        push: states.slice(i, i + MAX_PRESENCE_STATES_PER_EDU).map((s) => formatPresence(s, now, { includeUserId: true, busy })),
      },
    });
  }
  return edus;
}
