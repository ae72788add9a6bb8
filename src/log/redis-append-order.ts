/**
 * The order of append calls on Redis Cluster (src/log/redis-log.ts): there is
 * no pipeline across slots, so each call is its own command, and a partition's
 * calls must still land in sequence-number order for the gap check.
 */
/**
 * Per-slot sending (Redis Cluster): partitions in parallel, each partition's calls
 * one after the other, so a tenure's sequence numbers land in order (the append
 * script takes a gap for lost entries). After a failure the partition's later
 * calls are not sent; they are retried after it, in order.
 */
export async function inOrderPerPartition<C extends { readonly partition: number }>(calls: readonly C[], send: (call: C) => Promise<[Error | null, unknown]>): Promise<[Error | null, unknown][]> {
  const out: [Error | null, unknown][] = new Array<[Error | null, unknown]>(calls.length);
  const byPartition = new Map<number, number[]>();
  calls.forEach((c, i) => byPartition.set(c.partition, [...(byPartition.get(c.partition) ?? []), i]));
  await Promise.all(
    [...byPartition.values()].map(async (indices) => {
      let failed: Error | null = null;
      for (const i of indices) {
        if (failed !== null) {
          out[i] = [new Error(`not sent: an earlier append of the partition failed (${failed.message})`), null];
          continue;
        }
        const r = await send(calls[i] as C);
        out[i] = r;
        failed = r[0];
      }
    }),
  );
  return out;
}
