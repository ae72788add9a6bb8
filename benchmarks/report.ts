/**
 * The benchmark report (issue 22): every run of every scenario is kept in
 * benchmarks/results/latest{,-quick}.json; this module aggregates the runs
 * (median and range per metric), gives each target its verdict over all runs,
 * and renders the generated sections of docs/performance.md and README.md.
 * Pure functions of the results document, so test/docs can check that the
 * committed docs say what the committed results say.
 */
import { fmtNum } from './chart.js';
import type { Metric, ScenarioResult, Series } from './scenarios.js';

export interface BenchEnv {
  readonly node: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memGiB: number;
}

export interface Verdict {
  readonly key: string;
  readonly scenario: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Metric['better'];
  readonly target: number;
  /** One value per fresh-process run. */
  readonly values: readonly number[];
  readonly min: number;
  readonly median: number;
  readonly max: number;
  /** Runs that met the target. */
  readonly metRuns: number;
  /** Met only if every run met it. */
  readonly met: boolean;
  /** How far the worst run is from the target, as a fraction of the target (0 when met). */
  readonly shortBy: number;
  /** The run furthest from the target. */
  readonly worst: number;
  readonly notes: readonly string[];
}

export interface BenchDoc {
  readonly date: string;
  readonly mode: 'full' | 'quick';
  /** Fresh-process runs of each scenario. */
  readonly runs: number;
  readonly timeBase: 'wall';
  readonly seconds: number;
  readonly env: BenchEnv;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  readonly failures: readonly string[];
  /** Every run: perRun[r] holds run r's result of each scenario (its own process). */
  readonly perRun: readonly (readonly ScenarioResult[])[];
  /** Per metric the median over runs (`reps` holds the run values); series are element-wise medians. */
  readonly results: readonly ScenarioResult[];
  readonly verdicts: readonly Verdict[];
}

export function median(values: readonly number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function finite(values: readonly number[]): number[] {
  return values.filter((v) => Number.isFinite(v));
}

/** Median over runs of each scenario's metrics and series (scenarios in first-seen order). */
export function aggregate(perRun: readonly (readonly ScenarioResult[])[]): ScenarioResult[] {
  const order: string[] = [];
  const byName = new Map<string, ScenarioResult[]>();
  for (const run of perRun) {
    for (const r of run) {
      if (!byName.has(r.scenario)) {
        byName.set(r.scenario, []);
        order.push(r.scenario);
      }
      (byName.get(r.scenario) as ScenarioResult[]).push(r);
    }
  }
  return order.map((name) => {
    const rs = byName.get(name) as ScenarioResult[];
    const first = rs[0] as ScenarioResult;
    const metrics: Metric[] = first.metrics.map((m) => {
      const all = rs.map((r) => r.metrics.find((x) => x.key === m.key)).filter((x): x is Metric => x !== undefined);
      const values = all.map((x) => x.value);
      const cpus = finite(all.map((x) => x.cpu ?? NaN));
      const baselines = finite(all.map((x) => x.baseline ?? NaN));
      const notes = [...new Set(all.map((x) => x.note).filter((x): x is string => x !== undefined))];
      const { reps: _reps, cpu: _cpu, baseline: _baseline, note: _note, ...rest } = m;
      return {
        ...rest,
        value: median(values),
        reps: values,
        ...(cpus.length > 0 ? { cpu: median(cpus) } : {}),
        ...(baselines.length > 0 ? { baseline: median(baselines) } : {}),
        ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
      };
    });
    let series: Record<string, Series[]> | undefined;
    if (first.series !== undefined) {
      series = {};
      for (const [group, list] of Object.entries(first.series)) {
        series[group] = list.map((s, i) => ({
          name: s.name,
          x: s.x,
          y: s.y.map((_, j) => median(rs.map((r) => r.series?.[group]?.[i]?.y[j] ?? NaN))),
        }));
      }
    }
    return { ...first, metrics, ...(series !== undefined ? { series } : {}), seconds: median(rs.map((r) => r.seconds)) };
  });
}

function meets(m: { better: Metric['better'] }, v: number, target: number): boolean {
  if (!Number.isFinite(v)) return false;
  return m.better === 'higher' ? v >= target : v <= target;
}

/** Each metric with a target, judged over every run: met only if every run met it. */
export function verdicts(perRun: readonly (readonly ScenarioResult[])[]): Verdict[] {
  const out: Verdict[] = [];
  for (const r of aggregate(perRun)) {
    for (const m of r.metrics) {
      if (m.target === undefined) continue;
      const values = m.reps ?? [m.value];
      const target = m.target;
      const metRuns = values.filter((v) => meets(m, v, target)).length;
      const worst = m.better === 'higher' ? Math.min(...values.map((v) => (Number.isFinite(v) ? v : 0))) : Math.max(...values.map((v) => (Number.isFinite(v) ? v : Infinity)));
      const shortBy = meets(m, worst, target) ? 0 : m.better === 'higher' ? (target - worst) / target : (worst - target) / target;
      const fin = finite(values);
      out.push({
        key: m.key,
        scenario: r.scenario,
        label: m.label,
        unit: m.unit,
        better: m.better,
        target,
        values,
        min: fin.length > 0 ? Math.min(...fin) : NaN,
        median: m.value,
        max: fin.length > 0 ? Math.max(...fin) : NaN,
        metRuns,
        met: metRuns === values.length && values.length > 0,
        shortBy,
        worst,
        notes: m.note !== undefined ? [m.note] : [],
      });
    }
  }
  return out;
}

export function fmtValue(v: number | undefined, unit: string): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  if (unit === 'ms' || unit === 'µs' || unit === 'ns') return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(3);
  if (unit === 'B' || unit === 'MiB') return v.toFixed(0);
  return fmtNum(v);
}

