/**
 * The native backend: the C kernels of native/kernels.c and OpenBLAS's sgemm, compiled on the user's machine at
 * install (scripts/build-native.mjs) into build/Release/gradguard.node and called through N-API.
 *
 * Buffers are the reference backend's `ArrayBuf`s (ordinary Float32Arrays): N-API hands the addon a pointer to their
 * memory without copying, so a kernel call costs about 0.1 µs on top of the work. Every kernel C does not provide
 * (the rarer unary ops, Pow) falls back to the inherited JS kernel.
 */
import { createRequire } from 'node:module';
import { writeConvGeom, writePoolGeom } from './geom.js';
import { JsBackend } from './js.js';
import { checkThreadCount, threadsFromEnv } from './threads.js';
import { type BackendName, Binary, type Buf, type ConvGeom, type PoolGeom, type Unary } from './types.js';

/** The addon's exports (native/addon.c, table GG_KERNELS). Booleans travel as 0/1. */
interface NativeAddon {
  fill(out: Float32Array, value: number, n: number): void;
  copy(src: Float32Array, sOff: number, dst: Float32Array, dOff: number, n: number): void;
  copyBlocks(
    src: Float32Array,
    sOff: number,
    sStride: number,
    dst: Float32Array,
    dOff: number,
    dStride: number,
    len: number,
    nBlocks: number,
    accumulate: number,
  ): void;
  axpy(alpha: number, x: Float32Array, y: Float32Array, n: number): void;
  axpySumSquares(alpha: number, x: Float32Array, y: Float32Array, n: number, xss: Float64Array): number;
  sumSquaresMaxAbs(x: Float32Array, n: number, out: Float64Array): void;
  unarySupported(op: number): number;
  unary(op: number, x: Float32Array, out: Float32Array, n: number, a: number, b: number): number;
  unaryGrad(
    op: number,
    x: Float32Array,
    y: Float32Array,
    gy: Float32Array,
    gx: Float32Array,
    n: number,
    a: number,
    b: number,
  ): number;
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, nd: number, dims: Int32Array): number;
  sumAxis(x: Float32Array, out: Float32Array, outer: number, mid: number, inner: number): void;
  maxAxis(x: Float32Array, out: Float32Array, arg: Float32Array, outer: number, mid: number, inner: number): void;
  sumSquares(x: Float32Array, n: number): number;
  maxAbs(x: Float32Array, n: number): number;
  countNonFinite(x: Float32Array, n: number): number;
  permute(x: Float32Array, out: Float32Array, nd: number, dims: Int32Array): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number, log: number): void;
  softmaxGrad(y: Float32Array, gy: Float32Array, gx: Float32Array, rows: number, cols: number, log: number): void;
  crossEntropy(
    x: Float32Array,
    targets: Float32Array,
    probs: Float32Array,
    loss: Float32Array,
    rows: number,
    cols: number,
    smoothing: number,
    ignoreIndex: number,
  ): void;
  crossEntropyGrad(
    probs: Float32Array,
    targets: Float32Array,
    scale: Float32Array,
    gx: Float32Array,
    rows: number,
    cols: number,
    smoothing: number,
    ignoreIndex: number,
  ): void;
  im2col(x: Float32Array, cols: Float32Array, geom: Int32Array): void;
  col2im(cols: Float32Array, dx: Float32Array, geom: Int32Array): void;
  maxPool2d(x: Float32Array, out: Float32Array, geom: Int32Array): void;
  maxPool2dGrad(x: Float32Array, gy: Float32Array, dx: Float32Array, geom: Int32Array): void;
  avgPool2d(x: Float32Array, out: Float32Array, geom: Int32Array, countIncludePad: number): void;
  avgPool2dGrad(gy: Float32Array, dx: Float32Array, geom: Int32Array, countIncludePad: number): void;
  adamUpdate(
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    n: number,
    b1: number,
    b2: number,
    eps: number,
    bc1: number,
    bc2: number,
  ): void;
  sgemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    aOff: number,
    lda: number,
    b: Float32Array,
    bOff: number,
    ldb: number,
    beta: number,
    c: Float32Array,
    cOff: number,
    ldc: number,
  ): void;
  openblasThreads(): number;
  setThreads(n: number): void;
  openblasCore(): string;
  gemmImpl(): string;
  gemmSelect(which: number): string;
}

/** Most axes binary and permute take in C (GG_MAX_DIMS); more fall back to JS. */
const MAX_DIMS = 8;

