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
 * Threads: the pool (native/pool_x86.c) splits C by columns (in multiples of NR) or, for narrow products, by rows,
 * into chunks (gg_gemm_chunks_per_thread) that the threads take as they come; every thread packs into its own
 * buffers, allocated once per thread and reused. Products under
 * ~2 MFLOP run on the calling thread. A second caller while the pool is busy (worker_threads) runs single-threaded.
 *
 * Without AVX2+FMA (or off x86-64) this file compiles to stubs and gg_sgemm keeps OpenBLAS.
 */
#include "gemm_x86.h"

#if defined(__x86_64__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
  const float *pa;   /* op(A) packed whole by gg_gemm_pack_a_whole (gg_gemm_own_packed), or NULL: pack as we go */
  double *lanes;     /* gg_gemm_own_row_sums: A's row sums in eight float64 lanes each, taken as A is read, or NULL */
  const gg_i *rmap;  /* op(A)'s row i is C's row rmap[i] (gemm_sparse_x86.h: the rows left to compute), or NULL */
} gg_gemm_args;

static inline gg_i gg_min(gg_i a, gg_i b) { return a < b ? a : b; }

/* ------------------------------------------------------------------------------------------------ packing */

#include "gemm_pack_x86.h"

/* ------------------------------------------------------------------------------------------------ micro-kernel */

/*
 * C tile (mr×nr at c, row stride ldc; row r at c + rmap[r]·ldc where rmap is set) = alpha·(pa·pb) + beta·C, or
 * alpha·(pa·pb) when beta0, or bias + alpha·(pa·pb) with a bias (the first depth block of an nn.Linear: the bits of
 * C = bias, then beta 1); then ReLU where relu (its last block). ROWS is a compile-time constant (the kernel is
 * instantiated per row count), so the accumulators live in registers. HALF: a sliver of at most VL columns (n's last,
 * e.g. 784 = 24·32 + 16, 161 = 5·32 + 1) computed with one vector per row instead of two, half of them on padding;
 * each column's sum is the same, so are its bits.
 */
static inline __attribute__((always_inline)) void gg_kernel(const int ROWS, const int DIRECT, const int DIRECTB,
                                                            const int HALF, gg_i kc, const float *restrict pa, gg_i lda,
                                                            const float *restrict pb, gg_i ldb, float *restrict c,
                                                            gg_i ldc, const gg_i *rmap, gg_i csc, gg_i nr,
                                                            float alpha, float beta, int beta0,
                                                            const float *restrict bias, int relu) {
  gv acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; r++) {
    acc0[r] = V_ZERO();
    acc1[r] = V_ZERO();
  }
  /* DIRECT: A's rows read where they are stored (row r at pa + r·lda, along p), through one base pointer per three
   * rows and the offsets lda and 2·lda, which x86 addressing scales for free. */
  const float *a3 = ROWS > 3 ? pa + 3 * lda : pa, *a6 = ROWS > 6 ? pa + 6 * lda : pa, *a9 = ROWS > 9 ? pa + 9 * lda : pa;
  /* DIRECTB: B's rows read where they are stored (row p at pb + p·ldb; gg_gemm_block's direct B), both of its lines
   * prefetched 8 rows ahead as a packed sliver's one line is */
  const gg_i bstep = DIRECTB ? ldb : NR;
  for (gg_i p = 0; p < kc; p++) {
    gv b0 = DIRECTB ? V_LOADU(pb) : V_LOAD(pb);
    gv b1 = HALF ? b0 : DIRECTB ? V_LOADU(pb + VL) : V_LOAD(pb + VL);
    _mm_prefetch((const char *)(pb + 8 * bstep), _MM_HINT_T0);
    if (DIRECTB && !HALF) _mm_prefetch((const char *)(pb + 8 * bstep + NR - 1), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; r++) {
      const float *base = r < 3 ? pa : r < 6 ? a3 : r < 9 ? a6 : a9;
      gv ar = V_SET1(DIRECT ? base[(r % 3) * lda] : pa[r]);
      acc0[r] = V_FMA(ar, b0, acc0[r]);
      if (!HALF) acc1[r] = V_FMA(ar, b1, acc1[r]);
    }
    if (DIRECT) {
      pa++, a3++, a6++, a9++;
    } else {
      pa += MR;
    }
    pb += bstep;
  }
  gv va = V_SET1(alpha), vb = V_SET1(beta);
  if (nr == (HALF ? VL : NR) && csc == 1) {
    gv bias0 = bias ? V_LOADU(bias) : V_ZERO(), bias1 = bias && !HALF ? V_LOADU(bias + VL) : V_ZERO();
#pragma GCC unroll 16
    for (int r = 0; r < ROWS; r++) {
      float *cr = c + (rmap ? rmap[r] : r) * ldc;
      gv x0 = V_MUL(va, acc0[r]), x1 = V_MUL(va, acc1[r]);
      if (bias) {
        x0 = V_ADD(bias0, x0);
        if (!HALF) x1 = V_ADD(bias1, x1);
      } else if (!beta0) {
        x0 = V_FMA(vb, V_LOADU(cr), x0);
        if (!HALF) x1 = V_FMA(vb, V_LOADU(cr + VL), x1);
      }
      V_STOREU(cr, relu ? V_RELU(x0) : x0);
      if (!HALF) V_STOREU(cr + VL, relu ? V_RELU(x1) : x1);
    }
    return;
  }
  float tile[MR * NR] __attribute__((aligned(64)));
