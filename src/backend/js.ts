/**
 * The reference backend: every kernel in plain TypeScript over Float32Arrays. It is the definition the native and
 * wasm kernels are tested against, and the fallback for any kernel they do not override.
 */

import { checkThreadCount } from './threads.js';
import { type Backend, type BackendName, Binary, type Buf, type ConvGeom, type PoolGeom, Unary } from './types.js';

/** A buffer backed by an ordinary Float32Array. */
export class ArrayBuf implements Buf {
  readonly ptr = 0;
  constructor(readonly data: Float32Array) {}
  get size(): number {
    return this.data.length;
  }
}

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const INV_SQRT2 = 0.7071067811865476;
const INV_SQRT_2PI = 0.3989422804014327;

/** erf(x) in float64: the Maclaurin series below |x| = 2.5, erfc's continued fraction above (far below float32's
 * resolution either way, which is all the exact GELU needs). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = sum * 1.1283791670955126;
    return x < 0 ? -r : r;
  }
  // Continued fraction for erfc, converges fast for |x| >= 2.5
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / (ax + f) / 1.7724538509055159;
  const r = 1 - erfc;
  return x < 0 ? -r : r;
}

export function unaryScalar(op: Unary, x: number, a: number, b: number): number {
  switch (op) {
    case Unary.Neg:
      return -x;
    case Unary.Exp:
      return Math.exp(x);
    case Unary.Log:
      return Math.log(x);
    case Unary.Sqrt:
      return Math.sqrt(x);
    case Unary.Abs:
      return Math.abs(x);
    case Unary.Relu:
      // NaN stays NaN, as PyTorch; -0 gives +0.
      return x <= 0 ? 0 : x;
    case Unary.LeakyRelu:
      return x > 0 ? x : a * x;
    case Unary.Elu:
      return x > 0 ? x : a * Math.expm1(x);
    case Unary.Selu:
      return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x));
    case Unary.Gelu:
      return 0.5 * x * (1 + erf(x * INV_SQRT2));
    case Unary.Sigmoid:
      return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    case Unary.Tanh:
      return Math.tanh(x);
    case Unary.Softplus:
      return x * a > b ? x : Math.log1p(Math.exp(x * a)) / a;
    case Unary.PowScalar:
      return x ** a;
    case Unary.Clamp: {
      let y = x;
      if (!Number.isNaN(a) && y < a) y = a;
      if (!Number.isNaN(b) && y > b) y = b;
      return y;
    }
    case Unary.Affine:
      return a * x + b;
    case Unary.Square:
      return x * x;
    case Unary.Reciprocal:
      return 1 / x;
    case Unary.Sign:
      return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN;
    case Unary.ScalarDiv:
      return a / x;
    case Unary.ScalarPow:
      return a ** x;
  }
}

/** d f(x) / dx given x and y = f(x). */
export function unaryDerivative(op: Unary, x: number, y: number, a: number, b: number): number {
  switch (op) {
    case Unary.Neg:
      return -1;
    case Unary.Exp:
      return y;
    case Unary.Log:
      return 1 / x;
    case Unary.Sqrt:
      return 0.5 / y;
    case Unary.Abs:
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case Unary.Relu:
      // NOTE: the gradient at exactly 0 is 0, as PyTorch (relu is not maximum(x, 0), whose gradient splits there).
      return x > 0 ? 1 : 0;
    case Unary.LeakyRelu:
      return x > 0 ? 1 : a;
    case Unary.Elu:
      return x > 0 ? 1 : y + a;
    case Unary.Selu:
      return x > 0 ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA;
    case Unary.Gelu: {
      const cdf = 0.5 * (1 + erf(x * INV_SQRT2));
      return cdf + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    }
    case Unary.Sigmoid:
      return y * (1 - y);
    case Unary.Tanh:
      return 1 - y * y;
    case Unary.Softplus: {
      if (x * a > b) return 1;
      const z = Math.exp(x * a);
      return z / (1 + z);
    }
    case Unary.PowScalar:
      return a === 0 ? 0 : a * x ** (a - 1);
    case Unary.Clamp:
      return (!Number.isNaN(a) && x < a) || (!Number.isNaN(b) && x > b) ? 0 : 1;
    case Unary.Affine:
      return a;
    case Unary.Square:
      return 2 * x;
    case Unary.Reciprocal:
      return -y * y;
    case Unary.Sign:
      return 0;
    case Unary.ScalarDiv:
      return -y / x;
    case Unary.ScalarPow:
      return y * Math.log(a);
  }
}

