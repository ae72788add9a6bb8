/**
 * Benchmark runner (issues 6 and 22). `npm run bench` (full, ~25 min on the
 * 2-core VM) or `npm run bench:quick` (~3 min). Every scenario runs in its own
 * fresh node process (--expose-gc), `--runs` times (default 3), in rounds (each
 * round runs every scenario once), so neither the order of scenarios nor a
 * shared process can change a result. Rates are on wall-clock time (CPU time
 * beside). Prints each target with its verdict over all runs, writes every run
 * to benchmarks/results/latest{,-quick}.json and the chart from it, and (full
 * plan, all scenarios) regenerates the generated sections of
 * docs/performance.md and README.md from that JSON.
 *
 * Flags: --quick, --only=a,b (scenario names), --runs=N, --no-docs,
 * --young-gen (full plan: also the latency jobs in processes started with
 * --max-semi-space-size=2; left out by default to keep the plan ≤ 25 min on
 * the 2-core VM), --from-results (no runs: regenerate chart and docs from
 * latest.json).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { benchmarkChart } from './charts.js';
import type { ScenarioResult } from './scenarios.js';
import { aggregate, docsSection, DOCS_BEGIN, DOCS_END, metricsTable, readmeSection, README_BEGIN, README_END, replaceSection, verdicts, verdictTable, type BenchDoc } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const fromResults = args.includes('--from-results');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice(7) ?? 3);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${String(runs)}`);
const writeDocs = !quick && !args.includes('--no-docs') && only === undefined;

interface Job {
  readonly jobs: string;
  readonly heapMb: number;
  /** Extra V8 flags for this job's process (a deployment setting being measured). */
  readonly flags?: readonly string[];
}

/** The young-generation size suggested for latency: measured as its own latency jobs. */
const SMALL_YOUNG_GEN = ['--max-semi-space-size=2'];

// One scenario per job: each runs in a fresh process.
const FULL: Job[] = [
  { jobs: 'machine', heapMb: 4096 },
  { jobs: 'ingest', heapMb: 4096 },
  { jobs: 'latency', heapMb: 4096 },
  { jobs: 'latency:per-tick', heapMb: 4096 },
  ...(args.includes('--young-gen')
    ? [
        { jobs: 'latency:small-young-gen', heapMb: 4096, flags: SMALL_YOUNG_GEN },
        { jobs: 'latency:per-tick+small-young-gen', heapMb: 4096, flags: SMALL_YOUNG_GEN },
      ]
    : []),
  { jobs: 'large-room', heapMb: 4096 },
  { jobs: 'small-server', heapMb: 4096 },
  { jobs: 'storm', heapMb: 4096 },
  { jobs: 'all-users-router', heapMb: 4096 },
  { jobs: 'federation', heapMb: 4096 },
  { jobs: 'replay', heapMb: 4096 },
  { jobs: 'get-new-events', heapMb: 4096 },
  { jobs: 'get-new-events:1000000', heapMb: 8192 },
  { jobs: 'memory:10000', heapMb: 4096 },
  { jobs: 'memory:100000', heapMb: 4096 },
  { jobs: 'memory:1000000', heapMb: 12288 },
  { jobs: 'growth:1000', heapMb: 4096 },
  { jobs: 'growth:10000', heapMb: 4096 },
  { jobs: 'growth:100000', heapMb: 4096 },
  { jobs: 'growth:1000000', heapMb: 12288 },
  { jobs: 'room-size', heapMb: 4096 },
];
// Quick: smaller workloads, the same one-scenario-per-process rule (no shared-process inflation).
const QUICK: Job[] = [
  { jobs: 'machine', heapMb: 4096 },
  { jobs: 'ingest', heapMb: 4096 },
  { jobs: 'latency', heapMb: 4096 },
  { jobs: 'latency:per-tick', heapMb: 4096 },
  { jobs: 'large-room', heapMb: 4096 },
  { jobs: 'small-server', heapMb: 4096 },
  { jobs: 'replay', heapMb: 4096 },
  { jobs: 'get-new-events', heapMb: 4096 },
  { jobs: 'memory:10000', heapMb: 4096 },
  { jobs: 'growth:10000', heapMb: 4096 },
];

function selected(): Job[] {
  const plan = quick ? QUICK : FULL;
  if (only === undefined) return plan;
  return plan.filter((j) => only.includes(j.jobs.split(':')[0] as string) || only.includes(j.jobs));
}

