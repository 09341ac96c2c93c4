/*
 * wasm_sgemm.c: single-precision matrix product for the wasm backend (SIMD128; one thread, or several with
 * GG_WASM_THREADS, see the end of this file).
 *
 * The GotoBLAS/BLIS structure: C is computed in blocks of MC×NC over slices of KC of the inner dimension; each block
 * of op(A) and op(B) is first packed into contiguous micro-panels (MR rows of A, NR columns of B, interleaved along
 * k, zero-padded at the edges), which takes care of transposes, offsets and leading dimensions once, so that the
 * micro-kernel only streams two dense arrays. The micro-kernel keeps an MR×NR tile of C in registers.
 *
 * Why these sizes: V8 gives wasm 16 xmm registers, one of them reserved as scratch. A 4×8 tile needs 8 accumulators,
 * 2 vectors of B, 1 broadcast of A and 1 product: 12, so nothing spills. SIMD128 has no FMA, so in the portable
 * module each step is a multiply and an add; the threaded one uses relaxed SIMD's (see MADD). KC·NR floats of B
 * (8 KiB) stay in L1 while the MC×KC block of A (64 KiB) streams from L2.
 *
 * The packing buffers are static (they live in the module's data area below __heap_base), one pair per thread, so no
 * call allocates.
 */
#include <wasm_simd128.h>

#include "kernels.h"

#define MR 4
#define MC 64
#define NR 8
#define KC 256
#define NC 1024

#ifdef GG_WASM_THREADS
#define GG_MAX_THREADS 8
#else
#define GG_MAX_THREADS 1
#endif

static float packA[GG_MAX_THREADS][MC * KC] __attribute__((aligned(16)));
static float packB[GG_MAX_THREADS][KC * NC] __attribute__((aligned(16)));

static inline gg_i gg_min(gg_i a, gg_i b) { return a < b ? a : b; }

/*
 * acc + a·b. GG_WASM_FMA (the threaded module) uses relaxed SIMD's f32x4.relaxed_madd, which V8 compiles to a fused
 * multiply-add where the CPU has one (twice the multiply-adds per cycle, rounded once as natively); the portable
 * module multiplies and adds, each rounded.
 */
#ifdef GG_WASM_FMA
#define MADD(acc, a, b) __builtin_wasm_relaxed_madd_f32x4((a), (b), (acc))
#else
#define MADD(acc, a, b) wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))
#endif

/* packA[panel][p][r] = op(A)[i0 + panel·MR + r][p0 + p], zero past row mc. */
static void pack_a(float *dst, int transA, const float *a, gg_i lda, gg_i i0, gg_i p0, gg_i mc, gg_i kc) {
  for (gg_i ip = 0; ip < mc; ip += MR) {
    gg_i rows = gg_min(MR, mc - ip);
    if (!transA) {
      /* op(A) rows are contiguous in memory: read MR rows side by side. */
      const float *src = a + (i0 + ip) * lda + p0;
      if (rows == MR) {
        for (gg_i p = 0; p < kc; p++) {
          for (int r = 0; r < MR; r++) dst[r] = src[r * lda + p];
          dst += MR;
        }
      } else {
        for (gg_i p = 0; p < kc; p++) {
          for (gg_i r = 0; r < MR; r++) dst[r] = r < rows ? src[r * lda + p] : 0.0f;
          dst += MR;
        }
      }
    } else {
      /* op(A)[i][p] = A[p][i]: each k step is MR consecutive floats. */
      const float *src = a + p0 * lda + i0 + ip;
      if (rows == MR) {
        for (gg_i p = 0; p < kc; p++) {
          wasm_v128_store(dst, wasm_v128_load(src + p * lda));
          for (int r = 4; r < MR; r++) dst[r] = src[p * lda + r];
          dst += MR;
        }
      } else {
        for (gg_i p = 0; p < kc; p++) {
          for (gg_i r = 0; r < MR; r++) dst[r] = r < rows ? src[p * lda + r] : 0.0f;
          dst += MR;
        }
      }
    }
  }
}