function binaryScalar(op: Binary, x: number, y: number): number {
  switch (op) {
    case Binary.Add:
      return x + y;
    case Binary.Sub:
      return x - y;
    case Binary.Mul:
      return x * y;
    case Binary.Div:
      return x / y;
    case Binary.Pow:
      return x ** y;
    case Binary.Maximum:
      return x !== x || y !== y ? Number.NaN : x > y ? x : y;
    case Binary.Minimum:
      return x !== x || y !== y ? Number.NaN : x < y ? x : y;
  }
}

/** A pool of buffers keyed by size: a training step reuses the previous step's buffers instead of page-faulting. */
export class BufferPool<B extends Buf> {
  private readonly free = new Map<number, B[]>();
  liveBytes = 0;
  pooledBytes = 0;
  freshAllocs = 0;
  constructor(private readonly make: (size: number) => B) {}
  take(size: number): B {
    const list = this.free.get(size);
    const b = list?.pop();
    this.liveBytes += size * 4;
    if (b) {
      this.pooledBytes -= size * 4;
      return b;
    }
    this.freshAllocs++;
    return this.make(size);
  }
  give(b: B): void {
    const size = b.size;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(b);
    this.liveBytes -= size * 4;
    this.pooledBytes += size * 4;
  }
}

export class JsBackend implements Backend {
  readonly name: BackendName = 'js';
  get threads(): number {
    return 1;
  }
  /** The reference runs on the calling thread only: checks `n` and keeps one thread. */
  setThreads(n: number): void {
    checkThreadCount(n);
  }
  protected readonly pool = new BufferPool<Buf>((size) => new ArrayBuf(new Float32Array(size)));

  alloc(size: number): Buf {
    return this.pool.take(size);
  }
  free(buf: Buf): void {
    this.pool.give(buf);
  }
  stats() {
    return { liveBytes: this.pool.liveBytes, pooledBytes: this.pool.pooledBytes, freshAllocs: this.pool.freshAllocs };
  }

