/**
 * `diagnose`: rules that turn a monitor's records into findings in plain words, each with the layers concerned, the
 * numbers that show it and fixes in config terms (`--set init.weight=kaiming-normal`).
 *
 * Every threshold is in `THRESHOLDS` and justified in docs/diagnosis.md. Rules read medians over the records they are
 * given (a probe's steps, or the last steps of a run), so one noisy batch does not make a finding.
 */
import type { ActivationKind, LayerInfo, LayerStats, StepRecord } from './monitor.js';

/** What a finding is about. `healthy` is the one finding of a run with no problem. */
export type FindingKind =
  | 'exploding'
  | 'non-finite'
  | 'dead-units'
  | 'saturation'
  | 'vanishing'
  | 'loss-spike'
  | 'update-ratio-too-high'
  | 'update-ratio-too-low'
  | 'healthy';

/** Most severe first: the verdict is the first kind found in this order. */
export const SEVERITY: readonly FindingKind[] = [
  'exploding',
  'non-finite',
  'dead-units',
  'saturation',
  'vanishing',
  'loss-spike',
  'update-ratio-too-high',
  'update-ratio-too-low',
  'healthy',
];

/** The kinds that mean gradients do not flow well (a fix "restores healthy gradient flow" when none remains). */
export const FLOW_KINDS: ReadonlySet<FindingKind> = new Set([
  'exploding',
  'non-finite',
  'dead-units',
  'saturation',
  'vanishing',
]);

/** A change to the config that may fix a finding: each entry of `set` is one `--set key.path=value`. */
export interface Fix {
  /** Short name: "Kaiming (He) initialisation". */
  label: string;
  /** `key.path=value` assignments, as `--set` takes them. */
  set: string[];
  /** Why it helps, with the reference. */
  why: string;
}

export interface Finding {
  kind: FindingKind;
  /** The layers concerned, in forward order (empty for findings about the whole model). */
  layers: string[];
  /** The numbers that show it, in a sentence. */
  evidence: string;
  /** The same numbers, by name (ratios, norms, fractions, steps). */
  metrics: Record<string, number>;
  /** What to do, as a command-line fragment: `--set init.weight=kaiming-normal` (empty when healthy). */
  suggestion: string;
  /** The suggested fixes, most likely first. */
  fixes: Fix[];
}

export interface Diagnosis {
  /** The most severe finding's kind, or `healthy`. */
  verdict: FindingKind;
  /** Most severe first; a single `healthy` finding when nothing is wrong. */
  findings: Finding[];
}

/**
 * The thresholds of the rules (see docs/diagnosis.md for why each has its value).
 */
export const THRESHOLDS = {
  /** A layer's gradient norm below this fraction of the largest layer's is vanishing (Glorot & Bengio 2010). */
  vanishRatio: 1e-3,
  /** Every layer's gradient norm below this (with a loss that is not ~0): nothing reaches any layer. */
  vanishAbsolute: 1e-7,
  /** The first layer's gradient norm above this multiple of the last layer's grows backwards through depth. */
  explodeRatio: 1e3,
  /** A global gradient norm above this is exploding (100x a usual clipping threshold of 1, Pascanu et al. 2013). */
  explodeNorm: 100,
  /** ... or above it on at least this many steps of the records judged. */
  explodeMinSteps: 3,
  /** The global norm growing by this factor from the first to the last training record is exploding. */
  explodeGrowth: 100,
  /** A loss this many times its first value (or non-finite) has diverged. */
  divergeFactor: 10,
  /** A layer with at least this fraction of dead ReLU units. */
  deadFrac: 0.5,
  /** A layer with at least this fraction of sigmoid/tanh outputs within 1% of their bounds. */
  satFrac: 0.5,
  /** Update-to-weight ratio ‖Δw‖/‖w‖ above this is too high (Karpathy's ~1e-3, two orders of magnitude up). */
  updateRatioHigh: 1e-1,
  /** ... below this is too low (two orders of magnitude down). */
  updateRatioLow: 1e-5,
  /** Training records needed before update ratios are judged (one step says little; Adam's first are the largest). */
  updateRatioMinSteps: 5,
  /** Layers with fewer parameter elements than this are left out of the update-ratio rule (ReZero gates start at 0). */
  updateRatioMinSize: 100,
  /** A loss above this multiple of the median of the previous steps is a spike ... */
  spikeFactor: 3,
  /** ... if it also exceeds that median by this many median absolute deviations of those steps (batch noise) ... */
  spikeNoise: 5,
  /** ... if it also exceeds that median by this fraction of the first loss (so noise at tiny losses is not one). */
  spikeMinRise: 0.1,
  /** Steps of loss history a spike is measured against. */
  spikeWindow: 10,
  /** Previous steps needed before a spike can be called. */
  spikeMinHistory: 5,
} as const;

/**
 * The parts of an experiment's config (src/train/config.ts) that fixes are written against; a full `Config` fits.
 * NOTE: declared here rather than imported, because monitor/ sits below train/ and must not import from it.
 */
export interface ConfigFacts {
  model: {
    type: string;
    activation: string;
    residual: boolean;
    norm: string;
    zeroInitResidual: boolean;
    rezero: boolean;
    hidden?: readonly number[] | undefined;
    depth?: number | undefined;
    width?: number | undefined;
  };
  init: { weight: string; bias: string | number; recurrentGain?: number | undefined };
  optim: { lr: number };
  schedule: { warmupSteps: number };
  clip: readonly { type: string }[];
}

