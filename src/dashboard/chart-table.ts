/**
 * The charts of a run, listed once: the run page (web/pages/run.ts) builds its panels from this table and
 * `gradguard report` (report.ts) its figures, in this order. Adding a chart is one entry here; a renderer on each
 * side is needed only for a new `kind`. Plain data and type-only imports: the browser bundle uses it too.
 *
 * Kinds:
 * - `line`: metrics over steps (the shared names of track/metrics.ts), log scale when every value is > 0 unless
 *   `scale: 'linear'`; optionally steps shaded or marked where a 0/1 metric is 1, and the dataset's trivial baseline
 *   (the run's `summary.baseline`, data/baseline.ts) as a labelled horizontal rule.
 * - `layer-heatmap`: one per-layer statistic, layers x steps, log colour scale.
 * - `time-heatmap`: the gradient norm ‖∂L/∂h_t‖ reaching each time step of a recurrent layer, time x steps (one
 *   heatmap per recurrent layer and direction; none for a run without recurrent layers).
 */
import type { MetricName } from '../track/metrics.js';
import type { LayerField } from '../track/types.js';

/** One line of a line chart. */
export interface ChartSeries {
  /** The quantity it plots (track/metrics.ts: its first key the run logged). */
  readonly metric: MetricName;
  /** Its legend label on the run page. */
  readonly label: string;
  /** Its legend label in reports, when shorter than the page's. */
  readonly reportLabel?: string;
  readonly color: string;
  /** Join the points across missing steps (a metric logged every epoch), drawn thicker with dots. */
  readonly sparse?: boolean;
  readonly dash?: readonly number[];
}

/** Steps where a 0/1 metric is 1, drawn as shaded bands (`spans`) or vertical rules (`marks`). */
export interface StepFlags {
  readonly metric: MetricName;
  readonly color: string;
  readonly label: string;
  /** The word a report's title counts them by (`clipped steps shaded: 3`). */
  readonly short: string;
}

interface ChartBase {
  /** Its key: `data-chart` / `data-heatmap` on the page, `data-figure` and the figure key in reports. */
  readonly id: string;
  readonly title: string;
  /** The page section it is drawn in. */
  readonly section: 'training' | 'flow' | 'activations';
}

export interface LineChartEntry extends ChartBase {
  readonly kind: 'line';
  readonly series: readonly ChartSeries[];
  /** `auto`: log when every value is > 0, else linear; `linear`: always linear. */
  readonly scale: 'auto' | 'linear';
  /** Values are fractions, labelled as percentages. */
  readonly percent?: boolean;
  readonly spans?: StepFlags;
  readonly marks?: StepFlags;
  /** Which number of the dataset's trivial baseline to draw as a horizontal rule. */
  readonly baseline?: 'loss' | 'accuracy';
  /** Shade the steps where the first series is NaN or ±Inf in reports (the page shades every series' own). */
  readonly nonFinite?: boolean;
  /** The title in reports, when shorter than the page's (a report's title adds the counts of `spans` and `marks`). */
  readonly reportTitle?: string;
}

export interface LayerHeatmapEntry extends ChartBase {
  readonly kind: 'layer-heatmap';
  /** The per-layer statistic (the page's `data-heatmap` is this field). */
  readonly field: LayerField;
  /** A sentence under the title on the page. */
  readonly help: string;
}

export interface TimeHeatmapEntry extends ChartBase {
  readonly kind: 'time-heatmap';
  readonly help: string;
}

export type ChartEntry = LineChartEntry | LayerHeatmapEntry | TimeHeatmapEntry;

/** The colours of the page and the reports (Tableau 10). */
const C = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2'] as const;

