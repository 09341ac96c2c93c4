/**
 * The building blocks optimizers are chains of (optax's names): `scale`, `scaleByLearningRate`, `scaleByAdam`,
 * `scaleByRms`, `trace` (momentum) and `addDecayedWeights`. Each updates the gradients in place (see transform.ts).
 */
import { adamCoefficients } from '../backend/js-adam.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Schedule } from './schedules.js';
import {
  type ApplyPlan,
  checkParams,
  forgetStateBound,
  type GradientTransformation,
  type Params,
  paramOf,
  type StateRecord,
  scaleInPlace,
  setStateBound,
  stateBound,
  stateOf,
  type UpdateResult,
  zerosLikeParams,
} from './transform.js';

function checkNumber(v: unknown, name: string, fn: string, lo: number, hi: number, hiOpen = false): number {
  if (typeof v !== 'number' || !(v >= lo) || !(hiOpen ? v < hi : v <= hi)) {
    throw new RangeError(`${fn}(): ${name} must be a number in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${String(v)}`);
  }
  return v;
}

export interface ScaleState extends StateRecord {
  readonly kind: 'scale';
}

/**
 * Multiplies the updates by a constant.
 * @example optim.chain(optim.scaleByAdam(), optim.scale(-1e-3))
 */
export function scale(factor: number): GradientTransformation<ScaleState> {
  if (typeof factor !== 'number' || !Number.isFinite(factor))
    throw new TypeError(`scale(): factor must be a finite number, got ${factor}`);
  return {
    kind: 'scale',
    init: () => ({ kind: 'scale' }),
    update(grads, state) {
      if (factor !== 1) scaleInPlace(grads, factor);
      return { updates: grads, state };
    },
    nextFactor: () => ({ factor, commit() {} }),
  };
}

export interface LearningRateState extends StateRecord {
  readonly kind: 'scaleByLearningRate';
  /** Updates taken so far (the schedule's step). */
  count: number;
  /** The learning rate of the last update. */
  lr: number;
}

/** A learning rate or a schedule, checked. */
export function toSchedule(lr: number | Schedule, fn: string): Schedule {
  if (typeof lr === 'function') return lr;
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) {
    throw new RangeError(`${fn}(): lr must be a non-negative number or a schedule (step) => number, got ${String(lr)}`);
  }
  return () => lr;
}

/**
 * Multiplies the updates by −lr (a descent step), lr constant or given by a schedule of the step count.
 * @param lr the learning rate or a schedule
 * @param opts flipSign (default true): false multiplies by +lr
 * @example optim.scaleByLearningRate(schedules.cosine(0.1, { decaySteps: 1000 }))
 */
export function scaleByLearningRate(
  lr: number | Schedule,
  opts: { flipSign?: boolean } = {},
): GradientTransformation<LearningRateState> {
  const sched = toSchedule(lr, 'scaleByLearningRate');
  const sign = (opts.flipSign ?? true) ? -1 : 1;
  return {
    kind: 'scaleByLearningRate',
    init: () => ({ kind: 'scaleByLearningRate', count: 0, lr: sched(0) }),
    update(grads, state) {
      const v = sched(state.count);
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new Error(
          `scaleByLearningRate(): the schedule returned ${v} at step ${state.count}; a learning rate must be a finite number`,
        );
      }
      state.lr = v;
      state.count++;
      scaleInPlace(grads, sign * v);
      return { updates: grads, state };
    },
    nextFactor(state) {
      const v = sched(state.count);
      // update() throws on a bad value; a factor of 1 (a product that changes nothing) takes the unfused path
      if (typeof v !== 'number' || !Number.isFinite(v) || sign * v === 1) return null;
      return {
        factor: sign * v,
        commit() {
          state.lr = v;
          state.count++;
        },
      };
    },
  };
}

