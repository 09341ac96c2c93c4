/**
 * Ready-made models: `mlp` (plain or residual, any depth), a small `cnn`, and CIFAR-style `resnet`s (He et al. 2015)
 * with an MNIST-sized variant. Each takes `{ seed }` or `{ rng }` and draws every layer's weights from it in order.
 */
import { kaimingNormal } from '../init/initializers.js';
import { type RandomInit, resolveRng } from '../init/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { type ActivationName, activation, ReLU } from './activation.js';
import { Flatten, Sequential } from './container.js';
import { Conv2d, GlobalAvgPool2d, MaxPool2d } from './conv.js';
import { Dropout } from './dropout.js';
import { checkSize, Linear } from './linear.js';
import { Module } from './module.js';
import { BatchNorm2d, batchNormReLU } from './norm.js';
import {
  BasicBlock,
  type NormKind,
  normLayer,
  PreActBlock,
  Residual,
  ResidualMLPBlock,
  type ShortcutKind,
} from './residual.js';

export interface MlpOptions extends RandomInit {
  /** Features of each input sample (784 for MNIST). */
  inputSize: number;
  /** Outputs (classes). */
  outputSize: number;
  /** Widths of the hidden layers; or give `depth` and `width`. */
  hidden?: readonly number[];
  /** Number of hidden layers (with `width`). With `residual`, the layers inside the blocks (two per block). */
  depth?: number;
  /** Width of every hidden layer (with `depth`). */
  width?: number;
  /** Activation after each hidden layer (default 'relu'). */
  activation?: ActivationName;
  /** Use residual blocks h + W₂·act(W₁·h) (default false). */
  residual?: boolean;
  /** Normalisation after each hidden linear layer (default 'none'). */
  norm?: NormKind;
  /** Dropout after each activation (default 0: none). */
  dropout?: number;
  /** Residual only: zero-initialise each block's last layer so the block starts as the identity. */
  zeroInitResidual?: boolean;
  /** Residual only: gate each block with a ReZero scalar initialised at 0. */
  rezero?: boolean;
}

function hiddenSizes(o: MlpOptions): number[] {
  if (o.hidden !== undefined) {
    if (o.depth !== undefined || o.width !== undefined) {
      throw new TypeError('nn.mlp(): give either hidden (a list of widths) or depth and width, not both');
    }
    if (!Array.isArray(o.hidden)) throw new TypeError('nn.mlp(): hidden must be an array of positive integers');
    for (const h of o.hidden) checkSize(h, 'every hidden width', 'nn.mlp()');
    return [...o.hidden];
  }
  if (o.depth === undefined && o.width === undefined) return [];
  const depth = checkSize(o.depth, 'depth', 'nn.mlp()', true);
  const width = checkSize(o.width, 'width', 'nn.mlp()');
  return new Array<number>(depth).fill(width);
}

/**
 * A multilayer perceptron as a `Sequential`.
 *
 * Plain: Linear → [norm] → act → [dropout] for each hidden width, then Linear to the outputs, so
 * `mlp({ inputSize: 784, hidden: [256], outputSize: 10 })` is `0: Linear(784, 256), 1: ReLU, 2: Linear(256, 10)`.
 *
 * Residual: an input layer Linear(inputSize, width) → [norm] → act, then depth/2 `ResidualMLPBlock`s of two layers
 * each, then Linear(width, outputSize); every hidden width must be equal and depth even. A 30-layer residual MLP is
 * `mlp({ inputSize: 784, depth: 30, width: 256, outputSize: 10, residual: true })`.
 *
 * @param opts sizes, activation, residual, norm, dropout and the random source
 * @returns the model
 * @example
 * const model = nn.mlp({ inputSize: 784, depth: 30, width: 128, outputSize: 10, residual: true, zeroInitResidual: true, seed: 0 });
 */
