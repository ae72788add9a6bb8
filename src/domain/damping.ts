/**
 * Flap damping (docs/policies.md): whether a notified change of a local user
 * is shown to others now or held. Pure: the engine part keeps, per user, the
 * state others were last shown, whether a change is held and the times of
 * recent visible transitions, and asks {@link dampDecision} at each change.
 *
 * - A change that keeps the shown presence value is shown at once, unless a
 *   change is already held: then it joins the hold (no wake-up per flip).
 * - An explicit change (`PUT /presence`, a module's set), the first online
 *   after a quiet window and a release are never held.
 * - A drop (to a lower value: online → unavailable → offline) is held for
 *   `holdDownMs`, restarted by every change, and for the rate limit below.
 * - A rise is held only while `maxTransitions` visible transitions already
 *   happened in the last `windowMs`.
 * The user's own view, and the log, always have the truth.
 */
import type { PresenceValue } from './presence.js';

export interface DampingRule {
  /** A drop must last this long before others see it (restarted by each change while held). */
  readonly holdDownMs: number;
  /** At most this many visible transitions per `windowMs`. */
  readonly maxTransitions: number;
  readonly windowMs: number;
}

const RANK: Readonly<Record<PresenceValue, number>> = { offline: 0, unavailable: 1, online: 2, busy: 2 };

export type DampDecision = { readonly show: true } | { readonly show: false; readonly until: number };

const SHOW: DampDecision = Object.freeze({ show: true });

export interface DampInput {
  /** The presence value others see now. */
  readonly shown: PresenceValue;
  /** The user's presence value after the change. */
  readonly next: PresenceValue;
  /** A change is already held for this user. */
  readonly held: boolean;
  /** `PUT /presence`, a module's set, or the release of a hold: never held. */
  readonly explicit: boolean;
  /** Times of the visible transitions still inside the window, oldest first. */
  readonly transitions: readonly number[];
  readonly now: number;
}

export function dampDecision(rule: DampingRule, c: DampInput): DampDecision {
  if (c.explicit) return SHOW;
  const recent = c.transitions.filter((t) => t > c.now - rule.windowMs);
  const rateUntil = recent.length >= rule.maxTransitions ? (recent[recent.length - rule.maxTransitions] as number) + rule.windowMs : c.now;
  if (c.next === c.shown) return c.held ? { show: false, until: Math.max(c.now + rule.holdDownMs, rateUntil) } : SHOW;
  if (RANK[c.next] < RANK[c.shown]) return { show: false, until: Math.max(c.now + rule.holdDownMs, rateUntil) };
  if (c.shown === 'offline' && recent.length === 0) return SHOW; // the first online is never delayed
  return rateUntil > c.now ? { show: false, until: rateUntil } : SHOW;
}

/** Record a visible transition at `now`, keeping only those inside the window. */
export function noteTransition(rule: DampingRule, transitions: number[], now: number): number[] {
  const kept = transitions.filter((t) => t > now - rule.windowMs);
  kept.push(now);
  return kept;
}
