/**
 * Benchmark runner (issue 6). `npm run bench` (full, < 10 min) or
 * `npm run bench:quick` (< 1 min). Spawns node child processes with
 * --expose-gc (one per scenario in full mode, so heap measurements start from a
 * clean process), prints progress and a results table, writes
 * benchmarks/results/latest{,-quick}.json and chart{,-quick}.svg, and (full
 * mode) refreshes the generated section of docs/performance.md.
 *
 * Flags: --quick, --only=a,b (scenario names), --no-docs, --wall (rates from
 * wall-clock time instead of process CPU time).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { fmtNum } from './chart.js';
import { benchmarkChart } from './charts.js';
import type { Metric, ScenarioResult } from './scenarios.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wall = args.includes('--wall');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const writeDocs = !quick && !args.includes('--no-docs') && only === undefined;

interface Job {
  readonly jobs: string;
  readonly heapMb: number;
  /** Extra V8 flags for this job's process (a deployment setting being measured). */
  readonly flags?: readonly string[];
}

/** The young-generation size recommended for latency (README, docs/performance.md): measured as its own latency job. */
const SMALL_YOUNG_GEN = ['--max-semi-space-size=2'];

const FULL: Job[] = [
  { jobs: 'machine', heapMb: 4096 },
  { jobs: 'ingest', heapMb: 4096 },
  { jobs: 'latency', heapMb: 4096 },
  { jobs: 'latency:small-young-gen', heapMb: 4096, flags: SMALL_YOUNG_GEN },
  { jobs: 'latency:per-tick', heapMb: 4096 },
  { jobs: 'latency:per-tick+small-young-gen', heapMb: 4096, flags: SMALL_YOUNG_GEN },
  { jobs: 'large-room', heapMb: 4096 },
  { jobs: 'storm', heapMb: 4096 },
  { jobs: 'all-users-router', heapMb: 4096 },
  { jobs: 'federation', heapMb: 4096 },
  { jobs: 'replay', heapMb: 4096 },
  { jobs: 'get-new-events', heapMb: 4096 },
  { jobs: 'memory:10000', heapMb: 4096 },
  { jobs: 'memory:100000', heapMb: 4096 },
  { jobs: 'memory:1000000', heapMb: 12288 },
  { jobs: 'growth:1000', heapMb: 4096 },
  { jobs: 'growth:10000', heapMb: 4096 },
  { jobs: 'growth:100000', heapMb: 4096 },
  { jobs: 'growth:1000000', heapMb: 12288 },
  { jobs: 'room-size', heapMb: 4096 },
];
// Quick: five processes (memory in its own, so its heap deltas stay meaningful; the machine probe's 128 MB of arrays in its own).
const QUICK: Job[] = [
  { jobs: 'machine', heapMb: 4096 },
  { jobs: 'ingest,latency,latency:per-tick,large-room,storm', heapMb: 4096 },
  { jobs: 'all-users-router,federation,replay,get-new-events,growth:1000,growth:10000,room-size', heapMb: 4096 },
  { jobs: 'memory:10000,memory:100000', heapMb: 4096 },
  { jobs: 'latency:small-young-gen,latency:per-tick+small-young-gen', heapMb: 4096, flags: SMALL_YOUNG_GEN },
];

