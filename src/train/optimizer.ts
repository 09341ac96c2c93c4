/**
 * Builds the config's transform chain — clip transforms in the order listed, then the optimizer with its
 * learning-rate schedule — and drives it from the parameters' `.grad` in two halves, so the trainer can show the
 * final updates to the monitor before they are applied.
 */
import * as clip from '../clip/index.js';
import { readClipState } from '../monitor/monitor.js';
import * as optim from '../optim/index.js';
import {
  findNonFiniteUpdate,
  type GradientTransformation,
  type NonFiniteUpdate,
  type Params,
} from '../optim/transform.js';
import { dispose, keep, type Tensor, zeros } from '../tensor/tensor.js';
import type { ClipConfig, Config } from './config.js';

/** The learning rate as a function of the step, from `config.optim.lr` and `config.schedule`. */
export function buildSchedule(config: Config, totalSteps: number): optim.Schedule {
  const lr = config.optim.lr;
  const s = config.schedule;
  const warm = s.warmupSteps;
  const after = Math.max(totalSteps - warm, 1);
  let base: optim.Schedule;
  switch (s.name) {
    case 'constant':
      base = optim.schedules.constant(lr);
      break;
    case 'step':
      base = optim.schedules.step(lr, {
        stepSize: s.stepSize ?? Math.max(Math.floor(after / 3), 1),
        gamma: s.gamma ?? 0.1,
      });
      break;
    case 'cosine':
      base = optim.schedules.cosine(lr, { decaySteps: after, alpha: s.alpha });
      break;
  }
  if (warm === 0) return base;
  // linear warm-up from 0 to lr, then the schedule from its own step 0
  return (step) => (step < warm ? (lr * (step + 1)) / warm : base(step - warm));
}

function clipTransform(c: ClipConfig): GradientTransformation {
  switch (c.type) {
    case 'value':
      return clip.byValue(c.max);
    case 'norm':
      return clip.byNorm(c.max);
    case 'global-norm':
      return clip.byGlobalNorm(c.max, { normType: c.normType });
    case 'agc':
      return clip.adaptive(c.clipping, { eps: c.eps });
    case 'autoclip':
      return clip.autoClip({ percentile: c.percentile });
    case 'skip-non-finite':
      return clip.skipNonFinite({ maxConsecutive: c.maxConsecutive });
  }
}

/** The optimizer transform of `config.optim` with a learning-rate schedule. */
function optimizerTransform(config: Config, lr: optim.Schedule): GradientTransformation {
  const o = config.optim;
  switch (o.name) {
    case 'sgd':
      return optim.sgd({ lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay });
    case 'adam':
      return optim.adam({ lr, b1: o.b1, b2: o.b2, eps: o.eps, weightDecay: o.weightDecay, amsgrad: o.amsgrad });
    case 'adamw':
      return optim.adamw({ lr, b1: o.b1, b2: o.b2, eps: o.eps, weightDecay: o.weightDecay, amsgrad: o.amsgrad });
    case 'rmsprop':
      return optim.rmsprop({ lr, eps: o.eps, weightDecay: o.weightDecay, momentum: o.momentum });
  }
}

/** The whole chain for a config: `chain(...clips, optimizer)`. */
export function buildTransform(config: Config, totalSteps: number): GradientTransformation {
  return optim.chain(...config.clip.map(clipTransform), optimizerTransform(config, buildSchedule(config, totalSteps)));
}

/**
 * Drives the chain from `.grad`: `computeUpdates()` transforms the gradients in place (they become the updates),
 * `apply()` adds them to the parameters. No parameter-sized buffer is allocated per step.
 */
export class Optimizer {
  readonly tx: GradientTransformation;
  state: unknown;
  readonly schedule: optim.Schedule;
  #step = 0;
  #clipped = 0;
  #halted = false;

  constructor(
    readonly params: Params,
    config: Config,
    totalSteps: number,
  ) {
    this.schedule = buildSchedule(config, totalSteps);
    this.tx = buildTransform(config, totalSteps);
    this.state = this.tx.init(params);
  }

