/**
 * Case counts of the hostile-input fuzzers: modest by default (the whole
 * directory stays well under 30 s); `DEEP=1` (`npm run test:deep`) runs the
 * deep counts, over 100,000 HTTP, EDU and config cases in total.
 */
import { FC_SEED } from '../support/fc.js';

export const DEEP = process.env.DEEP === '1';

/** fast-check parameters for a fuzzer with `normal` cases by default and `deep` under DEEP=1. */
export function fuzzParams(normal: number, deep: number): { seed: number; numRuns: number; endOnFailure: true } {
  return { seed: FC_SEED, numRuns: DEEP ? deep : normal, endOnFailure: true };
}

/** Vitest timeout for a fuzzer test. */
export const FUZZ_TIMEOUT_MS = DEEP ? 3_600_000 : 60_000;

/** Names of every Object.prototype member (and `__proto__`), the ids most likely to hit a plain-object lookup. */
export const PROTOTYPE_NAMES: readonly string[] = [...new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__'])];
