/** Convolution and pooling over NCHW tensors: conv2d, max, average and adaptive average pooling, on the backend's kernels. */

import { type ConvGeom, type PoolGeom, Unary } from '../../backend/types.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { dispose, fromOp, type Tensor } from '../tensor.js';
import { alloc, assertTensor, planeSums, reluFolded } from './util.js';

export type Pair = number | readonly [number, number];
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
 * bias [O], on the backend's whole-convolution kernels (spec-nn.ts, conv2d and its gradients): image by image (and
 * group by group) the image's im2col columns [C/groups·kh·kw, oh·ow] times the weight, written straight into the
 * image's rows of the NCHW output; natively the pool's threads take whole images. The backward recomputes each
 * image's columns for the weight gradient (instead of keeping the batch's) and folds the columns' gradient back with
 * col2im. A 1×1 convolution with stride 1 and no padding multiplies the input itself.
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  return conv2dAct(x, weight, bias, opts, false);
}

/**
 * relu(conv2d(x, weight, bias, opts)) as one op (nn.Sequential runs an nn.Conv2d and the nn.ReLU after it so): the
 * same numbers, with the ReLU applied to each image's output in cache where the convolution wrote it (conv2dBias),
 * instead of a pass over the batch's output after it. Its backward masks the gradient by output > 0 (the same as by
 * the convolution's output > 0), or hands it on where the max pooling that read the output folded the mask in
 * (reluFolded, as for relu).
 */
export function conv2dRelu(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  return conv2dAct(x, weight, bias, opts, true);
}

function conv2dAct(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: Conv2dOptions, relu: boolean) {
  const { n, oc, groups, g } = conv2dGeometry(x, weight, bias, opts);
  const be = x.storage.backend;
  const P = g.oh * g.ow; // output positions per image
  const outShape = [n, oc, g.oh, g.ow];
  const out = alloc(outShape);
  // every image's output channel starts as its bias (broadcast along the row), then the product accumulates on top
  if (bias) be.conv2dBias(x.buf, weight.buf, bias.buf, out.buf, g, oc, groups, relu);
  else {
    be.conv2d(x.buf, weight.buf, out.buf, g, oc, groups, false);
    if (relu) be.unary(Unary.Relu, out.buf, out.buf, out.size, 0, 0);
  }

  const inputs = bias ? [x, weight, bias] : [x, weight];
  const y: Tensor = fromOp(relu ? 'conv2dRelu' : 'conv2d', out.storage, outShape, inputs, (g0, needs) => {
    // the ReLU's gradient: g0 where the output is > 0 (exactly where the convolution's output is), unless the
    // kernel that made g0 folded it in already
    const folded = !relu || reluFolded.get(g0) === y;
    let gy = g0;
    if (!folded) {
      gy = alloc(out.shape);
      be.unaryGrad(Unary.Relu, out.buf, out.buf, g0.buf, gy.buf, out.size, 0, 0);
    }
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (needs[1]) {
      gw = alloc(weight.shape);
      be.conv2dGradWeight(x.buf, gy.buf, gw.buf, g, oc, groups);
    }
    if (needs[0]) {
      gx = alloc(x.shape);
      be.conv2dGradInput(gy.buf, weight.buf, gx.buf, g, oc, groups);
    }
    if (bias && needs[2]) {
      // Σ over the positions of each image's channel (or the sums the kernel that wrote gy took: planeSums), then
      // over the images
      const given = folded ? planeSums.get(gy) : undefined;
      const perImage = given && given.size === n * oc ? null : alloc([n, oc]);
      if (perImage) be.sumAxis(gy.buf, perImage.buf, n * oc, P, 1);
      gb = alloc([oc]);
      be.sumAxis((perImage ?? given!).buf, gb.buf, 1, n, oc);
      if (perImage) dispose(perImage);
    }
    if (gy !== g0) dispose(gy);
    return [gx, gw, gb];
  });
  return y;
}

/** conv2d's arguments checked, and the geometry of one group (c = its input channels). */
function conv2dGeometry(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  opts: Conv2dOptions,
): { n: number; c: number; h: number; w: number; oc: number; groups: number; g: ConvGeom } {
  assertTensor(x, 'input', 'conv2d');
  assertTensor(weight, 'weight', 'conv2d');
  if (x.ndim !== 4) throw new ShapeError(`conv2d(): input must be [N, C, H, W], got shape [${x.shape}]`);
  if (weight.ndim !== 4)
    throw new ShapeError(`conv2d(): weight must be [out, in, kh, kw], got shape [${weight.shape}]`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [oc, icg, kh, kw] = weight.shape as [number, number, number, number];
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1)
    throw new ArgumentError(`conv2d(): groups must be a whole number >= 1, got ${groups}`);
  if (c % groups !== 0 || oc % groups !== 0)
    throw new ShapeError(
      `conv2d(): groups=${groups} must divide the input channels (${c}) and the output channels (${oc})`,
    );
  if (icg * groups !== c)
    throw new ShapeError(
      groups === 1
        ? `conv2d(): input has ${c} channels but the weight expects ${icg}`
        : `conv2d(): with groups=${groups} the weight must have ${c / groups} input channels (${c}/${groups}), got ${icg}`,
    );
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== oc))
    throw new ShapeError(`conv2d(): bias must have shape [${oc}], got [${bias.shape}]`);
  const [sh, sw] = pair(opts.stride ?? 1);
  const [ph, pw] = pair(opts.padding ?? 0);
  const [dh, dw] = pair(opts.dilation ?? 1);
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (oh <= 0 || ow <= 0) {
    throw new ShapeError(
      `conv2d(): a ${kh}x${kw} kernel does not fit a ${h}x${w} input with padding ${ph},${pw} and dilation ${dh},${dw}`,
    );
  }
  return { n, c, h, w, oc, groups, g: { n, c: icg, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow } };
}

