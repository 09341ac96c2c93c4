/** Line charts over steps (uPlot), sized to their container, with an optional log scale and vertical marks. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h, isolatedPoints, logSplits, logTicks, type NonFiniteSteps, nonFiniteSteps, numberTicks } from './format.js';

export interface SeriesSpec {
  label: string;
  color: string;
  /** Points only, no line (sparse series: evaluations, clipped steps). */
  points?: boolean;
  /** Join the points across missing steps (series logged every epoch). */
  spanGaps?: boolean;
  /** Dots on the points of a line that spans gaps (default true: such series are sparse). */
  dots?: boolean;
  width?: number;
  dash?: number[];
}

export interface ChartSpec {
  title: string;
  /** `data-chart` attribute of the chart's box, for tests and styling. */
  key: string;
  series: SeriesSpec[];
  /** Log y when every value is > 0 ('auto', the default), always linear (false). */
  log?: 'auto' | false;
  height?: number;
  /** Steps to mark with a vertical line (skipped steps). */
  marks?: { color: string; label: string };
  /** Steps to shade (clipped steps): runs of neighbouring steps become one band. */
  spans?: { color: string; label: string };
  yFormat?: (v: number) => string;
  /** Values are fractions: ticks as percentages with as many decimals as their spacing needs. */
  percent?: boolean;
}

/** Powers of ten from 1e-45 to 1e45: a log axis can span all of float32 and more (a diverged loss). */
const DECADES = Array.from({ length: 91 }, (_, i) => Number(`1e${i - 45}`));

/** The shading of steps whose values are not finite. */
const NON_FINITE_FILL = 'rgba(225, 87, 89, 0.14)';

export class LineChart {
  readonly box: HTMLElement;
  private readonly body: HTMLDivElement;
  private readonly note: HTMLDivElement;
  private plot: uPlot | null = null;
  private logMode = false;
  private markSteps: number[] = [];
  private spanRanges: [number, number][] = [];
  private spanCount = 0;
  /** A horizontal rule (the dataset's trivial baseline), drawn as one more series, and whether the plot has it. */
  private rule: { value: number; label: string } | null = null;
  private ruleShown = false;
  /** Steps where a value is NaN or ±Inf: shaded, so a diverged run shows where it diverged. */
  private nonFinite: NonFiniteSteps = { steps: [], ranges: [] };
  /** Per series, finite points with no finite neighbour: drawn as dots (a line through one point shows nothing). */
  private isolated: number[][] = [];
  private readonly resize: ResizeObserver;

