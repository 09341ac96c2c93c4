/**
 * One run: the charts of the chart table (../../chart-table.ts, shared with `gradguard report`: loss and accuracy
 * beside the dataset's trivial baseline, learning rate, global gradient norm before and after clipping, layers x
 * steps heatmaps, the gradient through time of recurrent layers), per-layer activation statistics, histograms, and
 * the findings as a timeline with their fixes. A running run follows the server's event stream (its status events,
 * on every change, keep the header's steps and duration current); the gradient through time is read at the load and
 * again when the run ends.
 */

import type {
  FindingItem,
  FindingsResponse,
  LastLayers,
  LayersResponse,
  MetricsResponse,
  RunListItem,
  RunResponse,
  StatusEvent,
  StepsEvent,
} from '../../api-types.js';
import { baselineOf, CHART_LAYER_FIELDS } from '../../chart-table.js';
import type { TimeFlowResponse } from '../../time-flow-api.js';
import { ApiFailure, getJson, LayerStore, MetricStore, num } from '../api.js';
import { fmtDuration, fmtMetric, fmtNum, fmtPct, fmtTime, h, PALETTE, statusBadge } from '../format.js';
import { mountHistograms } from '../histograms.js';
import { RunCharts } from '../run-charts.js';

/** The layer fields the page draws over steps (the table of the last step comes with the run). */
const FIELDS = CHART_LAYER_FIELDS;

/** Whether the header's config table is open (it is drawn again on every status event of a live run). */
const configOpen = (header: HTMLElement): boolean => header.querySelector('details')?.open === true;

