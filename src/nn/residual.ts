/**
 * Residual building blocks: a residual MLP block, ResNet's basic block (post-activation, He et al. 2015) and its
 * pre-activation form (He et al. 2016), projection and zero-padding shortcuts, zero-initialised last layers
 * (PyTorch's `zero_init_residual`, SkipInit/Fixup style) and the ReZero gate (Bachlechner et al. 2020).
 *
 * Why they help: a block computes h + F(h), so the gradient reaching h is g + g·∂F/∂h, a sum with an identity term
 * that does not shrink with depth. At initialisation though, a plain block doubles the variance of h (a 30-layer MLP
 * of such blocks starts with logits in the thousands); zero-initialising F's last layer or gating F with a learned
 * α that starts at 0 makes every block start as the identity.
 */
import { type RandomInit, resolveRng } from '../init/random.js';
import { maxPool2d } from '../nn/functional.js';
import { addRelu } from '../tensor/ops/elementwise.js';
import { concat } from '../tensor/ops/shape.js';
import { full, type Tensor, zeros } from '../tensor/tensor.js';
import { type ActivationName, activation, ReLU } from './activation.js';
import { Sequential } from './container.js';
import { Conv2d } from './conv.js';
import { Dropout } from './dropout.js';
import { checkSize, Linear } from './linear.js';
import { type AnyModule, Module } from './module.js';
import { BatchNorm1d, BatchNorm2d, batchNormReLU, LayerNorm } from './norm.js';
import '../tensor/methods.js';

/** Normalisation inside an MLP: none, BatchNorm1d or LayerNorm. */
export type NormKind = 'none' | 'batch' | 'layer';

/** A new normalisation layer for `width` features, or null for 'none'. */
export function normLayer(kind: NormKind, width: number, fn: string): Module | null {
  if (kind === 'none') return null;
  if (kind === 'batch') return new BatchNorm1d(width);
  if (kind === 'layer') return new LayerNorm(width);
  throw new TypeError(`${fn}: norm '${kind}' is not supported, please use one of none, batch, layer`);
}

function zeroWeight(m: Module | null): void {
  if (!m) return;
  for (const [, t] of m.namedParameters()) t.data.fill(0);
}

/**
 * out = shortcut(x) + α·branch(x), the general residual connection. Without a shortcut module the identity is used;
 * with `rezero` a learned scalar `alpha` (init 0) gates the branch, so the block starts as the identity.
 *
 * Bachlechner et al., "ReZero is All You Need: Fast Convergence at Large Depth", 2020.
 *
 * @example new nn.Residual(new nn.Sequential(new nn.Linear(64, 64), new nn.ReLU(), new nn.Linear(64, 64)), { rezero: true })
 */
export class Residual extends Module {
  readonly branch: Module;
  readonly shortcut: Module | null;
  /** The ReZero gate α (shape [1], init 0), or null. */
  readonly alpha: Tensor | null;

  constructor(branch: Module, opts: { shortcut?: Module; rezero?: boolean } = {}) {
    super();
    this.branch = this.registerModule('branch', branch);
    this.shortcut = opts.shortcut ? this.registerModule('shortcut', opts.shortcut) : null;
    this.alpha = opts.rezero ? this.registerParameter('alpha', zeros([1])) : null;
  }

  forward(x: Tensor): Tensor {
    let b = this.branch.call(x);
    if (this.alpha) b = b.mul(this.alpha);
    return (this.shortcut ? this.shortcut.call(x) : x).add(b);
  }
}

export interface ResidualMLPBlockOptions extends RandomInit {
  /** Activation between the two layers (default 'relu'). */
  activation?: ActivationName;
  /** Normalisation after each linear layer of the branch (default 'none'). */
  norm?: NormKind;
  /** Width of the inner layer (default: the block's width). */
  hiddenWidth?: number;
  /** Dropout after the activation (default 0: none). */
  dropout?: number;
  /** Start the branch at 0: the last norm's weight is zeroed, or without norm the last linear layer (SkipInit). */
  zeroInit?: boolean;
  /** Gate the branch with a learned scalar `alpha` initialised at 0 (ReZero). */
  rezero?: boolean;
}

/**
 * A residual MLP block, h + α·N₂(W₂·act(N₁(W₁·h))), with optional normalisation N, ReZero gate α and zero
 * initialisation of the branch's last layer. Children: `fc1`, `norm1`, `act`, `drop`, `fc2`, `norm2` (those in use).
 *
 * He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (the identity shortcut); zero init as in
 * Goyal et al. 2017 and De & Smith, "Batch Normalization Biases Residual Blocks Towards the Identity Function", 2020.
 *
 * @example new nn.ResidualMLPBlock(256, { zeroInit: true, seed: 0 })
 */
