/**
 * Weight initializers, in place on a Tensor, with PyTorch's formulas and defaults (`torch.nn.init`).
 *
 * Each one overwrites the tensor's values and returns the tensor, so `init.kaimingNormal(layer.weight)` reads like
 * PyTorch's `kaiming_normal_`. Random ones take `{ seed }` or `{ rng }` (else the default generator, see
 * `manualSeed`). Fans follow PyTorch: for a weight [out, in, ...kernel], fanIn = in·∏kernel and fanOut = out·∏kernel.
 */

import type { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { type RandomInit, resolveRng } from './random.js';

/** The nonlinearities `calculateGain` knows (PyTorch's names; camelCase and kebab-case spellings are accepted too). */
export type Nonlinearity =
  | 'linear'
  | 'identity'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'convTranspose1d'
  | 'convTranspose2d'
  | 'convTranspose3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leakyRelu'
  | 'leaky_relu'
  | 'leaky-relu'
  | 'selu';

const GAINS: Record<string, (p: number | undefined) => number> = {
  linear: () => 1,
  identity: () => 1,
  conv1d: () => 1,
  conv2d: () => 1,
  conv3d: () => 1,
  convtranspose1d: () => 1,
  convtranspose2d: () => 1,
  convtranspose3d: () => 1,
  sigmoid: () => 1,
  tanh: () => 5 / 3,
  relu: () => Math.SQRT2,
  leakyrelu: (p) => {
    const slope = p ?? 0.01;
    if (!Number.isFinite(slope)) throw new TypeError(`calculateGain(): negative slope ${p} is not a valid number`);
    return Math.sqrt(2 / (1 + slope * slope));
  },
  selu: () => 3 / 4,
};

/**
 * The recommended gain for a nonlinearity: the factor that keeps the variance of activations steady through a layer.
 *
 * | nonlinearity | gain |
 * |---|---|
 * | linear, conv*, sigmoid | 1 |
 * | tanh | 5/3 |
 * | relu | √2 |
 * | leakyRelu | √(2 / (1 + negative_slope²)) |
 * | selu | 3/4 |
 *
 * Same table as PyTorch's `torch.nn.init.calculate_gain` (SELU's 3/4 is PyTorch's choice for self-normalising nets
 * with `kaimingNormal(..., nonlinearity: 'linear')`-like behaviour; see its docs).
 *
 * @param nonlinearity the function that follows the layer
 * @param param the negative slope of leakyRelu (default 0.01)
 * @returns the gain
 * @example
 * calculateGain('relu'); // 1.4142...
 * calculateGain('leakyRelu', 0.2); // √(2 / 1.04)
 */
export function calculateGain(nonlinearity: Nonlinearity | string, param?: number): number {
  const key = String(nonlinearity).replace(/[_-]/g, '').toLowerCase();
  const g = GAINS[key];
  if (!g) {
    throw new TypeError(
      `calculateGain(): unsupported nonlinearity '${nonlinearity}', please use one of linear, conv1d, conv2d, conv3d, convTranspose1d, convTranspose2d, convTranspose3d, sigmoid, tanh, relu, leakyRelu, selu`,
    );
  }
  return g(param);
}

/**
 * fanIn and fanOut of a weight of `shape`, as PyTorch computes them: [out, in, ...kernel] gives
 * fanIn = in·∏kernel and fanOut = out·∏kernel.
 *
 * @param shape the weight's shape (at least 2-D)
 * @param fn the calling function, for the error message
 */
export function computeFans(shape: readonly number[], fn = 'computeFans'): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new Error(
      `${fn}(): fanIn and fanOut cannot be computed for a tensor with fewer than 2 dimensions (shape [${shape}]); use uniform() or normal() for biases`,
    );
  }
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i]!;
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

function fill(t: Tensor, draw: () => number): Tensor {
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = draw();
  return t;
}

function uniformFill(t: Tensor, lo: number, hi: number, rng: Rng): Tensor {
  const span = hi - lo;
  return fill(t, () => lo + span * rng.uniform());
}

