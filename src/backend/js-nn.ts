/**
 * The reference kernels of the nn ops (spec.ts): batch and layer normalisation, the negative log-likelihood and
 * binary cross-entropy losses, adaptive average pooling, forward and backward. `JsBackend` calls these; the C
 * kernels for normalisation (native/kernels/norm.c) reproduce them bit for bit.
 */
import { type Backend, type Buf, Unary } from './types.js';

export function batchNorm(
  x: Buf,
  weight: Buf,
  bias: Buf,
  runningMean: Buf,
  runningVar: Buf,
  mean: Buf,
  invstd: Buf,
  out: Buf,
  n: number,
  c: number,
  inner: number,
  training: boolean,
  updateRunning: boolean,
  momentum: number,
  eps: number,
): void {
  const xs = x.data;
  const ws = weight.data;
  const bs = bias.data;
  const rm = runningMean.data;
  const rv = runningVar.data;
  const ms = mean.data;
  const is = invstd.data;
  const os = out.data;
  const m = n * inner;
  for (let ch = 0; ch < c; ch++) {
    let mu: number;
    let inv: number;
    if (training) {
      // float64 sums per run of `inner` values (one sample's channel), the runs added in batch order
      let s = 0;
      for (let b = 0; b < n; b++) s += laneSum(xs, (b * c + ch) * inner, inner, 0, 0);
      mu = s / m;
      let v = 0;
      for (let b = 0; b < n; b++) v += laneSum(xs, (b * c + ch) * inner, inner, mu, 1);
      inv = 1 / Math.sqrt(v / m + eps);
      if (updateRunning) {
        rm[ch] = (1 - momentum) * rm[ch]! + momentum * mu;
        rv[ch] = (1 - momentum) * rv[ch]! + momentum * (v / (m - 1));
      }
    } else {
      mu = rm[ch]!;
      inv = 1 / Math.sqrt(rv[ch]! + eps);
    }
    ms[ch] = mu;
    is[ch] = inv;
    const sc = inv * ws[ch]!;
    const sh = bs[ch]! - mu * sc;
    for (let b = 0; b < n; b++) {
      const base = (b * c + ch) * inner;
      for (let i = 0; i < inner; i++) os[base + i] = xs[base + i]! * sc + sh;
    }
  }
}
export function batchNormGrad(
  x: Buf,
  gy: Buf,
  weight: Buf,
  mean: Buf,
  invstd: Buf,
  gx: Buf,
  gw: Buf,
  gb: Buf,
  n: number,
  c: number,
  inner: number,
  training: boolean,
): void {
  const xs = x.data;
  const gs = gy.data;
  const ws = weight.data;
  const ms = mean.data;
  const iss = invstd.data;
  const gxs = gx.data;
  const m = n * inner;
  const two = gradSums;
  for (let ch = 0; ch < c; ch++) {
    const mu = ms[ch]!;
    const is = iss[ch]!;
    let sumG = 0;
    let sumGX = 0;
    for (let b = 0; b < n; b++) {
      laneSums2(gs, xs, null, (b * c + ch) * inner, inner, mu, is, two);
      sumG += two[0]!;
      sumGX += two[1]!;
    }
    gb.data[ch] = sumG;
    gw.data[ch] = sumGX;
    const wv = ws[ch]!;
    const k1 = sumG / m;
    const k2 = sumGX / m;
    for (let b = 0; b < n; b++) {
      const base = (b * c + ch) * inner;
      if (training) {
        for (let i = 0; i < inner; i++) {
          const xh = (xs[base + i]! - mu) * is;
          gxs[base + i] = wv * is * (gs[base + i]! - k1 - xh * k2);
        }
      } else for (let i = 0; i < inner; i++) gxs[base + i] = wv * is * gs[base + i]!;
    }
  }
}
/** addRelu (spec.ts): binary's float32 Add, then unary's Relu (NaN stays NaN, -0 gives +0). */
export function addRelu(a: Buf, b: Buf, out: Buf, n: number): void {
  const as = a.data;
  const bs = b.data;
  const os = out.data;
  for (let i = 0; i < n; i++) {
    const v = Math.fround(as[i]! + bs[i]!);
    os[i] = v <= 0 ? 0 : v;
  }
}

/** reluGradSum (spec.ts): binary's float32 Add, then unaryGrad's Relu read from the output y. */
export function reluGradSum(a: Buf, b: Buf, y: Buf, out: Buf, n: number): void {
  const as = a.data;
  const bs = b.data;
  const ys = y.data;
  const os = out.data;
  for (let i = 0; i < n; i++) {
    const g = Math.fround(as[i]! + bs[i]!);
    os[i] = ys[i]! > 0 ? g : 0;
  }
}

