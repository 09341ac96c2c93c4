/**
 * The run page's histogram view (TensorBoard's "offset" histograms): for each layer, one ridgeline per logged step
 * of the chosen kind (gradients, weights or activations), the oldest at the back and lighter, the newest in front,
 * over one value axis shared by the layer's steps. Data from `GET /api/runs/:id/histograms` (`monitor.histogramEvery`).
 */
import type { HistogramItem, HistogramKind, HistogramsResponse } from '../histograms-api.js';
import { getJson, num } from './api.js';
import { fmtNum, h } from './format.js';

/** At most this many steps are drawn per layer (evenly chosen, the last one always). */
const MAX_RIDGES = 40;

const KIND_LABELS: Record<HistogramKind, string> = { grad: 'gradients', weight: 'weights', act: 'activations' };

/** One ridgeline: the step and its polyline in [0, 1] x [0, 1] (x: value axis, y: 0 base, 1 highest bucket). */
export interface Ridge {
  step: number;
  points: [number, number][];
}

/** A layer's ridgelines and the value range they share. */
export interface RidgePlot {
  layer: string;
  lo: number;
  hi: number;
  ridges: Ridge[];
}

/**
 * The ridgelines of one kind, per layer in the order the layers first appear: each histogram's bucket centres on the
 * layer's shared [lo, hi] axis, heights over its tallest bucket. Histograms with no finite value are left out.
 */
export function ridgePlots(items: readonly HistogramItem[], kind: HistogramKind, maxRidges = MAX_RIDGES): RidgePlot[] {
  const byLayer = new Map<string, HistogramItem[]>();
  for (const it of items) {
    if (it.kind !== kind || it.num === 0) continue;
    const list = byLayer.get(it.layer) ?? [];
    list.push(it);
    byLayer.set(it.layer, list);
  }
  return [...byLayer].map(([layer, all]) => {
    const list = pick(all, maxRidges);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const it of list) {
      lo = Math.min(lo, num(it.min) ?? lo);
      hi = Math.max(hi, num(it.max) ?? hi);
    }
    if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
    const ridges = list.map((it) => ({ step: it.step, points: ridge(it, lo, hi) }));
    return { layer, lo, hi, ridges };
  });
}

/** Up to `n` of `list`, evenly spaced, the last one included. */
function pick<T>(list: readonly T[], n: number): T[] {
  if (list.length <= n) return [...list];
  return Array.from({ length: n }, (_, i) => list[Math.round(((list.length - 1) * i) / (n - 1))]!);
}

function ridge(it: HistogramItem, lo: number, hi: number): [number, number][] {
  const min = num(it.min) ?? 0;
  const max = num(it.max) ?? 0;
  const [a, b] = max > min ? [min, max] : [min - 0.5, min + 0.5];
  const n = it.counts.length;
  const top = Math.max(1, ...it.counts);
  return it.counts.map((c, i) => [(a + ((b - a) * (i + 0.5)) / n - lo) / (hi - lo), c / top]);
}

/**
 * Appends the histogram section to the run page and loads it once; nothing is shown when the run has none.
 * @returns the section
 */
export function mountHistograms(root: HTMLElement, id: string, signal: AbortSignal): HTMLElement {
  const kind = h('select', { 'data-histogram-kind': '' });
  for (const k of ['grad', 'weight', 'act'] as const) kind.append(h('option', { value: k }, KIND_LABELS[k]));
  const plots = h('div', { class: 'stack' });
  const section = h(
    'section',
    { class: 'histograms', hidden: true },
    h('h2', {}, 'Histograms'),
    h('p', { class: 'muted small' }, 'Per-layer distributions over steps, newest in front. Show ', kind),
    plots,
  );
  root.append(section);
  let items: HistogramItem[] = [];
  const draw = () => {
    plots.replaceChildren(...ridgePlots(items, kind.value as HistogramKind).map(plotCard));
  };
  kind.addEventListener('change', draw);
  getJson<HistogramsResponse>(`/api/runs/${encodeURIComponent(id)}/histograms`, signal)
    .then((r) => {
      items = r.histograms;
      section.hidden = items.length === 0;
      draw();
    })
    .catch(() => {});
  return section;
}

const W = 560;
const RIDGE_H = 48;
const STEP_DY = 6;

/** One layer's card: an SVG of its ridgelines, the value axis' ends and the steps drawn. */
function plotCard(p: RidgePlot): HTMLElement {
  const n = p.ridges.length;
  const height = RIDGE_H + STEP_DY * (n - 1) + 4;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${height}`);
  svg.setAttribute('class', 'histogram-svg');
  svg.dataset.layer = p.layer;
  p.ridges.forEach((r, i) => {
    const base = RIDGE_H + STEP_DY * i;
    const d = r.points.map(([x, y], j) => `${j ? 'L' : 'M'}${(x * W).toFixed(1)},${(base - y * RIDGE_H).toFixed(1)}`);
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', `M0,${base}${d.join('').replace(/^M/, 'L')}L${W},${base}`);
    const t = n > 1 ? i / (n - 1) : 1;
    path.setAttribute('fill', `hsla(210, 60%, ${80 - 40 * t}%, 0.55)`);
    path.setAttribute('stroke', `hsl(210, 60%, ${70 - 40 * t}%)`);
    path.setAttribute('stroke-width', '0.8');
    const title = document.createElementNS(ns, 'title');
    title.textContent = `step ${r.step}`;
    path.append(title);
    svg.append(path);
  });
  const first = p.ridges[0]?.step ?? 0;
  const last = p.ridges[n - 1]?.step ?? 0;
  return h(
    'section',
    { class: 'card', 'data-histogram': p.layer },
    h('h3', {}, p.layer),
    svg as unknown as HTMLElement,
    h('p', { class: 'muted small' }, `${fmtNum(p.lo)} … ${fmtNum(p.hi)} · steps ${first} (back) to ${last} (front)`),
  );
}