export class NativeBackend extends JsBackend {
  override readonly name: BackendName = 'native';
  /**
   * Threads of the matrix product, OpenBLAS's and our own sgemm's: GRADGUARD_THREADS, else OPENBLAS_NUM_THREADS or
   * the cores; the other kernels run on the calling thread.
   */
  override get threads(): number {
    return this.k.openblasThreads();
  }
  override setThreads(n: number): void {
    checkThreadCount(n);
    this.k.setThreads(n);
  }
  /**
   * The kernel set OpenBLAS picked for this CPU, e.g. 'Haswell' or 'SkylakeX'. 'Prescott' is its generic fallback
   * for CPUs it does not recognise, several times slower; OPENBLAS_CORETYPE chooses another (read at load time).
   */
  readonly blasCore: string;
  /**
   * Which sgemm runs: 'openblas', or our own for x86-64 (native/gemm_x86.c), 'own-avx512' or 'own-avx2', chosen where
   * OpenBLAS's kernels for this CPU are slow (its generic fallback, or no AVX-512 kernels on an AVX-512 CPU).
   * GRADGUARD_GEMM=openblas|own overrides the choice.
   */
  get gemmImpl(): string {
    return this.k.gemmImpl();
  }
  /** Forces an sgemm implementation for this process ('auto' is the default policy); returns the one now in use. */
  selectGemm(which: 'auto' | 'openblas' | 'own'): string {
    return this.k.gemmSelect(which === 'openblas' ? 1 : which === 'own' ? 2 : 0);
  }
  /** unaryOk[op] = 1 where C implements the op (forward and gradient). */
  private readonly unaryOk = new Uint8Array(32);
  /** Reused for every call that passes small int arrays: [0,8) shape, [8,16) and [16,24) strides or perm. */
  private readonly dims = new Int32Array(3 * MAX_DIMS);
  private readonly geom = new Int32Array(16);
  /** Where axpySumSquares puts the sum of squares of x when the caller does not want it. */
  private readonly xss = new Float64Array(1);

  constructor(private readonly k: NativeAddon) {
    super();
    this.blasCore = k.openblasCore();
    const n = threadsFromEnv();
    if (n !== undefined) k.setThreads(n);
    for (let op = 0; op < this.unaryOk.length; op++) this.unaryOk[op] = k.unarySupported(op);
  }

  override fill(out: Buf, value: number, n: number): void {
    this.k.fill(out.data, value, n);
  }
  override copy(src: Buf, sOff: number, dst: Buf, dOff: number, n: number): void {
    this.k.copy(src.data, sOff, dst.data, dOff, n);
  }
  override copyBlocks(
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
    this.k.copyBlocks(src.data, sOff, sStride, dst.data, dOff, dStride, len, nBlocks, accumulate ? 1 : 0);
  }
  override axpySumSquares(alpha: number, x: Buf, y: Buf, n: number, xSumSquares?: Float64Array): number {
    return this.k.axpySumSquares(alpha, x.data, y.data, n, xSumSquares ?? this.xss);
  }
  override axpy(alpha: number, x: Buf, y: Buf, n: number): void {
    this.k.axpy(alpha, x.data, y.data, n);
  }

  override unary(op: Unary, x: Buf, out: Buf, n: number, a: number, b: number): void {
    if (this.unaryOk[op]) this.k.unary(op, x.data, out.data, n, a, b);
    else super.unary(op, x, out, n, a, b);
  }
  override unaryGrad(op: Unary, x: Buf, y: Buf, gy: Buf, gx: Buf, n: number, a: number, b: number): void {
    if (this.unaryOk[op]) this.k.unaryGrad(op, x.data, y.data, gy.data, gx.data, n, a, b);
    else super.unaryGrad(op, x, y, gy, gx, n, a, b);
  }
  override binary(
    op: Binary,
    a: Buf,
    b: Buf,
    out: Buf,
    shape: readonly number[],
    aStrides: readonly number[],
    bStrides: readonly number[],
  ): void {
    const nd = shape.length;
    if (op === Binary.Pow || nd > MAX_DIMS) {
      super.binary(op, a, b, out, shape, aStrides, bStrides);
      return;
    }
    const d = this.dims;
    for (let i = 0; i < nd; i++) {
      d[i] = shape[i]!;
      d[MAX_DIMS + i] = aStrides[i]!;
      d[2 * MAX_DIMS + i] = bStrides[i]!;
    }
    this.k.binary(op, a.data, b.data, out.data, nd, d);
  }

  override sumAxis(x: Buf, out: Buf, outer: number, mid: number, inner: number): void {
    this.k.sumAxis(x.data, out.data, outer, mid, inner);
  }
  override maxAxis(x: Buf, out: Buf, arg: Buf, outer: number, mid: number, inner: number): void {
    this.k.maxAxis(x.data, out.data, arg.data, outer, mid, inner);
  }
  override sumSquaresMaxAbs(x: Buf, n: number, out: Float64Array): void {
    this.k.sumSquaresMaxAbs(x.data, n, out);
  }
  override sumSquares(x: Buf, n: number): number {
    return this.k.sumSquares(x.data, n);
  }
  override maxAbs(x: Buf, n: number): number {
    return this.k.maxAbs(x.data, n);
  }
  override countNonFinite(x: Buf, n: number): number {
    return this.k.countNonFinite(x.data, n);
  }

