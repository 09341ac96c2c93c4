/**
 * Losses: cross-entropy (fused with log-softmax), negative log-likelihood, mean squared error and binary
 * cross-entropy on logits, PyTorch's semantics and defaults, on the backend's kernels.
 */

import { ArgumentError, ShapeError } from '../errors.js';
import { fromOp, Tensor } from '../tensor.js';
import { expandTo } from './broadcast.js';
import { mul, sub } from './elementwise.js';
import { mean, sum } from './reduce.js';
import { alloc, assertTensor, broadcastShapes } from './util.js';

export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(r: string, fn: string): asserts r is Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') {
    throw new ArgumentError(`${fn}(): reduction '${r}' is not supported, please use one of mean, sum, none`);
  }
}

/** Class indices as a float32 tensor, validated against the number of classes. */
function targetTensor(
  targets: Tensor | ArrayLike<number>,
  rows: number,
  classes: number,
  ignoreIndex: number,
  fn: string,
): Tensor {
  const t =
    targets instanceof Tensor
      ? targets
      : (() => {
          const x = alloc([targets.length]);
          const d = x.data;
          for (let i = 0; i < targets.length; i++) d[i] = targets[i]!;
          return x;
        })();
  if (t.size !== rows) {
    throw new ShapeError(`${fn}(): got ${t.size} targets for ${rows} rows of logits; pass one class index per row`);
  }
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v !== ignoreIndex && (!Number.isInteger(v) || v < 0 || v >= classes)) {
      throw new ArgumentError(
        `${fn}(): target ${v} at position ${i} is not a class index in [0, ${classes}) (or ignoreIndex ${ignoreIndex})`,
      );
    }
  }
  return t;
}

/** Reduces per-row losses with a differentiable scale per row (mean divides by the number of counted rows). */
function reduceRows(
  losses: Float32Array,
  counted: number,
  reduction: Reduction,
): { value: number; perRowScale: number } {
  let s = 0;
  for (let i = 0; i < losses.length; i++) s += losses[i]!;
  if (reduction === 'sum') return { value: s, perRowScale: 1 };
  // NOTE: like PyTorch, a mean over zero counted rows is NaN (0/0)
  return { value: s / counted, perRowScale: 1 / counted };
}

export interface CrossEntropyOptions {
  reduction?: Reduction;
  /** ε in [0, 1]: the target distribution is (1−ε)·onehot + ε/C (Szegedy et al. 2016), as PyTorch's label_smoothing. */
  labelSmoothing?: number;
  /** Rows whose target equals this index contribute nothing (default −100, as PyTorch). */
  ignoreIndex?: number;
}

