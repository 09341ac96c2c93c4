/** Handling NaN and Inf gradients: skip the step (optax's apply_if_finite), or zero the NaNs. */

import { GradguardError } from '../base/errors.js';
import { chain, type GradientTransformation, type StateRecord, zeroInPlace } from '../optim/transform.js';

/** Thrown by `skipNonFinite` when more than `maxConsecutive` steps in a row had non-finite gradients. */
export class NonFiniteGradientsError extends GradguardError {
  static override readonly code = 'train.non-finite-gradients';
  override readonly name = 'NonFiniteGradientsError';
}

export interface SkipNonFiniteState extends StateRecord {
  readonly kind: 'skipNonFinite';
  /** Updates seen (skipped or not). */
  count: number;
  /** Whether the last update was skipped. */
  skipped: boolean;
  /** NaN/Inf values in the last update's gradients. */
  nonFiniteCount: number;
  /** Skipped updates in a row, up to the last one. */
  consecutive: number;
  /** Skipped updates in total. */
  totalSkipped: number;
}

export interface SkipNonFiniteOptions {
  /** How many non-finite steps in a row to skip before giving up (default 10). */
  maxConsecutive?: number;
  /**
   * What giving up means: 'throw' (default) raises NonFiniteGradientsError; 'apply' lets the non-finite update through,
   * as optax's apply_if_finite does.
   */
  onGiveUp?: 'throw' | 'apply';
}

function link(opts: SkipNonFiniteOptions): GradientTransformation<SkipNonFiniteState> {
  const max = opts.maxConsecutive ?? 10;
  if (!(Number.isInteger(max) && max >= 0))
    throw new RangeError(`clip.skipNonFinite(): maxConsecutive must be a non-negative integer, got ${String(max)}`);
  const onGiveUp = opts.onGiveUp ?? 'throw';
  if (onGiveUp !== 'throw' && onGiveUp !== 'apply')
    throw new TypeError(`clip.skipNonFinite(): onGiveUp must be 'throw' or 'apply', got '${String(onGiveUp)}'`);
  return {
    kind: 'skipNonFinite',
    init: () => ({
      kind: 'skipNonFinite',
      count: 0,
      skipped: false,
      nonFiniteCount: 0,
      consecutive: 0,
      totalSkipped: 0,
    }),
    update(grads, state) {
      let bad = 0;
      for (const g of Object.values(grads)) bad += g.storage.backend.countNonFinite(g.buf, g.size);
      state.count++;
      state.nonFiniteCount = bad;
      if (bad === 0) {
        state.skipped = false;
        state.consecutive = 0;
        return { updates: grads, state };
      }
      if (state.consecutive >= max) {
        if (onGiveUp === 'throw') {
          throw new NonFiniteGradientsError(
            `clip.skipNonFinite(): the gradients held ${bad} NaN/Inf values for ${state.consecutive + 1} updates in a row (maxConsecutive: ${max}); training has diverged. Lower the learning rate, clip by global norm, or raise maxConsecutive`,
          );
        }
        state.skipped = false;
        state.consecutive++;
        return { updates: grads, state };
      }
      state.skipped = true;
      state.consecutive++;
      state.totalSkipped++;
      zeroInPlace(grads);
      return { updates: grads, state, halt: true };
    },
  };
}

/**
 * Skips an update whose gradients hold a NaN or an infinity: the parameters do not move and the transformations
 * after it in the chain do not run, so the optimizer's moments and step count stay as they were (optax's
 * apply_if_finite). Steps are counted in the state; after `maxConsecutive` skips in a row it gives up.
 *
 * Two forms, the same behaviour:
 * - a link: `optim.chain(clip.skipNonFinite(), clip.byGlobalNorm(1), optim.adam({ lr: 1e-3 }))`; put it first, since
 *   links before it have already run when it halts the chain;
 * - a wrapper: `clip.skipNonFinite(optim.adam({ lr: 1e-3 }), { maxConsecutive: 5 })`, as optax's
 *   `apply_if_finite(inner, max_consecutive_errors)`.
 *
 * @param optsOrInner options, or the transformation to protect
 * @param opts options when wrapping (maxConsecutive default 10, onGiveUp 'throw' | 'apply')
 * @returns the transformation; its state (first link of the chain when wrapping) records skipped, consecutive,
 *   totalSkipped and nonFiniteCount
 */
export function skipNonFinite(opts?: SkipNonFiniteOptions): GradientTransformation<SkipNonFiniteState>;
export function skipNonFinite<S>(
  inner: GradientTransformation<S>,
  opts?: SkipNonFiniteOptions,
): GradientTransformation<unknown>;
export function skipNonFinite(
  a?: SkipNonFiniteOptions | GradientTransformation<unknown>,
  b?: SkipNonFiniteOptions,
): GradientTransformation<unknown> {
  if (a && typeof (a as GradientTransformation).update === 'function') {
    return chain(link(b ?? {}), a as GradientTransformation<unknown>) as GradientTransformation<unknown>;
  }
  return link((a as SkipNonFiniteOptions | undefined) ?? {}) as GradientTransformation<unknown>;
}

export interface ZeroNansState extends StateRecord {
  readonly kind: 'zeroNans';
  count: number;
  /** NaN values replaced by 0 in the last update. */
  replaced: number;
  /** Whether any NaN was found in the last update. */
  found: boolean;
}

/**
 * Replaces NaN gradient values with 0 (infinities are kept), as optax's zero_nans. Cheap insurance for rare NaNs in
 * a few elements; for a diverging step, prefer `skipNonFinite`.
 * @example optim.chain(clip.zeroNans(), optim.sgd({ lr: 0.1 }))
 */
export function zeroNans(): GradientTransformation<ZeroNansState> {
  return {
    kind: 'zeroNans',
    init: () => ({ kind: 'zeroNans', count: 0, replaced: 0, found: false }),
    update(grads, state) {
      let replaced = 0;
      for (const g of Object.values(grads)) {
        if (g.storage.backend.countNonFinite(g.buf, g.size) === 0) continue;
        const d = g.data;
        for (let i = 0; i < d.length; i++) {
          if (Number.isNaN(d[i]!)) {
            d[i] = 0;
            replaced++;
          }
        }
      }
      state.count++;
      state.replaced = replaced;
      state.found = replaced > 0;
      return { updates: grads, state };
    },
  };
}
