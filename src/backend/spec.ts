/**
 * The kernel spec: every kernel's name, argument kinds, result and C function, declared once.
 *
 * Everything else is derived from this table: the kernel methods of the TypeScript `Backend` interface (types.ts),
 * the typing of the native addon's exports (native.ts, `NativeAddon`) and of the wasm module's exports (wasm.ts,
 * `WasmExports`), and, for kernels whose arguments are all plain (buffers and numbers), the native and wasm methods
 * themselves (`installKernels` in lower.ts). test/kernel-spec.test.ts reads the C side (native/addon.c's GG_KERNELS
 * table, native/kernels.h and both wasm modules' exports with their parameter types) and fails where it disagrees.
 *
 * Adding a kernel = an entry here, its reference in js.ts, its C in the family's file of native/kernels/ (+ kernels.h and
 * one line of addon.c's GG_KERNELS); see CONTRIBUTING.md, "Adding a kernel".
 *
 * Argument kinds, as the Backend method takes them and as they travel to C:
 *
 * | kind    | TypeScript            | C (addon.c X-macro) | native addon   | wasm       |
 * |---------|-----------------------|---------------------|----------------|------------|
 * | buf     | Buf                   | FA  float *         | Float32Array   | i32 pointer|
 * | f64     | number                | DB  double          | number         | f64        |
 * | int     | number (a size/offset)| IX  gg_i            | number         | i32        |
 * | i32     | number (a small int)  | IN  int             | number         | i32        |
 * | bool    | boolean               | IN  int (0/1)       | number         | i32        |
 * | unary   | Unary                 | IN  int             | number         | i32        |
 * | binary  | Binary                | IN  int             | number         | i32        |
 * | conv    | ConvGeom              | IA  int32_t *       | Int32Array     | i32 pointer|
 * | pool    | PoolGeom              | IA  int32_t *       | Int32Array     | i32 pointer|
 * | f64s    | Float64Array          | DA  double *        | Float64Array   | i32 pointer|
 * | f64s?   | Float64Array, optional| DA  double *        | Float64Array   | i32 pointer|
 * | dims    | readonly number[]     | see below           |                |            |
 *
 * A run of `dims` arguments (a shape and its strides or permutation, at most 8 axes) travels as the number of axes
 * (IN) and then, natively, one Int32Array holding them all packed 8 apart (IA), in wasm one pointer per array.
 *
 * Results: `void`, `num` (a number), `str` (a string; addon-only). `cRet` is the C function's result where it differs
 * from the Backend method's (gg_unary returns whether it implements the op; the method returns nothing).
 */

import { NN_KERNELS } from './spec-nn.js';
import { RNN_KERNELS } from './spec-rnn.js';

export type ArgKind =
  | 'buf'
  | 'f64'
  | 'int'
  | 'i32'
  | 'bool'
  | 'unary'
  | 'binary'
  | 'conv'
  | 'pool'
  | 'f64s'
  | 'f64s?'
  | 'dims';
export type RetKind = 'void' | 'num' | 'str';

export interface KernelSpec {
  /** Argument names and kinds, in order. */
  readonly args: readonly (readonly [name: string, kind: ArgKind])[];
  /** The Backend method's result (default void). */
  readonly ret?: RetKind;
  /** The C function (native/kernels.h), also the wasm export's name; null where only the js reference exists. */
  readonly c: string | null;
  /** The C function's result where it differs from `ret`. */
  readonly cRet?: RetKind;
  /**
   * Whether the wasm module exports it (default: it does whenever `c` is set). gg_sgemm is the exception's opposite:
   * natively OpenBLAS's, in wasm native/wasm_sgemm.c's, both under one name.
   */
  readonly wasm?: boolean;
}

/**
 * The kernels of every backend (the methods of `Backend`; the reference is js.ts); those of the nn ops are in
 * spec-nn.ts, the recurrent layers' in spec-rnn.ts.
 */