export function fmtRange(values: readonly number[], unit: string): string {
  const fin = finite(values);
  if (fin.length === 0) return '–';
  const lo = fmtValue(Math.min(...fin), unit);
  const hi = fmtValue(Math.max(...fin), unit);
  return lo === hi ? lo : `${lo}–${hi}`;
}

function share(x: number): string {
  const p = x * 100;
  return `${p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toFixed(2)} %`;
}

/** "met (3/3 runs)" or "MISSED in 2/3 runs; worst run 4.2k (2.8 % of the target)". */
export function verdictText(v: Verdict): string {
  const n = v.values.length;
  if (v.met) return `met (${n}/${n} runs)`;
  const missed = n - v.metRuns;
  const worst = fmtValue(v.worst, v.unit);
  const how = v.better === 'higher' ? `${share(1 - v.shortBy)} of the target, ${share(v.shortBy)} short` : `${(1 + v.shortBy).toFixed(1)}× the target`;
  return `**MISSED** in ${missed}/${n} runs; worst run ${worst} ${v.unit} (${how})`;
}

export function targetText(v: Pick<Verdict, 'better' | 'target' | 'unit'>): string {
  return `${v.better === 'higher' ? '≥' : '≤'} ${fmtValue(v.target, v.unit)} ${v.unit}`;
}

export function verdictTable(doc: Pick<BenchDoc, 'verdicts'>): string {
  const rows = ['| scenario | measured quantity | target | median | range over runs | verdict |', '|---|---|---|---:|---:|---|'];
  for (const v of doc.verdicts) {
    const note = v.notes.length > 0 ? ` (${v.notes.join('; ')})` : '';
    rows.push(`| ${v.scenario} | ${v.label}${note} | ${targetText(v)} | ${fmtValue(v.median, v.unit)} | ${fmtRange(v.values, v.unit)} | ${verdictText(v)} |`);
  }
  return rows.join('\n');
}

