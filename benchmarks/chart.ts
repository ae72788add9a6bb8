/**
 * A tiny SVG chart writer (no chart library): line panels with optional log
 * axes, laid out side by side in one SVG document.
 */
import type { Series } from './scenarios.js';

export interface Panel {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** Horizontal reference lines (targets). */
  readonly refs?: readonly { readonly y: number; readonly label: string }[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
const W = 420;
const H = 300;
const M = { l: 62, r: 14, t: 30, b: 46 };

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

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
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

function panel(p: Panel, ox: number): string {
  const pts = p.series.flatMap((s) => s.x.map((x, i) => [x, s.y[i] as number] as const)).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length === 0) {
    // A partial run (--only) may leave a panel without data: say so instead of scaling an empty range.
    return `<text x="${ox + W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(p.title)}</text><text x="${ox + W / 2}" y="${H / 2}" text-anchor="middle" fill="#999">no data in this run</text>`;
  }
  const refY = (p.refs ?? []).map((r) => r.y);
  const xs = pts.map(([x]) => x);
  const ys = [...pts.map(([, y]) => y), ...refY];
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  let y0 = p.logY ? Math.min(...ys.filter((y) => y > 0)) : 0;
  let y1 = Math.max(...ys);
  if (p.logX) {
    x0 = 10 ** Math.floor(Math.log10(x0));
    x1 = 10 ** Math.ceil(Math.log10(x1));
  }
  if (p.logY) {
    y0 = 10 ** Math.floor(Math.log10(y0));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else y1 *= 1.1;
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const fx = (x: number) => ox + M.l + ((p.logX ? Math.log10(x) - Math.log10(x0) : x - x0) / (p.logX ? Math.log10(x1) - Math.log10(x0) : x1 - x0)) * (W - M.l - M.r);
  const fy = (y: number) => M.t + (1 - (p.logY ? Math.log10(y) - Math.log10(y0) : y - y0) / (p.logY ? Math.log10(y1) - Math.log10(y0) : y1 - y0)) * (H - M.t - M.b);
  const out: string[] = [];
  out.push(`<text x="${ox + W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${ox + M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#999"/>`);
  for (const t of ticks(x0, x1, p.logX === true)) {
    const x = fx(t);
    out.push(`<line x1="${x}" y1="${H - M.b}" x2="${x}" y2="${H - M.b + 4}" stroke="#999"/><text x="${x}" y="${H - M.b + 16}" text-anchor="middle">${fmtNum(t)}</text>`);
  }
  for (const t of ticks(y0, y1, p.logY === true)) {
    const y = fy(t);
    out.push(`<line x1="${ox + M.l}" y1="${y}" x2="${ox + W - M.r}" y2="${y}" stroke="#eee"/><text x="${ox + M.l - 5}" y="${y + 4}" text-anchor="end">${fmtNum(t)}</text>`);
  }
  out.push(`<text x="${ox + (W + M.l) / 2}" y="${H - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(`<text transform="translate(${ox + 14},${(H + M.t - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  for (const r of p.refs ?? []) {
    const y = fy(r.y);
    out.push(`<line x1="${ox + M.l}" y1="${y}" x2="${ox + W - M.r}" y2="${y}" stroke="#888" stroke-dasharray="4 3"/><text x="${ox + W - M.r - 3}" y="${y - 4}" text-anchor="end" fill="#666">${esc(r.label)}</text>`);
  }
  p.series.forEach((s, k) => {
    const c = COLORS[k % COLORS.length] as string;
    const coords = s.x.map((x, i) => [x, s.y[i] as number] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.logY || y > 0));
    if (coords.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${coords.map(([x, y]) => `${fx(x).toFixed(1)},${fy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of coords) out.push(`<circle cx="${fx(x).toFixed(1)}" cy="${fy(y).toFixed(1)}" r="3" fill="${c}"><title>${esc(s.name)}: ${fmtNum(y)} at ${fmtNum(x)}</title></circle>`);
    out.push(`<rect x="${ox + M.l + 8}" y="${M.t + 8 + k * 16}" width="10" height="10" fill="${c}"/><text x="${ox + M.l + 22}" y="${M.t + 17 + k * 16}">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

export function renderSvg(title: string, panels: readonly Panel[]): string {
  const width = W * panels.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 24}" viewBox="0 -24 ${width} ${H + 24}" font-family="sans-serif" font-size="11">`,
    `<rect x="0" y="-24" width="${width}" height="${H + 24}" fill="white"/>`,
    `<text x="8" y="-8" font-size="13" font-weight="bold">${esc(title)}</text>`,
    ...panels.map((p, i) => panel(p, i * W)),
    '</svg>',
    '',
  ].join('\n');
}
