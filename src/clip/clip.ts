/**
 * Clipping by value, by per-tensor norm and by global norm, as gradient transformations for `optim.chain`. Each
 * state records what the last update did (`normBefore`, `clipped`, ...), which is how monitors see clipping.
 */
import { Unary } from '../backend/types.js';
import {
  type GradientStats,
  type GradientTransformation,
  knownNorm,
  type Params,
  type StateRecord,
  scaleInPlace,
} from '../optim/transform.js';
import { globalNorm, type NormType, tensorNorm } from './norms.js';

function checkMax(v: unknown, name: string, fn: string): number {
  if (typeof v !== 'number' || !(v > 0) || Number.isNaN(v)) {
    throw new RangeError(`clip.${fn}(): ${name} must be a positive number, got ${String(v)}`);
  }
  return v;
}

export interface ByValueState extends StateRecord {
  readonly kind: 'clipByValue';
  count: number;
  /** The largest |g| before clipping, over all tensors. */
  maxAbsBefore: number;
  /** Whether any value was clipped in the last update. */
  clipped: boolean;
}

/**
 * Clamps every gradient value to [−maxValue, maxValue] (torch.nn.utils.clip_grad_value_, optax's clip). Simple, but
 * it changes the direction of the gradient; prefer `byGlobalNorm`.
 * @param maxValue the bound
 * @example optim.chain(clip.byValue(0.5), optim.sgd({ lr: 0.1 }))
 */
export function byValue(maxValue: number): GradientTransformation<ByValueState> {
  checkMax(maxValue, 'maxValue', 'byValue');
  // NOTE: values are float32, so a value already clamped reads back as fround(maxValue), which may exceed maxValue
  const bound = Math.fround(maxValue);
  return {
    kind: 'clipByValue',
    init: () => ({ kind: 'clipByValue', count: 0, maxAbsBefore: 0, clipped: false }),
    update(grads, state) {
      let worst = 0;
      for (const g of Object.values(grads)) {
        const be = g.storage.backend;
        const m = be.maxAbs(g.buf, g.size);
        if (!(m <= worst)) worst = m;
        if (m > bound) be.unary(Unary.Clamp, g.buf, g.buf, g.size, -maxValue, maxValue);
      }
      state.count++;
      state.maxAbsBefore = worst;
      state.clipped = worst > bound;
      return { updates: grads, state };
    },
  };
}

export interface ByNormState extends StateRecord {
  readonly kind: 'clipByNorm';
  count: number;
  /** Each tensor's norm before clipping, by path. */
  readonly normsBefore: Record<string, number>;
  /** How many tensors were scaled down in the last update. */
  clippedCount: number;
  /** Whether any tensor was scaled down. */
  clipped: boolean;
}

/**
 * Clips each tensor's norm separately: gᵢ ← gᵢ·min(1, maxNorm / (‖gᵢ‖ + 1e-6)) (the global-norm formula per tensor).
 * @param maxNorm the largest norm per tensor
 * @param opts normType (2 or 'inf')
 * @example clip.byNorm(1.0)
 */
export function byNorm(maxNorm: number, opts: { normType?: NormType } = {}): GradientTransformation<ByNormState> {
  checkMax(maxNorm, 'maxNorm', 'byNorm');
  const normType = opts.normType ?? 2;
  if (normType !== 2 && normType !== 'inf')
    throw new TypeError(`clip.byNorm(): normType must be 2 or 'inf', got ${String(normType)}`);
  return {
    kind: 'clipByNorm',
    init: () => ({ kind: 'clipByNorm', count: 0, normsBefore: {}, clippedCount: 0, clipped: false }),
    update(grads, state) {
      let n = 0;
      for (const [k, g] of Object.entries(grads)) {
        const norm = tensorNorm(g, normType);
        state.normsBefore[k] = norm;
        const coef = Math.min(maxNorm / (norm + 1e-6), 1);
        if (!(coef >= 1)) {
          g.storage.backend.scale(g.buf, g.size, coef);
          n++;
        }
      }
      state.count++;
      state.clippedCount = n;
      state.clipped = n > 0;
      return { updates: grads, state };
    },
  };
}

export interface ByGlobalNormState extends StateRecord {
  readonly kind: 'clipByGlobalNorm';
  count: number;
  /** The global norm before clipping (what torch.nn.utils.clip_grad_norm_ returns). */
  normBefore: number;
  /** The factor the gradients were multiplied by: min(1, max / (norm + 1e-6)). */
  scale: number;
  /** Whether the gradients were scaled down. */
  clipped: boolean;
  /** Updates clipped so far. */
  clippedSteps: number;
}

/**
 * Scales all gradients together so their global norm is at most maxNorm: g ← g·min(1, maxNorm / (‖g‖ + 1e-6)), the
 * same numbers as torch.nn.utils.clip_grad_norm_. The direction of the update is kept, only its length is capped,
 * which stops a single exploding step (a cliff in the loss surface) from throwing the parameters far away.
 *
 * NOTE: as PyTorch, the coefficient is clamped rather than branching on norm > max, so a NaN or infinite norm turns
 * the gradients into NaN (use `clip.skipNonFinite` to skip such steps) unless `errorIfNonfinite` throws first.
 *
 * Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks", ICML 2013.
 *
 * @param maxNorm the largest global norm
 * @param opts normType (2 or 'inf'), errorIfNonfinite (throw on a NaN/Inf norm, default false)
 * @example const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
 */
export function byGlobalNorm(
  maxNorm: number,
  opts: { normType?: NormType; errorIfNonfinite?: boolean } = {},
): GradientTransformation<ByGlobalNormState> {
  checkMax(maxNorm, 'maxNorm', 'byGlobalNorm');
  const normType = opts.normType ?? 2;
  if (normType !== 2 && normType !== 'inf') {
    throw new TypeError(`clip.byGlobalNorm(): normType must be 2 or 'inf', got ${String(normType)}`);
  }
  /** The norm and the state; the factor is left to the caller (`chain` hands it to Adam's pass). */
  const measure = (grads: Params, state: ByGlobalNormState, known?: GradientStats): number => {
    const norm = (known && knownNorm(grads, known, normType)) ?? globalNorm(grads, normType);
    if (opts.errorIfNonfinite && !Number.isFinite(norm)) {
      throw new Error(
        `clip.byGlobalNorm(): the total norm of order ${normType} of the gradients is ${norm}; the gradients cannot be clipped. Pass errorIfNonfinite: false to let them through, or put clip.skipNonFinite() first in the chain`,
      );
    }
    const coef = Math.min(maxNorm / (norm + 1e-6), 1);
    const scaled = !(coef >= 1);
    state.count++;
    state.normBefore = norm;
    state.scale = coef;
    state.clipped = scaled;
    if (scaled) state.clippedSteps++;
    return scaled ? coef : 1;
  };
  return {
    kind: 'clipByGlobalNorm',
    init: () => ({ kind: 'clipByGlobalNorm', count: 0, normBefore: 0, scale: 1, clipped: false, clippedSteps: 0 }),
    update(grads, state) {
      const coef = measure(grads, state);
      if (coef !== 1) scaleInPlace(grads, coef);
      return { updates: grads, state };
    },
    measure,
    // the 2-norm bounds every |g| (to its float64 sum's rounding), the inf-norm is the largest
    gradBound: (state) => state.normBefore,
  };
}
