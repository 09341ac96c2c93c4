/** Formatting and small DOM helpers for the dashboard pages. */
import { formatCompact, formatExp } from '../../monitor/format.js';
import { isPercentMetric } from '../../track/metrics.js';
import type { JsonNumber } from '../api-types.js';

/** 4 significant digits, compact exponent notation (`1.68e22`) for very small or large values; '–' for missing. */
export function fmtNum(v: number | JsonNumber | null | undefined): string {
  if (v === null || v === undefined) return '–';
  const x = typeof v === 'number' ? v : Number(v);
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return formatExp(x, 3);
  return String(Number(x.toPrecision(4)));
}

/**
 * Tick labels for a log axis, compact whatever the range (`0.01`, `1`, `1000`, `1e14`, `4.1e14`): the default
 * labels of a chart (`100,000,000,000,000`) do not fit beside it.
 */
export function logTicks(vals: readonly (number | null)[]): string[] {
  return vals.map((v) => (v === null ? '' : formatCompact(v, 2)));
}

/**
 * Where to put the ticks of a log axis from `min` to `max` (> 0), at most about `most` of them: 1-2-5 steps inside a
 * narrow range, whole decades otherwise (every k-th decade over a wide one). Any range works, up to the float32
 * limit of a diverged loss (the chart library's own log ticks stop at 1e32 and leave the axis blank).
 * @example logSplits(1, 1e38) // [1, 1e7, 1e14, 1e21, 1e28, 1e35]
 */
export function logSplits(min: number, max: number, most = 6): number[] {
  if (!(min > 0) || !(max >= min) || !Number.isFinite(max)) return [];
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const inside = (v: number) => v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9);
  const at = (d: number, m = 1) => Number(`${m}e${d}`); // exact decimal values: 1e-7, not 1.0000000000000001e-7
  const mults = [
    [1, 2, 5],
    [1, 3],
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  ];
  for (const ms of mults) {
    const out: number[] = [];
    for (let d = lo; d <= hi; d++) for (const m of ms) if (inside(at(d, m))) out.push(at(d, m));
    if (out.length >= 2 && out.length <= most + 2) return out;
  }
  const stride = Math.max(1, Math.ceil((hi - lo + 1) / most));
  const out: number[] = [];
  for (let d = Math.ceil(lo / stride) * stride; d <= hi; d += stride) if (inside(at(d))) out.push(at(d));
  // a range too narrow for any of those (2.1 to 2.9): its ends
  return out.length >= 2 ? out : [min, max];
}

/**
 * Tick labels for a linear axis: as many decimals as the spacing needs, compact exponents (`4.1e14`) for tiny or
 * huge values.
 */
export function numberTicks(vals: readonly (number | null)[]): string[] {
  const finite = vals.filter((v): v is number => v !== null && Number.isFinite(v));
  const step = finite.length > 1 ? Math.abs(finite[1]! - finite[0]!) : 0;
  const big = Math.max(0, ...finite.map((v) => Math.abs(v)));
  if (big !== 0 && (big < 1e-3 || big >= 1e6)) {
    // enough significant digits to tell neighbouring ticks apart (at most 4)
    const digits = step > 0 ? Math.min(4, Math.max(1, Math.ceil(Math.log10(big / step) - 1e-9) + 1)) : 2;
    return vals.map((v) => (v === null ? '' : v === 0 ? '0' : formatExp(v, digits)));
  }
  // The fewest decimals that write every tick exactly (0.00025 needs 5).
  let digits = 0;
  const tol = (step || 1) * 1e-6;
  while (digits < 8 && finite.some((v) => Math.abs(Number(v.toFixed(digits)) - v) > tol)) digits++;
  return vals.map((v) => (v === null ? '' : v.toFixed(digits)));
}

/** Where values are not finite (NaN or ±Inf; null is "not logged", not counted), over the steps `xs`. */
export interface NonFiniteSteps {
  /** The steps where any series holds NaN or ±Inf, in order. */
  steps: number[];
  /** The same as [first, last] runs of neighbouring logged steps (one band each). */
  ranges: [number, number][];
}

/** The steps where any of `ys` (one array per series, aligned with `xs`) is NaN or ±Inf. */
export function nonFiniteSteps(xs: readonly number[], ys: readonly (readonly (number | null)[])[]): NonFiniteSteps {
  const steps: number[] = [];
  const ranges: [number, number][] = [];
  let prev = -1;
  for (let i = 0; i < xs.length; i++) {
    if (!ys.some((col) => col[i] !== null && col[i] !== undefined && !Number.isFinite(col[i]!))) continue;
    steps.push(xs[i]!);
    const last = ranges.at(-1);
    if (last && prev === i - 1) last[1] = xs[i]!;
    else ranges.push([xs[i]!, xs[i]!]);
    prev = i;
  }
  return { steps, ranges };
}

/**
 * The indices of finite values with no finite neighbour (a line cannot show them: they are drawn as dots), e.g. the
 * loss of a step between two non-finite ones.
 */
export function isolatedPoints(col: readonly (number | null)[]): number[] {
  const ok = (i: number) => i >= 0 && i < col.length && col[i] !== null && Number.isFinite(col[i]!);
  const out: number[] = [];
  for (let i = 0; i < col.length; i++) if (ok(i) && !ok(i - 1) && !ok(i + 1)) out.push(i);
  return out;
}

/** A metric by its key: a share (test accuracy) as a percentage, anything else as {@link fmtNum}. */
export function fmtMetric(key: string, v: number | JsonNumber | null | undefined): string {
  return isPercentMetric(key) ? fmtPct(v) : fmtNum(v);
}

export function fmtPct(v: number | JsonNumber | null | undefined): string {
  if (v === null || v === undefined) return '–';
  const x = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : fmtNum(x);
}

/** `850ms`, `41.2s`, `12m05s`, `1h02m`. */
export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Local time, `2026-11-26 11:45`. */
export function fmtTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

type Attrs = Record<string, string | number | boolean | null | undefined>;
type Child = Node | string | null | undefined | false;

/** `h('a', { href: '#/' }, 'runs')`: an element with attributes (`class`, `data-*`, properties) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

/** A status badge. */
export function statusBadge(status: string): HTMLSpanElement {
  return h('span', { class: `badge status-${status}`, 'data-status': status }, status);
}

/** Colours for runs and series (Tableau 10). */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#59a14f',
  '#e15759',
  '#76b7b2',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

/** Viridis, 9 stops; {@link viridis} interpolates. */
const VIRIDIS = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
] as const;

/** The viridis colour at t in [0, 1], as [r, g, b]. */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** A colour per layer, from dark (first layer) to light (last). */
export function layerColor(i: number, n: number): string {
  const [r, g, b] = viridis(n <= 1 ? 0.5 : (i / (n - 1)) * 0.9);
  return `rgb(${r | 0},${g | 0},${b | 0})`;
}

/** Shows `text` in the shared tooltip near the mouse; `null` hides it. */
export function tooltip(text: string | null, x = 0, y = 0): void {
  const tip = document.getElementById('tooltip');
  if (!tip) return;
  if (text === null) {
    tip.hidden = true;
    return;
  }
  tip.textContent = text;
  tip.hidden = false;
  const w = tip.offsetWidth;
  tip.style.left = `${Math.min(x + 12, window.innerWidth - w - 8)}px`;
  tip.style.top = `${y + 14}px`;
}
