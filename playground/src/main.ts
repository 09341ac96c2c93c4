/**
 * The playground page: controls that edit the state (the URL hash), a run trained a few steps per animation frame
 * with every view redrawn, the diagnosis with its fix, and a second run with the fix applied beside the first.
 * Test contract: `#verdict[data-verdict]` is the main run's verdict, `#step[data-step]` its step count (with
 * `data-loss`, its last loss at full precision, and `data-done`, true once it has run all its steps);
 * `#before-verdict` / `#before-step` the run before a fix.
 */
import { getBackend, loadBackend } from '../../src/browser.js';
import { Session } from './session.js';
import {
  applies,
  applyFix,
  fromHash,
  type Key,
  LESSONS,
  normalizeState,
  PLANAR,
  SEQUENCE,
  type State,
  toCommand,
  toHash,
  toSets,
} from './state.js';
import { drawBars, drawBoundary, drawHeatmap, drawHistograms, drawLoss } from './views.js';

type Control = {
  key: Key;
  label: string;
  options?: readonly string[];
  kind?: 'number' | 'check' | 'range';
  min?: number;
  max?: number;
};

const ACTS = ['relu', 'leaky-relu', 'elu', 'selu', 'gelu', 'sigmoid', 'tanh'];
const INITS = [
  'default',
  'normal',
  'xavier-normal',
  'xavier-uniform',
  'kaiming-normal',
  'kaiming-uniform',
  'lecun-normal',
  'orthogonal',
  'zeros',
];
const CONTROLS: readonly Control[] = [
  { key: 'data.name', label: 'data', options: ['spirals', 'circles', 'xor', 'gaussians', 'adding', 'mnist'] },
  { key: 'data.length', label: 'sequence length', kind: 'number', min: 2 },
  { key: 'model.type', label: 'model', options: ['mlp', 'rnn', 'lstm', 'gru'] },
  { key: 'model.depth', label: 'depth', kind: 'range', min: 1, max: 50 },
  { key: 'model.width', label: 'width', kind: 'number', min: 1 },
  { key: 'model.hiddenSize', label: 'hidden size', kind: 'number', min: 1 },
  { key: 'model.activation', label: 'activation', options: ACTS },
  { key: 'init.weight', label: 'initializer', options: INITS },
  { key: 'init.std', label: 'init std', kind: 'number' },
  { key: 'init.gain', label: 'init gain', kind: 'number' },
  { key: 'model.residual', label: 'residual', kind: 'check' },
  { key: 'model.zeroInitResidual', label: 'zero-init branches', kind: 'check' },
  { key: 'model.norm', label: 'normalization', options: ['none', 'batch', 'layer'] },
  { key: 'clip[0].type', label: 'clipping', options: ['none', 'value', 'norm', 'global-norm', 'agc', 'autoclip'] },
  { key: 'clip[0].max', label: 'clip threshold', kind: 'number' },
  { key: 'optim.name', label: 'optimizer', options: ['sgd', 'adam', 'adamw', 'rmsprop'] },
  { key: 'optim.lr', label: 'learning rate', kind: 'number' },
  { key: 'train.batchSize', label: 'batch size', kind: 'number', min: 1 },
  { key: 'train.maxSteps', label: 'steps', kind: 'number', min: 1 },
  { key: 'seed', label: 'seed', kind: 'number' },
];

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const GRID = 48;
const FRAME_BUDGET_MS = 12;

let state: State = fromHash(location.hash).state;
let main: Session | null = null;
let before: Session | null = null;
let paused = false;
let frame = 0;
let gridCache: Uint8Array | null = null;
let timeCache: Float64Array | null = null;
let speed = { t: performance.now(), steps: 0, rate: Number.NaN };

function buildForm(): void {
  const form = $('form');
  for (const c of CONTROLS) {
    const label = document.createElement('label');
    label.dataset.key = c.key;
    label.append(c.label);
    let input: HTMLInputElement | HTMLSelectElement;
    if (c.options) {
      input = document.createElement('select');
      for (const o of c.options) input.append(new Option(o, o));
    } else {
      input = document.createElement('input');
      input.type = c.kind === 'check' ? 'checkbox' : c.kind === 'range' ? 'range' : 'text';
      if (c.min !== undefined) input.min = String(c.min);
      if (c.max !== undefined) input.max = String(c.max);
    }
    input.name = c.key;
    input.addEventListener('change', () => {
      readForm();
      start();
    });
    label.append(input);
    if (c.kind === 'range') {
      const out = document.createElement('output');
      out.id = `out-${c.key}`;
      input.addEventListener('input', () => (out.textContent = (input as HTMLInputElement).value));
      label.append(out);
    }
    form.append(label);
  }
  const list = $('lessons');
  for (const l of LESSONS) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = toHash(l.state);
    a.textContent = l.title;
    a.title = l.text;
    a.dataset.lesson = l.id;
    li.append(a);
    list.append(li);
  }
}

