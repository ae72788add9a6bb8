/**
 * The benchmark chart is readable: drawn from the saved results, rendered to
 * PNG by rsvg-convert (Debian librsvg2-bin, installed by .ci/run), the PNG
 * has the SVG's size and is not blank; every label lies inside its panel;
 * latency uses a percentile axis from p50 to p99.99, one unit per axis.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CHAR_W, PANEL_W } from '../../benchmarks/chart.js';
import { benchmarkChart, benchmarkPanels } from '../../benchmarks/charts.js';
import type { ScenarioResult } from '../../benchmarks/scenarios.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const results = (JSON.parse(readFileSync(join(root, 'benchmarks', 'results', 'latest.json'), 'utf8')) as { results: ScenarioResult[] }).results;
const dir = mkdtempSync(join(tmpdir(), 'presence-chart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Png {
  readonly width: number;
  readonly height: number;
  /** Share of decoded bytes that are not white (0xff). */
  readonly inked: number;
}

/** Read a PNG's size and how much of it is not white (8-bit RGB/RGBA, as rsvg-convert writes). */
function readPng(file: string): Png {
  const buf = readFileSync(file);
  expect(buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature').toBe(true);
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  let ink = 0;
  for (const b of raw) if (b !== 0xff) ink++;
  return { width, height, inked: ink / raw.length };
}

describe('benchmark chart', () => {
  const svg = benchmarkChart(results, 'presence-engine benchmarks (test)');
  const size = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg);
  const width = Number(size?.[1]);
  const height = Number(size?.[2]);

  it('renders to a PNG of the SVG’s size that is not blank (rsvg-convert)', () => {
    const svgFile = join(dir, 'chart.svg');
    const pngFile = join(dir, 'chart.png');
    writeFileSync(svgFile, svg);
    execFileSync('rsvg-convert', ['-o', pngFile, svgFile]);
    const png = readPng(pngFile);
    expect(png.width).toBe(width);
    expect(png.height).toBe(height);
    expect(png.inked).toBeGreaterThan(0.01);
  });

  it('keeps every horizontal label inside its panel and the picture', () => {
    const texts = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)"([^>]*)>([^<]*)<\/text>/g)];
    expect(texts.length).toBeGreaterThan(50);
    for (const [, xs, ys, attrs, content] of texts) {
      const x = Number(xs);
      const y = Number(ys);
      const text = (content ?? '').replace(/&[a-z]+;/g, '&');
      const w = text.length * CHAR_W * (/font-size="13"/.test(attrs ?? '') ? 13 / 11 : 1);
      const anchor = /text-anchor="(middle|end)"/.exec(attrs ?? '')?.[1] ?? 'start';
      const left = anchor === 'middle' ? x - w / 2 : anchor === 'end' ? x - w : x;
      const right = left + w;
      expect(left, `"${text}" starts left of the picture`).toBeGreaterThanOrEqual(0);
      expect(right, `"${text}" ends right of the picture`).toBeLessThanOrEqual(width);
      expect(y, `"${text}" is below the picture`).toBeLessThanOrEqual(height);
      if (/font-size="13"/.test(attrs ?? '')) continue; // the title spans the picture
      const column = Math.floor(x / PANEL_W);
      expect(left, `"${text}" reaches into the panel on its left`).toBeGreaterThanOrEqual(column * PANEL_W);
      expect(right, `"${text}" reaches into the panel on its right`).toBeLessThanOrEqual((column + 1) * PANEL_W);
    }
  });

  it('draws latency on a percentile axis from p50 to p99.99 and one unit per axis', () => {
    const panels = benchmarkPanels(results);
    const latency = panels.find((p) => p.title.startsWith('Input → emission latency'));
    expect(latency).toMatchObject({ x: 'percentile', y: 'log', yLabel: 'latency (ms)' });
    for (const tick of ['p50', 'p90', 'p99', 'p99.9', 'p99.99']) expect(svg).toContain(`>${tick}</text>`);
    for (const p of panels) expect((p.yLabel.match(/\(/g) ?? []).length, `${p.title}: ${p.yLabel}`).toBeLessThanOrEqual(1);
    for (const p of panels) expect(p.yLabel, p.title).not.toMatch(/·/);
  });
});