/** Every chart of a run, in the order the page sections and the report draw them. */
export const RUN_CHARTS: readonly ChartEntry[] = [
  {
    kind: 'line',
    id: 'loss',
    title: 'Loss',
    section: 'training',
    scale: 'auto',
    series: [
      { metric: 'loss', label: 'train loss', reportLabel: 'train', color: C[0] },
      { metric: 'testLoss', label: 'test loss', reportLabel: 'test', color: C[1], sparse: true },
    ],
    baseline: 'loss',
    nonFinite: true,
  },
  {
    kind: 'line',
    id: 'accuracy',
    title: 'Test accuracy',
    section: 'training',
    scale: 'linear',
    percent: true,
    series: [{ metric: 'accuracy', label: 'accuracy', color: C[2], sparse: true }],
    baseline: 'accuracy',
  },
  {
    kind: 'line',
    id: 'lr',
    title: 'Learning rate',
    section: 'training',
    scale: 'linear',
    series: [{ metric: 'lr', label: 'lr', color: C[4] }],
  },
  {
    kind: 'line',
    id: 'grad-norm',
    title: 'Global gradient norm, before and after clipping',
    section: 'training',
    scale: 'auto',
    series: [
      { metric: 'gradNorm', label: 'before clipping', color: C[0] },
      { metric: 'gradNormClipped', label: 'after clipping', color: C[1], dash: [4, 3] },
    ],
    spans: { metric: 'clipped', color: 'rgba(237, 201, 72, 0.25)', label: 'clipped steps', short: 'clipped steps' },
    marks: { metric: 'skipped', color: '#d62728', label: 'skipped steps (non-finite gradients)', short: 'skipped' },
    nonFinite: true,
    reportTitle: 'Global gradient norm',
  },
  {
    kind: 'layer-heatmap',
    id: 'heat-grad',
    title: 'Gradient norm per layer',
    section: 'flow',
    field: 'gradNorm',
    help: 'One row per layer, input at the top. Dark rows that stay dark: vanishing gradients; bright red: infinite.',
  },
  {
    kind: 'layer-heatmap',
    id: 'heat-ratio',
    title: 'Update / weight ratio per layer',
    section: 'flow',
    field: 'updateRatio',
    help: '‖Δw‖/‖w‖ of each step; around 1e-3 is the usual healthy range.',
  },
  {
    kind: 'time-heatmap',
    id: 'time-flow',
    title: 'Gradient norm through time',
    section: 'flow',
    help: '‖∂L/∂h_t‖ reaching each time step t (first step at the top) on each monitored step; rows that fade towards the top: the gradient vanishes through time.',
  },
  {
    kind: 'layer-heatmap',
    id: 'act-std',
    title: 'Activation standard deviation per layer',
    section: 'activations',
    field: 'actStd',
    help: 'Rows that fade towards zero: the signal dies with depth; rows that grow: it explodes.',
  },
];

/** The per-layer fields the charts draw (what the page asks the layers API for). */
export const CHART_LAYER_FIELDS: readonly LayerField[] = RUN_CHARTS.flatMap((c) =>
  c.kind === 'layer-heatmap' ? [c.field] : [],
);

/** The trivial baseline a run stored in its summary (data/baseline.ts), as the charts read it. */
export interface ChartBaseline {
  loss: number;
  accuracy?: number;
  predictor: string;
}

/** The baseline of a run's summary, or null when it has none (or a malformed one). */
export function baselineOf(summary: unknown): ChartBaseline | null {
  const b = (summary as { baseline?: unknown } | null)?.baseline as Partial<ChartBaseline> | undefined;
  if (!b || typeof b.loss !== 'number' || typeof b.predictor !== 'string') return null;
  return {
    loss: b.loss,
    predictor: b.predictor,
    ...(typeof b.accuracy === 'number' ? { accuracy: b.accuracy } : {}),
  };
}

/** The value and label of the rule a line chart draws for a baseline, or null when it draws none. */
export function baselineRule(chart: LineChartEntry, b: ChartBaseline | null): { value: number; label: string } | null {
  if (!b || !chart.baseline) return null;
  const value = chart.baseline === 'loss' ? b.loss : b.accuracy;
  if (value === undefined || !Number.isFinite(value)) return null;
  const shown = chart.percent ? `${(value * 100).toFixed(1)}%` : String(Number(value.toPrecision(3)));
  return { value, label: `trivial baseline ${shown}` };
}
