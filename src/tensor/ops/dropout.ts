/** Dropout: a seeded random mask, applied with the backend's multiply. */

import { Binary } from '../../backend/types.js';
import { ArgumentError } from '../errors.js';
import { type RandomSource, toRng } from '../rng.js';
import { fromOp, type Tensor } from '../tensor.js';
import { alloc, assertTensor, stridesOf } from './util.js';

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the rest by 1/(1−p); the identity
 * otherwise. The mask is drawn from the given seed or RNG.
 */
export function dropout(x: Tensor, p: number, opts: { training?: boolean; rng?: RandomSource } = {}): Tensor {
  assertTensor(x, 'input', 'dropout');
  if (!(p >= 0 && p <= 1)) throw new ArgumentError(`dropout(): p must be a probability in [0, 1], got ${p}`);
  const training = opts.training ?? true;
  if (!training || p === 0) return x;
  const rng = toRng(opts.rng, 'dropout');
  const mask = alloc(x.shape);
  const md = mask.data;
  const scale = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < md.length; i++) md[i] = rng.uniform() < p ? 0 : scale;
  const out = alloc(x.shape);
  const be = out.storage.backend;
  const shape = x.shape;
  const contiguous = stridesOf(shape);
  be.binary(Binary.Mul, x.buf, mask.buf, out.buf, shape, contiguous, contiguous);
  return fromOp('dropout', out.storage, shape, [x], (g) => {
    const gx = alloc(shape);
    be.binary(Binary.Mul, g.buf, mask.buf, gx.buf, shape, contiguous, contiguous);
    return [gx];
  });
}