export class ResidualMLPBlock extends Module {
  readonly fc1: Linear;
  readonly norm1: Module | null;
  readonly act: Module;
  readonly drop: Dropout | null;
  readonly fc2: Linear;
  readonly norm2: Module | null;
  readonly alpha: Tensor | null;

  constructor(
    readonly width: number,
    opts: ResidualMLPBlockOptions = {},
  ) {
    super();
    checkSize(width, 'width', 'nn.ResidualMLPBlock');
    const rng = resolveRng(opts, 'nn.ResidualMLPBlock');
    const hidden = opts.hiddenWidth ?? width;
    const norm = opts.norm ?? 'none';
    this.fc1 = this.registerModule('fc1', new Linear(width, hidden, { rng }));
    const n1 = normLayer(norm, hidden, 'nn.ResidualMLPBlock');
    this.norm1 = n1 ? this.registerModule('norm1', n1) : null;
    this.act = this.registerModule('act', activation(opts.activation ?? 'relu'));
    this.drop = opts.dropout ? this.registerModule('drop', new Dropout(opts.dropout, { rng })) : null;
    this.fc2 = this.registerModule('fc2', new Linear(hidden, width, { rng }));
    const n2 = normLayer(norm, width, 'nn.ResidualMLPBlock');
    this.norm2 = n2 ? this.registerModule('norm2', n2) : null;
    this.alpha = opts.rezero ? this.registerParameter('alpha', zeros([1])) : null;
    if (opts.zeroInit) zeroWeight(this.norm2 ?? this.fc2);
  }

  forward(x: Tensor): Tensor {
    let b = this.fc1.call(x);
    if (this.norm1) b = this.norm1.call(b);
    b = this.act.call(b);
    if (this.drop) b = this.drop.call(b);
    b = this.fc2.call(b);
    if (this.norm2) b = this.norm2.call(b);
    if (this.alpha) b = b.mul(this.alpha);
    return x.add(b);
  }
}

/** How a block whose shape changes gets its shortcut: a 1×1 convolution (+ BN) or zero-padded channels. */
export type ShortcutKind = 'projection' | 'zero-pad';

/**
 * The parameter-free shortcut of He et al. 2015 ("option A"): subsample by `stride` and pad the new channels with
 * zeros (half before, half after).
 */
export class ZeroPadShortcut extends Module {
  constructor(
    readonly inPlanes: number,
    readonly planes: number,
    readonly stride: number,
  ) {
    super();
    if (planes < inPlanes)
      throw new Error(`nn.ZeroPadShortcut: planes (${planes}) must be at least inPlanes (${inPlanes})`);
  }
  forward(x: Tensor): Tensor {
    // NOTE: a 1×1 max pool with stride s is x[:, :, ::s, ::s]
    const sub = this.stride > 1 ? maxPool2d(x, 1, { stride: this.stride }) : x;
    const extra = this.planes - this.inPlanes;
    if (extra === 0) return sub;
    const [n, , h, w] = sub.shape as [number, number, number, number];
    const before = Math.floor(extra / 2);
    const parts: Tensor[] = [];
    if (before) parts.push(full([n, before, h, w], 0));
    parts.push(sub);
    if (extra - before) parts.push(full([n, extra - before, h, w], 0));
    return concat(parts, 1);
  }
}

export interface BlockOptions extends RandomInit {
  /** Stride of the first convolution (2 halves the resolution). */
  stride?: number;
  /** The shortcut when the shape changes (default 'projection'). */
  shortcut?: ShortcutKind;
  /** Start the residual branch at 0: zero its last BN weight (post-activation) or last conv (pre-activation). */
  zeroInitResidual?: boolean;
  /** Gate the branch with a learned scalar `alpha` initialised at 0 (ReZero). */
  rezero?: boolean;
}

function conv3x3(inP: number, outP: number, stride: number, rng: RandomInit['rng']): Conv2d {
  return new Conv2d(inP, outP, 3, { stride, padding: 1, bias: false, ...(rng !== undefined ? { rng } : {}) });
}

/**
 * ResNet's basic block (post-activation): relu(shortcut(x) + α·bn2(conv2(relu(bn1(conv1(x)))))), two 3×3
 * convolutions. When the stride or the width changes the shortcut is `downsample`: a 1×1 convolution + BN
 * (projection) or zero padding. Children follow torchvision: `conv1`, `bn1`, `relu`, `conv2`, `bn2`, `downsample`.
 *
 * He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv 2015).
 *
 * @example new nn.BasicBlock(16, 32, { stride: 2, seed: 0 })
 */
