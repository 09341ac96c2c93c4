/**
 * The wasm backend for a web page: modules compiled asynchronously (browsers refuse large synchronous compiles on the
 * main thread), the threaded module (wasm/gradguard-mt.wasm, Web Workers on a shared memory) when the page is
 * cross-origin isolated, else the one-thread module (wasm/gradguard.wasm). The threaded module gives the same numbers
 * on any number of threads; the one-thread module differs from it in the last bits of matrix products (it rounds
 * before adding where the threaded one fuses the multiply-add).
 */
import { wantedThreads } from './threads.js';
import { WasmBackend } from './wasm.js';
import { acceptsThreadedModule, threadsSupported } from './wasm-threads.js';

/** The threaded module's initial memory, 16 MiB (--initial-memory in native/build-wasm.sh), and wasm32's limit. */
const MT_INITIAL_PAGES = 256;
const MAX_PAGES = 65536;

export interface WebWasmOptions {
  /** The one-thread module's URL (default: wasm/gradguard.wasm beside the package, which bundlers ship as an asset). */
  single?: URL | string;
  /** The threaded module's URL (default: wasm/gradguard-mt.wasm). */
  threaded?: URL | string;
  /** Threads for the matrix product when the threaded module runs (default: the cores). 1 loads the one-thread one. */
  threads?: number;
}

async function fetchBytes(url: URL | string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`wasm backend: fetching ${String(url)} failed: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Loads the wasm backend for a page: threaded where `threadsSupported()` (cross-origin isolated) and more than one
 * thread is wanted and the browser validates the module, else one-threaded. Rejects if neither module loads.
 */
export async function loadWebWasmBackend(opts: WebWasmOptions = {}): Promise<WasmBackend> {
  const threads = opts.threads ?? wantedThreads();
  if (threads > 1 && threadsSupported()) {
    try {
      const bytes = await fetchBytes(opts.threaded ?? new URL('../../wasm/gradguard-mt.wasm', import.meta.url));
      if (acceptsThreadedModule(bytes)) {
        const module = await WebAssembly.compile(bytes as BufferSource);
        const memory = new WebAssembly.Memory({ initial: MT_INITIAL_PAGES, maximum: MAX_PAGES, shared: true });
        const instance = await WebAssembly.instantiate(module, { env: { memory } });
        return new WasmBackend(instance, { module, memory, threads });
      }
    } catch {
      // fall through to the one-thread module, which every browser with wasm SIMD runs
    }
  }
  const bytes = await fetchBytes(opts.single ?? new URL('../../wasm/gradguard.wasm', import.meta.url));
  const module = await WebAssembly.compile(bytes as BufferSource);
  return new WasmBackend(await WebAssembly.instantiate(module, {}));
}
