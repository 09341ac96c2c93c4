/**
 * The kernel interface every backend implements (js, wasm, native).
 *
 * Ops in `tensor/` call kernels by name; a backend provides them. All buffers are float32 and contiguous; integer
 * inputs (class indices, gather indices) travel as float32 values, exact up to 2^24. Kernels never check their input:
 * the public ops in `tensor/` do that at the boundary.
 *
 * NOTE: a `Buf` of the wasm backend lives in the module's linear memory; `data` re-creates its view when the memory
 * has grown (growing detaches every existing view), so always read `buf.data` afresh rather than keeping the array.
 */
export interface Buf {
  /** Number of float32 elements. */
  readonly size: number;
  /** A view of the elements (length `size`). */
  readonly data: Float32Array;
  /** Byte offset in wasm linear memory (wasm backend only; 0 elsewhere). */
  readonly ptr: number;
}

export type BackendName = 'js' | 'wasm' | 'native';

/** Unary elementwise ops. `a`, `b` are op parameters (see each). */
export enum Unary {
  Neg = 0,
  Exp = 1,
  Log = 2,
  Sqrt = 3,
  Abs = 4,
  Relu = 5,
  /** a = negative slope */
  LeakyRelu = 6,
  /** a = alpha */
  Elu = 7,
  Selu = 8,
  /** exact (erf) GELU, PyTorch's default */
  Gelu = 9,
  Sigmoid = 10,
  Tanh = 11,
  /** a = beta, b = threshold: x*beta > threshold gives x */
  Softplus = 12,
  /** a = exponent */
  PowScalar = 13,
  /** a = min, b = max (NaN bound = none); gradient passes where min <= x <= max */
  Clamp = 14,
  /** y = a*x + b */
  Affine = 15,
  Square = 16,
  Reciprocal = 17,
  Sign = 18,
  /** y = a / x (b unused): reverse division of a scalar by a tensor */
  ScalarDiv = 19,
  /** y = a ^ x */
  ScalarPow = 20,
}

/** Binary elementwise ops with broadcasting. */
export enum Binary {
  Add = 0,
  Sub = 1,
  Mul = 2,
  Div = 3,
  Pow = 4,
  Maximum = 5,
  Minimum = 6,
}

export interface Backend {
  readonly name: BackendName;
  /** Number of threads the matrix product uses. */
  readonly threads: number;
  /**
   * Uses `n` threads for matrix products from now on (as torch.set_num_threads); the wasm backend caps it at the
   * threads it started with, the js reference stays on one. GRADGUARD_THREADS sets it for a whole process.
   */
  setThreads(n: number): void;

  /** A buffer of `size` elements; contents are unspecified (buffers are pooled and reused). */
  alloc(size: number): Buf;
  /** Returns a buffer to the pool. It must not be used afterwards. */
  free(buf: Buf): void;
  /** Pool statistics: bytes handed out now, bytes held in the pool, fresh allocations made so far. */
  stats(): { liveBytes: number; pooledBytes: number; freshAllocs: number };

