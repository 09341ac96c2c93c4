/**
 * The dashboard's front end: a hash router over three pages (`#/` runs, `#/run/ID`, `#/compare/ID,ID`), plain
 * TypeScript and DOM, uPlot for curves and a canvas for heatmaps.
 */
import './style.css';
import { h } from './format.js';
import { comparePage } from './pages/compare.js';
import { runPage } from './pages/run.js';
import { runsPage } from './pages/runs.js';

const app = document.getElementById('app')!;
let cleanup: (() => void) | null = null;

function route(): void {
  cleanup?.();
  cleanup = null;
  const page = h('div', { class: 'page' });
  app.replaceChildren(page);
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  const [, kind = '', arg = ''] = hash.split('/');
  if (kind === 'run' && arg) {
    page.dataset.page = 'run';
    document.title = `${arg} · gradguard`;
    cleanup = runPage(page, arg);
  } else if (kind === 'compare' && arg) {
    const ids = arg.split(',').filter((s) => s !== '');
    page.dataset.page = 'compare';
    document.title = 'compare · gradguard';
    cleanup = comparePage(page, ids);
  } else {
    page.dataset.page = 'runs';
    document.title = 'runs · gradguard';
    cleanup = runsPage(page);
  }
}

window.addEventListener('hashchange', route);
route();