/* packB[panel][p][c] = op(B)[p0 + p][j0 + panel·NR + c], zero past column nc. */
static void pack_b(float *dst, int transB, const float *b, gg_i ldb, gg_i p0, gg_i j0, gg_i kc, gg_i nc) {
  for (gg_i jp = 0; jp < nc; jp += NR) {
    gg_i cols = gg_min(NR, nc - jp);
    if (!transB) {
      const float *src = b + p0 * ldb + j0 + jp;
      if (cols == NR) {
        for (gg_i p = 0; p < kc; p++) {
          wasm_v128_store(dst, wasm_v128_load(src + p * ldb));
          wasm_v128_store(dst + 4, wasm_v128_load(src + p * ldb + 4));
          dst += NR;
        }
      } else {
        for (gg_i p = 0; p < kc; p++) {
          for (gg_i c = 0; c < NR; c++) dst[c] = c < cols ? src[p * ldb + c] : 0.0f;
          dst += NR;
        }
      }
    } else {
      /* op(B)[p][j] = B[j][p]: NR rows of B read side by side. */
      const float *src = b + (j0 + jp) * ldb + p0;
      if (cols == NR) {
        for (gg_i p = 0; p < kc; p++) {
          for (gg_i c = 0; c < NR; c++) dst[c] = src[c * ldb + p];
          dst += NR;
        }
      } else {
        for (gg_i p = 0; p < kc; p++) {
          for (gg_i c = 0; c < NR; c++) dst[c] = c < cols ? src[c * ldb + p] : 0.0f;
          dst += NR;
        }
      }
    }
  }
}

/*
 * C tile (rows×cols of MR×NR, top-left at c) = alpha·(A panel · B panel) + beta·C. beta = 0 means C is not read.
 */
static void micro_kernel(gg_i kc, const float *A, const float *B, float *c, gg_i ldc, gg_i rows, gg_i cols,
                         float alpha, float beta) {
  v128_t acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = wasm_f32x4_splat(0.0f);
  for (gg_i p = 0; p < kc; p++) {
    v128_t b0 = wasm_v128_load(B);
    v128_t b1 = wasm_v128_load(B + 4);
    for (int i = 0; i < MR; i++) {
      v128_t ai = wasm_v128_load32_splat(A + i);
      acc[i][0] = MADD(acc[i][0], ai, b0);
      acc[i][1] = MADD(acc[i][1], ai, b1);
    }
    A += MR;
    B += NR;
  }
  v128_t va = wasm_f32x4_splat(alpha);
  if (alpha != 1.0f)
    for (int i = 0; i < MR; i++) {
      acc[i][0] = wasm_f32x4_mul(acc[i][0], va);
      acc[i][1] = wasm_f32x4_mul(acc[i][1], va);
    }
  if (rows == MR && cols == NR) {
    if (beta == 0.0f) {
      for (int i = 0; i < MR; i++) {
        wasm_v128_store(c + i * ldc, acc[i][0]);
        wasm_v128_store(c + i * ldc + 4, acc[i][1]);
      }
    } else {
      v128_t vb = wasm_f32x4_splat(beta);
      for (int i = 0; i < MR; i++) {
        float *cr = c + i * ldc;
        v128_t o0 = wasm_v128_load(cr), o1 = wasm_v128_load(cr + 4);
        if (beta != 1.0f) {
          o0 = wasm_f32x4_mul(o0, vb);
          o1 = wasm_f32x4_mul(o1, vb);
        }
        wasm_v128_store(cr, wasm_f32x4_add(acc[i][0], o0));
        wasm_v128_store(cr + 4, wasm_f32x4_add(acc[i][1], o1));
      }
    }
    return;
  }
  /* Edge tile: go through a small buffer and write only the part inside C. */
  float t[MR * NR] __attribute__((aligned(16)));
  for (int i = 0; i < MR; i++) {
    wasm_v128_store(t + i * NR, acc[i][0]);
    wasm_v128_store(t + i * NR + 4, acc[i][1]);
  }
  for (gg_i i = 0; i < rows; i++) {
    float *cr = c + i * ldc;
    if (beta == 0.0f)
      for (gg_i j = 0; j < cols; j++) cr[j] = t[i * NR + j];
    else
      for (gg_i j = 0; j < cols; j++) cr[j] = t[i * NR + j] + beta * cr[j];
  }
}

