/*
 * gemm_sparse_x86.h: a weight gradient dW = dYᵀ·X whose dY has columns of zeros, or mostly zeros (native/gemm_x86.c
 * includes it once; gg_gemm_run offers it every product first). A ReLU's gradient is zero wherever its unit was off:
 * a unit that was off for the whole batch (a dead unit, or one its inputs never reach) has a zero column in dY, and
 * so a zero row in dW; one that was off for most of it, a column of mostly zeros. The bench's MLP (inputs uniform in
 * [0, 1)) has 80 of its 256 hidden units off for every input; the headline MLP on MNIST 7 to 35 under 10% on.
 *
 * Each row i of C (column i of A) is one of three kinds, by its count of nonzeros in A:
 *  - none: C's row is alpha·(+0), what the dense kernels' chain over zeros gives (fma(0, x, +0) = +0 for a finite x,
 *    also for −0), unless B holds an Inf or NaN (0·Inf = NaN): then those rows go through the dense path after all;
 *  - at most GG_SPARSE_DENSITY·k (k <= KC, one depth block): only the depth indices p where A[p][i] is not zero,
 *      C[i][·] = alpha·Σ_{p: A[p][i] ≠ 0} A[p][i]·B[p][·]
 *    in increasing p, one FMA chain per element, as the dense kernel (gg_kernel) runs its chain over every p. The
 *    terms it skips add fma(0, x, acc) = acc for a finite x (acc is never −0: it starts at +0, and a sum that cancels
 *    rounds to +0), so the sums are the same and so are the bits, alpha's product and the store included. Where B's
 *    block holds an Inf or NaN those rows are computed by the dense path in that block instead;
 *  - the rest: the dense kernels, on A's columns of those rows copied side by side, each written to its own row of C
 *    (gg_gemm_args.rmap): packing only moves floats, so the bits are those of the whole product.
 * So every element has the dense product's bits. Where fewer than 1/16 of the rows are of the first two kinds, or
 * a first sample of A has hardly any zeros (a gradient without a ReLU before it), nothing is written and the dense
 * product runs as before. Only with AVX-512, and beta = 0 (a weight gradient's product).
 *
 * The sparse rows: A's 16×16 blocks transposed through the registers, each row's nonzeros compressed out (values,
 * and B's row offsets), then taken two rows at a time over blocks of 8 vectors of B's columns and 64 of its rows
 * (32 KB, which stays in L1 across all rows): 16 accumulators, each FMA with its own load of B. Loads bound them to
 * ~1.1-1.2 FMAs a cycle here (Zen 5), against ~1.75 for the dense kernels, which load a vector of B for every 12
 * rows: so only rows of few nonzeros are worth it.
 */
#if defined(__AVX512F__)

#include <stdatomic.h>

#include "kernels/common.h" /* gg_transpose16 */

#define GG_SPARSE_DENSITY 0.3 /* rows with at most this share of nonzeros go the sparse way */
#define GG_SP_NV 8            /* vectors of B's columns per block (two rows: 16 accumulators) */
#define GG_SP_NV_MAX 9        /* a last block of up to this many */
#define GG_SP_TILE 64         /* depth per tile: B's block of 64 rows of 128 floats (32 KB) */

/* gg_gemm_sparse_mode (gemm_x86.h): 0 the sparse path where it qualifies, 1 never, 2 every row with a zero in A the
 * sparse way; and the products it has computed. */
static _Atomic int gg_sparse_mode;
static _Atomic long gg_sparse_done;

double gg_gemm_sparse_mode(int mode) {
  if (mode >= 0) gg_sparse_mode = mode;
  return (double)gg_sparse_done;
}

/* The caller's buffers, grown as needed and reused: per row of C its count of nonzeros and its kind's list (the
 * dense, sparse and zero rows' indices in C, one after another); A's columns of the dense or sparse rows side by
 * side; the sparse rows' nonzeros (values, and B's offsets) at i·stride, where each depth tile's start (at
 * i·GG_SP_SEGS), their counts, and their order (the largest first). */
static __thread float *gg_sp_val, *gg_sp_a;
static __thread int32_t *gg_sp_off, *gg_sp_len, *gg_sp_order, *gg_sp_seg, *gg_sp_cnt;
static __thread gg_i *gg_sp_map;
static __thread __mmask16 *gg_sp_kinds; /* per 16 columns of A: the dense ones' mask, then the sparse ones' */
#define GG_SP_SEGS (KC / GG_SP_TILE + 2)
static __thread size_t gg_sp_cap, gg_sp_rowcap, gg_sp_acap;