export function mlp(opts: MlpOptions): Sequential {
  if (!opts || typeof opts !== 'object')
    throw new TypeError('nn.mlp(): pass an options object { inputSize, outputSize, hidden | depth + width }');
  const inputSize = checkSize(opts.inputSize, 'inputSize', 'nn.mlp()');
  const outputSize = checkSize(opts.outputSize, 'outputSize', 'nn.mlp()');
  const sizes = hiddenSizes(opts);
  const rng = resolveRng(opts, 'nn.mlp()');
  const act = opts.activation ?? 'relu';
  const norm = opts.norm ?? 'none';
  const p = opts.dropout ?? 0;
  const model = new Sequential();
  const hiddenLayer = (inF: number, outF: number) => {
    model.append(new Linear(inF, outF, { rng }));
    const n = normLayer(norm, outF, 'nn.mlp()');
    if (n) model.append(n);
    model.append(activation(act));
    if (p > 0) model.append(new Dropout(p, { rng }));
  };
  if (!opts.residual) {
    if (opts.zeroInitResidual || opts.rezero) {
      throw new TypeError('nn.mlp(): zeroInitResidual and rezero need residual: true');
    }
    let prev = inputSize;
    for (const h of sizes) {
      hiddenLayer(prev, h);
      prev = h;
    }
    model.append(new Linear(prev, outputSize, { rng }));
    return model;
  }
  if (sizes.length === 0) throw new TypeError('nn.mlp(): a residual MLP needs hidden layers (depth and width)');
  const width = sizes[0]!;
  if (sizes.some((s) => s !== width)) {
    throw new TypeError(`nn.mlp(): a residual MLP needs equal hidden widths, got [${sizes}]; use depth and width`);
  }
  if (sizes.length % 2 !== 0) {
    throw new TypeError(
      `nn.mlp(): a residual MLP has blocks of two layers, so depth must be even, got ${sizes.length}`,
    );
  }
  hiddenLayer(inputSize, width);
  for (let b = 0; b < sizes.length / 2; b++) {
    model.append(
      new ResidualMLPBlock(width, {
        activation: act,
        norm,
        dropout: p,
        zeroInit: opts.zeroInitResidual ?? false,
        rezero: opts.rezero ?? false,
        rng,
      }),
    );
  }
  model.append(new Linear(width, outputSize, { rng }));
  return model;
}

export interface CnnOptions extends RandomInit {
  /** Input channels (default 1). */
  inChannels?: number;
  /** Input height and width (default 28). */
  imageSize?: number | readonly [number, number];
  /** Classes (default 10). */
  numClasses?: number;
  /** Output channels of each conv stage; each stage halves the resolution (default [32, 64]). */
  channels?: readonly number[];
  /** Width of the hidden fully connected layer (default 128; 0 for none). */
  hidden?: number;
  /** Activation (default 'relu'). */
  activation?: ActivationName;
  /** BatchNorm after each convolution (default 'none'). */
  norm?: 'none' | 'batch';
  /** Dropout before the last layer (default 0). */
  dropout?: number;
  /**
   * Convolutions in all (default: one per stage). Each stage opens with one convolution that sets its channels; the
   * rest are spread over the stages, earlier stages first: single convolutions, or with `residual` blocks of two.
   */
  depth?: number;
  /** Group the convolutions after each stage's first into residual blocks act(x + conv(act(conv(x)))) (default false). */
  residual?: boolean;
  /** Residual only: gate each block's branch with a ReZero scalar initialised at 0. */
  rezero?: boolean;
}

/** How many extra convolution units (single convolutions, or residual blocks) each of `stages` stages gets. */
function unitsPerStage(depth: number, stages: number, residual: boolean): number[] {
  const extra = depth - stages;
  if (!Number.isInteger(depth) || extra < 0)
    throw new TypeError(
      `nn.cnn(): depth must be an integer of at least ${stages} (one convolution per stage), got ${depth}`,
    );
  if (residual && extra % 2 !== 0)
    throw new TypeError(
      `nn.cnn(): a residual CNN has ${stages} stage convolution${stages === 1 ? '' : 's'} plus blocks of two, so depth - ${stages} must be even, got depth ${depth}`,
    );
  const units = residual ? extra / 2 : extra;
  return Array.from({ length: stages }, (_, i) => Math.floor(units / stages) + (i < units % stages ? 1 : 0));
}

