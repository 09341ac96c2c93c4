/** The runs list: status, config summary, final metrics, verdict, backend, duration; filter, sort, pick to compare. */

import { METRICS } from '../../../track/metrics.js';
import type { RunListItem, RunsResponse } from '../../api-types.js';
import { getJson } from '../api.js';
import { fmtDuration, fmtNum, fmtPct, fmtTime, h, statusBadge } from '../format.js';

type SortKey = 'createdAt' | 'name' | 'status' | 'steps' | 'durationMs' | 'accuracy' | 'testLoss' | 'loss';

/** The final metrics' keys in a list item (`final`, made by dashboard/data.ts from the shared list). */
const ACC = METRICS.accuracy.keys[0];
const TEST_LOSS = METRICS.testLoss.keys[0];
const LOSS = METRICS.loss.keys[0];

interface Column {
  key: SortKey | null;
  title: string;
  numeric?: boolean;
  value?: (r: RunListItem) => number | string;
}

const finalOf = (r: RunListItem, k: string): number => {
  const v = r.final[k];
  return v === undefined ? Number.NaN : Number(v);
};

const COLUMNS: Column[] = [
  { key: null, title: '' },
  { key: 'name', title: 'Run', value: (r) => r.name ?? r.id },
  { key: 'status', title: 'Status', value: (r) => r.status },
  { key: null, title: 'Config' },
  { key: 'steps', title: 'Steps', numeric: true, value: (r) => r.steps },
  { key: 'accuracy', title: 'Test acc.', numeric: true, value: (r) => finalOf(r, ACC) },
  { key: 'testLoss', title: 'Test loss', numeric: true, value: (r) => finalOf(r, TEST_LOSS) },
  { key: 'loss', title: 'Final loss', numeric: true, value: (r) => finalOf(r, LOSS) },
  { key: null, title: 'Verdict' },
  { key: null, title: 'Backend' },
  { key: 'durationMs', title: 'Duration', numeric: true, value: (r) => r.durationMs },
  { key: 'createdAt', title: 'Started', numeric: true, value: (r) => r.createdAt },
];

