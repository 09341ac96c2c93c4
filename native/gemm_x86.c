/*
 * gemm_x86.c: our own single-precision matrix product for x86-64 with AVX-512 or AVX2+FMA (selected at compile time
 * from -march=native), used by gg_sgemm (native/addon.c) where OpenBLAS only has slow kernels for this CPU (its
 * generic "Prescott" SSE3 fallback for CPUs it does not know, or Haswell kernels on an AVX-512 machine).
 *
 * Row-major C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C, with gg_sgemm's contract: offsets, leading dimensions,
 * transposes; beta = 0 ignores C's old contents (even NaN). Goto/BLIS structure:
 *   for pc over k by KC:  for jc over n by NC: pack B (kc×nc, slivers of NR columns, zero-padded; stays in L2)
 *     for ic over m by MC: pack A (mc×kc, slivers of MR rows, zero-padded)
 *       for each A sliver (MR×kc, stays in L1): for each B sliver: MR×NR register tile of FMAs.
 * The micro-kernel is MR×NR = 12×32 with AVX-512 (24 zmm accumulators), 6×16 with AVX2 (12 ymm accumulators); a
 * tile with fewer rows runs a kernel compiled for that row count, one with fewer columns writes through a small tile.
 *
 * Threads: a persistent pool (created on first need) splits C by columns (in multiples of NR) or, for narrow
 * products, by rows, into chunks (gg_gemm_chunks_per_thread) that the threads take as they come (see "thread pool"
 * below); every thread packs into its own buffers, allocated once per thread and reused. Products under
 * ~2 MFLOP run on the calling thread. A second caller while the pool is busy (worker_threads) runs single-threaded.
 *
 * Without AVX2+FMA (or off x86-64) this file compiles to stubs and gg_sgemm keeps OpenBLAS.
 */
#include "gemm_x86.h"

#if defined(__x86_64__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))

#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
typedef __m512 gv;
#define VL 16
#define MR 12
#define KC 384
#define MC 192
#define NC 768
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_load_ps(p)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_RELU(x) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ), x)
static const char gg_own_name[] = "own-avx512";
#else
typedef __m256 gv;
#define VL 8
#define MR 6
#define KC 256
#define MC 120
#define NC 512
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_load_ps(p)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps(p, v)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_RELU(x) _mm256_and_ps(x, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ))
static const char gg_own_name[] = "own-avx2";
#endif
#define NR (2 * VL)
#define GG_MAX_THREADS 16

typedef struct {
  int transA, transB;
  gg_i m, n, k;
  float alpha, beta;
  const float *a;
  gg_i lda;
  const float *b;
  gg_i ldb;
  float *c;
  gg_i ldc; /* row stride of C */
  gg_i csc; /* column stride of C: 1, or ldc when computing Cᵀ = op(B)ᵀ·op(A)ᵀ (see gg_gemm_own) */
  const float *bias; /* nn.Linear's epilogue (gg_gemm_own_bias_act): bias[j] added to column j, with beta 0 */
  int relu;          /* and x <= 0 ? 0 : x (NaN stays) on the way out */
} gg_gemm_args;

static inline gg_i gg_min(gg_i a, gg_i b) { return a < b ? a : b; }

/* ------------------------------------------------------------------------------------------------ packing */

#include "gemm_pack_x86.h"

/* ------------------------------------------------------------------------------------------------ micro-kernel */

/*
 * C tile (mr×nr at c, row stride ldc) = alpha·(pa·pb) + beta·C, or alpha·(pa·pb) when beta0, or bias + alpha·(pa·pb)
 * with a bias (the first depth block of an nn.Linear: the bits of C = bias, then beta 1); then ReLU where relu (its
 * last block). ROWS is a compile-time constant (the kernel is instantiated per row count), so the accumulators live in
 * registers.
 */
