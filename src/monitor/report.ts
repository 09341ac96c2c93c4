/**
 * The gradient report for a terminal: a per-layer table with a log-scale bar of each layer's gradient norm, then the
 * findings with their evidence and fixes, then (for `doctor --fix`) the trials of each fix. Plain text; ANSI colours
 * only when asked (the CLI asks when stdout is a TTY and NO_COLOR is unset).
 */
import { type Diagnosis, type FindingKind, fmt, MARKS, SEVERE_KINDS, shellQuote } from './diagnose.js';
import { formatMetric } from './format.js';
import type { LayerStats } from './monitor.js';

/** The outcome of running one suggested fix as a short trial beside the original (`doctor --fix`). */
export interface TrialResult {
  /** The fix's label, or `original` for the unchanged config. */
  label: string;
  /** Its `--set` assignments (empty for the original). */
  set: string[];
  /** The trial's verdict and the kinds it found. */
  verdict: FindingKind;
  kinds: FindingKind[];
  /** Mean loss over the trial's last training steps (NaN if it diverged). */
  loss: number;
  /** No finding about gradient flow (exploding, non-finite, dead units, saturation, vanishing) remains. */
  restoresFlow: boolean;
  /** Its loss is below the original's (a finite loss is below a NaN one). */
  lowersLoss: boolean;
  /** Both: the fix is shown to work. */
  works: boolean;
  /** Why the trial could not run (the fix made an invalid config, or building it failed). */
  error?: string;
  /** In words: what the fix cured, what remains, the loss against the original and the baseline (trial.ts). */
  outcome?: string;
}

export interface ReportOptions {
  /** Use ANSI colours (default false). */
  color?: boolean;
  /** Width of the gradient-norm bars in characters (default 24). */
  barWidth?: number;
  /** Show at most this many layers, the rest elided in the middle (default 60). */
  maxLayers?: number;
}

type Paint = (s: string) => string;
interface Palette {
  red: Paint;
  yellow: Paint;
  green: Paint;
  dim: Paint;
  bold: Paint;
  cyan: Paint;
}

function palette(on: boolean): Palette {
  const wrap =
    (open: number, close: number): Paint =>
    (s) =>
      on ? `\u001b[${open}m${s}\u001b[${close}m` : s;
  return {
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    green: wrap(32, 39),
    dim: wrap(2, 22),
    bold: wrap(1, 22),
    cyan: wrap(36, 39),
  };
}

/** One letter per finding kind, shown beside the layers it names (from the rule registry). */
const MARK = MARKS;

const SEVERE = SEVERE_KINDS;

/**
 * A log-scale bar for `value` on the scale [lo, hi], `width` characters at most (eighth-block resolution).
 * @returns the bar, padded to `width`
 */
export function logBar(value: number, lo: number, hi: number, width: number): string {
  if (!Number.isFinite(value)) return 'NaN'.padEnd(width);
  if (value <= 0) return '·'.padEnd(width);
  const span = Math.log10(hi) - Math.log10(lo);
  const frac = span > 0 ? (Math.log10(value) - Math.log10(lo)) / span : 1;
  const eighths = Math.max(1, Math.round(Math.min(1, Math.max(0, frac)) * width * 8));
  const full = Math.floor(eighths / 8);
  const part = eighths % 8;
  return ('█'.repeat(full) + (part ? '▏▎▍▌▋▊▉'[part - 1]! : '')).padEnd(width);
}

/** The bars' scale: from the smallest positive gradient norm (at least 3 decades below the largest) to the largest. */
function scale(layers: readonly LayerStats[]): [number, number] {
  const pos = layers.map((l) => l.gradNorm).filter((g) => Number.isFinite(g) && g > 0);
  if (!pos.length) return [1e-3, 1];
  const hi = Math.max(...pos);
  const lo = Math.min(Math.min(...pos), hi / 1e3);
  return [lo, hi];
}

function cell(x: number | undefined, w: number): string {
  if (x === undefined) return '-'.padStart(w);
  return (Number.isNaN(x) ? '-' : fmt(x)).padStart(w);
}

/**
 * The per-layer table: name, flags, gradient norm with its bar, max |g|, weight norm, update/weight ratio,
 * activation mean ± std, dead or saturated fraction, NaN/Inf count.
 * @param layers one row per layer, in forward order (a record's `layers`, or `summarizeLayers(history)`)
 * @param diagnosis marks the layers each finding names
 */
