/**
 * The report's figures of the chart table (chart-table.ts), as vega-lite specs: line charts (thinned, non-finite
 * steps shaded, flagged steps, the dataset's baseline as a rule), layers x steps heatmaps and time x steps heatmaps.
 * Long runs are thinned before plotting: lines keep the min and max of each of at most 1,000 bins (spikes survive),
 * heatmaps show the geometric mean of at most 160 step bins per row.
 */
import type { TopLevelSpec } from 'vega-lite';
import { type MetricName, metricKey } from '../track/metrics.js';
import type { FindingRow, LayerField, MetricSeries, RunInfo } from '../track/types.js';
import {
  baselineRule,
  type ChartBaseline,
  type ChartEntry,
  type LayerHeatmapEntry,
  type LineChartEntry,
  type TimeHeatmapEntry,
} from './chart-table.js';
import type { TimeFlowGrid } from './time-flow-api.js';

/** What a report shows, read from the store. */
export interface ReportData {
  run: RunInfo;
  metrics: MetricSeries;
  layers: { names: string[]; steps: number[]; fields: Partial<Record<LayerField, Float64Array>> };
  findings: FindingRow[];
  /** The recurrent layers' gradient norms through time (none for a run without them). */
  timeFlow: TimeFlowGrid[];
}

const LINE_BINS = 1000;
const HEAT_BINS = 160;
/** Figure widths in pixels: a whole row, half a row. */
export const WIDE = 1080;
const HALF = 500;

/** One figure: its title and vega-lite spec, and whether it takes the whole width (else half). */
export interface Figure {
  key: string;
  title: string;
  spec: TopLevelSpec;
  wide: boolean;
}

/** The column of a quantity of the shared list (track/metrics.ts), under the first of its keys the run logged. */
function column(m: MetricSeries, name: MetricName): (number | null)[] | undefined {
  const k = metricKey(name, (key) => m.series[key] !== undefined);
  return k === undefined ? undefined : m.series[k];
}

type Point = { step: number; value: number; series: string };

/** The finite points of a column, thinned to the min and max of each of at most `bins` bins, in step order. */
export function thin(steps: readonly number[], col: readonly (number | null)[], series: string, bins = LINE_BINS) {
  const pts: Point[] = [];
  const n = steps.length;
  const finite = (i: number) => {
    const v = col[i];
    return v !== null && v !== undefined && Number.isFinite(v);
  };
  if (n <= bins * 2) {
    for (let i = 0; i < n; i++) if (finite(i)) pts.push({ step: steps[i]!, value: col[i]!, series });
    return pts;
  }
  for (let b = 0; b < bins; b++) {
    const i0 = Math.floor((b * n) / bins);
    const i1 = Math.floor(((b + 1) * n) / bins);
    let lo = -1;
    let hi = -1;
    for (let i = i0; i < i1; i++) {
      if (!finite(i)) continue;
      if (lo < 0 || col[i]! < col[lo]!) lo = i;
      if (hi < 0 || col[i]! > col[hi]!) hi = i;
    }
    if (lo < 0) continue;
    for (const i of lo === hi ? [lo] : [Math.min(lo, hi), Math.max(lo, hi)]) {
      pts.push({ step: steps[i]!, value: col[i]!, series });
    }
  }
  return pts;
}

/** Step intervals where `flag` is 1, merged across neighbouring bins (at most `bins` intervals). */
function intervals(steps: readonly number[], flag: readonly (number | null)[] | undefined, bins = 400) {
  const out: { s0: number; s1: number }[] = [];
  if (!flag || steps.length === 0) return out;
  const n = steps.length;
  const nb = Math.min(n, bins);
  let open: { s0: number; s1: number } | null = null;
  for (let b = 0; b < nb; b++) {
    const i0 = Math.floor((b * n) / nb);
    const i1 = Math.max(i0 + 1, Math.floor(((b + 1) * n) / nb));
    let any = false;
    for (let i = i0; i < i1 && !any; i++) any = flag[i] === 1;
    if (any) {
      // Half a step either side, within the run's steps (so the axis does not grow past them).
      const s0 = Math.max(steps[0]!, steps[i0]! - 0.5);
      const s1 = Math.min(steps[n - 1]!, steps[i1 - 1]! + 0.5);
      if (open) open.s1 = s1;
      else out.push((open = { s0, s1 }));
    } else open = null;
  }
  return out;
}

function yScale(points: readonly Point[]): { type: 'log' } | { type: 'linear'; zero: false } {
  return points.length > 0 && points.every((p) => p.value > 0) ? { type: 'log' } : { type: 'linear', zero: false };
}

/** A figure that says nothing was logged. */
export function empty(title: string, width: number): TopLevelSpec {
  return {
    title,
    width,
    height: 60,
    data: { values: [{ t: 'nothing logged' }] },
    mark: { type: 'text', color: '#888' },
    encoding: { text: { field: 't' } },
  } as TopLevelSpec;
}

/**
 * A vega expression writing an axis label as formatCompact does (monitor/format.ts): `0.25`, `1000`, `4.1e14`,
 * never `100,000,000,000,000` (which a narrow axis cuts to `000,000`).
 */