static inline __attribute__((always_inline)) void gg_kernel(const int ROWS, gg_i kc, const float *restrict pa,
                                                            const float *restrict pb, float *restrict c, gg_i ldc,
                                                            gg_i csc, gg_i nr, float alpha, float beta, int beta0,
                                                            const float *restrict bias, int relu) {
  gv acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; r++) {
    acc0[r] = V_ZERO();
    acc1[r] = V_ZERO();
  }
  for (gg_i p = 0; p < kc; p++) {
    gv b0 = V_LOAD(pb);
    gv b1 = V_LOAD(pb + VL);
    _mm_prefetch((const char *)(pb + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; r++) {
      gv ar = V_SET1(pa[r]);
      acc0[r] = V_FMA(ar, b0, acc0[r]);
      acc1[r] = V_FMA(ar, b1, acc1[r]);
    }
    pa += MR;
    pb += NR;
  }
  gv va = V_SET1(alpha), vb = V_SET1(beta);
  if (nr == NR && csc == 1) {
    gv bias0 = bias ? V_LOADU(bias) : V_ZERO(), bias1 = bias ? V_LOADU(bias + VL) : V_ZERO();
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; r++) {
      float *cr = c + r * ldc;
      gv x0 = V_MUL(va, acc0[r]), x1 = V_MUL(va, acc1[r]);
      if (bias) {
        x0 = V_ADD(bias0, x0);
        x1 = V_ADD(bias1, x1);
      } else if (!beta0) {
        x0 = V_FMA(vb, V_LOADU(cr), x0);
        x1 = V_FMA(vb, V_LOADU(cr + VL), x1);
      }
      V_STOREU(cr, relu ? V_RELU(x0) : x0);
      V_STOREU(cr + VL, relu ? V_RELU(x1) : x1);
    }
    return;
  }
  float tile[MR * NR] __attribute__((aligned(64)));
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; r++) {
    V_STOREU(tile + r * NR, V_MUL(va, acc0[r]));
    V_STOREU(tile + r * NR + VL, V_MUL(va, acc1[r]));
  }
  for (int r = 0; r < ROWS; r++) {
    float *cr = c + r * ldc;
    const float *t = tile + r * NR;
    for (gg_i j = 0; j < nr; j++) {
      float v = bias ? bias[j] + t[j] : beta0 ? t[j] : beta * cr[j * csc] + t[j];
      cr[j * csc] = relu && v <= 0.0f ? 0.0f : v;
    }
  }
}

#define GG_KDEF(R)                                                                                              \
  static void gg_kernel_##R(gg_i kc, const float *pa, const float *pb, float *c, gg_i ldc, gg_i csc, gg_i nr,     \
                            float alpha, float beta, int beta0, const float *bias, int relu) {                  \
    gg_kernel(R, kc, pa, pb, c, ldc, csc, nr, alpha, beta, beta0, bias, relu);                                  \
  }
typedef void (*gg_kernel_fn)(gg_i, const float *, const float *, float *, gg_i, gg_i, gg_i, float, float, int,
                             const float *, int);
GG_KDEF(1)
GG_KDEF(2)
GG_KDEF(3)
GG_KDEF(4)
GG_KDEF(5)
GG_KDEF(6)
#if MR > 6
GG_KDEF(7)
GG_KDEF(8)
GG_KDEF(9)
GG_KDEF(10)
GG_KDEF(11)
GG_KDEF(12)
#endif
static const gg_kernel_fn gg_kernels[MR + 1] = {
    NULL,        gg_kernel_1, gg_kernel_2, gg_kernel_3, gg_kernel_4,  gg_kernel_5,  gg_kernel_6,
#if MR > 6
    gg_kernel_7, gg_kernel_8, gg_kernel_9, gg_kernel_10, gg_kernel_11, gg_kernel_12,
#endif
};

/* ------------------------------------------------------------------------------------------------ driver */

/* Packing buffers of the calling thread: allocated on its first product, reused for every later one. */
static __thread float *gg_buf_a, *gg_buf_b;

static int gg_buffers(void) {
  if (!gg_buf_a) gg_buf_a = aligned_alloc(64, sizeof(float) * MC * KC);
  if (!gg_buf_b) gg_buf_b = aligned_alloc(64, sizeof(float) * KC * NC);
  return gg_buf_a && gg_buf_b;
}

