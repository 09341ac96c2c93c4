/**
 * Helpers for experiments' analyses: a run's per-layer statistics and metrics read back from the store as plain
 * rows for figures, and small statistics (mean, standard deviation, median) for the reading.
 */
import type { RunStore } from '../track/store.js';
import type { LayerField, LayerStatRow } from '../track/types.js';
import type { Row } from './figures.js';
import type { JudgedRun } from './framework.js';

/** Mean of the finite values (NaN when there are none). */
export function mean(xs: readonly number[]): number {
  const f = xs.filter(Number.isFinite);
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : Number.NaN;
}

/** Sample standard deviation of the finite values (0 for one value, NaN for none). */
export function std(xs: readonly number[]): number {
  const f = xs.filter(Number.isFinite);
  if (f.length === 0) return Number.NaN;
  if (f.length === 1) return 0;
  const m = mean(f);
  return Math.sqrt(f.reduce((a, b) => a + (b - m) ** 2, 0) / (f.length - 1));
}

/** Median of the finite values (NaN for none). */
export function median(xs: readonly number[]): number {
  const f = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (f.length === 0) return Number.NaN;
  const m = f.length >> 1;
  return f.length % 2 ? f[m]! : (f[m - 1]! + f[m]!) / 2;
}

/** `mean ± std` with 3 significant digits, or just the mean for one value. */
export function meanStd(xs: readonly number[], scale = 1, digits = 3): string {
  const f = xs.filter(Number.isFinite);
  if (f.length === 0) return '-';
  const m = (mean(f) * scale).toPrecision(digits);
  return f.length === 1 ? String(Number(m)) : `${Number(m)} ± ${Number((std(f) * scale).toPrecision(2))}`;
}

/** The logged steps of a run's layer statistics, thinned to at most `maxSteps` evenly spaced ones (first and last kept). */
function thinSteps(steps: readonly number[], maxSteps: number): Set<number> {
  if (steps.length <= maxSteps) return new Set(steps);
  const out = new Set<number>();
  for (let i = 0; i < maxSteps; i++) out.add(steps[Math.round((i * (steps.length - 1)) / (maxSteps - 1))]!);
  return out;
}

/** A run's layer statistics by step, grouped: `byStep.get(step)` is that step's rows in forward order. */
export function layerStatsByStep(store: RunStore, run: string): Map<number, LayerStatRow[]> {
  const by = new Map<number, LayerStatRow[]>();
  for (const r of store.getLayerStats(run)) {
    let rows = by.get(r.step);
    if (!rows) by.set(r.step, (rows = []));
    rows.push(r);
  }
  return by;
}

/**
 * One layer statistic of a run as rows `{ step, layer, value, ...extra }` for a line chart, over at most `maxSteps`
 * logged steps (evenly thinned).
 */
export function layerRows(store: RunStore, run: string, field: LayerField, extra: Row = {}, maxSteps = 200): Row[] {
  const all = store.getLayerStats(run);
  const keep = thinSteps([...new Set(all.map((r) => r.step))], maxSteps);
  return all
    .filter((r) => keep.has(r.step))
    .map((r) => ({ step: r.step, layer: r.name, value: (r[field] as number | undefined) ?? null, ...extra }));
}

/** The layers' statistics at the first logged step (step 0: the initialised network's first batch), forward order. */
export function layersAtInit(store: RunStore, run: string): LayerStatRow[] {
  const rows = store.getLayerStats(run);
  const first = rows[0]?.step;
  return rows.filter((r) => r.step === first);
}

/** A metric logged once per epoch (`test_accuracy`, `test_loss`) as rows `{ epoch, value, ...extra }`. */
export function epochRows(store: RunStore, run: string, key: string, extra: Row = {}): Row[] {
  const m = store.getMetrics(run);
  const col = m.series[key];
  if (!col) return [];
  const out: Row[] = [];
  col.forEach((v, i) => {
    if (v !== null) out.push({ epoch: out.length + 1, step: m.steps[i]!, value: v, ...extra });
  });
  return out;
}

/** A metric logged every step (`loss`, `grad_norm`) as rows `{ step, value, ...extra }`, thinned to `maxPoints`. */
export function stepRows(store: RunStore, run: string, key: string, extra: Row = {}, maxPoints = 400): Row[] {
  const m = store.getMetrics(run);
  const col = m.series[key];
  if (!col) return [];
  const pts: Row[] = [];
  col.forEach((v, i) => {
    if (v !== null) pts.push({ step: m.steps[i]!, value: v, ...extra });
  });
  if (pts.length <= maxPoints) return pts;
  const keep = thinSteps(
    pts.map((p) => p.step as number),
    maxPoints,
  );
  return pts.filter((p) => keep.has(p.step as number));
}

/** The runs of one arm, by arm name. */
export function runsOf(runs: readonly JudgedRun[], arm: string): JudgedRun[] {
  return runs.filter((r) => r.arm.name === arm);
}
