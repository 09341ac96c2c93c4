/**
 * The kernel interface every backend implements (js, wasm, native).
 *
 * Ops in `tensor/` call kernels by name; a backend provides them. All buffers are float32 and contiguous; integer
 * inputs (class indices, gather indices) travel as float32 values, exact up to 2^24. Kernels never check their input:
 * the public ops in `tensor/` do that at the boundary.
 *
 * The kernels themselves are declared once, in spec.ts; `Backend` below derives their methods from it.
 *
 * NOTE: a `Buf` of the wasm backend lives in the module's linear memory; `data` re-creates its view when the memory
 * has grown (growing detaches every existing view), so always read `buf.data` afresh rather than keeping the array.
 */
import type { ArgKind, KERNELS, RetKind } from './spec.js';

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

/** The TypeScript type of each argument kind of the kernel spec (spec.ts). */
export interface ArgTypes {
  buf: Buf;
  f64: number;
  int: number;
  i32: number;
  bool: boolean;
  unary: Unary;
  binary: Binary;
  conv: ConvGeom;
  pool: PoolGeom;
  f64s: Float64Array;
  'f64s?': Float64Array;
  dims: readonly number[];
}
export interface RetTypes {
  // biome-ignore lint/suspicious/noConfusingVoidType: the result type of a kernel method that returns nothing
  void: void;
  num: number;
  str: string;
}

type Arg = readonly [name: string, kind: ArgKind];
/** The parameters of a kernel as the Backend method takes them (an optional kind only ever comes last). */
export type MethodArgs<A extends readonly Arg[]> = A extends readonly [
  infer H extends Arg,
  ...infer T extends readonly Arg[],
]
  ? H[1] extends 'f64s?'
    ? [ArgTypes[H[1]]?]
    : [ArgTypes[H[1]], ...MethodArgs<T>]
  : [];
// biome-ignore lint/suspicious/noConfusingVoidType: the result type of a kernel method that returns nothing
type RetOf<S> = S extends { readonly ret: infer R extends RetKind } ? RetTypes[R] : void;

/** The kernel methods of every backend, derived from the kernel spec (spec.ts, where each is documented). */
export type KernelMethods = {
  [K in keyof typeof KERNELS]: (...args: MethodArgs<(typeof KERNELS)[K]['args']>) => RetOf<(typeof KERNELS)[K]>;
};

/**
 * A backend: buffer management and the kernels of the spec. Kernels never check their input (the public ops in
 * `tensor/` do that at the boundary).
 */
export interface Backend extends KernelMethods {
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
  /**
   * Whether a buffer's memory belongs to the JavaScript garbage collector (an ordinary Float32Array: the js and
   * native backends). Such a buffer, dropped with the tensors that held it, is freed by the collector itself, so
   * the library never keeps it alive waiting to pool it (see `collected`); a wasm buffer is a region of the module's
   * memory that only `free` gives back.
   */
  readonly collectorFrees: boolean;
  /** A buffer of `size` elements that was never released was freed by the garbage collector (pool statistics). */
  collected(size: number): void;
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
