/**
 * A tiny SVG chart writer (no chart library): line panels laid out in a grid
 * in one SVG document. Each axis has one unit; axes are linear, log, or
 * `percentile` (a log scale of 1 − p, so p50, p90, p99, p99.9 and p99.99 are
 * evenly spaced and the tail gets as much room as the median). Legends sit
 * under each plot, so they never cover data, and every label stays inside
 * its panel (benchmarks/chart.test.ts checks the rendered PNG and the text
 * extents).
 */
import type { Series } from './scenarios.js';

export type Scale = 'linear' | 'log' | 'percentile';

export interface Panel {
  readonly title: string;
  readonly xLabel: string;
  /** The y axis's quantity and its one unit, e.g. `latency (ms)`. */
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly x?: Scale;
  readonly y?: Scale;
  /** Horizontal reference lines (targets), in the y axis's unit. */
  readonly refs?: readonly { readonly y: number; readonly label: string }[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
/** Panel size, plot margins (room for tick labels and axis titles) and the legend line height. */
export const PANEL_W = 460;
const PLOT_H = 260;
const M = { l: 70, r: 28, t: 30, b: 50 };
const LEGEND_LINE = 16;
const COLUMNS = 3;
/** Approximate advance of an 11 px sans-serif character, for layout and the clipping check. */
export const CHAR_W = 6.6;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function fmtNum(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1 || a === 0) return `${+v.toPrecision(3)}`;
  return `${+v.toPrecision(2)}`;
}

/** Position of a value on a unit axis before scaling. */
function transform(v: number, scale: Scale): number {
  if (scale === 'log') return Math.log10(v);
  if (scale === 'percentile') return -Math.log10(1 - v / 100);
  return v;
}

const PERCENTILE_TICKS = [50, 90, 99, 99.9, 99.99, 99.999];

function ticks(lo: number, hi: number, scale: Scale): number[] {
  if (scale === 'percentile') return PERCENTILE_TICKS.filter((p) => p >= lo - 1e-9 && p <= hi + 1e-9);
  if (scale === 'log') {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / 4));
  const m = span / step > 20 ? 5 : span / step > 8 ? 2 : 1;
  const out: number[] = [];
  for (let v = Math.ceil(lo / (step * m)) * step * m; v <= hi + 1e-9; v += step * m) out.push(v);
  return out;
}

/** The axis range covering `values` on `scale` (whole decades for log, listed percentiles for percentile). */
function range(values: readonly number[], scale: Scale, fromZero: boolean): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (scale === 'log') {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.ceil(Math.log10(hi));
    if (!(hi > lo)) hi = lo * 10;
  } else if (scale === 'percentile') {
    // Always p50 … p99.99 (further if the data goes further), so charts of different runs line up.
    lo = Math.min(50, lo);
    hi = PERCENTILE_TICKS.find((p) => p >= Math.max(hi, 99.99) - 1e-9) ?? hi;
  } else {
    if (fromZero) lo = Math.min(0, lo);
    hi = hi * 1.1;
    if (!(hi > lo)) hi = lo + 1;
  }
  return [lo, hi];
}

function tickLabel(v: number, scale: Scale): string {
  return scale === 'percentile' ? `p${+v.toPrecision(6)}` : fmtNum(v);
}

/** Height of a panel with `n` legend entries. */
function panelHeight(n: number): number {
  return PLOT_H + n * LEGEND_LINE + 8;
}

function panel(p: Panel, ox: number, oy: number, height: number): string {
  const xs = p.x ?? 'linear';
  const ys = p.y ?? 'linear';
  const ok = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y) && (xs !== 'log' || x > 0) && (ys !== 'log' || y > 0) && (xs !== 'percentile' || (x > 0 && x < 100));
  const pts = p.series.flatMap((s) => s.x.map((x, i) => [x, s.y[i] as number] as const)).filter(([x, y]) => ok(x, y));
  const cx = ox + PANEL_W / 2;
  const out: string[] = [`<text x="${cx}" y="${oy + 18}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`];
  if (pts.length === 0) {
    // A partial run (--only) may leave a panel without data: say so instead of scaling an empty range.
    out.push(`<text x="${cx}" y="${oy + height / 2}" text-anchor="middle" fill="#999">no data in this run</text>`);
    return out.join('\n');
  }
  const [x0, x1] = range(pts.map(([x]) => x), xs, false);
  const [y0, y1] = range([...pts.map(([, y]) => y), ...(p.refs ?? []).map((r) => r.y)], ys, true);
  const left = ox + M.l;
  const right = ox + PANEL_W - M.r;
  const top = oy + M.t;
  const bottom = oy + PLOT_H - M.b;
  const fx = (x: number) => left + ((transform(x, xs) - transform(x0, xs)) / (transform(x1, xs) - transform(x0, xs))) * (right - left);
  const fy = (y: number) => bottom - ((transform(y, ys) - transform(y0, ys)) / (transform(y1, ys) - transform(y0, ys))) * (bottom - top);
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#999"/>`);
  for (const t of ticks(x0, x1, xs)) {
    const x = fx(t);
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#eee"/><line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 4}" stroke="#999"/><text x="${x}" y="${bottom + 16}" text-anchor="middle">${tickLabel(t, xs)}</text>`);
  }
  for (const t of ticks(y0, y1, ys)) {
    const y = fy(t);
    out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#eee"/><text x="${left - 5}" y="${y + 4}" text-anchor="end">${tickLabel(t, ys)}</text>`);
  }
  out.push(`<text x="${(left + right) / 2}" y="${bottom + 34}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(`<text transform="translate(${ox + 16},${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  for (const r of p.refs ?? []) {
    const y = fy(r.y);
    out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#888" stroke-dasharray="4 3"/><text x="${left + 3}" y="${y - 4}" fill="#666">${esc(r.label)}</text>`);
  }
  p.series.forEach((s, k) => {
    const c = COLORS[k % COLORS.length] as string;
    const coords = s.x.map((x, i) => [x, s.y[i] as number] as const).filter(([x, y]) => ok(x, y));
    if (coords.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${coords.map(([x, y]) => `${fx(x).toFixed(1)},${fy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of coords) out.push(`<circle cx="${fx(x).toFixed(1)}" cy="${fy(y).toFixed(1)}" r="3" fill="${c}"><title>${esc(s.name)}: ${fmtNum(y)} at ${tickLabel(x, xs)}</title></circle>`);
    const ly = oy + PLOT_H + k * LEGEND_LINE;
    out.push(`<rect x="${left}" y="${ly - 9}" width="10" height="10" fill="${c}"/><text x="${left + 14}" y="${ly}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

export function renderSvg(title: string, panels: readonly Panel[]): string {
  const columns = Math.min(COLUMNS, Math.max(1, panels.length));
  const rows: Panel[][] = [];
  for (let i = 0; i < panels.length; i += columns) rows.push(panels.slice(i, i + columns));
  const heights = rows.map((row) => Math.max(...row.map((p) => panelHeight(p.series.length))));
  const width = PANEL_W * columns;
  const height = 24 + heights.reduce((a, b) => a + b, 0);
  const body: string[] = [];
  let oy = 24;
  rows.forEach((row, r) => {
    row.forEach((p, i) => body.push(panel(p, i * PANEL_W, oy, heights[r] as number)));
    oy += heights[r] as number;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
