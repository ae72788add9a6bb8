/**
 * Inbound federation helpers for transports: a federation transaction carries a
 * list of EDUs of any type; the presence ones go to the engine's
 * `receiveFederationEdu`, which validates each `push` item (spec §3.9,
 * decisions.md) and drops and counts the invalid ones.
 */
import { z } from 'zod';

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