static void *gg_sp_grow(void *p, size_t bytes) {
  free(p);
  return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

static int gg_sp_buffers(gg_i m, gg_i k, gg_i stride) {
  size_t need = (size_t)m * (size_t)stride, rows = (size_t)m, as = (size_t)m * (size_t)k + 16;
  if (need > gg_sp_cap) {
    gg_sp_val = gg_sp_grow(gg_sp_val, need * sizeof(float));
    gg_sp_off = gg_sp_grow(gg_sp_off, need * sizeof(int32_t));
    gg_sp_cap = gg_sp_val && gg_sp_off ? need : 0;
    if (!gg_sp_cap) return 0;
  }
  if (rows > gg_sp_rowcap) {
    gg_sp_len = gg_sp_grow(gg_sp_len, rows * sizeof(int32_t));
    gg_sp_order = gg_sp_grow(gg_sp_order, rows * sizeof(int32_t));
    gg_sp_cnt = gg_sp_grow(gg_sp_cnt, (rows + 16) * sizeof(int32_t));
    gg_sp_seg = gg_sp_grow(gg_sp_seg, rows * GG_SP_SEGS * sizeof(int32_t));
    gg_sp_map = gg_sp_grow(gg_sp_map, rows * sizeof(gg_i));
    gg_sp_kinds = gg_sp_grow(gg_sp_kinds, 2 * (rows / 16 + 1) * sizeof(__mmask16));
    gg_sp_rowcap = gg_sp_len && gg_sp_order && gg_sp_cnt && gg_sp_seg && gg_sp_map && gg_sp_kinds ? rows : 0;
    if (!gg_sp_rowcap) return 0;
  }
  if (as > gg_sp_acap) {
    gg_sp_a = gg_sp_grow(gg_sp_a, as * sizeof(float));
    gg_sp_acap = gg_sp_a ? as : 0;
    if (!gg_sp_acap) return 0;
  }
  return 1;
}

/* The first `count` of 16 lanes (all 16 from 16 on). */
static inline __mmask16 gg_sp_mask(gg_i count) {
  return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1u);
}