function ratio(m: Metric): string {
  if (m.baseline === undefined || !Number.isFinite(m.baseline) || m.baseline === 0 || !Number.isFinite(m.value)) return '';
  const r = m.better === 'higher' ? m.value / m.baseline : m.baseline / m.value;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

/** Every metric: wall-clock median and range over runs, CPU-time median beside rates, naive baseline. */
export function metricsTable(results: readonly ScenarioResult[]): string {
  const rows = ['| scenario | metric | median | range over runs | unit | on CPU time (median) | naive baseline | engine/baseline |', '|---|---|---:|---:|---|---:|---:|---:|'];
  for (const r of results) {
    for (const m of r.metrics) {
      rows.push(
        `| ${r.scenario} | ${m.label} | ${fmtValue(m.value, m.unit)} | ${fmtRange(m.reps ?? [m.value], m.unit)} | ${m.unit} | ${m.cpu !== undefined ? fmtValue(m.cpu, m.unit) : ''} | ${m.baseline !== undefined ? fmtValue(m.baseline, m.unit) : ''} | ${ratio(m)} |`,
      );
    }
  }
  return rows.join('\n');
}

function load(l: readonly number[]): string {
  return l.map((x) => x.toFixed(1)).join(' ');
}

/** One line describing the run: when, where, how many runs, machine load. */
export function runLine(doc: BenchDoc): string {
  const e = doc.env;
  const shared = e.cpus <= 2 ? ` The machine has ${e.cpus} cores and was shared with other work during the run (load average ${load(doc.loadBefore)} before, ${load(doc.loadAfter)} after), so figures are ranges and are lower than on an idle machine.` : ` Load average ${load(doc.loadBefore)} before, ${load(doc.loadAfter)} after.`;
  const failed = doc.failures.length > 0 ? ` Failed jobs: ${doc.failures.join('; ')}.` : '';
  return `${doc.mode === 'full' ? 'Full' : 'Quick'} run of ${doc.date.slice(0, 16)}Z: ${doc.runs} fresh-process runs of each scenario, ${doc.seconds.toFixed(0)} s; Node ${e.node}, ${e.cpus} × ${e.cpuModel}, ${e.memGiB} GiB; rates on wall-clock time.${shared}${failed}`;
}

export const DOCS_BEGIN = '<!-- bench:begin (generated by npm run bench from benchmarks/results/latest.json) -->';
export const DOCS_END = '<!-- bench:end -->';
export const README_BEGIN = '<!-- bench:readme:begin (generated by npm run bench from benchmarks/results/latest.json) -->';
export const README_END = '<!-- bench:readme:end -->';

export function docsSection(doc: BenchDoc): string {
  return [
    DOCS_BEGIN,
    runLine(doc),
    '',
    '### Targets',
    '',
    verdictTable(doc),
    '',
    '### Every metric',
    '',
    metricsTable(doc.results),
    '',
    '![benchmark chart](../benchmarks/results/chart.svg)',
    DOCS_END,
  ].join('\n');
}

/** README's performance figures: one line per target, from the same results. */
export function readmeSection(doc: BenchDoc): string {
  const lines = doc.verdicts.map((v) => `  - \`${v.scenario}\`, ${v.label}: ${fmtRange(v.values, v.unit)} ${v.unit} (target ${targetText(v)}; ${v.met ? 'met' : `missed in ${v.values.length - v.metRuns} of ${v.values.length} runs`})`);
  return [
    README_BEGIN,
    `- Performance (docs/performance.md; ${doc.runs} fresh-process runs per scenario, wall clock, ${doc.env.cpus}-core machine${doc.env.cpus <= 2 ? ' shared with other work' : ''}, ${doc.date.slice(0, 10)}):`,
    ...lines,
    README_END,
  ].join('\n');
}

/** Replace the text between `begin` and `end` (inclusive) with `section`; throws if the markers are missing. */
export function replaceSection(text: string, begin: string, end: string, section: string, file: string): string {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${file} has no generated section: add the lines "${begin}" and "${end}" where the benchmark figures belong`);
  return text.slice(0, a) + section + text.slice(b + end.length);
}

/** The text between the markers (inclusive), or undefined. */
export function currentSection(text: string, begin: string, end: string): string | undefined {
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  return a >= 0 && b > a ? text.slice(a, b + end.length) : undefined;
}