export interface AdamOptions {
  /** Decay of the first moment (default 0.9). */
  b1?: number;
  /** Decay of the second moment (default 0.999). */
  b2?: number;
  /** Added to √v̂, outside the square root as PyTorch and optax (default 1e-8). */
  eps?: number;
  /**
   * AMSGrad (default false): divide by the largest second moment seen so far, v_max ← max(v_max, v), instead of the
   * current one, as torch.optim.Adam(amsgrad=True) does (the maximum of the raw moments, then the bias correction).
   */
  amsgrad?: boolean;
}

export interface AdamState extends StateRecord {
  readonly kind: 'scaleByAdam';
  /** Steps taken (bias correction uses it). */
  count: number;
  /**
   * First moments m. NOTE: write the moments through `update` or `restoreState` only: `updateAndApply`'s fused path
   * keeps a bound on |m| that `update` and `restoreState` refresh, and a write from elsewhere would leave it stale.
   */
  readonly mu: Params;
  /** Second moments v. */
  readonly nu: Params;
  /** The largest second moments so far (AMSGrad only). */
  readonly nuMax: Params | null;
}

/**
 * Adam's direction: m ← b1·m + (1 − b1)·g, v ← b2·v + (1 − b2)·g², u = m̂ / (√v̂ + eps) with the bias corrections
 * m̂ = m / (1 − b1ᵗ), v̂ = v / (1 − b2ᵗ). Runs as one fused backend kernel per tensor, in float32 with
 * torch.optim.Adam's order of operations (u = (m·(1/bc1)) / (√v / √bc2 + eps)), so trajectories track PyTorch's
 * closely. With `amsgrad`, v̂ is taken from v_max ← max(v_max, v) (an element-wise loop here: AMSGrad is the rarer
 * choice).
 *
 * Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015; AMSGrad: Reddi, Kale & Kumar, "On the
 * Convergence of Adam and Beyond", ICLR 2018.
 *
 * @example optim.chain(optim.scaleByAdam({ b2: 0.99 }), optim.scaleByLearningRate(1e-3))
 */
export function scaleByAdam(opts: AdamOptions = {}): GradientTransformation<AdamState> {
  const fn = 'scaleByAdam';
  const b1 = checkNumber(opts.b1 ?? 0.9, 'b1', fn, 0, 1, true);
  const b2 = checkNumber(opts.b2 ?? 0.999, 'b2', fn, 0, 1, true);
  const eps = checkNumber(opts.eps ?? 1e-8, 'eps', fn, 0, Number.POSITIVE_INFINITY);
  if (opts.amsgrad !== undefined && typeof opts.amsgrad !== 'boolean') {
    throw new TypeError(`${fn}(): amsgrad must be true or false, got ${String(opts.amsgrad)}`);
  }
  const amsgrad = opts.amsgrad ?? false;
  const update = (grads: Params, state: AdamState, pre: number, post: number): UpdateResult<AdamState> => {
    state.count++;
    const bc1 = 1 - b1 ** state.count;
    const bc2 = 1 - b2 ** state.count;
    for (const [k, g] of Object.entries(grads)) {
      const m = stateOf(state.mu, k, fn);
      const v = stateOf(state.nu, k, fn);
      forgetStateBound(m); // the gradients may hold anything here: the fused path measures the moments again
      if (!state.nuMax) {
        g.storage.backend.adamUpdate(g.buf, m.buf, v.buf, g.size, b1, b2, eps, bc1, bc2, pre, post);
        continue;
      }
      if (pre !== 1) g.storage.backend.scale(g.buf, g.size, pre);
      // the kernel's float32 expressions (torch.optim.Adam's), with the maximum of the second moments
      const vm = stateOf(state.nuMax, k, fn).data;
      const md = m.data;
      const vd = v.data;
      const d = g.data;
      const c = adamCoefficients(b1, b2, eps, bc1, bc2);
      const f = Math.fround;
      for (let i = 0; i < d.length; i++) {
        const gi = d[i]!;
        md[i] = f(f(md[i]! * c.b1) + f(gi * c.c1));
        vd[i] = f(f(vd[i]! * c.b2) + f(f(c.c2 * gi) * gi));
        vm[i] = Math.max(vm[i]!, vd[i]!); // NaN stays NaN, as torch.maximum
        d[i] = f(c.r1 * md[i]!) / f(f(f(Math.sqrt(vm[i]!)) / c.sbc2) + c.eps);
      }
      if (post !== 1) g.storage.backend.scale(g.buf, g.size, post);
    }
    return { updates: grads, state };
  };
  return {
    kind: fn,
    init(params) {
      checkParams(params, fn);
      const mu = zerosLikeParams(params);
      for (const m of Object.values(mu)) setStateBound(m, 0);
      return {
        kind: fn,
        count: 0,
        mu,
        nu: zerosLikeParams(params),
        nuMax: amsgrad ? zerosLikeParams(params) : null,
      };
    },
    update: (grads, state) => update(grads, state, 1, 1),
    updateScaled: (grads, state, _params, pre, post) => update(grads, state, pre, post),
    updateScaledApply: (grads, state, params, pre, post, gradBound, plan) =>
      adamApplied({ b1, b2, eps, fn }, grads, state, params, pre, post, gradBound, plan),
  };
}

