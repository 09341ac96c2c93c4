/**
 * `gradguard report`: the dashboard's figures of one run in one self-contained file, made without a browser.
 * Each figure is a vega-lite spec, rendered to SVG by vega's headless `View.toSVG`; PNG is that SVG rasterised by
 * resvg; HTML puts the SVGs inline next to the run's facts and findings (no script, no external resource).
 *
 * Long runs are thinned before plotting: lines keep the min and max of each of at most 1,000 bins (spikes survive),
 * heatmaps show the geometric mean of at most 160 step bins per layer.
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { formatMetric } from '../monitor/format.js';
import { isPercentMetric, type MetricName, metricKey } from '../track/metrics.js';
import type { RunStore } from '../track/store.js';
import type { FindingRow, LayerField, MetricSeries, RunInfo } from '../track/types.js';
import { configSummary, finalMetrics, runListItem } from './data.js';

export type ReportFormat = 'html' | 'svg' | 'png';

/** What a report shows, read from the store. */
export interface ReportData {
  run: RunInfo;
  metrics: MetricSeries;
  layers: { names: string[]; steps: number[]; fields: Partial<Record<LayerField, Float64Array>> };
  findings: FindingRow[];
}

const REPORT_FIELDS: LayerField[] = ['gradNorm', 'updateRatio', 'actStd'];
const LINE_BINS = 1000;
const HEAT_BINS = 160;
const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';
const WIDE = 1080;
const HALF = 500;

/** Reads everything a report of run `id` needs (an id, a unique prefix or a run name). */
export function loadReportData(store: RunStore, id: string): ReportData {
  const run = store.getRun(id);
  const metrics = store.getMetrics(run.id);
  const fields: ReportData['layers']['fields'] = {};
  let names: string[] = [];
  let steps: number[] = [];
  for (const f of REPORT_FIELDS) {
    const m = store.getLayerMatrix(run.id, f);
    if (f === REPORT_FIELDS[0]) {
      names = m.layers;
      steps = m.steps;
    }
    // Matrices read while a run is written may differ by a step: keep the first one's shape.
    if (m.steps.length === steps.length && m.layers.length === names.length) fields[f] = m.values;
  }
  return { run, metrics, layers: { names, steps, fields }, findings: store.getFindings(run.id) };
}

