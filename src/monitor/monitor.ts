/**
 * `Monitor`: per-parameter and per-layer statistics of gradient flow, collected while a model trains.
 *
 * The trainer calls a `StepObserver` at four fixed points of each step; the monitor reads the gradients, the updates
 * and the transform chain's state there, and sees every layer's output through forward hooks registered on every
 * module (`attach()`), so the model's code does not change. Statistics are computed with the backend's reduction
 * kernels (`sumSquaresRows` for an output's moments and a convolution's planes, `sumSquaresColumns` for a ReLU's
 * units: the moments and the dead units in one pass; `sumSquaresMaxAbs`, `maxAxis`), in C natively, or taken from
 * passes that read the outputs anyway (a BatchNorm's batch statistics, a max pooling's `maxPool2dSums`): monitoring
 * every step costs a few per cent.
 *
 * A "layer" is a module that directly owns parameters (`layers.0` owns `layers.0.weight` and `layers.0.bias`); layers
 * are listed in forward order, the order in which their forward passes finish. An activation module (ReLU, Sigmoid,
 * Tanh, ...) has no parameters; its output is credited to the layer whose output it consumed (or else to the layer
 * that ran last before it), so `layers.0` reports the statistics of `relu(layers.0(x))`.
 *
 * @example
 * const mon = new Monitor(model, { every: 1 }).attach();
 * // inside the training loop (the trainer does this for you):
 * mon.beginStep(step); ...forward, backward...; mon.afterBackward(params);
 * ...updates = tx.update(...)...; mon.afterUpdate(updates, params, txState); mon.endStep(loss);
 * mon.latest()?.layers[0]?.gradNorm;
 */

import { activationOf as activationKeyOf } from '../nn/activation.js';
import { ACTIVATIONS } from '../nn/activation-names.js';
import type { AnyModule } from '../nn/module.js';
import type { GradientStats } from '../optim/transform.js';
import { wantPoolSums } from '../tensor/ops/conv.js';
import { batchMoments } from '../tensor/ops/norm.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type ActivationAcc,
  type ActivationKind,
  activationStats,
  outputSums,
  settlePooled,
} from './activation-stats.js';
import { type ClipSummary, readClipState } from './clip-state.js';
import { firstTensor } from './first-tensor.js';
import type { LayerInfo, LayerStats, MonitorOptions, ParamStats, StepObserver, StepRecord } from './records.js';
import { type TimeFlow, TimeFlowRecorder } from './through-time.js';

export type { LayerInfo, LayerStats, MonitorOptions, ParamStats, StepObserver, StepRecord } from './records.js';
export { summarizeLayers } from './summarize.js';
/** What kind of activation a layer's outputs went through, as far as the monitor can tell. */
export type { ActivationKind, TimeFlow };
export { type ClipSummary, readClipState };

interface ParamAcc {
  name: string;
  layer: LayerAcc;
  size: number;
  gradSS: number;
  gradMax: number;
  weightSS: number;
  updateSS: number;
  nonFinite: number;
  updated: boolean;
  /** The gradient whose norms afterUpdate's gradStats will bring (afterBackward with gradNormsFollow), if any. */
  pendingGrad: Tensor | null;
  /** The update whose norm afterApply will bring (afterUpdate with updateNormsFollow), if any. */
  pendingUpdate: Tensor | null;
}

/** A layer's accumulators over one step (its activation's statistics: activation-stats.ts). */
interface LayerAcc extends ActivationAcc {
  name: string;
  module: AnyModule | null;
  params: ParamAcc[];
  activation: ActivationKind;
  /** sums over the layer's own outputs on this step */
  outSum: number;
  outSS: number;
  outN: number;
  /** an activation module consumed its output on the first monitored step */
  followed: boolean;
  /**
   * a BatchNorm in training normalised its output on the first monitored step: the output's moments are then taken
   * from that BatchNorm's batch statistics, in its hook (or read from the output where another hook comes first)
   */
  normed: boolean;
}

const ROOT = '(root)';