export const KERNELS = {
  /** out[i] = value for i < n */
  fill: {
    args: [
      ['out', 'buf'],
      ['value', 'f64'],
      ['n', 'int'],
    ],
    c: 'gg_fill',
  },
  /** dst[dOff + i] = src[sOff + i] for i < n (overlapping ranges of one buffer are copied as memmove does) */
  copy: {
    args: [
      ['src', 'buf'],
      ['sOff', 'int'],
      ['dst', 'buf'],
      ['dOff', 'int'],
      ['n', 'int'],
    ],
    c: 'gg_copy',
  },
  /**
   * Strided block copy: for b < nBlocks, for i < len: dst[dOff + b*dStride + i] (+)= src[sOff + b*sStride + i].
   * With `accumulate` the destination is added to, else overwritten. Used by slice, concat, stack and their gradients.
   */
  copyBlocks: {
    args: [
      ['src', 'buf'],
      ['sOff', 'int'],
      ['sStride', 'int'],
      ['dst', 'buf'],
      ['dOff', 'int'],
      ['dStride', 'int'],
      ['len', 'int'],
      ['nBlocks', 'int'],
      ['accumulate', 'bool'],
    ],
    c: 'gg_copy_blocks',
  },
  /** y += alpha * x over n elements. */
  axpy: {
    args: [
      ['alpha', 'f64'],
      ['x', 'buf'],
      ['y', 'buf'],
      ['n', 'int'],
    ],
    c: 'gg_axpy',
  },
  /**
   * y += alpha * x as `axpy`, returning the sum of squares of the new y (float64), and with `xSumSquares` storing that
   * of x in its first element: applying an update and measuring the weights it leaves and the update itself costs
   * one pass instead of three.
   */
  axpySumSquares: {
    args: [
      ['alpha', 'f64'],
      ['x', 'buf'],
      ['y', 'buf'],
      ['n', 'int'],
      ['xSumSquares', 'f64s?'],
    ],
    ret: 'num',
    c: 'gg_axpy_sum_squares',
  },
  /**
   * x ← s·x in place over n elements, in float32: s rounded to float32, then one float32 product an element, as
   * PyTorch's `t.mul_(s)` computes on a float32 tensor and optax's `t * s` on float32 updates (−0 stays −0; ±∞ and NaN
   * as IEEE multiplication gives them). Every factor the optimizer and the clips scale by (a learning rate, a clip's
   * coefficient, SGD's momentum) goes through it; `adamUpdate` and `adamApply` apply their `pre` and `post` alike.
   */
  scale: {
    args: [
      ['x', 'buf'],
      ['n', 'int'],
      ['s', 'f64'],
    ],
    c: 'gg_scale',
  },
  /** out = f(x) over n elements; `a`, `b` are the op's parameters (see `Unary`). */
  unary: {
    args: [
      ['op', 'unary'],
      ['x', 'buf'],
      ['out', 'buf'],
      ['n', 'int'],
      ['a', 'f64'],
      ['b', 'f64'],
    ],
    c: 'gg_unary',
    cRet: 'num',
  },
  /** gx = gy * f'(x); `y` is the forward output f(x) (some derivatives read it). */
  unaryGrad: {
    args: [
      ['op', 'unary'],
      ['x', 'buf'],
      ['y', 'buf'],
      ['gy', 'buf'],
      ['gx', 'buf'],
      ['n', 'int'],
      ['a', 'f64'],
      ['b', 'f64'],
    ],
    c: 'gg_unary_grad',
    cRet: 'num',
  },
  /**
   * out = relu(a + b) over n elements of same-shape a and b (a residual block's add and the ReLU after it): the
   * float32 sum, then the ReLU (NaN stays NaN, -0 gives +0), the bits of `binary` Add then `unary` Relu, in one pass.
   */
  addRelu: {
    args: [
      ['a', 'buf'],
      ['b', 'buf'],
      ['out', 'buf'],
      ['n', 'int'],
    ],
    c: 'gg_add_relu',
  },
  /**
   * out = y > 0 ? a + b : 0 over n elements: a ReLU output y's two incoming gradients summed in float32 and masked
   * by the ReLU's gradient, the bits of `binary` Add then `unaryGrad` Relu (read from y), in one pass.
   */
  reluGradSum: {
    args: [
      ['a', 'buf'],
      ['b', 'buf'],
      ['y', 'buf'],
      ['out', 'buf'],
      ['n', 'int'],
    ],
    c: 'gg_relu_grad_sum',
  },
  /**
   * out[idx] = a[idx·aStrides] op b[idx·bStrides] over the multi-index idx of `shape` (row-major). A stride of 0
   * broadcasts. `shape`, `aStrides`, `bStrides` have the same length (at most 8 in C; more fall back to the reference).
   */
  binary: {
    args: [
      ['op', 'binary'],
      ['a', 'buf'],
      ['b', 'buf'],
      ['out', 'buf'],
      ['shape', 'dims'],
      ['aStrides', 'dims'],
      ['bStrides', 'dims'],
    ],
    c: 'gg_binary',
    cRet: 'num',
  },
  /** out[o*inner + i] = sum over m of x[(o*mid + m)*inner + i]. */
  sumAxis: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['outer', 'int'],
      ['mid', 'int'],
      ['inner', 'int'],
    ],
    c: 'gg_sum_axis',
  },
  /** out[o*inner + i] = max over m; arg[o*inner + i] = the first m that attains it. */
  maxAxis: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['arg', 'buf'],
      ['outer', 'int'],
      ['mid', 'int'],
      ['inner', 'int'],
    ],
    c: 'gg_max_axis',
  },
  /** Sum of squares of x[0..n) in float64. */
  sumSquares: {
    args: [
      ['x', 'buf'],
      ['n', 'int'],
    ],
    ret: 'num',
    c: 'gg_sum_squares',
  },
  /** max |x| over x[0..n) (NaN if any is NaN). */
  maxAbs: {
    args: [
      ['x', 'buf'],
      ['n', 'int'],
    ],
    ret: 'num',
    c: 'gg_max_abs',
  },
  /**
   * out[0] = Σx² and out[1] = max |x| (NaN if x holds one) in one pass over memory (the monitor reads every
   * gradient for both). The sum has `sumSquares`' bits, so a norm from either is the same number.
   */
  sumSquaresMaxAbs: {
    args: [
      ['x', 'buf'],
      ['n', 'int'],
      ['out', 'f64s'],
    ],
    c: 'gg_sum_squares_max_abs',
  },
  /**
   * Column sums and the sum of squares of x read as [rows, cols], in one pass over memory (the monitor takes both of
   * every layer's output: its moments, and a ReLU's dead units): out[j] = Σ over r of x[r·cols + j], with
   * `sumAxis(x, out, 1, rows, cols)`'s bits; the result is Σx² over the rows·cols values, with `sumSquares`' bits.
   */
  sumSquaresColumns: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
    ],
    ret: 'num',
    c: 'gg_sum_squares_columns',
  },
  /**
   * Row sums and the sum of squares of x read as [rows, cols], in one pass over memory (the monitor's statistics of a
   * conv's ReLU output by planes: each plane's sum for the dead channels, Σx² for the spread): out[r] = Σ over j of
   * x[r·cols + j], with `sumAxis(x, out, rows, cols, 1)`'s bits; the result is Σx² over the rows·cols values:
   * natively `sumSquares`' over blocks of whole rows (at least 32,768 values each, at most 256 blocks, fixed by the
   * shape), the blocks' sums added in order in float64 (the blocks share out over the threads; one block: `sumSquares`'
   * bits); elsewhere the two kernels one after the other.
   */
  sumSquaresRows: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['rows', 'int'],
      ['cols', 'int'],
    ],
    ret: 'num',
    c: 'gg_sum_squares_rows',
    wasm: false,
  },
  /** Number of NaN or ±Inf values in x[0..n). */
  countNonFinite: {
    args: [
      ['x', 'buf'],
      ['n', 'int'],
    ],
    ret: 'num',
    c: 'gg_count_non_finite',
  },
  /**
   * Number of values of x[0..n) below lo or above hi, compared in float64 (NaN is neither): the monitor's saturated
   * outputs of a sigmoid (lo 0.01, hi 0.99) or a tanh (−0.99, 0.99).
   */
  countOutside: {
    args: [
      ['x', 'buf'],
      ['n', 'int'],
      ['lo', 'f64'],
      ['hi', 'f64'],
    ],
    ret: 'num',
    c: 'gg_count_outside',
  },
  /** Copies x (row-major `shape`) into out, permuted: out's axis j is x's axis perm[j]. */
  permute: {
    args: [
      ['x', 'buf'],
      ['out', 'buf'],
      ['shape', 'dims'],
      ['perm', 'dims'],
    ],
    c: 'gg_permute',
  },
  ...NN_KERNELS,
  ...RNN_KERNELS,
  /**
   * Adam moment update and step direction, in place over n elements (optax's scale_by_adam):
   * m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²; g ← (m·(1/bc1)) / (sqrt(v) / sqrt(bc2) + eps), in float32 with each
   * coefficient rounded to float32, in torch.optim.Adam's order (`adamStep` in js-adam.ts). With `pre` ≠ 1, g is first
   * scaled as `scale(g, n, pre)` does it, and with `post` ≠ 1 the step afterwards likewise: a chain's global-norm clip
   * and learning rate fused into this one pass, with the numbers of the separate passes.
   */
  adamUpdate: {
    args: [
      ['g', 'buf'],
      ['m', 'buf'],
      ['v', 'buf'],
      ['n', 'int'],
      ['b1', 'f64'],
      ['b2', 'f64'],
      ['eps', 'f64'],
      ['bc1', 'f64'],
      ['bc2', 'f64'],
      ['pre', 'f64'],
      ['post', 'f64'],
    ],
    c: 'gg_adam_update',
  },
  /**
   * `adamUpdate`'s step u applied straight to the parameter p, in the same pass: p ← p + u rounded once to float32,
   * the bits of `adamUpdate` followed by `axpy(1, u, p)`, with g left unchanged and no update buffer written. With
   * `measure`, out[0] = Σp² of the new p and out[1] = Σu², in float64 (as `axpySumSquares` measures them; the sums
   * may differ from its in their last bits). NOTE: p is written as it goes, so a caller that must not leave a NaN or
   * an infinity in p checks beforehand that every p + u is finite (see `scaleByAdam`'s fused path).
   */
  adamApply: {
    args: [
      ['g', 'buf'],
      ['m', 'buf'],
      ['v', 'buf'],
      ['p', 'buf'],
      ['n', 'int'],
      ['b1', 'f64'],
      ['b2', 'f64'],
      ['eps', 'f64'],
      ['bc1', 'f64'],
      ['bc2', 'f64'],
      ['pre', 'f64'],
      ['post', 'f64'],
      ['measure', 'bool'],
      ['out', 'f64s'],
    ],
    c: 'gg_adam_apply',
  },
  /**
   * C[cOff..] = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is m×k, op(B) is k×n, C is m×n.
   * With beta = 0, C's previous contents are ignored (even NaN).
   */
  sgemm: {
    args: [
      ['transA', 'bool'],
      ['transB', 'bool'],
      ['m', 'int'],
      ['n', 'int'],
      ['k', 'int'],
      ['alpha', 'f64'],
      ['a', 'buf'],
      ['aOff', 'int'],
      ['lda', 'int'],
      ['b', 'buf'],
      ['bOff', 'int'],
      ['ldb', 'int'],
      ['beta', 'f64'],
      ['c', 'buf'],
      ['cOff', 'int'],
      ['ldc', 'int'],
    ],
    c: 'gg_sgemm',
  },
} as const satisfies Record<string, KernelSpec>;