const started = performance.now();
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
const isTty = process.stdout.isTTY === true;
function status(line: string): void {
  if (isTty) process.stdout.write(`\r\x1b[K${line.slice(0, (process.stdout.columns ?? 120) - 1)}`);
  else process.stdout.write(`${line}\n`);
}

function runJob(job: Job, index: number, total: number): Promise<ScenarioResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', `--max-old-space-size=${job.heapMb}`, ...(job.flags ?? []), '--import', 'tsx', join(here, 'worker.ts'), job.jobs, ...(quick ? ['--quick'] : [])],
      { cwd: root, env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const results: ScenarioResult[] = [];
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      let k: number;
      while ((k = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, k);
        out = out.slice(k + 1);
        if (line.startsWith('RESULT ')) results.push(JSON.parse(line.slice(7)) as ScenarioResult);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const lines = err.split('\n');
      err = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('PROGRESS ')) status(`[${index + 1}/${total}] ${elapsed()} ${l.slice(9)}`);
        else if (l.trim().length > 0 && !l.includes('npm warn')) process.stderr.write(`${l}\n`);
    });
    child.on('exit', (code) => (code === 0 ? resolve(results) : reject(new Error(`benchmark job ${job.jobs} exited with ${String(code)}`))));
  });
}

const outDir = join(here, 'results');
const suffix = quick ? '-quick' : '';
const resultsFile = join(outDir, `latest${suffix}.json`);

async function measure(): Promise<BenchDoc> {
  const jobs = selected();
  const env = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memGiB: +(totalmem() / 2 ** 30).toFixed(1) };
  const loadBefore = loadavg();
  status(`presence-engine benchmarks: ${quick ? 'quick' : 'full'}, ${jobs.length} scenario(s) × ${runs} fresh-process runs, wall clock, load ${loadBefore.map((l) => l.toFixed(1)).join(' ')}`);
  const perRun: ScenarioResult[][] = [];
  const failures: string[] = [];
  const total = jobs.length * runs;
  for (let r = 0; r < runs; r++) {
    const round: ScenarioResult[] = [];
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i] as Job;
      const n = r * jobs.length + i;
      status(`[${n + 1}/${total}] ${elapsed()} run ${r + 1}: ${job.jobs} …`);
      try {
        round.push(...(await runJob(job, n, total)));
      } catch (error) {
        failures.push(`run ${r + 1} ${job.jobs}: ${(error as Error).message}`);
        process.stderr.write(`\n${(error as Error).message}\n`);
      }
    }
    perRun.push(round);
  }
  const loadAfter = loadavg();
  if (isTty) process.stdout.write('\n');
  return {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    runs,
    timeBase: 'wall',
    seconds: (performance.now() - started) / 1000,
    env,
    loadBefore,
    loadAfter,
    failures,
    perRun,
    results: aggregate(perRun),
    verdicts: verdicts(perRun),
  };
}

/** With --from-results: the saved runs, aggregated and judged again (the runs themselves are unchanged). */
function reload(): BenchDoc {
  const saved = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchDoc;
  return { ...saved, results: aggregate(saved.perRun), verdicts: verdicts(saved.perRun) };
}

const doc: BenchDoc = fromResults ? reload() : await measure();
process.stdout.write(`\n${metricsTable(doc.results)}\n\nTargets (${doc.runs} fresh-process runs each, wall clock):\n\n${verdictTable(doc)}\n\nTotal ${doc.seconds.toFixed(0)} s; load average before ${doc.loadBefore.map((l) => l.toFixed(1)).join(' ')}, after ${doc.loadAfter.map((l) => l.toFixed(1)).join(' ')}.\n`);
if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true });
writeFileSync(resultsFile, `${JSON.stringify(doc, null, 1)}\n`);
writeFileSync(join(outDir, `chart${suffix}.svg`), benchmarkChart(doc.results, `presence-engine benchmarks (${doc.mode}, medians of ${doc.runs} runs, ${doc.date.slice(0, 16)}Z)`));
process.stdout.write(`Wrote benchmarks/results/latest${suffix}.json and chart${suffix}.svg\n`);

if (writeDocs) {
  const perf = join(root, 'docs', 'performance.md');
  writeFileSync(perf, replaceSection(readFileSync(perf, 'utf8'), DOCS_BEGIN, DOCS_END, docsSection(doc), 'docs/performance.md'));
  const readme = join(root, 'README.md');
  writeFileSync(readme, replaceSection(readFileSync(readme, 'utf8'), README_BEGIN, README_END, readmeSection(doc), 'README.md'));
  process.stdout.write('Updated docs/performance.md and README.md\n');
}
