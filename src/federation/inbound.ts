/**
 * Inbound federation helpers for transports: a federation transaction carries a
 * list of EDUs of any type; the presence ones go to the engine's
 * `receiveFederationEdu`, which validates each `push` item (spec §3.9,
 * decisions.md) and drops and counts the invalid ones.
 */
import { z } from 'zod';
import { serverNameOf } from '../domain/ids.js';
import { InvalidInputError, RemoteUserLimitError } from '../errors.js';
import { PresencePushItemSchema } from './edu.js';

/** One EDU of a transaction body (`{ edu_type, content }`); other fields are ignored. */
export const FederationEduSchema = z.object({ edu_type: z.string(), content: z.unknown() });

/** The engine surface inbound delivery needs. */
export interface FederationReceiver {
  receiveFederationEdu(origin: string, content: unknown): { applied: number; dropped: number };
}

export interface TransactionResult {
  /** Presence items applied. */
  applied: number;
  /** Presence items dropped by validation. */
  dropped: number;
  /** EDUs that are not `m.presence` or are malformed envelopes (not presence's business). */
  ignoredEdus: number;
}

/**
 * Feed the `m.presence` EDUs of a transaction from `origin` to `receiver`.
 * `origin` must be the authenticated sending server. Never throws on bad input
 * (an engine that was stopped still throws `EngineStoppedError`).
 */
export function receiveTransactionEdus(receiver: FederationReceiver, origin: string, edus: unknown): TransactionResult {
  const result: TransactionResult = { applied: 0, dropped: 0, ignoredEdus: 0 };
  if (!Array.isArray(edus)) return result;
  for (const raw of edus) {
    const r = FederationEduSchema.safeParse(raw);
    if (!r.success || r.data.edu_type !== 'm.presence') {
      result.ignoredEdus++;
      continue;
    }
    const { applied, dropped } = receiver.receiveFederationEdu(origin, r.data.content);
    result.applied += applied;
    result.dropped += dropped;
  }
  return result;
}

/**
 * Bounds on inbound federation work, for {@link InboundFederation}. Counts
 * only; every one is a whole positive number.
 */
export const InboundLimitsSchema = z.strictObject({
  /** Presence items examined per transaction; later ones are dropped unexamined and counted. */
  maxItemsPerTransaction: z.number().int().positive().max(1_000_000).default(5_000),
  /** Items validated and applied between two yields to the event loop. */
  itemsPerSlice: z.number().int().positive().max(100_000).default(250),
  /** Remote users held per origin server; items for further new users of that server are refused. */
  maxRemoteUsersPerServer: z.number().int().positive().max(100_000_000).default(100_000),
  /** Remote users held in total, over every origin. */
  maxRemoteUsers: z.number().int().positive().max(100_000_000).default(1_000_000),
});
export type InboundLimits = z.input<typeof InboundLimitsSchema>;

export interface BoundedTransactionResult extends TransactionResult {
  /** EDUs that are not `{ edu_type: string, content }` at all (part of `ignoredEdus`). */
  malformedEdus: number;
  /** Items past `maxItemsPerTransaction`, dropped without being examined. */
  overLimitItems: number;
  /** Valid items dropped because their (new) user would exceed a remote-user cap. */
  refusedItems: number;
  /** One error per cap hit in this transaction (per origin, or in total). */
  limitErrors: RemoteUserLimitError[];
}

export interface InboundFederationOptions {
  /** Remote users the engine already holds (e.g. from `engine.knownUsers()` at start-up); they count towards the caps. */
  readonly knownRemoteUsers?: Iterable<string> | undefined;
  /** How to give the event loop a turn between slices (default: `setImmediate`). */
  readonly yieldNow?: (() => Promise<void>) | undefined;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Bounded inbound delivery: the `m.presence` items of a transaction are
 * validated here in slices of `itemsPerSlice`, with a yield to the event loop
 * between slices, at most `maxItemsPerTransaction` of them; the valid ones go
 * to the receiver slice by slice. New remote users are admitted only while
 * their origin holds fewer than `maxRemoteUsersPerServer` and the server fewer
 * than `maxRemoteUsers`; beyond that their items are refused and the result
 * carries a {@link RemoteUserLimitError}. Users stay counted once admitted
 * (the engine keeps a record for every user it has met). Never throws on bad
 * input (a stopped engine still throws `EngineStoppedError`).
 */
export class InboundFederation {
  private readonly limits: z.output<typeof InboundLimitsSchema>;
  private readonly usersByOrigin = new Map<string, Set<string>>();
  private total = 0;
  private readonly yieldNow: () => Promise<void>;

