/**
 * The operator policy callback (docs/policies.md): modules' `getVisibility(viewer,
 * target)`, asked through the router (deadline, isolation, counters) for
 * local targets. Answers are cached per pair for `ttlMs`. Pulls wait for
 * the answers they need; the synchronous paths (push, federation, `GET
 * /presence`) use a cached or synchronous answer and, while an async answer
 * is pending, show the masked state, then re-deliver the truth in a later
 * turn if the answer is "visible". A failed or late callback has no opinion.
 */
import type { Clock } from '../clock.js';
import type { UserId } from '../domain/ids.js';
import type { PresenceRouter } from '../router/presence-router.js';

/** Most cached answers; past it the cache starts again (answers are cheap to ask again). */
const MAX_CACHED = 100_000;

export interface OperatorVisibilityHost {
  isMine(userId: string): boolean;
  /** A pending answer came back "visible": show `viewer` (a user id or a server name) the truth of `target` now. */
  visibleLater(viewer: string, target: UserId): void;
}

export class OperatorVisibility {
  private readonly cache = new Map<string, { readonly visible: boolean; readonly at: number }>();
  private readonly pending = new Map<string, Promise<boolean>>();

  constructor(
    private readonly router: PresenceRouter,
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly host: OperatorVisibilityHost,
  ) {}

  get active(): boolean {
    return this.router.hasVisibility;
  }

  /** Forget every cached answer (a module's decisions changed). */
  invalidate(): void {
    this.cache.clear();
  }

  /** May `viewer` see `target`'s truth now? Pending async answers count as "no" until they land. */
  visibleNow(viewer: string, target: UserId): boolean {
    const r = this.ask(viewer, target);
    if (typeof r === 'boolean') return r;
    return false;
  }

  /** Make sure every (viewer, target) answer is cached (a pull waits for them). */
  async prefetch(viewer: UserId, targets: Iterable<UserId>): Promise<void> {
    const waits: Promise<boolean>[] = [];
    for (const t of targets) {
      if (t === viewer) continue;
      const r = this.ask(viewer, t);
      if (typeof r !== 'boolean') waits.push(r);
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  private ask(viewer: string, target: UserId): boolean | Promise<boolean> {
    if (!this.host.isMine(target)) return true;
    const key = `${viewer}\n${target}`;
    const now = this.clock.now();
    const c = this.cache.get(key);
    if (c !== undefined && now - c.at < this.ttlMs) return c.visible;
    const waiting = this.pending.get(key);
    if (waiting !== undefined) return waiting;
    const r = this.router.visible(viewer, target);
    if (typeof r === 'boolean') {
      this.remember(key, r, now);
      return r;
    }
    const answered = r.then((visible) => {
      this.pending.delete(key);
      this.remember(key, visible, this.clock.now());
      if (visible) this.host.visibleLater(viewer, target);
      return visible;
    });
    this.pending.set(key, answered);
    return answered;
  }

  private remember(key: string, visible: boolean, at: number): void {
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, { visible, at });
  }
}
