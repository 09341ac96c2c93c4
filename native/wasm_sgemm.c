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
_Static_assert(MR == 4 && NR == 8, "pack_a and pack_b transpose 4x4 blocks: MR = 4 and NR = 8");

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

/* Transposes the 4×4 block of rows r0..r3: out[j] holds element j of each row. */
static inline void transpose4(v128_t r0, v128_t r1, v128_t r2, v128_t r3, v128_t out[4]) {
  v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5); /* r0[0] r1[0] r0[1] r1[1] */
  v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5); /* r2[0] r3[0] r2[1] r3[1] */
  v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  out[0] = wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5);
  out[1] = wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7);
  out[2] = wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5);
  out[3] = wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7);
}

/* packA[panel][p][r] = op(A)[i0 + panel·MR + r][p0 + p], zero past row mc. */
static void pack_a(float *dst, int transA, const float *a, gg_i lda, gg_i i0, gg_i p0, gg_i mc, gg_i kc) {
  for (gg_i ip = 0; ip < mc; ip += MR) {
    gg_i rows = gg_min(MR, mc - ip);
    if (!transA) {
      /* op(A) rows are contiguous in memory: read MR rows side by side. */
      const float *src = a + (i0 + ip) * lda + p0;
      if (rows == MR) {
        /* four k at a time: a 4×4 transpose in registers (MR = 4) */
        gg_i p = 0;
        for (; p + 4 <= kc; p += 4) {
          v128_t t[4];
          transpose4(wasm_v128_load(src + p), wasm_v128_load(src + lda + p), wasm_v128_load(src + 2 * lda + p),
                     wasm_v128_load(src + 3 * lda + p), t);
          for (int j = 0; j < 4; j++) wasm_v128_store(dst + 4 * j, t[j]);
          dst += 4 * MR;
        }
        for (; p < kc; p++) {
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
        /* four k at a time: two 4×4 transposes in registers (NR = 8) */
        gg_i p = 0;
        for (; p + 4 <= kc; p += 4) {
          v128_t lo[4], hi[4];
          transpose4(wasm_v128_load(src + p), wasm_v128_load(src + ldb + p), wasm_v128_load(src + 2 * ldb + p),
                     wasm_v128_load(src + 3 * ldb + p), lo);
          transpose4(wasm_v128_load(src + 4 * ldb + p), wasm_v128_load(src + 5 * ldb + p),
                     wasm_v128_load(src + 6 * ldb + p), wasm_v128_load(src + 7 * ldb + p), hi);
          for (int j = 0; j < 4; j++) {
            wasm_v128_store(dst + NR * j, lo[j]);
            wasm_v128_store(dst + NR * j + 4, hi[j]);
          }
          dst += 4 * NR;
        }
        for (; p < kc; p++) {
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

/* A product cut along C's rows or columns (gg_parallel_for's chunks): each chunk is a whole product on its own, the
 * rows of C it covers with the matching rows of op(A), or its columns with the matching columns of op(B). */
typedef struct {
  int transA, transB, splitRows;
  gg_i m, n, k, lda, ldb, ldc;
  float alpha, beta;
  const float *a, *b;
  float *c;
} sgemm_args;

static void sgemm_range(int tid, gg_i lo, gg_i hi, const void *p) {
  const sgemm_args *g = p;
  if (g->splitRows) {
    const float *a = g->a + (g->transA ? lo : lo * g->lda);
    sgemm_one(tid, g->transA, g->transB, hi - lo, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
              g->c + lo * g->ldc, g->ldc);
  } else {
    const float *b = g->b + (g->transB ? lo * g->ldb : lo);
    sgemm_one(tid, g->transA, g->transB, g->m, hi - lo, g->k, g->alpha, g->a, g->lda, b, g->ldb, g->beta, g->c + lo,
              g->ldc);
  }
}

GG_API void gg_sgemm(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff,
                     gg_i lda, const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc) {
  if (m <= 0 || n <= 0) return;
  /* Cutting the longer side of C duplicates the packing of the smaller operand only. Chunks are whole micro-tiles.
   * Every element is summed by one thread in the one-thread order, so the cut does not change the result. */
  int splitRows = m > n;
  sgemm_args g = {transA, transB, splitRows, m, n, k, lda, ldb, ldc, (float)alpha, (float)beta,
                  a + aOff, b + bOff, c + cOff};
  double macs = k > 0 ? (double)m * (double)n * (double)k : 0.0;
  gg_parallel_for(sgemm_range, &g, splitRows ? m : n, splitRows ? MR : NR, macs);
}
