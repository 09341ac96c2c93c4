/**
 * Worker threads for the wasm backend's matrix product in a browser (package.json's `browser` field puts this file in
 * place of wasm-threads.ts): Web Workers instead of worker_threads, started from a Blob URL so that no separate file
 * has to be found. They run only where the page is cross-origin isolated (COOP/COEP headers), which is what makes
 * `SharedArrayBuffer` and a shared `WebAssembly.Memory` available. The protocol is native/wasm_threads.c's, as in
 * Node: the caller spins (never blocks), so products work on the page's main thread too.
 */

/** Bytes of stack each worker gets (as the module's own: -z stack-size in native/build-wasm.sh). */
export const WORKER_STACK_BYTES = 65536;

/** Control words of native/wasm_sgemm.c (int32 indices into `ctl`). */
export const CTL_READY = 3;
export const CTL_FAILED = 4;
export const CTL_BY_WORKERS = 5;
export const CTL_LIMIT = 6;

const WORKER_SOURCE = `
onmessage = (e) => {
  const { module, memory, tid, stackTop, ctlPtr } = e.data;
  const ctl = new Int32Array(memory.buffer, ctlPtr, 16);
  try {
    const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
    k.__stack_pointer.value = stackTop;
    Atomics.add(ctl, ${CTL_READY}, 1);
    let seen = Atomics.load(ctl, 0);
    for (;;) {
      for (let i = 0; i < 20000 && Atomics.load(ctl, 0) === seen; i++);
      Atomics.wait(ctl, 0, seen);
      seen = Atomics.load(ctl, 0);
      k.gg_threads_work(tid);
    }
  } catch (err) {
    Atomics.store(ctl, ${CTL_FAILED}, 1);
    throw err;
  }
};
`;

/** One Blob URL for every worker of the page (a worker loads its script after construction: it must stay valid). */
let workerUrl: string | undefined;

/** Whether this browser accepts the threaded module's bytes (it needs relaxed SIMD and threads). */
export function acceptsThreadedModule(bytes: Uint8Array): boolean {
  return WebAssembly.validate(bytes as BufferSource);
}

/** Whether this page can run the threaded module: cross-origin isolated, with workers and shared memory. */
export function threadsSupported(): boolean {
  return (
    typeof SharedArrayBuffer !== 'undefined' &&
    typeof Worker === 'function' &&
    typeof Atomics !== 'undefined' &&
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true
  );
}

/** The workers of one backend. */
export class WasmThreads {
  private readonly workers: Worker[] = [];
  private closed = false;

  /** Starts workers 1..count-1 on `memory` (see wasm-threads.ts); returns at once, each counts itself in CTL_READY. */
  constructor(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    ctlPtr: number,
    count: number,
    stack: () => number,
  ) {
    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
    for (let tid = 1; tid < count; tid++) {
      const worker = new Worker(workerUrl);
      worker.postMessage({ module, memory, tid, stackTop: stack(), ctlPtr });
      this.workers.push(worker);
    }
  }

  /** Stops the workers. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) w.terminate();
  }
}
