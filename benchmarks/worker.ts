/**
 * Child-process entry: runs scenarios and prints each result as one JSON line
 * prefixed with `RESULT ` on stdout; progress lines (`PROGRESS …`) go to stderr.
 * Usage: node --expose-gc --import tsx benchmarks/worker.ts <job>[,<job>…] [--quick]
 * where a job is `scenario` or `scenario:arg` (e.g. `memory:100000`).
 */
import { SCENARIOS } from './scenarios.js';
import { now } from './harness.js';

const [list, ...rest] = process.argv.slice(2);
const quick = rest.includes('--quick');
for (const job of (list ?? '').split(',').filter((j) => j.length > 0)) {
  const [name, arg] = job.split(':') as [string, string | undefined];
  const scenario = SCENARIOS[name];
  if (scenario === undefined) {
    process.stderr.write(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}\n`);
    process.exit(2);
  }
  const t0 = now();
  const result = await scenario({ quick, ...(arg !== undefined ? { arg } : {}), progress: (msg) => process.stderr.write(`PROGRESS ${job}: ${msg}\n`) });
  process.stdout.write(`RESULT ${JSON.stringify({ ...result, seconds: (now() - t0) / 1000 })}\n`);
}
process.exit(0);
