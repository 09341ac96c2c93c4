/**
 * The run page's charts, built from the chart table (../chart-table.ts) that `gradguard report` draws too: a
 * `LineChart` per line entry, a `Heatmap` per layer statistic, and one time x steps `Heatmap` per recurrent layer and
 * direction for the gradient through time. A new kind of chart needs a panel here and a figure in report.ts.
 */

import {
  baselineRule,
  type ChartBaseline,
  type ChartEntry,
  type LayerHeatmapEntry,
  type LineChartEntry,
  RUN_CHARTS,
  type TimeHeatmapEntry,
} from '../chart-table.js';
import type { TimeFlowResponse, TimeFlowSeries } from '../time-flow-api.js';
import type { LayerStore, MetricStore } from './api.js';
import { LineChart } from './charts.js';
import { h } from './format.js';
import { Heatmap } from './heatmap.js';

/** One chart on the page: what it draws from the page's data, and its teardown. */
interface Panel {
  metrics?(m: MetricStore): void;
  layers?(l: LayerStore): void;
  timeFlow?(res: TimeFlowResponse): void;
  baseline?(b: ChartBaseline | null): void;
  destroy(): void;
}

/** The page sections the panels go into. */
export type ChartSections = Record<ChartEntry['section'], HTMLElement>;

function linePanel(c: LineChartEntry, parent: HTMLElement): Panel {
  const chart = new LineChart(parent, {
    title: c.title,
    key: c.id,
    ...(c.scale === 'linear' ? { log: false as const } : {}),
    ...(c.percent ? { percent: true } : {}),
    series: c.series.map((s) => ({
      label: s.label,
      color: s.color,
      ...(s.sparse ? { spanGaps: true, width: 2 } : {}),
      ...(s.dash ? { dash: [...s.dash] } : {}),
    })),
    ...(c.spans ? { spans: { color: c.spans.color, label: c.spans.label } } : {}),
    ...(c.marks ? { marks: { color: c.marks.color, label: c.marks.label } } : {}),
  });
  return {
    metrics(m) {
      const xs = m.steps;
      const empty = new Array<number | null>(xs.length).fill(null);
      const ys = c.series.map((s) => m.metric(s.metric) ?? empty);
      const marks: number[] = [];
      const flagged = c.marks ? m.metric(c.marks.metric) : undefined;
      if (flagged) for (let i = 0; i < xs.length; i++) if (flagged[i] === 1) marks.push(xs[i]!);
      const spans = c.spans ? (m.metric(c.spans.metric)?.map((v) => v === 1) ?? []) : [];
      chart.setData(xs, ys, marks, spans);
    },
    baseline(b) {
      chart.setRule(baselineRule(c, b));
    },
    destroy: () => chart.destroy(),
  };
}

function layerHeatmapPanel(c: LayerHeatmapEntry, parent: HTMLElement): Panel {
  const map = new Heatmap(parent, { title: `${c.title} (log scale)`, key: c.field, help: c.help });
  return {
    layers: (l) => map.setData(l.layers, l.steps, l.rows(c.field) ?? []),
    destroy: () => map.destroy(),
  };
}

/** The rows of a time x steps grid: one per recorded time step, NaN where not recorded. */
function timeRows(s: TimeFlowSeries): Float32Array[] {
  const n = s.steps.length;
  return s.times.map((_, i) => Float32Array.from(s.values.slice(i * n, (i + 1) * n), (v) => v ?? Number.NaN));
}

function timeHeatmapPanel(c: TimeHeatmapEntry, parent: HTMLElement): Panel {
  const box = h('div', { class: 'stack', 'data-time-flow': '0', hidden: true });
  parent.append(box);
  let maps: Heatmap[] = [];
  const clear = () => {
    for (const m of maps) m.destroy();
    maps = [];
    box.replaceChildren();
  };
  return {
    timeFlow(res) {
      clear();
      for (const s of res.series) {
        const map = new Heatmap(box, {
          title: `${c.title}: ${s.layer} ${s.sub}, T = ${s.length} (log scale)`,
          key: `${c.id}:${s.layer}:${s.sub}`,
          help: c.help,
        });
        map.setData(
          s.times.map((t) => `t ${t}`),
          s.steps,
          timeRows(s),
        );
        maps.push(map);
      }
      box.dataset.timeFlow = String(res.series.length);
      box.hidden = res.series.length === 0;
    },
    destroy: clear,
  };
}

/** The panel of one entry of the chart table, by its kind (a new kind needs a panel here). */
function panelOf(c: ChartEntry, parent: HTMLElement): Panel {
  switch (c.kind) {
    case 'line':
      return linePanel(c, parent);
    case 'layer-heatmap':
      return layerHeatmapPanel(c, parent);
    case 'time-heatmap':
      return timeHeatmapPanel(c, parent);
  }
}

/** The run page's charts, in the table's order within each section. */
export class RunCharts {
  private readonly panels: Panel[];

  constructor(sections: ChartSections) {
    this.panels = RUN_CHARTS.map((c) => panelOf(c, sections[c.section]));
  }

  /** The dataset's trivial baseline of the run (its summary's), drawn from the next metrics on. */
  setBaseline(b: ChartBaseline | null): void {
    for (const p of this.panels) p.baseline?.(b);
  }

  drawMetrics(m: MetricStore): void {
    for (const p of this.panels) p.metrics?.(m);
  }

  drawLayers(l: LayerStore): void {
    for (const p of this.panels) p.layers?.(l);
  }

  drawTimeFlow(res: TimeFlowResponse): void {
    for (const p of this.panels) p.timeFlow?.(res);
  }

  destroy(): void {
    for (const p of this.panels) p.destroy();
  }
}
