/**
 * The combined presence router (spec §4.3): callbacks registered by modules are
 * called in order; results are validated at the boundary with zod and unioned
 * per recipient. A callback that throws, returns the wrong type or misses its
 * deadline is logged with its module's name and skipped for that call; it never
 * stops the other callbacks or the engine (decisions.md).
 *
 * Calls stay synchronous when every callback answers synchronously, so an
 * engine whose routers are synchronous delivers within the same turn.
 */
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { UserIdSchema, type UserId } from '../domain/ids.js';
import type { UserPresenceState } from '../domain/presence.js';
import type { Logger } from '../logger.js';

/** Marker returned by `getInterestedUsers` for "every known user" (Synapse's `PresenceRouter.ALL_USERS`). */
export const ALL_USERS = 'ALL' as const;
export type AllUsers = typeof ALL_USERS;

type MaybePromise<T> = T | PromiseLike<T>;

/** What `getUsersForStates` may return: recipients (local or remote user ids) to sets of the given states. */
export type UsersForStatesResult =
  | ReadonlyMap<string, ReadonlySet<UserPresenceState>>
  | Readonly<Record<string, ReadonlySet<UserPresenceState>>>;

export interface PresenceRouterCallbacks {
  getUsersForStates: (states: readonly UserPresenceState[]) => MaybePromise<UsersForStatesResult>;
  getInterestedUsers: (userId: string) => MaybePromise<ReadonlySet<string> | AllUsers>;
}

interface Registered<F> {
  readonly module: string;
  readonly fn: F;
  /** The module's own counters (shared by its two callbacks). */
  readonly stats: RouterCallStats;
}

export type RoutedStates = Map<UserId, Set<UserPresenceState>>;
export type Interest = ReadonlySet<UserId> | AllUsers;

const RecipientSchema = UserIdSchema;
const StateSetSchema = z.instanceof(Set, { message: 'must be a Set of presence states' });
const ResultSchema = z.union([z.instanceof(Map), z.record(z.string(), z.unknown())], {
  message: 'must be a Map or a plain object of user id → Set of states',
});
const InterestSchema = z.union([z.literal(ALL_USERS), z.instanceof(Set)], {
  message: `must be a Set of user ids or ALL_USERS ("${ALL_USERS}")`,
});

/** Counters of router callback calls (/metrics, the dashboard). */
export interface RouterCallStats {
  calls: number;
  /** Calls that threw or rejected. */
  failures: number;
  /** Async calls that missed the router deadline. */
  timeouts: number;
  /** Answers, or parts of answers, that failed validation. */
  invalidResults: number;
  /** Wall time of the calls that answered (engine clock, ms). */
  totalMs: number;
}

/** Totals over all modules, and the same counters per module name (a name registered twice shares one entry). */
export interface RouterStats extends RouterCallStats {
  readonly modules: ReadonlyMap<string, Readonly<RouterCallStats>>;
}

const zeroStats = (): RouterCallStats => ({ calls: 0, failures: 0, timeouts: 0, invalidResults: 0, totalMs: 0 });

/** Thenable check that survives hostile values (a `then` getter that throws counts as "not a promise"). */
function isThenable<T>(v: MaybePromise<T>): v is PromiseLike<T> {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return false;
  try {
    return typeof (v as PromiseLike<T>).then === 'function';
  } catch {
    return false;
  }
}

/** `String(value)` that never throws (module errors may be objects without a prototype or with a throwing `toString`). */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return '[an unprintable value]';
    }
  }
}

/**
 * What modules see: frozen shallow copies of the engine's states, so a module
 * that mutates its input can neither corrupt engine state nor change what the
 * other modules are given. Results are mapped back to the engine's own objects
 * by user id.
 */
function frozenCopies(states: readonly UserPresenceState[]): readonly UserPresenceState[] {
  return Object.freeze(states.map((s) => Object.freeze({ ...s })));
}

