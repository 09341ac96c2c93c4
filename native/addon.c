/*
 * addon.c: the N-API face of the native backend (build/Release/gradguard.node).
 *
 * Every export is a thin wrapper generated from one table (GG_KERNELS below): it reads its arguments, with typed
 * arrays taken in place through napi_get_typedarray_info (no copy: the kernel writes straight into the JS buffer),
 * and calls the C kernel. A wrong argument type throws a TypeError instead of reaching the kernel; sizes and offsets
 * are not checked (the kernels' contract, see src/backend/types.ts: the tensor ops validate at the boundary).
 *
 * The matrix product goes to OpenBLAS's cblas_sgemm, or to our own (native/gemm_x86.c) where that is faster (see
 * gg_gemm_policy); everything else is the kernel families of native/kernels/, compiled for this machine
 * (-march=native) by binding.gyp.
 */
#include <cblas.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gemm_x86.h"
#include "kernels.h"

/* ------------------------------------------------------------------------------------------------ sgemm */

static gg_i gg_max1(gg_i a) { return a > 1 ? a : 1; }

/*
 * Which sgemm: GG_OWN ours (native/gemm_x86.c), GG_BLAS OpenBLAS, GG_PER_SHAPE the faster of the two for each shape,
 * measured here (gg_gemm_per_shape); -1 not decided yet. Ours where OpenBLAS fell back to generic kernels for a CPU it
 * does not know (Prescott, Core2, Nehalem, ...: SSE only, several times slower); per shape wherever both run well;
 * OpenBLAS where this build has no sgemm of its own. GRADGUARD_GEMM=openblas|own overrides it (read once).
 * Ours uses as many threads as OpenBLAS.
 */
enum { GG_BLAS = 0, GG_OWN = 1, GG_PER_SHAPE = 2 };
static int gg_gemm_use_own = -1;

/* Threads for products and kernels: OpenBLAS's count at load (OPENBLAS_NUM_THREADS), then setThreads. */
static int gg_threads = 1;

static int gg_gemm_policy(void) {
  const char *own = gg_gemm_own_name();
  if (!own[0]) return 0;
  const char *env = getenv("GRADGUARD_GEMM");
  if (env && strcasecmp(env, "openblas") == 0) return 0;
  if (env && strcasecmp(env, "own") == 0) return 1;
  const char *core = openblas_get_corename();
  if (!core) return GG_OWN;
  static const char *const generic[] = {"unknown", "katmai",   "coppermine", "northwood", "prescott", "banias",
                                        "atom",    "core2",    "penryn",     "dunnington", "nehalem", "athlon",
                                        "opteron", "opteron_sse3", "barcelona", "nano", "sandybridge", "bulldozer"};
  for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++)
    if (strcasecmp(core, generic[i]) == 0) return GG_OWN;
  return GG_PER_SHAPE;
}

/*
 * The per-shape choice. A product of at least GG_TUNE_FLOPS whose shape (transposes, m, n, k) has no choice
 * yet is timed with both implementations first, three times each, taking turns, into a scratch C (the caller's C is
 * not touched; A and B are only read); the one with the smaller best time computes it and every later product of
 * that shape. The two round differently (their sums run in different orders), and the same config and seed must give
 * the same numbers in every process, a resumed run's included: so a choice is made once per machine, not per
 * process. It is kept in the machine's cache (gg_tune_dir: one small file per shape, named by OpenBLAS's core, our
 * kernel and the shape, holding "own" or "openblas"), written by linking a finished file into place,
 * which fails when another process got there first; that process's choice is then read and used. Every later
 * process reads the file instead of measuring. Where no cache can be written, the shape keeps the fixed rule instead
 * of a measurement that another process might not repeat. Smaller products are not worth a measurement and keep the
 * fixed rule too: ours on an AVX-512 build where OpenBLAS's kernels lack AVX-512, else OpenBLAS's. The bar is 1 MFLOP
 * (it was 4): the GRU's per-step products of 2.1 MFLOP (128×64×129, and 128×64×128 transposed) went to OpenBLAS by
 * the fixed rule on a Zen 4 that OpenBLAS runs with its Cooperlake kernels, where ours, with the weights packed once
 * per sequence, is faster (107 against 91 GFLOP/s unpacked; the GRU step's CPU time ~10% lower).
 * The thread count is not part of the shape: a shape measured on one thread count keeps its choice on every other, so
 * the numbers do not depend on the thread count (each implementation gives the same bits on any number of threads:
 * both cut a product by whole rows or columns of C on the pool).
 * GRADGUARD_GEMM=openblas|own pins one implementation for every product (the same numbers on another machine with
 * the same CPU and libraries, whatever its cache holds).
 */