/** batchNormRelu (spec-nn.ts) on `be`'s kernels: batchNorm, then unary's ReLU over its output in place. */
export function batchNormRelu(
  be: Backend,
  x: Buf,
  weight: Buf,
  bias: Buf,
  runningMean: Buf,
  runningVar: Buf,
  mean: Buf,
  invstd: Buf,
  out: Buf,
  n: number,
  c: number,
  inner: number,
  training: boolean,
  updateRunning: boolean,
  momentum: number,
  eps: number,
): void {
  be.batchNorm(
    x,
    weight,
    bias,
    runningMean,
    runningVar,
    mean,
    invstd,
    out,
    n,
    c,
    inner,
    training,
    updateRunning,
    momentum,
    eps,
  );
  be.unary(Unary.Relu, out, out, n * c * inner, 0, 0);
}

/**
 * batchNormReluGrad (spec-nn.ts) on `be`'s kernels: the ReLU's gradient into gx (unaryGrad reads y > 0, which is
 * where its input was > 0), then batchNormGrad of it, in place (each channel's values are read before written).
 */
export function batchNormReluGrad(
  be: Backend,
  x: Buf,
  gy: Buf,
  y: Buf,
  weight: Buf,
  mean: Buf,
  invstd: Buf,
  gx: Buf,
  gw: Buf,
  gb: Buf,
  n: number,
  c: number,
  inner: number,
  training: boolean,
): void {
  be.unaryGrad(Unary.Relu, y, y, gy, gx, n * c * inner, 0, 0);
  be.batchNormGrad(x, gx, weight, mean, invstd, gx, gw, gb, n, c, inner, training);
}

/** crossEntropy (spec-nn.ts): log-softmax by the row's maximum, label smoothing, ignored rows give 0. */
export function crossEntropy(
  x: Buf,
  targets: Buf,
  probs: Buf,
  loss: Buf,
  rows: number,
  cols: number,
  smoothing: number,
  ignoreIndex: number,
): void {
  const xs = x.data;
  const ts = targets.data;
  const ps = probs.data;
  const ls = loss.data;
  for (let r = 0; r < rows; r++) {
    const b = r * cols;
    let mx = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < cols; c++) if (xs[b + c]! > mx) mx = xs[b + c]!;
    let s = 0;
    for (let c = 0; c < cols; c++) {
      const e = Math.exp(xs[b + c]! - mx);
      ps[b + c] = e;
      s += e;
    }
    const lse = Math.log(s) + mx;
    let sumLogp = 0;
    for (let c = 0; c < cols; c++) {
      ps[b + c]! /= s;
      sumLogp += xs[b + c]! - lse;
    }
    const t = ts[r]!;
    if (t === ignoreIndex) {
      ls[r] = 0;
      continue;
    }
    ls[r] = -(1 - smoothing) * (xs[b + t]! - lse) - (smoothing / cols) * sumLogp;
  }
}

/** crossEntropyGrad (spec-nn.ts): (softmax − the smoothed target) · the row's scale; ignored rows give 0. */
export function crossEntropyGrad(
  probs: Buf,
  targets: Buf,
  scale: Buf,
  gx: Buf,
  rows: number,
  cols: number,
  smoothing: number,
  ignoreIndex: number,
): void {
  const ps = probs.data;
  const ts = targets.data;
  const ss = scale.data;
  const gs = gx.data;
  const off = smoothing / cols;
  for (let r = 0; r < rows; r++) {
    const b = r * cols;
    const t = ts[r]!;
    if (t === ignoreIndex) {
      gs.fill(0, b, b + cols);
      continue;
    }
    const sc = ss[r]!;
    for (let c = 0; c < cols; c++) gs[b + c] = sc * (ps[b + c]! - off);
    gs[b + t]! -= sc * (1 - smoothing);
  }
}