const COMPACT_LABEL =
  "datum.value !== 0 && (abs(datum.value) >= 1e4 || abs(datum.value) < 1e-3) ? replace(format(datum.value, '.2~e'), 'e+', 'e') : format(datum.value, '.3~g')";

/**
 * Steps where a column is NaN or ±Inf (null is "not logged"): a 0/1 flag per step, for {@link intervals}.
 */
function nonFiniteFlags(col: readonly (number | null)[] | undefined): (number | null)[] | undefined {
  if (!col) return undefined;
  return col.map((v) => (v !== null && v !== undefined && !Number.isFinite(v) ? 1 : 0));
}

/** A light red band over the steps whose values are not finite, where a diverged run stopped being drawable. */
function nonFiniteLayer(bands: { s0: number; s1: number }[]): object[] {
  if (bands.length === 0) return [];
  return [
    {
      data: { values: bands },
      mark: { type: 'rect', color: '#e15759', opacity: 0.14 },
      encoding: { x: { field: 's0', type: 'quantitative' }, x2: { field: 's1' } },
    },
  ];
}

/** ` (not finite from step N: red)` when a column has NaN/Inf values, else ''. */
function nonFiniteNote(steps: readonly number[], cols: readonly ((number | null)[] | undefined)[]): string {
  let first = -1;
  let count = 0;
  for (let i = 0; i < steps.length; i++) {
    if (!cols.some((c) => c && c[i] !== null && c[i] !== undefined && !Number.isFinite(c[i]!))) continue;
    if (first < 0) first = steps[i]!;
    count++;
  }
  return first < 0 ? '' : ` (NaN/Inf at ${count} step${count === 1 ? '' : 's'} from step ${first}: red)`;
}

function lineFigure(
  title: string,
  lines: Point[],
  opts: { width: number; percent?: boolean; extra?: object[]; colors?: string[]; log?: boolean },
): TopLevelSpec {
  if (lines.length === 0) return empty(title, opts.width);
  const series = [...new Set(lines.map((p) => p.series))];
  const y = opts.log === false ? { type: 'linear', zero: false } : yScale(lines);
  return {
    title,
    width: opts.width,
    height: 200,
    layer: [
      {
        data: { values: lines },
        mark: { type: 'line', strokeWidth: 1.4, point: lines.length / Math.max(1, series.length) <= 40 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'step' },
          y: {
            field: 'value',
            type: 'quantitative',
            title: null,
            scale: y,
            axis: opts.percent ? { format: '.1%' } : { labelExpr: COMPACT_LABEL },
          },
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            sort: series,
            scale: { range: opts.colors ?? ['#4e79a7', '#f28e2b', '#59a14f', '#e15759'] },
            legend: series.length > 1 ? { orient: 'bottom' } : null,
          },
        },
      },
      ...(opts.extra ?? []),
    ],
  } as TopLevelSpec;
}

/**
 * A rows x steps heatmap with a log colour scale (viridis): `values[r * steps.length + i]`, rows top to bottom;
 * bins with no positive finite value are left out.
 */
function gridFigure(
  title: string,
  rows: readonly string[],
  steps: readonly number[],
  values: ArrayLike<number> | undefined,
  width: number,
  yTitle: string,
): TopLevelSpec {
  if (!values || rows.length === 0 || steps.length === 0) return empty(title, width);
  const n = steps.length;
  const nb = Math.min(n, HEAT_BINS);
  const cells: { layer: string; s0: number; s1: number; value: number }[] = [];
  for (let l = 0; l < rows.length; l++) {
    for (let b = 0; b < nb; b++) {
      const i0 = Math.floor((b * n) / nb);
      const i1 = Math.max(i0 + 1, Math.floor(((b + 1) * n) / nb));
      let sum = 0;
      let count = 0;
      for (let i = i0; i < i1; i++) {
        const v = Math.abs(values[l * n + i]!);
        if (v > 0 && Number.isFinite(v)) {
          sum += Math.log(v);
          count++;
        }
      }
      if (count > 0) {
        cells.push({
          layer: rows[l]!,
          s0: steps[i0]!,
          s1: i1 < n ? steps[i1]! : steps[n - 1]! + 1,
          value: Math.exp(sum / count),
        });
      }
    }
  }
  if (cells.length === 0) return empty(title, width);
  return {
    title,
    width,
    height: Math.max(60, Math.min(24, Math.max(8, Math.floor(400 / rows.length))) * rows.length),
    data: { values: cells },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 's0', type: 'quantitative', title: 'step', scale: { nice: false, zero: false } },
      x2: { field: 's1' },
      // rows are at least 8 px high; past ~40 rows their labels would overlap, so every k-th is named (t 0, t 10, ...)
      y: { field: 'layer', type: 'ordinal', sort: rows, title: yTitle, axis: { values: labelled(rows) } },
      color: {
        field: 'value',
        type: 'quantitative',
        title: null,
        scale: { type: 'log', scheme: 'viridis' },
        legend: { format: '.1e', orient: 'right' },
      },
    },
  } as TopLevelSpec;
}