/* The whole product on the calling thread, packing into thread `tid`'s buffers. */
static void sgemm_one(int tid, int transA, int transB, gg_i m, gg_i n, gg_i k, float fa, const float *a, gg_i lda,
                      const float *b, gg_i ldb, float fb, float *c, gg_i ldc) {
  if (k <= 0 || fa == 0.0f) {
    /* Nothing to multiply: C = beta·C, with beta = 0 clearing C whatever it held (as BLAS). */
    for (gg_i i = 0; i < m; i++)
      for (gg_i j = 0; j < n; j++) c[i * ldc + j] = fb == 0.0f ? 0.0f : fb * c[i * ldc + j];
    return;
  }
  float *pa = packA[tid], *pb = packB[tid];
  for (gg_i jc = 0; jc < n; jc += NC) {
    gg_i nc = gg_min(NC, n - jc);
    for (gg_i pc = 0; pc < k; pc += KC) {
      gg_i kc = gg_min(KC, k - pc);
      pack_b(pb, transB, b, ldb, pc, jc, kc, nc);
      /* Later slices of k add to what the first one wrote. */
      float bEff = pc == 0 ? fb : 1.0f;
      for (gg_i ic = 0; ic < m; ic += MC) {
        gg_i mc = gg_min(MC, m - ic);
        pack_a(pa, transA, a, lda, ic, pc, mc, kc);
        for (gg_i jr = 0; jr < nc; jr += NR) {
          const float *Bp = pb + jr * kc;
          gg_i cols = gg_min(NR, nc - jr);
          for (gg_i ir = 0; ir < mc; ir += MR) {
            micro_kernel(kc, pa + ir * kc, Bp, c + (ic + ir) * ldc + jc + jr, ldc, gg_min(MR, mc - ir), cols, fa,
                         bEff);
          }
        }
      }
    }
  }
}

#ifndef GG_WASM_THREADS

GG_API void gg_sgemm(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff,
                     gg_i lda, const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc) {
  if (m <= 0 || n <= 0) return;
  sgemm_one(0, transA, transB, m, n, k, (float)alpha, a + aOff, lda, b + bOff, ldb, (float)beta, c + cOff, ldc);
}

#else

/*
 * Several threads (GG_WASM_THREADS, built into wasm/gradguard-mt.wasm with shared memory). The module's instance on
 * the calling thread and one instance per worker (src/backend/wasm-threads.ts starts them, each with its own stack)
 * share one linear memory, so they share these statics. A large product is cut into as many chunks as there are
 * threads, along the larger of C's two sides: each chunk is a whole product on its own (the rows or columns of C it
 * covers, with the matching rows of op(A) or columns of op(B)), computed by sgemm_one with the packing buffers of
 * the thread that took it. Every element of C is summed by one thread in the same order as on one thread, so the
 * result is bit for bit that of the one-thread build, whoever computes which chunk.
 *
 * Hand-off through the int32 control words `ctl` (the JS side reads them through gg_threads_ctl):
 *   - the caller writes the job, resets DONE and NEXT, bumps GEN and wakes the workers (memory.atomic.notify;
 *     they sleep in Atomics.wait on GEN);
 *   - every thread, the caller included, takes chunk numbers from NEXT (atomic fetch-add) until none are left, and
 *     counts each chunk it finishes in DONE;
 *   - the caller waits for DONE = number of chunks by spinning (never blocking, so this also works on a browser's
 *     main thread), then closes NEXT so that a worker waking late finds nothing to take.
 * A worker that never wakes costs nothing but time: the caller takes the chunks it left. A worker that failed
 * (FAILED, set by its JS loop) makes the caller trap rather than wait forever.
 */