/**
 * Collects gradient-flow statistics per parameter and per layer (see the module note), on every `every`-th step.
 *
 * @example
 * const mon = new Monitor(model, { every: 10 }).attach();
 * const opt = new optim.Optimizer(model, optim.adam({ lr: 1e-3 }), { observer: mon }); // see docs/library.md
 * mon.beginStep(step); lossOf(model.call(x)).backward(); opt.step(); mon.endStep(loss); mon.latest()?.layers[0];
 * mon.detach();
 */
export class Monitor implements StepObserver {
  readonly every: number;
  /** One record per logged step, oldest first. */
  readonly history: StepRecord[] = [];
  /** The loss of every step seen (monitored or not), by step. */
  readonly losses: number[] = [];
  readonly #model: AnyModule;
  /** layer, output, layer, output...: outputs of normed layers whose moments wait for the next hook */
  readonly #unsettled: (LayerAcc | Tensor)[] = [];
  /** layer, output, ...: convolutions' ReLU outputs whose statistics wait for the max pooling that reads them */
  readonly #pooling: (LayerAcc | Tensor)[] = [];
  readonly #keepParams: boolean;
  readonly #maxHistory: number;
  readonly #onRecord: ((r: StepRecord) => void) | undefined;
  readonly #layers = new Map<string, LayerAcc>();
  readonly #params = new Map<string, ParamAcc>();
  readonly #moduleLayer = new Map<AnyModule, LayerAcc>();
  /** layers in the order their forward passes finished on the first monitored step */
  #order: LayerAcc[] = [];
  #ordered = false;
  #removers: (() => void)[] = [];
  #active = false;
  #step = -1;
  #sawUpdate = false;
  /** sumSquaresMaxAbs's results, reused for every gradient. */
  readonly #gradStats = new Float64Array(2);
  /**
   * Parameters whose gradient's norms afterUpdate's gradStats will bring (afterBackward with gradNormsFollow), in the
   * order first seen; the gradient is the parameter's `pendingGrad`.
   * NOTE: lists and fields rather than Maps: a Map's clear() allocates a new table, three times a step.
   */
  readonly #pendingGrads: ParamAcc[] = [];
  /** Parameters whose update's norm afterApply will bring (afterUpdate with updateNormsFollow): `pendingUpdate`. */
  readonly #pendingUpdates: ParamAcc[] = [];
  /** Sums of squares of the weights after the last applied update, and the step they are the weights of. */
  #applied: Readonly<Record<string, number>> | null = null;
  #appliedFor = -1;
  #clip: ClipSummary | null = null;
  /** the layer whose forward finished last, and the layers' outputs on this step with the layer of each (same index) */
  #lastLayer: LayerAcc | null = null;
  // NOTE: two lists emptied every step rather than a WeakMap from output to layer: a WeakMap entry for every output
  // costs more to make and to collect than a search through the few outputs of one step
  readonly #outTensors: Tensor[] = [];
  readonly #outLayers: LayerAcc[] = [];
  readonly #time: TimeFlowRecorder;

  /**
   * @param model the model to watch (its parameters are grouped into layers by owning module)
   * @param opts every (1), params (true), maxHistory, onRecord
   */
  constructor(model: AnyModule, opts: MonitorOptions = {}) {
    if (!model || typeof (model as { namedModules?: unknown }).namedModules !== 'function') {
      throw new TypeError('Monitor: model must be an nn.Module (something with namedModules() and namedParameters())');
    }
    const every = opts.every ?? 1;
    if (!Number.isInteger(every) || every < 1) {
      throw new RangeError(
        `Monitor: every must be a positive integer (log every N-th step), got ${String(opts.every)}`,
      );
    }
    const maxHistory = opts.maxHistory ?? 10_000;
    if (!(maxHistory >= 1))
      throw new RangeError(`Monitor: maxHistory must be at least 1, got ${String(opts.maxHistory)}`);
    this.every = every;
    this.#model = model;
    this.#keepParams = opts.params ?? true;
    this.#maxHistory = maxHistory;
    this.#onRecord = opts.onRecord;
    const modules = new Map<string, AnyModule>(model.namedModules());
    for (const [pname, t] of model.namedParameters()) {
      const cut = pname.lastIndexOf('.');
      const lname = cut < 0 ? ROOT : pname.slice(0, cut);
      const layer = this.#layer(lname, modules.get(cut < 0 ? '' : lname) ?? null);
      this.#param(pname, layer, t.size);
    }
    this.#order = [...this.#layers.values()];
    this.#time = new TimeFlowRecorder(model);
  }