  fill(out: Buf, value: number, n: number): void;
  /** dst[dOff + i] = src[sOff + i] for i < n */
  copy(src: Buf, sOff: number, dst: Buf, dOff: number, n: number): void;
  /**
   * Strided block copy: for b < nBlocks, for i < len: dst[dOff + b*dStride + i] (+)= src[sOff + b*sStride + i].
   * With `accumulate` the destination is added to, else overwritten. Used by slice, concat, stack and their gradients.
   */
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
  ): void;
  /** y += alpha * x over n elements. */
  axpy(alpha: number, x: Buf, y: Buf, n: number): void;
  /**
   * y += alpha * x as `axpy`, returning the sum of squares of the new y (float64), and with `xSumSquares` storing that
   * of x in its first element: applying an update and measuring the weights it leaves and the update itself costs
   * one pass instead of three.
   */
  axpySumSquares(alpha: number, x: Buf, y: Buf, n: number, xSumSquares?: Float64Array): number;

  unary(op: Unary, x: Buf, out: Buf, n: number, a: number, b: number): void;
  /** gx = gy * f'(x); `y` is the forward output f(x) (some derivatives read it). */
  unaryGrad(op: Unary, x: Buf, y: Buf, gy: Buf, gx: Buf, n: number, a: number, b: number): void;
  /**
   * out[idx] = a[idx·aStrides] op b[idx·bStrides] over the multi-index idx of `shape` (row-major). A stride of 0
   * broadcasts. `shape`, `aStrides`, `bStrides` have the same length (at most 8).
   */
  binary(
    op: Binary,
    a: Buf,
    b: Buf,
    out: Buf,
    shape: readonly number[],
    aStrides: readonly number[],
    bStrides: readonly number[],
  ): void;

  /** out[o*inner + i] = sum over m of x[(o*mid + m)*inner + i]. */
  sumAxis(x: Buf, out: Buf, outer: number, mid: number, inner: number): void;
  /** out[o*inner + i] = max over m; arg[o*inner + i] = the first m that attains it. */
  maxAxis(x: Buf, out: Buf, arg: Buf, outer: number, mid: number, inner: number): void;
  /**
   * out[0] = Σx² and out[1] = max |x| (NaN if x holds one) in one pass over memory (the monitor reads every
   * gradient for both). The sum may differ from `sumSquares` in its last bits.
   */
  sumSquaresMaxAbs(x: Buf, n: number, out: Float64Array): void;
  /** Sum of squares of x[0..n) in float64. */
  sumSquares(x: Buf, n: number): number;
  /** max |x| over x[0..n) (NaN if any is NaN). */
  maxAbs(x: Buf, n: number): number;
  /** Number of NaN or ±Inf values in x[0..n). */
  countNonFinite(x: Buf, n: number): number;

  /**
   * C[cOff..] = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is m×k, op(B) is k×n, C is m×n.
   * With beta = 0, C's previous contents are ignored (even NaN).
   */
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
  ): void;

  /** Copies x (row-major `shape`) into out, permuted: out's axis j is x's axis perm[j]. */
  permute(x: Buf, out: Buf, shape: readonly number[], perm: readonly number[]): void;

  /** Row-wise softmax (log = false) or log-softmax (log = true) of a rows×cols matrix. */
  softmax(x: Buf, out: Buf, rows: number, cols: number, log: boolean): void;
  /** Gradient of softmax (y = softmax) or log-softmax (y = log-softmax) given y and gy. */
  softmaxGrad(y: Buf, gy: Buf, gx: Buf, rows: number, cols: number, log: boolean): void;
  /**
   * Cross-entropy with class indices and label smoothing ε, per row r:
   * loss[r] = -(1-ε)·logp[r, t_r] - (ε/cols)·Σ_c logp[r, c], or 0 when t_r = ignoreIndex.
   * Writes probs = softmax(x) (kept for the gradient) and loss per row.
   */
  crossEntropy(
    x: Buf,
    targets: Buf,
    probs: Buf,
    loss: Buf,
    rows: number,
    cols: number,
    smoothing: number,
    ignoreIndex: number,
  ): void;
  /** gx[r, c] = scale[r] · (probs[r, c] - (1-ε)·[c = t_r] - ε/cols); rows with t_r = ignoreIndex get 0. */
  crossEntropyGrad(
    probs: Buf,
    targets: Buf,
    scale: Buf,
    gx: Buf,
    rows: number,
    cols: number,
    smoothing: number,
    ignoreIndex: number,
  ): void;

  /**
   * im2col for a whole batch: x is N×C×H×W; cols is (C·kh·kw) × (N·oh·ow), row (c, i, j), column (n, y, x);
   * padding reads as 0.
   */
  im2col(x: Buf, cols: Buf, g: ConvGeom): void;
  /** The adjoint of im2col: dx (N×C×H×W) = sum of cols into the positions they were read from. Overwrites dx. */
  col2im(cols: Buf, dx: Buf, g: ConvGeom): void;
  /** Max pooling over N·C planes; padding never wins. */
  maxPool2d(x: Buf, out: Buf, g: PoolGeom): void;
  /** Gradient of max pooling; the first maximum in a window takes the gradient (as PyTorch). Overwrites dx. */
  maxPool2dGrad(x: Buf, gy: Buf, dx: Buf, g: PoolGeom): void;
  /** Average pooling; the divisor counts padding when `countIncludePad` (PyTorch's default). */
  avgPool2d(x: Buf, out: Buf, g: PoolGeom, countIncludePad: boolean): void;
  avgPool2dGrad(gy: Buf, dx: Buf, g: PoolGeom, countIncludePad: boolean): void;

  /**
   * Adam moment update and step direction, in place over n elements (optax's scale_by_adam):
   * m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²; g ← (m / bc1) / (sqrt(v / bc2) + eps).
   */
  adamUpdate(g: Buf, m: Buf, v: Buf, n: number, b1: number, b2: number, eps: number, bc1: number, bc2: number): void;
}

/** Geometry of a 2-D convolution (NCHW input, OIHW weight). */
export interface ConvGeom {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  oh: number;
  ow: number;
}

/** Geometry of 2-D pooling over `planes` = N·C planes of h×w. */
export interface PoolGeom {
  planes: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  oh: number;
  ow: number;
}
