/**
 * "Why is @alice online?": a user's steps read back from the log, newest
 * first, each with its cause (the input and its device, origin server or
 * module, or the timer that fired) and the rule that decided it in words.
 * Pure: log entries in, an explanation out (the engine, the admin route and
 * the offline CLI all use it).
 */
import type { LogEntry, StepCause, UserStepEvent } from './events.js';
import type { ServerName, UserId } from './ids.js';
import type { PresenceTimers, PresenceValue } from './presence.js';

/** One step of the user, as the log recorded it. */
export interface ExplainedStep {
  readonly position: number;
  /** Time of the step (ms since epoch). */
  readonly at: number;
  /** Present when the change was notified (readers and federation were told). */
  readonly streamId?: number;
  /** The state before (null when the step is the first one in the window read) and after. */
  readonly from: PresenceValue | null;
  readonly to: PresenceValue | null;
  /** The status message after the step, when it changed. */
  readonly statusMsg?: string | null;
  /** Null for steps logged without a cause (older logs, checkpoints). */
  readonly cause: StepCause | null;
  /** The rule in words, e.g. "device PHONE idle for over 300 s → unavailable". */
  readonly rule: string;
  /**
   * Who was handed this state while it was current (notified steps only, and
   * only when the engine records deliveries: option `recordDeliveries`).
   */
  readonly deliveredTo?: Delivered;
}

/**
 * The recorded recipients of one visible change: local users whose sync
 * stream emitted the state or whose `getNewEvents` returned it, servers a
 * federation transmission carried it to, router modules whose
 * `getUsersForStates` answer routed it.
 */
export interface Delivered extends Audience {
  /** False when the record of this change's deliveries was partly evicted (the journal is bounded). */
  readonly complete: boolean;
}

/**
 * Who hears of the user's changes, as of now (current memberships and
 * routers; not a record of past deliveries): local users sharing a room,
 * remote servers sharing a room, and the router modules consulted besides.
 */
export interface Audience {
  readonly localUsers: number;
  /** Their ids, when asked for (`recipients: true`). */
  readonly localUserIds?: readonly UserId[];
  readonly remoteServers: readonly ServerName[];
  readonly routers: readonly string[];
}

export interface Explanation {
  readonly userId: UserId;
  /** The user's state after the newest step read (null: no step in the window). */
  readonly state: PresenceValue | null;
  /** Newest first. */
  readonly steps: readonly ExplainedStep[];
  /** The log position just before the oldest entry read. */
  readonly readFrom: number;
  /** False when the log's retained window starts after `since` (or after 0): older history is not available. */
  readonly complete: boolean;
  /** Who hears of the user's changes now (engine.explain only). */
  readonly audience?: Audience;
}

const seconds = (ms: number): string => (ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000} min` : `${ms / 1000} s`);

/** The rule that decided a step, in words. */
export function describeCause(cause: StepCause | null, from: PresenceValue | null, to: PresenceValue | null, timers?: PresenceTimers): string {
  const result = to === null || to === from ? '' : ` → ${to}`;
  const device = cause?.device === undefined ? 'the default device' : `device ${cause.device}`;
  const t = (key: keyof PresenceTimers, fallback: string) => (timers === undefined ? fallback : seconds(timers[key]));
  if (cause === null) return `no cause recorded${result}`;
  switch (cause.input) {
    case 'set':
      return `explicit set_state on ${device}${result}`;
    case 'sync_start':
      return `a sync started on ${device}${result}`;
    case 'sync_end':
      return `a sync ended on ${device}${result}`;
    case 'activity':
      return `activity on ${device} (bump_presence_active_time)${result}`;
    case 'remote':
      return `federation update from ${cause.origin ?? 'the user’s server'}${result}`;
    case 'module':
      return `set_presence_for_users by module ${cause.module ?? '(unnamed)'}${result}`;
    case 'flush':
      return `presence disabled: stale state flushed at start-up${result}`;
    case 'timer':
      switch (cause.timer) {
        case 'idle':
          return `${device} idle for over ${t('idleTimeout', 'the idle timeout')}${result}`;
        case 'sync_timeout':
          return `${device} neither syncing nor active for over ${t('syncOnlineTimeout', 'the sync timeout')}: removed${result}`;
        case 'busy_timeout':
          return `busy ${device} neither syncing nor active for over ${t('busyTimeout', 'the busy timeout')}: removed${result}`;
        case 'active_expiry':
          return `no activity for over ${t('lastActiveGranularity', 'the last-active granularity')}: no longer currently active${result}`;
        case 'federation_ping':
          return `federation keep-alive (${t('federationPingInterval', 'the ping interval')} since the last send)${result}`;
        case 'remote_expiry':
          return `no federation update for over ${t('federationTimeout', 'the federation timeout')}${result}`;
        case undefined:
          return `timer re-examination${result}`;
      }
  }
  return `unknown input${result}`;
}

/**
 * Explain user `userId` from `entries` (a log read after position `readFrom`),
 * keeping steps at or after `since` (a log position), newest first.
 */
export function explainUser(userId: UserId, entries: Iterable<LogEntry>, options: { readonly readFrom: number; readonly since?: number; readonly complete: boolean; readonly timers?: PresenceTimers }): Explanation {
  const steps: ExplainedStep[] = [];
  // A log read from its very start knows the state before the first step: the default, offline.
  let state: PresenceValue | null = options.readFrom === 0 ? 'offline' : null;
  const since = options.since ?? 0;
  for (const { position, event } of entries) {
    if (event.type !== 'user.step' || event.userId !== userId) continue;
    const from = state;
    const to: PresenceValue | null = event.presence?.state ?? state;
    state = to;
    if (position <= since) continue;
    steps.push(explainStep(position, event, from, to, options.timers));
  }
  steps.reverse();
  return { userId, state, steps, readFrom: options.readFrom, complete: options.complete };
}

function explainStep(position: number, e: UserStepEvent, from: PresenceValue | null, to: PresenceValue | null, timers: PresenceTimers | undefined): ExplainedStep {
  const cause = e.cause ?? null;
  const status = e.presence !== undefined && 'statusMsg' in e.presence ? { statusMsg: e.presence.statusMsg ?? null } : {};
  return {
    position,
    at: e.at,
    ...(e.streamId !== undefined ? { streamId: e.streamId } : {}),
    from,
    to,
    ...status,
    cause,
    rule: describeCause(cause, from, to, timers),
  };
}