function normalFill(t: Tensor, mean: number, std: number, rng: Rng): Tensor {
  return fill(t, () => mean + std * rng.normal());
}

function checkFinite(v: number, what: string, fn: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new TypeError(`${fn}(): ${what} must be a finite number, got ${v}`);
  }
}

/** Fills with 0. @returns `t` */
export function zeros(t: Tensor): Tensor {
  t.storage.backend.fill(t.buf, 0, t.size);
  return t;
}

/** Fills with 1. @returns `t` */
export function ones(t: Tensor): Tensor {
  t.storage.backend.fill(t.buf, 1, t.size);
  return t;
}

/**
 * Fills with a constant value.
 * @param t the tensor to overwrite
 * @param value the value
 * @returns `t`
 * @example init.constant(layer.bias, 0.1);
 */
export function constant(t: Tensor, value: number): Tensor {
  checkFinite(value, 'value', 'constant');
  t.storage.backend.fill(t.buf, value, t.size);
  return t;
}

export interface UniformOptions extends RandomInit {
  /** Lower bound (default 0, as PyTorch's `uniform_`). */
  low?: number;
  /** Upper bound (default 1). */
  high?: number;
}

/**
 * Fills with values drawn from U(low, high).
 * @param t the tensor to overwrite
 * @param opts bounds (default [0, 1)) and the random source
 * @returns `t`
 * @example init.uniform(w, { low: -0.05, high: 0.05, seed: 0 });
 */
export function uniform(t: Tensor, opts: UniformOptions = {}): Tensor {
  const lo = opts.low ?? 0;
  const hi = opts.high ?? 1;
  checkFinite(lo, 'low', 'uniform');
  checkFinite(hi, 'high', 'uniform');
  if (lo > hi) throw new RangeError(`uniform(): low (${lo}) must not exceed high (${hi})`);
  return uniformFill(t, lo, hi, resolveRng(opts, 'uniform()'));
}

export interface NormalOptions extends RandomInit {
  /** Mean (default 0). */
  mean?: number;
  /** Standard deviation (default 1). */
  std?: number;
}

/**
 * Fills with values drawn from N(mean, std²).
 * @param t the tensor to overwrite
 * @param opts mean (0), std (1) and the random source
 * @returns `t`
 * @example init.normal(w, { std: 0.02, seed: 0 }); // GPT-2's initialisation
 */
export function normal(t: Tensor, opts: NormalOptions = {}): Tensor {
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  checkFinite(mean, 'mean', 'normal');
  checkFinite(std, 'std', 'normal');
  if (std < 0) throw new RangeError(`normal(): std must be non-negative, got ${std}`);
  return normalFill(t, mean, std, resolveRng(opts, 'normal()'));
}