  override sgemm(
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
    this.k.sgemm(
      transA ? 1 : 0,
      transB ? 1 : 0,
      m,
      n,
      k,
      alpha,
      a.data,
      aOff,
      lda,
      b.data,
      bOff,
      ldb,
      beta,
      c.data,
      cOff,
      ldc,
    );
  }

  override permute(x: Buf, out: Buf, shape: readonly number[], perm: readonly number[]): void {
    const nd = shape.length;
    if (nd > MAX_DIMS) {
      super.permute(x, out, shape, perm);
      return;
    }
    const d = this.dims;
    for (let i = 0; i < nd; i++) {
      d[i] = shape[i]!;
      d[MAX_DIMS + i] = perm[i]!;
    }
    this.k.permute(x.data, out.data, nd, d);
  }

  override softmax(x: Buf, out: Buf, rows: number, cols: number, log: boolean): void {
    this.k.softmax(x.data, out.data, rows, cols, log ? 1 : 0);
  }
  override softmaxGrad(y: Buf, gy: Buf, gx: Buf, rows: number, cols: number, log: boolean): void {
    this.k.softmaxGrad(y.data, gy.data, gx.data, rows, cols, log ? 1 : 0);
  }
  override crossEntropy(
    x: Buf,
    targets: Buf,
    probs: Buf,
    loss: Buf,
    rows: number,
    cols: number,
    smoothing: number,
    ignoreIndex: number,
  ): void {
    this.k.crossEntropy(x.data, targets.data, probs.data, loss.data, rows, cols, smoothing, ignoreIndex);
  }
  override crossEntropyGrad(
    probs: Buf,
    targets: Buf,
    scale: Buf,
    gx: Buf,
    rows: number,
    cols: number,
    smoothing: number,
    ignoreIndex: number,
  ): void {
    this.k.crossEntropyGrad(probs.data, targets.data, scale.data, gx.data, rows, cols, smoothing, ignoreIndex);
  }

  override im2col(x: Buf, cols: Buf, g: ConvGeom): void {
    writeConvGeom(this.geom, 0, g);
    this.k.im2col(x.data, cols.data, this.geom);
  }
  override col2im(cols: Buf, dx: Buf, g: ConvGeom): void {
    writeConvGeom(this.geom, 0, g);
    this.k.col2im(cols.data, dx.data, this.geom);
  }
  override maxPool2d(x: Buf, out: Buf, g: PoolGeom): void {
    writePoolGeom(this.geom, 0, g);
    this.k.maxPool2d(x.data, out.data, this.geom);
  }
  override maxPool2dGrad(x: Buf, gy: Buf, dx: Buf, g: PoolGeom): void {
    writePoolGeom(this.geom, 0, g);
    this.k.maxPool2dGrad(x.data, gy.data, dx.data, this.geom);
  }
  override avgPool2d(x: Buf, out: Buf, g: PoolGeom, countIncludePad: boolean): void {
    writePoolGeom(this.geom, 0, g);
    this.k.avgPool2d(x.data, out.data, this.geom, countIncludePad ? 1 : 0);
  }
  override avgPool2dGrad(gy: Buf, dx: Buf, g: PoolGeom, countIncludePad: boolean): void {
    writePoolGeom(this.geom, 0, g);
    this.k.avgPool2dGrad(gy.data, dx.data, this.geom, countIncludePad ? 1 : 0);
  }

  override adamUpdate(
    g: Buf,
    m: Buf,
    v: Buf,
    n: number,
    b1: number,
    b2: number,
    eps: number,
    bc1: number,
    bc2: number,
  ): void {
    this.k.adamUpdate(g.data, m.data, v.data, n, b1, b2, eps, bc1, bc2);
  }
}

let cached: NativeAddon | null | undefined;

/** Loads the addon once per process; null when it was not built (no compiler or OpenBLAS at install) or fails to load. */
function loadAddon(): NativeAddon | null {
  if (cached !== undefined) return cached;
  try {
    // Two levels up from both src/backend/ and dist/backend/ is the package root, where node-gyp puts build/.
    const require = createRequire(import.meta.url);
    cached = require('../../build/Release/gradguard.node') as NativeAddon;
  } catch {
    cached = null;
  }
  return cached;
}

/**
 * A native backend, or null when the addon is not available (then use the wasm backend). `addonPath` loads another
 * build of the addon instead of build/Release/gradguard.node (the tests build one for AVX2 machines, so that its
 * kernels and sgemm are checked here too); a path that does not load throws.
 */
export function createNativeBackend(addonPath?: string): NativeBackend | null {
  if (addonPath !== undefined) {
    const require = createRequire(import.meta.url);
    return new NativeBackend(require(addonPath) as NativeAddon);
  }
  const addon = loadAddon();
  return addon ? new NativeBackend(addon) : null;
}
