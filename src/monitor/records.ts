/**
 * What the gradient monitor (monitor.ts) records and what the trainer calls it with: the step observer's contract and
 * the records' shapes, re-exported by monitor.ts.
 */

import type { GradientStats } from '../optim/transform.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ActivationKind } from './activation-stats.js';
import type { TimeFlow } from './through-time.js';

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
