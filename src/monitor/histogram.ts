/**
 * Per-layer histograms of gradients, weights and activations, as TensorBoard's `add_histogram` and W&B's `watch`
 * draw them: `bins` equal-width buckets over [min, max] of the finite values (TensorBoard's own default is 30), with
 * the count, sum and sum of squares beside them, so a histogram maps one-to-one onto TensorBoard's HistogramProto.
 *
 * `HistogramRecorder` is a `StepObserver` of its own (the trainer takes several), so the `Monitor`'s every-step path
 * pays nothing for it: on every `every`-th step it reads each layer's output (a forward hook on each module that owns
 * parameters), and after the backward pass each layer's weights (before the update) and raw gradients.
 *
 * @example
 * const rec = new HistogramRecorder(model, { every: 50, onRecord: (r) => store.logHistograms(id, r.step, r.layers) });
 * rec.attach(); // then pass it to the trainer in `observers`
 */

import { GradguardError } from '../base/errors.js';
import type { AnyModule } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { firstTensor } from './first-tensor.js';
import type { StepObserver } from './monitor.js';

/** What a histogram is of. */
export type HistogramKind = 'grad' | 'weight' | 'act';
export const HISTOGRAM_KINDS: readonly HistogramKind[] = ['grad', 'weight', 'act'];

/** The default number of buckets (TensorBoard's). */
export const DEFAULT_BINS = 30;

/** One histogram: equal-width buckets over [min, max] (see {@link bucketLimits}). */
export interface Histogram {
  /** Smallest and largest finite value; NaN when there is none. */
  min: number;
  max: number;
  /** How many finite values were counted. */
  num: number;
  sum: number;
  sumSquares: number;
  /** NaN and ±Infinity values: not in the buckets. */
  nonFinite: number;
  /** The bucket counts, `counts.length` buckets. */
  counts: Uint32Array;
}

/** One layer's histograms on one step; a kind is absent when the layer had none (no gradient, did not run). */
export interface LayerHistograms {
  name: string;
  grad?: Histogram;
  weight?: Histogram;
  act?: Histogram;
}

/** What a recorder hands over on each recorded step. */
export interface HistogramRecord {
  step: number;
  layers: LayerHistograms[];
}

/** A bad option of the recorder. */
export class HistogramError extends GradguardError {
  static override readonly code: string = 'monitor.histogram';
  override readonly name: string = 'HistogramError';
}

/**
 * The histogram of the values of one or more arrays, in two passes (min/max/sums, then buckets).
 * @param parts the arrays (a layer's parameters together)
 * @param bins the number of equal-width buckets, >= 1
 */
export function histogram(parts: readonly ArrayLike<number>[], bins = DEFAULT_BINS): Histogram {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let num = 0;
  let sum = 0;
  let ss = 0;
  let nonFinite = 0;
  for (const a of parts) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i]!;
      if (!Number.isFinite(v)) {
        nonFinite++;
        continue;
      }
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      ss += v * v;
      num++;
    }
  }
  const counts = new Uint32Array(bins);
  if (num === 0) return { min: Number.NaN, max: Number.NaN, num, sum, sumSquares: ss, nonFinite, counts };
  const [lo, hi] = range(min, max);
  const scale = bins / (hi - lo);
  for (const a of parts) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i]!;
      if (!Number.isFinite(v)) continue;
      const b = Math.floor((v - lo) * scale);
      counts[b < 0 ? 0 : b >= bins ? bins - 1 : b]!++;
    }
  }
  return { min, max, num, sum, sumSquares: ss, nonFinite, counts };
}

/** The interval the buckets span: [min, max], widened to [min - 0.5, min + 0.5] when every value is the same. */
function range(min: number, max: number): [number, number] {
  return max > min ? [min, max] : [min - 0.5, min + 0.5];
}

/**
 * The right edges of a histogram's buckets (TensorBoard's `bucket_limit`); the first bucket starts at `min` (or
 * `min - 0.5` when all values were equal). Empty for a histogram of no finite value.
 */
