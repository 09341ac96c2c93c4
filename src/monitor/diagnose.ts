/**
 * `diagnose`: rules that turn a monitor's records into findings in plain words, each with the layers concerned, the
 * numbers that show it and fixes in config terms (`--set init.weight=kaiming-normal`).
 *
 * Each rule is one file of rules/ and the registry (rules/index.ts) lists them, most severe first. Every threshold
 * is in `THRESHOLDS` and justified in docs/diagnosis.md. Rules read medians over the records they are given (a
 * probe's steps, or the last steps of a run), so one noisy batch does not make a finding.
 */
import type { LayerInfo, StepRecord } from './monitor.js';
import { Context } from './rules/context.js';
import { modelFacts } from './rules/facts.js';
import { dedupe } from './rules/fixes.js';
import { fmt, suggestionText } from './rules/format.js';
import { RULES } from './rules/index.js';
import { recentLoss } from './rules/not-learning.js';
import { THRESHOLDS } from './rules/thresholds.js';
import { timeTrends } from './rules/time-flow.js';
import type { BaselineComparison, DiagnoseOptions, Diagnosis, Finding } from './rules/types.js';

export { fmt, shellQuote, suggestionText } from './rules/format.js';
export { FLOW_KINDS, MARKS, RULES, SEVERE_KINDS, SEVERITY } from './rules/index.js';
export { THRESHOLDS } from './rules/thresholds.js';
export type {
  BaselineComparison,
  ConfigFacts,
  DiagnoseOptions,
  Diagnosis,
  Finding,
  FindingKind,
  Fix,
  Rule,
  TimeFinding,
  TimeSummary,
} from './rules/types.js';

/**
 * Turns monitor records into findings: runs every rule of the registry, most severe first. Each layer carries one
 * verdict: a rule does not name a layer a more severe per-layer verdict already names.
 *
 * @param history the records to judge (a probe's, or a window of a run's); oldest first
 * @param opts the config (for fixes in its terms), layer facts, every step's loss and the dataset's baseline
 * @returns the verdict and the findings, most severe first (and the run's loss beside the baseline, when given)
 * @example
 * const { verdict, findings } = diagnose(monitor.history, { config, layers: monitor.layerInfo(), losses: monitor.losses });
 */
export function diagnose(history: readonly StepRecord[], opts: DiagnoseOptions = {}): Diagnosis {
  if (!Array.isArray(history))
    throw new TypeError('diagnose(): history must be an array of step records (Monitor.history)');
  if (history.length === 0) {
    return { verdict: 'healthy', findings: [healthy('no steps were monitored, so there is nothing to judge yet', {})] };
  }
  const ctx = new Context(history, opts);
  const facts = modelFacts(ctx);
  for (const rule of RULES) {
    if (ctx.lossOnly && !rule.lossOnly) continue;
    const d = rule.detect(ctx);
    if (!d) continue;
    if (rule.perLayer) {
      // NOTE: one verdict per layer: the rules name only unclaimed layers; this keeps it true for any new rule
      const layers = ctx.unclaimed(d.layers);
      if (d.layers.length && !layers.length) continue;
      d.layers = layers;
      for (const n of layers) ctx.claimed.add(n);
    }
    const fixes = dedupe(rule.fixes(ctx, facts, d));
    const f: Finding = { kind: rule.kind, ...d, suggestion: suggestionText(fixes), fixes };
    ctx.found.push(f);
    if (rule.flow) ctx.flowFound.push(f);
  }
  const baseline = compareBaseline(ctx);
  const time = timeTrends(ctx).map((t) => ({ layer: t.layer, sub: t.sub, length: t.length, ...pickTime(t.recent) }));
  const base = { ...(baseline ? { baseline } : {}), ...(time.length ? { time } : {}) };
  if (ctx.found.length === 0 && ctx.lossOnly) {
    const evidence =
      'monitoring was off (monitor.enabled: false): only the loss was judged (non-finite values, spikes, the trivial baseline) and it shows no problem; gradient flow was not measured';
    return { verdict: 'healthy', findings: [healthy(evidence, {})], ...base };
  }
  if (ctx.found.length === 0) {
    const m = ctx.healthyMetrics();
    return {
      verdict: 'healthy',
      findings: [
        healthy(
          `gradients flow through all ${ctx.names.length} layers: layer gradient norms within ${fmt(m.spread)}x of each other, global norm ${fmt(m.globalNorm)}, update/weight ratios ${fmt(m.minUpdateRatio)} to ${fmt(m.maxUpdateRatio)}`,
          m,
        ),
      ],
      ...base,
    };
  }
  return { verdict: ctx.found[0]!.kind, findings: ctx.found, ...base };
}

function pickTime(s: { horizon: number; firstLast: number }): { horizon: number; firstLast: number } {
  return { horizon: s.horizon, firstLast: s.firstLast };
}

function healthy(evidence: string, metrics: Record<string, number>): Finding {
  return { kind: 'healthy', layers: [], evidence, metrics, suggestion: '', fixes: [] };
}

/** The run's recent loss beside the dataset's baseline, when one was given. */
function compareBaseline(ctx: Context): BaselineComparison | undefined {
  const b = ctx.baseline;
  if (!b) return undefined;
  const runLoss = recentLoss(ctx);
  return { ...b, runLoss, ratio: runLoss / b.loss };
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