/* A's columns that are zero (−0 is; NaN is not) in all of its first `rows` rows. */
static gg_i gg_sp_zero_columns(const float *a, gg_i lda, gg_i m, gg_i rows) {
  gg_i zeros = 0;
  for (gg_i i = 0; i < m; i += 16) {
    __mmask16 mk = gg_sp_mask(m - i), nz = 0;
    for (gg_i p = 0; p < rows; p++)
      nz |= _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(mk, a + p * lda + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
    zeros += __builtin_popcount(mk & (__mmask16)~nz);
  }
  return zeros;
}

/* Each of A's columns' nonzeros (NaN counts: it is not zero), into gg_sp_cnt. */
static void gg_sp_counts(const float *a, gg_i lda, gg_i m, gg_i k) {
  const __m512i one = _mm512_set1_epi32(1);
  for (gg_i i = 0; i < m; i += 16) {
    __mmask16 mk = gg_sp_mask(m - i);
    __m512i cnt = _mm512_setzero_si512();
    for (gg_i p = 0; p < k; p++) {
      __mmask16 nz = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(mk, a + p * lda + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
      cnt = _mm512_mask_add_epi32(cnt, nz & mk, cnt, one);
    }
    _mm512_storeu_si512(gg_sp_cnt + i, cnt);
  }
}

/* A's columns where `take` (a mask per 16 columns) side by side into gg_sp_a (k rows of `count`). */
static void gg_sp_compact(const float *a, gg_i lda, gg_i m, gg_i k, const __mmask16 *take, gg_i count) {
  for (gg_i p = 0; p < k; p++) {
    float *dst = gg_sp_a + p * count;
    for (gg_i i = 0, at = 0; i < m; i += 16) {
      __mmask16 mk = take[i / 16];
      if (!mk) continue;
      _mm512_mask_storeu_ps(dst + at, gg_sp_mask(__builtin_popcount(mk)),
                            _mm512_maskz_compress_ps(mk, _mm512_maskz_loadu_ps(gg_sp_mask(m - i), a + p * lda + i)));
      at += __builtin_popcount(mk);
    }
  }
}

/* Lists each row's nonzeros of A (k×m, lda), in increasing p, and where each depth tile's start (row i's at
 * gg_sp_seg + i·(tiles + 1)); returns their number. */
static gg_i gg_sp_build(const float *a, gg_i lda, gg_i m, gg_i k, gg_i ldb, gg_i stride, gg_i tiles) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  gg_i nnz = 0;
  for (gg_i i0 = 0; i0 < m; i0 += 16) {
    int ni = (int)gg_min(16, m - i0);
    __mmask16 mi = gg_sp_mask(ni);
    int32_t fill[16] = {0};
    for (gg_i p0 = 0; p0 < k; p0 += 16) {
      if (p0 % GG_SP_TILE == 0)
        for (int t = 0; t < ni; t++) gg_sp_seg[(i0 + t) * (tiles + 1) + p0 / GG_SP_TILE] = fill[t];
      __m512 r[16];
      for (int q = 0; q < 16; q++)
        r[q] = p0 + q < k ? _mm512_maskz_loadu_ps(mi, a + (p0 + q) * lda + i0) : _mm512_setzero_ps();
      gg_transpose16(r);
      __m512i rows = _mm512_add_epi32(iota, _mm512_set1_epi32((int)p0));
      __m512i offs = _mm512_mullo_epi32(rows, _mm512_set1_epi32((int)ldb));
      for (int t = 0; t < ni; t++) {
        __mmask16 nz = _mm512_cmp_ps_mask(r[t], _mm512_setzero_ps(), _CMP_NEQ_UQ);
        size_t at = (size_t)(i0 + t) * (size_t)stride + (size_t)fill[t];
        _mm512_storeu_ps(gg_sp_val + at, _mm512_maskz_compress_ps(nz, r[t]));
        _mm512_storeu_si512(gg_sp_off + at, _mm512_maskz_compress_epi32(nz, offs));
        fill[t] += __builtin_popcount(nz);
      }
    }
    for (int t = 0; t < ni; t++) {
      gg_sp_len[i0 + t] = gg_sp_seg[(i0 + t) * (tiles + 1) + tiles] = fill[t];
      nnz += fill[t];
    }
  }
  return nnz;
}

/* The rows in order of their counts, the largest first (a counting sort: counts run 0..k). */
static void gg_sp_sort(gg_i m, gg_i k) {
  int32_t *start = calloc((size_t)k + 2, sizeof(int32_t));
  if (!start) {
    for (gg_i i = 0; i < m; i++) gg_sp_order[i] = (int32_t)i;
    return;
  }
  for (gg_i i = 0; i < m; i++) start[k - gg_sp_len[i] + 1]++;
  for (gg_i c = 1; c <= k + 1; c++) start[c] += start[c - 1];
  for (gg_i i = 0; i < m; i++) gg_sp_order[start[k - gg_sp_len[i]]++] = (int32_t)i;
  free(start);
}

/* One row's chains on alone over its nonzeros [from, to): the rest of the longer row of a pair. */
static inline __attribute__((always_inline)) void gg_sp_chain(const int NV, const float *restrict b, __mmask16 last,
                                                              const float *v, const int32_t *o, gg_i from, gg_i to,
                                                              __m512 *acc) {
  for (gg_i s = from; s < to; s++) {
    __m512 a = _mm512_set1_ps(v[s]);
    const float *p = b + o[s];
#pragma GCC unroll 16
    for (int u = 0; u < NV; u++)
      acc[u] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(u == NV - 1 ? last : (__mmask16)0xFFFF, p + 16 * u), acc[u]);
  }
}

/*
 * Rows i1 and i2 (TWO; else i1 alone) over NV vectors of B's columns from b (the last of them masked by `last`), the
 * nonzeros of one depth tile, into C's rows c1, c2: each element's chain goes on from C where an earlier tile left it
 * (FIRST: from +0), and ends in alpha's product after the last tile (LAST), as gg_kernel's does. A float stored and
 * read back is the same float, so the chain's bits do not depend on the tiles.
 */
