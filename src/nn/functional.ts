/**
 * `nn.functional`: losses, convolution, pooling, normalisation and dropout as differentiable functions, PyTorch's
 * semantics and defaults unless a doc says otherwise.
 */
import { Binary, type ConvGeom, type PoolGeom } from '../backend/types.js';
import { sumToShape } from '../tensor/ops/broadcast.js';
import { alloc, assertTensor, broadcastShapes, broadcastStrides, stridesOf } from '../tensor/ops/util.js';
import { type RandomSource, toRng } from '../tensor/rng.js';
import { fromOp, Tensor } from '../tensor/tensor.js';
import '../tensor/methods.js';

export { elu, gelu, leakyRelu, relu, selu, sigmoid, softplus, tanh } from '../tensor/ops/elementwise.js';
export { linear } from '../tensor/ops/matmul.js';
export { type BatchNormOptions, batchNorm, layerNorm } from '../tensor/ops/norm.js';
export { logSoftmax, softmax } from '../tensor/ops/softmax.js';

export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(r: string, fn: string): asserts r is Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') {
    throw new Error(`${fn}(): reduction '${r}' is not supported, please use one of mean, sum, none`);
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
    throw new Error(`${fn}(): got ${t.size} targets for ${rows} rows of logits; pass one class index per row`);
  }
  const d = t.data;
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v !== ignoreIndex && (!Number.isInteger(v) || v < 0 || v >= classes)) {
      throw new Error(
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
  if (!(eps >= 0 && eps <= 1)) throw new Error(`crossEntropy(): labelSmoothing must be in [0, 1], got ${eps}`);
  const ignore = opts.ignoreIndex ?? -100;
  if (logits.ndim !== 2) {
    throw new Error(`crossEntropy(): logits must be [batch, classes], got shape [${logits.shape}]; reshape first`);
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
  if (logProbs.ndim !== 2) throw new Error(`nllLoss(): input must be [batch, classes], got shape [${logProbs.shape}]`);
  const [rows, cols] = logProbs.shape as [number, number];
  const t = targetTensor(targets, rows, cols, ignore, 'nllLoss');
  const losses = alloc([rows]);
  // a copy: the backward reads the targets after other allocations (see the NOTE in batchNorm)
  const td = Float64Array.from(t.data);
  const xd = logProbs.data;
  const ld = losses.data;
  let counted = 0;
  for (let r = 0; r < rows; r++) {
    const c = td[r]!;
    if (c === ignore) ld[r] = 0;
    else {
      ld[r] = -xd[r * cols + c]!;
      counted++;
    }
  }
  const grad = (gRow: (r: number) => number) => {
    const gx = alloc([rows, cols]);
    const gd = gx.data;
    gd.fill(0);
    for (let r = 0; r < rows; r++) if (td[r] !== ignore) gd[r * cols + td[r]!] = -gRow(r);
    return gx;
  };
  if (reduction === 'none')
    return fromOp('nllLoss', losses.storage, [rows], [logProbs], (g) => [grad((r) => g.data[r]!)]);
  const { value, perRowScale } = reduceRows(ld, counted, reduction);
  const out = alloc([]);
  out.data[0] = value;
  return fromOp('nllLoss', out.storage, [], [logProbs], (g) => {
    const s = g.item() * perRowScale;
    return [grad(() => s)];
  });
}

function reduceTensor(x: Tensor, reduction: Reduction): Tensor {
  return reduction === 'mean' ? x.mean() : reduction === 'sum' ? x.sum() : x;
}

/** Mean squared error (input − target)², reduced. Shapes broadcast. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  assertTensor(input, 'input', 'mseLoss');
  assertTensor(target, 'target', 'mseLoss');
  const reduction = opts.reduction ?? 'mean';
  checkReduction(reduction, 'mseLoss');
  const d = input.sub(target);
  return reduceTensor(d.mul(d), reduction);
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
    throw new Error(
      `binaryCrossEntropyWithLogits(): input [${input.shape}] and target [${target.shape}] must have the same shape`,
    );
  }
  const pw = opts.posWeight;
  const pwShape = pw ? broadcastShapes(pw.shape, input.shape, 'binaryCrossEntropyWithLogits') : null;
  if (pw && pwShape!.join() !== input.shape.join())
    throw new Error('binaryCrossEntropyWithLogits(): posWeight must broadcast to the input shape');
  const n = input.size;
  const pwd = pw ? expandData(pw, input.shape) : null;
  const out = alloc(input.shape);
  const xd = input.data;
  const yd = target.data;
  const od = out.data;
  for (let i = 0; i < n; i++) {
    const x = xd[i]!;
    const y = yd[i]!;
    const sp = Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x))); // log(1 + e^-x), stable
    const w = pwd ? pwd[i]! : 1;
    // (1 − y)·x + (1 + (w − 1)·y)·log(1 + e^−x)
    od[i] = (1 - y) * x + (1 + (w - 1) * y) * sp;
  }
  const elem = fromOp('binaryCrossEntropyWithLogits', out.storage, input.shape, [input, target], (g, needs) => {
    const gx = needs[0] ? alloc(input.shape) : null;
    const gy = needs[1] ? alloc(input.shape) : null;
    const gd = g.data;
    const xd = input.data;
    const yd = target.data;
    if (gx) {
      const d = gx.data;
      for (let i = 0; i < n; i++) {
        const x = xd[i]!;
        const y = yd[i]!;
        const s = x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
        const w = pwd ? pwd[i]! : 1;
        // d/dx = (1 − y) − (1 + (w − 1)y)·(1 − σ(x))
        d[i] = gd[i]! * (1 - y - (1 + (w - 1) * y) * (1 - s));
      }
    }
    if (gy) {
      const d = gy.data;
      for (let i = 0; i < n; i++) {
        const x = xd[i]!;
        const sp = Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
        const w = pwd ? pwd[i]! : 1;
        d[i] = gd[i]! * (-x + (w - 1) * sp);
      }
    }
    return [gx, gy];
  });
  return reduceTensor(elem, reduction);
}

/** The values of `t` broadcast to `shape`, copied out of backend memory. */
function expandData(t: Tensor, shape: readonly number[]): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  const out = new Float32Array(n);
  const src = t.data;
  const st = broadcastStrides(t.shape, shape);
  const idx = new Array<number>(shape.length).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = src[off]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      off += st[d]!;
      if (idx[d]! < shape[d]!) break;
      off -= st[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

type Pair = number | readonly [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /**
   * Channel groups (PyTorch's `groups`, default 1): input and output channels are split into `groups` equal parts,
   * each output part seeing only its input part; the weight is [O, C/groups, kh, kw]. groups = C is a depthwise
   * convolution.
   */
  groups?: number;
}

/**
 * 2-D convolution (cross-correlation, as PyTorch) of x [N, C, H, W] with weight [O, C/groups, kh, kw] and optional
 * bias [O]. Lowered to one im2col and one matrix product for the whole batch (per group); the backward is the
 * transposed products and col2im.
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  assertTensor(x, 'input', 'conv2d');
  assertTensor(weight, 'weight', 'conv2d');
  if (x.ndim !== 4) throw new Error(`conv2d(): input must be [N, C, H, W], got shape [${x.shape}]`);
  if (weight.ndim !== 4) throw new Error(`conv2d(): weight must be [out, in, kh, kw], got shape [${weight.shape}]`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oc, icg, kh, kw] = weight.shape as [number, number, number, number];
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1)
    throw new Error(`conv2d(): groups must be a whole number >= 1, got ${groups}`);
  if (c % groups !== 0 || oc % groups !== 0)
    throw new Error(`conv2d(): groups=${groups} must divide the input channels (${c}) and the output channels (${oc})`);
  if (icg * groups !== c)
    throw new Error(
      groups === 1
        ? `conv2d(): input has ${c} channels but the weight expects ${icg}`
        : `conv2d(): with groups=${groups} the weight must have ${c / groups} input channels (${c}/${groups}), got ${icg}`,
    );
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== oc))
    throw new Error(`conv2d(): bias must have shape [${oc}], got [${bias.shape}]`);
  const [sh, sw] = pair(opts.stride ?? 1);
  const [ph, pw] = pair(opts.padding ?? 0);
  const [dh, dw] = pair(opts.dilation ?? 1);
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (oh <= 0 || ow <= 0) {
    throw new Error(
      `conv2d(): a ${kh}x${kw} kernel does not fit a ${h}x${w} input with padding ${ph},${pw} and dilation ${dh},${dw}`,
    );
  }
  // per group: icg input channels, ocg output channels
  const ocg = oc / groups;
  const g: ConvGeom = { n, c: icg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow };
  const be = x.storage.backend;
  const ckk = icg * kh * kw;
  const L = n * oh * ow;
  const plane = h * w;
  // a group's input channels as a contiguous [N, C/groups, H, W] (x itself when there is one group)
  const groupInput = (gi: number): Tensor => {
    if (groups === 1) return x;
    const xg = alloc([n, icg, h, w]);
    be.copyBlocks(x.buf, gi * icg * plane, c * plane, xg.buf, 0, icg * plane, icg * plane, n, false);
    return xg;
  };
  const cols: Tensor[] = [];
  for (let gi = 0; gi < groups; gi++) {
    const cg = alloc([ckk, L]);
    be.im2col(groupInput(gi).buf, cg.buf, g);
    cols.push(cg);
  }
  const yT = alloc([oc, n, oh * ow]);
  if (bias) {
    // each output channel's row starts as its bias, then the product accumulates on top
    const yd = yT.data;
    const bd = bias.data;
    for (let o = 0; o < oc; o++) yd.fill(bd[o]!, o * L, (o + 1) * L);
  }
  // group gi: rows [gi·ocg, (gi+1)·ocg) of the weight and of yT
  const beta = bias ? 1 : 0;
  for (let gi = 0; gi < groups; gi++) {
    const wOff = gi * ocg * ckk; // the group's rows of the weight, and of yT
    be.sgemm(false, false, ocg, L, ckk, 1, weight.buf, wOff, ckk, cols[gi]!.buf, 0, L, beta, yT.buf, gi * ocg * L, L);
  }
  const outShape = [n, oc, oh, ow];
  const out = alloc(outShape);
  be.permute(yT.buf, out.buf, [oc, n, oh * ow], [1, 0, 2]);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return fromOp('conv2d', out.storage, outShape, inputs, (gy, needs) => {
    const gT = alloc([oc, n, oh * ow]);
    be.permute(gy.buf, gT.buf, [n, oc, oh * ow], [1, 0, 2]);
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (needs[1]) {
      gw = alloc(weight.shape);
      for (let gi = 0; gi < groups; gi++) {
        const gOff = gi * ocg * L;
        be.sgemm(false, true, ocg, ckk, L, 1, gT.buf, gOff, L, cols[gi]!.buf, 0, L, 0, gw.buf, gi * ocg * ckk, ckk);
      }
    }
    if (bias && needs[2]) {
      gb = alloc([oc]);
      be.sumAxis(gT.buf, gb.buf, oc, L, 1);
    }
    if (needs[0]) {
      const dcols = alloc([ckk, L]);
      gx = alloc(x.shape);
      const gxg = groups === 1 ? gx : alloc([n, icg, h, w]);
      for (let gi = 0; gi < groups; gi++) {
        const wOff = gi * ocg * ckk;
        be.sgemm(true, false, ckk, L, ocg, 1, weight.buf, wOff, ckk, gT.buf, gi * ocg * L, L, 0, dcols.buf, 0, L);
        be.col2im(dcols.buf, gxg.buf, g);
        // the group's channels back into place in gx
        if (groups > 1)
          be.copyBlocks(gxg.buf, 0, icg * plane, gx.buf, gi * icg * plane, c * plane, icg * plane, n, false);
      }
    }
    return [gx, gw, gb];
  });
}

export interface Pool2dOptions {
  /** Defaults to the kernel size, as PyTorch. */
  stride?: Pair;
  padding?: Pair;
}

function poolGeom(x: Tensor, kernel: Pair, opts: Pool2dOptions, fn: string): PoolGeom {
  if (x.ndim !== 4 && x.ndim !== 3)
    throw new Error(`${fn}(): input must be [N, C, H, W] or [C, H, W], got shape [${x.shape}]`);
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(opts.stride ?? kernel);
  const [ph, pw] = pair(opts.padding ?? 0);
  if (ph * 2 > kh || pw * 2 > kw)
    throw new Error(
      `${fn}(): padding should be at most half the kernel size, got padding ${ph},${pw} for kernel ${kh}x${kw}`,
    );
  const h = x.shape[x.ndim - 2]!;
  const w = x.shape[x.ndim - 1]!;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh <= 0 || ow <= 0) throw new Error(`${fn}(): a ${kh}x${kw} window does not fit a ${h}x${w} input`);
  return { planes: x.size / (h * w), h, w, kh, kw, sh, sw, ph, pw, oh, ow };
}

/** Max pooling over 2-D windows (PyTorch's floor mode); the first maximum in a window takes the gradient. */
export function maxPool2d(x: Tensor, kernel: Pair, opts: Pool2dOptions = {}): Tensor {
  assertTensor(x, 'input', 'maxPool2d');
  const g = poolGeom(x, kernel, opts, 'maxPool2d');
  const outShape = [...x.shape.slice(0, -2), g.oh, g.ow];
  const out = alloc(outShape);
  const be = out.storage.backend;
  be.maxPool2d(x.buf, out.buf, g);
  return fromOp('maxPool2d', out.storage, outShape, [x], (gy) => {
    const gx = alloc(x.shape);
    be.maxPool2dGrad(x.buf, gy.buf, gx.buf, g);
    return [gx];
  });
}

/** Average pooling over 2-D windows; padding counts in the divisor unless `countIncludePad: false` (PyTorch's default is true). */
export function avgPool2d(x: Tensor, kernel: Pair, opts: Pool2dOptions & { countIncludePad?: boolean } = {}): Tensor {
  assertTensor(x, 'input', 'avgPool2d');
  const g = poolGeom(x, kernel, opts, 'avgPool2d');
  const cip = opts.countIncludePad ?? true;
  const outShape = [...x.shape.slice(0, -2), g.oh, g.ow];
  const out = alloc(outShape);
  const be = out.storage.backend;
  be.avgPool2d(x.buf, out.buf, g, cip);
  return fromOp('avgPool2d', out.storage, outShape, [x], (gy) => {
    const gx = alloc(x.shape);
    be.avgPool2dGrad(gy.buf, gx.buf, g, cip);
    return [gx];
  });
}

/** Output size of `adaptiveAvgPool2d`: one size for both, or [height, width] where null keeps the input's. */
export type AdaptiveSize = number | readonly [number | null, number | null];

/**
 * Adaptive average pooling to a fixed output size, as PyTorch's `adaptive_avg_pool2d`: output cell (i, j) averages
 * input rows floor(i·H/oh) to ceil((i+1)·H/oh) and the same for columns, so windows may differ in size and overlap
 * when the output is not a divisor of the input. x is [N, C, H, W] or [C, H, W].
 *
 * @example F.adaptiveAvgPool2d(x, [7, 7]) // any input size to 7x7, as torchvision's ResNet head
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  assertTensor(x, 'input', 'adaptiveAvgPool2d');
  if (x.ndim !== 4 && x.ndim !== 3)
    throw new Error(`adaptiveAvgPool2d(): input must be [N, C, H, W] or [C, H, W], got shape [${x.shape}]`);
  const h = x.shape[x.ndim - 2]!;
  const w = x.shape[x.ndim - 1]!;
  const [rh, rw] = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  const oh = rh ?? h;
  const ow = rw ?? w;
  for (const [v, name] of [
    [oh, 'height'],
    [ow, 'width'],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`adaptiveAvgPool2d(): the output ${name} must be a whole number >= 1, got ${v}`);
  }
  if (h === 0 || w === 0) throw new Error(`adaptiveAvgPool2d(): the input is empty, shape [${x.shape}]`);
  // window bounds per output row and column (PyTorch's start_index / end_index)
  const rows = Array.from({ length: oh }, (_, i) => [Math.floor((i * h) / oh), Math.ceil(((i + 1) * h) / oh)] as const);
  const cols = Array.from({ length: ow }, (_, j) => [Math.floor((j * w) / ow), Math.ceil(((j + 1) * w) / ow)] as const);
  const planes = x.size / (h * w);
  const outShape = [...x.shape.slice(0, -2), oh, ow];
  const out = alloc(outShape);
  // each output cell o with its plane's offset in x and its window
  const eachWindow = (fn: (o: number, xb: number, y0: number, y1: number, x0: number, x1: number) => void) => {
    for (let p = 0; p < planes; p++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++)
          fn((p * oh + i) * ow + j, p * h * w, rows[i]![0], rows[i]![1], cols[j]![0], cols[j]![1]);
      }
    }
  };
  const xd = x.data;
  const od = out.data;
  eachWindow((o, xb, y0, y1, x0, x1) => {
    let s = 0;
    for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += xd[xb + y * w + xx]!;
    od[o] = s / ((y1 - y0) * (x1 - x0));
  });
  return fromOp('adaptiveAvgPool2d', out.storage, outShape, [x], (gy) => {
    const gx = alloc(x.shape);
    const gd = gx.data;
    const gyd = gy.data;
    gd.fill(0);
    eachWindow((o, xb, y0, y1, x0, x1) => {
      const g = gyd[o]! / ((y1 - y0) * (x1 - x0));
      for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) gd[xb + y * w + xx] += g;
    });
    return [gx];
  });
}

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the rest by 1/(1−p); the identity
 * otherwise. The mask is drawn from the given seed or RNG.
 */
export function dropout(x: Tensor, p: number, opts: { training?: boolean; rng?: RandomSource } = {}): Tensor {
  assertTensor(x, 'input', 'dropout');
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout(): p must be a probability in [0, 1], got ${p}`);
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

/** Reduces a gradient to an input's shape (re-exported for layers that broadcast by hand). */
export { sumToShape };