/**
 * The operator policy callback (docs/policies.md): may `viewer` (a user id, or
 * a server name for federation) see the truth of local user `target`? It can
 * only hide (`false`); anything but `false` leaves the truth visible.
 */
export type GetVisibility = (viewer: string, target: string) => MaybePromise<boolean>;

export class PresenceRouter {
  private readonly visibilityCallbacks: Registered<GetVisibility>[] = [];
  private readonly forStates: Registered<PresenceRouterCallbacks['getUsersForStates']>[] = [];
  private readonly interested: Registered<PresenceRouterCallbacks['getInterestedUsers']>[] = [];
  private readonly byModule = new Map<string, RouterCallStats>();
  readonly stats: RouterStats = { ...zeroStats(), modules: this.byModule };

  constructor(
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** The modules that registered callbacks, in order. */
  /** Told which targets each module routed (the delivery journal), when set. */
  routedBy: ((module: string, targets: readonly UserId[]) => void) | undefined = undefined;

  get modules(): string[] {
    return this.forStates.map((r) => r.module);
  }

  /** True when at least one module registered callbacks. */
  get active(): boolean {
    return this.forStates.length > 0;
  }

  /** True when at least one module registered a `getVisibility` callback. */
  get hasVisibility(): boolean {
    return this.visibilityCallbacks.length > 0;
  }

  /** Register a module's `getVisibility` callback (same deadline, isolation and counters as routing). */
  registerVisibility(module: string, getVisibility: GetVisibility): void {
    let stats = this.byModule.get(module);
    if (stats === undefined) this.byModule.set(module, (stats = zeroStats()));
    this.visibilityCallbacks.push({ module, fn: getVisibility, stats });
  }

  /**
   * Whether every `getVisibility` callback lets `viewer` see `target`'s truth:
   * false as soon as one answers `false`. A callback that throws, misses the
   * deadline or answers something else than a boolean is logged and skipped
   * (no opinion), as a router is. Sync when every callback is sync.
   */
  visible(viewer: string, target: string): boolean | Promise<boolean> {
    const step = (i: number): boolean | Promise<boolean> => {
      for (; i < this.visibilityCallbacks.length; i++) {
        const cb = this.visibilityCallbacks[i] as Registered<GetVisibility>;
        const r = this.call(cb, 'getVisibility', () => cb.fn(viewer, target));
        if (r instanceof Promise) {
          const next = i + 1;
          return r.then((b) => (this.hides(cb, b.v) ? false : step(next)));
        }
        if (this.hides(cb, r.v)) return false;
      }
      return true;
    };
    return step(0);
  }

  private hides(cb: Registered<unknown>, value: unknown): boolean {
    if (value === false) return true;
    if (value !== true && value !== undefined) {
      this.invalid(cb);
      this.logger.warn(`presence module ${cb.module}.getVisibility answered ${describeThrown(value)}, not a boolean; ignoring it for this call`);
    }
    return false;
  }

  /** Register a pair of callbacks for `module` (both or neither; checked by the module API). */
  register(module: string, callbacks: PresenceRouterCallbacks): void {
    let stats = this.byModule.get(module);
    if (stats === undefined) this.byModule.set(module, (stats = zeroStats()));
    this.forStates.push({ module, fn: callbacks.getUsersForStates, stats });
    this.interested.push({ module, fn: callbacks.getInterestedUsers, stats });
  }

  /**
   * Recipients for `states`, merged over all callbacks. Sync when every callback is sync.
   * Set elements are mapped back to the engine's own state objects by user id.
   */
  usersForStates(states: readonly UserPresenceState[]): RoutedStates | Promise<RoutedStates> {
    const merged: RoutedStates = new Map();
    if (this.forStates.length === 0 || states.length === 0) return merged;
    const byUser = new Map<string, UserPresenceState>();
    for (const s of states) byUser.set(s.userId, s);
    const given = frozenCopies(states);
    const results = this.forStates.map((cb) => this.call(cb, 'getUsersForStates', () => cb.fn(given)));
    const mergeAll = (boxes: readonly Box<unknown>[]) => {
      // registrations only append: index i is still the callback that answered
      boxes.forEach((b, i) => this.mergeUsersForStates(this.forStates[i] as Registered<unknown>, b.v, byUser, merged));
      return merged;
    };
    if (results.some((r) => r instanceof Promise)) return Promise.all(results).then(mergeAll);
    return mergeAll(results as Box<unknown>[]);
  }

  /** Extra users `userId` is interested in, or ALL_USERS. Sync when every callback is sync. */
  interestedUsers(userId: UserId): Interest | Promise<Interest> {
    if (this.interested.length === 0) return EMPTY;
    const union = new Set<UserId>();
    const step = (i: number): Interest | Promise<Interest> => {
      for (; i < this.interested.length; i++) {
        const cb = this.interested[i] as Registered<PresenceRouterCallbacks['getInterestedUsers']>;
        const r = this.call(cb, 'getInterestedUsers', () => cb.fn(userId));
        if (r instanceof Promise) {
          const next = i + 1;
          return r.then((b) => (this.mergeInterest(cb, b.v, union) ? ALL_USERS : step(next)));
        }
        if (this.mergeInterest(cb, r.v, union)) return ALL_USERS;
      }
      return union;
    };
    return step(0);
  }

  /**
   * Call a module callback: exceptions, rejections and deadline misses become
   * `undefined` (logged). Answers are boxed, so a module's value is never
   * inspected as a thenable outside this method, and the returned promise (our
   * own, never a module's) never rejects.
   */
  private call<T>(cb: Registered<unknown>, name: string, fn: () => MaybePromise<T>): Box<T> | Promise<Box<T>> {
    const { module, stats } = cb;
    this.stats.calls++;
    stats.calls++;
    const started = this.clock.now();
    let r: MaybePromise<T>;
    try {
      r = fn();
    } catch (error) {
      this.stats.failures++;
      stats.failures++;
      this.logger.warn(`presence router ${module}.${name} threw; skipping it for this call`, { error: describeThrown(error) });
      return NOTHING;
    }
    if (!isThenable(r)) {
      const ms = this.clock.now() - started;
      this.stats.totalMs += ms;
      stats.totalMs += ms;
      return { v: r };
    }
    const thenable = r;
    return new Promise<Box<T>>((resolve) => {
      let done = false;
      const timer = this.clock.setTimer(this.timeoutMs, () => {
        if (done) return;
        done = true;
        this.stats.timeouts++;
        stats.timeouts++;
        this.logger.warn(`presence router ${module}.${name} did not answer within ${this.timeoutMs} ms; skipping it for this call`);
        resolve(NOTHING);
      });
      const onRejected = (error: unknown) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.stats.failures++;
        stats.failures++;
        resolve(NOTHING);
        this.logger.warn(`presence router ${module}.${name} rejected; skipping it for this call`, { error: describeThrown(error) });
      };
      try {
        // Promise.resolve may read a hostile `constructor`/`then` synchronously: that counts as a rejection.
        Promise.resolve(thenable).then((v) => {
          if (done) return;
          done = true;
          timer.cancel();
          const ms = this.clock.now() - started;
          this.stats.totalMs += ms;
          stats.totalMs += ms;
          resolve({ v });
        }, onRejected);
      } catch (error) {
        onRejected(error);
      }
    });
  }

