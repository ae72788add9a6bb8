// @ts-check
/**
 * Time-series charts with uPlot (served from the installed `uplot` package).
 * Each chart reads columns of the page's history (seconds since the epoch on
 * x); `update()` hands uPlot the current columns.
 */
import uPlot from './uPlot.esm.js';

const AXIS = { stroke: '#8796a5', grid: { stroke: '#273240', width: 1 }, ticks: { stroke: '#273240', width: 1 } };

/** @param {number} v @returns {string} */
export function fmtMs(v) {
  if (!(v > 0)) return '0';
  if (v < 1) return `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} µs`;
  if (v < 10) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${v.toFixed(0)} ms`;
  return `${(v / 1000).toFixed(1)} s`;
}

/** @param {number} min @param {number} max */
function powersOfTen(min, max) {
  const out = [];
  for (let e = Math.ceil(Math.log10(min) - 1e-9); e <= Math.floor(Math.log10(max) + 1e-9); e++) out.push(10 ** e);
  return out;
}

/** @param {number} v @returns {string} */
export function fmtNum(v) {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  return v.toFixed(1);
}

/**
 * @typedef {{ label: string, column: string, stroke: string, scale?: string, dash?: number[], width?: number, fmt?: (v: number) => string }} SeriesSpec
 * @typedef {{ key: string, label: string, side?: 'left' | 'right', log?: boolean, fmt?: (v: number) => string }} ScaleSpec
 */

/**
 * @param {uPlot} u
 * @param {{ label: string, value: number, stroke: string, scale: string }} line
 */
function drawLevel(u, line) {
  const y = Math.round(u.valToPos(line.value, line.scale, true));
  const { left, top, width, height } = u.bbox;
  if (!(y >= top && y <= top + height)) return;
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = line.stroke;
  ctx.fillStyle = line.stroke;
  ctx.lineWidth = 1.5 * devicePixelRatio;
  ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.beginPath();
  ctx.moveTo(left, y);
  ctx.lineTo(left + width, y);
  ctx.stroke();
  ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
  ctx.textAlign = 'right';
  ctx.fillText(line.label, left + width - 4 * devicePixelRatio, y - 4 * devicePixelRatio);
  ctx.restore();
}

export class TimeChart {
  /**
   * @param {HTMLElement} el
   * @param {Record<string, number[]>} history columns by name (must include `t`)
   * @param {{ series: SeriesSpec[], scales: ScaleSpec[], constant?: { label: string, value: number, stroke: string, scale: string } }} spec
   */
  constructor(el, history, spec) {
    this.el = el;
    this.history = history;
    this.spec = spec;
    /** @type {Record<string, uPlot.Scale>} */
    const scales = { x: { time: true } };
    /** @type {uPlot.Axis[]} */
    const axes = [{ ...AXIS }];
    for (const s of spec.scales) {
      scales[s.key] = s.log ? { distr: 3, log: 10 } : { range: (_u, min, max) => [0, Math.max(max, 1) * 1.1] };
      const fmt = s.fmt ?? fmtNum;
      axes.push({
        ...AXIS,
        scale: s.key,
        label: s.label,
        labelSize: 16,
        size: 72,
        side: s.side === 'right' ? 1 : 3,
        // log scales: ticks, grid lines and labels at powers of ten only
        splits: s.log ? (_u, _i, min, max) => powersOfTen(min, max) : undefined,
        values: (_u, vals) => vals.map((v) => (v == null ? '' : fmt(v))),
        grid: s.side === 'right' ? { show: false } : AXIS.grid,
      });
    }
    /** @type {uPlot.Series[]} */
    const series = [{}];
    for (const s of spec.series) {
      const fmt = s.fmt ?? fmtNum;
      series.push({ label: s.label, stroke: s.stroke, width: s.width ?? 1.5, scale: s.scale ?? spec.scales[0]?.key, dash: s.dash, points: { show: false }, value: (_u, v) => (v == null ? '–' : fmt(v)) });
    }
    this.log = new Set(spec.scales.filter((s) => s.log).map((s) => s.key));
    const line = spec.constant;
    // a horizontal line drawn once per redraw (a 3,600-point dashed series cost far more)
    const hooks = line === undefined ? {} : { draw: [(/** @type {uPlot} */ u) => drawLevel(u, line)] };
    this.plot = new uPlot({ width: Math.max(300, el.clientWidth), height: 190, scales, axes, series, hooks, legend: { live: false }, cursor: { drag: { x: false, y: false } } }, this.data(), el);
    new ResizeObserver(() => this.plot.setSize({ width: Math.max(300, el.clientWidth), height: 190 })).observe(el);
  }

  /** @returns {uPlot.AlignedData} */
  data() {
    const h = this.history;
    const t = h.t ?? [];
    /** @type {(number | null)[][]} */
    const cols = [t];
    for (const s of this.spec.series) {
      const col = h[s.column] ?? [];
      // a log scale cannot show 0 (no samples that second): leave a gap
      cols.push(this.log.has(s.scale ?? this.spec.scales[0]?.key ?? '') ? col.map((v) => (v > 0 ? v : null)) : col);
    }
    return /** @type {uPlot.AlignedData} */ (cols);
  }

  update() {
    this.plot.setData(this.data());
  }
}
