/** Several runs overlaid (loss, test loss, accuracy, gradient norm, learning rate) and their configs side by side. */

import type { MetricName } from '../../../track/metrics.js';
import type { CompareResponse } from '../../api-types.js';
import { getJson, MetricStore } from '../api.js';
import { LineChart } from '../charts.js';
import { fmtDuration, fmtMetric, h, PALETTE, statusBadge } from '../format.js';

const PANELS: { key: string; title: string; metric: MetricName; log?: false; pct?: boolean; sparse?: boolean }[] = [
  { key: 'loss', title: 'Train loss', metric: 'loss' },
  { key: 'test-loss', title: 'Test loss', metric: 'testLoss', sparse: true },
  { key: 'accuracy', title: 'Test accuracy', metric: 'accuracy', log: false, pct: true, sparse: true },
  { key: 'grad-norm', title: 'Global gradient norm (before clipping)', metric: 'gradNorm' },
  { key: 'lr', title: 'Learning rate', metric: 'lr', log: false },
];

export function comparePage(root: HTMLElement, ids: string[]): () => void {
  const charts: LineChart[] = [];
  const abort = new AbortController();
  let disposed = false;
  root.dataset.loaded = '0';
  root.append(h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← runs')), h('h1', {}, `Compare ${ids.length} runs`));

  async function load(): Promise<void> {
    try {
      const res = await getJson<CompareResponse>(
        `/api/compare?ids=${ids.map(encodeURIComponent).join(',')}`,
        abort.signal,
      );
      if (disposed) return;
      render(res);
      root.dataset.loaded = '1';
    } catch (e) {
      if (disposed) return;
      root.append(h('p', { class: 'error' }, `Cannot compare: ${(e as Error).message}`));
      root.dataset.loaded = 'error';
    }
  }

  function render(res: CompareResponse): void {
    const color = (i: number) => PALETTE[i % PALETTE.length]!;
    const label = (i: number) => res.runs[i]!.name ?? res.runs[i]!.id;
    const finalKeys = [...new Set(res.runs.flatMap((r) => Object.keys(r.final)))];
    const summary = h(
      'table',
      { class: 'runs' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'Run'),
          h('th', {}, 'Status'),
          h('th', {}, 'Config'),
          finalKeys.map((k) => h('th', { class: 'num' }, k)),
          h('th', {}, 'Verdict'),
          h('th', { class: 'num' }, 'Duration'),
        ),
      ),
      h(
        'tbody',
        {},
        res.runs.map((r, i) =>
          h(
            'tr',
            { 'data-run': r.id },
            h(
              'td',
              {},
              h('i', { class: 'swatch', style: `background:${color(i)}` }),
              h('a', { href: `#/run/${r.id}` }, label(i)),
            ),
            h('td', {}, statusBadge(r.status)),
            h('td', { class: 'config small' }, r.configSummary),
            finalKeys.map((k) => h('td', { class: 'num' }, fmtMetric(k, r.final[k]))),
            h('td', {}, r.verdict ?? '–'),
            h('td', { class: 'num' }, fmtDuration(r.durationMs)),
          ),
        ),
      ),
    );
    root.append(h('section', { class: 'card' }, h('div', { class: 'table-wrap' }, summary)));

    const stores = res.metrics.map((m) => {
      const s = new MetricStore();
      s.merge(m, 0);
      return s;
    });
    // One x axis for all runs: the union of their steps; a run's value is null where it has no such step.
    const all = [...new Set(stores.flatMap((s) => s.steps))].sort((a, b) => a - b);
    const pos = new Map(all.map((s, i) => [s, i]));
    const grid = h('div', { class: 'grid' });
    root.append(h('h2', {}, 'Curves'), grid);
    for (const p of PANELS) {
      const cols = stores.map((s) => {
        const out = new Array<number | null>(all.length).fill(null);
        const src = s.metric(p.metric);
        if (src) for (let i = 0; i < s.steps.length; i++) out[pos.get(s.steps[i]!)!] = src[i]!;
        return out;
      });
      if (cols.every((c) => c.every((v) => v === null))) continue;
      const chart = new LineChart(grid, {
        title: p.title,
        key: p.key,
        ...(p.log === false ? { log: false as const } : {}),
        series: res.runs.map((_, i) => ({
          label: label(i),
          color: color(i),
          spanGaps: true,
          ...(p.sparse ? {} : { dots: false }),
        })),
        ...(p.pct ? { percent: true } : {}),
      });
      chart.setData(all, cols);
      charts.push(chart);
    }

    const onlyDiff = h('input', { type: 'checkbox', id: 'only-diff' });
    onlyDiff.checked = true;
    const table = h('table', { class: 'config-table' });
    const renderConfig = () => {
      const rows = res.config.filter((r) => r.differs || !onlyDiff.checked);
      table.replaceChildren(
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'key'),
            res.runs.map((_, i) => h('th', {}, h('i', { class: 'swatch', style: `background:${color(i)}` }), label(i))),
          ),
        ),
        h(
          'tbody',
          {},
          rows.map((r) =>
            h(
              'tr',
              { class: r.differs ? 'differs' : '', 'data-key': r.key },
              h('td', { class: 'mono' }, r.key),
              r.values.map((v) => h('td', { class: 'mono' }, v ?? '–')),
            ),
          ),
          rows.length === 0
            ? h('tr', {}, h('td', { colspan: res.runs.length + 1 }, 'The configs are identical.'))
            : null,
        ),
      );
    };
    onlyDiff.addEventListener('change', renderConfig);
    renderConfig();
    const nDiff = res.config.filter((r) => r.differs).length;
    root.append(
      h('h2', {}, 'Configs'),
      h(
        'section',
        { class: 'card' },
        h(
          'p',
          {},
          h('label', {}, onlyDiff, ' only the keys that differ'),
          h('span', { class: 'muted' }, ` (${nDiff} of ${res.config.length} differ, highlighted)`),
        ),
        h('div', { class: 'table-wrap' }, table),
      ),
    );
  }

  load();
  return () => {
    disposed = true;
    abort.abort();
    for (const c of charts) c.destroy();
  };
}
