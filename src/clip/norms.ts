/** Norms of gradient sets, computed by the backend's reduction kernels (sums in float64). */
import type { Params } from '../optim/transform.js';

/** Which norm: the Euclidean norm (2) or the largest absolute value ('inf'). */
export type NormType = 2 | 'inf';

/** ‖g‖ of one tensor. */
export function tensorNorm(g: Params[string], normType: NormType = 2): number {
  const be = g.storage.backend;
  return normType === 'inf' ? be.maxAbs(g.buf, g.size) : Math.sqrt(be.sumSquares(g.buf, g.size));
}

/**
 * The norm of all tensors taken together, as torch.nn.utils.clip_grad_norm_ computes it: √(Σ ‖gᵢ‖²) for 2, max |g|
 * for 'inf'. NaN if any value is NaN; Infinity if one is infinite.
 * @example clip.globalNorm(grads) // 3.7
 */
export function globalNorm(grads: Params, normType: NormType = 2): number {
  if (normType !== 2 && normType !== 'inf')
    throw new TypeError(`globalNorm(): normType must be 2 or 'inf', got ${String(normType)}`);
  let acc = 0;
  for (const g of Object.values(grads)) {
    const be = g.storage.backend;
    if (normType === 'inf') {
      const m = be.maxAbs(g.buf, g.size);
      if (!(m <= acc)) acc = m; // NaN wins
    } else acc += be.sumSquares(g.buf, g.size);
  }
  return normType === 'inf' ? acc : Math.sqrt(acc);
}