/** Shows `state` in the form; hides the controls that do not apply to it. */
function writeForm(): void {
  const n = normalizeState(state);
  const form = $('form');
  for (const c of CONTROLS) {
    const input = form.querySelector(`[name="${c.key}"]`) as HTMLInputElement | HTMLSelectElement;
    const value = n[c.key] ?? (c.key === 'clip[0].type' ? 'none' : '');
    if (input instanceof HTMLInputElement && input.type === 'checkbox') input.checked = value === 'true';
    else input.value = value;
    (input.parentElement as HTMLElement).hidden = !applies(c.key, n);
    const out = document.getElementById(`out-${c.key}`);
    if (out) out.textContent = value;
  }
}

/** Reads the visible controls into `state`, then gives controls that now apply their starting values. */
function readForm(): void {
  const form = $('form');
  const next: State = { ...state };
  for (const c of CONTROLS) {
    const input = form.querySelector(`[name="${c.key}"]`) as HTMLInputElement | HTMLSelectElement;
    if ((input.parentElement as HTMLElement).hidden) continue;
    const v =
      input instanceof HTMLInputElement && input.type === 'checkbox' ? String(input.checked) : input.value.trim();
    if (v === '') delete next[c.key];
    else next[c.key] = v;
  }
  const starts: Partial<Record<Key, string>> = {
    'data.length': '30',
    'model.depth': '20',
    'model.width': '16',
    'model.residual': 'false',
    'model.norm': 'none',
    'model.hiddenSize': '32',
    'init.std': '0.05',
    'clip[0].max': '1',
  };
  for (const [k, v] of Object.entries(starts) as [Key, string][]) {
    if (applies(k, next)) next[k] ??= v;
  }
  state = next;
}

function showError(msg: string | null): void {
  const e = $('error');
  e.hidden = msg === null;
  e.textContent = msg ?? '';
}

/** (Re)starts the main run from `state`; drops any comparison. */
function start(keepBefore = false): void {
  state = normalizeState(state);
  const hash = toHash(state);
  if (location.hash !== hash) history.replaceState(null, '', hash);
  writeForm();
  $('command').textContent = toCommand(state);
  if (!keepBefore) {
    before?.close();
    before = null;
    $('before').hidden = true;
  }
  main?.close();
  main = null;
  gridCache = null;
  const stepEl = $('step');
  stepEl.dataset.step = '0';
  stepEl.dataset.done = 'false';
  delete stepEl.dataset.loss;
  try {
    main = new Session(toSets(state));
    showError(null);
  } catch (e) {
    showError(e instanceof Error ? e.message : String(e));
  }
  $('total').textContent = String(main?.totalSteps ?? 0);
  $('boundary').parentElement!.hidden = !PLANAR.has(state['data.name'] ?? '');
  $('time-grads').parentElement!.hidden = !SEQUENCE.has(state['data.name'] ?? '');
  timeCache = null;
  setVerdict('verdict', '');
  speed = { t: performance.now(), steps: 0, rate: Number.NaN };
  paused = false;
  $('pause').textContent = 'Pause';
}

function setVerdict(id: string, v: string): void {
  const el = $(id);
  el.dataset.verdict = v;
  el.textContent = v || '-';
}

function showDiagnosis(s: Session): void {
  const d = s.diagnosis;
  if (!d) return;
  setVerdict('verdict', d.verdict);
  const f = d.findings[0]!;
  $('evidence').textContent = f.evidence;
  const fix = f.fixes[0];
  $('fix').textContent = fix ? `Fix: ${fix.label} (${fix.set.join(', ')}). ${fix.why}` : '';
  const btn = $<HTMLButtonElement>('apply-fix');
  btn.hidden = !fix || before !== null;
}

function applyTheFix(): void {
  const fix = main?.diagnosis?.findings[0]?.fixes[0];
  if (!main || !fix) return;
  const { state: fixed, ignored } = applyFix(state, fix.set);
  if (ignored.length) showError(`not a playground control, left out: ${ignored.join(', ')}`);
  before = main;
  main = null;
  $('before').hidden = false;
  $('before-command').textContent = $('command').textContent;
  state = fixed;
  start(true);
}