  #layer(name: string, module: AnyModule | null): LayerAcc {
    let l = this.#layers.get(name);
    if (!l) {
      l = {
        name,
        module,
        params: [],
        activation: 'none',
        outSum: 0,
        outSS: 0,
        outN: 0,
        actSum: 0,
        actSS: 0,
        actN: 0,
        actNonFinite: 0,
        followed: false,
        normed: false,
        pooled: false,
        alive: null,
        aliveBuf: null,
        satCount: 0,
        satN: 0,
      };
      this.#layers.set(name, l);
      if (module) {
        this.#moduleLayer.set(module, l);
        // a vanilla RNN (mode RNN_TANH or RNN_RELU): its outputs are that activation's outputs
        const m = module as { nonlinearity?: unknown; mode?: unknown };
        const nl = m.mode === 'RNN_TANH' ? 'tanh' : m.mode === 'RNN_RELU' ? 'relu' : m.nonlinearity;
        if (nl === 'tanh' || nl === 'relu') l.activation = nl;
      }
      if (this.#ordered) this.#order.push(l);
    }
    return l;
  }

  #param(name: string, layer: LayerAcc, size: number): ParamAcc {
    const p: ParamAcc = {
      name,
      layer,
      size,
      gradSS: 0,
      gradMax: 0,
      weightSS: Number.NaN,
      updateSS: 0,
      nonFinite: 0,
      updated: false,
      pendingGrad: null,
      pendingUpdate: null,
    };
    layer.params.push(p);
    this.#params.set(name, p);
    return p;
  }

  /** Registers a forward hook on every module of the model. Idempotent. @returns this */
  attach(): this {
    if (this.#removers.length) return this;
    for (const [, m] of this.#model.namedModules()) {
      const layer = this.#moduleLayer.get(m);
      const act = activationOf(m);
      // NOTE: once a layer is known to feed an activation module (followed), its hook only notes which tensor is its
      // output, for the activation's hook to credit it: the two may then run fused (nn.Sequential's Conv2d + ReLU),
      // both hooks seeing the activation's output, with the same records
      const fused = { fused: () => !this.#active || !layer || (this.#ordered && layer.followed) };
      if (layer) this.#removers.push(m.registerForwardHook((_m, x, y) => this.#onLayer(layer, x, y), fused));
      else if (act) this.#removers.push(m.registerForwardHook((_m, x, y) => this.#onActivation(act, x, y), fused));
    }
    return this;
  }

  /** Removes the hooks `attach()` registered. */
  detach(): void {
    for (const r of this.#removers) r();
    this.#removers = [];
    this.#time.detach();
  }

  /** Whether hooks are registered. */
  get attached(): boolean {
    return this.#removers.length > 0;
  }

  /** The most recent record, if any. */
  latest(): StepRecord | undefined {
    return this.history[this.history.length - 1];
  }

  /** The layers in forward order (known after the first monitored step; registration order before). */
  layerInfo(): LayerInfo[] {
    return this.#order.map((l) => ({
      name: l.name,
      type: l.module ? l.module.constructor.name : 'Module',
      size: l.params.reduce((s, p) => s + p.size, 0),
      params: l.params.map((p) => p.name),
      activation: l.activation,
    }));
  }

  beginStep(step: number): boolean {
    this.#active = step % this.every === 0;
    this.#step = step;
    this.#time.begin(this.#active && this.attached);
    this.#clearPendingGrads();
    if (!this.#active) return false;
    this.#sawUpdate = false;
    this.#clip = null;
    this.#lastLayer = null;
    this.#outTensors.length = this.#outLayers.length = this.#unsettled.length = this.#pooling.length = 0;
    for (const l of this.#layers.values()) {
      l.outSum = l.outSS = l.outN = 0;
      l.actSum = l.actSS = l.actN = l.actNonFinite = 0;
      l.satCount = l.satN = 0;
      l.alive = null;
    }
    for (const p of this.#params.values()) {
      p.gradSS = p.gradMax = p.updateSS = p.nonFinite = 0;
      p.weightSS = Number.NaN;
      p.updated = false;
    }
    if (!this.#ordered) this.#order = [];
    return true;
  }

  #onLayer(layer: LayerAcc, x: unknown, y: unknown): void {
    if (!this.#active) return;
    this.#settleOutputs(firstTensor(x));
    if (!this.#ordered && !this.#order.includes(layer)) this.#order.push(layer);
    this.#lastLayer = layer;
    const t = firstTensor(y);
    if (!t || t.size === 0) return;
    this.#outTensors.push(t);
    this.#outLayers.push(layer);
    // NOTE: once a layer is known to feed an activation module, its own output's moments are never reported (the
    // activation's are), so they are not computed
    if (layer.followed) return;
    if (this.#ordered && layer.normed && layer.activation !== 'tanh' && layer.activation !== 'relu') {
      this.#unsettled.push(layer, t);
      return;
    }
    outputSums(layer, t);
    if (layer.activation === 'tanh' || layer.activation === 'relu') activationStats(layer, layer.activation, t, false);
  }

  #onActivation(kind: ActivationKind, x: unknown, y: unknown): void {
    if (!this.#active) return;
    const xin = firstTensor(x);
    this.#settleOutputs(null);
    const layer = (xin && this.#layerOf(xin)) ?? this.#lastLayer;
    if (!layer) return;
    const t = firstTensor(y);
    if (!t || t.size === 0) return;
    if (layer.activation === 'none' || layer.activation === 'other') layer.activation = kind;
    // NOTE: a convolution's ReLU output that a max pooling reads: its statistics taken in the pooling's pass, at the
    // next hook (settlePooled); on the first monitored step read here, and whether a pooling reads it learned
    if (kind === 'relu' && t.ndim === 4 && (!this.#ordered || layer.pooled)) {
      wantPoolSums(t);
      this.#pooling.push(layer, t);
      if (this.#ordered) return;
    }
    activationStats(layer, kind, t, true);
  }

  /**
   * The moments of the outputs that wait for a BatchNorm (LayerAcc.normed), at the next hook: from the batch
   * statistics of the BatchNorm whose input is `x` (a layer's hook), read from the output for the others (another
   * module came first); on the first monitored step, the layer whose output a BatchNorm normalised is marked normed.
   */
  #settleOutputs(x: Tensor | null): void {
    // once the model is learned, nothing to do where no output waits (most hooks)
    if (this.#ordered && this.#unsettled.length === 0 && this.#pooling.length === 0) return;
    const p = this.#pooling;
    for (let i = 0; i < p.length; i += 2) settlePooled(p[i] as LayerAcc, p[i + 1] as Tensor, !this.#ordered);
    p.length = 0;
    const bm = x ? batchMoments(x) : undefined;
    if (bm && !this.#ordered) {
      const l = this.#layerOf(x!);
      if (l) l.normed = true;
    }
    const u = this.#unsettled;
    for (let i = 0; i < u.length; i += 2) {
      const layer = u[i] as LayerAcc;
      const t = u[i + 1] as Tensor;
      // released before another hook came (the model's last module): read from the output on the next steps
      if (!t.storage.buf) layer.normed = false;
      else outputSums(layer, t, t === x ? bm : undefined);
    }
    u.length = 0;
  }

  /** The layer whose output `t` was on this step (the last one, where several), or null. */
  #layerOf(t: Tensor): LayerAcc | null {
    const outs = this.#outTensors;
    for (let i = outs.length - 1; i >= 0; i--) if (outs[i] === t) return this.#outLayers[i]!;
    return null;
  }

  afterBackward(params: Record<string, Tensor>, opts?: { gradNormsFollow?: boolean }): void {
    if (!this.#active) return;
    this.#settleOutputs(null);
    // weight norms measured while the previous step's update was applied, when that was the step just before
    const known = this.#appliedFor === this.#step ? this.#applied : null;
    const defer = opts?.gradNormsFollow === true;
    for (const name in params) {
      const t = params[name]!;
      const p = this.#params.get(name) ?? this.#adopt(name, t);
      const be = t.storage.backend;
      const ws = known?.[name] ?? be.sumSquares(t.buf, t.size);
      p.weightSS = ws;
      if (!Number.isFinite(ws)) p.nonFinite += be.countNonFinite(t.buf, t.size);
      const g = t.grad;
      if (!g?.storage.buf) continue;
      if (defer) {
        if (!p.pendingGrad) this.#pendingGrads.push(p);
        p.pendingGrad = g;
      } else this.#gradNorms(p, g, undefined);
    }
  }

  /** A gradient's Σg², max |g| and non-finite count: from `stats` where it measured this very tensor, else read. */
  #gradNorms(p: ParamAcc, g: Tensor, stats: GradientStats | undefined): void {
    const be = g.storage.backend;
    let gs: number;
    let gm: number;
    if (stats && stats.tensors[p.name] === g) {
      gs = stats.sumSquares[p.name]!;
      gm = stats.maxAbs[p.name]!;
    } else {
      be.sumSquaresMaxAbs(g.buf, g.size, this.#gradStats);
      gs = this.#gradStats[0]!;
      gm = this.#gradStats[1]!;
    }
    p.gradSS = gs;
    p.gradMax = gm;
    if (!Number.isFinite(gs) || Number.isNaN(gm)) p.nonFinite += be.countNonFinite(g.buf, g.size);
  }

  /** The gradients afterBackward left pending: their norms from `stats`, else read now (NaN where released since). */
  #settleGrads(stats: GradientStats | undefined): void {
    const pending = this.#pendingGrads;
    if (pending.length === 0) return;
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i]!;
      const g = p.pendingGrad!;
      if (g.storage.buf) this.#gradNorms(p, g, stats);
      else p.gradSS = p.gradMax = Number.NaN;
    }
    this.#clearPendingGrads();
  }

  #clearPendingGrads(): void {
    const pending = this.#pendingGrads;
    for (let i = 0; i < pending.length; i++) pending[i]!.pendingGrad = null;
    pending.length = 0;
  }

  #adopt(name: string, t: Tensor): ParamAcc {
    const cut = name.lastIndexOf('.');
    const lname = cut < 0 ? ROOT : name.slice(0, cut);
    return this.#param(name, this.#layers.get(lname) ?? this.#layer(lname, null), t.size);
  }

  afterUpdate(
    updates: Record<string, Tensor>,
    params: Record<string, Tensor>,
    txState: unknown,
    opts?: { updateNormsFollow?: boolean; gradStats?: GradientStats },
  ): void {
    if (!this.#active) return;
    this.#settleGrads(opts?.gradStats);
    const defer = opts?.updateNormsFollow === true;
    for (const name in updates) {
      const u = updates[name]!;
      const p = this.#params.get(name) ?? (params[name] ? this.#adopt(name, params[name]!) : null);
      if (!p || !u.storage.buf) continue;
      // the pass that applies the update measures it (afterApply); else read it now
      if (defer) {
        if (!p.pendingUpdate) this.#pendingUpdates.push(p);
        p.pendingUpdate = u;
      } else p.updateSS = u.storage.backend.sumSquares(u.buf, u.size);
      p.updated = true;
      if (Number.isNaN(p.weightSS) && params[name]) {
        const w = params[name]!;
        p.weightSS = w.storage.backend.sumSquares(w.buf, w.size);
      }
    }
    this.#sawUpdate = true;
    this.#clip = readClipState(txState);
  }

  afterApply(
    weightSumSquares: Readonly<Record<string, number>>,
    updateSumSquares?: Readonly<Record<string, number>>,
  ): void {
    // NOTE: valid for the next step only: anything else that changes the weights happens outside a step's calls
    this.#applied = weightSumSquares;
    this.#appliedFor = this.#step + 1;
    this.#settleUpdates(updateSumSquares);
  }

  /** Update norms afterUpdate left to afterApply: from `measured`, else read from the updates (still intact). */
  #settleUpdates(measured?: Readonly<Record<string, number>>): void {
    const pending = this.#pendingUpdates;
    if (pending.length === 0) return;
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i]!;
      const u = p.pendingUpdate!;
      p.pendingUpdate = null;
      const m = measured?.[p.name];
      p.updateSS = m !== undefined ? m : u.storage.buf ? u.storage.backend.sumSquares(u.buf, u.size) : Number.NaN;
    }
    pending.length = 0;
  }

  endStep(loss: number): void {
    if (this.#step < 0) return; // endStep without beginStep: nothing to close
    this.#settleGrads(undefined); // gradNormsFollow promised but no update came (a skipped step): read them now
    this.#settleUpdates(); // updateNormsFollow promised but afterApply never came: read what is there
    this.losses[this.#step] = loss;
    if (!this.#active) return;
    this.#settleOutputs(null);
    this.#active = false;
    this.#outTensors.length = this.#outLayers.length = 0;
    if (!this.#ordered) for (const l of this.#layers.values()) l.followed = l.actN > 0;
    this.#ordered = true;
    // layers that never ran (or are not modules) go after those that did, in registration order (the order holds no
    // layer twice, so it holds them all when it is as long)
    if (this.#order.length !== this.#layers.size)
      for (const l of this.#layers.values()) if (!this.#order.includes(l)) this.#order.push(l);

    let globalSS = 0;
    const params: ParamStats[] = [];
    const layers: LayerStats[] = [];
    for (const l of this.#order) {
      let gss = 0;
      let gmax = 0;
      let wss = 0;
      let uss = 0;
      let nf = l.actNonFinite;
      let updated = false;
      for (const p of l.params) {
        gss += p.gradSS;
        gmax = Number.isNaN(p.gradMax) || Number.isNaN(gmax) ? Number.NaN : Math.max(gmax, p.gradMax);
        const w = Number.isNaN(p.weightSS) ? 0 : p.weightSS;
        wss += w;
        uss += p.updateSS;
        nf += p.nonFinite;
        updated ||= p.updated;
        if (this.#keepParams) {
          params.push({
            name: p.name,
            layer: l.name,
            size: p.size,
            gradNorm: Math.sqrt(p.gradSS),
            gradMaxAbs: p.gradMax,
            weightNorm: Math.sqrt(w),
            updateRatio: p.updated && w > 0 ? Math.sqrt(p.updateSS / w) : Number.NaN,
            nonFinite: p.nonFinite,
          });
        }
      }
      globalSS += gss;
      const [mean, std] = l.actN > 0 ? moments(l.actSum, l.actSS, l.actN) : moments(l.outSum, l.outSS, l.outN);
      const s: LayerStats = {
        name: l.name,
        gradNorm: Math.sqrt(gss),
        gradMaxAbs: gmax,
        weightNorm: Math.sqrt(wss),
        updateRatio: updated && wss > 0 ? Math.sqrt(uss / wss) : Number.NaN,
        actMean: mean,
        actStd: std,
        nonFinite: nf,
      };
      if (l.alive) {
        let alive = 0;
        for (let i = 0; i < l.alive.length; i++) alive += l.alive[i]!;
        s.deadFrac = 1 - alive / l.alive.length;
      }
      if (l.satN > 0) s.satFrac = l.satCount / l.satN;
      layers.push(s);
    }
    const before = Math.sqrt(globalSS);
    const clip = this.#clip;
    const record: StepRecord = {
      step: this.#step,
      loss: Number.isFinite(loss) ? loss : Number.NaN,
      globalNormBefore: before,
      globalNormAfter: clip?.skipped ? 0 : (clip?.normAfter ?? before),
      clipped: clip?.clipped ?? false,
      // a step with NaN/Inf whose update never came was skipped (by the trainer's train.onNonFinite: skip)
      skipped: (clip?.skipped ?? false) || (!this.#sawUpdate && (!Number.isFinite(loss) || !Number.isFinite(before))),
      updated: this.#sawUpdate,
      layers,
    };
    if (this.#keepParams) record.params = params;
    const flows = this.#time.end();
    if (flows.length) record.timeFlow = flows;
    this.history.push(record);
    if (this.history.length > this.#maxHistory) this.history.shift();
    this.#onRecord?.(record);
  }
}

/**
 * Which statistics an activation module's output gets: its row's `stats` in the activation table
 * (nn/activation-names.ts); null for a module that is no activation, or one whose output is its input.
 */
function activationOf(m: AnyModule): ActivationKind | null {
  const key = activationKeyOf(m);
  return key === null ? null : ACTIVATIONS[key].stats;
}

function moments(sum: number, ss: number, n: number): [number, number] {
  if (n === 0) return [Number.NaN, Number.NaN];
  const mean = sum / n;
  return [mean, Math.sqrt(Math.max(0, ss / n - mean * mean))];
}
