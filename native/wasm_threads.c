/*
 * wasm_threads.c: gg_parallel_for for the threaded wasm module (wasm/gradguard-mt.wasm, built with GG_WASM_THREADS
 * and shared memory).
 *
 * The instance on the calling thread and one instance per worker (src/backend/wasm-threads.ts starts them, each with
 * its own stack) share one linear memory, so they share these statics. A call is cut into as many chunks as there
 * are threads; every thread, the caller included, takes chunks until none are left. The kernels give each element
 * the same result whoever computes it (kernels.h), so the numbers never depend on the thread count or on who took
 * which chunk.
 *
 * Hand-off through the int32 control words `ctl` (the JS side reads them through gg_threads_ctl):
 *   - the caller writes the job, resets DONE and NEXT, bumps GEN and wakes the workers (memory.atomic.notify;
 *     they sleep in Atomics.wait on GEN);
 *   - every thread takes chunk numbers from NEXT (atomic fetch-add) until none are left, and counts each chunk it
 *     finishes in DONE;
 *   - the caller waits for DONE = number of chunks by spinning (never blocking, so this also works on a browser's
 *     main thread), then closes NEXT so that a worker waking late finds nothing to take.
 * A worker that never wakes costs nothing but time: the caller takes the chunks it left. A worker that failed
 * (FAILED, set by its JS loop) makes the caller trap rather than wait forever. The job's arguments live on the
 * caller's stack, which is in the shared memory too, and stay there until every chunk is done.
 */
#include "kernels.h"

enum {
  CTL_GEN = 0,        /* bumped for every job posted; workers wait on it */
  CTL_NEXT = 1,       /* next chunk to take */
  CTL_DONE = 2,       /* chunks finished */
  CTL_READY = 3,      /* workers up (each adds itself) */
  CTL_FAILED = 4,     /* set by a worker whose loop failed */
  CTL_BY_WORKERS = 5, /* chunks computed by workers, in all (for tests and benchmarks) */
  CTL_LIMIT = 6,      /* most threads a job may use, the caller included (WasmBackend.setThreads) */
  CTL_WORDS = 16
};
#define CLOSED (1 << 30)
/* Below this many multiply-adds (~0.1 ms on one thread) waking a worker costs more than it saves. */
#define PAR_MIN_WORK (1 << 20)

static int32_t ctl[CTL_WORDS] __attribute__((aligned(64))) = {[CTL_NEXT] = CLOSED, [CTL_LIMIT] = GG_MAX_THREADS};

static struct {
  gg_range_fn fn;
  const void *args;
  gg_i n, step;
  int chunks;
} job;

GG_API int32_t *gg_threads_ctl(void) { return ctl; }
GG_API int gg_threads_max(void) { return GG_MAX_THREADS; }

static int take(void) { return __atomic_fetch_add(&ctl[CTL_NEXT], 1, __ATOMIC_SEQ_CST); }

/* Takes and computes chunks until none are left. */
static void work(int tid) {
  for (int i = take(); i < job.chunks; i = take()) {
    gg_i lo = (gg_i)i * job.step;
    gg_i hi = lo + job.step < job.n ? lo + job.step : job.n;
    job.fn(tid, lo, hi, job.args);
    if (tid != 0) __atomic_fetch_add(&ctl[CTL_BY_WORKERS], 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&ctl[CTL_DONE], 1, __ATOMIC_SEQ_CST);
  }
}

/* A worker's share of the job it was woken for (called by its JS loop, with tid >= 1). */
GG_API void gg_threads_work(int tid) {
  if (tid > 0 && tid < GG_MAX_THREADS) work(tid);
}

void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work_estimate) {
  if (n <= 0) return;
  int threads = __atomic_load_n(&ctl[CTL_READY], __ATOMIC_SEQ_CST) + 1;
  int limit = __atomic_load_n(&ctl[CTL_LIMIT], __ATOMIC_SEQ_CST);
  if (threads > limit) threads = limit;
  if (threads > GG_MAX_THREADS) threads = GG_MAX_THREADS;
  if (unit < 1) unit = 1;
  if (threads < 2 || work_estimate < PAR_MIN_WORK || n < 2 * unit) {
    fn(0, 0, n, args);
    return;
  }
  gg_i step = ((n + threads - 1) / threads + unit - 1) / unit * unit;
  job.fn = fn;
  job.args = args;
  job.n = n;
  job.step = step;
  job.chunks = (int)((n + step - 1) / step);
  __atomic_store_n(&ctl[CTL_DONE], 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&ctl[CTL_NEXT], 0, __ATOMIC_SEQ_CST);
  __atomic_fetch_add(&ctl[CTL_GEN], 1, __ATOMIC_SEQ_CST);
  __builtin_wasm_memory_atomic_notify(&ctl[CTL_GEN], (unsigned)(threads - 1));
  work(0);
  while (__atomic_load_n(&ctl[CTL_DONE], __ATOMIC_SEQ_CST) < job.chunks) {
    if (__atomic_load_n(&ctl[CTL_FAILED], __ATOMIC_SEQ_CST)) __builtin_trap();
  }
  __atomic_store_n(&ctl[CTL_NEXT], CLOSED, __ATOMIC_SEQ_CST);
}