function selected(): Job[] {
  const plan = quick ? QUICK : FULL;
  if (only === undefined) return plan;
  return plan
    .map((j) => ({ ...j, jobs: j.jobs.split(',').filter((x) => only.includes(x.split(':')[0] as string) || only.includes(x)).join(',') }))
    .filter((j) => j.jobs.length > 0);
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
      { cwd: root, env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production', BENCH_TIME: wall ? 'wall' : 'cpu' }, stdio: ['ignore', 'pipe', 'pipe'] },
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

function fmtValue(v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 'ms' || unit === 'µs') return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  if (unit === 'B') return v.toFixed(0);
  if (unit === 'MiB') return v.toFixed(0);
  return fmtNum(v);
}

function ratio(m: Metric): string {
  if (m.baseline === undefined || !Number.isFinite(m.baseline) || m.baseline === 0 || !Number.isFinite(m.value)) return '';
  const r = m.better === 'higher' ? m.value / m.baseline : m.baseline / m.value;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

function verdict(m: Metric): string {
  if (m.target === undefined) return '';
  const ok = m.better === 'higher' ? m.value >= m.target : m.value <= m.target;
  return `${ok ? 'met' : 'MISSED'} (${m.better === 'higher' ? '≥' : '≤'} ${fmtValue(m.target, m.unit)})`;
}

function table(results: readonly ScenarioResult[]): string {
  const rows: string[] = ['| scenario | metric | engine | unit | naive baseline | engine/baseline | target |', '|---|---|---:|---|---:|---:|---|'];
  for (const r of results) {
    for (const m of r.metrics) {
      rows.push(`| ${r.scenario} | ${m.label} | ${fmtValue(m.value, m.unit)} | ${m.unit} | ${fmtValue(m.baseline, m.unit)} | ${ratio(m)} | ${verdict(m)} |`);
    }
  }
  return rows.join('\n');
}

const jobs = selected();
const env = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memGiB: +(totalmem() / 2 ** 30).toFixed(1) };
const loadBefore = loadavg();
status(`presence-engine benchmarks: ${quick ? 'quick' : 'full'}, ${jobs.length} job(s), rates on ${wall ? 'wall-clock' : 'CPU'} time, load ${loadBefore.map((l) => l.toFixed(1)).join(' ')}`);
if (!isTty) process.stdout.write('');
const all: ScenarioResult[] = [];
const failures: string[] = [];
for (let i = 0; i < jobs.length; i++) {
  const job = jobs[i] as Job;
  status(`[${i + 1}/${jobs.length}] ${elapsed()} ${job.jobs} …`);
  try {
    all.push(...(await runJob(job, i, jobs.length)));
  } catch (error) {
    failures.push(`${job.jobs}: ${(error as Error).message}`);
    process.stderr.write(`\n${(error as Error).message}\n`);
  }
}
const loadAfter = loadavg();
if (isTty) process.stdout.write('\n');
const seconds = (performance.now() - started) / 1000;
const md = table(all);
process.stdout.write(`\n${md}\n\nTotal ${seconds.toFixed(0)} s; load average before ${loadBefore.map((l) => l.toFixed(1)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(1)).join(' ')}.\n`);

const outDir = join(here, 'results');
if (!existsSync(outDir)) mkdirSync(outDir, { recursive: true });
const suffix = quick ? '-quick' : '';
const stamp = new Date().toISOString();
const doc = { date: stamp, failures, mode: quick ? 'quick' : 'full', timeBase: wall ? 'wall' : 'cpu', seconds, env, loadBefore, loadAfter, results: all };
writeFileSync(join(outDir, `latest${suffix}.json`), `${JSON.stringify(doc, null, 1)}\n`);
writeFileSync(join(outDir, `chart${suffix}.svg`), benchmarkChart(all, `presence-engine benchmarks (${quick ? 'quick' : 'full'}, ${new Date().toISOString().slice(0, 16)}Z)`));
process.stdout.write(`Wrote benchmarks/results/latest${suffix}.json and chart${suffix}.svg\n`);

if (writeDocs) {
  const path = join(root, 'docs', 'performance.md');
  const begin = '<!-- bench:begin (generated by npm run bench) -->';
  const end = '<!-- bench:end -->';
  const generated = [
    begin,
    `Last full run: ${stamp.slice(0, 16)}Z, ${env.node}, ${env.cpus} × ${env.cpuModel}, ${env.memGiB} GiB; ${seconds.toFixed(0)} s; rates on ${wall ? 'wall-clock' : 'process CPU'} time; load average ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} after.`,
    '',
    md,
    '',
    '![benchmark chart](../benchmarks/results/chart.svg)',
    end,
  ].join('\n');
  const current = existsSync(path) ? readFileSync(path, 'utf8') : `# Performance\n\n${begin}\n${end}\n`;
  const a = current.indexOf(begin);
  const b = current.indexOf(end);
  const next = a >= 0 && b > a ? current.slice(0, a) + generated + current.slice(b + end.length) : `${current}\n${generated}\n`;
  writeFileSync(path, next);
  process.stdout.write('Updated docs/performance.md\n');
}