export function runPage(root: HTMLElement, id: string): () => void {
  const metrics = new MetricStore();
  const layers = new LayerStore();
  let findings: FindingItem[] = [];
  let lastLayers: LastLayers | null = null;
  let run: RunResponse['run'] | null = null;
  let source: EventSource | null = null;
  let frame = 0;
  let disposed = false;
  const abort = new AbortController();

  const header = h('section', { class: 'card run-header' });
  const live = h('span', { class: 'live', id: 'live', hidden: true });
  const grid = h('div', { class: 'grid' });
  const heat = h('div', { class: 'stack' });
  const acts = h('div', { class: 'stack' });
  const actTable = h(
    'section',
    { class: 'card' },
    h('h3', {}, 'Activations and gradients per layer (last logged step)'),
  );
  const findingsBox = h('section', { class: 'card findings', 'data-findings': '0' });
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← runs')),
    header,
    h('h2', {}, 'Training'),
    grid,
    h('h2', {}, 'Gradient flow'),
    heat,
    h('h2', {}, 'Activations'),
    acts,
    actTable,
    h('h2', {}, 'Findings'),
    findingsBox,
  );
  root.dataset.loaded = '0';
  mountHistograms(root, id, abort.signal);
  const charts = new RunCharts({ training: grid, flow: heat, activations: acts });

  function renderHeader(): void {
    if (!run) return;
    const r = run;
    const finals = Object.entries(r.final).map(([k, v]) =>
      h('span', { class: 'metric' }, h('b', {}, k), ' ', fmtMetric(k, v)),
    );
    const configRows = flatten(r.config).map(([k, v]) =>
      h('tr', {}, h('td', { class: 'mono' }, k), h('td', { class: 'mono' }, JSON.stringify(v))),
    );
    header.replaceChildren(
      h('h1', {}, r.name ?? r.id, ' ', statusBadge(r.status), ' ', live),
      h(
        'div',
        { class: 'facts' },
        h('span', {}, h('b', {}, 'id '), h('span', { class: 'mono' }, r.id)),
        h('span', {}, h('b', {}, 'backend '), r.backend),
        h('span', { 'data-fact': 'steps' }, h('b', {}, 'steps '), String(r.steps)),
        h('span', { 'data-fact': 'duration' }, h('b', {}, 'duration '), fmtDuration(r.durationMs)),
        h('span', {}, h('b', {}, 'started '), fmtTime(r.createdAt)),
        h(
          'span',
          {},
          h('b', {}, 'verdict '),
          h('span', { class: r.verdict === 'healthy' ? 'ok' : 'warn' }, r.verdict ?? '–'),
        ),
      ),
      h('p', { class: 'config' }, r.configSummary),
      finals.length > 0 ? h('div', { class: 'facts' }, finals) : '',
      r.error ? h('p', { class: 'error' }, r.error) : '',
      h('details', { open: configOpen(header) }, h('summary', {}, 'config'), h('table', { class: 'kv' }, configRows)),
    );
  }

  function renderCharts(): void {
    charts.drawMetrics(metrics);
  }

  function renderLayers(): void {
    charts.drawLayers(layers);
    renderActTable(actTable, lastLayers);
  }

  /** The recurrent layers' gradient through time (a run without them has none: nothing is drawn). */
  function loadTimeFlow(): void {
    getJson<TimeFlowResponse>(`/api/runs/${encodeURIComponent(id)}/time-flow`, abort.signal)
      .then((res) => {
        if (!disposed) charts.drawTimeFlow(res);
      })
      .catch(() => {});
  }

  function schedule(): void {
    if (frame !== 0 || disposed) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      if (disposed) return;
      renderCharts();
      renderLayers();
      renderFindings(findingsBox, findings, metrics.steps.at(-1) ?? 0);
      const lastStep = Math.max(metrics.steps.at(-1) ?? -1, layers.steps.at(-1) ?? -1);
      root.dataset.lastStep = String(lastStep);
      root.dataset.updates = String(metrics.version);
      if (run?.status === 'running') {
        live.hidden = false;
        live.textContent = `● live · step ${lastStep}`;
        live.dataset.step = String(lastStep);
      }
    });
  }

  function follow(): void {
    const from = Math.max(metrics.steps.at(-1) ?? -1, layers.steps.at(-1) ?? -1);
    const url = `/api/runs/${encodeURIComponent(id)}/events?from=${Math.max(0, from)}&findings=${findings.length}&fields=${FIELDS.join(',')}`;
    source = new EventSource(url);
    source.addEventListener('steps', (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as StepsEvent;
      metrics.merge(ev.metrics, ev.from);
      layers.merge(ev.layers, ev.from);
      if (ev.lastLayers) lastLayers = ev.lastLayers;
      schedule();
    });
    source.addEventListener('findings', (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as FindingsResponse;
      findings = findings.concat(ev.findings);
      schedule();
    });
    source.addEventListener('status', (e) => {
      const ev = JSON.parse((e as MessageEvent<string>).data) as StatusEvent;
      updateRun(ev.run);
    });
    source.addEventListener('end', () => {
      source?.close();
      source = null;
      live.hidden = true;
      // The summary (final metrics, verdict) is written when the run ends.
      getJson<RunResponse>(`/api/runs/${encodeURIComponent(id)}`, abort.signal)
        .then((res) => updateRun(res.run))
        .catch(() => {});
      loadTimeFlow();
    });
  }

  function updateRun(item: RunListItem): void {
    if (!run) return;
    run = { ...run, ...item };
    renderHeader();
    if (run.status !== 'running') live.hidden = true;
  }

  async function load(): Promise<void> {
    const base = `/api/runs/${encodeURIComponent(id)}`;
    try {
      // Four requests at once; each part is drawn as soon as its data is in (the server answers them in turn).
      const infoP = getJson<RunResponse>(base, abort.signal);
      const metricsP = getJson<MetricsResponse>(`${base}/metrics`, abort.signal);
      const layersP = getJson<LayersResponse>(`${base}/layers?encoding=f32&fields=${FIELDS.join(',')}`, abort.signal);
      const findingsP = getJson<FindingsResponse>(`${base}/findings`, abort.signal);
      const info = await infoP;
      if (disposed) return;
      run = info.run;
      lastLayers = info.lastLayers;
      charts.setBaseline(baselineOf(info.run.summary));
      renderHeader();
      loadTimeFlow();
      await Promise.all([
        metricsP.then((m) => {
          if (disposed) return;
          metrics.merge(m, 0);
          renderCharts();
          performance.mark('gg:charts');
        }),
        layersP.then((l) => {
          if (disposed) return;
          layers.merge(l, 0);
          renderLayers();
          performance.mark('gg:layers');
        }),
        findingsP.then((f) => {
          findings = f.findings;
        }),
      ]);
      if (disposed) return;
      renderFindings(findingsBox, findings, metrics.steps.at(-1) ?? 0);
      performance.mark('gg:drawn');
      root.dataset.lastStep = String(Math.max(metrics.steps.at(-1) ?? -1, layers.steps.at(-1) ?? -1));
      root.dataset.loaded = '1';
      if (run.status === 'running') {
        follow();
        schedule();
      }
    } catch (e) {
      if (disposed) return;
      const msg = e instanceof ApiFailure ? e.message : `cannot load the run: ${(e as Error).message}`;
      root.replaceChildren(
        h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← runs')),
        h('p', { class: 'error' }, msg),
      );
      root.dataset.loaded = 'error';
    }
  }

  load();
  return () => {
    disposed = true;
    abort.abort();
    source?.close();
    cancelAnimationFrame(frame);
    charts.destroy();
  };
}