export interface DiagnoseOptions {
  /** The experiment's config: fixes are written against it (and skip what it already does). */
  config?: ConfigFacts;
  /** The monitor's `layerInfo()`: activation kinds and sizes per layer. */
  layers?: readonly LayerInfo[];
  /**
   * The loss the run started from (default: the first finite loss of the records): the scale a spike must rise by
   * (`spikeMinRise`) and a divergence is measured against. `LiveDiagnosis` keeps the run's first.
   */
  initialLoss?: number;
  /**
   * The run's first record, when `history` is a later window of it: which parameters and layers started at exactly
   * zero (zero-initialised branches and gates) is read from it. `LiveDiagnosis` keeps it.
   */
  initial?: StepRecord;
  /** The loss of every step (the monitor's `losses`), for spike detection between logged steps. */
  losses?: readonly number[];
}

/**
 * Turns monitor records into findings.
 *
 * @param history the records to judge (a probe's, or a window of a run's); oldest first
 * @param opts the config (for fixes in its terms), layer facts and every step's loss
 * @returns the verdict and the findings, most severe first
 * @example
 * const { verdict, findings } = diagnose(monitor.history, { config, layers: monitor.layerInfo(), losses: monitor.losses });
 */
export function diagnose(history: readonly StepRecord[], opts: DiagnoseOptions = {}): Diagnosis {
  if (!Array.isArray(history))
    throw new TypeError('diagnose(): history must be an array of step records (Monitor.history)');
  const ctx = new Context(history, opts);
  const found: Finding[] = [];
  const add = (f: Finding | null) => {
    if (f) found.push(f);
  };
  if (history.length === 0) {
    return { verdict: 'healthy', findings: [healthy('no steps were monitored, so there is nothing to judge yet', {})] };
  }
  add(exploding(ctx));
  add(nonFinite(ctx));
  const dead = deadUnits(ctx);
  add(dead);
  add(saturation(ctx));
  const van = vanishing(ctx, dead);
  add(van);
  add(lossSpike(ctx));
  const explained = new Set([...(van?.layers ?? []), ...(dead?.layers ?? []), ...shadowed(ctx)]);
  const [high, low] = updateRatio(ctx, explained);
  add(high);
  add(low);
  found.sort((a, b) => SEVERITY.indexOf(a.kind) - SEVERITY.indexOf(b.kind));
  if (found.length === 0) {
    const m = ctx.healthyMetrics();
    return {
      verdict: 'healthy',
      findings: [
        healthy(
          `gradients flow through all ${ctx.names.length} layers: layer gradient norms within ${fmt(m.spread)}x of each other, global norm ${fmt(m.globalNorm)}, update/weight ratios ${fmt(m.minUpdateRatio)} to ${fmt(m.maxUpdateRatio)}`,
          m,
        ),
      ],
    };
  }
  return { verdict: found[0]!.kind, findings: found };
}

function healthy(evidence: string, metrics: Record<string, number>): Finding {
  return { kind: 'healthy', layers: [], evidence, metrics, suggestion: '', fixes: [] };
}

/** Per-layer medians over the records, and what the rules share. */
class Context {
  readonly names: string[];
  readonly byName = new Map<string, LayerStats[]>();
  readonly byNameTrain = new Map<string, LayerStats[]>();
  readonly info = new Map<string, LayerInfo>();
  readonly config: ConfigFacts | undefined;
  /** The records with a finite loss and gradient norm (the first record if none is). */
  readonly clean: readonly StepRecord[];
  /** The clean records of steps that made an update. */
  readonly training: readonly StepRecord[];
  readonly losses: number[];
  readonly initialLoss: number | undefined;
  /** The run's first record (`opts.initial`), else the first of these: where parameters started. */
  readonly first: StepRecord;

  constructor(
    readonly history: readonly StepRecord[],
    opts: DiagnoseOptions,
  ) {
    this.config = opts.config;
    this.initialLoss =
      opts.initialLoss !== undefined && Number.isFinite(opts.initialLoss) ? opts.initialLoss : undefined;
    this.first = opts.initial ?? history[0]!;
    for (const i of opts.layers ?? []) this.info.set(i.name, i);
    // the forward order is the latest record's
    const last = history[history.length - 1];
    this.names = last ? last.layers.map((l) => l.name) : [];
    // NOTE: a step with a NaN/Inf loss or gradient norm says nothing about gradient flow (its activations and
    // dead-unit counts are NaN too): the flow rules read the other records; the non-finite rule reads them all.
    const ok = history.filter((r) => Number.isFinite(r.loss) && Number.isFinite(r.globalNormBefore));
    this.clean = ok.length ? ok : history.slice(0, 1);
    for (const r of this.clean) {
      for (const l of r.layers) {
        let a = this.byName.get(l.name);
        if (!a) {
          a = [];
          this.byName.set(l.name, a);
          if (!this.names.includes(l.name)) this.names.push(l.name);
        }
        a.push(l);
      }
    }
    this.training = this.clean.filter((r) => r.updated && !r.skipped);
    for (const r of this.training) {
      for (const l of r.layers) {
        const a = this.byNameTrain.get(l.name);
        if (a) a.push(l);
        else this.byNameTrain.set(l.name, [l]);
      }
    }
    if (opts.losses?.length) {
      const first = history[0]!.step;
      const lastStep = last!.step;
      this.losses = [];
      for (let s = first; s <= lastStep && s < opts.losses.length; s++) {
        const v = opts.losses[s];
        if (v !== undefined) this.losses.push(v);
      }
    } else this.losses = history.map((r) => r.loss);
  }

  /** Median over the records of one layer statistic (finite values only); NaN if none. */
  readonly #medians = new Map<string, Map<string, number>>();
  /** `updateRatios(this)`, once computed. */
  ratios: [string, number][] | undefined;