/** Φ(x), the standard normal CDF. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/** erfc with a fractional error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Φ⁻¹(p) by Acklam's rational approximation (relative error below 1.2e-9). */
function normalQuantile(p: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const plow = 0.02425;
  if (p < plow) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (p > 1 - plow) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -(
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

export interface TruncatedNormalOptions extends NormalOptions {
  /** Lower cut-off, in absolute units (default −2, as PyTorch's `trunc_normal_`). */
  a?: number;
  /** Upper cut-off, in absolute units (default 2). */
  b?: number;
}

/**
 * Fills with values from N(mean, std²) truncated to [a, b]: draws u ~ U(Φ(α), Φ(β)) with α = (a − mean)/std,
 * β = (b − mean)/std and returns mean + std·Φ⁻¹(u), the inverse-CDF method PyTorch's `trunc_normal_` uses. The
 * bounds are absolute values, not multiples of std (as PyTorch; Keras's TruncatedNormal cuts at 2 std instead).
 *
 * @param t the tensor to overwrite
 * @param opts mean (0), std (1), a (−2), b (2) and the random source
 * @returns `t`
 * @example init.truncatedNormal(w, { std: 0.02, a: -0.04, b: 0.04, seed: 0 }); // ViT's initialisation
 */
export function truncatedNormal(t: Tensor, opts: TruncatedNormalOptions = {}): Tensor {
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  const a = opts.a ?? -2;
  const b = opts.b ?? 2;
  for (const [k, v] of [
    ['mean', mean],
    ['std', std],
    ['a', a],
    ['b', b],
  ] as const)
    checkFinite(v, k, 'truncatedNormal');
  if (!(std > 0)) throw new RangeError(`truncatedNormal(): std must be positive, got ${std}`);
  if (!(a < b))
    throw new RangeError(`truncatedNormal(): the lower bound a (${a}) must be below the upper bound b (${b})`);
  const rng = resolveRng(opts, 'truncatedNormal()');
  const lo = normalCdf((a - mean) / std);
  const hi = normalCdf((b - mean) / std);
  return fill(t, () => {
    const v = mean + std * normalQuantile(lo + (hi - lo) * rng.uniform());
    return v < a ? a : v > b ? b : v;
  });
}

export interface GainOptions extends RandomInit {
  /** Scale factor (default 1); see `calculateGain`. */
  gain?: number;
}

/**
 * Glorot/Xavier uniform: U(−bound, bound) with bound = gain·√(6 / (fanIn + fanOut)), which keeps the variance of
 * activations and of gradients equal across layers for symmetric saturating activations.
 *
 * Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010.
 *
 * @param t a weight of at least 2 dimensions
 * @param opts gain (1) and the random source
 * @returns `t`
 * @example init.xavierUniform(layer.weight, { gain: calculateGain('tanh'), seed: 0 });
 */
export function xavierUniform(t: Tensor, opts: GainOptions = {}): Tensor {
  const gain = opts.gain ?? 1;
  checkFinite(gain, 'gain', 'xavierUniform');
  const { fanIn, fanOut } = computeFans(t.shape, 'xavierUniform');
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniformFill(t, -bound, bound, resolveRng(opts, 'xavierUniform()'));
}

/**
 * Glorot/Xavier normal: N(0, std²) with std = gain·√(2 / (fanIn + fanOut)).
 *
 * Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010.
 *
 * @param t a weight of at least 2 dimensions
 * @param opts gain (1) and the random source
 * @returns `t`
 * @example init.xavierNormal(layer.weight, { seed: 0 });
 */
export function xavierNormal(t: Tensor, opts: GainOptions = {}): Tensor {
  const gain = opts.gain ?? 1;
  checkFinite(gain, 'gain', 'xavierNormal');
  const { fanIn, fanOut } = computeFans(t.shape, 'xavierNormal');
  const std = gain * Math.sqrt(2 / (fanIn + fanOut));
  return normalFill(t, 0, std, resolveRng(opts, 'xavierNormal()'));
}

export type FanMode = 'fanIn' | 'fanOut';

export interface KaimingOptions extends RandomInit {
  /** The negative slope of the leaky ReLU that follows (only used with nonlinearity 'leakyRelu'; default 0). */
  a?: number;
  /** 'fanIn' (default) keeps the variance of activations in the forward pass; 'fanOut' that of gradients backward. */
  mode?: FanMode;
  /** The nonlinearity that follows (default 'leakyRelu' with a = 0, i.e. ReLU's gain √2, as PyTorch). */
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, opts: KaimingOptions, fn: string): number {
  const mode = opts.mode ?? 'fanIn';
  if (mode !== 'fanIn' && mode !== 'fanOut') {
    throw new TypeError(`${fn}(): mode '${mode}' is not supported, please use one of fanIn, fanOut`);
  }
  const a = opts.a ?? 0;
  checkFinite(a, 'a', fn);
  const fans = computeFans(t.shape, fn);
  const fan = mode === 'fanIn' ? fans.fanIn : fans.fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leakyRelu', a);
  return gain / Math.sqrt(fan);
}

/**
 * He/Kaiming uniform: U(−bound, bound) with bound = gain·√(3 / fan), fan = fanIn or fanOut, gain from
 * `calculateGain(nonlinearity, a)`. With ReLU it keeps the variance of activations (fanIn) or gradients (fanOut)
 * constant through depth, which Xavier's init does not.
 *
 * He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification", ICCV 2015.
 *
 * @param t a weight of at least 2 dimensions
 * @param opts a (0), mode ('fanIn'), nonlinearity ('leakyRelu') and the random source
 * @returns `t`
 * @example init.kaimingUniform(layer.weight, { nonlinearity: 'relu', seed: 0 });
 */
export function kaimingUniform(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, opts, 'kaimingUniform');
  return uniformFill(t, -bound, bound, resolveRng(opts, 'kaimingUniform()'));
}

/**
 * He/Kaiming normal: N(0, std²) with std = gain / √fan, fan = fanIn or fanOut.
 *
 * He et al., "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification", ICCV 2015.
 *
 * @param t a weight of at least 2 dimensions
 * @param opts a (0), mode ('fanIn'), nonlinearity ('leakyRelu') and the random source
 * @returns `t`
 * @example init.kaimingNormal(model.get('0.weight'), { mode: 'fanIn', nonlinearity: 'relu', seed: 0 });
 */
export function kaimingNormal(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const std = kaimingStd(t, opts, 'kaimingNormal');
  return normalFill(t, 0, std, resolveRng(opts, 'kaimingNormal()'));
}

/**
 * LeCun uniform: U(−bound, bound) with bound = √(3 / fanIn), i.e. variance 1/fanIn.
 *
 * LeCun et al., "Efficient BackProp", 1998; the init that self-normalising (SELU) networks need (Klambauer et al. 2017).
 *
 * @param t a weight of at least 2 dimensions
 * @param opts the random source
 * @returns `t`
 */
export function lecunUniform(t: Tensor, opts: RandomInit = {}): Tensor {
  const bound = Math.sqrt(3 / computeFans(t.shape, 'lecunUniform').fanIn);
  return uniformFill(t, -bound, bound, resolveRng(opts, 'lecunUniform()'));
}

/**
 * Glorot & Bengio's "standard" initialization: U(−1/√fanIn, 1/√fanIn), i.e. variance 1/(3·fanIn), a third of what
 * keeps the activations' variance through a linear layer. The common heuristic before their normalized (Xavier) init,
 * and the one whose shrinking activations and gradients through depth their paper shows (eq. 1, figures 3 to 7). The
 * same bound as PyTorch's default for `nn.Linear` (kaiming_uniform with a = √5), here as a named initializer.
 *
 * X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural networks", AISTATS 2010.
 *
 * @param t a weight of at least 2 dimensions
 * @param opts the random source
 * @returns `t`
 * @example init.standardUniform(layer.weight, { seed: 0 }); // Glorot & Bengio's baseline, against init.xavierUniform
 */
export function standardUniform(t: Tensor, opts: RandomInit = {}): Tensor {
  const bound = 1 / Math.sqrt(computeFans(t.shape, 'standardUniform').fanIn);
  return uniformFill(t, -bound, bound, resolveRng(opts, 'standardUniform()'));
}

/**
 * LeCun normal: N(0, 1/fanIn). (Keras's `lecun_normal` draws a truncated normal with the same variance instead.)
 *
 * LeCun et al., "Efficient BackProp", 1998.
 *
 * @param t a weight of at least 2 dimensions
 * @param opts the random source
 * @returns `t`
 * @example init.lecunNormal(layer.weight, { seed: 0 }); // with nn.SELU
 */
export function lecunNormal(t: Tensor, opts: RandomInit = {}): Tensor {
  const std = 1 / Math.sqrt(computeFans(t.shape, 'lecunNormal').fanIn);
  return normalFill(t, 0, std, resolveRng(opts, 'lecunNormal()'));
}

/**
 * A (semi-)orthogonal matrix times `gain`: the tensor is viewed as [rows, cols] = [shape[0], ∏ rest], filled with
 * N(0, 1), and replaced by the Q of its QR decomposition with R's diagonal made positive (which makes Q uniformly
 * distributed over orthogonal matrices). Rows are orthonormal when rows ≤ cols, columns otherwise. Orthogonal
 * matrices keep every singular value at 1, so deep linear nets and RNNs neither shrink nor blow up signals.
 *
 * Saxe et al., "Exact solutions to the nonlinear dynamics of learning in deep linear neural networks", ICLR 2014.
 *
 * @param t a tensor of at least 2 dimensions
 * @param opts gain (1) and the random source
 * @returns `t`
 * @example init.orthogonal(rnn.get('weight_hh_l0'), { seed: 0 });
 */
export function orthogonal(t: Tensor, opts: GainOptions = {}): Tensor {
  if (t.ndim < 2) {
    throw new Error(`orthogonal(): only tensors with 2 or more dimensions are supported, got shape [${t.shape}]`);
  }
  const gain = opts.gain ?? 1;
  checkFinite(gain, 'gain', 'orthogonal');
  const rows = t.shape[0]!;
  const cols = t.size / rows;
  if (t.size === 0) return t;
  const rng = resolveRng(opts, 'orthogonal()');
  // A is m×n with m ≥ n, stored column by column; the columns of Q are orthonormalised in turn
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const q = new Float64Array(m * n); // column j at [j*m, (j+1)*m)
  const flat = new Float64Array(rows * cols);
  for (let i = 0; i < flat.length; i++) flat[i] = rng.normal();
  for (let j = 0; j < n; j++)
    for (let i = 0; i < m; i++) q[j * m + i] = tall ? flat[i * cols + j]! : flat[j * cols + i]!;
  for (let j = 0; j < n; j++) {
    const cj = j * m;
    // modified Gram-Schmidt, twice ("twice is enough", Giraud et al. 2005) for orthogonality to rounding error
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        const ck = k * m;
        let dot = 0;
        for (let i = 0; i < m; i++) dot += q[ck + i]! * q[cj + i]!;
        for (let i = 0; i < m; i++) q[cj + i]! -= dot * q[ck + i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += q[cj + i]! * q[cj + i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < m; i++) q[cj + i]! /= norm;
  }
  const d = t.data;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) d[r * cols + c] = gain * (tall ? q[c * m + r]! : q[r * m + c]!);
  }
  return t;
}