/** One figure: its title and vega-lite spec. */
export interface Figure {
  key: string;
  title: string;
  spec: TopLevelSpec;
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

function empty(title: string, width: number): TopLevelSpec {
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

/** A layers x steps heatmap with a log colour scale (viridis); bins with no positive finite value are left out. */
function heatmapFigure(title: string, data: ReportData, field: LayerField, width: number): TopLevelSpec {
  const values = data.layers.fields[field];
  const { names, steps } = data.layers;
  if (!values || names.length === 0 || steps.length === 0) return empty(title, width);
  const n = steps.length;
  const nb = Math.min(n, HEAT_BINS);
  const cells: { layer: string; s0: number; s1: number; value: number }[] = [];
  for (let l = 0; l < names.length; l++) {
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
          layer: names[l]!,
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
    height: Math.max(60, Math.min(24, Math.max(8, Math.floor(400 / names.length))) * names.length),
    data: { values: cells },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 's0', type: 'quantitative', title: 'step', scale: { nice: false, zero: false } },
      x2: { field: 's1' },
      y: { field: 'layer', type: 'ordinal', sort: names, title: 'layer (input at the top)' },
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

function findingsFigure(data: ReportData, width: number): TopLevelSpec {
  const f = data.findings;
  if (f.length === 0) return empty('Findings: none', width);
  const kinds = [...new Set(f.map((x) => x.kind))];
  const last = Math.max(data.run.lastStep ?? 0, ...f.map((x) => x.step));
  // Each finding on as many lines as its fix command needs (a cut command cannot be copied), at most 12 findings.
  // a continuation line is indented (`x` in pixels), so each finding still reads as one
  const rows: { i: number; text: string; x: number }[] = [];
  for (const x of f.slice(0, 12)) {
    const text = `step ${x.step} · ${x.kind}${x.layers.length ? ` (${x.layers.join(', ')})` : ''}${x.suggestion ? ` — fix: ${x.suggestion}` : ''}`;
    wrapText(text, FINDING_LINE).forEach((line, k) => {
      rows.push({ i: rows.length, text: line, x: k === 0 ? 0 : 24 });
    });
  }
  if (f.length > 12) rows.push({ i: rows.length, text: `… and ${f.length - 12} more`, x: 0 });
  return {
    title: `Findings (${f.length})`,
    vconcat: [
      {
        width,
        height: Math.max(30, kinds.length * 22),
        data: { values: f.map((x) => ({ step: x.step, kind: x.kind })) },
        mark: { type: 'point', filled: true, size: 80 },
        encoding: {
          x: { field: 'step', type: 'quantitative', scale: { domain: [0, Math.max(1, last)] }, title: 'step' },
          y: { field: 'kind', type: 'nominal', title: null, sort: kinds },
          color: { field: 'kind', type: 'nominal', legend: null },
        },
      },
      {
        width,
        height: rows.length * 16,
        data: { values: rows },
        mark: { type: 'text', align: 'left', baseline: 'middle', fontSize: 11 },
        encoding: {
          x: { field: 'x', type: 'quantitative', scale: null, axis: null },
          y: { field: 'i', type: 'ordinal', axis: null },
          text: { field: 'text' },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Characters per line of the findings' text (11 px DejaVu Sans averages under 7 px a character: 1080 px wide). */
const FINDING_LINE = 140;

/**
 * `text` cut into lines of at most `width` characters at spaces (a word longer than a line is cut), so a fix
 * command reads whole over several lines instead of ending in `…`.
 */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    let w = word;
    while (w.length > width) {
      if (line) {
        lines.push(line);
        line = '';
      }
      lines.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (!line) line = w;
    else if (line.length + 1 + w.length <= width) line += ` ${w}`;
    else {
      lines.push(line);
      line = w;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/** The figures of a report, in order: loss, accuracy, learning rate, gradient norm, heatmaps, activations, findings. */
export function reportFigures(data: ReportData): Figure[] {
  const m = data.metrics;
  const steps = m.steps;
  const figs: Figure[] = [];
  const loss = column(m, 'loss');
  const testLoss = column(m, 'testLoss');
  // A diverged run: its finite values are drawn, the steps where the loss is NaN/Inf shaded red.
  const lossTitle = `Loss${nonFiniteNote(steps, [loss, testLoss])}`;
  figs.push({
    key: 'loss',
    title: lossTitle,
    spec: lineFigure(
      lossTitle,
      [...(loss ? thin(steps, loss, 'train') : []), ...(testLoss ? thin(steps, testLoss, 'test') : [])],
      { width: HALF, extra: nonFiniteLayer(intervals(steps, nonFiniteFlags(loss))) },
    ),
  });
  const acc = column(m, 'accuracy');
  figs.push({
    key: 'accuracy',
    title: 'Test accuracy',
    spec: lineFigure('Test accuracy', acc ? thin(steps, acc, 'accuracy') : [], {
      width: HALF,
      percent: true,
      log: false,
      colors: ['#59a14f'],
    }),
  });
  const lr = column(m, 'lr');
  figs.push({
    key: 'lr',
    title: 'Learning rate',
    spec: lineFigure('Learning rate', lr ? thin(steps, lr, 'lr') : [], {
      width: HALF,
      log: false,
      colors: ['#76b7b2'],
    }),
  });
  const before = column(m, 'gradNorm');
  const after = column(m, 'gradNormClipped');
  const gradLines = [
    ...(before ? thin(steps, before, 'before clipping') : []),
    ...(after ? thin(steps, after, 'after clipping') : []),
  ];
  const clipped = intervals(steps, column(m, 'clipped'));
  const skipped = intervals(steps, column(m, 'skipped'));
  const extra: object[] = nonFiniteLayer(intervals(steps, nonFiniteFlags(before)));
  if (clipped.length > 0) {
    extra.push({
      data: { values: clipped },
      mark: { type: 'rect', color: '#edc948', opacity: 0.25 },
      encoding: { x: { field: 's0', type: 'quantitative' }, x2: { field: 's1' } },
    });
  }
  if (skipped.length > 0) {
    extra.push({
      data: { values: skipped },
      mark: { type: 'rule', color: '#d62728', strokeWidth: 1.5 },
      encoding: { x: { field: 's0', type: 'quantitative' } },
    });
  }
  const nClipped = countOnes(column(m, 'clipped'));
  const nSkipped = countOnes(column(m, 'skipped'));
  const gradTitle = `Global gradient norm (clipped steps shaded: ${nClipped}; skipped: ${nSkipped}, red lines)${nonFiniteNote(steps, [before])}`;
  figs.push({ key: 'grad-norm', title: gradTitle, spec: lineFigure(gradTitle, gradLines, { width: HALF, extra }) });
  figs.push({
    key: 'heat-grad',
    title: 'Gradient norm per layer',
    spec: heatmapFigure('Gradient norm per layer (log colour scale)', data, 'gradNorm', WIDE),
  });
  figs.push({
    key: 'heat-ratio',
    title: 'Update / weight ratio per layer',
    spec: heatmapFigure('Update / weight ratio per layer (log colour scale)', data, 'updateRatio', WIDE),
  });
  figs.push({
    key: 'act-std',
    title: 'Activation standard deviation per layer',
    spec: heatmapFigure('Activation standard deviation per layer (log colour scale)', data, 'actStd', WIDE),
  });
  figs.push({ key: 'findings', title: 'Findings', spec: findingsFigure(data, WIDE) });
  return figs;
}

function countOnes(col: readonly (number | null)[] | undefined): number {
  let n = 0;
  if (col) for (const v of col) if (v === 1) n++;
  return n;
}

const CONFIG = {
  font: FONT,
  background: 'white',
  padding: 12,
  view: { stroke: '#ddd' },
  title: { anchor: 'start', fontSize: 13, fontWeight: 600 },
  axis: { labelFontSize: 10, titleFontSize: 11, gridColor: '#eee' },
  legend: { labelFontSize: 10 },
};

/** vega-lite's compiler logs to the console; a report says nothing there. */
const SILENT = vega.logger(vega.None);

/** A vega-lite spec as an SVG document (headless vega, no browser). */
export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const vgSpec = compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec, {
    logger: SILENT,
  }).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', logLevel: vega.None });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The header lines of a report: status, backend, steps, duration, config, final metrics, verdict. */
export function reportFacts(run: RunInfo): { title: string; lines: string[] } {
  const item = runListItem(run);
  const finals = Object.entries(finalMetrics(run)).map(([k, v]) =>
    isPercentMetric(k) ? `${k} ${(v * 100).toFixed(2)}%` : `${k} ${formatMetric(v)}`,
  );
  const lines = [
    `${run.status} · backend ${run.backend} · ${item.steps} steps · ${(item.durationMs / 1000).toFixed(1)} s · started ${new Date(run.createdAt).toISOString().replace('T', ' ').slice(0, 16)} UTC`,
    configSummary(run.config),
  ];
  if (finals.length > 0) lines.push(finals.join(' · '));
  if (item.verdict) lines.push(`verdict: ${item.verdict}`);
  if (item.error) lines.push(`error: ${item.error}`);
  return { title: `gradguard run ${run.id}${run.name ? ` (${run.name})` : ''}`, lines };
}

/** All figures in one vega-lite spec (two columns, then full-width heatmaps), with the run's facts as its title. */
export function combinedSpec(data: ReportData): TopLevelSpec {
  const figs = reportFigures(data).map((f) => f.spec);
  const facts = reportFacts(data.run);
  const independent = { scale: { color: 'independent' }, legend: { color: 'independent' } };
  const pair = (a: TopLevelSpec, b: TopLevelSpec) => ({ hconcat: [a, b], resolve: independent });
  return {
    title: { text: facts.title, subtitle: facts.lines, fontSize: 16, subtitleFontSize: 11, anchor: 'start' },
    vconcat: [pair(figs[0]!, figs[1]!), pair(figs[2]!, figs[3]!), ...figs.slice(4)],
    resolve: independent,
    spacing: 24,
  } as TopLevelSpec;
}

/** Gives every id in an SVG a prefix, so several inline SVGs in one HTML page do not share clip paths. */
function prefixIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}$1"`);
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The report as a self-contained HTML page: facts, inline SVG figures, findings with their fixes, the config. */
export async function renderHtml(data: ReportData): Promise<string> {
  const facts = reportFacts(data.run);
  const figs = reportFigures(data);
  const svgs = await Promise.all(figs.map((f) => specToSvg(f.spec)));
  const figures = figs
    .map(
      (f, i) =>
        `<figure class="${f.key.startsWith('heat') || f.key === 'act-std' || f.key === 'findings' ? 'wide' : ''}" data-figure="${esc(f.key)}">${prefixIds(svgs[i]!, `f${i}-`)}</figure>`,
    )
    .join('\n');
  const findings = data.findings
    .map(
      (f) =>
        `<tr><td class="num">${f.step}</td><td>${esc(f.kind)}</td><td>${esc(f.layers.join(', '))}</td><td>${esc(typeof f.evidence === 'string' ? f.evidence : f.evidence === null ? '' : JSON.stringify(f.evidence))}</td><td><code>${esc(f.suggestion ?? '')}</code></td></tr>`,
    )
    .join('\n');
  const config = flattenForHtml(data.run.config)
    .map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td><code>${esc(JSON.stringify(v) ?? '')}</code></td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gradguard report">
<title>${esc(facts.title)}</title>
<style>
body { font-family: ${FONT}; color: #1d2430; max-width: 1200px; margin: 2em auto; padding: 0 1em; font-size: 14px; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.facts p { margin: 0.2em 0; color: #374151; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 1em; }
figure { margin: 0; border: 1px solid #e5e7eb; border-radius: 6px; padding: 4px; }
figure.wide { flex-basis: 100%; }
figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; border-bottom: 1px solid #e5e7eb; padding: 4px 8px; vertical-align: top; }
.num { text-align: right; }
code { font-size: 12px; }
</style>
</head>
<body>
<h1>${esc(facts.title)}</h1>
<div class="facts">${facts.lines.map((l) => `<p>${esc(l)}</p>`).join('')}</div>
<div class="figures">
${figures}
</div>
<h2>Findings</h2>
${data.findings.length === 0 ? '<p>None: the diagnosis flagged nothing.</p>' : `<table><thead><tr><th>step</th><th>kind</th><th>layers</th><th>evidence</th><th>fix</th></tr></thead><tbody>\n${findings}\n</tbody></table>`}
<h2>Config</h2>
<table><tbody>
${config}
</tbody></table>
<p style="color:#888;font-size:12px">Made by gradguard report from the run store.</p>
</body>
</html>
`;
}

function flattenForHtml(value: unknown, prefix = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return prefix ? [[prefix, value]] : [];
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out.push(...flattenForHtml(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}

/** Renders a report in `format`: HTML text, one SVG document, or PNG bytes. */
export async function renderReport(data: ReportData, format: ReportFormat): Promise<string | Uint8Array> {
  if (format === 'html') return renderHtml(data);
  const svg = await specToSvg(combinedSpec(data));
  if (format === 'svg') return svg;
  return svgToPng(svg);
}

/** Rasterises an SVG document (as `specToSvg` makes them) to PNG bytes at twice its size, on white, with resvg. */
export function svgToPng(svg: string): Uint8Array {
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'zoom', value: 2 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
