/**
 * The optimizers, each a chain of building blocks (optax's alias.py) with torch.optim's semantics and defaults, so the
 * same hyperparameters give the same numbers as PyTorch.
 */
import type { Schedule } from './schedules.js';
import { type ChainState, chain, type GradientTransformation } from './transform.js';
import { addDecayedWeights, scaleByAdam, scaleByLearningRate, scaleByRms, trace } from './transforms.js';

function opts<T extends object>(o: T | undefined, fn: string): T {
  if (!o || typeof o !== 'object')
    throw new TypeError(`${fn}(): pass an options object with at least lr, e.g. ${fn}({ lr: 1e-3 })`);
  if (!('lr' in o)) throw new TypeError(`${fn}(): lr is required, e.g. ${fn}({ lr: 1e-3 })`);
  return o;
}

export interface SgdOptions {
  /** Learning rate or schedule. */
  lr: number | Schedule;
  /** Momentum μ (default 0: plain SGD). */
  momentum?: number;
  /** Dampening of the momentum (default 0). */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient, PyTorch's weight_decay (default 0). */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay, as torch.optim.SGD:
 * g ← g + wd·p; b ← μ·b + (1 − dampening)·g; p ← p − lr·(nesterov ? g + μ·b : b).
 * @example const tx = optim.sgd({ lr: 0.1, momentum: 0.9, nesterov: true });
 */
export function sgd(o: SgdOptions): GradientTransformation<ChainState> {
  const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = opts(o, 'sgd');
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new RangeError('sgd(): Nesterov momentum requires a momentum > 0 and zero dampening');
  }
  return chain(
    ...(weightDecay ? [addDecayedWeights(weightDecay)] : []),
    ...(momentum ? [trace({ decay: momentum, nesterov, dampening })] : []),
    scaleByLearningRate(lr),
  );
}

export interface AdamAliasOptions {
  /** Learning rate or schedule. */
  lr: number | Schedule;
  b1?: number;
  b2?: number;
  eps?: number;
  /** Adam: L2 penalty added to the gradient (PyTorch's Adam weight_decay). AdamW: decoupled decay (default 0.01). */
  weightDecay?: number;
  /** AdamW only: which parameters to decay (default all), e.g. `(path) => !path.endsWith('bias')`. */
  mask?: (path: string) => boolean;
  /** AMSGrad (PyTorch's `amsgrad=True`; default false): see `scaleByAdam`. */
  amsgrad?: boolean;
}

function adamOpts(o: AdamAliasOptions) {
  return {
    ...(o.b1 !== undefined ? { b1: o.b1 } : {}),
    ...(o.b2 !== undefined ? { b2: o.b2 } : {}),
    ...(o.eps !== undefined ? { eps: o.eps } : {}),
    ...(o.amsgrad !== undefined ? { amsgrad: o.amsgrad } : {}),
  };
}

/**
 * Adam as torch.optim.Adam: g ← g + wd·p (if weightDecay), then `scaleByAdam` and −lr. Equal to PyTorch's numbers:
 * bias-corrected moments and eps added outside the square root.
 *
 * Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
 *
 * @example const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
 */
export function adam(o: AdamAliasOptions): GradientTransformation<ChainState> {
  const a = opts(o, 'adam');
  if (a.mask) throw new TypeError('adam(): mask applies to decoupled weight decay; use adamw({ mask })');
  return chain(
    ...(a.weightDecay ? [addDecayedWeights(a.weightDecay)] : []),
    scaleByAdam(adamOpts(a)),
    scaleByLearningRate(a.lr),
  );
}

/**
 * AdamW as torch.optim.AdamW: Adam's direction plus decoupled weight decay, p ← p − lr·(m̂/(√v̂ + eps) + wd·p)
 * (PyTorch's default weightDecay 0.01).
 *
 * Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
 *
 * @example optim.adamw({ lr: 1e-3, weightDecay: 0.05, mask: (p) => p.endsWith('weight') })
 */
export function adamw(o: AdamAliasOptions): GradientTransformation<ChainState> {
  const a = opts(o, 'adamw');
  return chain(
    scaleByAdam(adamOpts(a)),
    addDecayedWeights(a.weightDecay ?? 0.01, a.mask ? { mask: a.mask } : {}),
    scaleByLearningRate(a.lr),
  );
}

export interface RmspropOptions {
  /** Learning rate or schedule (PyTorch's default 0.01). */
  lr: number | Schedule;
  /** Decay of the squared-gradient average (default 0.99). */
  alpha?: number;
  eps?: number;
  /** L2 penalty added to the gradient (default 0). */
  weightDecay?: number;
  /** Momentum on the scaled update (default 0). */
  momentum?: number;
  /** Divide by the centred second moment (an estimate of the variance) (default false). */
  centered?: boolean;
}

/**
 * RMSprop as torch.optim.RMSprop: g ← g + wd·p; u = g/(√s + eps) (centred: √(s − ḡ²)); with momentum
 * b ← μ·b + u; p ← p − lr·b.
 * @example optim.rmsprop({ lr: 1e-3 })
 */
export function rmsprop(o: RmspropOptions): GradientTransformation<ChainState> {
  const { lr, alpha, eps, weightDecay = 0, momentum = 0, centered } = opts(o, 'rmsprop');
  return chain(
    ...(weightDecay ? [addDecayedWeights(weightDecay)] : []),
    scaleByRms({
      ...(alpha !== undefined ? { alpha } : {}),
      ...(eps !== undefined ? { eps } : {}),
      ...(centered !== undefined ? { centered } : {}),
    }),
    ...(momentum ? [trace({ decay: momentum })] : []),
    scaleByLearningRate(lr),
  );
}
