/**
 * Worker threads for the wasm backend's matrix product (wasm/gradguard-mt.wasm, Node only).
 *
 * The threaded module imports a shared memory. The backend instantiates it on the calling thread; this file starts
 * `threads - 1` workers, each instantiating the same compiled module on the same memory with a stack of its own, then
 * sleeping in `Atomics.wait` until a product is posted (the protocol is described in native/wasm_sgemm.c). Workers
 * are unref'd, so they never keep a process alive, and they are terminated when the backend is closed or collected.
 *
 * The worker is a few lines of plain JavaScript evaluated from a string, so it needs no separate file that a bundler
 * or a TypeScript loader would have to find.
 */
import * as nodeOs from 'node:os';
import * as nodeV8 from 'node:v8';
import * as nodeWorkers from 'node:worker_threads';

/** Bytes of stack each worker gets (as the module's own: -z stack-size in native/build-wasm.sh). */
export const WORKER_STACK_BYTES = 65536;

/** Control words of native/wasm_sgemm.c (int32 indices into `ctl`). */
export const CTL_READY = 3;
export const CTL_FAILED = 4;
export const CTL_BY_WORKERS = 5;
export const CTL_LIMIT = 6;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, tid, stackTop, ctlPtr } = workerData;
const ctl = new Int32Array(memory.buffer, ctlPtr, 16);
try {
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  k.__stack_pointer.value = stackTop;
  Atomics.add(ctl, ${CTL_READY}, 1);
  let seen = Atomics.load(ctl, 0);
  for (;;) {
    // Spin a little first (a training step posts its next job within microseconds), then sleep.
    for (let i = 0; i < 20000 && Atomics.load(ctl, 0) === seen; i++);
    Atomics.wait(ctl, 0, seen);
    seen = Atomics.load(ctl, 0);
    k.gg_threads_work(tid);
  }
} catch (e) {
  Atomics.store(ctl, ${CTL_FAILED}, 1);
  throw e;
}
`;

/**
 * Whether this runtime accepts the threaded module's bytes. Its sgemm uses relaxed SIMD's fused multiply-add, which
 * V8 ships from Node 22 on; Node 20's V8 has it complete behind --experimental-wasm-relaxed-simd, so where the bytes
 * do not validate as they are, that flag is set (it only adds instructions to what wasm may use) and they are
 * validated again.
 */
export function acceptsThreadedModule(bytes: Uint8Array): boolean {
  if (WebAssembly.validate(bytes as BufferSource)) return true;
  if (typeof nodeV8.setFlagsFromString !== 'function') return false;
  nodeV8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(bytes as BufferSource);
}

/** Whether this runtime can run the threaded module: Node's worker_threads and shared memory. */
export function threadsSupported(): boolean {
  return (
    typeof SharedArrayBuffer !== 'undefined' &&
    typeof nodeWorkers.Worker === 'function' &&
    typeof Atomics !== 'undefined' &&
    typeof nodeOs.cpus === 'function'
  );
}

/** The workers of one backend. */
export class WasmThreads {
  private readonly workers: nodeWorkers.Worker[] = [];
  private closed = false;

  /**
   * Starts workers 1..count-1 on `memory`. `stack(i)` reserves a stack for worker i and returns its top. Returns
   * at once: each worker counts itself in CTL_READY when its instance is up, and products use it from then on.
   */
  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctlPtr: number,
    count: number,
    stack: () => number,
  ) {
    for (let tid = 1; tid < count; tid++) {
      const worker = new nodeWorkers.Worker(WORKER_SOURCE, {
        eval: true,
        // Not the parent's Node options: a loader (--import tsx) would slow the start, and --input-type=module would
        // make this CommonJS source fail. (V8 flags, such as the relaxed SIMD one, are per process anyway.)
        execArgv: [],
        workerData: { module, memory, tid, stackTop: stack(), ctlPtr },
        // A worker runs one wasm loop and no JS allocations to speak of: keep its heaps small.
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
        stdout: false,
        stderr: false,
      });
      worker.unref();
      // A worker that fails has already set CTL_FAILED (products then trap instead of waiting); nothing to add here,
      // but an 'error' listener keeps the failure from becoming an uncaught exception of the whole process.
      worker.on('error', () => {});
      this.workers.push(worker);
    }
  }

  /** Stops the workers. The backend must not run a product afterwards (WasmBackend.close forgets the module). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) void w.terminate();
  }
}