/** Renders the runs list into `root`; returns the clean-up. */
export function runsPage(root: HTMLElement): () => void {
  let runs: RunListItem[] = [];
  let sortKey: SortKey = 'createdAt';
  let sortDesc = true;
  const selected = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let disposed = false;

  const filter = h('input', {
    type: 'search',
    placeholder: 'filter: id, name, config, verdict…',
    class: 'filter',
    'aria-label': 'filter runs',
  });
  const statusSel = h(
    'select',
    { 'aria-label': 'status' },
    h('option', { value: '' }, 'any status'),
    ...['running', 'finished', 'diverged', 'failed', 'interrupted'].map((s) => h('option', { value: s }, s)),
  );
  const compareBtn = h('button', { type: 'button', disabled: true }, 'Compare selected');
  const count = h('span', { class: 'muted' });
  const problem = h('p', { class: 'error', hidden: true });
  const table = h('table', { class: 'runs' });
  root.append(
    h('h1', {}, 'Runs'),
    h('div', { class: 'toolbar' }, filter, statusSel, compareBtn, count),
    problem,
    h('div', { class: 'table-wrap' }, table),
  );

  compareBtn.addEventListener('click', () => {
    if (selected.size > 0) location.hash = `#/compare/${[...selected].join(',')}`;
  });
  filter.addEventListener('input', render);
  statusSel.addEventListener('change', render);

  function visible(): RunListItem[] {
    const q = filter.value.trim().toLowerCase();
    const st = statusSel.value;
    const col = COLUMNS.find((c) => c.key === sortKey)!;
    const rows = runs.filter((r) => {
      if (st && r.status !== st) return false;
      if (!q) return true;
      const hay =
        `${r.id} ${r.name ?? ''} ${r.status} ${r.configSummary} ${r.verdict ?? ''} ${r.backend}`.toLowerCase();
      return q.split(/\s+/).every((w) => hay.includes(w));
    });
    const val = col.value!;
    rows.sort((a, b) => {
      const x = val(a);
      const y = val(b);
      let d: number;
      if (typeof x === 'number' && typeof y === 'number') {
        // Missing values (NaN) sort last either way.
        if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : 1) : -1;
        d = x - y;
      } else d = String(x).localeCompare(String(y));
      return sortDesc ? -d : d;
    });
    return rows;
  }

  function render(): void {
    const rows = visible();
    count.textContent = `${rows.length} of ${runs.length} run${runs.length === 1 ? '' : 's'}`;
    compareBtn.disabled = selected.size < 1;
    compareBtn.textContent = selected.size > 0 ? `Compare selected (${selected.size})` : 'Compare selected';
    const head = h(
      'tr',
      {},
      COLUMNS.map((c) => {
        const th = h('th', { class: c.numeric ? 'num' : '' }, c.title);
        if (c.key) {
          th.classList.add('sortable');
          if (c.key === sortKey) th.append(sortDesc ? ' ▾' : ' ▴');
          th.addEventListener('click', () => {
            if (sortKey === c.key) sortDesc = !sortDesc;
            else {
              sortKey = c.key!;
              sortDesc = c.numeric === true;
            }
            render();
          });
        }
        return th;
      }),
    );
    const body = rows.map((r) => {
      const box = h('input', { type: 'checkbox', 'aria-label': `select ${r.id}` });
      box.checked = selected.has(r.id);
      box.addEventListener('change', () => {
        if (box.checked) selected.add(r.id);
        else selected.delete(r.id);
        render();
      });
      return h(
        'tr',
        { 'data-run': r.id },
        h('td', {}, box),
        h(
          'td',
          {},
          h('a', { href: `#/run/${r.id}`, class: 'run-link' }, r.name ?? r.id),
          r.name ? h('div', { class: 'muted small mono' }, r.id) : null,
        ),
        h('td', {}, statusBadge(r.status)),
        h('td', { class: 'config small' }, r.configSummary),
        h('td', { class: 'num' }, String(r.steps)),
        h('td', { class: 'num', 'data-col': 'accuracy' }, fmtPct(r.final[ACC])),
        h('td', { class: 'num', 'data-col': 'testLoss' }, fmtNum(r.final[TEST_LOSS])),
        h('td', { class: 'num', 'data-col': 'loss' }, fmtNum(r.final[LOSS])),
        h('td', { class: `verdict ${r.verdict === 'healthy' ? 'ok' : r.verdict ? 'warn' : ''}` }, r.verdict ?? '–'),
        h('td', {}, r.backend),
        h('td', { class: 'num' }, fmtDuration(r.durationMs)),
        h('td', { class: 'num small' }, fmtTime(r.createdAt)),
      );
    });
    const empty =
      runs.length === 0
        ? h(
            'tr',
            {},
            h('td', { colspan: COLUMNS.length, class: 'muted' }, 'No runs yet: train one with `gradguard train`.'),
          )
        : null;
    table.replaceChildren(h('thead', {}, head), h('tbody', {}, body, empty));
  }

  async function load(): Promise<void> {
    try {
      const res = await getJson<RunsResponse>('/api/runs');
      if (disposed) return;
      runs = res.runs;
      const store = document.getElementById('store');
      if (store) store.textContent = res.store;
      for (const id of [...selected]) if (!runs.some((r) => r.id === id)) selected.delete(id);
      problem.hidden = true;
      render();
      root.dataset.loaded = '1';
    } catch (e) {
      if (disposed) return;
      // Keep what was shown; say why it is not fresh, and try again on the next round.
      problem.textContent = `Cannot list the runs: ${(e as Error).message}`;
      problem.hidden = false;
      root.dataset.loaded = root.dataset.loaded ?? 'error';
    }
    // Refresh while something is running (often), else now and then.
    if (!disposed) timer = setTimeout(load, runs.some((r) => r.status === 'running') ? 2000 : 10_000);
  }

  load();
  return () => {
    disposed = true;
    clearTimeout(timer);
  };
}
