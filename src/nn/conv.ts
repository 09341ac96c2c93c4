/** `Conv2d` and the pooling layers, NCHW, with PyTorch's layouts, names and default initialisation. */
import type { RandomInit } from '../init/random.js';
import { type AdaptiveSize, adaptiveAvgPool2d, avgPool2d, conv2d, maxPool2d } from '../nn/functional.js';
import { empty, type Tensor } from '../tensor/tensor.js';
import { checkSize, resetLinearLike } from './linear.js';
import { Module, registerKeepsNothing } from './module.js';
import '../tensor/methods.js';

type Pair = number | readonly [number, number];

function pair(v: Pair, name: string, fn: string, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new TypeError(`${fn}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

export interface Conv2dOptions extends RandomInit {
  stride?: Pair;
  /** Zero padding on each side (default 0). */
  padding?: Pair;
  dilation?: Pair;
  /** Whether to add a learned bias per output channel (default true). */
  bias?: boolean;
  /** Channel groups (default 1; inChannels for a depthwise convolution): see `F.conv2d`. */
  groups?: number;
}

/**
 * A 2-D convolution (cross-correlation, as PyTorch) over inputs [N, inChannels, H, W].
 *
 * Parameters: `weight` [outChannels, inChannels/groups, kh, kw] and `bias` [outChannels], initialised as PyTorch
 * does: U(−1/√fanIn, 1/√fanIn) for both, fanIn = (inChannels/groups)·kh·kw.
 *
 * @example
 * const conv = new nn.Conv2d(1, 32, 3, { padding: 1, seed: 0 });
 * conv.call(x); // [N, 32, H, W]
 */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  /**
   * @param inChannels channels of the input
   * @param outChannels channels produced
   * @param kernelSize kh or [kh, kw]
   * @param opts stride (1), padding (0), dilation (1), bias (true) and the random source
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: Conv2dOptions = {},
  ) {
    super();
    checkSize(inChannels, 'inChannels', 'nn.Conv2d');
    checkSize(outChannels, 'outChannels', 'nn.Conv2d');
    this.kernelSize = pair(kernelSize, 'kernelSize', 'nn.Conv2d', 1);
    this.stride = pair(opts.stride ?? 1, 'stride', 'nn.Conv2d', 1);
    this.padding = pair(opts.padding ?? 0, 'padding', 'nn.Conv2d', 0);
    this.dilation = pair(opts.dilation ?? 1, 'dilation', 'nn.Conv2d', 1);
    this.groups = opts.groups ?? 1;
    checkSize(this.groups, 'groups', 'nn.Conv2d');
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0)
      throw new Error(
        `nn.Conv2d: groups=${this.groups} must divide inChannels (${inChannels}) and outChannels (${outChannels})`,
      );
    const [kh, kw] = this.kernelSize;
    const icg = inChannels / this.groups;
    this.weight = this.registerParameter('weight', empty([outChannels, icg, kh, kw]));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', empty([outChannels]));
    resetLinearLike(this.weight, this.bias, icg * kh * kw, opts);
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  protected override extraRepr(): string {
    const groups = this.groups > 1 ? `, groups=${this.groups}` : '';
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]${groups}`;
  }
}

/** Max pooling over kh×kw windows (stride defaults to the kernel size), PyTorch's floor mode. */
export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: { stride?: Pair; padding?: Pair } = {},
  ) {
    super();
    pair(kernelSize, 'kernelSize', 'nn.MaxPool2d', 1);
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.opts);
  }
  protected override extraRepr(): string {
    return `kernelSize=${JSON.stringify(this.kernelSize)}`;
  }
}

/** Average pooling over kh×kw windows (stride defaults to the kernel size); padding counts in the divisor. */
export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: { stride?: Pair; padding?: Pair; countIncludePad?: boolean } = {},
  ) {
    super();
    pair(kernelSize, 'kernelSize', 'nn.AvgPool2d', 1);
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.opts);
  }
  protected override extraRepr(): string {
    return `kernelSize=${JSON.stringify(this.kernelSize)}`;
  }
}

/**
 * Average pooling to a fixed output size whatever the input's (PyTorch's `AdaptiveAvgPool2d`): `[7, 7]`, or `[null, 1]`
 * to keep the height. See `F.adaptiveAvgPool2d`.
 */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: AdaptiveSize) {
    super();
  }
  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
  protected override extraRepr(): string {
    return `outputSize=${JSON.stringify(this.outputSize)}`;
  }
}

/** Global average pooling: [N, C, H, W] → [N, C] (PyTorch's `AdaptiveAvgPool2d(1)` followed by flatten). */
export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`nn.GlobalAvgPool2d: input must be [N, C, H, W], got shape [${x.shape}]`);
    return x.mean([2, 3]);
  }
}

registerKeepsNothing(Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d);
