/**
 * The performance figures in README.md and docs/performance.md are what the
 * committed results say: their generated sections equal what the report
 * renders from benchmarks/results/latest.json, the JSON's aggregate and
 * verdicts follow from the runs it keeps, and every target was judged over
 * at least three fresh-process runs on wall-clock time.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  aggregate,
  currentSection,
  docsSection,
  DOCS_BEGIN,
  DOCS_END,
  readmeSection,
  README_BEGIN,
  README_END,
  verdicts,
  verdictText,
  type BenchDoc,
} from '../../benchmarks/report.js';
import type { ScenarioResult } from '../../benchmarks/scenarios.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = JSON.parse(readFileSync(join(root, 'benchmarks', 'results', 'latest.json'), 'utf8')) as BenchDoc;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const perf = readFileSync(join(root, 'docs', 'performance.md'), 'utf8');

describe('generated performance figures', () => {
  it('README.md carries the section rendered from latest.json', () => {
    expect(currentSection(readme, README_BEGIN, README_END)).toBe(readmeSection(doc));
  });

  it('docs/performance.md carries the section rendered from latest.json', () => {
    expect(currentSection(perf, DOCS_BEGIN, DOCS_END)).toBe(docsSection(doc));
  });

  it('the aggregate and the verdicts in latest.json follow from the runs it keeps', () => {
    expect(JSON.parse(JSON.stringify(aggregate(doc.perRun)))).toEqual(doc.results);
    expect(JSON.parse(JSON.stringify(verdicts(doc.perRun)))).toEqual(doc.verdicts);
  });

  it('is a full run on wall clock with every target judged over at least three fresh-process runs', () => {
    expect(doc.mode).toBe('full');
    expect(doc.timeBase).toBe('wall');
    expect(doc.runs).toBeGreaterThanOrEqual(3);
    expect(doc.perRun.length).toBe(doc.runs);
    expect(doc.verdicts.length).toBeGreaterThan(5);
    for (const v of doc.verdicts) expect(v.values.length, v.key).toBeGreaterThanOrEqual(3);
  });
});

describe('verdicts over runs', () => {
  const run = (value: number): ScenarioResult[] => [
    { scenario: 's', title: 't', params: {}, seconds: 1, metrics: [{ key: 'k', label: 'rate', value, unit: 'changes/s', better: 'higher', target: 100 }] },
  ];

  it('is met only if every run met the target', () => {
    const [all] = verdicts([run(120), run(100), run(150)]);
    expect(all?.met).toBe(true);
    expect(verdictText(all as NonNullable<typeof all>)).toBe('met (3/3 runs)');
    const [one] = verdicts([run(120), run(60), run(150)]);
    expect(one?.met).toBe(false);
    expect(one?.metRuns).toBe(2);
    expect(one?.shortBy).toBeCloseTo(0.4);
    expect(one?.median).toBe(120);
    expect(verdictText(one as NonNullable<typeof one>)).toBe('**MISSED** in 1/3 runs; worst run 60 changes/s (60 % of the target, 40 % short)');
  });

  it('judges lower-is-better targets by the worst (highest) run', () => {
    const lat = (value: number): ScenarioResult[] => [
      { scenario: 's', title: 't', params: {}, seconds: 1, metrics: [{ key: 'p99', label: 'p99', value, unit: 'ms', better: 'lower', target: 2 }] },
    ];
    const [v] = verdicts([lat(1.5), lat(3), lat(1.9)]);
    expect(v?.met).toBe(false);
    expect(v?.shortBy).toBeCloseTo(0.5);
    expect(verdictText(v as NonNullable<typeof v>)).toBe('**MISSED** in 1/3 runs; worst run 3.00 ms (1.5× the target)');
  });
});
