/**
 * The native backend: the C kernels of native/kernels/ and OpenBLAS's sgemm, compiled on the user's machine at
 * install (scripts/build-native.mjs) into build/Release/gradguard.node and called through N-API.
 *
 * Buffers are the reference backend's `ArrayBuf`s (ordinary Float32Arrays): N-API hands the addon a pointer to their
 * memory without copying, so a kernel call costs about 0.1 µs on top of the work. The methods of kernels whose
 * arguments are plain are generated from the kernel spec (lower.ts); this class writes only those that need more.
 * Every kernel C does not provide (the rarer unary ops, Pow, the spec's kernels without C) falls back to the
 * inherited JS kernel.
 */
import { createRequire } from 'node:module';
import { writeConvGeom, writePoolGeom } from './geom.js';
import { JsBackend } from './js.js';
import { installKernels, type NativeAddon } from './lower.js';
import { checkPoolAdaptEnv, checkThreadCount, threadsFromEnv } from './threads.js';
import { type BackendName, Binary, type Buf, type ConvGeom, type Unary } from './types.js';

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
   * Which sgemm runs: 'openblas'; our own for x86-64 (native/gemm_x86.c), 'own-avx512' or 'own-avx2', where
   * OpenBLAS's kernels for this CPU are its slow generic fallback; or, wherever both run well (the default),
   * 'per-shape:own-avx512+openblas' ('per-shape:own-avx2+openblas'): the faster of the two for each shape of at
   * least 1 MFLOP, measured the first time this process multiplies that shape and kept for the rest of it (see
   * native/addon.c, gg_gemm_per_shape). GRADGUARD_GEMM=openblas|own overrides the choice.
   */
  get gemmImpl(): string {
    return this.k.gemmImpl();
  }
  /**
   * Which sgemm computes products of this shape now: 'openblas', 'own-avx512' or 'own-avx2'; '' for a shape of the
   * per-shape policy that has not been measured yet (its first product measures it).
   */
  gemmShapeChoice(transA: boolean, transB: boolean, m: number, n: number, k: number): string {
    return this.k.gemmShapeChoice(transA ? 1 : 0, transB ? 1 : 0, m, n, k);
  }
  /** Forces an sgemm implementation for this process ('auto' is the default policy); returns the one now in use. */
  selectGemm(which: 'auto' | 'openblas' | 'own'): string {
    return this.k.gemmSelect(which === 'openblas' ? 1 : which === 'own' ? 2 : 0);
  }
  /**
   * For tests: our sgemm's weight gradients with columns of zeros (native/gemm_sparse_x86.h): `'auto'` (the default)
   * skips A's zero columns and takes its columns of few nonzeros the sparse way where that pays, `'off'` never,
   * `'always'` takes every column with a zero the sparse way; the same bits in every mode. Without a mode it changes
   * nothing. Returns the products computed that way so far in this process.
   */
  sparseGemm(mode?: 'auto' | 'off' | 'always'): number {
    return this.k.gemmSparse(mode === undefined ? -1 : mode === 'off' ? 1 : mode === 'always' ? 2 : 0);
  }
  /**
   * For tests: `hold` true keeps the native thread pool's workers from taking any work, as if the OS never ran them
   * (the caller then does every chunk itself), false releases them. Returns how many chunks the workers have
   * computed so far in this process. `'midChunk'` leaves each job's last chunk to a worker and stops the worker there
   * until the caller has gone to sleep waiting for it, as if the OS stopped it mid-chunk on a busy machine; `'late'`
   * lets the workers work but has them see every job late, as if the OS ran another process while they waited.
   */
  holdPoolWorkers(hold: boolean | 'midChunk' | 'late'): number {
    return this.k.poolHold(hold === 'midChunk' ? 2 : hold === 'late' ? 3 : hold ? 1 : 0);
  }
  /**
   * For tests: how many times a worker of the native thread pool slept right after a job instead of waiting for the
   * next, having found itself off its CPU while it waited (a busy machine), or `holdPoolWorkers('late')` saying so.
   */
  poolNaps(): number {
    return this.k.poolNaps();
  }
  /**
   * How the native thread pool runs a job: `'measure'` (the default) times each kind of job (a kernel and its sizes)
   * on the threads and on the caller alone and runs it the way that has been faster, trying the other way now and
   * then; `'threads'` sends every job to the threads, `'alone'` keeps every job on the caller. `'measure'` forgets the
   * timings so far unless `keep`. For tests, `fake` replaces the clock's timings with these (ns a job). Returns the
   * jobs run alone so far.
   */
  choosePool(mode: 'measure' | 'threads' | 'alone', fake?: { alone: number; threads: number }, keep = false): number {
    const m = mode === 'threads' ? 1 : mode === 'alone' ? 2 : keep ? 3 : 0;
    return this.k.poolChoose(m, fake?.alone ?? 0, fake?.threads ?? 0);
  }
  /**
   * Jobs offered to the native thread pool (with two threads or more) in all, those it ran on the caller alone, and
   * those of them run alone because other processes held the CPUs.
   */
  poolJobs(): { all: number; alone: number; crowded: number } {
    return { all: this.k.poolJobs(0), alone: this.k.poolJobs(1), crowded: this.k.poolJobs(2) };
  }
  /**
   * The CPUs free of other processes that the native thread pool last saw (it reads /proc/stat every 50 ms at a job;
   * under 1.55 free it runs every job on the caller alone, until over 1.75 are); -1 before its first figure. For
   * tests, `fake` >= 0 has it take that figure instead, `fake` < 0 measures again.
   */
  poolCrowd(fake?: number): number {
    return this.k.poolCrowd(fake ?? Number.NaN);
  }
  /**
   * How the addon left the process's malloc when it loaded: by default buffers up to 32 MiB come from the heap and up
   * to 256 MiB of freed memory stays mapped, so the buffers of a loop written without `tidy()`, freed by the garbage
   * collector, are reused without page faults; left alone with GRADGUARD_MALLOC=system or glibc's own variables set.
   */
  mallocTuning(): string {
    return this.k.mallocTuning();
  }
  /**
   * For tests: how many chunks the native thread pool's last job (a product on several threads, or a parallel loop)
   * was cut into; 0 before the first.
   */
  poolLastChunks(): number {
    return this.k.poolLastChunks();
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
    checkPoolAdaptEnv();
    if (n !== undefined) k.setThreads(n);
    for (let op = 0; op < this.unaryOk.length; op++) this.unaryOk[op] = k.unarySupported(op);
    // every other kernel with C: a generated method that hands over the arrays (typed arrays go without a copy)
    installKernels(
      this,
      (name) => Object.hasOwn(NativeBackend.prototype, name),
      k,
      (name) => name,
      {
        buf: (b) => b.data,
        conv: (g) => {
          writeConvGeom(this.geom, 0, g);
          return this.geom;
        },
        pool: (g) => {
          writePoolGeom(this.geom, 0, g);
          return this.geom;
        },
      },
    );
  }

  override axpySumSquares(alpha: number, x: Buf, y: Buf, n: number, xSumSquares?: Float64Array): number {
    return this.k.axpySumSquares(alpha, x.data, y.data, n, xSumSquares ?? this.xss);
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

  // The whole convolution: C that gives whole images to the pool's threads, or (0: no sgemm of our own, OpenBLAS
  // pinned) the reference's composition of im2col, col2im and sgemm.
  override conv2d(x: Buf, weight: Buf, out: Buf, g: ConvGeom, oc: number, groups: number, accumulate: boolean): void {
    writeConvGeom(this.geom, 0, g);
    if (!this.k.conv2d(x.data, weight.data, out.data, this.geom, oc, groups, accumulate ? 1 : 0))
      super.conv2d(x, weight, out, g, oc, groups, accumulate);
  }
  override conv2dBias(
    x: Buf,
    weight: Buf,
    bias: Buf,
    out: Buf,
    g: ConvGeom,
    oc: number,
    groups: number,
    relu: boolean,
  ): void {
    writeConvGeom(this.geom, 0, g);
    if (!this.k.conv2dBias(x.data, weight.data, bias.data, out.data, this.geom, oc, groups, relu ? 1 : 0))
      super.conv2dBias(x, weight, bias, out, g, oc, groups, relu);
  }
  override linearBias(
    x: Buf,
    w: Buf,
    bias: Buf,
    out: Buf,
    rows: number,
    inF: number,
    outF: number,
    relu: boolean,
  ): void {
    if (!this.k.linearBias(x.data, w.data, bias.data, out.data, rows, inF, outF, relu ? 1 : 0))
      super.linearBias(x, w, bias, out, rows, inF, outF, relu);
  }
  override conv2dGradInput(gy: Buf, weight: Buf, gx: Buf, g: ConvGeom, oc: number, groups: number): void {
    writeConvGeom(this.geom, 0, g);
    if (!this.k.conv2dGradInput(gy.data, weight.data, gx.data, this.geom, oc, groups))
      super.conv2dGradInput(gy, weight, gx, g, oc, groups);
  }
  override conv2dGradWeight(x: Buf, gy: Buf, gw: Buf, g: ConvGeom, oc: number, groups: number): void {
    writeConvGeom(this.geom, 0, g);
    if (!this.k.conv2dGradWeight(x.data, gy.data, gw.data, this.geom, oc, groups))
      super.conv2dGradWeight(x, gy, gw, g, oc, groups);
  }

  override sumSquaresMaxAbs(x: Buf, n: number, out: Float64Array): void {
    this.k.sumSquaresMaxAbs(x.data, n, out);
  }

  override adamApply(
    g: Buf,
    m: Buf,
    v: Buf,
    p: Buf,
    n: number,
    b1: number,
    b2: number,
    eps: number,
    bc1: number,
    bc2: number,
    pre: number,
    post: number,
    measure: boolean,
    out: Float64Array,
  ): void {
    this.k.adamApply(g.data, m.data, v.data, p.data, n, b1, b2, eps, bc1, bc2, pre, post, measure ? 1 : 0, out);
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