/**
 * The identity matrix (a 2-D tensor; ones on the diagonal of a non-square one). Keeps the inputs in linear layers.
 * @param t a 2-D tensor
 * @returns `t`
 */
export function eye(t: Tensor): Tensor {
  if (t.ndim !== 2) throw new Error(`eye(): only 2-D tensors are supported, got shape [${t.shape}]`);
  const [r, c] = t.shape as [number, number];
  const d = t.data;
  d.fill(0);
  for (let i = 0; i < Math.min(r, c); i++) d[i * c + i] = 1;
  return t;
}

/**
 * The Dirac delta for convolution weights [out, in, ...kernel] (3-, 4- or 5-D): the centre tap of filter i reads
 * input channel i, so the convolution starts as the identity on as many channels as possible. With `groups`, each
 * group of out/groups filters gets its own identity.
 *
 * @param t a 3-, 4- or 5-D convolution weight
 * @param opts groups (1)
 * @returns `t`
 * @example init.dirac(conv.weight);
 */
export function dirac(t: Tensor, opts: { groups?: number } = {}): Tensor {
  const groups = opts.groups ?? 1;
  if (t.ndim < 3 || t.ndim > 5) {
    throw new Error(`dirac(): only 3-, 4- and 5-D tensors are supported, got shape [${t.shape}]`);
  }
  const out = t.shape[0]!;
  if (!Number.isInteger(groups) || groups < 1 || out % groups !== 0) {
    throw new Error(`dirac(): dim 0 (${out}) must be divisible by groups (${groups})`);
  }
  const perGroup = out / groups;
  const minDim = Math.min(perGroup, t.shape[1]!);
  const kernel = t.shape.slice(2);
  const strides: number[] = [];
  let acc = 1;
  for (let i = t.ndim - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= t.shape[i]!;
  }
  const d = t.data;
  d.fill(0);
  let centre = 0;
  for (let k = 0; k < kernel.length; k++) centre += Math.floor(kernel[k]! / 2) * strides[k + 2]!;
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < minDim; i++) d[(g * perGroup + i) * strides[0]! + i * strides[1]! + centre] = 1;
  }
  return t;
}