/**
 * Cross-entropy between logits [N, C] and class indices [N], fused with log-softmax (one stable pass; the gradient is
 * softmax − target). Mean reduction averages over rows whose target is not `ignoreIndex`.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor | ArrayLike<number>,
  opts: CrossEntropyOptions = {},
): Tensor {
  assertTensor(logits, 'input', 'crossEntropy');
  const reduction = opts.reduction ?? 'mean';
  checkReduction(reduction, 'crossEntropy');
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new ArgumentError(`crossEntropy(): labelSmoothing must be in [0, 1], got ${eps}`);
  const ignore = opts.ignoreIndex ?? -100;
  if (logits.ndim !== 2) {
    throw new ShapeError(`crossEntropy(): logits must be [batch, classes], got shape [${logits.shape}]; reshape first`);
  }
  const [rows, cols] = logits.shape as [number, number];
  const t = targetTensor(targets, rows, cols, ignore, 'crossEntropy');
  const be = logits.storage.backend;
  const probs = alloc([rows, cols]);
  const losses = alloc([rows]);
  be.crossEntropy(logits.buf, t.buf, probs.buf, losses.buf, rows, cols, eps, ignore);
  const td = t.data;
  let counted = 0;
  for (let i = 0; i < rows; i++) if (td[i] !== ignore) counted++;
  if (reduction === 'none') {
    return fromOp('crossEntropy', losses.storage, [rows], [logits], (g) => {
      const gx = alloc([rows, cols]);
      be.crossEntropyGrad(probs.buf, t.buf, g.buf, gx.buf, rows, cols, eps, ignore);
      return [gx];
    });
  }
  const { value, perRowScale } = reduceRows(losses.data, counted, reduction);
  const out = alloc([]);
  out.data[0] = value;
  return fromOp('crossEntropy', out.storage, [], [logits], (g) => {
    const scale = alloc([rows]);
    be.fill(scale.buf, g.item() * perRowScale, rows);
    const gx = alloc([rows, cols]);
    be.crossEntropyGrad(probs.buf, t.buf, scale.buf, gx.buf, rows, cols, eps, ignore);
    return [gx];
  });
}

/** Negative log-likelihood of log-probabilities [N, C] at class indices [N]. */
export function nllLoss(
  logProbs: Tensor,
  targets: Tensor | ArrayLike<number>,
  opts: { reduction?: Reduction; ignoreIndex?: number } = {},
): Tensor {
  assertTensor(logProbs, 'input', 'nllLoss');
  const reduction = opts.reduction ?? 'mean';
  checkReduction(reduction, 'nllLoss');
  const ignore = opts.ignoreIndex ?? -100;
  if (logProbs.ndim !== 2)
    throw new ShapeError(`nllLoss(): input must be [batch, classes], got shape [${logProbs.shape}]`);
  const [rows, cols] = logProbs.shape as [number, number];
  const t = targetTensor(targets, rows, cols, ignore, 'nllLoss');
  const losses = alloc([rows]);
  const be = logProbs.storage.backend;
  be.nllLoss(logProbs.buf, t.buf, losses.buf, rows, cols, ignore);
  const td = t.data;
  let counted = 0;
  for (let r = 0; r < rows; r++) if (td[r] !== ignore) counted++;
  if (reduction === 'none')
    return fromOp('nllLoss', losses.storage, [rows], [logProbs], (g) => {
      const gx = alloc([rows, cols]);
      be.nllLossGrad(t.buf, g.buf, gx.buf, rows, cols, ignore);
      return [gx];
    });
  const { value, perRowScale } = reduceRows(losses.data, counted, reduction);
  const out = alloc([]);
  out.data[0] = value;
  return fromOp('nllLoss', out.storage, [], [logProbs], (g) => {
    const scale = alloc([rows]);
    be.fill(scale.buf, g.item() * perRowScale, rows);
    const gx = alloc([rows, cols]);
    be.nllLossGrad(t.buf, scale.buf, gx.buf, rows, cols, ignore);
    return [gx];
  });
}

function reduceTensor(x: Tensor, reduction: Reduction): Tensor {
  return reduction === 'mean' ? mean(x) : reduction === 'sum' ? sum(x) : x;
}

/** Mean squared error (input − target)², reduced. Shapes broadcast. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  assertTensor(input, 'input', 'mseLoss');
  assertTensor(target, 'target', 'mseLoss');
  const reduction = opts.reduction ?? 'mean';
  checkReduction(reduction, 'mseLoss');
  const d = sub(input, target);
  return reduceTensor(mul(d, d), reduction);
}

/**
 * Binary cross-entropy on logits, max(x, 0) − x·y + log(1 + e^(−|x|)), stable for any x; the gradient is
 * σ(x) − y (times posWeight terms when given).
 */
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction; posWeight?: Tensor } = {},
): Tensor {
  assertTensor(input, 'input', 'binaryCrossEntropyWithLogits');
  assertTensor(target, 'target', 'binaryCrossEntropyWithLogits');
  const reduction = opts.reduction ?? 'mean';
  checkReduction(reduction, 'binaryCrossEntropyWithLogits');
  if (input.shape.join() !== target.shape.join()) {
    throw new ShapeError(
      `binaryCrossEntropyWithLogits(): input [${input.shape}] and target [${target.shape}] must have the same shape`,
    );
  }
  const pw = opts.posWeight;
  const pwShape = pw ? broadcastShapes(pw.shape, input.shape, 'binaryCrossEntropyWithLogits') : null;
  if (pw && pwShape!.join() !== input.shape.join())
    throw new ShapeError('binaryCrossEntropyWithLogits(): posWeight must broadcast to the input shape');
  const n = input.size;
  // the positive weights broadcast to the input's shape, or ones
  let w: Tensor;
  if (pw) w = expandTo(pw, input.shape);
  else {
    w = alloc(input.shape);
    w.storage.backend.fill(w.buf, 1, n);
  }
  const out = alloc(input.shape);
  const be = out.storage.backend;
  be.bceWithLogits(input.buf, target.buf, w.buf, out.buf, n);
  const elem = fromOp('binaryCrossEntropyWithLogits', out.storage, input.shape, [input, target], (g, needs) => {
    const gx = alloc(input.shape);
    const gt = alloc(input.shape);
    be.bceWithLogitsGrad(input.buf, target.buf, w.buf, g.buf, gx.buf, gt.buf, n);
    return [needs[0] ? gx : null, needs[1] ? gt : null];
  });
  return reduceTensor(elem, reduction);
}