export function layerNorm(
  x: Buf,
  weight: Buf,
  bias: Buf,
  mean: Buf,
  rstd: Buf,
  out: Buf,
  rows: number,
  d: number,
  eps: number,
): void {
  const xs = x.data;
  const ws = weight.data;
  const bs = bias.data;
  const os = out.data;
  for (let r = 0; r < rows; r++) {
    const b = r * d;
    const mu = laneSum(xs, b, d, 0, 0) / d;
    const is = 1 / Math.sqrt(laneSum(xs, b, d, mu, 1) / d + eps);
    mean.data[r] = mu;
    rstd.data[r] = is;
    for (let i = 0; i < d; i++) os[b + i] = (xs[b + i]! - mu) * is * ws[i]! + bs[i]!;
  }
}
export function layerNormGrad(
  x: Buf,
  gy: Buf,
  weight: Buf,
  mean: Buf,
  rstd: Buf,
  gx: Buf,
  gw: Buf,
  gb: Buf,
  rows: number,
  d: number,
): void {
  const xs = x.data;
  const gs = gy.data;
  const ws = weight.data;
  const ms = mean.data;
  const rs = rstd.data;
  const gxs = gx.data;
  // weight and bias gradients: per column, float64 over the rows in order, rounded once
  const aw = new Float64Array(d);
  const ab = new Float64Array(d);
  const two = gradSums;
  for (let r = 0; r < rows; r++) {
    const b = r * d;
    const mu = ms[r]!;
    const is = rs[r]!;
    for (let i = 0; i < d; i++) {
      const g = gs[b + i]!;
      aw[i]! += g * ((xs[b + i]! - mu) * is);
      ab[i]! += g;
    }
    laneSums2(gs, xs, ws, b, d, mu, is, two);
    const s1 = two[0]!;
    const s2 = two[1]!;
    for (let i = 0; i < d; i++) {
      const xh = (xs[b + i]! - mu) * is;
      const gh = gs[b + i]! * ws[i]!;
      gxs[b + i] = is * (gh - s1 / d - (xh * s2) / d);
    }
  }
  gw.data.set(aw);
  gb.data.set(ab);
}
export function nllLoss(x: Buf, targets: Buf, loss: Buf, rows: number, cols: number, ignoreIndex: number): void {
  const xs = x.data;
  const ts = targets.data;
  const ls = loss.data;
  for (let r = 0; r < rows; r++) {
    const t = ts[r]!;
    ls[r] = t === ignoreIndex ? 0 : -xs[r * cols + t]!;
  }
}
export function nllLossGrad(targets: Buf, scale: Buf, gx: Buf, rows: number, cols: number, ignoreIndex: number): void {
  const ts = targets.data;
  const ss = scale.data;
  const gs = gx.data;
  gs.fill(0, 0, rows * cols);
  for (let r = 0; r < rows; r++) {
    const t = ts[r]!;
    if (t !== ignoreIndex) gs[r * cols + t] = -ss[r]!;
  }
}
export function bceWithLogits(x: Buf, target: Buf, posWeight: Buf, out: Buf, n: number): void {
  const xs = x.data;
  const ys = target.data;
  const ws = posWeight.data;
  const os = out.data;
  for (let i = 0; i < n; i++) {
    const xv = xs[i]!;
    const y = ys[i]!;
    const sp = Math.max(-xv, 0) + Math.log1p(Math.exp(-Math.abs(xv))); // log(1 + e^-x), stable
    os[i] = (1 - y) * xv + (1 + (ws[i]! - 1) * y) * sp;
  }
}
export function bceWithLogitsGrad(x: Buf, target: Buf, posWeight: Buf, g: Buf, gx: Buf, gTarget: Buf, n: number): void {
  const xs = x.data;
  const ys = target.data;
  const ws = posWeight.data;
  const gs = g.data;
  const gxs = gx.data;
  const gts = gTarget.data;
  for (let i = 0; i < n; i++) {
    const xv = xs[i]!;
    const y = ys[i]!;
    const w = ws[i]!;
    const s = xv >= 0 ? 1 / (1 + Math.exp(-xv)) : Math.exp(xv) / (1 + Math.exp(xv));
    gxs[i] = gs[i]! * (1 - y - (1 + (w - 1) * y) * (1 - s));
    const sp = Math.max(-xv, 0) + Math.log1p(Math.exp(-Math.abs(xv)));
    gts[i] = gs[i]! * (-xv + (w - 1) * sp);
  }
}
export function adaptiveAvgPool2d(
  x: Buf,
  out: Buf,
  planes: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
): void {
  const xs = x.data;
  const os = out.data;
  adaptiveWindows(planes, h, w, oh, ow, (o, xb, y0, y1, x0, x1) => {
    let s = 0;
    for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += xs[xb + y * w + xx]!;
    os[o] = s / ((y1 - y0) * (x1 - x0));
  });
}
export function adaptiveAvgPool2dGrad(
  gy: Buf,
  dx: Buf,
  planes: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
): void {
  const gs = gy.data;
  const ds = dx.data;
  ds.fill(0, 0, planes * h * w);
  adaptiveWindows(planes, h, w, oh, ow, (o, xb, y0, y1, x0, x1) => {
    const g = gs[o]! / ((y1 - y0) * (x1 - x0));
    for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) ds[xb + y * w + xx]! += g;
  });
}
/**
 * The order in which the normalisation kernels sum a run of `len` float32 values in float64, which the C kernels
 * reproduce bit for bit while vectorising: value j goes to lane j mod 8 for every full group of eight, the lanes are
 * added pairwise, ((0+1) + (2+3)) + ((4+5) + (6+7)), then the remaining values in order. With `sq` = 1 each term is
 * (x − mu)², else x (mu unused).
 */