  /**
   * Median over the clean records (or over the training ones) of one layer statistic, finite values only; NaN if
   * none. Memoised: rules ask for the same medians.
   */
  median(name: string, stat: StatKey, training = false): number {
    const key = training ? `t${stat}` : stat;
    let memo = this.#medians.get(key);
    if (!memo) {
      memo = new Map();
      this.#medians.set(key, memo);
    }
    const hit = memo.get(name);
    if (hit !== undefined) return hit;
    const ls = (training ? this.byNameTrain : this.byName).get(name) ?? [];
    const vals = new Float64Array(ls.length);
    let k = 0;
    for (const l of ls) {
      const v = l[stat];
      if (v !== undefined && Number.isFinite(v)) vals[k++] = v;
    }
    const m = medianOf(vals.subarray(0, k));
    memo.set(name, m);
    return m;
  }

  activation(name: string): ActivationKind {
    return this.info.get(name)?.activation ?? 'none';
  }

  size(name: string): number | undefined {
    return this.info.get(name)?.size;
  }

  /**
   * Whether the gradients are already exploding before training changed anything: the records without an update (a
   * probe's first batches) have a median global norm above the threshold, or, without such records, the first one has.
   */
  explodesAtInit(): boolean {
    const init = this.clean.filter((r) => !r.updated).map((r) => r.globalNormBefore);
    const first = this.history[0]!.globalNormBefore;
    return init.length ? median(init) > THRESHOLDS.explodeNorm : !(first <= THRESHOLDS.explodeNorm);
  }

  healthyMetrics(): Record<string, number> {
    const norms = this.names.map((n) => this.median(n, 'gradNorm')).filter((v) => v > 0);
    const ratios = updateRatios(this).map(([, r]) => r);
    return {
      spread: norms.length ? Math.max(...norms) / Math.min(...norms) : 1,
      globalNorm: median(this.history.map((r) => r.globalNormBefore).filter(Number.isFinite)),
      minUpdateRatio: ratios.length ? Math.min(...ratios) : Number.NaN,
      maxUpdateRatio: ratios.length ? Math.max(...ratios) : Number.NaN,
    };
  }
}

/** The numeric statistics of a layer, by name. */
type StatKey = 'gradNorm' | 'gradMaxAbs' | 'weightNorm' | 'updateRatio' | 'actMean' | 'actStd' | 'deadFrac' | 'satFrac';