/** The table of every layer's statistics at the last logged step, under the card's heading. */
function renderActTable(actTable: HTMLElement, last: LastLayers | null): void {
  if (last === null || last.layers.length === 0) {
    actTable.replaceChildren(actTable.firstChild!, h('p', { class: 'muted' }, 'no layer statistics logged yet'));
    return;
  }
  const cols: [string, string, (v: number) => string][] = [
    ['actMean', 'act. mean', fmtNum],
    ['actStd', 'act. std', fmtNum],
    ['deadFrac', 'dead (ReLU)', fmtPct],
    ['satFrac', 'saturated', fmtPct],
    ['gradNorm', 'grad norm', fmtNum],
    ['updateRatio', '‖Δw‖/‖w‖', fmtNum],
    ['weightNorm', '‖w‖', fmtNum],
    ['nonFinite', 'NaN/Inf', fmtNum],
  ];
  const value = (row: LastLayers['layers'][number], f: string) => {
    const v = row[f];
    return v === undefined || v === row.name ? null : num(v as number);
  };
  const present = cols.filter(([f]) => last.layers.some((r) => value(r, f) !== null));
  const rows = last.layers.map((r) =>
    h(
      'tr',
      {},
      h('td', { class: 'mono' }, r.name),
      present.map(([f, , format]) => {
        const v = value(r, f);
        return h('td', { class: 'num' }, v === null ? '–' : format(v));
      }),
    ),
  );
  actTable.replaceChildren(
    actTable.firstChild!,
    h('p', { class: 'muted small' }, `step ${last.step}`),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'layers', 'data-layers-table': String(last.layers.length) },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'layer'),
            present.map(([, t]) => h('th', { class: 'num' }, t)),
          ),
        ),
        h('tbody', {}, rows),
      ),
    ),
  );
}

/** The findings as a timeline over the run's steps and a list with their fixes (`lastStep`: the last logged). */
function renderFindings(findingsBox: HTMLElement, findings: readonly FindingItem[], lastStep: number): void {
  findingsBox.dataset.findings = String(findings.length);
  if (findings.length === 0) {
    findingsBox.replaceChildren(h('p', { class: 'muted' }, 'No findings: nothing the diagnosis flagged so far.'));
    return;
  }
  const last = Math.max(lastStep, ...findings.map((f) => f.step), 1);
  const kinds = [...new Set(findings.map((f) => f.kind))];
  const color = (k: string) => PALETTE[kinds.indexOf(k) % PALETTE.length]!;
  const track = h(
    'div',
    { class: 'timeline' },
    findings.map((f) =>
      h('span', {
        class: 'tick',
        title: `step ${f.step}: ${f.kind}`,
        style: `left:${((f.step / last) * 100).toFixed(2)}%;background:${color(f.kind)}`,
      }),
    ),
  );
  const legend = h(
    'div',
    { class: 'facts small' },
    kinds.map((k) => h('span', {}, h('i', { class: 'swatch', style: `background:${color(k)}` }), k)),
  );
  const items = findings.map((f) =>
    h(
      'li',
      { 'data-kind': f.kind },
      h(
        'div',
        {},
        h('b', {}, `step ${f.step}`),
        ' ',
        h('span', { class: 'kind', style: `color:${color(f.kind)}` }, f.kind),
      ),
      f.layers.length > 0
        ? h('div', { class: 'small' }, 'layers: ', h('span', { class: 'mono' }, f.layers.join(', ')))
        : null,
      f.evidence !== null && f.evidence !== undefined
        ? h('div', {}, typeof f.evidence === 'string' ? f.evidence : JSON.stringify(f.evidence))
        : null,
      f.suggestion ? h('div', { class: 'fix' }, h('b', {}, 'fix: '), f.suggestion) : null,
    ),
  );
  findingsBox.replaceChildren(
    h(
      'div',
      { class: 'timeline-wrap' },
      track,
      h('div', { class: 'timeline-axis small muted' }, h('span', {}, '0'), h('span', {}, `step ${last}`)),
    ),
    legend,
    h('ol', { class: 'finding-list' }, items),
  );
}

/** `a.b.c` paths and leaf values of a JSON value (arrays are leaves). */
export function flatten(value: unknown, prefix = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return prefix ? [[prefix, value]] : [];
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out.push(...flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}
