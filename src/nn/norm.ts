/** Normalisation layers: `BatchNorm1d`, `BatchNorm2d` (Ioffe & Szegedy 2015) and `LayerNorm` (Ba et al. 2016). */
import { batchNorm, layerNorm } from '../nn/functional.js';
import { batchNormRelu } from '../tensor/ops/norm.js';
import { full, type Tensor } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { checkSize } from './linear.js';
import { Module, registerKeepsNothing } from './module.js';

export interface BatchNormOptions {
  /** Added to the variance for stability (default 1e-5). */
  eps?: number;
  /**
   * Running statistics update r ← (1 − momentum)·r + momentum·batch (default 0.1); null for a cumulative average
   * (momentum 1/numBatchesTracked), as PyTorch's `momentum=None`.
   */
  momentum?: number | null;
  /** Whether to learn a per-channel scale `weight` (init 1) and shift `bias` (init 0) (default true). */
  affine?: boolean;
  /** Whether to keep running statistics for evaluation (default true); without them batch statistics are always used. */
  trackRunningStats?: boolean;
}

abstract class BatchNormBase extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;

  constructor(
    readonly numFeatures: number,
    opts: BatchNormOptions,
    private readonly fn: string,
  ) {
    super();
    checkSize(numFeatures, 'numFeatures', fn);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    if (!(this.eps >= 0)) throw new RangeError(`${fn}: eps must be a non-negative number, got ${opts.eps}`);
    if (this.momentum !== null && !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(`${fn}: momentum must be in [0, 1] or null (cumulative average), got ${opts.momentum}`);
    }
    const affine = opts.affine ?? true;
    const track = opts.trackRunningStats ?? true;
    this.weight = affine ? this.registerParameter('weight', full([numFeatures], 1)) : null;
    this.bias = affine ? this.registerParameter('bias', full([numFeatures], 0)) : null;
    this.runningMean = track ? this.registerBuffer('running_mean', full([numFeatures], 0)) : null;
    this.runningVar = track ? this.registerBuffer('running_var', full([numFeatures], 1)) : null;
    // NOTE: PyTorch keeps num_batches_tracked as an int64 scalar; here it is a float32 scalar (exact to 2^24 batches)
    this.numBatchesTracked = track ? this.registerBuffer('num_batches_tracked', full([], 0)) : null;
  }

  protected abstract checkInput(x: Tensor): void;

  forward(x: Tensor): Tensor {
    return this.#normalise(x, false);
  }

  /**
   * relu(forward(x)) as one op (batchNormRelu), with the same numbers and the same update of the running
   * statistics; forward hooks do not run (see `batchNormReLU`, which runs the pair and their hooks).
   */
  forwardRelu(x: Tensor): Tensor {
    return this.#normalise(x, true);
  }

  #normalise(x: Tensor, relu: boolean): Tensor {
    this.checkInput(x);
    if (x.shape[1] !== this.numFeatures) {
      throw new Error(
        `${this.fn}: input has ${x.shape[1]} channels (shape [${x.shape}]) but the layer expects ${this.numFeatures}`,
      );
    }
    const useBatch = this.training || !this.runningMean;
    let momentum = this.momentum ?? 0;
    if (this.training && this.numBatchesTracked) {
      const nbt = this.numBatchesTracked.data;
      nbt[0]! += 1;
      if (this.momentum === null) momentum = 1 / nbt[0]!;
    }
    // running statistics are updated in training and read in evaluation; without them batch statistics always serve
    return (relu ? batchNormRelu : batchNorm)(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: useBatch,
      momentum,
      eps: this.eps,
    });
  }

  protected override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.weight !== null}`;
  }
}

/**
 * Batch normalisation over [N, C] or [N, C, L] inputs, per channel C: in training the batch mean and (biased)
 * variance normalise and the running statistics are updated with the unbiased variance; in evaluation the running
 * statistics normalise. Parameters `weight`, `bias`; buffers `running_mean`, `running_var`, `num_batches_tracked`.
 *
 * Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift", 2015.
 *
 * @example new nn.BatchNorm1d(256).call(h); // h: [batch, 256]
 */
export class BatchNorm1d extends BatchNormBase {
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts, 'nn.BatchNorm1d');
  }
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3)
      throw new Error(`nn.BatchNorm1d: expected a 2-D or 3-D input [N, C] or [N, C, L], got shape [${x.shape}]`);
  }
}

/**
 * Batch normalisation over [N, C, H, W] inputs, per channel C (see `BatchNorm1d`).
 * @example new nn.BatchNorm2d(64).call(x); // x: [N, 64, H, W]
 */
export class BatchNorm2d extends BatchNormBase {
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts, 'nn.BatchNorm2d');
  }
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) throw new Error(`nn.BatchNorm2d: expected a 4-D input [N, C, H, W], got shape [${x.shape}]`);
  }
}

/**
 * Whether `bn` and `relu` are exactly an nn.BatchNorm1d or nn.BatchNorm2d and an nn.ReLU (no subclasses), both
 * without forward hooks that must see their own outputs now (Module.fusable), so that they may run as one op.
 */
export function fusesBatchNormReLU(bn: Module, relu: Module): bn is BatchNorm1d | BatchNorm2d {
  const c = bn.constructor as unknown;
  return (
    (c === BatchNorm1d || c === BatchNorm2d) && (relu.constructor as unknown) === ReLU && bn.fusable && relu.fusable
  );
}

/**
 * `relu.call(bn.call(x))`: as one op (batchNormRelu: the ReLU applied in BatchNorm's output pass, its mask folded
 * into BatchNorm's backward) where `fusesBatchNormReLU(bn, relu)`, both modules' hooks then seeing the ReLU's output
 * (ForwardHookOptions.fused); module by module otherwise. The same numbers either way.
 */
export function batchNormReLU(bn: Module, relu: Module, x: Tensor): Tensor {
  if (!fusesBatchNormReLU(bn, relu)) return relu.call(bn.call(x));
  const y = bn.forwardRelu(x);
  bn.runFusedHooks(x, y);
  relu.runFusedHooks(y, y);
  return y;
}

export interface LayerNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Whether to learn an elementwise `weight` (init 1) and `bias` (init 0) (default true). */
  elementwiseAffine?: boolean;
  /** Whether to learn the bias when elementwiseAffine (default true). */
  bias?: boolean;
}

/**
 * Layer normalisation over the trailing `normalizedShape` dimensions of each sample: (x − mean)/√(var + eps)·w + b,
 * the same in training and evaluation.
 *
 * Ba, Kiros & Hinton, "Layer Normalization", 2016.
 *
 * @example new nn.LayerNorm(512).call(h); // h: [batch, seq, 512]
 */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    for (const d of this.normalizedShape) checkSize(d, 'normalizedShape', 'nn.LayerNorm');
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter('weight', full(this.normalizedShape, 1)) : null;
    this.bias = affine && opts.bias !== false ? this.registerParameter('bias', full(this.normalizedShape, 0)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  protected override extraRepr(): string {
    return `[${this.normalizedShape}], eps=${this.eps}`;
  }
}

registerKeepsNothing(BatchNorm1d, BatchNorm2d, LayerNorm);