/**
 * The fused step (see `updateScaledApply`): where every w + u is shown finite beforehand, Adam's steps go straight
 * into the parameters (`adamApply`); else null, nothing done. The proof, per tensor, in float64 with a margin of
 * 1.001 a step for float32's roundings: |g| ≤ G (the clip's bound times `pre`), |m| ≤ M (kept on the moment
 * tensor: 0 at init, then this bound after each fused step; read again after anything else wrote the moments), so
 * |m'| ≤ b1·M + (1 − b1)·G; v ≥ 0 and not NaN (kept with M: Adam's v' of a finite g and such a v is too), so the
 * step's denominator is at least eps > 0 and |u| ≤ |post|·|m'|/bc1/eps; |w| ≤ W (kept in `plan`); and W + |u| is
 * far below float32's largest value. A training step's bounds are ~10⁶ or less; a learning rate of 1e33 fails.
 */
function adamApplied(
  { b1, b2, eps, fn }: { b1: number; b2: number; eps: number; fn: string },
  grads: Params,
  state: AdamState,
  params: Params,
  pre: number,
  post: number,
  gradBound: number,
  plan: ApplyPlan,
): UpdateResult<AdamState> | null {
  if (state.nuMax) return null;
  const g0 = gradBound * pre * MARGIN;
  if (!(g0 <= G_MAX) || !Number.isFinite(post)) return null;
  const count = state.count + 1;
  const bc1 = 1 - b1 ** count;
  const bc2 = 1 - b2 ** count;
  const c = adamCoefficients(b1, b2, eps, bc1, bc2);
  if (!(c.eps > 0)) return null;
  const keys = Object.keys(grads);
  const mNext = new Float64Array(keys.length);
  const uMax = new Float64Array(keys.length);
  for (let j = 0; j < keys.length; j++) {
    const k = keys[j]!;
    const g = grads[k]!;
    const p = params[k];
    if (!p || p.size !== g.size) return null; // applyUpdates names the mismatch
    const m = stateOf(state.mu, k, fn);
    const v = stateOf(state.nu, k, fn);
    const mb = stateBound(m) ?? measureMoments(m, v);
    const mn = (c.b1 * mb + c.c1 * g0) * MARGIN;
    const u = ((Math.abs(post) * c.r1 * mn) / c.eps) * MARGIN * MARGIN;
    let w = plan.weightBounds[k];
    if (w === undefined) w = plan.weightBounds[k] = p.storage.backend.maxAbs(p.buf, p.size);
    if (!((w + u) * MARGIN < FLT_SAFE)) return null;
    mNext[j] = mn;
    uMax[j] = u;
  }
  plan.beforeApply?.(grads);
  state.count = count;
  const ss = plan.weightSumSquares;
  const uss = plan.updateSumSquares;
  for (let j = 0; j < keys.length; j++) {
    const k = keys[j]!;
    const g = grads[k]!;
    const p = params[k]!;
    const m = state.mu[k]!;
    g.storage.backend.adamApply(
      g.buf,
      m.buf,
      state.nu[k]!.buf,
      p.buf,
      g.size,
      b1,
      b2,
      eps,
      bc1,
      bc2,
      pre,
      post,
      ss !== undefined,
      sums,
    );
    setStateBound(m, mNext[j]!);
    if (ss) {
      ss[k] = sums[0]!;
      if (uss) uss[k] = sums[1]!;
      plan.weightBounds[k] = Math.sqrt(sums[0]!) * MARGIN;
    } else plan.weightBounds[k] = (plan.weightBounds[k]! + uMax[j]!) * MARGIN;
  }
  return { updates: grads, state };
}

