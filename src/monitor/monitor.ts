/**
 * `Monitor`: per-parameter and per-layer statistics of gradient flow, collected while a model trains.
 *
 * The trainer calls a `StepObserver` at four fixed points of each step; the monitor reads the gradients, the updates
 * and the transform chain's state there, and sees every layer's output through forward hooks registered on every
 * module (`attach()`), so the model's code does not change. Statistics are computed with the backend's reduction
 * kernels (`sumSquaresRows` for an output's moments and a convolution's planes, `sumSquaresColumns` for a ReLU's
 * units: the moments and the dead units in one pass; `sumSquaresMaxAbs`, `maxAxis`), in C natively: monitoring every step costs a few per cent.
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
import type { Tensor } from '../tensor/tensor.js';
import { type ActivationAcc, type ActivationKind, activationStats, outputSums } from './activation-stats.js';
import { type ClipSummary, readClipState } from './clip-state.js';
import { firstTensor } from './first-tensor.js';
import { type TimeFlow, TimeFlowRecorder } from './through-time.js';

export { summarizeLayers } from './summarize.js';
export type { TimeFlow };
export { type ClipSummary, readClipState };

/** What the trainer calls at fixed points of every step. */
export interface StepObserver {
  /** Before the forward pass of step `step` (0-based); returns whether this step is monitored. */
  beginStep(step: number): boolean;
  /**
   * After `loss.backward()`: the params' `.grad` hold the raw gradients (before clipping). With `gradNormsFollow` the
   * caller promises their norms with `afterUpdate`'s `gradStats` (`optim.updateAndApply` measures them on entry, before
   * any link of the chain runs, for the chain's global-norm clip too), or that nothing changes or releases them
   * before `endStep` where no update comes (the step was skipped): the observer then does not read them here.
   */
  afterBackward(params: Record<string, Tensor>, opts?: { gradNormsFollow?: boolean }): void;
  /**
   * After the transform chain ran: `updates` are the final updates (p += u), `txState` the chain's state (clip
   * transforms record there what they did).
   */
  afterUpdate(
    updates: Record<string, Tensor>,
    params: Record<string, Tensor>,
    txState: unknown,
    opts?: { updateNormsFollow?: boolean; gradStats?: GradientStats },
  ): void;
  /**
   * Optional, after the updates were applied: each parameter's sum of squares as the update left it, and each
   * update's (both measured by `applyUpdates` in the same pass). The next step then takes its weight norms from here
   * instead of reading every weight again; the update norms are this step's when `afterUpdate` was told
   * `updateNormsFollow` (it then reads no update itself).
   */
  afterApply?(
    weightSumSquares: Readonly<Record<string, number>>,
    updateSumSquares?: Readonly<Record<string, number>>,
  ): void;
  /** After the step; `loss` is the step's loss (may be NaN). */
  endStep(loss: number): void;
}

/** One layer's statistics on one logged step. */
export interface LayerStats {
  /** The module's path (`layers.0`); `(root)` for parameters owned by the model itself. */
  name: string;
  /** L2 norm of the gradient over all of the layer's parameters (raw, before clipping). */
  gradNorm: number;
  /** max |g| over the layer's parameters. */
  gradMaxAbs: number;
  /** L2 norm of the layer's parameters (before this step's update). */
  weightNorm: number;
  /** ‖Δw‖ / ‖w‖ for this step's update; NaN when no update was made (probe batches) or ‖w‖ = 0. */
  updateRatio: number;
  /**
   * Mean and standard deviation of the layer's activations over the batch: the output of the activation module that
   * follows it when there is one (post-activation), else the layer's own output. NaN when the layer did not run.
   */
  actMean: number;
  actStd: number;
  /**
   * ReLU layers: the fraction of units that output 0 for every example of the batch (a unit is a feature; a hidden
   * unit across time steps for sequences; a channel across positions for images).
   */
  deadFrac?: number;
  /** Sigmoid and tanh layers: the fraction of outputs within 1% of the activation's bounds. */
  satFrac?: number;
  /** NaN and ±Inf values among the layer's gradients, parameters and activations. */
  nonFinite: number;
}