  private invalid(cb: Registered<unknown>): void {
    this.stats.invalidResults++;
    cb.stats.invalidResults++;
  }

  /** Merge one callback's result; anything a hostile value throws while being read is caught here (entries merged before it stay). */
  private mergeUsersForStates(cb: Registered<unknown>, value: unknown, byUser: Map<string, UserPresenceState>, merged: RoutedStates): void {
    const routedBy = this.routedBy;
    const targets = routedBy === undefined ? undefined : new Set<UserId>();
    try {
      this.mergeUsersForStatesUnsafe(cb, value, byUser, merged, targets);
    } catch (error) {
      this.invalid(cb);
      this.logger.warn(`presence router ${cb.module}.getUsersForStates returned a value that could not be read; ignoring the rest of it`, {
        error: describeThrown(error),
      });
    } finally {
      if (targets !== undefined && targets.size > 0) routedBy?.(cb.module, [...targets]);
    }
  }

  private mergeUsersForStatesUnsafe(cb: Registered<unknown>, value: unknown, byUser: Map<string, UserPresenceState>, merged: RoutedStates, targets: Set<UserId> | undefined): void {
    if (value === undefined) return;
    const module = cb.module;
    const shape = ResultSchema.safeParse(value);
    if (!shape.success) {
      this.invalid(cb);
      this.logger.warn(`presence router ${module}.getUsersForStates returned ${kindOf(value)}: ${shape.error.issues[0]?.message}; skipped`);
      return;
    }
    const entries: Iterable<[unknown, unknown]> = value instanceof Map ? value.entries() : Object.entries(value as object);
    for (const [key, states] of entries) {
      // Spec §4.3: the first non-set value stops this callback's result; entries merged before it stay.
      if (!StateSetSchema.safeParse(states).success) {
        this.invalid(cb);
        this.logger.warn(`presence router ${module}.getUsersForStates: value for ${describeThrown(key)} is ${kindOf(states)}, not a Set; ignoring the rest of this result`);
        return;
      }
      const recipient = RecipientSchema.safeParse(key);
      if (!recipient.success) {
        this.invalid(cb);
        this.logger.warn(`presence router ${module}.getUsersForStates: key ${JSON.stringify(describeThrown(key)).slice(0, 80)} is not a user id; skipped`);
        continue;
      }
      let target = merged.get(recipient.data);
      for (const s of states as Set<unknown>) {
        const own = typeof s === 'object' && s !== null ? byUser.get((s as { userId?: unknown }).userId as string) : undefined;
        if (own === undefined) continue; // not one of the states we asked about
        if (target === undefined) {
          target = new Set();
          merged.set(recipient.data, target);
        }
        target.add(own);
        targets?.add(own.userId);
      }
    }
  }