/** Per step, float32's roundings in the fused path's bounds (each a few ulps, 1e-7) with room to spare. */
const MARGIN = 1.001;
/** Half of float32's largest value: what the fused path's bounds must stay under. */
const FLT_SAFE = 1.7e38;
/**
 * The largest |g| the fused path takes: (1 − b2)·g² then stays finite, so v never becomes +Inf where b2 = 0 would
 * make 0·Inf a NaN (with b2 > 0 an infinite v only makes the step 0).
 */
const G_MAX = 1e18;
/** The fused path's two sums of squares. */
const sums = new Float64Array(2);

/**
 * max |m| of Adam's first moments where they are finite and the second moments v are finite and ≥ 0, else +Inf (the
 * fused path then does not run). Read where no bound is kept (after a restore or an unfused step), and kept: a
 * JavaScript loop over v (no kernel says "v ≥ 0"), once.
 */
function measureMoments(m: Tensor, v: Tensor): number {
  let mb = m.storage.backend.maxAbs(m.buf, m.size);
  const vd = v.data;
  if (!Number.isFinite(mb)) mb = Number.POSITIVE_INFINITY;
  else
    for (let i = 0; i < vd.length; i++)
      if (!(vd[i]! >= 0 && vd[i]! <= FLT_MAX)) {
        mb = Number.POSITIVE_INFINITY;
        break;
      }
  setStateBound(m, mb);
  return mb;
}
/** The largest finite float32. */
const FLT_MAX = 3.4028234663852886e38;

export interface RmsState extends StateRecord {
  readonly kind: 'scaleByRms';
  count: number;
  /** Running average of g². */
  readonly squareAvg: Params;
  /** Running average of g (centered only). */
  readonly gradAvg: Params | null;
}

/**
 * RMSprop's direction as PyTorch computes it: s ← α·s + (1 − α)·g², u = g / (√s + eps); centered, with
 * ḡ ← α·ḡ + (1 − α)·g, u = g / (√(s − ḡ²) + eps). (optax's scale_by_rms puts eps inside the root instead.)
 *
 * Tieleman & Hinton, Lecture 6.5 of "Neural Networks for Machine Learning", 2012; centered: Graves 2013.
 */
export function scaleByRms(
  opts: { alpha?: number; eps?: number; centered?: boolean } = {},
): GradientTransformation<RmsState> {
  const fn = 'scaleByRms';
  const alpha = checkNumber(opts.alpha ?? 0.99, 'alpha', fn, 0, 1);
  const eps = checkNumber(opts.eps ?? 1e-8, 'eps', fn, 0, Number.POSITIVE_INFINITY);
  const centered = opts.centered ?? false;
  return {
    kind: fn,
    init(params) {
      checkParams(params, fn);
      return {
        kind: fn,
        count: 0,
        squareAvg: zerosLikeParams(params),
        gradAvg: centered ? zerosLikeParams(params) : null,
      };
    },
    update(grads, state) {
      state.count++;
      for (const [k, g] of Object.entries(grads)) {
        const s = stateOf(state.squareAvg, k, fn).data;
        const m = state.gradAvg ? stateOf(state.gradAvg, k, fn).data : null;
        const d = g.data;
        for (let i = 0; i < d.length; i++) {
          const gi = d[i]!;
          const si = alpha * s[i]! + (1 - alpha) * gi * gi;
          s[i] = si;
          let avg = si;
          if (m) {
            const mi = alpha * m[i]! + (1 - alpha) * gi;
            m[i] = mi;
            avg = si - mi * mi;
          }
          d[i] = gi / (Math.sqrt(avg) + eps);
        }
      }
      return { updates: grads, state };
    },
  };
}