static inline __attribute__((always_inline)) void gg_sp_rows(const int NV, const int TWO, const float *restrict b,
                                                             __mmask16 last, const float *v1, const int32_t *o1,
                                                             gg_i n1, const float *v2, const int32_t *o2, gg_i n2,
                                                             float *c1, float *c2, float alpha, int first, int end) {
  __m512 x[GG_SP_NV_MAX], y[GG_SP_NV_MAX]; /* sized by a constant, so that they live in registers */
#pragma GCC unroll 16
  for (int u = 0; u < NV; u++) {
    __mmask16 mk = u == NV - 1 ? last : (__mmask16)0xFFFF;
    x[u] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk, c1 + 16 * u);
    y[u] = first || !TWO ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mk, c2 + 16 * u);
  }
  gg_i t = 0;
  if (TWO) {
    gg_i common = gg_min(n1, n2);
    for (; t < common; t++) {
      __m512 a1 = _mm512_set1_ps(v1[t]), a2 = _mm512_set1_ps(v2[t]);
      const float *p1 = b + o1[t], *p2 = b + o2[t];
#pragma GCC unroll 16
      for (int u = 0; u < NV; u++) {
        __mmask16 mk = u == NV - 1 ? last : (__mmask16)0xFFFF;
        x[u] = _mm512_fmadd_ps(a1, _mm512_maskz_loadu_ps(mk, p1 + 16 * u), x[u]);
        y[u] = _mm512_fmadd_ps(a2, _mm512_maskz_loadu_ps(mk, p2 + 16 * u), y[u]);
      }
    }
    gg_sp_chain(NV, b, last, v2, o2, t, n2, y);
  }
  gg_sp_chain(NV, b, last, v1, o1, t, n1, x);
  __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 16
  for (int u = 0; u < NV; u++) {
    __mmask16 mk = u == NV - 1 ? last : (__mmask16)0xFFFF;
    _mm512_mask_storeu_ps(c1 + 16 * u, mk, end ? _mm512_mul_ps(va, x[u]) : x[u]);
    if (TWO) _mm512_mask_storeu_ps(c2 + 16 * u, mk, end ? _mm512_mul_ps(va, y[u]) : y[u]);
  }
}

#define GG_SP_DEF(NV)                                                                                                \
  static void gg_sp_rows2_##NV(const float *b, __mmask16 last, const float *v1, const int32_t *o1, gg_i n1,         \
                               const float *v2, const int32_t *o2, gg_i n2, float *c1, float *c2, float alpha,      \
                               int first, int end) {                                                                 \
    gg_sp_rows(NV, 1, b, last, v1, o1, n1, v2, o2, n2, c1, c2, alpha, first, end);                                  \
  }                                                                                                                  \
  static void gg_sp_rows1_##NV(const float *b, __mmask16 last, const float *v1, const int32_t *o1, gg_i n1,         \
                               const float *v2, const int32_t *o2, gg_i n2, float *c1, float *c2, float alpha,      \
                               int first, int end) {                                                                 \
    gg_sp_rows(NV, 0, b, last, v1, o1, n1, v2, o2, n2, c1, c2, alpha, first, end);                                  \
  }
typedef void (*gg_sp_fn)(const float *, __mmask16, const float *, const int32_t *, gg_i, const float *,
                         const int32_t *, gg_i, float *, float *, float, int, int);
GG_SP_DEF(1)
GG_SP_DEF(2)
GG_SP_DEF(3)
GG_SP_DEF(4)
GG_SP_DEF(5)
GG_SP_DEF(6)
GG_SP_DEF(7)
GG_SP_DEF(8)
GG_SP_DEF(9)
#define GG_SP_TAB(P) \
  {NULL, P##1, P##2, P##3, P##4, P##5, P##6, P##7, P##8, P##9}
static const gg_sp_fn gg_sp_fns[2][GG_SP_NV_MAX + 1] = {GG_SP_TAB(gg_sp_rows1_), GG_SP_TAB(gg_sp_rows2_)};

/* The caller's lists, handed to the pool's threads (whose own gg_sp_* are theirs, not these). */
typedef struct {
  const gg_gemm_args *g;
  gg_i stride, tiles;
  const gg_i *bounds; /* chunk c: the order's [bounds[c], bounds[c + 1]) */
  const float *val;
  const int32_t *off, *seg, *order;
  const gg_i *cmap;     /* the sparse row i is C's row cmap[i] */
  _Atomic int *nonfinite; /* set where a block of B held an Inf or NaN */
} gg_sp_job;

/* 1 where rows [0, k) of b (stride ldb) hold only finite values in columns [c0, c1). */
static int gg_sp_finite(const float *b, gg_i ldb, gg_i k, gg_i c0, gg_i c1) {
  __m512 acc = _mm512_setzero_ps(), zero = _mm512_setzero_ps();
  for (gg_i p = 0; p < k; p++)
    for (gg_i c = c0; c < c1; c += 16)
      acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_maskz_loadu_ps(gg_sp_mask(c1 - c), b + p * ldb + c), zero));
  return _mm512_cmp_ps_mask(acc, zero, _CMP_EQ_OQ) == 0xFFFF;
}

