/** Adaptive gradient clipping (AGC), unit-wise relative to the weights. */
import { type GradientTransformation, paramOf, type StateRecord } from '../optim/transform.js';

export interface AdaptiveState extends StateRecord {
  readonly kind: 'clipAdaptive';
  count: number;
  /** Units (output rows; whole tensors for biases) scaled down in the last update. */
  clippedUnits: number;
  /** Units examined in the last update. */
  totalUnits: number;
  /** Whether any unit was scaled down. */
  clipped: boolean;
}

/**
 * Adaptive gradient clipping (Brock et al. 2021): for every unit i of every parameter, a row W[i, ...] of a weight
 * [out, ...] or the whole of a vector, G_i ← G_i·(λ·max(‖W_i‖, eps) / ‖G_i‖) when ‖G_i‖ > λ·max(‖W_i‖, eps). A
 * gradient is clipped when it would change a unit's weights by more than the fraction λ of their size, which lets
 * normalizer-free networks train at large batch sizes. Matches timm's `adaptive_clip_grad` on PyTorch layouts.
 *
 * Brock, De, Smith & Simonyan, "High-Performance Large-Scale Image Recognition Without Normalization", ICML 2021.
 *
 * @param clipping λ, the largest ratio ‖G_i‖ / ‖W_i‖ (default 0.01)
 * @param opts eps (default 1e-3, keeps zero-initialised weights trainable), exclude (paths to leave alone; the
 *   paper does not clip the final classifier)
 * @example optim.chain(clip.adaptive(0.01, { exclude: (p) => p.startsWith('fc.') }), optim.sgd({ lr: 0.1, momentum: 0.9 }))
 */
export function adaptive(
  clipping = 0.01,
  opts: { eps?: number; exclude?: (path: string) => boolean } = {},
): GradientTransformation<AdaptiveState> {
  if (typeof clipping !== 'number' || !(clipping > 0))
    throw new RangeError(`clip.adaptive(): clipping must be a positive number, got ${String(clipping)}`);
  const eps = opts.eps ?? 1e-3;
  if (!(eps >= 0)) throw new RangeError(`clip.adaptive(): eps must be a non-negative number, got ${String(opts.eps)}`);
  return {
    kind: 'clipAdaptive',
    init: () => ({ kind: 'clipAdaptive', count: 0, clippedUnits: 0, totalUnits: 0, clipped: false }),
    update(grads, state, params) {
      let clipped = 0;
      let total = 0;
      for (const [k, g] of Object.entries(grads)) {
        if (opts.exclude?.(k)) continue;
        const p = paramOf(params, k, 'clip.adaptive');
        const units = p.ndim <= 1 ? 1 : p.shape[0]!;
        const len = units ? g.size / units : 0;
        const gd = g.data;
        const pd = p.data;
        for (let u = 0; u < units; u++) {
          const o = u * len;
          let gs = 0;
          let ps = 0;
          for (let i = 0; i < len; i++) {
            gs += gd[o + i]! * gd[o + i]!;
            ps += pd[o + i]! * pd[o + i]!;
          }
          const maxNorm = Math.max(Math.sqrt(ps), eps) * clipping;
          const gn = Math.sqrt(gs);
          total++;
          if (!(gn < maxNorm)) {
            const s = maxNorm / Math.max(gn, 1e-6);
            for (let i = 0; i < len; i++) gd[o + i]! *= s;
            clipped++;
          }
        }
      }
      state.count++;
      state.clippedUnits = clipped;
      state.totalUnits = total;
      state.clipped = clipped > 0;
      return { updates: grads, state };
    },
  };
}
