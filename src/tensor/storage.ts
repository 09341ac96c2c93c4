/**
 * A tensor's storage (one pooled buffer, shared by reshaped views) and how storages outside every `tidy` scope are
 * watched, so that the buffers of those the garbage collector finds go back (tensor.ts uses these).
 */
import type { Backend, Buf } from '../backend/types.js';

/** Owns one pooled buffer; `buf` is null once released. Reshaped tensors share their storage. */
export class Storage {
  /**
   * @internal The values are all zero but not written yet (`Optimizer.zeroGrad()`): the first `Tensor.buf` writes them,
   * and a backward that would add into them writes its gradient instead (accumulateLeaf).
   */
  zeroPending = false;
  constructor(
    public buf: Buf | null,
    readonly backend: Backend,
  ) {}
}

/**
 * Storages that no tidy scope owns (outside `tidy`, kept, gradients, parameters) are watched: when the garbage
 * collector finds one unreachable, its buffer goes back. Where the collector owns the buffer's memory (an ordinary
 * Float32Array: js, native) the registry holds only its size, never the buffer, so the collector frees the memory
 * with the storage: the registry's callbacks run only when JavaScript returns to the event loop, and a training loop
 * written without `tidy()` in one synchronous run would otherwise keep every step's activations alive until it ends
 * (memory growing with every step). A wasm buffer is a region of the module's memory that only the callback can give
 * back, so there the registry holds it.
 */
const registry =
  typeof FinalizationRegistry !== 'undefined'
    ? new FinalizationRegistry<{ buf: Buf | null; size: number; backend: Backend }>(({ buf, size, backend }) => {
        if (buf) backend.free(buf);
        else backend.collected(size);
      })
    : null;

export function watch(st: Storage): void {
  const buf = st.buf!;
  registry?.register(st, { buf: st.backend.collectorFrees ? null : buf, size: buf.size, backend: st.backend }, st);
}

/**
 * The storages of new leaf gradients (accumulateLeaf), not watched yet. A trainer releases its gradients within the
 * step (zeroGrad disposes them), so most of them never need the registry, and registering a storage and unregistering
 * it costs ~0.7 µs (four times a step for a two-layer MLP). Those still held are watched at the start of the next
 * backward or when the current job ends (a microtask), whichever comes first: a synchronous loop that drops its
 * gradients without disposing them keeps at most one backward's gradients until the next backward.
 */
const unwatched: Storage[] = [];
let watchQueued = false;

export function watchSoon(st: Storage): void {
  if (!registry) return;
  unwatched.push(st);
  if (!watchQueued) {
    watchQueued = true;
    queueMicrotask(watchQueuedNow);
  }
}

function watchQueuedNow(): void {
  watchQueued = false;
  watchUnwatched();
}

/** Watches the storages `watchSoon` left that are still held (dispose() released the others). */
export function watchUnwatched(): void {
  const n = unwatched.length;
  if (n === 0) return;
  for (let i = 0; i < n; i++) {
    const st = unwatched[i]!;
    if (st.buf) watch(st);
  }
  unwatched.length = 0;
}

/** Stops watching a storage (released by dispose()). */
export function unwatch(st: Storage): void {
  registry?.unregister(st);
}