  /** @throws InvalidInputError for limits that are not whole positive numbers. */
  constructor(
    private readonly receiver: FederationReceiver,
    limits: InboundLimits = {},
    options: InboundFederationOptions = {},
  ) {
    const parsed = InboundLimitsSchema.safeParse(limits);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new InvalidInputError(`limits.${issue?.path.join('.') ?? ''}`, issue?.message ?? 'invalid');
    }
    this.limits = parsed.data;
    this.yieldNow = options.yieldNow ?? nextTick;
    for (const id of options.knownRemoteUsers ?? []) this.remember(serverNameOf(id), id);
  }

  /** Remote users counted, in total or for one origin. */
  remoteUsers(origin?: string): number {
    return origin === undefined ? this.total : (this.usersByOrigin.get(origin)?.size ?? 0);
  }

  /** Feed the `m.presence` EDUs of a transaction from the authenticated `origin`. */
  async receive(origin: string, edus: unknown): Promise<BoundedTransactionResult> {
    const result: BoundedTransactionResult = { applied: 0, dropped: 0, ignoredEdus: 0, malformedEdus: 0, overLimitItems: 0, refusedItems: 0, limitErrors: [] };
    if (!Array.isArray(edus)) return result;
    const refused = { server: 0, total: 0 };
    let budget = this.limits.maxItemsPerTransaction;
    let examined = 0;
    for (const raw of edus) {
      const edu = FederationEduSchema.safeParse(raw);
      if (!edu.success || edu.data.edu_type !== 'm.presence') {
        result.ignoredEdus++;
        if (!edu.success) result.malformedEdus++;
        continue;
      }
      // The push array is checked by hand: a schema would walk every item before the budget applies.
      const content = edu.data.content;
      const push = typeof content === 'object' && content !== null && !Array.isArray(content) ? (content as { push?: unknown }).push : null;
      if (!Array.isArray(push)) {
        // Not an object with a push array: the receiver drops and counts it.
        const r = this.receiver.receiveFederationEdu(origin, content);
        result.applied += r.applied;
        result.dropped += r.dropped;
        continue;
      }
      const take = Math.min(push.length, budget);
      result.overLimitItems += push.length - take;
      budget -= take;
      for (let start = 0; start < take; start += this.limits.itemsPerSlice) {
        if (examined > 0) await this.yieldNow();
        const kept: unknown[] = [];
        const end = Math.min(take, start + this.limits.itemsPerSlice);
        for (let i = start; i < end; i++) {
          // Invalid items go on to the receiver, which drops and counts them (the budget bounds that work).
          const item = PresencePushItemSchema.safeParse(push[i]);
          if (item.success && serverNameOf(item.data.user_id) === origin) {
            const verdict = this.admit(origin, item.data.user_id);
            if (verdict !== 'ok') {
              refused[verdict]++;
              result.refusedItems++;
              continue;
            }
          }
          kept.push(push[i]);
        }
        examined += end - start;
        if (kept.length > 0) {
          const r = this.receiver.receiveFederationEdu(origin, { push: kept });
          result.applied += r.applied;
          result.dropped += r.dropped;
        }
      }
    }
    if (refused.server > 0) result.limitErrors.push(new RemoteUserLimitError(origin, 'server', this.limits.maxRemoteUsersPerServer, refused.server));
    if (refused.total > 0) result.limitErrors.push(new RemoteUserLimitError(origin, 'total', this.limits.maxRemoteUsers, refused.total));
    return result;
  }

  private admit(origin: string, userId: string): 'ok' | 'server' | 'total' {
    const users = this.usersByOrigin.get(origin);
    if (users?.has(userId) === true) return 'ok';
    if ((users?.size ?? 0) >= this.limits.maxRemoteUsersPerServer) return 'server';
    if (this.total >= this.limits.maxRemoteUsers) return 'total';
    this.remember(origin, userId);
    return 'ok';
  }

  private remember(origin: string, userId: string): void {
    let users = this.usersByOrigin.get(origin);
    if (users === undefined) this.usersByOrigin.set(origin, (users = new Set()));
    if (users.has(userId)) return;
    users.add(userId);
    this.total++;
  }
}