/**
 * A convolutional network as a `Sequential`: for each stage Conv2d(3×3, padding 1) → [BatchNorm2d] → act, then the
 * stage's further convolutions (`depth`), plain (Conv2d → [BatchNorm2d] → act) or residual (`Residual` of Conv2d →
 * [BatchNorm2d] → act → Conv2d → [BatchNorm2d], then act), then MaxPool2d(2); then Flatten → Linear(hidden) → act →
 * [Dropout] → Linear(numClasses). The defaults are the small two-stage CNN; a plain and a residual CNN of the same
 * depth differ only in their shortcuts.
 *
 * @example const model = nn.cnn({ inChannels: 1, imageSize: 28, numClasses: 10, seed: 0 });
 * @example const deep = nn.cnn({ depth: 20, residual: true, seed: 0 }); // 2 stage convolutions + 9 blocks
 */
export function cnn(opts: CnnOptions = {}): Sequential {
  const inC = checkSize(opts.inChannels ?? 1, 'inChannels', 'nn.cnn()');
  const size = opts.imageSize ?? 28;
  let [h, w] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
  checkSize(h, 'imageSize', 'nn.cnn()');
  checkSize(w, 'imageSize', 'nn.cnn()');
  const classes = checkSize(opts.numClasses ?? 10, 'numClasses', 'nn.cnn()');
  const channels = opts.channels ?? [32, 64];
  const hidden = opts.hidden ?? 128;
  const act = opts.activation ?? 'relu';
  const norm = opts.norm ?? 'none';
  if (norm !== 'none' && norm !== 'batch')
    throw new TypeError(`nn.cnn(): norm '${norm}' is not supported, please use one of none, batch`);
  const residual = opts.residual ?? false;
  if (opts.rezero && !residual) throw new TypeError('nn.cnn(): rezero needs residual: true');
  const units = unitsPerStage(opts.depth ?? channels.length, channels.length, residual);
  const rng = resolveRng(opts, 'nn.cnn()');
  const model = new Sequential();
  /** Conv2d(3×3) → [BatchNorm2d], appended to `to`. */
  const conv = (to: Sequential, inC: number, outC: number) => {
    to.append(new Conv2d(inC, outC, 3, { padding: 1, rng }));
    if (norm === 'batch') to.append(new BatchNorm2d(outC));
  };
  let c = inC;
  for (const [s, out] of channels.entries()) {
    checkSize(out, 'every entry of channels', 'nn.cnn()');
    conv(model, c, out);
    model.append(activation(act));
    for (let u = 0; u < units[s]!; u++) {
      if (!residual) {
        conv(model, out, out);
        model.append(activation(act));
        continue;
      }
      const branch = new Sequential();
      conv(branch, out, out);
      branch.append(activation(act));
      conv(branch, out, out);
      model.append(new Residual(branch, { rezero: opts.rezero ?? false }));
      model.append(activation(act));
    }
    model.append(new MaxPool2d(2));
    c = out;
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
    if (h < 1 || w < 1) throw new Error(`nn.cnn(): the image is too small for ${channels.length} pooling stages`);
  }
  model.append(new Flatten());
  let feat = c * h * w;
  if (hidden > 0) {
    model.append(new Linear(feat, hidden, { rng }));
    model.append(activation(act));
    feat = hidden;
  }
  if ((opts.dropout ?? 0) > 0) model.append(new Dropout(opts.dropout, { rng }));
  model.append(new Linear(feat, classes, { rng }));
  return model;
}

export interface ResNetOptions extends RandomInit {
  /** 6n + 2 layers: 20, 32, 44, 56, 110 (CIFAR, He et al. 2015), or 8 for the MNIST-sized variant (default 20). */
  depth?: number;
  /** Input channels (default 3; 1 for MNIST). */
  inChannels?: number;
  /** Classes (default 10). */
  numClasses?: number;
  /** Width of the first stage; stages are width, 2·width, 4·width (default 16). */
  width?: number;
  /** Use pre-activation blocks (He et al. 2016) instead of post-activation basic blocks. */
  preActivation?: boolean;
  /** Shortcut where the shape changes (default 'projection'; the CIFAR paper used 'zero-pad'). */
  shortcut?: ShortcutKind;
  /** Zero the last BN weight (post-activation) or last conv (pre-activation) of every block. */
  zeroInitResidual?: boolean;
  /** Gate every block's branch with a ReZero scalar initialised at 0. */
  rezero?: boolean;
}

