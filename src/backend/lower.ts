/**
 * From the kernel spec (spec.ts) to the C side: the typing of the native addon's and the wasm module's exports, and
 * the backend methods of every kernel whose arguments travel without help (buffers, numbers, flags, a geometry), so
 * that native.ts and wasm.ts write by hand only the kernels that need more (a fallback to the reference, results
 * read back through a pointer, shapes packed into a scratch array).
 */
import { type ADDON_EXTRAS, type ArgKind, KERNELS, type KernelSpec, type RetKind, type WASM_EXTRAS } from './spec.js';
import type { Buf, ConvGeom, PoolGeom, RetTypes } from './types.js';

type Arg = readonly [name: string, kind: ArgKind];

/** How an argument kind reaches the native addon (a run of `dims` becomes the count and one packed Int32Array). */
interface NativeTypes {
  buf: Float32Array;
  f64: number;
  int: number;
  i32: number;
  bool: number;
  unary: number;
  binary: number;
  conv: Int32Array;
  pool: Int32Array;
  f64s: Float64Array;
  'f64s?': Float64Array;
}
type SkipDims<A extends readonly Arg[]> = A extends readonly [infer H extends Arg, ...infer T extends readonly Arg[]]
  ? H[1] extends 'dims'
    ? SkipDims<T>
    : A
  : A;
type NativeArgs<A extends readonly Arg[]> = A extends readonly [infer H extends Arg, ...infer T extends readonly Arg[]]
  ? H[1] extends 'dims'
    ? [nd: number, dims: Int32Array, ...NativeArgs<SkipDims<T>>]
    : [NativeTypes[Exclude<H[1], 'dims'>], ...NativeArgs<T>]
  : [];
/** Every wasm argument is a number: a value, or a byte offset into the memory. A run of `dims` is nd + 1 pointer each. */
type WasmArgs<A extends readonly Arg[], InDims = false> = A extends readonly [
  infer H extends Arg,
  ...infer T extends readonly Arg[],
]
  ? H[1] extends 'dims'
    ? InDims extends true
      ? [number, ...WasmArgs<T, true>]
      : [number, number, ...WasmArgs<T, true>]
    : [number, ...WasmArgs<T, false>]
  : [];
type CRet<S> = S extends { readonly cRet: infer R extends RetKind }
  ? RetTypes[R]
  : S extends { readonly ret: infer R extends RetKind }
    ? RetTypes[R]
    : // biome-ignore lint/suspicious/noConfusingVoidType: the result type of a kernel method that returns nothing
      void;

type Kernels = typeof KERNELS;
type AddonExtras = typeof ADDON_EXTRAS;
type WasmExtras = typeof WASM_EXTRAS;

/** The native addon's exports (native/addon.c, table GG_KERNELS), derived from the spec. */
export type NativeAddon = {
  [K in keyof Kernels as Kernels[K]['c'] extends string ? K : never]: (
    ...args: NativeArgs<Kernels[K]['args']>
  ) => CRet<Kernels[K]>;
} & { [K in keyof AddonExtras]: (...args: NativeArgs<AddonExtras[K]['args']>) => CRet<AddonExtras[K]> };

/** The wasm modules' exports (the GG_API functions of native/kernels.h), derived from the spec. */
export type WasmExports = {
  [K in keyof Kernels as Kernels[K]['c'] extends string ? Kernels[K]['c'] : never]: (
    ...args: WasmArgs<Kernels[K]['args']>
  ) => CRet<Kernels[K]>;
} & {
  [K in keyof WasmExtras]?: (...args: WasmArgs<WasmExtras[K]['args']>) => CRet<WasmExtras[K]>;
} & {
  /** The one-thread module's own memory (the threaded one imports its memory instead). */
  readonly memory?: WebAssembly.Memory;
  readonly __heap_base: WebAssembly.Global;
};

/** The argument kinds a generated method lowers by itself. */
const PLAIN: ReadonlySet<ArgKind> = new Set(['buf', 'f64', 'int', 'i32', 'bool', 'unary', 'binary', 'conv', 'pool']);

/** Whether a kernel's arguments all travel without help, so that its native and wasm methods can be generated. */
export function isPlain(spec: KernelSpec): boolean {
  return spec.args.every(([, kind]) => PLAIN.has(kind));
}

/** How a backend hands arguments to its C functions. */
export interface Lowering {
  buf(b: Buf): unknown;
  conv(g: ConvGeom): unknown;
  pool(g: PoolGeom): unknown;
}

/** A method that lowers its arguments by `kinds` and calls `fn`. */
function lowered(fn: (...args: unknown[]) => unknown, kinds: readonly ArgKind[], low: Lowering) {
  const conv = kinds.map((k): ((v: never) => unknown) | null =>
    k === 'buf'
      ? (b: Buf) => low.buf(b)
      : k === 'bool'
        ? (v: boolean) => (v ? 1 : 0)
        : k === 'conv'
          ? (g: ConvGeom) => low.conv(g)
          : k === 'pool'
            ? (g: PoolGeom) => low.pool(g)
            : null,
  );
  const n = conv.length;
  return (...args: unknown[]): unknown => {
    for (let i = 0; i < n; i++) {
      const c = conv[i];
      if (c) args[i] = c(args[i] as never);
    }
    return fn(...args);
  };
}

/**
 * Gives `backend` a method for every plain kernel with C (spec.ts) that its class does not write by hand (`own`, the
 * class's prototype up to but excluding the reference's): the method lowers its arguments and calls `exports[name]`.
 * `name` maps a spec entry to its export (the kernel's name natively, its C function's in wasm). A missing export
 * throws: the module and the spec disagree.
 */
export function installKernels(
  backend: object,
  own: (name: string) => boolean,
  exports: Record<string, unknown>,
  name: (kernel: string, spec: KernelSpec) => string,
  low: Lowering,
): void {
  for (const [kernel, spec] of Object.entries(KERNELS) as [string, KernelSpec][]) {
    if (spec.c === null || !isPlain(spec) || own(kernel)) continue;
    const exp = name(kernel, spec);
    const fn = exports[exp];
    if (typeof fn !== 'function') throw new TypeError(`kernel '${kernel}': the module does not export '${exp}'`);
    const kinds = spec.args.map(([, k]) => k);
    Object.defineProperty(backend, kernel, {
      value: lowered(fn as (...args: unknown[]) => unknown, kinds, low),
      writable: true,
      configurable: true,
    });
  }
}
