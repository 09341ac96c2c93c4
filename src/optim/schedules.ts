/**
 * Learning-rate schedules: functions from the step count (0 for the first update) to a learning rate, as optax's
 * schedules. Pass one wherever a learning rate goes: `optim.adam({ lr: schedules.linearWarmupCosine({...}) })`.
 */

/** A learning rate per step; step 0 is the first update. */
export type Schedule = (step: number) => number;

function positive(v: number, name: string, fn: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`schedules.${fn}(): ${name} must be a finite non-negative number, got ${v}`);
  }
}

function steps(v: number, name: string, fn: string, allowZero = false): void {
  if (!Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new RangeError(
      `schedules.${fn}(): ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${v}`,
    );
  }
}

/**
 * The same value at every step.
 * @example schedules.constant(1e-3)
 */
export function constant(value: number): Schedule {
  positive(value, 'value', 'constant');
  return () => value;
}

/**
 * value·gamma^⌊step / stepSize⌋: multiply by gamma every stepSize steps (PyTorch's StepLR).
 * @param value the initial value
 * @param opts stepSize (steps between decays), gamma (default 0.1)
 * @example schedules.step(0.1, { stepSize: 30, gamma: 0.1 })
 */
export function step(value: number, opts: { stepSize: number; gamma?: number }): Schedule {
  positive(value, 'value', 'step');
  steps(opts?.stepSize, 'stepSize', 'step');
  const gamma = opts.gamma ?? 0.1;
  positive(gamma, 'gamma', 'step');
  return (s) => value * gamma ** Math.floor(Math.max(0, s) / opts.stepSize);
}

/**
 * Cosine decay from value to alpha·value over decaySteps, then constant (optax's cosine_decay_schedule):
 * value·(alpha + (1 − alpha)·½(1 + cos(π·min(step, decaySteps)/decaySteps))). Equal to PyTorch's
 * CosineAnnealingLR with T_max = decaySteps and eta_min = alpha·value up to T_max (PyTorch then rises again).
 *
 * Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
 *
 * @param value the initial value
 * @param opts decaySteps, alpha (final fraction, default 0)
 * @example schedules.cosine(0.1, { decaySteps: 10_000 })
 */
export function cosine(value: number, opts: { decaySteps: number; alpha?: number }): Schedule {
  positive(value, 'value', 'cosine');
  steps(opts?.decaySteps, 'decaySteps', 'cosine');
  const alpha = opts.alpha ?? 0;
  positive(alpha, 'alpha', 'cosine');
  const n = opts.decaySteps;
  return (s) => {
    const t = Math.min(Math.max(s, 0), n) / n;
    return value * (alpha + (1 - alpha) * 0.5 * (1 + Math.cos(Math.PI * t)));
  };
}

/**
 * Linear warm-up from init to value over warmupSteps, then constant. Warm-up keeps the first, badly scaled updates
 * of Adam-type optimizers small (Goyal et al. 2017; Liu et al. 2020 on Adam's variance).
 * @example schedules.warmup(1e-3, { warmupSteps: 500 })
 */
export function warmup(value: number, opts: { warmupSteps: number; init?: number }): Schedule {
  positive(value, 'value', 'warmup');
  steps(opts?.warmupSteps, 'warmupSteps', 'warmup', true);
  const init = opts.init ?? 0;
  positive(init, 'init', 'warmup');
  const w = opts.warmupSteps;
  return (s) => (s >= w ? value : init + ((value - init) * Math.max(s, 0)) / w);
}

export interface WarmupCosineOptions {
  /** The value reached at the end of the warm-up. */
  peak: number;
  /** Steps of linear warm-up from init to peak. */
  warmupSteps: number;
  /** Total steps, warm-up included, at which the cosine reaches end (optax's decay_steps). */
  decaySteps: number;
  /** Value at step 0 (default 0). */
  init?: number;
  /** Value from decaySteps on (default 0). */
  end?: number;
}

/**
 * Linear warm-up from init to peak over warmupSteps, then cosine decay to end at decaySteps, then constant (optax's
 * warmup_cosine_decay_schedule).
 * @example schedules.linearWarmupCosine({ peak: 1e-3, warmupSteps: 500, decaySteps: 10_000 })
 */
export function linearWarmupCosine(opts: WarmupCosineOptions): Schedule {
  const fn = 'linearWarmupCosine';
  positive(opts?.peak, 'peak', fn);
  steps(opts.warmupSteps, 'warmupSteps', fn, true);
  steps(opts.decaySteps, 'decaySteps', fn);
  if (opts.decaySteps <= opts.warmupSteps) {
    throw new RangeError(
      `schedules.${fn}(): decaySteps (${opts.decaySteps}) counts the warm-up too, so it must exceed warmupSteps (${opts.warmupSteps})`,
    );
  }
  const init = opts.init ?? 0;
  const end = opts.end ?? 0;
  positive(init, 'init', fn);
  positive(end, 'end', fn);
  const { peak, warmupSteps: w, decaySteps: d } = opts;
  return (s) => {
    if (s < w) return init + ((peak - init) * Math.max(s, 0)) / w;
    const t = Math.min(s - w, d - w) / (d - w);
    return end + (peak - end) * 0.5 * (1 + Math.cos(Math.PI * t));
  };
}