/* Chunks [lo, hi) of the order: every column block of B, every depth tile, the chunk's rows two at a time. */
static void gg_sp_chunks(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_sp_job *j = p;
  const gg_gemm_args *g = j->g;
  gg_i n = g->n, vecs = (n + 15) / 16, tiles = j->tiles;
  for (gg_i ch = lo; ch < hi; ch++) {
    gg_i r0 = j->bounds[ch], r1 = j->bounds[ch + 1];
    for (gg_i v0 = 0; v0 < vecs;) {
      /* blocks of GG_SP_NV vectors; a last one of up to GG_SP_NV_MAX (784 = 49 vectors: five of 8 and one of 9) */
      gg_i nv = vecs - v0 <= GG_SP_NV_MAX ? vecs - v0 : GG_SP_NV;
      gg_i c0 = v0 * 16, c1 = gg_min(n, (v0 + nv) * 16);
      __mmask16 last = gg_sp_mask(c1 - (v0 + nv - 1) * 16);
      if (!gg_sp_finite(g->b, g->ldb, g->k, c0, c1)) {
        /* an Inf or NaN in B's block: the dense product's bits there (0·Inf = NaN), row by row */
        *j->nonfinite = 1;
        if (gg_buffers())
          for (gg_i r = r0; r < r1; r++) gg_gemm_block(g, j->cmap[j->order[r]], j->cmap[j->order[r]] + 1, c0, c1);
        v0 += nv;
        continue;
      }
      const float *b = g->b + c0;
      for (gg_i tile = 0; tile < tiles; tile++) {
        for (gg_i r = r0; r < r1; r += 2) {
          int two = r + 1 < r1;
          gg_i i1 = j->order[r], i2 = two ? j->order[r + 1] : i1;
          const int32_t *t1 = j->seg + i1 * (tiles + 1) + tile, *t2 = j->seg + i2 * (tiles + 1) + tile;
          size_t s1 = (size_t)i1 * (size_t)j->stride + (size_t)t1[0];
          size_t s2 = (size_t)i2 * (size_t)j->stride + (size_t)t2[0];
          gg_sp_fns[two][nv](b, last, j->val + s1, j->off + s1, t1[1] - t1[0], j->val + s2, j->off + s2,
                             t2[1] - t2[0], g->c + j->cmap[i1] * g->ldc + c0, g->c + j->cmap[i2] * g->ldc + c0,
                             g->alpha, tile == 0,
                             tile == tiles - 1);
        }
      }
      v0 += nv;
    }
  }
}

/* The sparse rows (ms of them, A's columns side by side in gg_sp_a; C's rows at cmap): their lists, then the pool's
 * chunks of about equal nonzeros (each row's count and a row's overhead of 8), whole pairs of rows. */
static void gg_sp_sparse_rows(const gg_gemm_args *g, gg_i ms, const gg_i *cmap, _Atomic int *nonfinite) {
  gg_i k = g->k, stride = (k + 31) / 16 * 16, tiles = (k + GG_SP_TILE - 1) / GG_SP_TILE;
  gg_i nnz = gg_sp_build(gg_sp_a, ms, ms, k, g->ldb, stride, tiles);
  gg_sp_sort(ms, k);
  int nt = gg_pool_nthreads();
  double flops = 2.0 * (double)nnz * (double)g->n;
  if (flops < 2e6) nt = 1;
  int chunks = nt > 1 ? gg_gemm_chunks_per_thread(flops, nt) * nt : 1;
  if (chunks > 64) chunks = 64;
  gg_i bounds[65];
  double total = (double)nnz + 8.0 * (double)ms, acc = 0.0;
  bounds[0] = 0;
  int c = 1;
  for (gg_i r = 0; r < ms && c < chunks; r += 2) {
    acc += gg_sp_len[gg_sp_order[r]] + 8.0 + (r + 1 < ms ? gg_sp_len[gg_sp_order[r + 1]] + 8.0 : 0.0);
    if (acc >= total * c / chunks) bounds[c++] = gg_min(ms, r + 2);
  }
  while (c <= chunks) bounds[c++] = ms;
  gg_sp_job job = {g, stride, tiles, bounds, gg_sp_val, gg_sp_off, gg_sp_seg, gg_sp_order, cmap, nonfinite};
  uint64_t key = gg_pool_key((uint64_t)ms << 32 | (uint64_t)g->n, (uint64_t)k, (uint64_t)chunks,
                             (uint64_t)(uintptr_t)gg_sp_chunks);
  gg_pool_exec(gg_sp_chunks, gg_sp_chunks, &job, chunks, 1, nt, key);
}