  fill(out: Buf, value: number, n: number): void {
    out.data.fill(value, 0, n);
  }
  copy(src: Buf, sOff: number, dst: Buf, dOff: number, n: number): void {
    dst.data.set(src.data.subarray(sOff, sOff + n), dOff);
  }
  copyBlocks(
    src: Buf,
    sOff: number,
    sStride: number,
    dst: Buf,
    dOff: number,
    dStride: number,
    len: number,
    nBlocks: number,
    accumulate: boolean,
  ): void {
    const s = src.data;
    const d = dst.data;
    for (let blk = 0; blk < nBlocks; blk++) {
      const so = sOff + blk * sStride;
      const dO = dOff + blk * dStride;
      if (accumulate) for (let i = 0; i < len; i++) d[dO + i] += s[so + i]!;
      else d.set(s.subarray(so, so + len), dO);
    }
  }
  axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    const xs = x.data;
    const ys = y.data;
    if (alpha === 1) for (let i = 0; i < n; i++) ys[i] += xs[i]!;
    else for (let i = 0; i < n; i++) ys[i] += alpha * xs[i]!;
  }

  axpySumSquares(alpha: number, x: Buf, y: Buf, n: number, xSumSquares?: Float64Array): number {
    const xs = x.data;
    const ys = y.data;
    let s = 0;
    let t = 0;
    for (let i = 0; i < n; i++) {
      const xv = xs[i]!;
      ys[i] += alpha * xv;
      const v = ys[i]!;
      s += v * v;
      t += xv * xv;
    }
    if (xSumSquares) xSumSquares[0] = t;
    return s;
  }

  unary(op: Unary, x: Buf, out: Buf, n: number, a: number, b: number): void {
    const xs = x.data;
    const ys = out.data;
    switch (op) {
      case Unary.Relu:
        for (let i = 0; i < n; i++) {
          const v = xs[i]!;
          ys[i] = v <= 0 ? 0 : v; // NaN stays NaN
        }
        return;
      case Unary.Affine:
        for (let i = 0; i < n; i++) ys[i] = a * xs[i]! + b;
        return;
      default:
        for (let i = 0; i < n; i++) ys[i] = unaryScalar(op, xs[i]!, a, b);
    }
  }
  unaryGrad(op: Unary, x: Buf, y: Buf, gy: Buf, gx: Buf, n: number, a: number, b: number): void {
    const xs = x.data;
    const ys = y.data;
    const gys = gy.data;
    const gxs = gx.data;
    if (op === Unary.Relu) {
      for (let i = 0; i < n; i++) gxs[i] = xs[i]! > 0 ? gys[i]! : 0;
      return;
    }
    for (let i = 0; i < n; i++) gxs[i] = gys[i]! * unaryDerivative(op, xs[i]!, ys[i]!, a, b);
  }
  binary(
    op: Binary,
    a: Buf,
    b: Buf,
    out: Buf,
    shape: readonly number[],
    aStrides: readonly number[],
    bStrides: readonly number[],
  ): void {
    const as = a.data;
    const bs = b.data;
    const os = out.data;
    const nd = shape.length;
    let total = 1;
    for (const s of shape) total *= s;
    if (total === 0) return;
    // Fast path: innermost dimension contiguous or broadcast, loop the rest with an odometer.
    const inner = nd === 0 ? 1 : shape[nd - 1]!;
    const sa = nd === 0 ? 0 : aStrides[nd - 1]!;
    const sb = nd === 0 ? 0 : bStrides[nd - 1]!;
    const idx = new Array<number>(Math.max(nd - 1, 0)).fill(0);
    let ao = 0;
    let bo = 0;
    for (let o = 0; o < total; o += inner) {
      switch (op) {
        case Binary.Add:
          for (let i = 0; i < inner; i++) os[o + i] = as[ao + i * sa]! + bs[bo + i * sb]!;
          break;
        case Binary.Sub:
          for (let i = 0; i < inner; i++) os[o + i] = as[ao + i * sa]! - bs[bo + i * sb]!;
          break;
        case Binary.Mul:
          for (let i = 0; i < inner; i++) os[o + i] = as[ao + i * sa]! * bs[bo + i * sb]!;
          break;
        default:
          for (let i = 0; i < inner; i++) os[o + i] = binaryScalar(op, as[ao + i * sa]!, bs[bo + i * sb]!);
      }
      // advance the odometer over the outer dimensions
      for (let d = nd - 2; d >= 0; d--) {
        idx[d]!++;
        ao += aStrides[d]!;
        bo += bStrides[d]!;
        if (idx[d]! < shape[d]!) break;
        ao -= aStrides[d]! * shape[d]!;
        bo -= bStrides[d]! * shape[d]!;
        idx[d] = 0;
      }
    }
  }

  sumAxis(x: Buf, out: Buf, outer: number, mid: number, inner: number): void {
    const xs = x.data;
    const os = out.data;
    for (let o = 0; o < outer; o++) {
      if (inner === 1) {
        // A contiguous run: float64 accumulation in eight lanes (element m into lane m mod 8), the lanes summed
        // pairwise, then the tail in order, rounded once. native/kernels.c does exactly this (bit-identical sums).
        const xb = o * mid;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let s4 = 0;
        let s5 = 0;
        let s6 = 0;
        let s7 = 0;
        let m = 0;
        for (; m + 8 <= mid; m += 8) {
          const b = xb + m;
          s0 += xs[b]!;
          s1 += xs[b + 1]!;
          s2 += xs[b + 2]!;
          s3 += xs[b + 3]!;
          s4 += xs[b + 4]!;
          s5 += xs[b + 5]!;
          s6 += xs[b + 6]!;
          s7 += xs[b + 7]!;
        }
        let s = s0 + s1 + (s2 + s3) + (s4 + s5 + (s6 + s7));
        for (; m < mid; m++) s += xs[xb + m]!;
        os[o] = s;
        continue;
      }
      const ob = o * inner;
      os.fill(0, ob, ob + inner);
      for (let m = 0; m < mid; m++) {
        const xb = (o * mid + m) * inner;
        for (let i = 0; i < inner; i++) os[ob + i] += xs[xb + i]!;
      }
    }
  }
  maxAxis(x: Buf, out: Buf, arg: Buf, outer: number, mid: number, inner: number): void {
    const xs = x.data;
    const os = out.data;
    const as = arg.data;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let best = Number.NEGATIVE_INFINITY;
        let bi = 0;
        for (let m = 0; m < mid; m++) {
          const v = xs[(o * mid + m) * inner + i]!;
          if (v > best || v !== v) {
            best = v;
            bi = m;
            if (v !== v) break;
          }
        }
        os[o * inner + i] = best;
        as[o * inner + i] = bi;
      }
    }
  }
  sumSquaresMaxAbs(x: Buf, n: number, out: Float64Array): void {
    out[0] = this.sumSquares(x, n);
    out[1] = this.maxAbs(x, n);
  }

  sumSquares(x: Buf, n: number): number {
    const xs = x.data;
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[i]! * xs[i]!;
    return s;
  }
  maxAbs(x: Buf, n: number): number {
    const xs = x.data;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const v = Math.abs(xs[i]!);
      if (v > m || v !== v) {
        m = v;
        if (v !== v) return Number.NaN;
      }
    }
    return m;
  }
  countNonFinite(x: Buf, n: number): number {
    const xs = x.data;
    let c = 0;
    for (let i = 0; i < n; i++) if (!Number.isFinite(xs[i]!)) c++;
    return c;
  }

  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Buf,
    aOff: number,
    lda: number,
    b: Buf,
    bOff: number,
    ldb: number,
    beta: number,
    c: Buf,
    cOff: number,
    ldc: number,
  ): void {
    const A = a.data;
    const B = b.data;
    const C = c.data;
    // element strides of op(A) (m×k) and op(B) (k×n)
    const ai = transA ? 1 : lda;
    const ak = transA ? lda : 1;
    const bk = transB ? 1 : ldb;
    const bj = transB ? ldb : 1;
    const row = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < k; p++) {
        const av = A[aOff + i * ai + p * ak]!;
        const bb = bOff + p * bk;
        for (let j = 0; j < n; j++) row[j] += av * B[bb + j * bj]!;
      }
      const cb = cOff + i * ldc;
      if (beta === 0) for (let j = 0; j < n; j++) C[cb + j] = alpha * row[j]!;
      else for (let j = 0; j < n; j++) C[cb + j] = alpha * row[j]! + beta * C[cb + j]!;
    }
  }

  permute(x: Buf, out: Buf, shape: readonly number[], perm: readonly number[]): void {
    const nd = shape.length;
    const xs = x.data;
    const os = out.data;
    const inStrides = new Array<number>(nd);
    let s = 1;
    for (let d = nd - 1; d >= 0; d--) {
      inStrides[d] = s;
      s *= shape[d]!;
    }
    const total = s;
    const oshape = perm.map((p) => shape[p]!);
    const ostr = perm.map((p) => inStrides[p]!);
    const idx = new Array<number>(nd).fill(0);
    let off = 0;
    for (let o = 0; o < total; o++) {
      os[o] = xs[off]!;
      for (let d = nd - 1; d >= 0; d--) {
        idx[d]!++;
        off += ostr[d]!;
        if (idx[d]! < oshape[d]!) break;
        off -= ostr[d]! * oshape[d]!;
        idx[d] = 0;
      }
    }
  }

  softmax(x: Buf, out: Buf, rows: number, cols: number, log: boolean): void {
    const xs = x.data;
    const os = out.data;
    for (let r = 0; r < rows; r++) {
      const b = r * cols;
      let mx = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < cols; c++) if (xs[b + c]! > mx) mx = xs[b + c]!;
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(xs[b + c]! - mx);
      if (log) {
        const ls = Math.log(s) + mx;
        for (let c = 0; c < cols; c++) os[b + c] = xs[b + c]! - ls;
      } else {
        for (let c = 0; c < cols; c++) os[b + c] = Math.exp(xs[b + c]! - mx) / s;
      }
    }
  }
  softmaxGrad(y: Buf, gy: Buf, gx: Buf, rows: number, cols: number, log: boolean): void {
    const ys = y.data;
    const gys = gy.data;
    const gxs = gx.data;
    for (let r = 0; r < rows; r++) {
      const b = r * cols;
      let s = 0;
      if (log) {
        for (let c = 0; c < cols; c++) s += gys[b + c]!;
        for (let c = 0; c < cols; c++) gxs[b + c] = gys[b + c]! - Math.exp(ys[b + c]!) * s;
      } else {
        for (let c = 0; c < cols; c++) s += gys[b + c]! * ys[b + c]!;
        for (let c = 0; c < cols; c++) gxs[b + c] = ys[b + c]! * (gys[b + c]! - s);
      }
    }
  }
  crossEntropy(
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
  crossEntropyGrad(
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

  im2col(x: Buf, cols: Buf, g: ConvGeom): void {
    const xs = x.data;
    const cs = cols.data;
    const L = g.n * g.oh * g.ow;
    const plane = g.oh * g.ow;
    for (let c = 0; c < g.c; c++) {
      for (let ki = 0; ki < g.kh; ki++) {
        for (let kj = 0; kj < g.kw; kj++) {
          const rowBase = ((c * g.kh + ki) * g.kw + kj) * L;
          for (let n = 0; n < g.n; n++) {
            const xb = (n * g.c + c) * g.h * g.w;
            const cb = rowBase + n * plane;
            for (let oy = 0; oy < g.oh; oy++) {
              const iy = oy * g.sh - g.ph + ki * g.dh;
              const cr = cb + oy * g.ow;
              if (iy < 0 || iy >= g.h) {
                cs.fill(0, cr, cr + g.ow);
                continue;
              }
              const xr = xb + iy * g.w;
              for (let ox = 0; ox < g.ow; ox++) {
                const ix = ox * g.sw - g.pw + kj * g.dw;
                cs[cr + ox] = ix >= 0 && ix < g.w ? xs[xr + ix]! : 0;
              }
            }
          }
        }
      }
    }
  }
  col2im(cols: Buf, dx: Buf, g: ConvGeom): void {
    const cs = cols.data;
    const ds = dx.data;
    ds.fill(0, 0, g.n * g.c * g.h * g.w);
    const L = g.n * g.oh * g.ow;
    const plane = g.oh * g.ow;
    for (let c = 0; c < g.c; c++) {
      for (let ki = 0; ki < g.kh; ki++) {
        for (let kj = 0; kj < g.kw; kj++) {
          const rowBase = ((c * g.kh + ki) * g.kw + kj) * L;
          for (let n = 0; n < g.n; n++) {
            const xb = (n * g.c + c) * g.h * g.w;
            const cb = rowBase + n * plane;
            for (let oy = 0; oy < g.oh; oy++) {
              const iy = oy * g.sh - g.ph + ki * g.dh;
              if (iy < 0 || iy >= g.h) continue;
              const cr = cb + oy * g.ow;
              const xr = xb + iy * g.w;
              for (let ox = 0; ox < g.ow; ox++) {
                const ix = ox * g.sw - g.pw + kj * g.dw;
                if (ix >= 0 && ix < g.w) ds[xr + ix] += cs[cr + ox]!;
              }
            }
          }
        }
      }
    }
  }
  maxPool2d(x: Buf, out: Buf, g: PoolGeom): void {
    const xs = x.data;
    const os = out.data;
    for (let p = 0; p < g.planes; p++) {
      const xb = p * g.h * g.w;
      const ob = p * g.oh * g.ow;
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          let best = Number.NEGATIVE_INFINITY;
          for (let ki = 0; ki < g.kh; ki++) {
            const iy = oy * g.sh - g.ph + ki;
            if (iy < 0 || iy >= g.h) continue;
            for (let kj = 0; kj < g.kw; kj++) {
              const ix = ox * g.sw - g.pw + kj;
              if (ix < 0 || ix >= g.w) continue;
              const v = xs[xb + iy * g.w + ix]!;
              if (v > best || v !== v) best = v;
            }
          }
          os[ob + oy * g.ow + ox] = best;
        }
      }
    }
  }
  maxPool2dGrad(x: Buf, gy: Buf, dx: Buf, g: PoolGeom): void {
    const xs = x.data;
    const gs = gy.data;
    const ds = dx.data;
    ds.fill(0, 0, g.planes * g.h * g.w);
    for (let p = 0; p < g.planes; p++) {
      const xb = p * g.h * g.w;
      const ob = p * g.oh * g.ow;
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          let best = Number.NEGATIVE_INFINITY;
          let bi = -1;
          for (let ki = 0; ki < g.kh; ki++) {
            const iy = oy * g.sh - g.ph + ki;
            if (iy < 0 || iy >= g.h) continue;
            for (let kj = 0; kj < g.kw; kj++) {
              const ix = ox * g.sw - g.pw + kj;
              if (ix < 0 || ix >= g.w) continue;
              const v = xs[xb + iy * g.w + ix]!;
              // As PyTorch's CPU kernel: no early exit, so the last NaN of the window takes the gradient.
              if (v > best || bi < 0 || v !== v) {
                best = v;
                bi = iy * g.w + ix;
              }
            }
          }
          if (bi >= 0) ds[xb + bi] += gs[ob + oy * g.ow + ox]!;
        }
      }
    }
  }
  avgPool2d(x: Buf, out: Buf, g: PoolGeom, countIncludePad: boolean): void {
    const xs = x.data;
    const os = out.data;
    for (let p = 0; p < g.planes; p++) {
      const xb = p * g.h * g.w;
      const ob = p * g.oh * g.ow;
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          let s = 0;
          let cnt = 0;
          const y0 = oy * g.sh - g.ph;
          const x0 = ox * g.sw - g.pw;
          for (let ki = 0; ki < g.kh; ki++) {
            const iy = y0 + ki;
            if (iy < 0 || iy >= g.h) continue;
            for (let kj = 0; kj < g.kw; kj++) {
              const ix = x0 + kj;
              if (ix < 0 || ix >= g.w) continue;
              s += xs[xb + iy * g.w + ix]!;
              cnt++;
            }
          }
          os[ob + oy * g.ow + ox] = s / (countIncludePad ? poolDivisor(g, y0, x0) : cnt);
        }
      }
    }
  }
  avgPool2dGrad(gy: Buf, dx: Buf, g: PoolGeom, countIncludePad: boolean): void {
    const gs = gy.data;
    const ds = dx.data;
    ds.fill(0, 0, g.planes * g.h * g.w);
    for (let p = 0; p < g.planes; p++) {
      const xb = p * g.h * g.w;
      const ob = p * g.oh * g.ow;
      for (let oy = 0; oy < g.oh; oy++) {
        for (let ox = 0; ox < g.ow; ox++) {
          const y0 = oy * g.sh - g.ph;
          const x0 = ox * g.sw - g.pw;
          let cnt = 0;
          if (!countIncludePad) {
            for (let ki = 0; ki < g.kh; ki++)
              for (let kj = 0; kj < g.kw; kj++) {
                const iy = y0 + ki;
                const ix = x0 + kj;
                if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) cnt++;
              }
          }
          const gv = gs[ob + oy * g.ow + ox]! / (countIncludePad ? poolDivisor(g, y0, x0) : cnt);
          for (let ki = 0; ki < g.kh; ki++) {
            const iy = y0 + ki;
            if (iy < 0 || iy >= g.h) continue;
            for (let kj = 0; kj < g.kw; kj++) {
              const ix = x0 + kj;
              if (ix < 0 || ix >= g.w) continue;
              ds[xb + iy * g.w + ix] += gv;
            }
          }
        }
      }
    }
  }

  batchNorm(
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
  batchNormGrad(
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
  layerNorm(
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
  layerNormGrad(
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

  nllLoss(x: Buf, targets: Buf, loss: Buf, rows: number, cols: number, ignoreIndex: number): void {
    const xs = x.data;
    const ts = targets.data;
    const ls = loss.data;
    for (let r = 0; r < rows; r++) {
      const t = ts[r]!;
      ls[r] = t === ignoreIndex ? 0 : -xs[r * cols + t]!;
    }
  }
  nllLossGrad(targets: Buf, scale: Buf, gx: Buf, rows: number, cols: number, ignoreIndex: number): void {
    const ts = targets.data;
    const ss = scale.data;
    const gs = gx.data;
    gs.fill(0, 0, rows * cols);
    for (let r = 0; r < rows; r++) {
      const t = ts[r]!;
      if (t !== ignoreIndex) gs[r * cols + t] = -ss[r]!;
    }
  }
  bceWithLogits(x: Buf, target: Buf, posWeight: Buf, out: Buf, n: number): void {
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
  bceWithLogitsGrad(x: Buf, target: Buf, posWeight: Buf, g: Buf, gx: Buf, gTarget: Buf, n: number): void {
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
  adaptiveAvgPool2d(x: Buf, out: Buf, planes: number, h: number, w: number, oh: number, ow: number): void {
    const xs = x.data;
    const os = out.data;
    adaptiveWindows(planes, h, w, oh, ow, (o, xb, y0, y1, x0, x1) => {
      let s = 0;
      for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += xs[xb + y * w + xx]!;
      os[o] = s / ((y1 - y0) * (x1 - x0));
    });
  }
  adaptiveAvgPool2dGrad(gy: Buf, dx: Buf, planes: number, h: number, w: number, oh: number, ow: number): void {
    const gs = gy.data;
    const ds = dx.data;
    ds.fill(0, 0, planes * h * w);
    adaptiveWindows(planes, h, w, oh, ow, (o, xb, y0, y1, x0, x1) => {
      const g = gs[o]! / ((y1 - y0) * (x1 - x0));
      for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) ds[xb + y * w + xx]! += g;
    });
  }

  adamUpdate(g: Buf, m: Buf, v: Buf, n: number, b1: number, b2: number, eps: number, bc1: number, bc2: number): void {
    const gs = g.data;
    const ms = m.data;
    const vs = v.data;
    for (let i = 0; i < n; i++) {
      const gi = gs[i]!;
      const mi = b1 * ms[i]! + (1 - b1) * gi;
      const vi = b2 * vs[i]! + (1 - b2) * gi * gi;
      ms[i] = mi;
      vs[i] = vi;
      gs[i] = mi / bc1 / (Math.sqrt(vi / bc2) + eps);
    }
  }
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

/** PyTorch's divisor with count_include_pad: the window clipped to the padded input. */
function poolDivisor(g: PoolGeom, y0: number, x0: number): number {
  const y1 = Math.min(y0 + g.kh, g.h + g.ph);
  const x1 = Math.min(x0 + g.kw, g.w + g.pw);
  return (y1 - y0) * (x1 - x0);
}