#define GG_TUNE_FLOPS 1e6
#define GG_TUNE_SLOTS 4096
typedef struct {
  gg_i m, n, k;
  int transA, transB;
  int use; /* 0 empty, 1 OpenBLAS, 2 ours */
} gg_tune_slot;
static gg_tune_slot gg_tune[GG_TUNE_SLOTS];

static double gg_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The fixed rule for the shapes that are not measured. */
static int gg_gemm_small_own(void) {
  const char *core = openblas_get_corename();
  return strcmp(gg_gemm_own_name(), "own-avx512") == 0 && core && strcasecmp(core, "skylakex") != 0 &&
         strcasecmp(core, "cooperlake") != 0 && strcasecmp(core, "sapphirerapids") != 0;
}

/* The slot of a shape: its own, or the empty one where it goes; NULL when the table is full. */
static gg_tune_slot *gg_tune_find(int transA, int transB, gg_i m, gg_i n, gg_i k) {
  uint64_t h = (uint64_t)m * 0x9E3779B97F4A7C15ull ^ (uint64_t)n * 0xC2B2AE3D27D4EB4Full ^
               (uint64_t)k * 0x165667B19E3779F9ull ^ (uint64_t)(transA * 2 + transB);
  for (size_t probe = 0; probe < GG_TUNE_SLOTS; probe++) {
    gg_tune_slot *s = &gg_tune[(h + probe) % GG_TUNE_SLOTS];
    if (!s->use || (s->m == m && s->n == n && s->k == k && s->transA == transA && s->transB == transB)) return s;
  }
  return NULL;
}

/* mkdir -p: 1 when `dir` exists (or was made) as a directory. */
static int gg_mkdirs(char *dir) {
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    int ok = mkdir(dir, 0755) == 0 || errno == EEXIST;
    *p = '/';
    if (!ok) return 0;
  }
  struct stat st;
  return (mkdir(dir, 0755) == 0 || errno == EEXIST) && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The machine's cache of measured choices: $GRADGUARD_CACHE_DIR, else $XDG_CACHE_HOME/gradguard, else
 * $HOME/.cache/gradguard; made if missing. 0 when there is none (no variable set, or it cannot be made). */
static int gg_tune_dir(char *out, size_t cap) {
  const char *v;
  int n;
  if ((v = getenv("GRADGUARD_CACHE_DIR")) && v[0]) n = snprintf(out, cap, "%s", v);
  else if ((v = getenv("XDG_CACHE_HOME")) && v[0]) n = snprintf(out, cap, "%s/gradguard", v);
  else if ((v = getenv("HOME")) && v[0]) n = snprintf(out, cap, "%s/.cache/gradguard", v);
  else return 0;
  return n > 0 && (size_t)n < cap && gg_mkdirs(out);
}

/* A cached choice: 1 OpenBLAS, 2 ours, 0 none or unreadable. */
static int gg_tune_read(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  char b[16] = {0};
  ssize_t got = read(fd, b, sizeof(b) - 1);
  close(fd);
  if (got <= 0) return 0;
  if (strcmp(b, "own\n") == 0) return 2;
  if (strcmp(b, "openblas\n") == 0) return 1;
  return 0;
}

/* Publishes `use` for the shape at `path` unless another process did first; returns the choice that holds (0 where
 * none could be written or read). */
static int gg_tune_publish(const char *path, int use) {
  char tmp[4200];
  if (snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof(tmp)) return 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 0;
  const char *text = use == 2 ? "own\n" : "openblas\n";
  size_t len = strlen(text);
  int wrote = write(fd, text, len) == (ssize_t)len;
  wrote = close(fd) == 0 && wrote;
  int linked = wrote && link(tmp, path) == 0;
  int lost = wrote && !linked && errno == EEXIST;
  unlink(tmp);
  if (linked) return use;
  return lost ? gg_tune_read(path) : 0;
}

/* Measures both implementations on this shape (into a scratch C): 1 OpenBLAS faster, 2 ours, 0 out of memory. With a
 * and b NULL it multiplies zeros instead (the time is the shape's, not the values'), of leading dimensions lda, ldb. */