enum {
  CTL_GEN = 0,        /* bumped for every product posted; workers wait on it */
  CTL_NEXT = 1,       /* next chunk to take */
  CTL_DONE = 2,       /* chunks finished */
  CTL_READY = 3,      /* workers up (each adds itself) */
  CTL_FAILED = 4,     /* set by a worker whose loop failed */
  CTL_BY_WORKERS = 5, /* chunks computed by workers, in all (for tests and benchmarks) */
  CTL_LIMIT = 6,      /* most threads a product may use, the caller included (WasmBackend.setThreads) */
  CTL_WORDS = 16
};
#define CLOSED (1 << 30)
/* Below this many multiply-adds (~0.1 ms on one thread) waking a worker costs more than it saves. */
#define PAR_MIN_MACS (1 << 20)

static int32_t ctl[CTL_WORDS] __attribute__((aligned(64))) = {[CTL_NEXT] = CLOSED, [CTL_LIMIT] = GG_MAX_THREADS};

static struct {
  int transA, transB, splitRows, chunks;
  gg_i m, n, k, lda, ldb, ldc, step;
  float alpha, beta;
  const float *a, *b;
  float *c;
} job;

GG_API int32_t *gg_threads_ctl(void) { return ctl; }
GG_API int gg_threads_max(void) { return GG_MAX_THREADS; }

static int take(void) { return __atomic_fetch_add(&ctl[CTL_NEXT], 1, __ATOMIC_SEQ_CST); }

/* Takes and computes chunks until none are left. */
static void work(int tid) {
  for (int i = take(); i < job.chunks; i = take()) {
    gg_i lo = (gg_i)i * job.step;
    if (job.splitRows) {
      gg_i rows = gg_min(job.step, job.m - lo);
      const float *a = job.a + (job.transA ? lo : lo * job.lda);
      sgemm_one(tid, job.transA, job.transB, rows, job.n, job.k, job.alpha, a, job.lda, job.b, job.ldb, job.beta,
                job.c + lo * job.ldc, job.ldc);
    } else {
      gg_i cols = gg_min(job.step, job.n - lo);
      const float *b = job.b + (job.transB ? lo * job.ldb : lo);
      sgemm_one(tid, job.transA, job.transB, job.m, cols, job.k, job.alpha, job.a, job.lda, b, job.ldb, job.beta,
                job.c + lo, job.ldc);
    }
    if (tid != 0) __atomic_fetch_add(&ctl[CTL_BY_WORKERS], 1, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&ctl[CTL_DONE], 1, __ATOMIC_SEQ_CST);
  }
}

/* A worker's share of the job it was woken for (called by its JS loop, with tid >= 1). */
GG_API void gg_threads_work(int tid) {
  if (tid > 0 && tid < GG_MAX_THREADS) work(tid);
}

GG_API void gg_sgemm(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff,
                     gg_i lda, const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc) {
  if (m <= 0 || n <= 0) return;
  a += aOff;
  b += bOff;
  c += cOff;
  int threads = __atomic_load_n(&ctl[CTL_READY], __ATOMIC_SEQ_CST) + 1;
  int limit = __atomic_load_n(&ctl[CTL_LIMIT], __ATOMIC_SEQ_CST);
  if (threads > limit) threads = limit;
  if (threads > GG_MAX_THREADS) threads = GG_MAX_THREADS;
  if (threads < 2 || k <= 0 || (double)m * (double)n * (double)k < PAR_MIN_MACS) {
    sgemm_one(0, transA, transB, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    return;
  }
  /* Cutting the longer side of C duplicates the packing of the smaller operand only. Chunks are whole micro-tiles. */
  int splitRows = m > n;
  gg_i side = splitRows ? m : n, unit = splitRows ? MR : NR;
  gg_i step = ((side + threads - 1) / threads + unit - 1) / unit * unit;
  job.transA = transA;
  job.transB = transB;
  job.splitRows = splitRows;
  job.chunks = (int)((side + step - 1) / step);
  job.m = m;
  job.n = n;
  job.k = k;
  job.lda = lda;
  job.ldb = ldb;
  job.ldc = ldc;
  job.step = step;
  job.alpha = (float)alpha;
  job.beta = (float)beta;
  job.a = a;
  job.b = b;
  job.c = c;
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

#endif