/** A dashed horizontal rule at the baseline, labelled at its right end. */
function ruleLayers(rule: { value: number; label: string }, width: number): object[] {
  const values = [rule];
  return [
    {
      data: { values },
      mark: { type: 'rule', color: '#777', strokeDash: [6, 4], strokeWidth: 1.2 },
      encoding: { y: { field: 'value', type: 'quantitative' } },
    },
    {
      data: { values },
      mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -2, color: '#555', fontSize: 10 },
      encoding: { x: { value: width }, y: { field: 'value', type: 'quantitative' }, text: { field: 'label' } },
    },
  ];
}

/** A line chart of the table: its series thinned, non-finite steps shaded, flagged steps, the baseline's rule. */
function lineChartFigure(c: LineChartEntry, data: ReportData, baseline: ChartBaseline | null): Figure[] {
  const m = data.metrics;
  const steps = m.steps;
  const cols = c.series.map((x) => column(m, x.metric));
  const lines = c.series.flatMap((x, i) => (cols[i] ? thin(steps, cols[i], x.reportLabel ?? x.label) : []));
  // A diverged run: its finite values are drawn, the steps where the first series is NaN/Inf shaded red.
  const extra: object[] = c.nonFinite ? nonFiniteLayer(intervals(steps, nonFiniteFlags(cols[0]))) : [];
  let title = c.reportTitle ?? c.title;
  if (c.spans || c.marks) {
    const counts: string[] = [];
    if (c.spans) {
      const bands = intervals(steps, column(m, c.spans.metric));
      if (bands.length > 0) {
        extra.push({
          data: { values: bands },
          mark: { type: 'rect', color: c.spans.color },
          encoding: { x: { field: 's0', type: 'quantitative' }, x2: { field: 's1' } },
        });
      }
      counts.push(`${c.spans.short} shaded: ${countOnes(column(m, c.spans.metric))}`);
    }
    if (c.marks) {
      const rules = intervals(steps, column(m, c.marks.metric));
      if (rules.length > 0) {
        extra.push({
          data: { values: rules },
          mark: { type: 'rule', color: c.marks.color, strokeWidth: 1.5 },
          encoding: { x: { field: 's0', type: 'quantitative' } },
        });
      }
      counts.push(`${c.marks.short}: ${countOnes(column(m, c.marks.metric))}, red lines`);
    }
    title += ` (${counts.join('; ')})`;
  }
  if (c.nonFinite) title += nonFiniteNote(steps, cols);
  const rule = baselineRule(c, baseline);
  if (rule) extra.push(...ruleLayers(rule, HALF));
  const present = c.series.filter((_, i) => cols[i] !== undefined).map((x) => x.color);
  const spec = lineFigure(title, lines, {
    width: HALF,
    extra,
    colors: present,
    ...(c.percent ? { percent: true } : {}),
    ...(c.scale === 'linear' ? { log: false } : {}),
  });
  return [{ key: c.id, title, spec, wide: false }];
}

/** A layers x steps heatmap of the table. */
function layerHeatmapFigure(c: LayerHeatmapEntry, data: ReportData): Figure[] {
  const { names, steps, fields } = data.layers;
  const title = `${c.title} (log colour scale)`;
  const spec = gridFigure(title, names, steps, fields[c.field], WIDE, 'layer (input at the top)');
  return [{ key: c.id, title: c.title, spec, wide: true }];
}

/** The row labels a grid names: all up to 40 rows, else every k-th (k a round 2, 5 or 10 times a power of ten). */
export function labelled(rows: readonly string[]): string[] {
  if (rows.length <= 40) return [...rows];
  const raw = rows.length / 20;
  const p = 10 ** Math.floor(Math.log10(raw));
  const k = [1, 2, 5, 10].map((m) => m * p).find((v) => v >= raw)!;
  return rows.filter((_, i) => i % k === 0);
}

/** One time x steps heatmap per recurrent layer and direction (none for a run without them). */
function timeHeatmapFigures(c: TimeHeatmapEntry, data: ReportData): Figure[] {
  return data.timeFlow.map((g, i) => {
    const title = `${c.title}: ${g.layer} ${g.sub}, T = ${g.length} (log colour scale)`;
    const rows = g.times.map((t) => `t ${t}`);
    const spec = gridFigure(title, rows, g.steps, g.values, WIDE, 'time step (the first at the top)');
    return { key: i === 0 ? c.id : `${c.id}-${i + 1}`, title, spec, wide: true };
  });
}

/** The figures of one entry of the chart table, by its kind (a new kind needs a renderer here). */
export function chartFigures(c: ChartEntry, data: ReportData, baseline: ChartBaseline | null): Figure[] {
  switch (c.kind) {
    case 'line':
      return lineChartFigure(c, data, baseline);
    case 'layer-heatmap':
      return layerHeatmapFigure(c, data);
    case 'time-heatmap':
      return timeHeatmapFigures(c, data);
  }
}

function countOnes(col: readonly (number | null)[] | undefined): number {
  let n = 0;
  if (col) for (const v of col) if (v === 1) n++;
  return n;
}