function laneSum(xs: Float32Array, o: number, len: number, mu: number, sq: 0 | 1): number {
  const l = lanes;
  l.fill(0);
  let j = 0;
  for (; j + 8 <= len; j += 8) {
    for (let k = 0; k < 8; k++) {
      const v = xs[o + j + k]!;
      if (sq) {
        const dv = v - mu;
        l[k]! += dv * dv;
      } else l[k]! += v;
    }
  }
  let s = l[0]! + l[1]! + (l[2]! + l[3]!) + (l[4]! + l[5]! + (l[6]! + l[7]!));
  for (; j < len; j++) {
    const v = xs[o + j]!;
    if (sq) {
      const dv = v - mu;
      s += dv * dv;
    } else s += v;
  }
  return s;
}

/**
 * Two sums of a normalisation's backward over a run, in `laneSum`'s order: out[0] = Σ ĝ and out[1] = Σ ĝ·x̂, where
 * x̂ = (x − mu)·is and ĝ = g·w[j] (or g without `ws`).
 */
function laneSums2(
  gs: Float32Array,
  xs: Float32Array,
  ws: Float32Array | null,
  o: number,
  len: number,
  mu: number,
  is: number,
  out: Float64Array,
): void {
  const a = lanes;
  const b = lanes2;
  a.fill(0);
  b.fill(0);
  let j = 0;
  for (; j + 8 <= len; j += 8) {
    for (let k = 0; k < 8; k++) {
      const g = ws ? gs[o + j + k]! * ws[j + k]! : gs[o + j + k]!;
      a[k]! += g;
      b[k]! += g * ((xs[o + j + k]! - mu) * is);
    }
  }
  let s1 = a[0]! + a[1]! + (a[2]! + a[3]!) + (a[4]! + a[5]! + (a[6]! + a[7]!));
  let s2 = b[0]! + b[1]! + (b[2]! + b[3]!) + (b[4]! + b[5]! + (b[6]! + b[7]!));
  for (; j < len; j++) {
    const g = ws ? gs[o + j]! * ws[j]! : gs[o + j]!;
    s1 += g;
    s2 += g * ((xs[o + j]! - mu) * is);
  }
  out[0] = s1;
  out[1] = s2;
}
const lanes = new Float64Array(8);
const lanes2 = new Float64Array(8);
const gradSums = new Float64Array(2);

/**
 * Calls fn for each output cell o of adaptive average pooling with its plane's offset in the input and its window
 * [y0, y1) × [x0, x1) (PyTorch's start_index / end_index).
 */
function adaptiveWindows(
  planes: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
  fn: (o: number, xb: number, y0: number, y1: number, x0: number, x1: number) => void,
): void {
  for (let p = 0; p < planes; p++) {
    for (let i = 0; i < oh; i++) {
      const y0 = Math.floor((i * h) / oh);
      const y1 = Math.ceil(((i + 1) * h) / oh);
      for (let j = 0; j < ow; j++)
        fn((p * oh + i) * ow + j, p * h * w, y0, y1, Math.floor((j * w) / ow), Math.ceil(((j + 1) * w) / ow));
    }
  }
}

/** linearBias (spec-nn.ts) on `be`'s kernels: the bias broadcast into out, the product added, then the ReLU. */
export function linearBias(
  be: Backend,
  x: Buf,
  w: Buf,
  bias: Buf,
  out: Buf,
  rows: number,
  inF: number,
  outF: number,
  relu: boolean,
): void {
  be.copyBlocks(bias, 0, 0, out, 0, outF, outF, rows, false);
  be.sgemm(false, true, rows, outF, inF, 1, x, 0, inF, w, 0, inF, 1, out, 0, outF);
  if (relu) be.unary(Unary.Relu, out, out, rows * outF, 0, 0);
}

/** reluBiasGrad (spec-nn.ts) on `be`'s kernels: y > 0 exactly where the ReLU's input was, so y serves as its x. */
export function reluBiasGrad(be: Backend, gy: Buf, y: Buf, gx: Buf, gb: Buf, rows: number, cols: number): void {
  be.unaryGrad(Unary.Relu, y, y, gy, gx, rows * cols, 0, 0);
  be.sumAxis(gx, gb, 1, rows, cols);
}

export * from './js-conv.js';
export * from './js-rnn.js';