export function renderLayerTable(
  layers: readonly LayerStats[],
  diagnosis?: Diagnosis,
  opts: ReportOptions = {},
): string {
  const c = palette(opts.color ?? false);
  const W = opts.barWidth ?? 24;
  const marks = new Map<string, FindingKind[]>();
  for (const f of diagnosis?.findings ?? []) {
    for (const n of f.layers) {
      const a = marks.get(n);
      if (a) a.push(f.kind);
      else marks.set(n, [f.kind]);
    }
  }
  const [lo, hi] = scale(layers);
  const nameW = Math.min(24, Math.max(5, ...layers.map((l) => l.name.length)));
  const head = `${'layer'.padEnd(nameW)} ${'flag'.padEnd(4)} ${'grad norm'.padStart(9)} ${`log scale ${fmt(lo)} .. ${fmt(hi)}`.padEnd(W)} ${'max|g|'.padStart(8)} ${'|w|'.padStart(8)} ${'|dw|/|w|'.padStart(8)} ${'act mean±std'.padStart(16)} ${'dead/sat'.padStart(8)} ${'NaN'.padStart(4)}`;
  const lines = [c.bold(head)];
  const max = opts.maxLayers ?? 60;
  let shown = [...layers];
  let elided = 0;
  if (shown.length > max) {
    const keep = Math.max(2, max - 1);
    const headN = Math.ceil(keep / 2);
    elided = shown.length - keep;
    shown = [...shown.slice(0, headN), ...shown.slice(shown.length - (keep - headN))];
  }
  shown.forEach((l, i) => {
    if (elided && i === Math.ceil(Math.max(2, max - 1) / 2))
      lines.push(c.dim(`${'...'.padEnd(nameW)} (${elided} more layers)`));
    const kinds = marks.get(l.name) ?? [];
    const flag = [...new Set(kinds.map((k) => MARK[k] ?? ''))].join('').padEnd(4);
    const paint = kinds.some((k) => SEVERE.has(k)) ? c.red : kinds.length ? c.yellow : c.green;
    const name = l.name.length > nameW ? `…${l.name.slice(l.name.length - nameW + 1)}` : l.name.padEnd(nameW);
    const act = Number.isFinite(l.actMean) ? `${fmt(l.actMean)}±${fmt(l.actStd)}` : '-';
    const ds =
      l.deadFrac !== undefined
        ? `${Math.round(l.deadFrac * 100)}% d`
        : l.satFrac !== undefined
          ? `${Math.round(l.satFrac * 100)}% s`
          : '-';
    lines.push(
      `${name} ${kinds.length ? paint(flag) : flag} ${cell(l.gradNorm, 9)} ${paint(logBar(l.gradNorm, lo, hi, W))} ${cell(l.gradMaxAbs, 8)} ${cell(l.weightNorm, 8)} ${cell(l.updateRatio, 8)} ${act.padStart(16)} ${ds.padStart(8)} ${String(l.nonFinite).padStart(4)}`,
    );
  });
  const used = [...new Set([...marks.values()].flat())].filter((k) => MARK[k]);
  if (used.length)
    lines.push(c.dim(`flags: ${used.map((k) => `${MARK[k]} ${k}`).join(', ')}; d = dead ReLU units, s = saturated`));
  return lines.join('\n');
}

/** The verdict, then each finding: kind, layers, evidence, and the fixes as `--set` flags. */
export function renderFindings(diagnosis: Diagnosis, opts: ReportOptions = {}): string {
  const c = palette(opts.color ?? false);
  const v = diagnosis.verdict;
  const vp = v === 'healthy' ? c.green : SEVERE.has(v) ? c.red : c.yellow;
  const lines = [`${c.bold('Verdict:')} ${vp(c.bold(v))}`];
  const b = diagnosis.baseline;
  if (b) {
    const acc = b.accuracy !== undefined ? `, accuracy ${(b.accuracy * 100).toFixed(1)}%` : '';
    lines.push(`Loss ${fmt(b.runLoss)} against the trivial baseline ${fmt(b.loss)}${acc} (${b.predictor})`);
  }
  for (const t of (diagnosis.time ?? []).filter((x) => Number.isFinite(x.horizon))) {
    const sub = diagnosis.time!.some((o) => o.layer === t.layer && o.sub !== t.sub) ? ` (${t.sub})` : '';
    lines.push(
      `Gradient horizon: ${fmt(t.horizon)} of ${t.length} steps in ${t.layer}${sub} (‖∂L/∂h_0‖/‖∂L/∂h_${t.length - 1}‖ = ${fmt(t.firstLast)})`,
    );
  }
  for (const f of diagnosis.findings) {
    const p = f.kind === 'healthy' ? c.green : SEVERE.has(f.kind) ? c.red : c.yellow;
    const where = f.layers.length
      ? ` in ${f.layers.length <= 6 ? f.layers.join(', ') : `${f.layers.slice(0, 5).join(', ')} and ${f.layers.length - 5} more`}`
      : '';
    lines.push('', `${p(f.kind === 'healthy' ? '✓' : '✗')} ${c.bold(f.kind)}${where}`, `  ${f.evidence}`);
    f.fixes.forEach((x, i) => {
      const flags = x.set.map((s) => `--set ${shellQuote(s)}`).join(' ');
      lines.push(`  ${i === 0 ? 'fix:' : 'or: '} ${x.label}: ${c.cyan(flags)}`, c.dim(`       ${x.why}`));
    });
  }
  return lines.join('\n');
}

