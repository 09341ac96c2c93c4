/** Many records' layer statistics summarised into one row per layer (what `gradguard doctor` prints for a probe). */
import type { LayerStats, StepRecord } from './monitor.js';

/**
 * One row per layer summarising several records: the median of each statistic over the records where it is finite
 * (NaN where it never is), in the latest record's layer order. What `gradguard doctor` prints for a probe.
 * @param history the records (e.g. a probe's); an empty list gives no rows
 */
export function summarizeLayers(history: readonly StepRecord[]): LayerStats[] {
  const last = history[history.length - 1];
  if (!last) return [];
  const rows = new Map<string, LayerStats[]>();
  for (const r of history) {
    for (const l of r.layers) {
      const a = rows.get(l.name);
      if (a) a.push(l);
      else rows.set(l.name, [l]);
    }
  }
  const med = (xs: LayerStats[], pick: (l: LayerStats) => number | undefined): number | undefined => {
    const v: number[] = [];
    let seen = false;
    for (const l of xs) {
      const x = pick(l);
      if (x === undefined) continue;
      seen = true;
      if (Number.isFinite(x)) v.push(x);
    }
    if (!seen) return undefined;
    if (!v.length) return Number.NaN;
    v.sort((a, b) => a - b);
    const m = v.length >> 1;
    return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
  };
  const out: LayerStats[] = [];
  const names = [
    ...last.layers.map((l) => l.name),
    ...[...rows.keys()].filter((n) => !last.layers.some((l) => l.name === n)),
  ];
  for (const name of names) {
    const xs = rows.get(name)!;
    const s: LayerStats = {
      name,
      gradNorm: med(xs, (l) => l.gradNorm) ?? Number.NaN,
      gradMaxAbs: med(xs, (l) => l.gradMaxAbs) ?? Number.NaN,
      weightNorm: med(xs, (l) => l.weightNorm) ?? Number.NaN,
      updateRatio: med(xs, (l) => l.updateRatio) ?? Number.NaN,
      actMean: med(xs, (l) => l.actMean) ?? Number.NaN,
      actStd: med(xs, (l) => l.actStd) ?? Number.NaN,
      nonFinite: xs.reduce((m, l) => Math.max(m, l.nonFinite), 0),
    };
    const dead = med(xs, (l) => l.deadFrac);
    if (dead !== undefined) s.deadFrac = dead;
    const sat = med(xs, (l) => l.satFrac);
    if (sat !== undefined) s.satFrac = sat;
    out.push(s);
  }
  return out;
}
