/**
 * The playground's views, drawn on canvases: the loss curve with the task's baseline, the decision boundary of a 2-D
 * classifier, a bar per layer of gradient norm on a log scale, the layers x steps heatmap of gradient norms, and
 * activation histograms per layer. Each function draws one view from plain numbers (no state of its own).
 */
import type { Histogram } from './session.js';

const PALETTE = [
  '#e4572e',
  '#2e86ab',
  '#76b041',
  '#f3a712',
  '#8e44ad',
  '#16a085',
  '#c0392b',
  '#34495e',
  '#d35400',
  '#7f8c8d',
];
const AXIS = '#888';

function ctx2d(c: HTMLCanvasElement): CanvasRenderingContext2D {
  const dpr = Math.min(2, globalThis.devicePixelRatio || 1);
  const w = c.clientWidth || c.width;
  const h = c.clientHeight || c.height;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = '11px system-ui, sans-serif';
  return g;
}

function size(c: HTMLCanvasElement): [number, number] {
  return [c.clientWidth || c.width, c.clientHeight || c.height];
}

/** log10 for display, clamped so that 0 and denormals stay on the chart. */
export function log10(x: number): number {
  return Math.log10(Math.max(x, 1e-30));
}

export interface Curve {
  losses: readonly number[];
  color: string;
  label: string;
}

/** Loss curves (at most ~600 points each, by striding) over steps, with a dashed line at `baseline`. */
export function drawLoss(c: HTMLCanvasElement, curves: readonly Curve[], baseline: number): void {
  const g = ctx2d(c);
  const [w, h] = size(c);
  const pad = { l: 40, r: 8, t: 8, b: 18 };
  let max = Number.isFinite(baseline) ? baseline * 1.2 : 0;
  let n = 1;
  for (const cv of curves) {
    n = Math.max(n, cv.losses.length);
    for (const v of cv.losses)
      if (Number.isFinite(v) && v > max) max = Math.min(v, Number.isFinite(baseline) ? baseline * 4 : v);
  }
  if (!(max > 0)) max = 1;
  const x = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / Math.max(1, n - 1);
  const y = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - Math.min(v, max) / max);
  g.strokeStyle = AXIS;
  g.fillStyle = AXIS;
  g.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  g.fillText(max.toPrecision(2), 2, pad.t + 8);
  g.fillText('0', 2, h - pad.b);
  g.fillText(`step ${n}`, w - 60, h - 4);
  if (Number.isFinite(baseline)) {
    g.setLineDash([4, 4]);
    g.beginPath();
    g.moveTo(pad.l, y(baseline));
    g.lineTo(w - pad.r, y(baseline));
    g.stroke();
    g.setLineDash([]);
    g.fillText(`baseline ${baseline.toFixed(3)}`, pad.l + 4, y(baseline) - 3);
  }
  for (const cv of curves) {
    const stride = Math.max(1, Math.floor(cv.losses.length / 600));
    g.strokeStyle = cv.color;
    g.lineWidth = 1.5;
    g.beginPath();
    let started = false;
    for (let i = 0; i < cv.losses.length; i += stride) {
      const v = cv.losses[i]!;
      if (!Number.isFinite(v)) continue;
      if (started) g.lineTo(x(i), y(v));
      else g.moveTo(x(i), y(v));
      started = true;
    }
    g.stroke();
    g.lineWidth = 1;
  }
}

/** The decision boundary: the predicted class per grid cell (faint), with the data points on top. */
export function drawBoundary(
  c: HTMLCanvasElement,
  grid: Uint8Array | null,
  n: number,
  lo: number,
  hi: number,
  points: { x: Float32Array; y: Float32Array; count: number },
): void {
  const g = ctx2d(c);
  const [w, h] = size(c);
  if (!grid) {
    g.fillStyle = AXIS;
    g.fillText('no decision boundary: the input is not 2-D', 8, 16);
    return;
  }
  const cw = w / n;
  const ch = h / n;
  g.globalAlpha = 0.28;
  for (let r = 0; r < n; r++)
    for (let col = 0; col < n; col++) {
      g.fillStyle = PALETTE[grid[r * n + col]! % PALETTE.length]!;
      g.fillRect(col * cw, r * ch, cw + 0.5, ch + 0.5);
    }
  g.globalAlpha = 1;
  for (let i = 0; i < points.count; i++) {
    const px = ((points.x[2 * i]! - lo) / (hi - lo)) * w;
    const py = (1 - (points.x[2 * i + 1]! - lo) / (hi - lo)) * h;
    g.fillStyle = PALETTE[points.y[i]! % PALETTE.length]!;
    g.fillRect(px - 1.5, py - 1.5, 3, 3);
  }
}

