/**
 * The reference backend: every kernel in plain TypeScript over Float32Arrays (those of the nn ops in js-nn.ts). It is
 * the definition the native and wasm kernels are tested against, and the fallback for any kernel they do not override.
 */

import { adamApply, adamUpdate } from './js-adam.js';
import { binaryScalar, unaryDerivative, unaryScalar } from './js-math.js';
import * as ref from './js-nn.js';
import { checkThreadCount } from './threads.js';
import type { Backend, BackendName, Buf, KernelMethods } from './types.js';
import { Binary, Unary } from './types.js';

export { erf, unaryDerivative, unaryScalar } from './js-math.js';

/** A buffer backed by an ordinary Float32Array. */
export class ArrayBuf implements Buf {
  readonly ptr = 0;
  constructor(readonly data: Float32Array) {}
  get size(): number {
    return this.data.length;
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
  /** A buffer handed out by `take` was freed by the garbage collector instead of coming back. */
  forget(size: number): void {
    this.liveBytes -= size * 4;
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
  get collectorFrees(): boolean {
    return true;
  }
  collected(size: number): void {
    this.pool.forget(size);
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
      if (accumulate) for (let i = 0; i < len; i++) d[dO + i]! += s[so + i]!;
      else d.set(s.subarray(so, so + len), dO);
    }
  }
  axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    const xs = x.data;
    const ys = y.data;
    if (alpha === 1) for (let i = 0; i < n; i++) ys[i]! += xs[i]!;
    else for (let i = 0; i < n; i++) ys[i]! += alpha * xs[i]!;
  }

  scale(x: Buf, n: number, s: number): void {
    const d = x.data;
    // the product of two float32 values is exact in float64; storing it rounds once: float32 multiplication
    const f = Math.fround(s);
    for (let i = 0; i < n; i++) d[i] = f * d[i]!;
  }

