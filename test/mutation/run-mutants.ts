/**
 * Proof that the model and property tests bite: plant each known bug of
 * `mutants.ts` in a temporary COPY of the repository (the working tree is never
 * modified), run the model/property tests there and report whether they fail.
 *
 *   npm run test:mutants                 # every mutant
 *   npm run test:mutants -- no-dedup ... # only these ids
 *   MUTANT_JOBS=2 FC_SEED=1 npm run test:mutants
 *
 * Exit code 0 iff the unmutated copy passes and every mutant is killed.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MUTANTS, type Edit, type Mutant } from './mutants.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** MUTANT_TESTS=a,b runs only those test paths (a quick check of a few mutants); the default is the whole list. */
const TESTS = process.env.MUTANT_TESTS !== undefined ? process.env.MUTANT_TESTS.split(',') : [
  'test/model',
  'test/unit/policies.test.ts',
  'test/property/damping.test.ts',
  'test/unit/operator-visibility.test.ts',
  'test/property/large-rooms.test.ts',
  'test/property/model-all-users.test.ts',
  'test/property/isolation-semantics.test.ts',
  'test/property/timers-semantics.test.ts',
  'test/property/delivery.test.ts',
  'test/property/notifier-merge.test.ts',
  'test/property/actor-shortcut.test.ts',
  'test/unit/fan-out.test.ts',
  'test/unit/timer-slices.test.ts',
  'test/property/timer-slices.test.ts',
  'test/log/memory-log.test.ts',
  'test/property/replay.test.ts',
  'test/federation/engines.test.ts',
  'test/property/fold.test.ts',
  'test/property/per-tick.test.ts',
  'test/unit/per-tick-turns.test.ts',
];
const SKIP = new Set(['node_modules', '.git', 'benchmarks/results', 'coverage', 'data']);
const TIMEOUT_MS = Number(process.env.MUTANT_TIMEOUT_MS ?? 300_000);
const JOBS = Math.max(1, Number(process.env.MUTANT_JOBS ?? 2));

type Outcome = 'killed' | 'SURVIVED' | 'does not apply' | 'timeout (killed)' | 'passed' | 'FAILED';

interface Result {
  readonly id: string;
  readonly outcome: Outcome;
  readonly failing: string[];
  readonly seconds: number;
}

/** Copy `from` (without node_modules and other heavy or volatile folders) to a new temp dir and link node_modules. */
function copyTree(from: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'presence-mutant-'));
  cpSync(from, dir, {
    recursive: true,
    filter: (src) => !SKIP.has(relative(from, src).split('\\').join('/')),
  });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

function plantOne(dir: string, e: Edit): boolean {
  const path = join(dir, e.file);
  const text = readFileSync(path, 'utf8');
  const count = text.split(e.find).length - 1;
  if (count === 0 || (count > 1 && e.all !== true)) return false;
  writeFileSync(path, e.all === true ? text.split(e.find).join(e.replace) : text.replace(e.find, () => e.replace));
  return true;
}

function plant(dir: string, m: Mutant): boolean {
  return [m, ...(m.more ?? [])].every((e) => plantOne(dir, e));
}

function vitest(dir: string): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((done) => {
    const child = spawn(join(dir, 'node_modules/.bin/vitest'), ['run', ...TESTS], {
      cwd: dir,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', CI: '1' },
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output: output.replace(/\x1b\[[0-9;]*m/g, ''), timedOut });
    });
  });
}

function failingFiles(output: string): string[] {
  const files = new Set<string>();
  for (const line of output.split('\n')) {
    const m = /FAIL\s+(test\/\S+\.test\.ts)/.exec(line);
    if (m?.[1] !== undefined) files.add(m[1].replace(/^test\//, ''));
  }
  return [...files];
}

const LOGS = join(tmpdir(), 'presence-mutant-logs');

/** The first assertion message of a failed run, to show what caught the mutant. */
function firstFailure(output: string): string {
  const lines = output.split('\n');
  const line = lines.find((l) => /Caused by/.test(l)) ?? lines.find((l) => /AssertionError|Error: Property failed/.test(l));
  return (line ?? '').replace(/\s+/g, ' ').trim().slice(0, 160);
}

async function runOne(base: string, m: Mutant | undefined): Promise<Result> {
  const started = Date.now();
  const dir = copyTree(base);
  try {
    if (m !== undefined && !plant(dir, m)) return { id: m.id, outcome: 'does not apply', failing: [], seconds: 0 };
    const r = await vitest(dir);
    const seconds = Math.round((Date.now() - started) / 1000);
    const failing = failingFiles(r.output);
    writeFileSync(join(LOGS, `${m?.id ?? 'baseline'}.log`), r.output);
    if (m === undefined) {
      if (r.code !== 0) process.stderr.write(r.output.slice(-4000));
      return { id: '(none: baseline)', outcome: r.code === 0 ? 'passed' : 'FAILED', failing, seconds };
    }
    if (r.timedOut) return { id: m.id, outcome: 'timeout (killed)', failing, seconds };
    if (r.code !== 0) failing.push(firstFailure(r.output));
    return { id: m.id, outcome: r.code === 0 ? 'SURVIVED' : 'killed', failing, seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const mutants = wanted.length > 0 ? MUTANTS.filter((m) => wanted.includes(m.id)) : MUTANTS;
  console.log(`logs in ${LOGS}`);
  console.log(`seed FC_SEED=${process.env.FC_SEED ?? '(default from test/support/fc.ts)'}; ${mutants.length} mutant(s), ${JOBS} at a time`);
  mkdirSync(LOGS, { recursive: true });
  // One snapshot of the working tree: every run (baseline and mutants) starts from the same sources.
  const base = copyTree(ROOT);
  process.on('exit', () => rmSync(base, { recursive: true, force: true }));
  const baseline = await runOne(base, undefined);
  console.log(`baseline: ${baseline.outcome} (${baseline.seconds}s)`);
  if (baseline.outcome !== 'passed') {
    console.log('the unmutated copy fails; fix that first');
    process.exitCode = 1;
    return;
  }
  const results: Result[] = new Array(mutants.length);
  let next = 0;
  const worker = async () => {
    while (next < mutants.length) {
      const i = next++;
      const m = mutants[i] as Mutant;
      const r = await runOne(base, m);
      results[i] = r;
      console.log(`${r.id}: ${r.outcome} (${r.seconds}s) ${r.failing.join(', ')}`);
    }
  };
  await Promise.all(Array.from({ length: JOBS }, worker));
  console.log('\n| mutant | planted bug | result | failing test files |\n|---|---|---|---|');
  mutants.forEach((m, i) => {
    const r = results[i] as Result;
    console.log(`| \`${m.id}\` | ${m.description} (\`${m.file}\`) | ${r.outcome} | ${r.failing.join(', ')} |`);
  });
  const bad = results.filter((r) => r.outcome === 'SURVIVED' || r.outcome === 'does not apply');
  if (bad.length > 0) process.exitCode = 1;
}

void main();
