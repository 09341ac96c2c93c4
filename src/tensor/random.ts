/** Random tensors. Each takes a seed or an Rng; none reads global randomness. */
import { type RandomSource, toRng } from './rng.js';
import { empty, type Tensor, type TensorOptions } from './tensor.js';

export interface RandomOptions extends TensorOptions {
  /** An integer seed; the same seed gives the same values. */
  seed?: number;
  /** An Rng to draw from (advances it); takes precedence over `seed`. */
  rng?: RandomSource;
}

function source(opts: RandomOptions, fn: string) {
  return toRng(opts.rng ?? opts.seed, fn);
}

/** Standard normal values N(0, 1) (like `torch.randn`). */
export function randn(shape: readonly number[], opts: RandomOptions): Tensor {
  const rng = source(opts, 'randn');
  const t = empty(shape);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = rng.normal();
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** Uniform values in [low, high) (like `torch.rand`, default [0, 1)). */
export function rand(shape: readonly number[], opts: RandomOptions & { low?: number; high?: number }): Tensor {
  const rng = source(opts, 'rand');
  const lo = opts.low ?? 0;
  const span = (opts.high ?? 1) - lo;
  const t = empty(shape);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = lo + span * rng.uniform();
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** Uniform integers in [low, high) stored as float32 (class labels, indices). */
export function randint(low: number, high: number, shape: readonly number[], opts: RandomOptions): Tensor {
  const rng = source(opts, 'randint');
  const t = empty(shape);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = low + rng.int(high - low);
  return t;
}