/** One parameter's statistics on one logged step. */
export interface ParamStats {
  /** The parameter's path (`layers.0.weight`). */
  name: string;
  /** The layer that owns it. */
  layer: string;
  /** Number of elements. */
  size: number;
  gradNorm: number;
  gradMaxAbs: number;
  weightNorm: number;
  /** ‖Δw‖ / ‖w‖; NaN when no update was made or ‖w‖ = 0. */
  updateRatio: number;
  /** NaN and ±Inf values in its gradient and its values. */
  nonFinite: number;
}

/** Everything recorded on one logged step: a compact numeric record the run store persists. */
export interface StepRecord {
  step: number;
  /** The step's loss (NaN when it was not finite). */
  loss: number;
  /** Global L2 norm of the raw gradients, over every parameter. */
  globalNormBefore: number;
  /**
   * Global norm after clipping, as a global clip transform recorded it (`clip.byGlobalNorm`, `clip.autoClip`); equal
   * to `globalNormBefore` without one (per-tensor clipping does not record a global norm); 0 on a skipped step.
   */
  globalNormAfter: number;
  /** Whether a clip transform scaled the gradients on this step. */
  clipped: boolean;
  /** Whether the update was skipped (a `skipNonFinite` transform saw NaN or Inf). */
  skipped: boolean;
  /** Whether an update was made and observed on this step (false for probe batches that only run backward). */
  updated: boolean;
  /** Per layer, in forward order. */
  layers: LayerStats[];
  /** Per parameter, in `namedParameters()` order (omitted with `{ params: false }`). */
  params?: ParamStats[];
  /** Recurrent layers: ‖∂L/∂h_t‖ per (sampled) time step, per stacked layer and direction (through-time.ts). */
  timeFlow?: TimeFlow[];
}

/** What kind of activation a layer's outputs went through, as far as the monitor can tell. */
export type { ActivationKind };

/** Static facts about a layer: its module's class, parameter count, activation. */
export interface LayerInfo {
  name: string;
  /** The module's class name (`Linear`, `Conv2d`, `RNN`...). */
  type: string;
  /** Number of parameter elements it owns. */
  size: number;
  /** The parameters it owns. */
  params: string[];
  /** The activation applied to its output (known after the first monitored forward pass). */
  activation: ActivationKind;
}

export interface MonitorOptions {
  /** Record every `every`-th step (default 1: every step). */
  every?: number;
  /** Keep per-parameter statistics in each record (default true). */
  params?: boolean;
  /** Keep at most this many records in `history`, dropping the oldest (default 10,000; `Infinity` keeps all). */
  maxHistory?: number;
  /** Called with each record as it is completed (for a run store or live diagnosis). */
  onRecord?: (record: StepRecord) => void;
}

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
      if (layer) this.#removers.push(m.registerForwardHook((_m, _x, y) => this.#onLayer(layer, y), fused));
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
    this.#outTensors.length = this.#outLayers.length = 0;
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

  #onLayer(layer: LayerAcc, y: unknown): void {
    if (!this.#active) return;
    if (!this.#ordered && !this.#order.includes(layer)) this.#order.push(layer);
    this.#lastLayer = layer;
    const t = firstTensor(y);
    if (!t || t.size === 0) return;
    this.#outTensors.push(t);
    this.#outLayers.push(layer);
    // NOTE: once a layer is known to feed an activation module, its own output's moments are never reported (the
    // activation's are), so they are not computed
    if (layer.followed) return;
    outputSums(layer, t);
    if (layer.activation === 'tanh' || layer.activation === 'relu') activationStats(layer, layer.activation, t, false);
  }

  #onActivation(kind: ActivationKind, x: unknown, y: unknown): void {
    if (!this.#active) return;
    const xin = firstTensor(x);
    const layer = (xin && this.#layerOf(xin)) ?? this.#lastLayer;
    if (!layer) return;
    const t = firstTensor(y);
    if (!t || t.size === 0) return;
    if (layer.activation === 'none' || layer.activation === 'other') layer.activation = kind;
    activationStats(layer, kind, t, true);
  }

  /** The layer whose output `t` was on this step (the last one, where several), or null. */
  #layerOf(t: Tensor): LayerAcc | null {
    const outs = this.#outTensors;
    for (let i = outs.length - 1; i >= 0; i--) if (outs[i] === t) return this.#outLayers[i]!;
    return null;
  }

  afterBackward(params: Record<string, Tensor>, opts?: { gradNormsFollow?: boolean }): void {
    if (!this.#active) return;
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