export interface Pool2dOptions {
  /** Defaults to the kernel size, as PyTorch. */
  stride?: Pair;
  padding?: Pair;
}

function poolGeom(x: Tensor, kernel: Pair, opts: Pool2dOptions, fn: string): PoolGeom {
  if (x.ndim !== 4 && x.ndim !== 3)
    throw new ShapeError(`${fn}(): input must be [N, C, H, W] or [C, H, W], got shape [${x.shape}]`);
  const [kh, kw] = pair(kernel);
  const [sh, sw] = pair(opts.stride ?? kernel);
  const [ph, pw] = pair(opts.padding ?? 0);
  if (ph * 2 > kh || pw * 2 > kw)
    throw new ArgumentError(
      `${fn}(): padding should be at most half the kernel size, got padding ${ph},${pw} for kernel ${kh}x${kw}`,
    );
  const h = x.shape[x.ndim - 2]!;
  const w = x.shape[x.ndim - 1]!;
  const oh = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (oh <= 0 || ow <= 0) throw new ShapeError(`${fn}(): a ${kh}x${kw} window does not fit a ${h}x${w} input`);
  return { planes: x.size / (h * w), h, w, kh, kw, sh, sw, ph, pw, oh, ow };
}

/** Each h·w plane's sum of a max pooling's input ([planes]) and its Σx², as sumSquaresRows takes them. */
export interface PoolSums {
  planes: Tensor;
  ss: number;
}

const poolSumsWanted = new WeakSet<Tensor>();
const poolSumsOf = new WeakMap<Tensor, PoolSums>();

/**
 * @internal Asks the next `maxPool2d` of x to take x's plane sums and Σx² in its own pass (maxPool2dSums): the
 * gradient monitor's figures of a convolution's ReLU output, without a pass over it of their own.
 */
export function wantPoolSums(x: Tensor): void {
  poolSumsWanted.add(x);
}

/**
 * @internal What the max pooling of x took of it after `wantPoolSums(x)`, if it has run. Read them at once (at the
 * monitor's next hook): the sums are the op's own tensor, released with it at the end of tidy().
 */
export function poolSums(x: Tensor): PoolSums | undefined {
  poolSumsWanted.delete(x);
  const ps = poolSumsOf.get(x);
  return ps?.planes.storage.buf ? ps : undefined;
}

/**
 * Max pooling over 2-D windows (PyTorch's floor mode); the first maximum in a window takes the gradient. Where x is a
 * ReLU's output (relu, conv2dRelu, batchNormRelu or addRelu), the backward folds the ReLU's gradient into its own pass (maxPool2dGradRelu; see reluFolded).
 */
export function maxPool2d(x: Tensor, kernel: Pair, opts: Pool2dOptions = {}): Tensor {
  assertTensor(x, 'input', 'maxPool2d');
  const g = poolGeom(x, kernel, opts, 'maxPool2d');
  const outShape = [...x.shape.slice(0, -2), g.oh, g.ow];
  const out = alloc(outShape);
  const be = out.storage.backend;
  if (poolSumsWanted.delete(x)) {
    const planes = alloc([g.planes]);
    poolSumsOf.set(x, { planes, ss: be.maxPool2dSums(x.buf, out.buf, planes.buf, g) });
  } else be.maxPool2d(x.buf, out.buf, g);
  const op = x.node?.op;
  const afterRelu = op === 'relu' || op === 'conv2dRelu' || op === 'batchNormRelu' || op === 'addRelu';
  return fromOp('maxPool2d', out.storage, outShape, [x], (gy) => {
    const gx = alloc(x.shape);
    if (afterRelu) {
      // (and each plane's sum: a bias gradient per image where the ReLU's input is a conv2d's output)
      const sums = alloc([g.planes]);
      be.maxPool2dGradRelu(x.buf, gy.buf, gx.buf, sums.buf, g);
      reluFolded.set(gx, x);
      planeSums.set(gx, sums);
    } else be.maxPool2dGrad(x.buf, gy.buf, gx.buf, g);
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
    throw new ShapeError(`adaptiveAvgPool2d(): input must be [N, C, H, W] or [C, H, W], got shape [${x.shape}]`);
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
      throw new ArgumentError(`adaptiveAvgPool2d(): the output ${name} must be a whole number >= 1, got ${v}`);
  }
  if (h === 0 || w === 0) throw new ShapeError(`adaptiveAvgPool2d(): the input is empty, shape [${x.shape}]`);
  const planes = x.size / (h * w);
  const outShape = [...x.shape.slice(0, -2), oh, ow];
  const out = alloc(outShape);
  const be = out.storage.backend;
  be.adaptiveAvgPool2d(x.buf, out.buf, planes, h, w, oh, ow);
  return fromOp('adaptiveAvgPool2d', out.storage, outShape, [x], (gy) => {
    const gx = alloc(x.shape);
    be.adaptiveAvgPool2dGrad(gy.buf, gx.buf, planes, h, w, oh, ow);
    return [gx];
  });
}
