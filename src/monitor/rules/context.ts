/**
 * What every rule reads: the records, per-layer medians over them, the layer facts and the config, and the findings
 * of the more severe rules that ran before it.
 */
import type { Baseline } from '../../data/baseline.js';
import type { ActivationKind, LayerInfo, LayerStats, StepRecord } from '../monitor.js';
import { median, medianOf } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { ConfigFacts, DiagnoseOptions, Finding } from './types.js';

/** The numeric statistics of a layer, by name. */
export type StatKey =
  | 'gradNorm'
  | 'gradMaxAbs'
  | 'weightNorm'
  | 'updateRatio'
  | 'actMean'
  | 'actStd'
  | 'deadFrac'
  | 'satFrac';

/** The recurrent layer classes (nn.RNN, nn.LSTM, nn.GRU), lower-cased, as `LayerInfo.type` names them. */
export const RECURRENT_LAYERS: ReadonlySet<string> = new Set(['rnn', 'lstm', 'gru']);

/** Per-layer medians over the records, and what the rules share. */
export class Context {
  readonly names: string[];
  readonly byName = new Map<string, LayerStats[]>();
  readonly byNameTrain = new Map<string, LayerStats[]>();
  readonly info = new Map<string, LayerInfo>();
  readonly config: ConfigFacts | undefined;
  /** The records with a finite loss and gradient norm (the first record if none is). */
  readonly clean: readonly StepRecord[];
  /** The clean records of steps that made an update. */
  readonly training: readonly StepRecord[];
  /** The loss of every step the records span (every step's when `opts.losses` has them, else the records'). */
  readonly losses: number[];
  readonly initialLoss: number | undefined;
  /** The run's first record (`opts.initial`), else the first of these: where parameters started. */
  readonly first: StepRecord;
  /** The dataset's trivial baseline, when given. */
  readonly baseline: Baseline | undefined;
  /** The findings of the rules that ran so far (more severe first). */
  readonly found: Finding[] = [];
  /** Those of them about gradient flow (their rule's `flow`). */
  readonly flowFound: Finding[] = [];
  /** The layers a per-layer verdict already names (one verdict per layer: the most severe). */
  readonly claimed = new Set<string>();
  /** The records carry the loss only (monitoring was off): no flow statistics to read. */
  readonly lossOnly: boolean;

  constructor(
    readonly history: readonly StepRecord[],
    opts: DiagnoseOptions,
  ) {
    this.config = opts.config;
    this.baseline = opts.baseline;
    this.lossOnly = opts.lossOnly === true;
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
    if (opts.losses?.length && last) {
      const firstStep = history[0]!.step;
      this.losses = [];
      for (let s = firstStep; s <= last.step && s < opts.losses.length; s++) {
        const v = opts.losses[s];
        if (v !== undefined) this.losses.push(v);
      }
    } else this.losses = history.map((r) => r.loss);
  }

  readonly #medians = new Map<string, Map<string, number>>();
  #ratios: [string, number][] | undefined;
  #shadowed: Set<string> | undefined;

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
   * Whether a layer is recurrent (nn.RNN, nn.LSTM, nn.GRU): by its class when the layer facts are known, else by the
   * config's model type.
   */
  isRecurrent(name: string): boolean {
    const t = this.info.get(name)?.type;
    if (t !== undefined) return RECURRENT_LAYERS.has(t.toLowerCase());
    return this.config !== undefined && RECURRENT_LAYERS.has(this.config.model.type);
  }

  /** The layer's class, lower-cased (`linear`, `rnn`, `lstm`...), or the config's model type when unknown. */
  layerType(name: string): string | undefined {
    return this.info.get(name)?.type.toLowerCase() ?? (this.isRecurrent(name) ? this.config?.model.type : undefined);
  }

  /** The layers not yet named by a per-layer verdict, in the given order. */
  unclaimed(names: readonly string[]): string[] {
    return names.filter((n) => !this.claimed.has(n));
  }

  /** The finding of a kind found so far, if any. */
  finding(kind: Finding['kind']): Finding | undefined {
    return this.found.find((f) => f.kind === kind);
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

  /** The numbers of a healthy verdict: spread of layer gradient norms, global norm, range of update ratios. */
  healthyMetrics(): { spread: number; globalNorm: number; minUpdateRatio: number; maxUpdateRatio: number } {
    const norms = this.names.map((n) => this.median(n, 'gradNorm')).filter((v) => v > 0);
    const ratios = this.updateRatios().map(([, r]) => r);
    return {
      spread: norms.length ? Math.max(...norms) / Math.min(...norms) : 1,
      globalNorm: median(this.history.map((r) => r.globalNormBefore).filter(Number.isFinite)),
      minUpdateRatio: ratios.length ? Math.min(...ratios) : Number.NaN,
      maxUpdateRatio: ratios.length ? Math.max(...ratios) : Number.NaN,
    };
  }

  /**
   * The median update-to-weight ratio over the training records, per parameter when the records have them (a
   * parameter that starts at zero, such as a zero-initialised residual branch, a zero bias or a ReZero gate, has no
   * scale yet for its updates to be measured against, so it is left out), else per layer; parameters and layers
   * smaller than `updateRatioMinSize` are left out. Returns [layer, ratio] pairs (one per parameter).
   */
  updateRatios(): [string, number][] {
    this.#ratios ??= this.#computeUpdateRatios();
    return this.#ratios;
  }

  #computeUpdateRatios(): [string, number][] {
    const T = THRESHOLDS;
    const out: [string, number][] = [];
    if (this.training.length < T.updateRatioMinSteps) return out;
    const first = this.first;
    if (first.params && this.training.every((r) => r.params)) {
      const maps = this.training.map((r) => new Map(r.params!.map((q) => [q.name, q.updateRatio])));
      for (const p of first.params) {
        if (p.size < T.updateRatioMinSize || !(p.weightNorm > 0)) continue;
        const r = median(maps.map((m) => m.get(p.name) ?? Number.NaN).filter((v) => Number.isFinite(v)));
        if (Number.isFinite(r)) out.push([p.layer, r]);
      }
    } else {
      for (const n of this.names) {
        const size = this.size(n);
        if (size !== undefined && size < T.updateRatioMinSize) continue;
        if (first.layers.find((l) => l.name === n)?.weightNorm === 0) continue;
        const r = this.median(n, 'updateRatio', true);
        if (Number.isFinite(r)) out.push([n, r]);
      }
    }
    return out;
  }

  /**
   * Layers whose gradient is small by construction at first: those that feed, inside the same parent module, a layer
   * whose weights start at exactly zero (a zero-initialised residual branch, SkipInit/Fixup; a zero-initialised output
   * layer), and those inside a module that owns such a weight (a ReZero gate α = 0). Their gradient is proportional to
   * those weights, so it grows as they do; it has not vanished through depth.
   */
  shadowed(): ReadonlySet<string> {
    this.#shadowed ??= this.#computeShadowed();
    return this.#shadowed;
  }

  #computeShadowed(): Set<string> {
    const first = this.first;
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
      const at = this.names.indexOf(z);
      for (const [i, n] of this.names.entries()) {
        if ((i < at && n.startsWith(parent)) || n.startsWith(`${z}.`)) out.add(n);
      }
    }
    return out;
  }
}