function render(): void {
  if (!main) return;
  const s = main;
  const stepEl = $('step');
  stepEl.dataset.step = String(s.step);
  stepEl.dataset.done = String(s.done);
  stepEl.textContent = String(s.step);
  const last = s.losses[s.losses.length - 1];
  if (last !== undefined) {
    stepEl.dataset.loss = String(last);
    $('loss').textContent = last.toFixed(4);
  }
  if (Number.isFinite(speed.rate)) $('speed').textContent = `${speed.rate.toFixed(0)} steps/s`;
  showDiagnosis(s);
  const curves = [{ losses: s.losses, color: '#2e86ab', label: 'run' }];
  if (before) curves.unshift({ losses: before.losses, color: '#aaa', label: 'before' });
  drawLoss($<HTMLCanvasElement>('loss-chart'), curves, s.baseline);
  const lastGrad = s.gradHistory[s.gradHistory.length - 1];
  if (lastGrad) drawBars($<HTMLCanvasElement>('bars'), s.layerNames, lastGrad);
  drawHeatmap($<HTMLCanvasElement>('heatmap'), s.gradHistory);
  if (PLANAR.has(s.dataset.name)) {
    if (frame % 6 === 0 || !gridCache) gridCache = s.grid(GRID, -2.5, 2.5);
    const tr = s.dataset.train;
    drawBoundary($<HTMLCanvasElement>('boundary'), gridCache, GRID, -2.5, 2.5, {
      x: tr.x,
      y: tr.y,
      count: Math.min(tr.n, 600),
    });
  }
  if (SEQUENCE.has(s.dataset.name)) {
    if (frame % 10 === 0 || !timeCache) timeCache = s.timeGrads();
    if (timeCache) {
      const names = Array.from(timeCache, (_, t) => `t${t}`);
      drawBars($<HTMLCanvasElement>('time-grads'), names, timeCache);
    }
  }
  drawHistograms($<HTMLCanvasElement>('hists'), s.histograms);
  if (before) {
    const b = before;
    $('before-step').dataset.step = String(b.step);
    $('before-step').textContent = String(b.step);
    const bl = b.losses[b.losses.length - 1];
    if (bl !== undefined) $('before-loss').textContent = bl.toFixed(4);
    if (b.diagnosis) setVerdict('before-verdict', b.diagnosis.verdict);
    const bg = b.gradHistory[b.gradHistory.length - 1];
    if (bg) drawBars($<HTMLCanvasElement>('before-bars'), b.layerNames, bg);
  }
}

function tick(): void {
  frame++;
  if (!paused && main) {
    const runs = [main, ...(before && !before.done ? [before] : [])];
    const budget = FRAME_BUDGET_MS / runs.length;
    if (frame % 10 === 0) main.wantHistograms = true;
    let n = 0;
    try {
      for (const r of runs) {
        const ran = r.run(budget);
        if (r === main) n += ran;
      }
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
      main.close();
    }
    speed.steps += n;
    const now = performance.now();
    if (now - speed.t >= 1000) {
      speed = { t: now, steps: 0, rate: (speed.steps * 1000) / (now - speed.t) };
    }
  }
  render();
  requestAnimationFrame(tick);
}

async function boot(): Promise<void> {
  buildForm();
  const b = await loadBackend();
  $('backend').textContent =
    `backend ${b.name}, ${b.threads} thread${b.threads === 1 ? '' : 's'}${(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ? ' (cross-origin isolated)' : ''}`;
  document.body.dataset.backend = getBackend().name;
  document.body.dataset.threads = String(b.threads);
  $('restart').addEventListener('click', () => {
    readForm();
    start();
  });
  $('pause').addEventListener('click', () => {
    paused = !paused;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
  });
  $('apply-fix').addEventListener('click', applyTheFix);
  addEventListener('hashchange', () => {
    if (location.hash === toHash(state)) return;
    const { state: s, unknown } = fromHash(location.hash);
    state = s;
    start();
    if (unknown.length) showError(`unknown keys in the link, ignored: ${unknown.join(', ')}`);
  });
  const { unknown } = fromHash(location.hash);
  start();
  if (unknown.length) showError(`unknown keys in the link, ignored: ${unknown.join(', ')}`);
  // for tests and the bench: when the page became interactive (backend loaded, the first run set up)
  document.body.dataset.readyMs = performance.now().toFixed(0);
  document.body.dataset.ready = 'true';
  requestAnimationFrame(tick);
}

void boot();