#pragma GCC unroll 16
  for (int r = 0; r < ROWS; r++) {
    V_STOREU(tile + r * NR, V_MUL(va, acc0[r]));
    if (!HALF) V_STOREU(tile + r * NR + VL, V_MUL(va, acc1[r]));
  }
  for (int r = 0; r < ROWS; r++) {
    float *cr = c + (rmap ? rmap[r] : r) * ldc;
    const float *t = tile + r * NR;
    for (gg_i j = 0; j < nr; j++) {
      float v = bias ? bias[j] + t[j] : beta0 ? t[j] : beta * cr[j * csc] + t[j];
      cr[j * csc] = relu && v <= 0.0f ? 0.0f : v;
    }
  }
}

/* The kernels for R rows: packed A or direct (d), packed B or direct (b), two vectors of columns or one (h). */
#define GG_KDEF1(NAME, R, DIRECT, DIRECTB, HALF)                                                                \
  static void NAME(gg_i kc, const float *pa, gg_i lda, const float *pb, gg_i ldb, float *c, gg_i ldc,          \
                   const gg_i *rmap, gg_i csc, gg_i nr, float alpha, float beta, int beta0, const float *bias,  \
                   int relu) {                                                                                  \
    gg_kernel(R, DIRECT, DIRECTB, HALF, kc, pa, lda, pb, ldb, c, ldc, rmap, csc, nr, alpha, beta, beta0, bias,   \
              relu);                                                                                            \
  }