  /** @returns true when the value is ALL_USERS. Hostile values are caught (ids read before the failure stay). */
  private mergeInterest(cb: Registered<unknown>, value: unknown, union: Set<UserId>): boolean {
    try {
      return this.mergeInterestUnsafe(cb, value, union);
    } catch (error) {
      this.invalid(cb);
      this.logger.warn(`presence router ${cb.module}.getInterestedUsers returned a value that could not be read; ignoring the rest of it`, {
        error: describeThrown(error),
      });
      return false;
    }
  }

  private mergeInterestUnsafe(cb: Registered<unknown>, value: unknown, union: Set<UserId>): boolean {
    if (value === undefined) return false;
    const module = cb.module;
    const r = InterestSchema.safeParse(value);
    if (!r.success) {
      this.invalid(cb);
      this.logger.warn(`presence router ${module}.getInterestedUsers returned ${kindOf(value)}: ${r.error.issues[0]?.message}; skipped`);
      return false;
    }
    if (r.data === ALL_USERS) return true;
    for (const id of r.data as Set<unknown>) {
      const u = UserIdSchema.safeParse(id);
      if (u.success) union.add(u.data);
    }
    return false;
  }
}

const EMPTY: ReadonlySet<UserId> = new Set();

/** A module's answer, boxed so that it is never resolved as a thenable by accident. */
interface Box<T> {
  readonly v: T | undefined;
}
const NOTHING: Box<never> = Object.freeze({ v: undefined });

function kindOf(v: unknown): string {
  try {
    if (v === null) return 'null';
    if (Array.isArray(v)) return 'an array';
    if (typeof v === 'object') return `a ${String((v as object).constructor?.name ?? 'object')}`;
    return `a ${typeof v}`;
  } catch {
    return 'an unreadable value';
  }
}