/** The loss column's width: formatMetric writes at most 10 characters (`-1234.5678`, `-4.15e-14`). */
const LOSS_W = 10;

/** The trials of `doctor --fix`: each fix's verdict and loss beside the original's, and whether it works. */
export function renderTrials(trials: readonly TrialResult[], steps: number, opts: ReportOptions = {}): string {
  const c = palette(opts.color ?? false);
  const labelW = Math.min(48, Math.max(8, ...trials.map((t) => t.label.length)));
  const lines = [
    c.bold(`Fix trials (${steps} training steps each, same seed, same data):`),
    c.bold(`  ${'trial'.padEnd(labelW)} ${'verdict'.padEnd(22)} ${'loss'.padStart(LOSS_W)}  result`),
  ];
  for (const t of trials) {
    const result = t.error
      ? c.red(`could not run: ${t.error}`)
      : t.set.length === 0
        ? c.dim('(as configured)')
        : t.works
          ? c.green(`✓ works: healthy gradient flow and ${t.lowersLoss ? 'a lower loss' : 'a loss as good'}`)
          : t.restoresFlow
            ? c.yellow('healthy gradient flow, but the loss is not lower')
            : t.lowersLoss
              ? c.yellow('lower loss, but gradient flow is still unhealthy')
              : c.red('✗ does not help');
    const loss = formatMetric(t.loss);
    lines.push(`  ${t.label.padEnd(labelW)} ${t.verdict.padEnd(22)} ${loss.padStart(LOSS_W)}  ${result}`);
    if (t.set.length)
      lines.push(c.dim(`  ${''.padEnd(labelW)} ${t.set.map((s) => `--set ${shellQuote(s)}`).join(' ')}`));
    if (t.outcome) lines.push(`  ${''.padEnd(labelW)} ${t.outcome}`);
  }
  const best = trials.filter((t) => t.works).sort((a, b) => a.loss - b.loss)[0];
  lines.push(
    trials.every((t) => t.set.length === 0)
      ? c.green('Nothing to try: the probe found no problem to fix.')
      : best
        ? `${c.green('Recommended:')} ${best.label}: ${c.cyan(best.set.map((s) => `--set ${shellQuote(s)}`).join(' '))}`
        : c.yellow('No fix both restored healthy gradient flow and lowered the loss in this many steps.'),
  );
  return lines.join('\n');
}

/**
 * The whole gradient report: the layer table, the findings and, when given, the trials.
 * @example process.stdout.write(`${renderReport(summarizeLayers(mon.history), diagnose(mon.history), { color: process.stdout.isTTY })}\n`);
 */
export function renderReport(
  layers: readonly LayerStats[],
  diagnosis: Diagnosis,
  opts: ReportOptions & { trials?: readonly TrialResult[]; trialSteps?: number; title?: string } = {},
): string {
  const c = palette(opts.color ?? false);
  const parts: string[] = [];
  if (opts.title) parts.push(c.bold(opts.title));
  // no layer was monitored (monitor.enabled: false): no table of nothing
  if (layers.length > 0) parts.push(renderLayerTable(layers, diagnosis, opts), '');
  else parts.push(c.dim('no layer statistics (monitoring was off)'), '');
  parts.push(renderFindings(diagnosis, opts));
  if (opts.trials?.length) parts.push('', renderTrials(opts.trials, opts.trialSteps ?? 0, opts));
  return parts.join('\n');
}
