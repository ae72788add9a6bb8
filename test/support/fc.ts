/**
 * fast-check settings shared by every property and model test. The seed is
 * fixed (env FC_SEED, default below) so CI is reproducible; on failure
 * fast-check prints the seed and the counterexample path so it can be replayed
 * with `FC_SEED=<seed> npx vitest run <file>`. FC_NUM_RUNS scales the runs
 * (`npm run test:deep` raises it).
 */
import fc from 'fast-check';

export const FC_SEED = Number(process.env.FC_SEED ?? 20261123);
const scale = Number(process.env.FC_NUM_RUNS ?? 0);

/** Parameters for `fc.assert`: `runs` is the default for CI, scaled up by FC_NUM_RUNS. */
export function fcParams<T = unknown>(runs = 100, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  return { seed: FC_SEED, numRuns: scale > 0 ? Math.max(runs, scale) : runs, endOnFailure: true, ...extra };
}