  axpySumSquares(alpha: number, x: Buf, y: Buf, n: number, xSumSquares?: Float64Array): number {
    const xs = x.data;
    const ys = y.data;
    let s = 0;
    let t = 0;
    for (let i = 0; i < n; i++) {
      const xv = xs[i]!;
      ys[i]! += alpha * xv;
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
  addRelu(...a: Parameters<KernelMethods['addRelu']>): void {
    ref.addRelu(...a);
  }
  reluGradSum(...a: Parameters<KernelMethods['reluGradSum']>): void {
    ref.reluGradSum(...a);
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
        // pairwise, then the tail in order, rounded once. native/kernels/reduce.c does exactly this (bit-identical sums).
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
        for (let i = 0; i < inner; i++) os[ob + i]! += xs[xb + i]!;
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
    // one pass, with sumSquares' sum (the same order) and maxAbs' maximum (NaN if any value is)
    const xs = x.data;
    let s = 0;
    let m = 0;
    let nan = false;
    for (let i = 0; i < n; i++) {
      const v = xs[i]!;
      s += v * v;
      const a = Math.abs(v);
      if (a > m) m = a;
      else if (a !== a) nan = true;
    }
    out[0] = s;
    out[1] = nan ? Number.NaN : m;
  }

  sumSquaresColumns(x: Buf, out: Buf, rows: number, cols: number): number {
    // the two kernels' own sums, so the bits are theirs (the C kernel takes both in one pass over x)
    this.sumAxis(x, out, 1, rows, cols);
    return this.sumSquares(x, rows * cols);
  }
  sumSquaresRows(x: Buf, out: Buf, rows: number, cols: number): number {
    // the two kernels' own sums, so the bits are theirs (the C kernel takes both in one pass over x)
    this.sumAxis(x, out, rows, cols, 1);
    return this.sumSquares(x, rows * cols);
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
  countOutside(x: Buf, n: number, lo: number, hi: number): number {
    const xs = x.data;
    let c = 0;
    for (let i = 0; i < n; i++) {
      const v = xs[i]!;
      if (v < lo || v > hi) c++;
    }
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
        for (let j = 0; j < n; j++) row[j]! += av * B[bb + j * bj]!;
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
  crossEntropy(...a: Parameters<KernelMethods['crossEntropy']>): void {
    ref.crossEntropy(...a);
  }
  crossEntropyGrad(...a: Parameters<KernelMethods['crossEntropyGrad']>): void {
    ref.crossEntropyGrad(...a);
  }

  im2col(...a: Parameters<KernelMethods['im2col']>): void {
    ref.im2col(...a);
  }
  col2im(...a: Parameters<KernelMethods['col2im']>): void {
    ref.col2im(...a);
  }
  conv2d(...a: Parameters<KernelMethods['conv2d']>): void {
    ref.conv2d(this, ...a);
  }
  conv2dBias(...a: Parameters<KernelMethods['conv2dBias']>): void {
    ref.conv2dBias(this, ...a);
  }
  conv2dGradInput(...a: Parameters<KernelMethods['conv2dGradInput']>): void {
    ref.conv2dGradInput(this, ...a);
  }
  conv2dGradWeight(...a: Parameters<KernelMethods['conv2dGradWeight']>): void {
    ref.conv2dGradWeight(this, ...a);
  }
  linearBias(...a: Parameters<KernelMethods['linearBias']>): void {
    ref.linearBias(this, ...a);
  }
  reluBiasGrad(...a: Parameters<KernelMethods['reluBiasGrad']>): void {
    ref.reluBiasGrad(this, ...a);
  }
  maxPool2d(...a: Parameters<KernelMethods['maxPool2d']>): void {
    ref.maxPool2d(...a);
  }
  maxPool2dSums(...a: Parameters<KernelMethods['maxPool2dSums']>): number {
    return ref.maxPool2dSums(this, ...a);
  }
  maxPool2dGrad(...a: Parameters<KernelMethods['maxPool2dGrad']>): void {
    ref.maxPool2dGrad(...a);
  }
  maxPool2dGradRelu(...a: Parameters<KernelMethods['maxPool2dGradRelu']>): void {
    ref.maxPool2dGradRelu(this, ...a);
  }
  avgPool2d(...a: Parameters<KernelMethods['avgPool2d']>): void {
    ref.avgPool2d(...a);
  }
  avgPool2dGrad(...a: Parameters<KernelMethods['avgPool2dGrad']>): void {
    ref.avgPool2dGrad(...a);
  }
  gruCell(...a: Parameters<KernelMethods['gruCell']>): void {
    ref.gruCell(...a);
  }
  gruCellGrad(...a: Parameters<KernelMethods['gruCellGrad']>): void {
    ref.gruCellGrad(...a);
  }
  lstmCell(...a: Parameters<KernelMethods['lstmCell']>): void {
    ref.lstmCell(...a);
  }
  lstmCellGrad(...a: Parameters<KernelMethods['lstmCellGrad']>): void {
    ref.lstmCellGrad(...a);
  }
  lstmSeq(...a: Parameters<KernelMethods['lstmSeq']>): void {
    ref.lstmSeq(this, ...a);
  }
  lstmSeqGrad(...a: Parameters<KernelMethods['lstmSeqGrad']>): void {
    ref.lstmSeqGrad(this, ...a);
  }
  gruSeq(...a: Parameters<KernelMethods['gruSeq']>): void {
    ref.gruSeq(this, ...a);
  }
  gruSeqGrad(...a: Parameters<KernelMethods['gruSeqGrad']>): void {
    ref.gruSeqGrad(this, ...a);
  }
  sgemmRowSums(...a: Parameters<KernelMethods['sgemmRowSums']>): void {
    ref.sgemmRowSums(this, ...a);
  }
  gruWeightGrads(...a: Parameters<KernelMethods['gruWeightGrads']>): void {
    ref.gruWeightGrads(this, ...a);
  }
  batchNorm(...a: Parameters<KernelMethods['batchNorm']>): void {
    ref.batchNorm(...a);
  }
  batchNormGrad(...a: Parameters<KernelMethods['batchNormGrad']>): void {
    ref.batchNormGrad(...a);
  }
  batchNormRelu(...a: Parameters<KernelMethods['batchNormRelu']>): void {
    ref.batchNormRelu(this, ...a);
  }
  batchNormReluGrad(...a: Parameters<KernelMethods['batchNormReluGrad']>): void {
    ref.batchNormReluGrad(this, ...a);
  }
  layerNorm(...a: Parameters<KernelMethods['layerNorm']>): void {
    ref.layerNorm(...a);
  }
  layerNormGrad(...a: Parameters<KernelMethods['layerNormGrad']>): void {
    ref.layerNormGrad(...a);
  }
  nllLoss(...a: Parameters<KernelMethods['nllLoss']>): void {
    ref.nllLoss(...a);
  }
  nllLossGrad(...a: Parameters<KernelMethods['nllLossGrad']>): void {
    ref.nllLossGrad(...a);
  }
  bceWithLogits(...a: Parameters<KernelMethods['bceWithLogits']>): void {
    ref.bceWithLogits(...a);
  }
  bceWithLogitsGrad(...a: Parameters<KernelMethods['bceWithLogitsGrad']>): void {
    ref.bceWithLogitsGrad(...a);
  }
  adaptiveAvgPool2d(...a: Parameters<KernelMethods['adaptiveAvgPool2d']>): void {
    ref.adaptiveAvgPool2d(...a);
  }
  adaptiveAvgPool2dGrad(...a: Parameters<KernelMethods['adaptiveAvgPool2dGrad']>): void {
    ref.adaptiveAvgPool2dGrad(...a);
  }

  adamUpdate(...a: Parameters<KernelMethods['adamUpdate']>): void {
    adamUpdate(...a);
  }

  adamApply(...a: Parameters<KernelMethods['adamApply']>): void {
    adamApply(...a);
  }
}