/** Log-scale range of the bars and the heatmap: 1e-12 .. 1e3 (a gradient below 1e-12 is as good as none). */
export const LOG_LO = -12;
export const LOG_HI = 3;

/** One bar per layer (first layer at the left), height log10 of the layer's gradient norm. */
export function drawBars(c: HTMLCanvasElement, names: readonly string[], norms: ArrayLike<number>): void {
  const g = ctx2d(c);
  const [w, h] = size(c);
  const pad = { l: 40, r: 4, t: 6, b: 16 };
  const ih = h - pad.t - pad.b;
  const y = (lg: number) => pad.t + ih * (1 - (Math.min(LOG_HI, Math.max(LOG_LO, lg)) - LOG_LO) / (LOG_HI - LOG_LO));
  g.strokeStyle = '#ddd';
  g.fillStyle = AXIS;
  for (let e = LOG_LO; e <= LOG_HI; e += 3) {
    g.beginPath();
    g.moveTo(pad.l, y(e));
    g.lineTo(w - pad.r, y(e));
    g.stroke();
    g.fillText(`1e${e}`, 2, y(e) + 4);
  }
  const n = norms.length;
  const bw = (w - pad.l - pad.r) / Math.max(1, n);
  for (let i = 0; i < n; i++) {
    const lg = log10(norms[i]!);
    g.fillStyle = lg < -6 ? '#c0392b' : lg > 2 ? '#d35400' : '#2e86ab';
    const top = y(lg);
    g.fillRect(pad.l + i * bw + 1, top, Math.max(1, bw - 2), y(LOG_LO) - top);
  }
  g.fillStyle = AXIS;
  if (n) {
    g.fillText(names[0] ?? '', pad.l, h - 3);
    const last = names[n - 1] ?? '';
    g.fillText(last, w - pad.r - g.measureText(last).width, h - 3);
  }
}

/** Colour of a log10 gradient norm: dark red (vanished) through blue to orange (exploding). */
function heat(lg: number): string {
  const t = (Math.min(LOG_HI, Math.max(LOG_LO, lg)) - LOG_LO) / (LOG_HI - LOG_LO);
  const hue = 0 + t * 220;
  return `hsl(${hue.toFixed(0)}, 70%, ${(25 + 40 * t).toFixed(0)}%)`;
}

/** Layers (rows, first layer at the top) x steps (columns, the last `maxCols` steps). */
export function drawHeatmap(c: HTMLCanvasElement, history: readonly Float64Array[], maxCols = 300): void {
  const g = ctx2d(c);
  const [w, h] = size(c);
  if (!history.length) return;
  const start = Math.max(0, history.length - maxCols);
  const cols = history.length - start;
  const rows = history[start]!.length;
  const cw = w / cols;
  const rh = h / Math.max(1, rows);
  for (let j = 0; j < cols; j++) {
    const col = history[start + j]!;
    for (let i = 0; i < rows; i++) {
      g.fillStyle = heat(log10(col[i]!));
      g.fillRect(j * cw, i * rh, cw + 0.5, rh + 0.5);
    }
  }
}

/** Small multiples: one histogram per layer (at most `max`, evenly chosen), bars normalized per layer. */
export function drawHistograms(c: HTMLCanvasElement, hists: readonly Histogram[], max = 12): void {
  const g = ctx2d(c);
  const [w, h] = size(c);
  if (!hists.length) return;
  const pick: Histogram[] = [];
  const k = Math.min(max, hists.length);
  for (let i = 0; i < k; i++) pick.push(hists[Math.round((i * (hists.length - 1)) / Math.max(1, k - 1))]!);
  const perRow = Math.min(6, k);
  const rowsN = Math.ceil(k / perRow);
  const cw = w / perRow;
  const ch = h / rowsN;
  for (let i = 0; i < k; i++) {
    const hist = pick[i]!;
    const x0 = (i % perRow) * cw;
    const y0 = Math.floor(i / perRow) * ch;
    let peak = 1;
    for (const v of hist.counts) peak = Math.max(peak, v);
    const bw = (cw - 8) / hist.counts.length;
    g.fillStyle = '#2e86ab';
    for (let b = 0; b < hist.counts.length; b++) {
      const bh = ((ch - 26) * hist.counts[b]!) / peak;
      g.fillRect(x0 + 4 + b * bw, y0 + ch - 14 - bh, Math.max(1, bw - 1), bh);
    }
    g.fillStyle = AXIS;
    g.fillText(`${hist.layer}  [${hist.lo.toPrecision(2)}, ${hist.hi.toPrecision(2)}]`, x0 + 4, y0 + ch - 3);
  }
}