  /**
   * Runs the chain on the gradients; returns the updates (the gradient buffers, transformed) and the state. With
   * `beforeApply`, the chain may apply the updates itself in its last pass (`optim.updateAndApply`: where it shows
   * beforehand that every new weight is finite); it then calls `beforeApply` just before the weights change, measures
   * `weightSumSquares` and `updateSumSquares` as `apply` does, and returns `applied: true` (the buffers then do not hold
   * the updates; `apply` only counts the step). With `beforeApply` the gradients are measured first (`gradStats`);
   * where one holds NaN or Inf no link runs and `nonFiniteGradient` names it (nothing changed).
   */
  computeUpdates(beforeApply?: (updates: Params) => void): {
    updates: Params;
    state: unknown;
    halted: boolean;
    applied: boolean;
    nonFiniteGradient?: string;
  } {
    const grads: Params = {};
    for (const [k, p] of Object.entries(this.params)) if (p.grad) grads[k] = p.grad;
    const r = beforeApply
      ? optim.updateAndApply(this.tx, grads, this.state, this.params, this.#plan(beforeApply))
      : { ...this.tx.update(grads, this.state, this.params), applied: false };
    // NOTE: a gradient held NaN or Inf (measured on entry, with gradStats): no link ran, the step is the trainer's to skip
    if (r.nonFiniteGradient !== undefined)
      return {
        updates: r.updates,
        state: r.state,
        halted: false,
        applied: false,
        nonFiniteGradient: r.nonFiniteGradient,
      };
    // updates applied by `apply` (not in Adam's pass) change the weights: their bounds are read again if needed
    if (!beforeApply) for (const k of Object.keys(this.#weightBounds)) delete this.#weightBounds[k];
    this.state = r.state;
    this.#halted = Boolean(r.halt);
    this.#applied = r.applied;
    if (readClipState(r.state).clipped) this.#clipped++;
    return { updates: r.updates, state: r.state, halted: this.#halted, applied: r.applied };
  }

  /** Whether the last `computeUpdates` applied its updates itself. */
  #applied = false;
  #lastPlan: optim.ApplyPlan | null = null;

  /** The fused path's plan for this hook (made once while the hook is the same). */
  #plan(beforeApply: (updates: Params) => void): optim.ApplyPlan {
    if (this.#lastPlan?.beforeApply !== beforeApply) {
      this.#lastPlan = {
        weightBounds: this.#weightBounds,
        weightSumSquares: this.weightSumSquares,
        updateSumSquares: this.updateSumSquares,
        beforeApply,
        gradStats: this.gradStats,
        stopOnNonFiniteGradients: true,
      };
    }
    return this.#lastPlan;
  }

  /**
   * Each gradient's Σg² and max |g|, measured once on entry of a fused `computeUpdates` (before any link ran: the
   * global-norm clip takes its norm from them, the trainer's non-finite check its answer, a monitor its norms).
   */
  readonly gradStats: optim.GradientStats = optim.gradientStats();
  /** The fused path's bounds on each weight's max |w| (see `optim.ApplyPlan`). */
  readonly #weightBounds: Record<string, number> = {};

  /** Each parameter's sum of squares after the last applied update (measured while applying it). */
  readonly weightSumSquares: Record<string, number> = {};
  /** Each last applied update's sum of squares (measured in the same pass). */
  readonly updateSumSquares: Record<string, number> = {};

  /**
   * The first parameter these updates would leave holding NaN or Inf, or null (see `optim.findNonFiniteUpdate`):
   * one read of each update, the weights bounded by their sums of squares from the last `apply`.
   */
  findNonFinite(updates: Params): NonFiniteUpdate | null {
    return findNonFiniteUpdate(this.params, updates, this.weightSumSquares);
  }

  /** Adds the updates to the parameters (nothing when the chain halted on a non-finite step). */
  apply(updates: Params): void {
    if (!this.#halted && !this.#applied)
      optim.applyUpdates(this.params, updates, this.weightSumSquares, this.updateSumSquares);
    this.#applied = false;
    this.#step++;
  }

  /** Whether the last `computeUpdates` halted (its updates were not applied). */
  get halted(): boolean {
    return this.#halted;
  }

  /**
   * Clears the gradients as PyTorch's `zero_grad(set_to_none=True)`: their buffers go back to the pool and `.grad`
   * becomes null, so the next backward makes each gradient the buffer its product wrote (tensor.ts: a leaf takes over
   * its first gradient) instead of zeroing it here and adding into it there. Nothing outside the step holds these
   * tensors (they were the updates, applied by now). See {@link gradsReady} for parameters the next backward misses.
   */
  zeroGrad(): void {
    for (const [k, p] of Object.entries(this.params)) {
      const g: Tensor | null = p.grad;
      if (!g) continue;
      dispose(g);
      p.grad = null;
      this.#cleared.add(k);
    }
  }

  /** Parameters whose gradient `zeroGrad` released (each has had one). */
  readonly #cleared = new Set<string>();

  /**
   * After a backward: a parameter that had a gradient before and got none from this backward gets zeros, as it did
   * when `zeroGrad` zeroed in place (the optimizer still steps it, its moments decaying, and the monitor reads 0).
   */
  gradsReady(): void {
    if (this.#cleared.size === 0) return;
    for (const k of this.#cleared) {
      const p = this.params[k]!;
      if (!p.grad) p.grad = keep(zeros(p.shape));
    }
    this.#cleared.clear();
  }

  /** The learning rate the next step uses. */
  currentLr(): number {
    return this.schedule(this.#step);
  }

  /** Steps on which a clip transform changed the gradients. */
  clippedSteps(): number {
    return this.#clipped;
  }

  get stepCount(): number {
    return this.#step;
  }

  /** Sets the step and clipped-step counters (restoring a checkpoint; the transform state is restored separately). */
  restoreCounters(stepCount: number, clippedSteps: number): void {
    this.#step = stepCount;
    this.#clipped = clippedSteps;
    // the weights were replaced: their sums of squares are measured again by the next apply, their bounds read again
    for (const k of Object.keys(this.weightSumSquares)) delete this.weightSumSquares[k];
    for (const k of Object.keys(this.#weightBounds)) delete this.#weightBounds[k];
  }
}

/** Builds the optimizer for an experiment. */
export function buildOptimizer(config: Config, params: Params, totalSteps: number): Optimizer {
  return new Optimizer(params, config, totalSteps);
}