/** Median of a typed array, sorted in place. */
function medianOf(v: Float64Array): number {
  if (v.length === 0) return Number.NaN;
  v.sort();
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

function median(v: number[]): number {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** 3 significant digits; exponent form for very small or large numbers. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(1).replace('e+', 'e');
  return String(Number(x.toPrecision(3)));
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

function listLayers(names: readonly string[], max = 6): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max - 1).join(', ')}, ... (${names.length} layers)`;
}

// ---------------------------------------------------------------------------------------------------------------
// rules

function exploding(ctx: Context): Finding | null {
  const T = THRESHOLDS;
  const norms = ctx.history.map((r) => r.globalNormBefore).filter((v) => Number.isFinite(v));
  const med = median(norms);
  const reasons: string[] = [];
  const metrics: Record<string, number> = { globalNorm: med };
  const atInit = ctx.clean.filter((r) => !r.updated).map((r) => r.globalNormBefore);
  const over = norms.filter((v) => v > T.explodeNorm);
  if (med > T.explodeNorm) reasons.push(`the global gradient norm is ${fmt(med)} (median over ${norms.length} steps)`);
  else if (atInit.length && median(atInit) > T.explodeNorm) {
    metrics.globalNormAtInit = median(atInit);
    reasons.push(
      `at initialisation the global gradient norm is ${fmt(median(atInit))} (median over the ${atInit.length} batches before training)`,
    );
  } else if (over.length >= T.explodeMinSteps) {
    metrics.stepsOver = over.length;
    reasons.push(
      `the global gradient norm exceeded ${fmt(T.explodeNorm)} on ${over.length} of ${norms.length} steps (up to ${fmt(Math.max(...over))})`,
    );
  }
  // growth over training
  const tr = ctx.training.filter((r) => Number.isFinite(r.globalNormBefore) && r.globalNormBefore > 0);
  if (tr.length >= 3) {
    const first = tr[0]!.globalNormBefore;
    const last = tr[tr.length - 1]!.globalNormBefore;
    const growth = last / first;
    metrics.growth = growth;
    metrics.growthPerStep = growth ** (1 / Math.max(1, tr[tr.length - 1]!.step - tr[0]!.step));
    if (growth > T.explodeGrowth && last > 1) {
      reasons.push(
        `it grew ${fmt(growth)}x over ${tr.length} steps (x${fmt(metrics.growthPerStep)} per step), from ${fmt(first)} to ${fmt(last)}`,
      );
    }
  }
  // growth backwards through depth
  const withGrad = ctx.names.filter((n) => ctx.median(n, 'gradNorm') > 0);
  if (withGrad.length >= 3) {
    const gFirst = ctx.median(withGrad[0]!, 'gradNorm');
    const gLast = ctx.median(withGrad[withGrad.length - 1]!, 'gradNorm');
    const ratio = gFirst / gLast;
    metrics.firstLastRatio = ratio;
    if (ratio > T.explodeRatio) {
      reasons.push(
        `the first layer's gradient norm is ${fmt(ratio)}x the last layer's (${withGrad[0]} ${fmt(gFirst)}, ${withGrad[withGrad.length - 1]} ${fmt(gLast)})`,
      );
    }
  }
  // a non-finite global norm with large finite values before it is the same story
  const nonFiniteNorm = ctx.history.some((r) => !Number.isFinite(r.globalNormBefore));
  const losses = ctx.losses;
  const l0 = losses.find((v) => Number.isFinite(v));
  const lEnd = losses[losses.length - 1];
  if (l0 !== undefined && lEnd !== undefined && reasons.length) {
    if (!Number.isFinite(lEnd) || lEnd > T.divergeFactor * Math.max(l0, 1e-12)) {
      metrics.lossFirst = l0;
      metrics.lossLast = lEnd;
      reasons.push(`the loss went from ${fmt(l0)} to ${fmt(lEnd)}`);
    }
  }
  if (!reasons.length) return null;
  if (nonFiniteNorm) reasons.push('and it overflowed to NaN/Inf');
  const forward = ctx.names
    .map((n) => [n, ctx.median(n, 'actStd')] as const)
    .filter(([, s]) => Number.isFinite(s) && s > 0);
  if (forward.length >= 2) {
    const s0 = forward[0]![1];
    const s1 = Math.max(...forward.map(([, s]) => s));
    if (s1 > 1e3 * Math.max(s0, 1e-12) || s1 > 1e3) {
      metrics.maxActStd = s1;
      reasons.push(`activations grow on the way forward to a standard deviation of ${fmt(s1)}`);
    }
  }
  // the layers concerned: those whose own gradient norm went above the threshold, else all with gradients
  let layers = ctx.names.filter((n) => (ctx.byName.get(n) ?? []).some((l) => l.gradNorm > T.explodeNorm));
  if (!layers.length) layers = withGrad.length ? withGrad : [...ctx.names];
  return finding(ctx, 'exploding', layers, `Gradients explode: ${reasons.join('; ')}.`, metrics);
}

function nonFinite(ctx: Context): Finding | null {
  const firstBad = ctx.history.find(
    (r) => !Number.isFinite(r.loss) || !Number.isFinite(r.globalNormBefore) || r.layers.some((l) => l.nonFinite > 0),
  );
  const badLoss = ctx.losses.findIndex((v) => !Number.isFinite(v));
  if (!firstBad && badLoss < 0) return null;
  const skipped = ctx.history.filter((r) => r.skipped).length;
  const metrics: Record<string, number> = { skippedSteps: skipped };
  if (!firstBad) {
    metrics.firstStep = ctx.history[0]!.step + badLoss;
    return finding(ctx, 'non-finite', [], `The loss became NaN or Inf at step ${metrics.firstStep}.`, metrics);
  }
  const layers = firstBad.layers.filter((l) => l.nonFinite > 0);
  const count = layers.reduce((s, l) => s + l.nonFinite, 0);
  metrics.firstStep = firstBad.step;
  metrics.count = count;
  const where = layers.length
    ? `${count} NaN/Inf values, first in ${layers[0]!.name}${layers.length > 1 ? ` (and ${layers.length - 1} more layers)` : ''}`
    : 'a NaN/Inf loss or gradient norm';
  const skip = skipped ? `; ${skipped} of ${ctx.history.length} monitored steps were skipped` : '';
  return finding(
    ctx,
    'non-finite',
    layers.map((l) => l.name),
    `Non-finite values at step ${firstBad.step}: ${where}${skip}.`,
    metrics,
  );
}

function deadUnits(ctx: Context): Finding | null {
  const layers: string[] = [];
  let worst = 0;
  for (const n of ctx.names) {
    const d = ctx.median(n, 'deadFrac');
    if (d >= THRESHOLDS.deadFrac) {
      layers.push(n);
      worst = Math.max(worst, d);
    }
  }
  if (!layers.length) return null;
  const zeroGrad = ctx.names.filter((n) => ctx.median(n, 'gradNorm') === 0).length;
  const tail = zeroGrad ? `; ${zeroGrad} layers get no gradient at all` : '';
  return finding(
    ctx,
    'dead-units',
    layers,
    `Dead ReLU units: in ${layers.length} layer${layers.length > 1 ? 's' : ''} (${listLayers(layers)}) at least ${pct(THRESHOLDS.deadFrac)} of units output 0 for every example of the batch (up to ${pct(worst)})${tail}.`,
    { deadFrac: worst, layers: layers.length, zeroGradLayers: zeroGrad },
  );
}

function saturation(ctx: Context): Finding | null {
  const layers: string[] = [];
  let worst = 0;
  for (const n of ctx.names) {
    const s = ctx.median(n, 'satFrac');
    if (s >= THRESHOLDS.satFrac) {
      layers.push(n);
      worst = Math.max(worst, s);
    }
  }
  if (!layers.length) return null;
  return finding(
    ctx,
    'saturation',
    layers,
    `Saturated activations: in ${listLayers(layers)} at least ${pct(THRESHOLDS.satFrac)} of sigmoid/tanh outputs are within 1% of their bounds (up to ${pct(worst)}), where their derivative is almost 0.`,
    { satFrac: worst, layers: layers.length },
  );
}

function vanishing(ctx: Context, dead: Finding | null): Finding | null {
  const T = THRESHOLDS;
  const norms = ctx.names.map((n) => [n, ctx.median(n, 'gradNorm')] as const).filter(([, g]) => Number.isFinite(g));
  if (!norms.length) return null;
  const [maxName, gMax] = norms.reduce((a, b) => (b[1] > a[1] ? b : a));
  const losses = ctx.losses.filter((v) => Number.isFinite(v));
  const lossMed = median(losses);
  if (gMax < T.vanishAbsolute && !(lossMed < 1e-3)) {
    if (dead) return null;
    return finding(
      ctx,
      'vanishing',
      norms.map(([n]) => n),
      `Gradients vanish everywhere: the largest layer gradient norm is ${fmt(gMax)} (${maxName}) while the loss is ${fmt(lossMed)}.`,
      { maxGradNorm: gMax, loss: lossMed },
    );
  }
  if (norms.length < 2 || gMax === 0) return null;
  const shadow = shadowed(ctx);
  const low = norms.filter(([n, g]) => g < T.vanishRatio * gMax && !shadow.has(n));
  if (!low.length) return null;
  // dead units already explain layers that get no gradient at all
  if (dead && low.every(([, g]) => g === 0)) return null;
  const [firstName, gFirst] = norms[0]!;
  const [lastName, gLast] = norms[norms.length - 1]!;
  const minRatio = Math.min(...low.map(([, g]) => g)) / gMax;
  return finding(
    ctx,
    'vanishing',
    low.map(([n]) => n),
    `Gradients vanish: ${low.length} of ${norms.length} layers (${listLayers(low.map(([n]) => n))}) get less than ${fmt(T.vanishRatio)} of the largest layer gradient norm (${fmt(gMax)}, ${maxName}); the first layer's norm is ${fmt(gFirst / gLast)}x the last layer's (${firstName} ${fmt(gFirst)}, ${lastName} ${fmt(gLast)}).`,
    { firstLastRatio: gFirst / gLast, minRatio, maxGradNorm: gMax, layers: low.length },
  );
}

/**
 * Layers whose gradient is small by construction at first: those that feed, inside the same parent module, a layer
 * whose weights start at exactly zero (a zero-initialised residual branch, SkipInit/Fixup; a zero-initialised output
 * layer), and those inside a module that owns such a weight (a ReZero gate α = 0). Their gradient is proportional to
 * those weights, so it grows as they do; it has not vanished through depth.
 */
function shadowed(ctx: Context): Set<string> {
  const first = ctx.first;
  const zero = new Set<string>();
  if (first.params) {
    for (const p of first.params) {
      const leaf = p.name.slice(p.name.lastIndexOf('.') + 1);
      if (p.weightNorm === 0 && !leaf.startsWith('bias')) zero.add(p.layer);
    }
  } else {
    for (const l of first.layers) if (l.weightNorm === 0) zero.add(l.name);
  }
  const out = new Set<string>();
  for (const z of zero) {
    const cut = z.lastIndexOf('.');
    const parent = cut < 0 ? '' : `${z.slice(0, cut)}.`;
    const at = ctx.names.indexOf(z);
    for (const [i, n] of ctx.names.entries()) {
      if ((i < at && n.startsWith(parent)) || n.startsWith(`${z}.`)) out.add(n);
    }
  }
  return out;
}

function lossSpike(ctx: Context): Finding | null {
  const T = THRESHOLDS;
  const L = ctx.losses;
  const l0 = ctx.initialLoss ?? L.find((v) => Number.isFinite(v));
  if (l0 === undefined) return null;
  const firstStep = ctx.history[0]!.step;
  const spikes: { at: number; loss: number; med: number }[] = [];
  for (let i = T.spikeMinHistory; i < L.length; i++) {
    const v = L[i]!;
    if (!Number.isFinite(v)) continue;
    const prev = L.slice(Math.max(0, i - T.spikeWindow), i).filter((x) => Number.isFinite(x));
    if (prev.length < T.spikeMinHistory) continue;
    const med = median(prev);
    const mad = median(prev.map((x) => Math.abs(x - med)));
    if (v > T.spikeFactor * med && v - med > Math.max(T.spikeMinRise * Math.abs(l0), T.spikeNoise * mad)) {
      spikes.push({ at: i, loss: v, med });
    }
  }
  const lEnd = L[L.length - 1]!;
  const diverged = Number.isFinite(lEnd) && lEnd > T.divergeFactor * Math.max(l0, 1e-12) && L.length > 1;
  if (!spikes.length && !diverged) return null;
  const metrics: Record<string, number> = { spikes: spikes.length, lossFirst: l0, lossLast: lEnd };
  const parts: string[] = [];
  if (spikes.length) {
    const big = spikes.reduce((a, b) => (b.loss / b.med > a.loss / a.med ? b : a));
    metrics.worstFactor = big.loss / big.med;
    metrics.worstStep = firstStep + big.at;
    parts.push(
      `${spikes.length} spike${spikes.length > 1 ? 's' : ''}; the largest at step ${metrics.worstStep}: ${fmt(big.loss)}, ${fmt(metrics.worstFactor)}x the median of the ${T.spikeWindow} steps before`,
    );
  }
  if (diverged) parts.push(`the loss rose from ${fmt(l0)} to ${fmt(lEnd)}`);
  return finding(ctx, 'loss-spike', [], `The loss jumps: ${parts.join('; ')}.`, metrics);
}

/**
 * The median update-to-weight ratio over the training records, per parameter when the records have them (a
 * parameter that starts at zero, such as a zero-initialised residual branch, a zero bias or a ReZero gate, has no
 * scale yet for its updates to be measured against, so it is left out), else per layer; parameters and layers smaller
 * than `updateRatioMinSize` are left out. Returns [layer, ratio] pairs (one per parameter).
 */
function updateRatios(ctx: Context): [string, number][] {
  ctx.ratios ??= computeUpdateRatios(ctx);
  return ctx.ratios;
}

function computeUpdateRatios(ctx: Context): [string, number][] {
  const T = THRESHOLDS;
  const out: [string, number][] = [];
  if (ctx.training.length < T.updateRatioMinSteps) return out;
  const first = ctx.first;
  if (first.params && ctx.training.every((r) => r.params)) {
    const maps = ctx.training.map((r) => new Map(r.params!.map((q) => [q.name, q.updateRatio])));
    for (const p of first.params) {
      if (p.size < T.updateRatioMinSize || !(p.weightNorm > 0)) continue;
      const r = median(maps.map((m) => m.get(p.name) ?? Number.NaN).filter((v) => Number.isFinite(v)));
      if (Number.isFinite(r)) out.push([p.layer, r]);
    }
  } else {
    for (const n of ctx.names) {
      const size = ctx.size(n);
      if (size !== undefined && size < T.updateRatioMinSize) continue;
      if (first.layers.find((l) => l.name === n)?.weightNorm === 0) continue;
      const r = ctx.median(n, 'updateRatio', true);
      if (Number.isFinite(r)) out.push([n, r]);
    }
  }
  return out;
}

function updateRatio(ctx: Context, explained: ReadonlySet<string>): [Finding | null, Finding | null] {
  const T = THRESHOLDS;
  const high: [string, number][] = [];
  const low: [string, number][] = [];
  for (const [layer, r] of updateRatios(ctx)) {
    const hit = r > T.updateRatioHigh ? high : r < T.updateRatioLow && !explained.has(layer) ? low : null;
    if (!hit) continue;
    const prev = hit.find(([n]) => n === layer);
    if (!prev) hit.push([layer, r]);
    else if (hit === high ? r > prev[1] : r < prev[1]) prev[1] = r;
  }
  const order = (a: [string, number][]) => a.sort((x, y) => ctx.names.indexOf(x[0]) - ctx.names.indexOf(y[0]));
  order(high);
  order(low);
  const lr = ctx.config?.optim.lr;
  const hi = high.length
    ? finding(
        ctx,
        'update-ratio-too-high',
        high.map(([n]) => n),
        `Updates are too large: ‖Δw‖/‖w‖ is ${fmt(Math.max(...high.map(([, r]) => r)))} at most (${listLayers(high.map(([n]) => n))}), against about 1e-3 for steady training${lr ? ` (lr ${lr})` : ''}.`,
        { maxRatio: Math.max(...high.map(([, r]) => r)), layers: high.length },
      )
    : null;
  const lo = low.length
    ? finding(
        ctx,
        'update-ratio-too-low',
        low.map(([n]) => n),
        `Updates are too small to change the weights: ‖Δw‖/‖w‖ is ${fmt(Math.min(...low.map(([, r]) => r)))} at least (${listLayers(low.map(([n]) => n))}), against about 1e-3 for steady training${lr ? ` (lr ${lr})` : ''}.`,
        { minRatio: Math.min(...low.map(([, r]) => r)), layers: low.length },
      )
    : null;
  return [hi, lo];
}

// ---------------------------------------------------------------------------------------------------------------
// fixes, in the config's terms

function finding(
  ctx: Context,
  kind: FindingKind,
  layers: string[],
  evidence: string,
  metrics: Record<string, number>,
): Finding {
  const fixes = fixesFor(kind, ctx);
  return { kind, layers, evidence, metrics, suggestion: suggestionText(fixes), fixes };
}

/** `--set a=b --set c=d` for the first fix, then ` (or ...)` for the others. */
export function suggestionText(fixes: readonly Fix[]): string {
  if (!fixes.length) return '';
  const one = (f: Fix) => `${f.label}: ${f.set.map((s) => `--set ${shellQuote(s)}`).join(' ')}`;
  return fixes.map(one).join('; or ');
}

/** Quotes a `--set` value for a POSIX shell when it holds characters the shell would interpret. */
export function shellQuote(s: string): string {
  return /^[\w.\-=:/,+@%]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

const RELU_LIKE = new Set(['relu', 'leaky-relu', 'elu', 'selu', 'gelu']);
const RECURRENT = new Set(['rnn', 'lstm', 'gru']);

interface ModelFacts {
  type: string;
  activation: string;
  init: string;
  residual: boolean;
  zeroInit: boolean;
  norm: string;
  depth: number;
  canResidual: boolean;
  hasGlobalClip: boolean;
  clipCount: number;
  hasSkipNonFinite: boolean;
  lr: number | undefined;
  bias: string | number;
  recurrentGain: number | undefined;
  warmup: number;
}

function facts(ctx: Context): ModelFacts {
  const c = ctx.config;
  const acts = [...ctx.info.values()].map((i) => i.activation).filter((a) => a !== 'none' && a !== 'other');
  const guessed = acts.includes('sigmoid') ? 'sigmoid' : acts.includes('tanh') ? 'tanh' : acts.length ? 'relu' : 'relu';
  if (!c) {
    // without a config, what the layers are tells the kind of model
    const types = [...ctx.info.values()].map((i) => i.type.toLowerCase());
    const rec = types.find((t) => RECURRENT.has(t));
    return {
      type: rec ?? (types.includes('conv2d') ? 'cnn' : 'mlp'),
      activation: rec && !acts.length ? 'tanh' : guessed,
      init: 'unknown',
      residual: false,
      zeroInit: false,
      norm: 'none',
      depth: ctx.names.length,
      canResidual: ctx.names.length >= 8,
      hasGlobalClip: ctx.history.some((r) => r.clipped),
      clipCount: 0,
      hasSkipNonFinite: false,
      lr: undefined,
      bias: 'zeros',
      recurrentGain: undefined,
      warmup: 0,
    };
  }
  const m = c.model;
  const hidden = m.hidden ?? (m.depth !== undefined ? new Array<number>(m.depth).fill(m.width ?? 0) : []);
  const depth = m.depth ?? hidden.length;
  const equal = hidden.length > 0 && hidden.every((h) => h === hidden[0]);
  return {
    type: m.type,
    activation: m.activation,
    init: c.init.weight,
    residual: m.residual,
    zeroInit: m.zeroInitResidual || m.rezero,
    norm: m.norm,
    depth,
    canResidual: m.type === 'mlp' && !m.residual && depth >= 8 && depth % 2 === 0 && equal && m.hidden === undefined,
    hasGlobalClip: c.clip.some((k) => k.type === 'global-norm'),
    clipCount: c.clip.length,
    hasSkipNonFinite: c.clip.some((k) => k.type === 'skip-non-finite'),
    lr: c.optim.lr,
    bias: c.init.bias,
    recurrentGain: c.init.recurrentGain,
    warmup: c.schedule.warmupSteps,
  };
}

function clipFix(f: ModelFacts): Fix | null {
  if (f.hasGlobalClip) return null;
  const set =
    f.clipCount === 0 ? ['clip[0].type=global-norm', 'clip[0].max=1'] : ['clip=[{type: global-norm, max: 1}]'];
  return {
    label: 'clip the global gradient norm at 1',
    set,
    why: 'rescales the whole gradient when its norm exceeds 1, so one bad batch cannot throw the weights away (Pascanu, Mikolov & Bengio 2013)',
  };
}

function lrFix(f: ModelFacts, factor: number): Fix | null {
  const lr = f.lr ?? 1e-3;
  const next = Number((lr * factor).toPrecision(3));
  return {
    label: `${factor < 1 ? 'lower' : 'raise'} the learning rate to ${next}`,
    set: [`optim.lr=${next}`],
    why:
      factor < 1
        ? 'smaller steps keep the update-to-weight ratio near 1e-3 (Karpathy, "A Recipe for Training Neural Networks", 2019)'
        : 'larger steps bring the update-to-weight ratio up towards 1e-3',
  };
}

function initFix(f: ModelFacts): Fix | null {
  if (RELU_LIKE.has(f.activation)) {
    if (f.init === 'kaiming-normal' || f.init === 'kaiming-uniform') return null;
    return {
      label: 'Kaiming (He) initialisation',
      set: ['init.weight=kaiming-normal'],
      why: 'draws weights with variance 2/fan_in, which keeps the variance of activations and gradients constant through ReLU layers (He et al. 2015)',
    };
  }
  if (f.init === 'xavier-normal' || f.init === 'xavier-uniform') return null;
  return {
    label: 'Xavier (Glorot) initialisation',
    set: ['init.weight=xavier-normal'],
    why: 'draws weights with variance 2/(fan_in + fan_out), which keeps activations and gradients at the same scale through tanh layers (Glorot & Bengio 2010)',
  };
}

function reluFix(f: ModelFacts): Fix | null {
  if (RELU_LIKE.has(f.activation) || RECURRENT.has(f.type)) return null;
  return {
    label: 'ReLU with Kaiming initialisation',
    set: ['model.activation=relu', 'init.weight=kaiming-normal'],
    why: `${f.activation}'s derivative is at most ${f.activation === 'sigmoid' ? '0.25' : '1'} and near 0 when saturated, so gradients shrink at every layer; ReLU passes them unchanged where active, and Kaiming init keeps their scale (Glorot & Bengio 2010; He et al. 2015)`,
  };
}