export function bucketLimits(h: Histogram): number[] {
  if (h.num === 0) return [];
  const [lo, hi] = range(h.min, h.max);
  const n = h.counts.length;
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? hi : lo + ((hi - lo) * (i + 1)) / n));
}

/** Options of {@link HistogramRecorder}. */
export interface HistogramRecorderOptions {
  /** Record every `every`-th step (step 0 included); default 50. */
  every?: number;
  /** Buckets per histogram; default 30. */
  bins?: number;
  onRecord?: (r: HistogramRecord) => void;
}

interface LayerSlot {
  name: string;
  params: string[];
  act: Histogram | undefined;
}

/** Records per-layer histograms on every `every`-th step (see the module note). */
export class HistogramRecorder implements StepObserver {
  readonly every: number;
  readonly bins: number;
  readonly #onRecord: ((r: HistogramRecord) => void) | undefined;
  readonly #layers = new Map<string, LayerSlot>();
  readonly #byModule = new Map<AnyModule, LayerSlot>();
  #removers: (() => void)[] = [];
  #active = false;
  #step = 0;
  #record: HistogramRecord | null = null;

  constructor(model: AnyModule, opts: HistogramRecorderOptions = {}) {
    this.every = checkPosInt('every', opts.every ?? 50);
    this.bins = checkPosInt('bins', opts.bins ?? DEFAULT_BINS);
    this.#onRecord = opts.onRecord;
    const modules = new Map<string, AnyModule>(model.namedModules());
    for (const [pname] of model.namedParameters()) {
      const cut = pname.lastIndexOf('.');
      const lname = cut < 0 ? '(root)' : pname.slice(0, cut);
      let slot = this.#layers.get(lname);
      if (!slot) {
        slot = { name: lname, params: [], act: undefined };
        this.#layers.set(lname, slot);
        const m = modules.get(cut < 0 ? '' : lname);
        if (m && cut >= 0) this.#byModule.set(m, slot);
      }
      slot.params.push(pname);
    }
  }

  /** Registers a forward hook on each module that owns parameters. Idempotent. @returns this */
  attach(): this {
    if (this.#removers.length) return this;
    for (const [m, slot] of this.#byModule) {
      this.#removers.push(
        m.registerForwardHook((_m, _x, y) => {
          const t = firstTensor(y);
          if (this.#active && t) slot.act = histogram([t.data], this.bins);
        }),
      );
    }
    return this;
  }

  /** Removes the hooks `attach()` registered. */
  detach(): void {
    for (const r of this.#removers) r();
    this.#removers = [];
  }

  beginStep(step: number): boolean {
    this.#step = step;
    this.#active = step % this.every === 0;
    this.#record = null;
    if (this.#active) for (const s of this.#layers.values()) s.act = undefined;
    return this.#active;
  }

  afterBackward(params: Record<string, Tensor>): void {
    if (!this.#active) return;
    const layers: LayerHistograms[] = [];
    for (const s of this.#layers.values()) {
      const ws: Float32Array[] = [];
      const gs: Float32Array[] = [];
      for (const p of s.params) {
        const t = params[p];
        if (!t) continue;
        ws.push(t.data);
        const g = t.grad;
        if (g) gs.push(g.data);
      }
      const l: LayerHistograms = { name: s.name };
      if (gs.length) l.grad = histogram(gs, this.bins);
      if (ws.length) l.weight = histogram(ws, this.bins);
      if (s.act) l.act = s.act;
      layers.push(l);
    }
    this.#record = { step: this.#step, layers };
  }

  afterUpdate(): void {}

  /** Nothing to measure: having it tells the trainer this observer never reads the updates (Adam may apply them). */
  afterApply(): void {}

  endStep(): void {
    if (this.#active && this.#record) this.#onRecord?.(this.#record);
    this.#active = false;
    this.#record = null;
  }
}

function checkPosInt(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new HistogramError(`HistogramRecorder: ${what} must be a positive integer, got ${String(v)}`);
  }
  return v;
}