static int gg_tune_measure(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b,
                           gg_i ldb) {
  float *zeros = NULL;
  if (!a || !b) {
    size_t as = (size_t)(transA ? k : m) * (size_t)lda, bs = (size_t)(transB ? n : k) * (size_t)ldb;
    zeros = calloc(as + bs, sizeof(float));
    if (!zeros) return 0;
    a = zeros;
    b = zeros + as;
  }
  float *scratch = malloc((size_t)m * (size_t)n * sizeof(float));
  if (!scratch) {
    free(zeros);
    return 0;
  }
  double best[2] = {1e30, 1e30};
  for (int round = 0; round < 3; round++) {
    for (int impl = 0; impl < 2; impl++) {
      double t0 = gg_now();
      if (impl == 0)
        gg_sgemm_blas(transA, transB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, scratch, n);
      else if (!gg_gemm_own(transA, transB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, scratch, n))
        best[1] = 1e31; /* ours declines this shape */
      double dt = gg_now() - t0;
      if (dt < best[impl]) best[impl] = dt;
    }
  }
  free(scratch);
  free(zeros);
  return best[1] < best[0] ? 2 : 1;
}

/* The machine's choice for a shape: cached, else measured and published; 0 where it cannot be kept. */
static int gg_tune_choose(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b,
                          gg_i ldb) {
  char dir[4096], path[4200];
  if (!gg_tune_dir(dir, sizeof(dir))) return 0;
  const char *core = openblas_get_corename();
  int n_ = snprintf(path, sizeof(path), "%s/gemm-%s-%s-r%d-%c%c-%lldx%lldx%lld", dir, core ? core : "unknown",
                    gg_gemm_own_name(), GG_GEMM_OWN_REV, transA ? 'T' : 'N', transB ? 'T' : 'N', (long long)m, (long long)n,
                    (long long)k);
  if (n_ <= 0 || (size_t)n_ >= sizeof(path)) return 0;
  int use = gg_tune_read(path);
  if (use) return use;
  use = gg_tune_measure(transA, transB, m, n, k, a, lda, b, ldb);
  return use ? gg_tune_publish(path, use) : 0;
}

/* Worker threads (a sweep's trials) share this process's table. */
static pthread_mutex_t gg_tune_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1 where ours computes this product, 0 where OpenBLAS does (choosing for the shape the first time). */
static int gg_gemm_per_shape(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda,
                             const float *b, gg_i ldb) {
  if (2.0 * (double)m * (double)n * (double)k < GG_TUNE_FLOPS) return gg_gemm_small_own();
  pthread_mutex_lock(&gg_tune_mu);
  gg_tune_slot *s = gg_tune_find(transA, transB, m, n, k);
  int use = s ? s->use : 0;
  if (s && !use) {
    use = gg_tune_choose(transA, transB, m, n, k, a, lda, b, ldb);
    if (!use) use = gg_gemm_small_own() ? 2 : 1;
    *s = (gg_tune_slot){m, n, k, transA, transB, use};
  }
  pthread_mutex_unlock(&gg_tune_mu);
  return use ? use == 2 : gg_gemm_small_own();
}

static int gg_gemm_own_active(void) {
  if (gg_gemm_use_own < 0) {
    gg_gemm_own_threads(gg_threads);
    gg_gemm_use_own = gg_gemm_policy();
  }
  return gg_gemm_use_own;
}

/* Whether kernels may call our sgemm themselves (the whole convolution, native/kernels/conv.c): wherever this build has
 * it, unless GRADGUARD_GEMM (or gemmSelect) pins OpenBLAS for every product. */
int gg_conv_own_usable(void) { return gg_gemm_own_name()[0] != 0 && gg_gemm_own_active() != GG_BLAS; }
int gg_pool_threads(void) { return gg_threads; }

/* For kernels that multiply on the pool's threads (gemm_x86.h): the per-shape policy's choice, made here on the
 * calling thread (measured on zeros where the shape has none yet), so a kernel's products of a shape use the same
 * implementation as gg_sgemm's. */
