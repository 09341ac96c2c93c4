/**
 * The wasm backend: native/kernels/*.c and native/wasm_sgemm.c compiled to wasm32 + SIMD128 (native/build-wasm.sh), the
 * modules committed in wasm/. It runs wherever WebAssembly SIMD does (Node >= 16.4, current browsers). In Node the
 * matrix product runs on several threads (wasm/gradguard-mt.wasm on a shared memory, workers from wasm-threads.ts;
 * `GRADGUARD_THREADS` sets how many, 1 for the one-thread module); elsewhere, and from given bytes, on one thread
 * (wasm/gradguard.wasm). The threaded module gives the same numbers on any number of threads; the two modules differ
 * in the last bits of matrix products, since the threaded one fuses each multiply-add (relaxed SIMD's
 * f32x4.relaxed_madd) where the one-thread module rounds the product first (native/wasm_sgemm.c).
 *
 * A wasm kernel can only touch the module's linear memory, so every buffer of this backend lives there: the C code
 * owns the memory below `__heap_base` (stack, constants, sgemm's packing buffers) and this file manages everything
 * above it, as a bump allocator that never gives memory back plus the size-keyed free lists of `BufferPool`. A
 * training step asks for the same sizes every time, so after the first step nothing is allocated. The memory grows
 * in large steps (each `memory.grow` detaches every view, see `WasmBuf.data`).
 *
 * The methods of kernels whose arguments are plain are generated from the kernel spec (lower.ts); this class writes
 * only those that need more (a fallback, results read back from memory, shapes in the scratch area).
 */
import { writeConvGeom, writePoolGeom } from './geom.js';
import { BufferPool, JsBackend } from './js.js';
import { installKernels, type WasmExports } from './lower.js';
import { KERNELS, type KernelSpec } from './spec.js';
import { checkThreadCount, wantedThreads } from './threads.js';
import { type BackendName, Binary, type Buf, type ConvGeom, type PoolGeom, type Unary } from './types.js';
import { canReadModuleFiles, readModuleFile, readModuleFileAsync } from './wasm-bytes.js';
import {
  acceptsThreadedModule,
  CTL_BY_WORKERS,
  CTL_LIMIT,
  CTL_READY,
  threadsSupported,
  WasmThreads,
  WORKER_STACK_BYTES,
} from './wasm-threads.js';

const PAGE = 65536;
/** Allocations are aligned to a cache line (SIMD needs 16 bytes; 64 keeps buffers from sharing lines). */
const ALIGN = 64;
/** The smallest growth step: 16 MiB, so that a model's first step does not grow the memory hundreds of times. */
const MIN_GROW_PAGES = 256;
/** wasm32's limit, and the module's declared maximum (--max-memory in build-wasm.sh). */
const MAX_PAGES = 65536;
/** The threaded module's initial memory, 16 MiB (--initial-memory in build-wasm.sh): the shared memory must match. */
const WASM_MT_INITIAL_PAGES = 256;
/** Most axes binary and permute take in C (GG_MAX_DIMS); more fall back to JS. */
const MAX_DIMS = 8;

/** The part of linear memory above `__heap_base`: bump allocation, growing the memory as needed. */
class WasmHeap {
  private top: number;
  constructor(
    readonly memory: WebAssembly.Memory,
    heapBase: number,
  ) {
    this.top = align(heapBase);
  }