export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: AnyModule | null;
  readonly alpha: Tensor | null;

  constructor(inPlanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const stride = opts.stride ?? 1;
    const rng = resolveRng(opts, 'nn.BasicBlock');
    this.conv1 = this.registerModule('conv1', conv3x3(inPlanes, planes, stride, rng));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.relu = this.registerModule('relu', new ReLU());
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, 1, rng));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.downsample =
      stride !== 1 || inPlanes !== planes
        ? this.registerModule(
            'downsample',
            (opts.shortcut ?? 'projection') === 'zero-pad'
              ? new ZeroPadShortcut(inPlanes, planes, stride)
              : new Sequential(new Conv2d(inPlanes, planes, 1, { stride, bias: false, rng }), new BatchNorm2d(planes)),
          )
        : null;
    this.alpha = opts.rezero ? this.registerParameter('alpha', zeros([1])) : null;
    if (opts.zeroInitResidual) this.bn2.weight!.data.fill(0);
  }

  forward(x: Tensor): Tensor {
    // NOTE: bn1 + relu and the sum + relu each run as one op (batchNormRelu, addRelu) where the hooks allow
    // (Module.fusable), the ReLU's hooks then seeing its output as its input too; the same numbers either way
    let out = batchNormReLU(this.bn1, this.relu, this.conv1.call(x));
    out = this.bn2.call(this.conv2.call(out));
    if (this.alpha) out = out.mul(this.alpha);
    const identity = this.downsample ? this.downsample.call(x) : x;
    return addReLU(this.relu, out, identity);
  }
}

/**
 * `relu.call(a.add(b))`: as one op (addRelu: the sum never written, the ReLU's mask applied once backward and the
 * gradient handed to both a and b) where `relu` is exactly an nn.ReLU that may run fused now (Module.fusable), its
 * hooks then seeing its output as its input too; the same numbers either way.
 */
function addReLU(relu: Module, a: Tensor, b: Tensor): Tensor {
  if ((relu.constructor as unknown) !== ReLU || !relu.fusable) return relu.call(a.add(b));
  const y = addRelu(a, b);
  relu.runFusedHooks(y, y);
  return y;
}

/**
 * The pre-activation block: shortcut + α·conv2(relu(bn2(conv1(relu(bn1(x)))))), with nothing after the sum, so
 * the identity path runs clean from input to output. A projection shortcut (`shortcut`, a 1×1 convolution) reads
 * the pre-activated input. Children: `bn1`, `conv1`, `bn2`, `conv2`, `shortcut`.
 *
 * He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016.
 *
 * @example new nn.PreActBlock(16, 32, { stride: 2, seed: 0 })
 */
export class PreActBlock extends Module {
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly relu: ReLU;
  readonly shortcut: AnyModule | null;
  readonly alpha: Tensor | null;
  readonly #projection: boolean;

  constructor(inPlanes: number, planes: number, opts: BlockOptions = {}) {
    super();
    const stride = opts.stride ?? 1;
    const rng = resolveRng(opts, 'nn.PreActBlock');
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(inPlanes));
    this.conv1 = this.registerModule('conv1', conv3x3(inPlanes, planes, stride, rng));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', conv3x3(planes, planes, 1, rng));
    this.relu = this.registerModule('relu', new ReLU());
    const needs = stride !== 1 || inPlanes !== planes;
    this.#projection = needs && (opts.shortcut ?? 'projection') === 'projection';
    this.shortcut = needs
      ? this.registerModule(
          'shortcut',
          this.#projection
            ? new Sequential(new Conv2d(inPlanes, planes, 1, { stride, bias: false, rng }))
            : new ZeroPadShortcut(inPlanes, planes, stride),
        )
      : null;
    this.alpha = opts.rezero ? this.registerParameter('alpha', zeros([1])) : null;
    if (opts.zeroInitResidual) this.conv2.weight.data.fill(0);
  }

  forward(x: Tensor): Tensor {
    // NOTE: each BatchNorm + ReLU runs as one op (batchNormRelu) where the hooks allow (Module.fusable)
    const pre = batchNormReLU(this.bn1, this.relu, x);
    const sc = this.shortcut ? this.shortcut.call(this.#projection ? pre : x) : x;
    let out = this.conv1.call(pre);
    out = this.conv2.call(batchNormReLU(this.bn2, this.relu, out));
    if (this.alpha) out = out.mul(this.alpha);
    return out.add(sc);
  }
}
