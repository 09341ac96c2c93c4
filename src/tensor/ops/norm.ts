/**
 * Normalisation ops: batch normalisation (alone or with the ReLU after it) and layer normalisation, forward and
 * backward on the backend's kernels (batchNorm/batchNormGrad, batchNormRelu/batchNormReluGrad, layerNorm/layerNormGrad:
 * C on native and wasm, the reference in backend/js.ts).
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { type BackwardFn, fromOp, type Tensor } from '../tensor.js';
import { reluGradSum } from './elementwise.js';
import { alloc, assertTensor, reluFolded } from './util.js';

export interface BatchNormOptions {
  /** Use batch statistics (and update the running ones) rather than the running statistics. */
  training?: boolean;
  /** Running statistics update: r ← (1 − momentum)·r + momentum·batch (PyTorch's default 0.1). */
  momentum?: number;
  eps?: number;
}

/** The batch statistics a normalisation in training took of its input, per channel C. */
export interface BatchMoments {
  /** the batch mean of each channel (float32) */
  mean: Tensor;
  /** 1/√(var + eps) of each channel, var the biased batch variance (float32) */
  invstd: Tensor;
  eps: number;
  /** values per channel: N times the positions */
  count: number;
}

const batchMomentsOf = new WeakMap<Tensor, BatchMoments>();

/**
 * @internal The batch statistics that the last `batchNorm` / `batchNormRelu` in training took of x, if any: the
 * gradient monitor reads a layer's output moments from them where a BatchNorm normalises that output (one pass over
 * every convolution's output fewer). Read them at once (in the BatchNorm's forward hook): they are the op's own
 * tensors, released with it at the end of tidy().
 */
export function batchMoments(x: Tensor): BatchMoments | undefined {
  const bm = batchMomentsOf.get(x);
  return bm?.mean.storage.buf && bm.invstd.storage.buf ? bm : undefined;
}

/** `t`, or a tensor of `size` copies of `value` standing in for it (no weight: ones; no bias: zeros). */
function orConstant(t: Tensor | null | undefined, size: number, value: number): Tensor {
  if (t) return t;
  const c = alloc([size]);
  c.storage.backend.fill(c.buf, value, size);
  return c;
}

/**
 * Batch normalisation (Ioffe & Szegedy 2015) of x [N, C] or [N, C, ...] per channel C. In training the batch mean and
 * biased variance normalise, and the running statistics (if given) are updated in place with the unbiased variance,
 * as PyTorch; in evaluation the running statistics normalise.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions = {},
): Tensor {
  return batchNormOp('batchNorm', x, runningMean, runningVar, weight, bias, opts, false);
}

/**
 * relu(batchNorm(x, ...)) as one op (a BatchNorm followed by a ReLU: nn.Sequential's pair, ResNet's blocks): the
 * ReLU is applied in BatchNorm's output pass, and its gradient's mask (the output > 0) inside BatchNorm's backward
 * sums and output pass, so neither the normalised tensor nor the ReLU's gradient is written. The same numbers, bit
 * for bit, as the two ops.
 */
export function batchNormRelu(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions = {},
): Tensor {
  return batchNormOp('batchNormRelu', x, runningMean, runningVar, weight, bias, opts, true);
}