export interface TraceState extends StateRecord {
  readonly kind: 'trace';
  count: number;
  /** The momentum buffers. */
  readonly momentum: Params;
}

/**
 * Momentum as PyTorch's SGD: b ← μ·b + (1 − dampening)·g (b = g at the first step), then u = b, or with Nesterov
 * u = g + μ·b.
 *
 * Polyak, "Some methods of speeding up the convergence of iteration methods", 1964; Sutskever et al., "On the
 * importance of initialization and momentum in deep learning", ICML 2013 (Nesterov form).
 *
 * @param opts decay μ (the momentum, default 0.9), nesterov (false), dampening (0)
 */
export function trace(
  opts: { decay?: number; nesterov?: boolean; dampening?: number } = {},
): GradientTransformation<TraceState> {
  const fn = 'trace';
  const mu = checkNumber(opts.decay ?? 0.9, 'decay (momentum)', fn, 0, 1);
  const damp = checkNumber(opts.dampening ?? 0, 'dampening', fn, 0, 1);
  const nesterov = opts.nesterov ?? false;
  return {
    kind: fn,
    init(params) {
      checkParams(params, fn);
      return { kind: fn, count: 0, momentum: zerosLikeParams(params) };
    },
    update(grads, state) {
      const first = state.count === 0;
      state.count++;
      for (const [k, g] of Object.entries(grads)) {
        const b = stateOf(state.momentum, k, fn);
        const be = g.storage.backend;
        if (first) be.copy(g.buf, 0, b.buf, 0, g.size);
        else {
          be.scale(b.buf, b.size, mu);
          be.axpy(1 - damp, g.buf, b.buf, g.size);
        }
        if (nesterov) be.axpy(mu, b.buf, g.buf, g.size);
        else be.copy(b.buf, 0, g.buf, 0, g.size);
      }
      return { updates: grads, state };
    },
  };
}

export interface DecayState extends StateRecord {
  readonly kind: 'addDecayedWeights';
}

/**
 * Adds weightDecay·p to the updates. Before an adaptive scaling (`chain(addDecayedWeights(wd), scaleByAdam())`) this
 * is L2 regularisation, PyTorch's `Adam(weight_decay=...)`; after it (`chain(scaleByAdam(), addDecayedWeights(wd),
 * scaleByLearningRate(lr))`) it is decoupled weight decay, AdamW (Loshchilov & Hutter, ICLR 2019).
 *
 * @param weightDecay the coefficient
 * @param opts mask: which parameters to decay (default all); e.g. `(path) => !path.endsWith('bias')`
 */
export function addDecayedWeights(
  weightDecay: number,
  opts: { mask?: (path: string) => boolean } = {},
): GradientTransformation<DecayState> {
  const fn = 'addDecayedWeights';
  checkNumber(weightDecay, 'weightDecay', fn, 0, Number.POSITIVE_INFINITY);
  const mask = opts.mask;
  return {
    kind: fn,
    init: () => ({ kind: fn }),
    update(grads, state, params) {
      if (weightDecay === 0) return { updates: grads, state };
      for (const [k, g] of Object.entries(grads)) {
        if (mask && !mask(k)) continue;
        const p = paramOf(params, k, fn);
        g.storage.backend.axpy(weightDecay, p.buf, g.buf, g.size);
      }
      return { updates: grads, state };
    },
  };
}