function residualFix(f: ModelFacts): Fix | null {
  if (!f.canResidual) return null;
  // NOTE: with ReLU-like branches each block adds the branch's variance to the signal, which doubles it per block
  // under Kaiming init, so those branches start at zero; a sigmoid/tanh branch with small weights adds little
  if (RELU_LIKE.has(f.activation)) {
    return {
      label: 'residual connections (branches start at zero)',
      set: ['model.residual=true', 'model.zeroInitResidual=true'],
      why: 'h + F(h) gives the gradient an identity path around every block, and zero-initialised branches start each block as the identity (He et al. 2016; SkipInit, De & Smith 2020)',
    };
  }
  return {
    label: 'residual connections',
    set: ['model.residual=true'],
    why: 'h + F(h) gives the gradient an identity path around every block, so it reaches the first layers undiminished (He et al. 2016)',
  };
}

function fixesFor(kind: FindingKind, ctx: Context): Fix[] {
  const f = facts(ctx);
  const out: (Fix | null)[] = [];
  const rnn = RECURRENT.has(f.type);
  switch (kind) {
    case 'vanishing':
      if (rnn) {
        if (f.type === 'rnn') {
          out.push({
            label: 'an LSTM instead of a vanilla RNN',
            set: ['model.type=lstm'],
            why: "the LSTM's additive cell state carries gradients across many time steps (Hochreiter & Schmidhuber 1997)",
          });
        }
        if (f.init !== 'orthogonal') {
          out.push({
            label: 'orthogonal initialisation',
            set: ['init.weight=orthogonal'],
            why: 'orthogonal recurrent weights have all singular values 1, so gradients neither shrink nor grow through time at initialisation (Saxe et al. 2014)',
          });
        }
        break;
      }
      out.push(
        reluFix(f),
        f.activation === 'tanh' ? initFix(f) : null,
        RELU_LIKE.has(f.activation) ? initFix(f) : null,
      );
      out.push(residualFix(f));
      if (f.residual && !f.zeroInit) out.push(zeroInitFix());
      break;
    case 'exploding':
      if (rnn) {
        out.push(clipFix(f));
        if (f.recurrentGain !== undefined && f.recurrentGain > 1) {
          out.push({
            label: 'recurrent weights with gain 1',
            set: ['init.recurrentGain=1'],
            why: 'a recurrent matrix with spectral radius above 1 multiplies gradients by it at every time step (Pascanu, Mikolov & Bengio 2013)',
          });
        }
        if (f.type === 'rnn')
          out.push({
            label: 'an LSTM',
            set: ['model.type=lstm'],
            why: 'gated, additive memory (Hochreiter & Schmidhuber 1997)',
          });
        break;
      }
      if (ctx.explodesAtInit()) {
        // the initialisation (or the architecture) makes gradients large before any step
        if (f.residual && !f.zeroInit && f.norm === 'none') out.push(zeroInitFix());
        out.push(initFix(f), clipFix(f), lrFix(f, 0.1));
      } else {
        // gradients were fine at initialisation and grew with training: the step size
        out.push(lrFix(f, 0.1), clipFix(f), warmupFix(f));
      }
      break;
    case 'non-finite':
      out.push(clipFix(f));
      if (!f.hasSkipNonFinite) {
        out.push({
          label: 'skip steps with NaN/Inf gradients',
          set: [f.clipCount === 0 ? 'clip[0].type=skip-non-finite' : `clip[${f.clipCount}].type=skip-non-finite`],
          why: 'leaves the weights and optimizer state unchanged on a step whose gradients are not finite (optax apply_if_finite)',
        });
      }
      out.push(lrFix(f, 0.1));
      break;
    case 'dead-units':
      if (typeof f.bias === 'number' && f.bias < 0) {
        out.push({
          label: 'zero biases',
          set: ['init.bias=zeros'],
          why: 'negative biases push pre-activations below 0, where ReLU outputs 0 and passes no gradient',
        });
      }
      out.push({
        label: 'Leaky ReLU',
        set: ['model.activation=leaky-relu'],
        why: 'a small slope below 0 keeps a gradient flowing through inactive units (Maas, Hannun & Ng 2013)',
      });
      out.push(initFix(f));
      break;
    case 'saturation':
      out.push(reluFix(f));
      if (f.activation === 'tanh') out.push(initFix(f));
      if (!rnn && f.norm === 'none') {
        out.push({
          label: 'batch normalisation',
          set: ['model.norm=batch'],
          why: 'keeps pre-activations near zero mean and unit variance, away from the flat ends of sigmoid/tanh (Ioffe & Szegedy 2015)',
        });
      }
      break;
    case 'loss-spike':
      out.push(clipFix(f));
      out.push(warmupFix(f), lrFix(f, 0.3));
      break;
    case 'update-ratio-too-high':
      out.push(lrFix(f, 0.1));
      break;
    case 'update-ratio-too-low':
      out.push(lrFix(f, 10));
      break;
    case 'healthy':
      break;
  }
  const seen = new Set<string>();
  return out.filter((x): x is Fix => {
    if (!x) return false;
    const k = x.set.join(' ');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function warmupFix(f: ModelFacts): Fix | null {
  if (f.warmup > 0) return null;
  return {
    label: 'learning-rate warm-up',
    set: ['schedule.warmupSteps=100'],
    why: 'small steps while Adam’s second-moment estimates settle (Goyal et al. 2017; Liu et al. 2020)',
  };
}

function zeroInitFix(): Fix {
  return {
    label: 'zero-initialise each residual branch',
    set: ['model.zeroInitResidual=true'],
    why: 'each residual block adds its branch’s variance to the signal, so without it activations grow with depth; starting branches at zero keeps every block the identity at first (Hanin & Rolnick 2018; Fixup, Zhang et al. 2019; SkipInit, De & Smith 2020)',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// live: findings as they appear during training, each (kind, layer) once

/**
 * Diagnosis during training: give it each record as it is logged and it returns the findings that are new, each kind
 * and layer once (a finding about layers already reported for its kind is not repeated).
 *
 * @example
 * const live = new LiveDiagnosis({ config });
 * const mon = new Monitor(model, { onRecord: (r) => { for (const f of live.push(r)) warn(f); } });
 */
export class LiveDiagnosis {
  readonly #window: StepRecord[] = [];
  readonly #reported = new Set<string>();
  readonly #size: number;
  readonly #opts: DiagnoseOptions;
  #initialLoss: number | undefined;
  #initial: StepRecord | undefined;
  #seen = 0;
  readonly #every: number;

  /**
   * @param opts config and layers, as for `diagnose`; window: how many recent records the rules read (default 20);
   *   every: after the first window, run the rules on every `every`-th record only (default 5), and at once on a
   *   record with NaN/Inf or a gradient norm above `THRESHOLDS.explodeNorm`
   */
  constructor(opts: DiagnoseOptions & { window?: number; every?: number } = {}) {
    const { window = 20, every = 5, ...rest } = opts;
    if (!Number.isInteger(window) || window < 1) {
      throw new RangeError(`LiveDiagnosis: window must be a positive integer, got ${window}`);
    }
    if (!Number.isInteger(every) || every < 1) {
      throw new RangeError(`LiveDiagnosis: every must be a positive integer, got ${every}`);
    }
    this.#size = window;
    this.#every = every;
    this.#opts = rest;
  }

  /** Sets the layer facts (the monitor knows them after the first step). */
  setLayers(layers: readonly LayerInfo[]): void {
    this.#opts.layers = layers;
  }

  /**
   * Adds a record and returns the findings not reported before (without `healthy`).
   * @param record the latest record
   * @param losses every step's loss so far (optional, for spikes between logged steps)
   */
  push(record: StepRecord, losses?: readonly number[]): Finding[] {
    this.#window.push(record);
    if (this.#window.length > this.#size) this.#window.shift();
    if (this.#initialLoss === undefined && Number.isFinite(record.loss)) this.#initialLoss = record.loss;
    this.#initial ??= record;
    this.#seen++;
    // NOTE: the rules read medians over the window, which one record moves little: after the first window they run
    // every `every`-th record, and at once on a record with NaN/Inf or a large gradient norm
    const urgent =
      !Number.isFinite(record.loss) ||
      !(record.globalNormBefore <= THRESHOLDS.explodeNorm) ||
      record.layers.some((l) => l.nonFinite > 0);
    if (this.#seen > this.#size && !urgent && this.#seen % this.#every !== 0) return [];
    const opts: DiagnoseOptions = { ...this.#opts };
    opts.initial ??= this.#initial;
    if (this.#initialLoss !== undefined && opts.initialLoss === undefined) opts.initialLoss = this.#initialLoss;
    if (losses) opts.losses = losses;
    else delete opts.losses;
    const { findings } = diagnose(this.#window, opts);
    const fresh: Finding[] = [];
    for (const f of findings) {
      if (f.kind === 'healthy') continue;
      const keys = f.layers.length ? f.layers.map((l) => `${f.kind}\u0000${l}`) : [`${f.kind}\u0000`];
      const novel = keys.filter((k) => !this.#reported.has(k));
      if (!novel.length) continue;
      for (const k of novel) this.#reported.add(k);
      fresh.push(f);
    }
    return fresh;
  }
}