  constructor(
    parent: HTMLElement,
    private readonly spec: ChartSpec,
  ) {
    this.body = h('div', { class: 'chart-body' });
    this.note = h('div', { class: 'chart-note muted' });
    this.box = h(
      'section',
      { class: 'card chart', 'data-chart': spec.key },
      h('h3', {}, spec.title),
      this.body,
      this.note,
    );
    parent.append(this.box);
    this.resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.spec.height ?? 220 });
    });
    this.resize.observe(this.body);
  }

  private width(): number {
    return Math.max(240, this.body.clientWidth);
  }

  /**
   * Draws `ys[i]` (one array per series, null where missing) over `xs` (sorted steps). Non-finite values are left
   * out of the lines and their steps shaded red (a diverged loss: what is finite is drawn, and where it stopped
   * being finite is marked), finite points between them are drawn as dots, and values <= 0 are left out on a log
   * scale.
   */
  setData(
    xs: readonly number[],
    ys: readonly (readonly (number | null)[])[],
    marks: number[] = [],
    spans: readonly boolean[] = [],
  ): void {
    let positive = true;
    let points = 0;
    for (const col of ys) {
      for (const v of col) {
        if (v === null || !Number.isFinite(v)) continue;
        points++;
        if (v <= 0) positive = false;
      }
    }
    const log = this.spec.log !== false && positive && points > 0;
    const clean = ys.map((col) => col.map((v) => (v === null || !Number.isFinite(v) || (log && v <= 0) ? null : v)));
    this.nonFinite = nonFiniteSteps(xs, ys);
    this.isolated = clean.map((col) => isolatedPoints(col));
    this.box.dataset.points = String(points);
    this.box.dataset.nonfinite = String(this.nonFinite.steps.length);
    if (this.nonFinite.steps.length > 0) this.box.dataset.nonfiniteFrom = String(this.nonFinite.steps[0]);
    else delete this.box.dataset.nonfiniteFrom;
    this.box.dataset.steps = String(xs.length);
    this.markSteps = marks;
    this.spanRanges = [];
    this.spanCount = 0;
    for (let i = 0; i < spans.length; i++) {
      if (!spans[i]) continue;
      this.spanCount++;
      const last = this.spanRanges.at(-1);
      // Neighbouring steps (no step between them) join one band.
      if (last && i > 0 && spans[i - 1] && last[1] === xs[i - 1]) last[1] = xs[i]!;
      else this.spanRanges.push([xs[i]!, xs[i]!]);
    }
    const rule = this.rule !== null && !(log && this.rule.value <= 0) ? this.rule : null;
    const data = [Array.from(xs), ...clean, ...(rule ? [xs.map(() => rule.value)] : [])] as uPlot.AlignedData;
    if (rule) this.box.dataset.baseline = String(rule.value);
    else delete this.box.dataset.baseline;
    if (this.plot === null || log !== this.logMode || (rule !== null) !== this.ruleShown) {
      this.plot?.destroy();
      this.logMode = log;
      this.ruleShown = rule !== null;
      this.plot = new uPlot(this.options(log), data, this.body);
    } else {
      this.plot.setData(data);
    }
    const notes: string[] = [];
    if (points === 0 && this.nonFinite.steps.length === 0) notes.push('nothing logged yet');
    if (this.nonFinite.steps.length > 0) {
      const n = this.nonFinite.steps.length;
      notes.push(`not finite (NaN/Inf) at ${n} step${n === 1 ? '' : 's'} from step ${this.nonFinite.steps[0]} (red)`);
    }
    if (this.spec.spans) notes.push(`${this.spec.spans.label}: ${this.spanCount} (shaded)`);
    if (this.spec.marks) notes.push(`${this.spec.marks.label}: ${marks.length} (red lines)`);
    this.note.textContent = notes.join(' · ');
    this.box.dataset.spans = String(this.spanCount);
    this.box.dataset.marks = String(marks.length);
  }

  /**
   * A labelled horizontal rule at `rule.value` (null: none), from the next `setData` on; the y range takes it in, so
   * a run far from its baseline shows how far.
   */
  setRule(rule: { value: number; label: string } | null): void {
    this.rule = rule;
  }

  /** The rule's series: a dashed grey line without points, its label in the legend. */
  private ruleSeries(): uPlot.Series[] {
    if (!this.ruleShown || !this.rule) return [];
    return [{ label: this.rule.label, stroke: '#777', width: 1.2, dash: [6, 4], points: { show: false } }];
  }

  private options(log: boolean): uPlot.Options {
    const fmt = this.spec.yFormat;
    const markColor = this.spec.marks?.color ?? '#e15759';
    return {
      width: this.width(),
      height: this.spec.height ?? 220,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : { auto: true } },
      axes: [
        { label: 'step', labelSize: 18, size: 36, stroke: '#555', grid: { stroke: '#eee' } },
        {
          size: 64,
          stroke: '#555',
          grid: { stroke: '#eee' },
          // NOTE: uPlot's own log ticks stop at 1e32 (past it the axis is left blank) and filter labels by mantissa
          ...(log
            ? {
                incrs: DECADES,
                splits: (_u: uPlot, _i: number, min: number, max: number) => logSplits(min, max),
                filter: (_u: uPlot, splits: number[]) => splits,
              }
            : {}),
          values: (_u: uPlot, vals: number[]) => {
            const labels = this.spec.percent
              ? percentTicks(vals)
              : fmt
                ? vals.map((v) => (v === null ? '' : fmt(v)))
                : log
                  ? logTicks(vals)
                  : numberTicks(vals);
            // what the axis says, for tests (uPlot draws it on the canvas)
            this.box.dataset.yTicks = labels.filter((l) => l !== '').join(' ');
            return labels;
          },
        },
      ],
      series: [
        { label: 'step' },
        ...this.spec.series.map(
          (s): uPlot.Series => ({
            label: s.label,
            stroke: s.color,
            width: s.points ? 0 : (s.width ?? 1.5),
            spanGaps: s.spanGaps ?? false,
            ...(s.dash ? { dash: s.dash } : {}),
            points: s.points
              ? { show: true, size: 5, stroke: s.color, fill: s.color }
              : s.spanGaps && s.dots !== false
                ? { show: true, size: 4 }
                : {
                    show: false,
                    size: 4,
                    fill: s.color,
                    // points no line can show (finite between missing or non-finite values) are drawn as dots
                    filter: (_u: uPlot, si: number) => {
                      const idx = this.isolated[si - 1];
                      return idx && idx.length > 0 ? idx : null;
                    },
                  },
            ...(s.points ? { paths: () => null } : {}),
          }),
        ),
        ...this.ruleSeries(),
      ],
      hooks: {
        drawClear: [
          (u: uPlot) => {
            if (this.nonFinite.ranges.length === 0) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = NON_FINITE_FILL;
            const { top, height } = u.bbox;
            for (const [a, b] of this.nonFinite.ranges) {
              const x0 = u.valToPos(a - 0.5, 'x', true);
              const x1 = u.valToPos(b + 0.5, 'x', true);
              ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
            }
            ctx.restore();
          },
          (u: uPlot) => {
            if (this.spanRanges.length === 0 || !this.spec.spans) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = this.spec.spans.color;
            const { top, height } = u.bbox;
            for (const [a, b] of this.spanRanges) {
              const x0 = u.valToPos(a - 0.5, 'x', true);
              const x1 = u.valToPos(b + 0.5, 'x', true);
              ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
            }
            ctx.restore();
          },
        ],
        draw: [
          (u: uPlot) => {
            if (this.markSteps.length === 0) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = markColor;
            ctx.globalAlpha = 0.55;
            ctx.lineWidth = Math.max(1, devicePixelRatio);
            ctx.beginPath();
            for (const step of this.markSteps) {
              const x = Math.round(u.valToPos(step, 'x', true));
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
            }
            ctx.stroke();
            ctx.restore();
          },
        ],
      },
    };
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

/** Tick labels for fractions: `90%`, `90.5%`, with the decimals the spacing of the ticks needs. */
function percentTicks(vals: readonly number[]): string[] {
  const step = vals.length > 1 ? Math.abs(vals[1]! - vals[0]!) * 100 : 1;
  let digits = 0;
  const tol = (step || 1) * 1e-6;
  while (digits < 4 && vals.some((v) => v !== null && Math.abs(Number((v * 100).toFixed(digits)) - v * 100) > tol)) {
    digits++;
  }
  return vals.map((v) => (v === null ? '' : `${(v * 100).toFixed(digits)}%`));
}
