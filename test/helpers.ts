/** Seeded inputs shaped for finite differences: away from kinks, without ties. */
import { Rng } from '../src/tensor/rng.js';
import { type Tensor, tensor } from '../src/tensor/tensor.js';
import '../src/tensor/methods.js';

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((p, d) => p * d, 1);
}

/** N(0, scale²) values plus `shift`, a leaf that requires grad. */
export function normal(shape: readonly number[], seed: number, scale = 1, shift = 0): Tensor {
  const rng = new Rng(seed);
  const v = Array.from({ length: sizeOf(shape) }, () => shift + scale * rng.normal());
  return tensor(v, shape, { requiresGrad: true });
}

/** Uniform values in [lo, hi), a leaf that requires grad. */
export function uniform(shape: readonly number[], seed: number, lo: number, hi: number): Tensor {
  const rng = new Rng(seed);
  const v = Array.from({ length: sizeOf(shape) }, () => lo + (hi - lo) * rng.uniform());
  return tensor(v, shape, { requiresGrad: true });
}

/** Values of either sign with |x| >= margin (for relu, abs and the like, whose derivative jumps at 0). */
export function awayFromZero(shape: readonly number[], seed: number, margin = 0.2, scale = 1): Tensor {
  const rng = new Rng(seed);
  const v = Array.from({ length: sizeOf(shape) }, () => {
    const z = rng.normal() * scale;
    return z < 0 ? z - margin : z + margin;
  });
  return tensor(v, shape, { requiresGrad: true });
}

/**
 * Distinct values at least `spacing` apart, in shuffled order, centred on 0 (for max, min, maximum and pooling,
 * whose gradient jumps where two values tie). `offset` shifts the whole grid: two grids offset by spacing/2 never tie.
 */
export function distinct(shape: readonly number[], seed: number, spacing = 0.1, offset = 0): Tensor {
  const n = sizeOf(shape);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  new Rng(seed).shuffle(order);
  const v = Array.from(order, (k) => (k - n / 2) * spacing + offset);
  return tensor(v, shape, { requiresGrad: true });
}

/** A leaf that does not require grad (targets, indices, fixed operands). */
export function constant(values: readonly number[], shape: readonly number[]): Tensor {
  return tensor(values, shape);
}