#define GG_KDEF(R)                          \
  GG_KDEF1(gg_kernel_##R, R, 0, 0, 0)       \
  GG_KDEF1(gg_kernel_d##R, R, 1, 0, 0)      \
  GG_KDEF1(gg_kernel_h##R, R, 0, 0, 1)      \
  GG_KDEF1(gg_kernel_dh##R, R, 1, 0, 1)     \
  GG_KDEF1(gg_kernel_b##R, R, 0, 1, 0)      \
  GG_KDEF1(gg_kernel_bh##R, R, 0, 1, 1)
typedef void (*gg_kernel_fn)(gg_i, const float *, gg_i, const float *, gg_i, float *, gg_i, const gg_i *, gg_i, gg_i,
                             float, float, int, const float *, int);
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
#if MR > 6
#define GG_KTAB(P)                                                                                                 \
  {NULL,        gg_kernel_##P##1, gg_kernel_##P##2,  gg_kernel_##P##3,  gg_kernel_##P##4,  gg_kernel_##P##5,       \
   gg_kernel_##P##6, gg_kernel_##P##7, gg_kernel_##P##8, gg_kernel_##P##9, gg_kernel_##P##10, gg_kernel_##P##11, \
   gg_kernel_##P##12}
#else
#define GG_KTAB(P)                                                                                                 \
  {NULL, gg_kernel_##P##1, gg_kernel_##P##2, gg_kernel_##P##3, gg_kernel_##P##4, gg_kernel_##P##5, gg_kernel_##P##6}
#endif
/* [direct][half][rows]: A packed or read where it is stored (gg_gemm_block's direct A); a full sliver or a half. And
 * [half][rows] with B read where it is stored (gg_gemm_block's direct B), A packed. */
static const gg_kernel_fn gg_kernels[2][2][MR + 1] = {{GG_KTAB(), GG_KTAB(h)}, {GG_KTAB(d), GG_KTAB(dh)}};
static const gg_kernel_fn gg_kernels_b[2][MR + 1] = {GG_KTAB(b), GG_KTAB(bh)};

/* ------------------------------------------------------------------------------------------------ driver */

/* Packing buffers of the calling thread: allocated on its first product, reused for every later one. */
static __thread float *gg_buf_a, *gg_buf_b;

static int gg_buffers(void) {
  if (!gg_buf_a) gg_buf_a = aligned_alloc(64, sizeof(float) * MC * KC);
  if (!gg_buf_b) gg_buf_b = aligned_alloc(64, sizeof(float) * KC * NC);
  return gg_buf_a && gg_buf_b;
}

/*
 * Where A's rows run along k (A not transposed) and a depth block of B has at most GG_DIRECT_SLIVERS slivers, the
 * kernels read A where it is stored instead of packing it first (gg_kernels[1]): every float of A is then read
 * by as few kernels as it would have been packed for, and the packing pass (a transpose through the registers,
 * and a second trip through the caches) is saved. Measured on one thread (bench/gemm-shapes.ts, Zen 4): NT
 * 512×32×6400 (the LSTM's dW_ih, one sliver) from ~77 to ~102 GFLOP/s, NT 512×128×6400 from ~93 to ~103. Rows whose
 * stride maps many of them to the same L1 set (a leading dimension of 512 or 1024 floats: 4 KiB aliasing) would evict
 * each other at every p: there A is packed as before (gg_direct_a_ok). Packing only moves floats, and both kernels
 * multiply in the same order, so the bits are the same either way.
 */
#define GG_DIRECT_SLIVERS 8

/* 1 where MR rows of stride lda (floats) fall at most 4 to an L1 set (64 sets of 64 bytes: 4 KiB per way). */
static int gg_direct_a_ok(gg_i lda) {
  int count[64] = {0};
  for (gg_i r = 0; r < MR; r++)
    if (++count[(r * lda * (gg_i)sizeof(float)) % 4096 / 64] > 4) return 0;
  return 1;
}

/*
 * Likewise B, where its rows run along n (not transposed) and k is short (a weight gradient dW = dYᵀ·X over a batch of
 * up to GG_DIRECT_B_K rows: the MLP's TN 256×784×128): the kernels read each sliver's k rows of NR floats where they
 * are stored instead of a packed copy (gg_kernels_b), all of n in one block (no buffer to fill, so A is packed once
 * instead of once per NC columns). A sliver's k rows of 128 bytes then span up to k pages (hence the short k) and k·2
 * cache lines, which the L1 holds as it would a packed sliver's only where the rows fall in different sets: a leading
 * dimension of an odd multiple of 16 floats (784 = 49·16; gg_direct_b_ok). Its columns come in whole slivers but for a
 * last half one (a multiple of NR, or of NR plus VL: 784 = 24·32 + 16). Elsewhere B is packed as before; A read where
 * it is stored (above) comes first. The same multiplications in the same order: the same bits either way. Measured on
 * one thread (bench/gemm-shapes.ts --old, Zen 5, a loaded machine): TN 256×784×128 2-6% faster (0.281 → 0.265 ms, 0.284
 * → 0.273, 0.300 → 0.288); its packing (B, and A twice) had been ~6% of its time, timed apart.
 */
#define GG_DIRECT_B_K 128

/* 1 where rows of stride ldb (floats) lie whole cache lines apart and 64 consecutive ones start in 64 different L1
 * sets (64 bytes each, 4 KiB per way), as a packed sliver's lines do: ldb 16 floats times an odd number. */
static int gg_direct_b_ok(gg_i ldb) { return ldb % 16 == 0 && (ldb / 16) % 2 == 1; }

/*
 * And rows of at most GG_DIRECT_B_LD floats (whole cache lines) over up to GG_DIRECT_B_KMAX of k, whatever their
 * stride's sets: the recurrent layers' per-step products read B = dG or [h; x; 1] of 32-256 columns, whose sliver
 * streams from L2 packed or not (its k rows of 128 bytes outgrow L1 either way), so the packing pass was all the
 * difference. One thread, A packed once (as the recurrent layers take it), packed B against B where it is stored:
 * TN 128×64×512 (the LSTM's dh) 39.1 -> 37.2 us, 128×32×512 19.4 -> 18.4, 128×128×512 78.0 -> 74.1, 128×256×512
 * 161 -> 151, 128×64×1024 78.5 -> 74.8, 64×128×256 21.7 -> 19.3, NN 256×64×300 45.3 -> 43.9, 512×64×161 (the LSTM's
 * gates) 48.2 -> 47.8 (Zen 5, seventeenth session). Same bits.
 */
#define GG_DIRECT_B_LD 256
#define GG_DIRECT_B_KMAX 1024
static int gg_direct_b(gg_i k, gg_i ldb) {
  return (k <= GG_DIRECT_B_K && gg_direct_b_ok(ldb)) || (ldb % 16 == 0 && ldb <= GG_DIRECT_B_LD && k <= GG_DIRECT_B_KMAX);
}

/* 1 where the kernels read A where it is stored for a block of nc columns (above: A not transposed nor packed whole,
 * few B slivers, rows that do not alias in L1). */
static inline int gg_direct_a(const gg_gemm_args *g, gg_i nc) {
  return !g->pa && !g->transA && (nc + NR - 1) / NR <= GG_DIRECT_SLIVERS && gg_direct_a_ok(g->lda);
}

#include "gemm_lanes_x86.h"

/* Rows [m0, m1) × columns [n0, n1) of C. A packed whole (g->pa) holds, for each depth block pc, the slivers of all
 * rows (m rounded up to MR) at pa + mPad·pc, so rows [ic, ic + mc) of that block start at + ic·kc (ic is a multiple
 * of MR: row chunks are cut in slivers, and MC is a multiple of MR). */
static void gg_gemm_block(const gg_gemm_args *g, gg_i m0, gg_i m1, gg_i n0, gg_i n1) {
  float *bb = gg_buf_b;
  gg_i mPad = (g->m + MR - 1) / MR * MR;
  /* B read where it is stored (GG_DIRECT_B_K; k <= KC: one depth block), all of its columns in one block */
  int directB = !g->transB && gg_direct_b(g->k, g->ldb) &&
                ((n1 - n0) % NR == 0 || (n1 - n0) % NR == VL) && !gg_direct_a(g, n1 - n0);
  for (gg_i pc = 0; pc < g->k; pc += KC) {
    gg_i kc = gg_min(KC, g->k - pc);
    int beta0 = pc == 0 && g->beta == 0.0f;
    float beta = pc == 0 ? g->beta : 1.0f;
    for (gg_i jc = n0, nc; jc < n1; jc += nc) {
      nc = directB ? n1 - jc : gg_min(NC, n1 - jc);
      /* A read where it is stored, unpacked, where its rows run along k and few B slivers would reuse a packing */
      int direct = !directB && gg_direct_a(g, nc);
      if (!directB) gg_pack_b(g, pc, kc, jc, nc, bb);
      /* with B read where it is stored, a block of rows only bounds A's pack: as many rows as the buffer holds at
       * this depth (all 256 of the MLP's dW1 at k = 128, instead of 192 + 64), so that each B sliver is read once;
       * its dW1 alone 0.2709 -> 0.2654 and 0.2696 -> 0.2663 ms, its one-thread step 0.2-0.35% (nineteenth session) */
      gg_i mcMax = directB && !g->pa ? MC * KC / kc / MR * MR : MC;
      for (gg_i ic = m0; ic < m1; ic += mcMax) {
        gg_i mc = gg_min(mcMax, m1 - ic);
        const float *ba = g->pa ? g->pa + mPad * pc + ic * kc : gg_buf_a;
        if (!g->pa && !direct) gg_pack_a(g, ic, mc, pc, kc, 0, gg_buf_a);
        if (directB) {
          /* B read where it is stored: each B sliver (k rows of NR floats: 16 KB for the MLP's k = 128) is read by
           * every packed A sliver of the block in turn, from L1 where it fits, instead of every sliver of B streaming
           * past each A sliver (B, the MLP's batch of 401 KB, being the larger): the MLP's dW1 TN 256×784×128 on
           * one thread 0.2403 -> 0.2386 and 0.2378 -> 0.2365 ms alone, its training step 0.7% and 1.0% faster
           * (in-process A/B, nineteenth session); the LSTM, GRU and CLI CNN steps and the 2-thread MLP unchanged. The
           * same kernel calls on the same slivers: the same bits. */
          for (gg_i jr = 0; jr < nc; jr += NR) {
            gg_i nr = gg_min(NR, nc - jr);
            for (gg_i sl = 0, ir, mr; sl * MR < mc; sl++) {
              gg_sliver(mc, sl, g->pa != NULL, &ir, &mr);
              gg_kernels_b[nr <= VL][mr](kc, ba + sl * MR * kc, g->lda, g->b + pc * g->ldb + jc + jr, g->ldb,
                                         g->c + (g->rmap ? 0 : ic + ir) * g->ldc + (jc + jr) * g->csc, g->ldc,
                                         g->rmap ? g->rmap + ic + ir : NULL, g->csc, nr, g->alpha,
                                         beta, beta0, pc == 0 && g->bias ? g->bias + jc + jr : NULL,
                                         g->relu && pc + kc == g->k);
            }
          }
          continue;
        }
        for (gg_i sl = 0, ir, mr; sl * MR < mc; sl++) {
          gg_sliver(mc, sl, g->pa != NULL, &ir, &mr);
          const float *pa = direct ? g->a + (ic + ir) * g->lda + pc : ba + sl * MR * kc;
          float *crow = g->c + (g->rmap ? 0 : ic + ir) * g->ldc + jc * g->csc;
          const gg_i *rmap = g->rmap ? g->rmap + ic + ir : NULL;
          for (gg_i jr = 0; jr < nc; jr += NR) {
            gg_i nr = gg_min(NR, nc - jr);
            gg_kernels[direct][nr <= VL][mr](
                kc, pa, g->lda, bb + jr * kc, g->ldb, crow + jr * g->csc,
                g->ldc, rmap, g->csc, nr, g->alpha, beta, beta0, pc == 0 && g->bias ? g->bias + jc + jr : NULL,
                g->relu && pc + kc == g->k);
          }
          /* the row sums of gg_gemm_own_row_sums from the A sliver just read (in L1), once per row: by the block
           * that holds column 0 (A is read where it is stored there: gg_gemm_own_row_sums' conditions) */
          if (g->lanes && jc == 0 && direct) gg_row_lanes(g, ic + ir, mr, pc, kc);
        }
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------------ on the pool */

/* A worker's buffers, touched once so that its first product does not pay for their pages. */
int gg_gemm_thread_init(void) {
  if (!gg_buffers()) return 0;
  memset(gg_buf_a, 0, sizeof(float) * MC * KC);
  memset(gg_buf_b, 0, sizeof(float) * KC * NC);
  return 1;
}

/* A product cut into `chunks` chunks of `parts` slivers of columns (NR) or rows (MR) of C: the pool's chunk c. */
typedef struct {
  const gg_gemm_args *g;
  int byCols, chunks;
  gg_i parts;
} gg_gemm_job;

static void gg_gemm_chunk(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_gemm_job *j = p;
  const gg_gemm_args *g = j->g;
  if (!gg_buffers()) return; /* allocated at the thread's start (gg_gemm_thread_init) */
  for (gg_i c = lo; c < hi; c++) {
    gg_i s0 = j->parts * c / j->chunks, s1 = j->parts * (c + 1) / j->chunks;
    if (j->byCols)
      gg_gemm_block(g, 0, g->m, s0 * NR, gg_min(g->n, s1 * NR));
    else
      gg_gemm_block(g, s0 * MR, gg_min(g->m, s1 * MR), 0, g->n);
  }
}

/* The whole product on the calling thread: the pool's choice where a second thread has not paid for its kind. */
static void gg_gemm_whole(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid, (void)lo, (void)hi;
  const gg_gemm_args *g = ((const gg_gemm_job *)p)->g;
  gg_gemm_block(g, 0, g->m, 0, g->n);
}

#include "gemm_kslice_x86.h"

/* The product g on the pool's threads (gg_gemm_run's, after its transposition; gemm_sparse_x86.h's rows): split by
 * columns in multiples of NR when there are enough, else by rows in multiples of MR; a single tile with a long k, by
 * k (whatever the thread count, so that the bits do not depend on it). Returns 0 where that is refused (asGiven). */
static int gg_gemm_exec(const gg_gemm_args *g, int asGiven) {
  gg_i m = g->m, n = g->n, k = g->k;
  double flops = 2.0 * (double)m * (double)n * (double)k;
  int nt = gg_pool_nthreads();
  if (flops < 2e6) nt = 1;
  gg_i nSl = (n + NR - 1) / NR, mSl = (m + MR - 1) / MR;
  if (nSl == 1 && mSl == 1 && k >= 2 * KS_MIN && (asGiven || gg_gemm_ksliced(g))) return !asGiven;
  int byCols = nSl >= 2 * nt || nSl >= mSl;
  gg_i parts = byCols ? nSl : mSl;
  if (nt > parts) nt = (int)parts;
  gg_gemm_job job = {g, byCols, (int)gg_min(parts, gg_gemm_chunks_per_thread(flops, nt) * nt), parts};
  /* the pool's kind of job: the shape and whatever changes its cost (transposes, epilogue, packing, row sums) */
  uint64_t how = (uint64_t)(g->transA << 5 | g->transB << 4 | (g->rmap != NULL) << 3 | (g->bias != NULL) << 2 |
                            g->relu << 1 | (g->lanes != NULL));
  uint64_t key = gg_pool_key((uint64_t)m << 32 | (uint64_t)n, (uint64_t)k << 8 | how,
                             (uint64_t)(g->pa != NULL) << 32 | (uint64_t)job.chunks, (uint64_t)(uintptr_t)gg_gemm_chunk);
  gg_pool_exec(gg_gemm_chunk, gg_gemm_whole, &job, job.chunks, 1, nt, key);
  return 1;
}

#include "gemm_sparse_x86.h"

/* ------------------------------------------------------------------------------------------------ entry points */

const char *gg_gemm_own_name(void) { return gg_own_name; }

/* gg_gemm_own, gg_gemm_own_bias_act's epilogue with bias or relu (then alpha 1, beta 0), and gg_gemm_own_packed's A
 * packed beforehand (pa): the last two refused, returning 0, where the product would be computed transposed or
 * k-sliced. */
static int gg_gemm_run(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                       const float *b, gg_i ldb, float beta, float *c, gg_i ldc, const float *bias, int relu,
                       const float *pa, double *lanes) {
  if (!gg_buffers()) return 0;
  gg_gemm_args g = {transA, transB, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, 1, bias, relu, pa, lanes, NULL};
  int asGiven = bias || relu || pa || lanes; /* computed as given: neither transposed nor k-sliced */
  if (!asGiven && gg_gemm_sparse(&g)) return 1; /* a weight gradient of mostly zeros (gemm_sparse_x86.h) */
  /* Vectors run along n: where n is narrow and m is not (a weight gradient 32×9, logits 64×10), compute
   * Cᵀ = op(B)ᵀ·op(A)ᵀ instead, written through C's strides (op(B)ᵀ is B read with the other transpose flag). */
  gg_i nPad = (n + NR - 1) / NR * NR, mPad = (m + NR - 1) / NR * NR;
  if (n < NR && (double)m / mPad > (double)n / nPad) {
    if (asGiven) return 0;
    gg_gemm_args t = {!transB, !transA, n, m, k, alpha, beta, b, ldb, a, lda, c, 1, ldc, NULL, 0, NULL, NULL, NULL};
    g = t;
    m = g.m, n = g.n;
  }
  return gg_gemm_exec(&g, asGiven);
}

int gg_gemm_own(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                const float *b, gg_i ldb, float beta, float *c, gg_i ldc) {
  return gg_gemm_run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, 0, NULL, NULL);
}

int gg_gemm_own_bias_act(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b,
                         gg_i ldb, const float *bias, int relu, float *c, gg_i ldc) {
  return gg_gemm_run(transA, transB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, bias, relu, NULL, NULL);
}

gg_i gg_gemm_packed_a_size(gg_i m, gg_i k) { return (m + MR - 1) / MR * MR * k; }

void gg_gemm_pack_a_whole(int transA, gg_i m, gg_i k, const float *a, gg_i lda, float *dst) {
  gg_gemm_args g = {transA, 0, m, 0, k, 1.0f, 0.0f, a, lda, NULL, 0, NULL, 0, 1, NULL, 0, NULL, NULL, NULL};
  gg_i mPad = (m + MR - 1) / MR * MR;
  for (gg_i pc = 0; pc < k; pc += KC) gg_pack_a(&g, 0, m, pc, gg_min(KC, k - pc), 1, dst + mPad * pc);
}

int gg_gemm_own_packed(int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *pa, const float *b, gg_i ldb,
                       float beta, float *c, gg_i ldc) {
  return gg_gemm_run(0, transB, m, n, k, alpha, NULL, 0, b, ldb, beta, c, ldc, NULL, 0, pa, NULL);
}

#include "gemm_seg_x86.h"


/* The calling thread's FMA rate in GFLOP/s: `iters` iterations of 16 independent vector FMAs (the kernel's vectors),
 * best of 5 runs; the ceiling that bench/gemm-shapes.ts compares the products with. */
double gg_gemm_fma_peak(gg_i iters) {
  double best = 0.0;
  for (int run = 0; run < 5; run++) {
    gv acc[16], x = V_SET1(0.999f), y = V_SET1(1e-3f);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) acc[i] = V_SET1((float)i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (gg_i it = 0; it < iters; it++) {
#pragma GCC unroll 16
      for (int i = 0; i < 16; i++) acc[i] = V_FMA(acc[i], x, y);
      __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]), "+v"(acc[4]), "+v"(acc[5]),
                       "+v"(acc[6]), "+v"(acc[7]));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    float sink[VL];
    gv sum = acc[0];
    for (int i = 1; i < 16; i++) sum = V_ADD(sum, acc[i]);
    V_STOREU(sink, sum);
    __asm__ volatile("" : : "r"(sink) : "memory");
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double rate = 2.0 * VL * 16.0 * (double)iters / dt / 1e9;
    if (rate > best) best = rate;
  }
  return best;
}

#else /* no AVX2+FMA: OpenBLAS only */

double gg_gemm_fma_peak(gg_i iters) {
  (void)iters;
  return 0.0;
}

const char *gg_gemm_own_name(void) { return ""; }
int gg_gemm_thread_init(void) { return 1; }
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
gg_i gg_gemm_packed_a_size(gg_i m, gg_i k) {
  (void)m, (void)k;
  return 0;
}
void gg_gemm_pack_a_whole(int transA, gg_i m, gg_i k, const float *a, gg_i lda, float *dst) {
  (void)transA, (void)m, (void)k, (void)a, (void)lda, (void)dst;
}
int gg_gemm_own_packed(int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *pa, const float *b, gg_i ldb,
                       float beta, float *c, gg_i ldc) {
  (void)transB, (void)m, (void)n, (void)k, (void)alpha, (void)pa, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
  return 0;
}
int gg_gemm_own_row_sums(gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b, gg_i ldb, float *c,
                         gg_i ldc, float *sums) {
  (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc, (void)sums;
  return 0;
}
double gg_gemm_sparse_mode(int mode) {
  (void)mode;
  return 0;
}
int gg_gemm_own_segments(gg_i n, gg_i k, const float *b, gg_i ldb, const gg_gemm_seg *segs, int count) {
  (void)n, (void)k, (void)b, (void)ldb, (void)segs, (void)count;
  return 0;
}

#endif