/**
 * A CIFAR-style ResNet (He et al. 2015, §4.2): a 3×3 stem convolution, three stages of n blocks at width, 2·width
 * and 4·width (the last two halve the resolution), global average pooling and a linear classifier; depth = 6n + 2.
 * Convolutions start from Kaiming normal (fanOut, relu) and BN from weight 1, bias 0, as torchvision's ResNet.
 * Children: `conv1`, `bn1` (post-activation only), `relu`, `layer1`..`layer3`, `bn` (pre-activation only), `pool`, `fc`.
 *
 * He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; "Identity Mappings in Deep Residual
 * Networks", ECCV 2016.
 *
 * @example
 * const cifar = nn.resnet({ depth: 20, seed: 0 });
 * const small = nn.resnet({ depth: 8, inChannels: 1, width: 8, seed: 0 }); // 28×28 MNIST digits
 */
export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d | null;
  readonly relu: ReLU;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly bn: BatchNorm2d | null;
  readonly pool: GlobalAvgPool2d;
  readonly fc: Linear;

  constructor(opts: ResNetOptions = {}) {
    super();
    const depth = opts.depth ?? 20;
    if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0) {
      throw new TypeError(`nn.resnet(): depth must be 6n + 2 with n >= 1 (8, 20, 32, 44, 56, 110), got ${depth}`);
    }
    const n = (depth - 2) / 6;
    const inC = checkSize(opts.inChannels ?? 3, 'inChannels', 'nn.resnet()');
    const classes = checkSize(opts.numClasses ?? 10, 'numClasses', 'nn.resnet()');
    const width = checkSize(opts.width ?? 16, 'width', 'nn.resnet()');
    const rng = resolveRng(opts, 'nn.resnet()');
    const pre = opts.preActivation ?? false;
    const block = {
      shortcut: opts.shortcut ?? 'projection',
      zeroInitResidual: opts.zeroInitResidual ?? false,
      rezero: opts.rezero ?? false,
      rng,
    } as const;
    this.conv1 = this.registerModule('conv1', new Conv2d(inC, width, 3, { padding: 1, bias: false, rng }));
    this.bn1 = pre ? null : this.registerModule('bn1', new BatchNorm2d(width));
    this.relu = this.registerModule('relu', new ReLU());
    const stage = (inP: number, planes: number, stride: number) => {
      const s = new Sequential();
      for (let i = 0; i < n; i++) {
        const o = { ...block, stride: i === 0 ? stride : 1 };
        s.append(
          pre ? new PreActBlock(i === 0 ? inP : planes, planes, o) : new BasicBlock(i === 0 ? inP : planes, planes, o),
        );
      }
      return s;
    };
    this.layer1 = this.registerModule('layer1', stage(width, width, 1));
    this.layer2 = this.registerModule('layer2', stage(width, 2 * width, 2));
    this.layer3 = this.registerModule('layer3', stage(2 * width, 4 * width, 2));
    this.bn = pre ? this.registerModule('bn', new BatchNorm2d(4 * width)) : null;
    this.pool = this.registerModule('pool', new GlobalAvgPool2d());
    this.fc = this.registerModule('fc', new Linear(4 * width, classes, { rng }));
    // torchvision's ResNet init: Kaiming normal (fanOut, relu) for every convolution that is not zero-initialised
    const keepZero = new Set<Module>();
    for (const m of this.modules()) if (m instanceof PreActBlock && opts.zeroInitResidual) keepZero.add(m.conv2);
    for (const m of this.modules()) {
      if (m instanceof Conv2d && !keepZero.has(m))
        kaimingNormal(m.weight, { mode: 'fanOut', nonlinearity: 'relu', rng });
    }
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`nn.ResNet: input must be [N, C, H, W], got shape [${x.shape}]`);
    let h = this.conv1.call(x);
    if (this.bn1) h = batchNormReLU(this.bn1, this.relu, h);
    h = this.layer3.call(this.layer2.call(this.layer1.call(h)));
    if (this.bn) h = batchNormReLU(this.bn, this.relu, h);
    return this.fc.call(this.pool.call(h));
  }
}

/** A CIFAR-style ResNet (see `ResNet`). @example nn.resnet({ depth: 56, seed: 0 }) */
export function resnet(opts: ResNetOptions = {}): ResNet {
  return new ResNet(opts);
}
