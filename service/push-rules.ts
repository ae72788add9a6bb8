/**
 * The Matrix spec's default push rules (client-server API, "Predefined
 * rules"), as `GET /pushrules/` returns them for a user. The service stores no
 * per-user rules: clients need the rule set to start, and there are no
 * messages to notify about.
 */
import type { UserId } from '../src/index.js';

type Action = 'notify' | { readonly set_tweak: string; readonly value?: string | boolean };
type Condition = Readonly<Record<string, string | boolean | number>>;

export interface PushRule {
  readonly rule_id: string;
  readonly default: true;
  readonly enabled: boolean;
  readonly conditions?: readonly Condition[];
  readonly pattern?: string;
  readonly actions: readonly Action[];
}

export interface PushRuleSet {
  readonly override: readonly PushRule[];
  readonly content: readonly PushRule[];
  readonly room: readonly PushRule[];
  readonly sender: readonly PushRule[];
  readonly underride: readonly PushRule[];
}

const SOUND_DEFAULT: Action = { set_tweak: 'sound', value: 'default' };
const HIGHLIGHT: Action = { set_tweak: 'highlight' };
const eventMatch = (key: string, pattern: string): Condition => ({ kind: 'event_match', key, pattern });
const rule = (rule_id: string, conditions: readonly Condition[], actions: readonly Action[], enabled = true): PushRule => ({
  rule_id,
  default: true,
  enabled,
  conditions,
  actions,
});

export function defaultPushRules(userId: UserId): PushRuleSet {
  const localpart = userId.slice(1, userId.indexOf(':'));
  return {
    override: [
      rule('.m.rule.master', [], [], false),
      rule('.m.rule.suppress_notices', [eventMatch('content.msgtype', 'm.notice')], []),
      rule(
        '.m.rule.invite_for_me',
        [eventMatch('type', 'm.room.member'), eventMatch('content.membership', 'invite'), eventMatch('state_key', userId)],
        ['notify', SOUND_DEFAULT],
      ),
      rule('.m.rule.member_event', [eventMatch('type', 'm.room.member')], []),
      rule('.m.rule.is_user_mention', [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }], ['notify', SOUND_DEFAULT, HIGHLIGHT]),
      rule('.m.rule.contains_display_name', [{ kind: 'contains_display_name' }], ['notify', SOUND_DEFAULT, HIGHLIGHT]),
      rule(
        '.m.rule.is_room_mention',
        [
          { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
          { kind: 'sender_notification_permission', key: 'room' },
        ],
        ['notify', HIGHLIGHT],
      ),
      rule('.m.rule.roomnotif', [{ kind: 'sender_notification_permission', key: 'room' }, eventMatch('content.body', '@room')], ['notify', HIGHLIGHT]),
      rule('.m.rule.tombstone', [eventMatch('type', 'm.room.tombstone'), eventMatch('state_key', '')], ['notify', HIGHLIGHT]),
      rule('.m.rule.reaction', [eventMatch('type', 'm.reaction')], []),
      rule('.m.rule.server_acl', [eventMatch('type', 'm.room.server_acl'), eventMatch('state_key', '')], []),
      rule('.m.rule.suppress_edits', [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }], []),
    ],
    content: [{ rule_id: '.m.rule.contains_user_name', default: true, enabled: true, pattern: localpart, actions: ['notify', SOUND_DEFAULT, HIGHLIGHT] }],
    room: [],
    sender: [],
    underride: [
      rule('.m.rule.call', [eventMatch('type', 'm.call.invite')], ['notify', { set_tweak: 'sound', value: 'ring' }]),
      rule('.m.rule.encrypted_room_one_to_one', [{ kind: 'room_member_count', is: '2' }, eventMatch('type', 'm.room.encrypted')], ['notify', SOUND_DEFAULT]),
      rule('.m.rule.room_one_to_one', [{ kind: 'room_member_count', is: '2' }, eventMatch('type', 'm.room.message')], ['notify', SOUND_DEFAULT]),
      rule('.m.rule.message', [eventMatch('type', 'm.room.message')], ['notify']),
      rule('.m.rule.encrypted', [eventMatch('type', 'm.room.encrypted')], ['notify']),
    ],
  };
}