/** Exports of the native addon that are not Backend kernels (native/addon.c's GG_KERNELS, the rest of it). */
export const ADDON_EXTRAS = {
  /** Whether gg_unary / gg_unary_grad implement op (1) or the caller falls back to the reference (0). */
  unarySupported: { args: [['op', 'i32']], ret: 'num', c: 'gg_unary_supported' },
  /** Threads of the matrix product (OpenBLAS's). */
  openblasThreads: { args: [], ret: 'num', c: 'gg_openblas_threads' },
  /** Threads for matrix products from now on. */
  setThreads: { args: [['n', 'i32']], c: 'gg_set_threads' },
  /** The kernel set OpenBLAS chose for this CPU. */
  openblasCore: { args: [], ret: 'str', c: 'gg_openblas_core' },
  /** Which sgemm runs: 'openblas', 'own-avx512', 'own-avx2', or 'per-shape:own-avx512+openblas' (-avx2). */
  gemmImpl: { args: [], ret: 'str', c: 'gg_gemm_impl' },
  /** Which sgemm computes products of this shape now ('' for one of the per-shape policy not yet measured). */
  gemmShapeChoice: {
    args: [
      ['transA', 'bool'],
      ['transB', 'bool'],
      ['m', 'int'],
      ['n', 'int'],
      ['k', 'int'],
    ],
    ret: 'str',
    c: 'gg_gemm_shape_choice',
  },
  /** Forces an sgemm for tests: 0 the policy, 1 OpenBLAS, 2 ours; returns gemmImpl. */
  gemmSelect: { args: [['which', 'i32']], ret: 'str', c: 'gg_gemm_select' },
  /**
   * Tests: 1 keeps the thread pool's workers from taking work, 2 leaves a job's last chunk to a worker and stops it
   * there until the caller sleeps waiting for it, 3 has them see every job late, 0 releases them; returns chunks
   * workers computed.
   */
  poolHold: { args: [['hold', 'i32']], ret: 'num', c: 'gg_pool_hold' },
  /** Tests: how many chunks the thread pool's last job (a product or a parallel loop) was cut into; 0 before any. */
  poolLastChunks: { args: [], ret: 'num', c: 'gg_pool_last_chunks' },
  /** Tests: times a thread pool worker found late (or told so: poolHold 3) slept right after a job; in all. */
  poolNaps: { args: [], ret: 'num', c: 'gg_pool_naps' },
  /**
   * Tests: the sparse weight-gradient path of our sgemm (native/gemm_sparse_x86.h): mode 0 where it qualifies (the
   * default), 1 never, 2 wherever A has a zero; -1 changes nothing. Returns the products it has computed so far.
   */
  gemmSparse: { args: [['mode', 'i32']], ret: 'num', c: 'gg_gemm_sparse_mode' },
  /**
   * Tests: mode 1 runs every job of the thread pool on its threads, 2 every job on the caller alone (the timings
   * kept), 0 (the default) chooses per kind of job by their timings, forgetting those so far, 3 chooses keeping them;
   * aloneNs / threadsNs > 0 are the timings the choice sees instead of the clock's. Returns the jobs run alone so far.
   */
  poolChoose: {
    args: [
      ['mode', 'i32'],
      ['aloneNs', 'f64'],
      ['threadsNs', 'f64'],
    ],
    ret: 'num',
    c: 'gg_pool_choose',
  },
  /**
   * Tests, bench: jobs offered to the thread pool (alone 0), those it ran on the caller alone (1), those run alone
   * because other processes held the CPUs (2); in all.
   */
  poolJobs: { args: [['alone', 'i32']], ret: 'num', c: 'gg_pool_jobs' },
  /**
   * Tests: free >= 0 has the thread pool take that many CPUs as free of other processes (under 1.55: every job on the
   * caller alone), < 0 measures them afresh (/proc/stat), NaN changes nothing; returns the CPUs free at the last reading (-1: none yet).
   */
  poolCrowd: { args: [['free', 'f64']], ret: 'num', c: 'gg_pool_crowd' },
  /** How the addon left the process's malloc when it loaded (native/addon.c, gg_tune_malloc). */
  mallocTuning: { args: [], ret: 'str', c: 'gg_malloc_tuning' },
  /**
   * bench/gemm-shapes.ts: best seconds per product of one shape (impl 0 OpenBLAS, 1 ours, 2 ours with A packed
   * once, 3 ours with a bias and ReLU epilogue, 4 gg_sgemm's choice), wall clock or (cpu) process CPU time; -1 declined,
   * -2 out of memory.
   */
  gemmTime: {
    args: [
      ['impl', 'i32'],
      ['transA', 'bool'],
      ['transB', 'bool'],
      ['m', 'int'],
      ['n', 'int'],
      ['k', 'int'],
      ['reps', 'i32'],
      ['rounds', 'i32'],
      ['cpu', 'bool'],
    ],
    ret: 'num',
    c: 'gg_gemm_time',
  },
  /** bench/gemm-shapes.ts: the calling thread's vector FMA rate in GFLOP/s over `iters` iterations (0: no own sgemm). */
  gemmPeak: { args: [['iters', 'int']], ret: 'num', c: 'gg_gemm_fma_peak' },
} as const satisfies Record<string, KernelSpec>;

/** Exports of the wasm modules that are not Backend kernels; `threadedOnly` ones only gradguard-mt.wasm has. */
export const WASM_EXTRAS = {
  gg_unary_supported: { args: [['op', 'i32']], ret: 'num', c: 'gg_unary_supported' },
  gg_threads_ctl: { args: [], ret: 'num', c: 'gg_threads_ctl', threadedOnly: true },
  gg_threads_max: { args: [], ret: 'num', c: 'gg_threads_max', threadedOnly: true },
  gg_threads_work: { args: [['tid', 'i32']], c: 'gg_threads_work', threadedOnly: true },
} as const satisfies Record<string, KernelSpec & { threadedOnly?: boolean }>;

export type KernelName = keyof typeof KERNELS;
