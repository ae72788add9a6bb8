/**
 * `npm run bench:chart [results.json] [out.svg]`: redraw the benchmark chart
 * from saved results (default results/latest.json → results/chart.svg).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { benchmarkChart } from './charts.js';
import type { ScenarioResult } from './scenarios.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const input = process.argv[2] ?? here('./results/latest.json');
const output = process.argv[3] ?? here('./results/chart.svg');
const doc = JSON.parse(readFileSync(input, 'utf8')) as { date: string; mode: string; results: ScenarioResult[] };
writeFileSync(output, benchmarkChart(doc.results, `presence-engine benchmarks (${doc.mode}, ${doc.date.slice(0, 16)}Z)`));
process.stdout.write(`Wrote ${output}\n`);