/* Rows [m0, m1) × columns [n0, n1) of C. */
static void gg_gemm_block(const gg_gemm_args *g, gg_i m0, gg_i m1, gg_i n0, gg_i n1) {
  float *ba = gg_buf_a, *bb = gg_buf_b;
  for (gg_i pc = 0; pc < g->k; pc += KC) {
    gg_i kc = gg_min(KC, g->k - pc);
    int beta0 = pc == 0 && g->beta == 0.0f;
    float beta = pc == 0 ? g->beta : 1.0f;
    for (gg_i jc = n0; jc < n1; jc += NC) {
      gg_i nc = gg_min(NC, n1 - jc);
      gg_pack_b(g, pc, kc, jc, nc, bb);
      for (gg_i ic = m0; ic < m1; ic += MC) {
        gg_i mc = gg_min(MC, m1 - ic);
        gg_pack_a(g, ic, mc, pc, kc, ba);
        for (gg_i ir = 0; ir < mc; ir += MR) {
          gg_i mr = gg_min(MR, mc - ir);
          gg_kernel_fn kern = gg_kernels[mr];
          const float *pa = ba + ir * kc;
          float *crow = g->c + (ic + ir) * g->ldc + jc * g->csc;
          for (gg_i jr = 0; jr < nc; jr += NR)
            kern(kc, pa, bb + jr * kc, crow + jr * g->csc, g->ldc, g->csc, gg_min(NR, nc - jr), g->alpha, beta,
                 beta0, pc == 0 && g->bias ? g->bias + jc + jr : NULL, g->relu && pc + kc == g->k);
        }
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------------ thread pool */

/*
 * A job is cut into chunks (column or row ranges of a product, or ranges of a gg_parallel_for) and every thread, the
 * caller included, takes chunks until none are left, as the threaded wasm module does (native/wasm_threads.c). So a
 * worker that the OS has not scheduled yet (a busy machine) costs nothing but its share: the caller takes the chunks
 * it left, and a step on two threads is never much slower than on one. Each element's result never depends on who
 * computes it or on the chunk boundaries, so the bits are the same on any number of threads.
 *
 * Hand-off: the caller writes the job, resets gg_done, sets gg_next to the number of chunks and bumps gg_generation
 * (waking sleeping workers). A thread takes chunk v - 1 when fetch-sub on gg_next returns v > 0; gg_next stays <= 0
 * between jobs, so a worker waking late takes nothing, or a chunk of the job then current, whose description is
 * stable until that chunk is counted in gg_done. Waiting never spins without bound: workers spin briefly for the next
 * job, then sleep on a condition variable; the caller spins briefly for the chunks still being computed, then sleeps
 * on a futex (Linux; elsewhere it yields the CPU).
 */
typedef struct {
  /* a product: columns (byCols) or rows of C in `parts` slices of NR or MR */
  const gg_gemm_args *g;
  int byCols;
  gg_i parts, m, n;
  /* or, for gg_parallel_for: fn over [0, n) in chunks of `step` */
  gg_range_fn fn;
  const void *args;
  gg_i step;
  int chunks;
} gg_job_t;

#define GG_WORKER_SPIN 200 /* pauses a worker spins for the next job before it sleeps (~20-100 us) */
#define GG_CALLER_SPIN 200 /* pauses the caller spins for the other threads' chunks before it sleeps */

static int gg_nthreads = 1;      /* threads a product may use, the caller included */
static int gg_pool_size = 0;     /* workers started */
static int gg_pool_failed = 0;   /* a worker could not start or allocate: stay single-threaded */
static gg_job_t gg_job;
static atomic_uint gg_generation;
static atomic_int gg_next;       /* chunks not yet taken (<= 0: none) */
static atomic_int gg_done;       /* chunks finished */
static atomic_int gg_sleepers;   /* workers asleep on gg_pool_cv (or about to be) */
static atomic_int gg_caller_waits; /* the caller is asleep on gg_done (or about to be) */
static atomic_int gg_job_threads; /* threads the current job may use, the caller included (workers 1..n-1) */
static atomic_int gg_hold;          /* tests: workers take no chunks, as if the OS never ran them */
static atomic_int gg_by_workers;    /* chunks computed by workers, in all (tests) */
static atomic_int gg_worker_ok;
static pthread_mutex_t gg_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gg_pool_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t gg_busy = PTHREAD_MUTEX_INITIALIZER;

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
static void gg_futex_wait(atomic_int *addr, int val) {
  syscall(SYS_futex, (int *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void gg_futex_wake(atomic_int *addr) { syscall(SYS_futex, (int *)addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }
#else
#include <sched.h>
static void gg_futex_wait(atomic_int *addr, int val) {
  (void)addr, (void)val;
  sched_yield();
}
static void gg_futex_wake(atomic_int *addr) { (void)addr; }
#endif

/* Chunk c of the current job. */
static void gg_run_chunk(int tid, int c) {
  const gg_job_t *j = &gg_job;
  if (j->fn) {
    gg_i lo = (gg_i)c * j->step, hi = lo + j->step < j->n ? lo + j->step : j->n;
    if (lo < hi) j->fn(tid, lo, hi, j->args);
    return;
  }
  gg_i s0 = j->parts * c / j->chunks, s1 = j->parts * (c + 1) / j->chunks;
  if (j->byCols)
    gg_gemm_block(j->g, 0, j->m, s0 * NR, gg_min(j->n, s1 * NR));
  else
    gg_gemm_block(j->g, s0 * MR, gg_min(j->m, s1 * MR), 0, j->n);
}

/* Takes and computes chunks of the current job until none are left. */
static void gg_work(int tid) {
  for (int v = atomic_fetch_sub(&gg_next, 1); v > 0; v = atomic_fetch_sub(&gg_next, 1)) {
    int chunks = gg_job.chunks; /* read before the chunk is counted: the job may change right after */
    gg_run_chunk(tid, v - 1);
    if (tid != 0) atomic_fetch_add_explicit(&gg_by_workers, 1, memory_order_relaxed);
    if (atomic_fetch_add(&gg_done, 1) + 1 == chunks && atomic_load(&gg_caller_waits)) gg_futex_wake(&gg_done);
  }
}

/* The caller: posts the job in gg_job (chunks set) for nt threads, computes chunks too, returns when all are done. */
static void gg_run_job(int nt) {
  int chunks = gg_job.chunks;
  atomic_store_explicit(&gg_job_threads, nt, memory_order_relaxed);
  atomic_store_explicit(&gg_done, 0, memory_order_relaxed);
  atomic_store(&gg_next, chunks);
  atomic_fetch_add(&gg_generation, 1);
  if (atomic_load(&gg_sleepers) > 0) {
    pthread_mutex_lock(&gg_pool_mu);
    pthread_cond_broadcast(&gg_pool_cv);
    pthread_mutex_unlock(&gg_pool_mu);
  }
  gg_work(0);
  int d = atomic_load(&gg_done);
  for (int spin = 0; d < chunks && spin < GG_CALLER_SPIN; spin++) {
    _mm_pause();
    d = atomic_load(&gg_done);
  }
  while (d < chunks) {
    atomic_store(&gg_caller_waits, 1);
    d = atomic_load(&gg_done);
    if (d < chunks) gg_futex_wait(&gg_done, d);
    atomic_store(&gg_caller_waits, 0);
    d = atomic_load(&gg_done);
  }
}

static void *gg_worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned seen = 0;
  if (!gg_buffers()) {
    atomic_store(&gg_worker_ok, -1);
    return NULL;
  }
  atomic_fetch_add(&gg_worker_ok, 1);
  for (;;) {
    /* Spin a little (the next product of a training step usually follows soon), then sleep. */
    unsigned gen = atomic_load(&gg_generation);
    for (int spin = 0; gen == seen && spin < GG_WORKER_SPIN; spin++) {
      _mm_pause();
      gen = atomic_load(&gg_generation);
    }
    if (gen == seen) {
      pthread_mutex_lock(&gg_pool_mu);
      atomic_fetch_add(&gg_sleepers, 1);
      while ((gen = atomic_load(&gg_generation)) == seen) pthread_cond_wait(&gg_pool_cv, &gg_pool_mu);
      atomic_fetch_sub(&gg_sleepers, 1);
      pthread_mutex_unlock(&gg_pool_mu);
    }
    seen = gen;
    if (id < atomic_load_explicit(&gg_job_threads, memory_order_relaxed) && !atomic_load(&gg_hold)) gg_work(id);
  }
  return NULL;
}

/* Starts the workers once; 0 if the pool cannot be used. Called with gg_busy held. */
static int gg_pool_start(void) {
  if (gg_pool_failed) return 0;
  if (gg_pool_size >= gg_nthreads - 1) return 1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  while (gg_pool_size < gg_nthreads - 1) {
    pthread_t th;
    int want = atomic_load(&gg_worker_ok) + 1;
    if (pthread_create(&th, &attr, gg_worker, (void *)(intptr_t)(gg_pool_size + 1)) != 0) {
      gg_pool_failed = 1;
      break;
    }
    while (atomic_load(&gg_worker_ok) >= 0 && atomic_load(&gg_worker_ok) < want) _mm_pause();
    if (atomic_load(&gg_worker_ok) < 0) {
      gg_pool_failed = 1;
      break;
    }
    gg_pool_size++;
  }
  pthread_attr_destroy(&attr);
  return !gg_pool_failed;
}

/* Runs `job` on nt threads, the caller included; 0 (nothing done) with one thread, a busy pool or none: do it alone. */
static int gg_pool_post(const gg_job_t *job, int nt) {
  if (nt <= 1 || pthread_mutex_trylock(&gg_busy) != 0) return 0;
  if (!gg_pool_start()) {
    pthread_mutex_unlock(&gg_busy);
    return 0;
  }
  gg_job = *job;
  gg_run_job(nt > gg_pool_size + 1 ? gg_pool_size + 1 : nt);
  pthread_mutex_unlock(&gg_busy);
  return 1;
}

/* ------------------------------------------------------------------------------------------------ k slices */

/*
 * A product whose C is a single register tile (after the transpose below: a conv weight gradient, 32×9 over
 * k = 43264) cannot be cut by rows or columns; cut k instead. The slices depend on k only, never on the thread count:
 * each slice's partial product is computed whole by one thread (alpha 1, beta 0) into a buffer of the caller, and the
 * caller then adds the partials in slice order in float64, C = alpha·Σ + beta·C, rounded once. So the bits are the
 * same on any number of threads, one included.
 */
#define KS_MIN (4 * KC)
#define KS_MAX_SLICES 64

/* Partials of the calling thread's k-sliced products: KS_MAX_SLICES tiles, allocated on first use and reused. */
static __thread float *gg_buf_k;

typedef struct {
  const gg_gemm_args *g;
  gg_i slice; /* k per slice (the last may be shorter) */
  float *partials;
} gg_kslice_args;

static void gg_kslice_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_kslice_args *s = p;
  const gg_gemm_args *g = s->g;
  for (gg_i i = lo; i < hi; i++) {
    gg_i p0 = i * s->slice;
    gg_gemm_args t = *g;
    t.k = gg_min(s->slice, g->k - p0);
    t.a = g->transA ? g->a + p0 * g->lda : g->a + p0;
    t.b = g->transB ? g->b + p0 : g->b + p0 * g->ldb;
    t.alpha = 1.0f;
    t.beta = 0.0f;
    t.c = s->partials + i * MR * NR;
    t.ldc = g->n;
    t.csc = 1;
    gg_gemm_block(&t, 0, g->m, 0, g->n);
  }
}

/* g->m <= MR, g->n <= NR, g->k >= 2·KS_MIN. Returns 0 if the partials buffer cannot be allocated. */
static int gg_gemm_ksliced(const gg_gemm_args *g) {
  if (!gg_buf_k) gg_buf_k = aligned_alloc(64, sizeof(float) * KS_MAX_SLICES * MR * NR);
  if (!gg_buf_k) return 0;
  gg_i slice = (g->k + KS_MAX_SLICES - 1) / KS_MAX_SLICES;
  slice = slice < KS_MIN ? KS_MIN : (slice + KC - 1) / KC * KC;
  gg_i slices = (g->k + slice - 1) / slice;
  gg_kslice_args s = {g, slice, gg_buf_k};
  gg_parallel_for(gg_kslice_range, &s, slices, 1, (double)g->m * (double)g->n * (double)g->k);
  for (gg_i i = 0; i < g->m; i++) {
    for (gg_i j = 0; j < g->n; j++) {
      double sum = 0.0;
      for (gg_i q = 0; q < slices; q++) sum += (double)gg_buf_k[q * MR * NR + i * g->n + j];
      float *cij = g->c + i * g->ldc + j * g->csc;
      /* beta = 0 ignores C (even NaN), as everywhere */
      *cij = (float)((double)g->alpha * sum + (g->beta == 0.0f ? 0.0 : (double)g->beta * (double)*cij));
    }
  }
  return 1;
}

/* ------------------------------------------------------------------------------------------------ entry points */

const char *gg_gemm_own_name(void) { return gg_own_name; }

double gg_pool_hold(int hold) {
  atomic_store(&gg_hold, hold != 0);
  return (double)atomic_load(&gg_by_workers);
}

double gg_pool_last_chunks(void) { return (double)gg_job.chunks; }

void gg_gemm_own_threads(int n) { gg_nthreads = n < 1 ? 1 : n > GG_MAX_THREADS ? GG_MAX_THREADS : n; }

/* gg_gemm_own, and gg_gemm_own_bias_act's epilogue with bias or relu (then alpha 1, beta 0: refused, returning 0,
 * where the product would be computed transposed or k-sliced). */
static int gg_gemm_run(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                       const float *b, gg_i ldb, float beta, float *c, gg_i ldc, const float *bias, int relu) {
  if (!gg_buffers()) return 0;
  gg_gemm_args g = {transA, transB, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, 1, bias, relu};
  int epilogue = bias || relu;
  /* Vectors run along n: where n is narrow and m is not (a weight gradient 32×9, logits 64×10), compute
   * Cᵀ = op(B)ᵀ·op(A)ᵀ instead, written through C's strides (op(B)ᵀ is B read with the other transpose flag). */
  gg_i nPad = (n + NR - 1) / NR * NR, mPad = (m + NR - 1) / NR * NR;
  if (n < NR && (double)m / mPad > (double)n / nPad) {
    if (epilogue) return 0;
    gg_gemm_args t = {!transB, !transA, n, m, k, alpha, beta, b, ldb, a, lda, c, 1, ldc, NULL, 0};
    g = t;
    m = g.m, n = g.n;
  }
  double flops = 2.0 * (double)m * (double)n * (double)k;
  int nt = gg_nthreads;
  if (flops < 2e6) nt = 1;
  /* Split by columns in multiples of NR when there are enough, else by rows in multiples of MR; a single tile with
   * a long k, by k (whatever the thread count, so that the bits do not depend on it). */
  gg_i nSl = (n + NR - 1) / NR, mSl = (m + MR - 1) / MR;
  if (nSl == 1 && mSl == 1 && k >= 2 * KS_MIN && (epilogue || gg_gemm_ksliced(&g))) return !epilogue;
  int byCols = nSl >= 2 * nt || nSl >= mSl;
  gg_i parts = byCols ? nSl : mSl;
  if (nt > parts) nt = (int)parts;
  gg_job_t job = {&g, byCols, parts, m, n, NULL, NULL, 0, (int)gg_min(parts, gg_gemm_chunks_per_thread(flops, nt) * nt)};
  if (!gg_pool_post(&job, nt)) gg_gemm_block(&g, 0, m, 0, n);
  return 1;
}

int gg_gemm_own(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                const float *b, gg_i ldb, float beta, float *c, gg_i ldc) {
  return gg_gemm_run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, 0);
}

int gg_gemm_own_bias_act(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b,
                         gg_i ldb, const float *bias, int relu, float *c, gg_i ldc) {
  return gg_gemm_run(transA, transB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, bias, relu);
}

/* fn over [0, n) in ranges of `step` (the last may be shorter) that the pool's threads take as they come; the
 * caller alone with one thread, or while the pool is busy (another thread's product). */
void gg_parallel_steps(gg_range_fn fn, const void *args, gg_i n, gg_i step) {
  if (n <= 0) return;
  gg_job_t job = {NULL, 0, 0, 0, n, fn, args, step, step < 1 ? 1 : (int)((n + step - 1) / step)};
  if (step < 1 || n <= step || !gg_pool_post(&job, gg_nthreads)) fn(0, 0, n, args);
}

/* gg_parallel_for (kernels.h) on the same pool: [0, n) in ranges of multiples of `unit`, four per thread. Below ~2^20
 * multiply-adds of work, with one thread, or while the pool is busy (another thread's product), the caller does all. */
void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work) {
  if (n <= 0) return;
  if (unit < 1) unit = 1;
  int nt = gg_nthreads;
  if (nt <= 1 || work < (double)(1 << 20) || n < 2 * unit) {
    fn(0, 0, n, args);
    return;
  }
  /* four chunks per thread, multiples of unit: a thread held up by the OS leaves little to wait for */
  gg_i chunks = 4 * (gg_i)nt, units = (n + unit - 1) / unit;
  if (chunks > units) chunks = units;
  gg_parallel_steps(fn, args, n, (units + chunks - 1) / chunks * unit);
}

#else /* no AVX2+FMA: OpenBLAS only */

void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work) {
  (void)unit, (void)work;
  if (n > 0) fn(0, 0, n, args);
}
void gg_parallel_steps(gg_range_fn fn, const void *args, gg_i n, gg_i step) { gg_parallel_for(fn, args, n, step, 0); }

const char *gg_gemm_own_name(void) { return ""; }
double gg_pool_hold(int hold) {
  (void)hold;
  return 0;
}
double gg_pool_last_chunks(void) { return 0; }
void gg_gemm_own_threads(int n) { (void)n; }
int gg_gemm_own(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                const float *b, gg_i ldb, float beta, float *c, gg_i ldc) {
  (void)transA, (void)transB, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb;
  (void)beta, (void)c, (void)ldc;
  return 0;
}
int gg_gemm_own_bias_act(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b,
                         gg_i ldb, const float *bias, int relu, float *c, gg_i ldc) {
  (void)transA, (void)transB, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)bias;
  (void)relu, (void)c, (void)ldc;
  return 0;
}

#endif
