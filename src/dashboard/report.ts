/**
 * `gradguard report`: the dashboard's figures of one run in one self-contained file, made without a browser.
 * The figures are the run page's charts (the chart table, chart-table.ts; drawn by report-charts.ts) and the
 * findings. Each figure is a vega-lite spec, rendered to SVG by vega's headless `View.toSVG`; PNG is that SVG
 * rasterised by resvg; HTML puts the SVGs inline next to the run's facts and findings (no script, no external
 * resource).
 */
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { formatMetric } from '../monitor/format.js';
import { isPercentMetric } from '../track/metrics.js';
import type { RunStore } from '../track/store.js';
import type { LayerField, RunInfo } from '../track/types.js';
import { baselineOf, CHART_LAYER_FIELDS, RUN_CHARTS } from './chart-table.js';
import { configSummary, finalMetrics, runListItem } from './data.js';
import { chartFigures, empty, type Figure, type ReportData, WIDE } from './report-charts.js';
import { timeFlowGrids } from './time-flow-api.js';

export { type Figure, type ReportData, thin } from './report-charts.js';
export type ReportFormat = 'html' | 'svg' | 'png';

const REPORT_FIELDS: readonly LayerField[] = CHART_LAYER_FIELDS;
const FONT = 'DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif';

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
  return {
    run,
    metrics,
    layers: { names, steps, fields },
    findings: store.getFindings(run.id),
    timeFlow: timeFlowGrids(store.getTimeFlow(run.id)),
  };
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

/** The figures of a report, in the chart table's order (chart-table.ts), then the findings. */
export function reportFigures(data: ReportData): Figure[] {
  const baseline = baselineOf(data.run.summary);
  const figs = RUN_CHARTS.flatMap((c) => chartFigures(c, data, baseline));
  figs.push({ key: 'findings', title: 'Findings', spec: findingsFigure(data, WIDE), wide: true });
  return figs;
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

/** All figures in one vega-lite spec (half-width ones two by two, wide ones alone), with the run's facts as its title. */
export function combinedSpec(data: ReportData): TopLevelSpec {
  const facts = reportFacts(data.run);
  const independent = { scale: { color: 'independent' }, legend: { color: 'independent' } };
  const rows: object[] = [];
  let half: TopLevelSpec | null = null;
  for (const f of reportFigures(data)) {
    if (f.wide) {
      if (half) rows.push(half);
      half = null;
      rows.push(f.spec);
    } else if (half) {
      rows.push({ hconcat: [half, f.spec], resolve: independent });
      half = null;
    } else half = f.spec;
  }
  if (half) rows.push(half);
  return {
    title: { text: facts.title, subtitle: facts.lines, fontSize: 16, subtitleFontSize: 11, anchor: 'start' },
    vconcat: rows,
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
        `<figure class="${f.wide ? 'wide' : ''}" data-figure="${esc(f.key)}">${prefixIds(svgs[i]!, `f${i}-`)}</figure>`,
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
