/** AutoClip: clipping at a percentile of the gradient norms seen so far. */
import type { GradientTransformation, StateRecord } from '../optim/transform.js';
import { globalNorm } from './norms.js';

export interface AutoClipState extends StateRecord {
  readonly kind: 'clipAuto';
  count: number;
  /** The finite global norms seen so far, sorted ascending (the last `historySize` when that is set). */
  history: number[];
  /** The same norms in the order they came (only kept with `historySize`, to know which to drop). */
  recent: number[];
  /** The global norm of the last update before clipping. */
  normBefore: number;
  /** The clipping threshold of the last update (the percentile). */
  threshold: number;
  /** Whether the last update was scaled down. */
  clipped: boolean;
}

/** numpy.percentile with linear interpolation over a sorted array. */
function percentile(sorted: readonly number[], p: number): number {
  const pos = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function insertSorted(a: number[], v: number): void {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  a.splice(lo, 0, v);
}

function removeSorted(a: number[], v: number): void {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  if (a[lo] === v) a.splice(lo, 1);
}

/**
 * AutoClip (Seetharaman et al. 2020): each step appends the global gradient norm to a history and clips the
 * gradients to the p-th percentile of that history (including the current norm), with the global-norm formula
 * g·min(1, threshold / (‖g‖ + 1e-6)). This follows the authors' reference code: the percentile is numpy's
 * (linear interpolation) over every norm seen so far; non-finite norms are not added (one NaN would make every later
 * threshold NaN) and such steps pass through unclipped.
 *
 * Seetharaman, Wichern, Pardo & Le Roux, "AutoClip: Adaptive Gradient Clipping for Source Separation Networks",
 * MLSP 2020.
 *
 * @param opts percentile (default 10, the paper's choice), historySize (keep only the last N norms; default all)
 * @example optim.chain(clip.autoClip({ percentile: 10 }), optim.adam({ lr: 1e-3 }))
 */
export function autoClip(
  opts: { percentile?: number; historySize?: number } = {},
): GradientTransformation<AutoClipState> {
  const p = opts.percentile ?? 10;
  if (typeof p !== 'number' || !(p >= 0 && p <= 100))
    throw new RangeError(`clip.autoClip(): percentile must be in [0, 100], got ${String(opts.percentile)}`);
  const size = opts.historySize;
  if (size !== undefined && !(Number.isInteger(size) && size > 0)) {
    throw new RangeError(`clip.autoClip(): historySize must be a positive integer, got ${String(size)}`);
  }
  return {
    kind: 'clipAuto',
    init: () => ({
      kind: 'clipAuto',
      count: 0,
      history: [],
      recent: [],
      normBefore: 0,
      threshold: Number.NaN,
      clipped: false,
    }),
    update(grads, state) {
      const norm = globalNorm(grads);
      state.count++;
      state.normBefore = norm;
      state.clipped = false;
      if (!Number.isFinite(norm)) return { updates: grads, state };
      insertSorted(state.history, norm);
      if (size !== undefined) {
        state.recent.push(norm);
        if (state.recent.length > size) removeSorted(state.history, state.recent.shift()!);
      }
      const thr = percentile(state.history, p);
      state.threshold = thr;
      const coef = Math.min(thr / (norm + 1e-6), 1);
      if (coef < 1) {
        for (const g of Object.values(grads)) g.storage.backend.scale(g.buf, g.size, coef);
        state.clipped = true;
      }
      return { updates: grads, state };
    },
  };
}
