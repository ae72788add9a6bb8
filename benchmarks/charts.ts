/**
 * The benchmark chart (benchmarks/results/chart.svg): one quantity and one
 * unit per axis, latency on a percentile axis. `npm run bench` writes it;
 * `npm run bench:chart` redraws it from results/latest.json.
 */
import { renderSvg, type Panel } from './chart.js';
import type { ScenarioResult, Series } from './scenarios.js';

function metric(results: readonly ScenarioResult[], key: string): number | undefined {
  for (const r of results) for (const m of r.metrics) if (m.key === key) return m.value;
  return undefined;
}

export function benchmarkPanels(results: readonly ScenarioResult[]): Panel[] {
  const us = [1_000, 10_000, 100_000, 1_000_000];
  const pick = (keyOf: (u: number) => string, name: string): Series => {
    const x: number[] = [];
    const y: number[] = [];
    for (const u of us) {
      const v = metric(results, keyOf(u));
      if (v !== undefined) {
        x.push(u);
        y.push(v);
      }
    }
    return { name, x, y };
  };
  const growthX = 'users (U); rooms of ~50, 10% listening';
  const panels: Panel[] = [
    { title: 'Throughput vs U', xLabel: growthX, yLabel: 'deliveries per second', x: 'log', y: 'log', series: [pick((u) => `growth.${u}.deliveries`, 'deliveries/s (engine-counted)')] },
    { title: 'Cost per input vs U', xLabel: growthX, yLabel: 'wall time per input (µs)', x: 'log', y: 'log', series: [pick((u) => `growth.${u}.input`, 'µs per input')] },
    {
      title: 'Heap per user vs U',
      xLabel: 'users (U)',
      yLabel: 'heap (bytes)',
      x: 'log',
      y: 'log',
      series: [pick((u) => `mem.${u}.offline`, 'per known offline user'), pick((u) => `mem.${u}.online`, 'per online user (with actor)'), pick((u) => `mem.${u}.membership`, 'per membership')],
      refs: [
        { y: 300, label: 'target 300 B' },
        { y: 4096, label: 'target 4 KB' },
      ],
    },
  ];
  const named = (scenario: string, suffix: string): Series[] =>
    (results.find((r) => r.scenario === scenario)?.series?.latency ?? []).map((s) => ({ ...s, name: `${s.name}${suffix}` }));
  const lat = [
    ...named('latency', ''),
    ...named('latency-small-young-gen', ', --max-semi-space-size=2'),
    ...named('latency-per-tick', ', per-tick turns'),
    ...named('latency-per-tick-small-young-gen', ', per-tick turns, --max-semi-space-size=2'),
  ];
  if (lat.length > 0) {
    panels.push({ title: 'Input → emission latency (50% of closed-loop max)', xLabel: 'percentile', yLabel: 'latency (ms)', x: 'percentile', y: 'log', series: lat, refs: [{ y: 2, label: 'p99 target 2 ms' }] });
  }
  const rs = results.find((r) => r.scenario === 'room-size')?.series?.roomSize ?? [];
  const change = rs.filter((s) => s.name.startsWith('µs'));
  const delivery = rs.filter((s) => s.name.startsWith('ns'));
  if (change.length > 0) panels.push({ title: 'Cost per change vs room size', xLabel: 'room members (20% listening)', yLabel: 'wall time per notified change (µs)', x: 'log', y: 'log', series: change });
  if (delivery.length > 0) panels.push({ title: 'Cost per delivery vs room size', xLabel: 'room members (20% listening)', yLabel: 'wall time per delivery (ns)', x: 'log', y: 'log', series: delivery });
  return panels;
}

export function benchmarkChart(results: readonly ScenarioResult[], title: string): string {
  return renderSvg(title, benchmarkPanels(results));
}