/*
 * gg_gemm_run's first try for C = alpha·Aᵀ·B (beta 0, C's columns stored along its rows): 1 having computed it here,
 * 0 having written nothing (too few rows of zeros or few nonzeros to pay).
 */
static int gg_gemm_sparse(const gg_gemm_args *g) {
  gg_i m = g->m, n = g->n, k = g->k;
  int mode = gg_sparse_mode;
  if (mode == 1 || !g->transA || g->transB || g->beta != 0.0f || g->csc != 1 || g->rmap || m < 16 || n < 64 ||
      (double)k * (double)g->ldb >= 2147483647.0 || (mode != 2 && 2.0 * (double)m * (double)n * (double)k < 2e6))
    return 0;
  /* a first sample: too few columns zero in A's first rows (a gradient without a ReLU before it has none; one with
   * units on half the time, few: 1 in 256 over 8 rows) and it pays only this */
  if (mode != 2 && gg_sp_zero_columns(g->a, g->lda, m, gg_min(8, k)) * 16 < m) return 0;
  gg_i stride = (k + 31) / 16 * 16;
  if (!gg_sp_buffers(m, k, stride)) return 0;
  gg_sp_counts(g->a, g->lda, m, k);
  /* the rows' kinds: masks of 16 columns of A, and C's rows of each kind in gg_sp_map (dense, sparse, zero) */
  gg_i blocks = (m + 15) / 16, md = 0, ms = 0, mz = 0;
  __mmask16 *dense = gg_sp_kinds, *sparse = gg_sp_kinds + blocks;
  gg_i sparseMax = k <= KC ? (mode == 2 ? k - 1 : (gg_i)(GG_SPARSE_DENSITY * (double)k)) : 0;
  for (gg_i i = 0; i < m; i++) {
    gg_i cnt = gg_sp_cnt[i];
    if (i % 16 == 0) dense[i / 16] = sparse[i / 16] = 0;
    if (cnt == 0) mz++;
    else if (cnt <= sparseMax) sparse[i / 16] |= (__mmask16)(1u << (i % 16)), ms++;
    else dense[i / 16] |= (__mmask16)(1u << (i % 16)), md++;
  }
  if ((mz + ms) * 16 < m && mode != 2) return 0;
  gg_i *dmap = gg_sp_map, *smap = gg_sp_map + md, *zmap = smap + ms;
  for (gg_i i = 0, d = 0, s = 0, z = 0; i < m; i++) {
    if (dense[i / 16] >> (i % 16) & 1) dmap[d++] = i;
    else if (sparse[i / 16] >> (i % 16) & 1) smap[s++] = i;
    else zmap[z++] = i;
  }
  _Atomic int nonfinite = 0;
  if (md) {
    gg_sp_compact(g->a, g->lda, m, k, dense, md);
    gg_gemm_args d = *g;
    d.a = gg_sp_a, d.lda = md, d.m = md, d.rmap = dmap;
    gg_gemm_exec(&d, 0);
  }
  if (ms) {
    gg_sp_compact(g->a, g->lda, m, k, sparse, ms);
    gg_sp_sparse_rows(g, ms, smap, &nonfinite);
  }
  if (mz) {
    /* B finite (every block checked by the sparse rows, or a dense row's sums all finite, which an Inf or NaN in B
     * would have made Inf or NaN, or else B read): the zero rows are alpha·(+0); else the dense product's bits */
    int finite = ms ? !nonfinite
                 : md ? gg_sp_finite(g->c + dmap[0] * g->ldc, 0, 1, 0, n)
                      : gg_sp_finite(g->b, g->ldb, k, 0, n);
    __m512 z = _mm512_mul_ps(_mm512_set1_ps(g->alpha), _mm512_setzero_ps());
    for (gg_i r = 0; r < mz; r++) {
      float *cr = g->c + zmap[r] * g->ldc;
      if (!finite) {
        if (gg_buffers()) gg_gemm_block(g, zmap[r], zmap[r] + 1, 0, n);
        continue;
      }
      for (gg_i j = 0; j < n; j += 16) _mm512_mask_storeu_ps(cr + j, gg_sp_mask(n - j), z);
    }
  }
  gg_sparse_done++;
  return 1;
}

#else
double gg_gemm_sparse_mode(int mode) {
  (void)mode;
  return 0;
}
static int gg_gemm_sparse(const gg_gemm_args *g) {
  (void)g;
  return 0;
}
#endif