function batchNormOp(
  name: string,
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  opts: BatchNormOptions,
  relu: boolean,
): Tensor {
  assertTensor(x, 'input', name);
  if (x.ndim < 2) throw new ShapeError(`${name}(): input must be [N, C, ...], got shape [${x.shape}]`);
  const training = opts.training ?? true;
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  const [n, c] = x.shape as [number, number];
  const inner = x.size / (n * c);
  const m = n * inner;
  for (const [arg, t] of [
    ['weight', weight],
    ['bias', bias],
    ['runningMean', runningMean],
    ['runningVar', runningVar],
  ] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== c))
      throw new ShapeError(`${name}(): ${arg} must have shape [${c}], got [${t.shape}]`);
  }
  if (!training && (!runningMean || !runningVar))
    throw new ArgumentError(`${name}(): evaluation mode needs runningMean and runningVar`);
  if (training && m <= 1)
    throw new ShapeError(
      `${name}(): expected more than 1 value per channel when training, got input shape [${x.shape}]`,
    );
  const w = orConstant(weight, c, 1);
  const b = orConstant(bias, c, 0);
  const update = training && runningMean !== null && runningVar !== null;
  // the running statistics, or scratch the kernel neither reads nor writes (training without them)
  const rm = runningMean ?? alloc([c]);
  const rv = runningVar ?? rm;
  const mean = alloc([c]);
  const invstd = alloc([c]);
  const out = alloc(x.shape);
  const be = out.storage.backend;
  // NOTE: running statistics update even under noGrad, as PyTorch does in train mode
  const args = [x.buf, w.buf, b.buf, rm.buf, rv.buf, mean.buf, invstd.buf, out.buf] as const;
  if (relu) be.batchNormRelu(...args, n, c, inner, training, update, momentum, eps);
  else be.batchNorm(...args, n, c, inner, training, update, momentum, eps);
  if (training) batchMomentsOf.set(x, { mean, invstd, eps, count: m });
  const inputs: Tensor[] = [x];
  if (weight) inputs.push(weight);
  if (bias) inputs.push(bias);
  const backward: BackwardFn = (gy, needs) => {
    const gx = alloc(x.shape);
    const gw = alloc([c]);
    const gb = alloc([c]);
    const saved = [w.buf, mean.buf, invstd.buf, gx.buf, gw.buf, gb.buf] as const;
    // a gradient whose kernel folded the ReLU's mask in already (reluFolded) takes BatchNorm's backward alone
    if (relu && reluFolded.get(gy) !== y) be.batchNormReluGrad(x.buf, gy.buf, out.buf, ...saved, n, c, inner, training);
    else be.batchNormGrad(x.buf, gy.buf, ...saved, n, c, inner, training);
    const res: (Tensor | null)[] = [needs[0] ? gx : null];
    if (weight) res.push(needs[1] ? gw : null);
    if (bias) res.push(needs[weight ? 2 : 1] ? gb : null);
    return res;
  };
  // a ReLU output that feeds two ops (a residual block's input): their gradients summed and masked in one pass
  const y = fromOp(name, out.storage, x.shape, inputs, backward, relu ? (g1, g2) => reluGradSum(g1, g2, y) : undefined);
  return y;
}

/**
 * Layer normalisation (Ba et al. 2016) over the trailing `normalizedShape` dimensions of x, with optional elementwise
 * weight and bias of that shape.
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  assertTensor(x, 'input', 'layerNorm');
  const k = normalizedShape.length;
  if (k === 0 || k > x.ndim || normalizedShape.some((d, i) => d !== x.shape[x.ndim - k + i])) {
    throw new ShapeError(
      `layerNorm(): normalizedShape [${normalizedShape}] must match the trailing dimensions of the input [${x.shape}]`,
    );
  }
  const D = normalizedShape.reduce((p, d) => p * d, 1);
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && t.size !== D)
      throw new ShapeError(`layerNorm(): ${name} must have shape [${normalizedShape}], got [${t.shape}]`);
  }
  const rows = x.size / D;
  const w = orConstant(weight, D, 1);
  const b = orConstant(bias, D, 0);
  const mean = alloc([rows]);
  const rstd = alloc([rows]);
  const out = alloc(x.shape);
  const be = out.storage.backend;
  be.layerNorm(x.buf, w.buf, b.buf, mean.buf, rstd.buf, out.buf, rows, D, eps);
  const inputs: Tensor[] = [x];
  if (weight) inputs.push(weight);
  if (bias) inputs.push(bias);
  return fromOp('layerNorm', out.storage, x.shape, inputs, (gy, needs) => {
    const gx = alloc(x.shape);
    const gw = alloc(weight ? weight.shape : [D]);
    const gb = alloc(bias ? bias.shape : [D]);
    be.layerNormGrad(x.buf, gy.buf, w.buf, mean.buf, rstd.buf, gx.buf, gw.buf, gb.buf, rows, D);
    const res: (Tensor | null)[] = [needs[0] ? gx : null];
    if (weight) res.push(needs[1] ? gw : null);
    if (bias) res.push(needs[weight ? 2 : 1] ? gb : null);
    return res;
  });
}