  /** `bytes` fresh bytes (aligned); never returned, since buffers go back to the pool instead. */
  reserve(bytes: number): number {
    const ptr = this.top;
    const end = ptr + align(Math.max(bytes, 1));
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = have / PAGE;
      const need = Math.ceil((end - have) / PAGE);
      // Grow by at least a quarter of what we have (and 16 MiB): amortised, and few detach events.
      const want = Math.min(Math.max(need, MIN_GROW_PAGES, pages >> 2), MAX_PAGES - pages);
      if (want < need)
        throw new RangeError(`wasm backend: out of memory (${(end / 2 ** 30).toFixed(2)} GiB needed, 4 GiB max)`);
      this.memory.grow(want);
    }
    this.top = end;
    return ptr;
  }

  make(size: number): WasmBuf {
    return new WasmBuf(this, this.reserve(size * 4), size);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

const EMPTY = new Float32Array(0);

/**
 * A buffer in the wasm module's linear memory. `ptr` is its byte offset there, the pointer the C kernels take.
 * Growing the memory detaches every view of it, so `data` re-creates the view when that happened (a detached
 * Float32Array has length 0): read `buf.data` afresh after any allocation rather than keeping the array.
 */
export class WasmBuf implements Buf {
  private view: Float32Array;
  constructor(
    private readonly heap: WasmHeap,
    readonly ptr: number,
    readonly size: number,
  ) {
    this.view = size === 0 ? EMPTY : new Float32Array(heap.memory.buffer, ptr, size);
  }
  get data(): Float32Array {
    let v = this.view;
    if (v.length !== this.size) v = this.view = new Float32Array(this.heap.memory.buffer, this.ptr, this.size);
    return v;
  }
}

/** Byte size of the scratch area for small int arrays: shape, two stride arrays, a geometry. */
const SCRATCH_INTS = 3 * MAX_DIMS + 16;

export class WasmBackend extends JsBackend {
  override readonly name: BackendName = 'wasm';
  /** Threads started for the matrix product (the calling one included): 1 for the one-thread module. */
  private readonly started: number;
  private limit: number;
  protected override readonly pool: BufferPool<Buf>;
  private readonly k: WasmExports;
  private readonly heap: WasmHeap;
  private workers: WasmThreads | null = null;
  /** Threaded module: the control words, as int32s (a view of the shared memory never detaches). */
  private readonly ctl: Int32Array | null = null;
  private readonly unaryOk = new Uint8Array(32);
  /** Byte offset of the int32 scratch area: [0,8) shape, [8,16) and [16,24) strides or perm, [24,40) geometry. */
  private readonly scratch: number;
  private scratchView: Int32Array;
  /** Byte offset of two float64 that kernels return through a pointer (axpySumSquares, sumSquaresMaxAbs), and their
   * view. */
  private readonly f64: number;
  private f64View: Float64Array;

  /**
   * `memory` is the shared memory a threaded instance imports (omit it for the one-thread module, which has its own);
   * `threads` then says how many threads to run, workers being started from `module`.
   */
  constructor(
    instance: WebAssembly.Instance,
    threaded?: { module: WebAssembly.Module; memory: WebAssembly.Memory; threads: number },
  ) {
    super();
    const k = instance.exports as unknown as WasmExports;
    this.k = k;
    const memory = threaded?.memory ?? k.memory;
    if (!memory) throw new TypeError('wasm backend: the module neither exports nor was given a memory');
    this.heap = new WasmHeap(memory, k.__heap_base.value as number);
    this.pool = new BufferPool<Buf>((size) => this.heap.make(size));
    this.scratch = this.heap.reserve(SCRATCH_INTS * 4);
    this.scratchView = new Int32Array(memory.buffer, this.scratch, SCRATCH_INTS);
    this.f64 = this.heap.reserve(16);
    this.f64View = new Float64Array(memory.buffer, this.f64, 2);
    for (let op = 0; op < this.unaryOk.length; op++) this.unaryOk[op] = k.gg_unary_supported!(op);
    // every other kernel: a generated method that passes buffers as pointers, geometries through the scratch area
    // (those not in the module, wasm: false in the spec, keep the reference's method, composed of these kernels)
    installKernels(
      this,
      (name) =>
        Object.hasOwn(WasmBackend.prototype, name) || (KERNELS as Record<string, KernelSpec>)[name]!.wasm === false,
      k,
      (_name, spec) => spec.c!,
      {
        buf: p,
        conv: (g) => this.conv(g),
        pool: (g) => this.poolGeom(g),
      },
    );
    this.started = 1;
    if (threaded && k.gg_threads_ctl && k.gg_threads_max) {
      const ctlPtr = k.gg_threads_ctl();
      this.ctl = new Int32Array(memory.buffer, ctlPtr, 16);
      this.started = Math.max(1, Math.min(threaded.threads, k.gg_threads_max()));
      if (this.started > 1) {
        const workers = new WasmThreads(threaded.module, memory, ctlPtr, this.started, () => {
          const base = this.heap.reserve(WORKER_STACK_BYTES);
          return base + WORKER_STACK_BYTES;
        });
        this.workers = workers;
        closeWhenCollected.register(this, workers);
      }
    }
    this.limit = this.started;
  }

  /** Buffers are regions of the module's memory: only `free` gives one back. */
  override get collectorFrees(): boolean {
    return false;
  }
  /** Threads the matrix product uses (the calling one included): 1 on the one-thread module. */
  override get threads(): number {
    return this.limit;
  }

  /**
   * Uses at most `n` threads for the matrix product from now on (as torch.set_num_threads), between 1 and the number
   * started with the backend (`GRADGUARD_THREADS` or the cores). The result does not depend on it: each element of
   * a product is summed in the same order whatever the thread count.
   */
  override setThreads(n: number): void {
    checkThreadCount(n);
    this.limit = Math.min(n, this.started);
    if (this.ctl) Atomics.store(this.ctl, CTL_LIMIT, this.limit);
  }

  /** Worker threads started and ready to take part in products (0 on the one-thread module or before they are up). */
  get workersReady(): number {
    return this.ctl ? Atomics.load(this.ctl, CTL_READY) : 0;
  }

  /** Chunks of products that workers computed since this backend started (threaded module; for tests and benches). */
  get chunksByWorkers(): number {
    return this.ctl ? Atomics.load(this.ctl, CTL_BY_WORKERS) : 0;
  }

  /**
   * Stops the worker threads (if any). Products still work afterwards, on the calling thread only. Workers are also
   * stopped when the backend is garbage-collected, and never keep a process alive.
   */
  close(): void {
    if (!this.workers) return;
    this.setThreads(1);
    this.workers.close();
    closeWhenCollected.unregister(this);
    this.workers = null;
  }

  /** The two float64 results, re-viewed if the memory grew since. */
  private f64s(): Float64Array {
    let v = this.f64View;
    if (v.length === 0) v = this.f64View = new Float64Array(this.heap.memory.buffer, this.f64, 2);
    return v;
  }

  /** The scratch ints, re-viewed if the memory grew since. */
  private ints(): Int32Array {
    let v = this.scratchView;
    if (v.length === 0) v = this.scratchView = new Int32Array(this.heap.memory.buffer, this.scratch, SCRATCH_INTS);
    return v;
  }

  override axpySumSquares(alpha: number, x: Buf, y: Buf, n: number, xSumSquares?: Float64Array): number {
    const s = this.k.gg_axpy_sum_squares(alpha, p(x), p(y), n, this.f64);
    if (xSumSquares) xSumSquares[0] = this.f64s()[0]!;
    return s;
  }

  override unary(op: Unary, x: Buf, out: Buf, n: number, a: number, b: number): void {
    if (this.unaryOk[op]) this.k.gg_unary(op, p(x), p(out), n, a, b);
    else super.unary(op, x, out, n, a, b);
  }
  override unaryGrad(op: Unary, x: Buf, y: Buf, gy: Buf, gx: Buf, n: number, a: number, b: number): void {
    if (this.unaryOk[op]) this.k.gg_unary_grad(op, p(x), p(y), p(gy), p(gx), n, a, b);
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
    const d = this.ints();
    for (let i = 0; i < nd; i++) {
      d[i] = shape[i]!;
      d[MAX_DIMS + i] = aStrides[i]!;
      d[2 * MAX_DIMS + i] = bStrides[i]!;
    }
    const s = this.scratch;
    this.k.gg_binary(op, p(a), p(b), p(out), nd, s, s + 4 * MAX_DIMS, s + 8 * MAX_DIMS);
  }

  override sumSquaresMaxAbs(x: Buf, n: number, out: Float64Array): void {
    this.k.gg_sum_squares_max_abs(p(x), n, this.f64);
    const v = this.f64s();
    out[0] = v[0]!;
    out[1] = v[1]!;
  }

  override adamApply(
    g: Buf,
    m: Buf,
    v: Buf,
    w: Buf,
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
    this.k.gg_adam_apply(p(g), p(m), p(v), p(w), n, b1, b2, eps, bc1, bc2, pre, post, measure ? 1 : 0, this.f64);
    if (!measure) return;
    const r = this.f64s();
    out[0] = r[0]!;
    out[1] = r[1]!;
  }

  override permute(x: Buf, out: Buf, shape: readonly number[], perm: readonly number[]): void {
    const nd = shape.length;
    if (nd > MAX_DIMS) {
      super.permute(x, out, shape, perm);
      return;
    }
    const d = this.ints();
    for (let i = 0; i < nd; i++) {
      d[i] = shape[i]!;
      d[MAX_DIMS + i] = perm[i]!;
    }
    this.k.gg_permute(p(x), p(out), nd, this.scratch, this.scratch + 4 * MAX_DIMS);
  }

  /** Writes a geometry into the scratch area; returns its byte offset. */
  private conv(g: ConvGeom): number {
    writeConvGeom(this.ints(), 3 * MAX_DIMS, g);
    return this.scratch + 12 * MAX_DIMS;
  }
  private poolGeom(g: PoolGeom): number {
    writePoolGeom(this.ints(), 3 * MAX_DIMS, g);
    return this.scratch + 12 * MAX_DIMS;
  }
}

/**
 * The pointer of a buffer of this backend. A buffer from elsewhere (an `ArrayBuf` has ptr 0, below `__heap_base`)
 * would make the kernel read and write the module's stack: refuse it loudly instead.
 */
function p(b: Buf): number {
  const ptr = b.ptr;
  if (ptr === 0) throw new TypeError('wasm backend: this buffer was not allocated by the wasm backend');
  return ptr;
}

const closeWhenCollected = new FinalizationRegistry<WasmThreads>((workers) => workers.close());

/** Where the committed modules lie: two levels up from both src/backend/ and dist/backend/. */
function defaultWasmUrl(): URL {
  return new URL('../../wasm/gradguard.wasm', import.meta.url);
}
function threadedWasmUrl(): URL {
  return new URL('../../wasm/gradguard-mt.wasm', import.meta.url);
}

/**
 * The threaded backend on `threads` threads, or null where this runtime cannot run it (no worker_threads or shared
 * memory, or the module is missing): the caller then loads the one-thread module.
 */
function createThreadedBackend(threads: number): WasmBackend | null {
  try {
    if (!threadsSupported()) return null;
    const bytes = readModuleFile(threadedWasmUrl());
    if (!acceptsThreadedModule(bytes)) return null;
    const module = new WebAssembly.Module(bytes as BufferSource);
    const memory = new WebAssembly.Memory({ initial: WASM_MT_INITIAL_PAGES, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return new WasmBackend(instance, { module, memory, threads });
  } catch {
    return null;
  }
}

/**
 * A wasm backend, compiled synchronously (fine in Node and in workers; browsers refuse large synchronous compiles on
 * the main thread, so use createWasmBackendAsync there). Without `bytes` it reads the module through node:fs: the
 * threaded one on `threads` threads (default: `GRADGUARD_THREADS`, else every core) when that is more than one and
 * this runtime has worker_threads, else wasm/gradguard.wasm. Given `bytes`, that one-thread module. Returns null when
 * the module is missing or this runtime cannot compile it (no WebAssembly or no SIMD); throws on an invalid
 * `GRADGUARD_THREADS`.
 */
export function createWasmBackend(bytes?: Uint8Array, options: { threads?: number } = {}): WasmBackend | null {
  const fsOk = canReadModuleFiles;
  if (!bytes && fsOk) {
    const threads = options.threads ?? wantedThreads();
    if (threads > 1) {
      const threaded = createThreadedBackend(threads);
      if (threaded) return threaded;
    }
  }
  try {
    let src = bytes;
    if (!src) {
      // a browser build has no files to read (wasm-bytes.browser.ts): it uses createWasmBackendAsync
      if (!fsOk) return null;
      src = readModuleFile(defaultWasmUrl());
    }
    const module = new WebAssembly.Module(src as BufferSource);
    return new WasmBackend(new WebAssembly.Instance(module, {}));
  } catch {
    return null;
  }
}

/**
 * A wasm backend, compiled asynchronously (for browsers' main thread). `source` is the module's URL (fetched; a file:
 * URL is read from disk in Node), its bytes, or a fetch Response; by default the URL of wasm/gradguard.wasm next to
 * this file, which bundlers such as Vite recognise and ship as an asset. Rejects if it cannot be loaded or compiled.
 */
export async function createWasmBackendAsync(
  source: URL | Uint8Array | Response = defaultWasmUrl(),
): Promise<WasmBackend> {
  let bytes: BufferSource;
  if (source instanceof Uint8Array) bytes = source as BufferSource;
  else if (source instanceof URL) {
    const onDisk = await readModuleFileAsync(source);
    if (onDisk) bytes = onDisk as BufferSource;
    else {
      const res = await fetch(source);
      if (!res.ok) throw new Error(`wasm backend: fetching ${source.href} failed: HTTP ${res.status}`);
      bytes = await res.arrayBuffer();
    }
  } else {
    bytes = await source.arrayBuffer();
  }
  const module = await WebAssembly.compile(bytes);
  const instance = await WebAssembly.instantiate(module, {});
  return new WasmBackend(instance);
}