int gg_gemm_choose_own(int transA, int transB, gg_i m, gg_i n, gg_i k) {
  int use = gg_gemm_own_active();
  if (use != GG_PER_SHAPE) return use == GG_OWN;
  return gg_gemm_per_shape(transA, transB, m, n, k, NULL, transA ? m : k, NULL, transB ? k : n);
}
void gg_gemm_blas_one(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                      const float *b, gg_i ldb, float beta, float *c, gg_i ldc) {
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (blasint)m,
              (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* "openblas", "own-avx512", "own-avx2", or "per-shape:own-avx512+openblas" (per-shape:own-avx2+openblas): which
 * implementation gg_sgemm uses. */
static const char *gg_gemm_impl(void) {
  int use = gg_gemm_own_active();
  if (use == GG_PER_SHAPE)
    return strcmp(gg_gemm_own_name(), "own-avx512") == 0 ? "per-shape:own-avx512+openblas"
                                                          : "per-shape:own-avx2+openblas";
  return use == GG_OWN ? gg_gemm_own_name() : "openblas";
}

/* For tests: which implementation computes products of this shape now: "openblas" or ours ("own-avx512",
 * "own-avx2"); "" for a shape of the per-shape policy that has no choice in this process yet (its first product
 * reads the machine's cached choice or measures one). */
static const char *gg_gemm_shape_choice(int transA, int transB, gg_i m, gg_i n, gg_i k) {
  int use = gg_gemm_own_active();
  if (use != GG_PER_SHAPE) return use == GG_OWN ? gg_gemm_own_name() : "openblas";
  int own;
  if (2.0 * (double)m * (double)n * (double)k < GG_TUNE_FLOPS) {
    own = gg_gemm_small_own();
  } else {
    pthread_mutex_lock(&gg_tune_mu);
    gg_tune_slot *s = gg_tune_find(transA, transB, m, n, k);
    int chosen = s ? s->use : -1;
    pthread_mutex_unlock(&gg_tune_mu);
    if (chosen == 0) return "";
    own = chosen > 0 ? chosen == 2 : gg_gemm_small_own();
  }
  return own ? gg_gemm_own_name() : "openblas";
}

/* For tests: 0 the policy (GRADGUARD_GEMM or the CPU), 1 OpenBLAS, 2 ours (where built). Returns gg_gemm_impl(). */
static const char *gg_gemm_select(int which) {
  gg_gemm_use_own = -1;
  gg_gemm_own_active();
  if (which == 1) gg_gemm_use_own = GG_BLAS;
  if (which == 2 && gg_gemm_own_name()[0]) gg_gemm_use_own = GG_OWN;
  return gg_gemm_impl();
}

/*
 * OpenBLAS on several threads: where our pool exists (an x86-64 build with AVX2 or AVX-512), OpenBLAS runs on one
 * thread and a large product is cut by columns of C into chunks that the pool's threads take as they come
 * (gg_parallel_for), so a busy machine's descheduled worker costs the caller nothing; OpenBLAS's own threads would
 * make the caller wait for every one of them (measured: a 2-thread MLP step at 3-15 ms against 1.7 ms on one thread
 * with another process on the cores). Elsewhere OpenBLAS keeps its own threads.
 */
typedef struct {
  int transA, transB;
  gg_i m, k;
  float alpha, beta;
  const float *a;
  gg_i lda;
  const float *b;
  gg_i ldb;
  float *c;
  gg_i ldc;
  gg_i step; /* columns a chunk */
} gg_blas_job;

/* Columns [lo, hi) of C through OpenBLAS on the calling thread. */
static void gg_blas_cols(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_blas_job *j = p;
  const float *b = j->transB ? j->b + lo * j->ldb : j->b + lo;
  cblas_sgemm(CblasRowMajor, j->transA ? CblasTrans : CblasNoTrans, j->transB ? CblasTrans : CblasNoTrans,
              (blasint)j->m, (blasint)(hi - lo), (blasint)j->k, j->alpha, j->a, (blasint)j->lda, b, (blasint)j->ldb,
              j->beta, j->c + lo, (blasint)j->ldc);
}

/* The same chunks in turn on the caller (the pool's choice): OpenBLAS's bits depend on the width of the call. */
static void gg_blas_chunks(int tid, gg_i lo, gg_i hi, const void *p) {
  for (gg_i c = lo, s = ((const gg_blas_job *)p)->step; c < hi; c += s) gg_blas_cols(tid, c, c + s < hi ? c + s : hi, p);
}
static int gg_pool_built(void) { return gg_gemm_own_name()[0] != 0; }

void gg_sgemm_blas(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                   const float *b, gg_i ldb, float beta, float *c, gg_i ldc) {
  double flops = 2.0 * (double)m * (double)n * (double)k;
  if (gg_threads > 1 && gg_pool_built() && flops >= 2e6 && n >= 64) {
    /* two chunks per thread (one for a small product), in multiples of 16 columns: each chunk packs A again */
    int parts = gg_gemm_chunks_per_thread(flops, gg_threads) * gg_threads;
    gg_i chunk = (n + parts - 1) / parts;
    gg_blas_job j = {transA, transB, m, k, alpha, beta, a, lda, b, ldb, c, ldc, (chunk + 15) / 16 * 16};
    gg_parallel_steps(gg_blas_cols, gg_blas_chunks, &j, n, j.step,
                      gg_pool_key((uint64_t)m, (uint64_t)k, (uint64_t)(transA << 1 | transB), 0));
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (blasint)m,
              (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

GG_API void gg_sgemm(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff,
                     gg_i lda, const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    /* Nothing to multiply (cblas would reject the leading dimensions of an empty A): C = beta·C. */
    for (gg_i i = 0; i < m; i++) {
      float *cr = c + cOff + i * ldc;
      for (gg_i j = 0; j < n; j++) cr[j] = beta == 0.0 ? 0.0f : (float)(beta * (double)cr[j]);
    }
    return;
  }
  /* cblas insists that a leading dimension covers a stored row, even for a matrix of one row, where the reference
   * never reads it: widen it there. A genuinely smaller one (overlapping rows) goes to the plain loop. */
  gg_i aRows = transA ? k : m, aCols = transA ? m : k;
  gg_i bRows = transB ? n : k, bCols = transB ? k : n;
  if (aRows == 1 && lda < aCols) lda = aCols;
  if (bRows == 1 && ldb < bCols) ldb = bCols;
  if (m == 1 && ldc < n) ldc = n;
  if (lda < gg_max1(aCols) || ldb < gg_max1(bCols) || ldc < gg_max1(n) || m > INT_MAX || n > INT_MAX ||
      k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX) {
    gg_sgemm_ref(transA, transB, m, n, k, alpha, a, aOff, lda, b, bOff, ldb, beta, c, cOff, ldc);
    return;
  }
  int use = gg_gemm_own_active();
  if (use == GG_PER_SHAPE) use = gg_gemm_per_shape(transA, transB, m, n, k, a + aOff, lda, b + bOff, ldb);
  if (use && gg_gemm_own(transA, transB, m, n, k, (float)alpha, a + aOff, lda, b + bOff, ldb, (float)beta,
                         c + cOff, ldc))
    return;
  gg_sgemm_blas(transA, transB, m, n, k, (float)alpha, a + aOff, lda, b + bOff, ldb, (float)beta, c + cOff, ldc);
}

/* binary and permute take their small int arrays packed in one Int32Array: [0, 8) shape, [8, 16) and [16, 24) the
 * strides (binary) or the permutation (permute). One scratch array on the JS side serves every call. */
static int gg_binary_packed(int op, const float *a, const float *b, float *out, int nd, const int32_t *s) {
  return gg_binary(op, a, b, out, nd, s, s + GG_MAX_DIMS, s + 2 * GG_MAX_DIMS);
}
static void gg_permute_packed(const float *x, float *out, int nd, const int32_t *s) {
  gg_permute(x, out, nd, s, s + GG_MAX_DIMS);
}
static double gg_openblas_threads(void) { return (double)gg_threads; }
/* Threads for matrix products from now on, OpenBLAS's and our sgemm's alike (WasmBackend.setThreads's native twin):
 * our pool's, with OpenBLAS on one thread where the pool exists (see gg_sgemm_blas). */
static void gg_set_threads(int n) {
  if (n < 1) n = 1;
  gg_threads = n;
  openblas_set_num_threads(gg_pool_built() ? 1 : n);
  gg_gemm_own_threads(n);
}
/* The kernel set OpenBLAS chose ("Haswell", "SkylakeX", ...; "Prescott" is its generic SSE3 fallback for CPUs it
 * does not know, several times slower): worth showing in benchmarks and diagnostics. */
static const char *gg_openblas_core(void) { return openblas_get_corename(); }

/* ------------------------------------------------------------------------------------------------ argument readers */

static void *gg_get_array(napi_env env, napi_value v, int *bad) {
  void *data = NULL;
  if (*bad) return NULL;
  if (napi_get_typedarray_info(env, v, NULL, NULL, &data, NULL, NULL) != napi_ok) {
    napi_throw_type_error(env, NULL, "gradguard native: expected a typed array");
    *bad = 1;
  }
  return data;
}
static int64_t gg_get_int(napi_env env, napi_value v, int *bad) {
  int64_t r = 0;
  if (*bad) return 0;
  if (napi_get_value_int64(env, v, &r) != napi_ok) {
    napi_throw_type_error(env, NULL, "gradguard native: expected a number");
    *bad = 1;
  }
  return r;
}
static double gg_get_double(napi_env env, napi_value v, int *bad) {
  double r = 0;
  if (*bad) return 0;
  if (napi_get_value_double(env, v, &r) != napi_ok) {
    napi_throw_type_error(env, NULL, "gradguard native: expected a number");
    *bad = 1;
  }
  return r;
}

/*
 * The buffers of tensors dropped outside `tidy()` (a training loop written as in PyTorch) are Float32Arrays that the
 * garbage collector frees, and the next step asks for the same sizes again. glibc hands allocations over 128 KiB out
 * as fresh mappings, and gives freed memory at the heap's top back to the system past 128 KiB, so every step's
 * activations were page-faulted in anew (~3,000 faults and ~15 ms of system time a step for the CLI's CNN, ~1.5x
 * the step; docs/library.md, "Memory"). Buffers up to 32 MiB (the largest glibc takes for this) now come from the
 * heap, and up to 256 MiB of freed memory stays mapped for the next step. Left as they are where the user set
 * glibc's own malloc variables, or with GRADGUARD_MALLOC=system.
 */
static const char *gg_malloc_tuned = "not glibc";
static void gg_tune_malloc(void) {
#ifdef __GLIBC__
  const char *own = getenv("GRADGUARD_MALLOC");
  const char *tunables = getenv("GLIBC_TUNABLES");
  if (own && strcmp(own, "system") == 0) {
    gg_malloc_tuned = "system (GRADGUARD_MALLOC=system)";
  } else if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") ||
             (tunables && strstr(tunables, "glibc.malloc."))) {
    gg_malloc_tuned = "the environment's (MALLOC_*_ or GLIBC_TUNABLES)";
  } else if (mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1) {
    gg_malloc_tuned = "heap up to 32 MiB, 256 MiB kept";
  } else {
    gg_malloc_tuned = "system (mallopt refused)";
  }
#endif
}

/* How the process's malloc was left (tests and bench). */
static const char *gg_malloc_tuning(void) { return gg_malloc_tuned; }

/* The argument kinds, the declarations by arity and the results that GG_WRAP expands (addon_args.h). */
#include "addon_args.h"

/* The exported kernels: JS name, C function, result (void, num or str), arity, argument kinds. Booleans travel as
 * numbers 0/1 (src/backend/native.ts converts them). */
#define GG_KERNELS(X)                                                                              \
  X(fill, gg_fill, void, 3, FA, DB, IX)                                                            \
  X(copy, gg_copy, void, 5, FA, IX, FA, IX, IX)                                                    \
  X(copyBlocks, gg_copy_blocks, void, 9, FA, IX, IX, FA, IX, IX, IX, IX, IN)                       \
  X(axpy, gg_axpy, void, 4, DB, FA, FA, IX)                                                        \
  X(scale, gg_scale, void, 3, FA, IX, DB)                                                           \
  X(axpySumSquares, gg_axpy_sum_squares, num, 5, DB, FA, FA, IX, DA)                                        \
  X(unarySupported, gg_unary_supported, num, 1, IN)                                                \
  X(unary, gg_unary, num, 6, IN, FA, FA, IX, DB, DB)                                               \
  X(unaryGrad, gg_unary_grad, num, 8, IN, FA, FA, FA, FA, IX, DB, DB)                              \
  X(addRelu, gg_add_relu, void, 4, FA, FA, FA, IX)                                                 \
  X(reluGradSum, gg_relu_grad_sum, void, 5, FA, FA, FA, FA, IX)                                    \
  X(binary, gg_binary_packed, num, 6, IN, FA, FA, FA, IN, IA)                                      \
  X(sumAxis, gg_sum_axis, void, 5, FA, FA, IX, IX, IX)                                             \
  X(maxAxis, gg_max_axis, void, 6, FA, FA, FA, IX, IX, IX)                                         \
  X(sumSquares, gg_sum_squares, num, 2, FA, IX)                                                    \
  X(maxAbs, gg_max_abs, num, 2, FA, IX)                                                            \
  X(sumSquaresMaxAbs, gg_sum_squares_max_abs, void, 3, FA, IX, DA)                                 \
  X(sumSquaresColumns, gg_sum_squares_columns, num, 4, FA, FA, IX, IX)                            \
  X(sumSquaresRows, gg_sum_squares_rows, num, 4, FA, FA, IX, IX)                                  \
  X(countNonFinite, gg_count_non_finite, num, 2, FA, IX)                                           \
  X(countOutside, gg_count_outside, num, 4, FA, IX, DB, DB)                                        \
  X(permute, gg_permute_packed, void, 4, FA, FA, IN, IA)                                           \
  X(softmax, gg_softmax, void, 5, FA, FA, IX, IX, IN)                                              \
  X(softmaxGrad, gg_softmax_grad, void, 6, FA, FA, FA, IX, IX, IN)                                 \
  X(crossEntropy, gg_cross_entropy, void, 8, FA, FA, FA, FA, IX, IX, DB, DB)                       \
  X(crossEntropyGrad, gg_cross_entropy_grad, void, 8, FA, FA, FA, FA, IX, IX, DB, DB)              \
  X(im2col, gg_im2col, void, 4, FA, IX, FA, IA)                                                    \
  X(col2im, gg_col2im, void, 4, FA, FA, IX, IA)                                                    \
  X(conv2d, gg_conv2d, num, 7, FA, FA, FA, IA, IX, IX, IN)                                         \
  X(conv2dBias, gg_conv2d_bias, num, 8, FA, FA, FA, FA, IA, IX, IX, IN)                            \
  X(conv2dGradInput, gg_conv2d_grad_input, num, 6, FA, FA, FA, IA, IX, IX)                         \
  X(conv2dGradWeight, gg_conv2d_grad_weight, num, 6, FA, FA, FA, IA, IX, IX)                       \
  X(linearBias, gg_linear_bias, num, 8, FA, FA, FA, FA, IX, IX, IX, IN)                           \
  X(reluBiasGrad, gg_relu_bias_grad, void, 6, FA, FA, FA, FA, IX, IX)                              \
  X(maxPool2d, gg_max_pool2d, void, 3, FA, FA, IA)                                                 \
  X(maxPool2dSums, gg_max_pool2d_sums, num, 4, FA, FA, FA, IA)                                   \
  X(maxPool2dGrad, gg_max_pool2d_grad, void, 4, FA, FA, FA, IA)                                    \
  X(maxPool2dGradRelu, gg_max_pool2d_grad_relu, void, 5, FA, FA, FA, FA, IA)                       \
  X(avgPool2d, gg_avg_pool2d, void, 4, FA, FA, IA, IN)                                             \
  X(avgPool2dGrad, gg_avg_pool2d_grad, void, 4, FA, FA, IA, IN)                                    \
  X(adamUpdate, gg_adam_update, void, 11, FA, FA, FA, IX, DB, DB, DB, DB, DB, DB, DB)               \
  X(adamApply, gg_adam_apply, void, 14, FA, FA, FA, FA, IX, DB, DB, DB, DB, DB, DB, DB, IN, DA)      \
  X(batchNorm, gg_batch_norm, void, 15, FA, FA, FA, FA, FA, FA, FA, FA, IX, IX, IX, IN, IN, DB, DB)  \
  X(batchNormGrad, gg_batch_norm_grad, void, 12, FA, FA, FA, FA, FA, FA, FA, FA, IX, IX, IX, IN)   \
  X(batchNormRelu, gg_batch_norm_relu, void, 15, FA, FA, FA, FA, FA, FA, FA, FA, IX, IX, IX, IN, IN, DB, DB) \
  X(batchNormReluGrad, gg_batch_norm_relu_grad, void, 13, FA, FA, FA, FA, FA, FA, FA, FA, FA, IX, IX, IX, IN) \
  X(layerNorm, gg_layer_norm, void, 9, FA, FA, FA, FA, FA, FA, IX, IX, DB)                         \
  X(layerNormGrad, gg_layer_norm_grad, void, 10, FA, FA, FA, FA, FA, FA, FA, FA, IX, IX)           \
  X(lstmCell, gg_lstm_cell, void, 15, FA, IX, IX, FA, FA, FA, FA, FA, IX, IX, FA, IX, IX, IX, IX)        \
  X(lstmCellGrad, gg_lstm_cell_grad, void, 14, FA, FA, FA, FA, FA, IX, IX, FA, FA, IX, IX, FA, IX, IX)  \
  X(gruCell, gg_gru_cell, void, 15, FA, IX, IX, FA, FA, IX, FA, IX, IX, FA, IX, IX, FA, IX, IX)        \
  X(gruCellGrad, gg_gru_cell_grad, void, 15, FA, FA, FA, IX, IX, FA, FA, IX, IX, FA, IX, IX, FA, IX, IX) \
  X(lstmSeq, gg_lstm_seq, void, 19, FA, IX, FA, IX, FA, IX, IX, IX, FA, FA, FA, FA, FA, IX, IX, IN, IX, IX, IX) \
  X(lstmSeqGrad, gg_lstm_seq_grad, void, 16, FA, FA, FA, FA, FA, FA, IX, IX, FA, FA, IX, FA, IN, IX, IX, IX) \
  X(gruSeq, gg_gru_seq, void, 19, FA, IX, IX, FA, IX, FA, IX, IX, IX, FA, FA, FA, FA, IX, IX, IN, IX, IX, IX) \
  X(gruSeqGrad, gg_gru_seq_grad, void, 17, FA, FA, FA, FA, IX, IX, FA, FA, IX, IX, FA, IX, FA, IN, IX, IX, IX) \
  X(sgemmRowSums, gg_sgemm_row_sums, void, 13, IX, IX, IX, FA, IX, FA, IX, IX, FA, IX, IX, FA, IX) \
  X(gruWeightGrads, gg_gru_weight_grads, void, 12, FA, IX, FA, IX, IX, IX, IX, FA, FA, FA, FA, IN) \
  X(sgemm, gg_sgemm, void, 16, IN, IN, IX, IX, IX, DB, FA, IX, IX, FA, IX, IX, DB, FA, IX, IX)     \
  X(openblasThreads, gg_openblas_threads, num, 0)                                                  \
  X(setThreads, gg_set_threads, void, 1, IN)                                                       \
  X(openblasCore, gg_openblas_core, str, 0)                                                        \
  X(gemmImpl, gg_gemm_impl, str, 0)                                                                \
  X(gemmSelect, gg_gemm_select, str, 1, IN)                                                        \
  X(gemmShapeChoice, gg_gemm_shape_choice, str, 5, IN, IN, IX, IX, IX)                             \
  X(poolHold, gg_pool_hold, num, 1, IN)                                                            \
  X(poolLastChunks, gg_pool_last_chunks, num, 0)                                                   \
  X(poolNaps, gg_pool_naps, num, 0)                                                               \
  X(gemmSparse, gg_gemm_sparse_mode, num, 1, IN)                                                  \
  X(poolChoose, gg_pool_choose, num, 3, IN, DB, DB)                                                \
  X(poolJobs, gg_pool_jobs, num, 1, IN)                                                            \
  X(poolCrowd, gg_pool_crowd, num, 1, DB)                                                          \
  X(mallocTuning, gg_malloc_tuning, str, 0)                                                        \
  X(gemmTime, gg_gemm_time, num, 9, IN, IN, IN, IX, IX, IX, IN, IN, IN)                             \
  X(gemmPeak, gg_gemm_fma_peak, num, 1, IX)

#define GG_WRAP(js, fn, ret, n, ...)                                                               \
  static napi_value gg_w_##js(napi_env env, napi_callback_info info) {                             \
    napi_value argv[n > 0 ? n : 1];                                                                \
    size_t argc = n;                                                                               \
    int bad = 0;                                                                                   \
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || gg_too_few(argc, n)) {  \
      napi_throw_type_error(env, NULL, "gradguard native: " #js " expects " #n " arguments");      \
      return NULL;                                                                                 \
    }                                                                                              \
    (void)argv;                                                                                    \
    GG_D##n(__VA_ARGS__) if (bad) return NULL;                                                     \
    GG_RET_##ret(fn(GG_L##n));                                                                     \
  }
GG_KERNELS(GG_WRAP)

#define GG_PROP(js, fn, ret, n, ...) {#js, NULL, gg_w_##js, NULL, NULL, NULL, napi_enumerable, NULL},

NAPI_MODULE_INIT() {
  static const napi_property_descriptor props[] = {GG_KERNELS(GG_PROP)};
  gg_tune_malloc();
  /* The pool's size for gg_parallel_for, before any product has run (setThreads changes it). */
  gg_set_threads(openblas_get_num_threads());
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
