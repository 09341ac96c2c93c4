/*
 * native/kernels/recurrent_seq.c: the LSTM's and the GRU's loops over time, forward and backward, one call per layer
 * and direction (see the kernel spec, src/backend/spec-nn.ts: lstmSeq, lstmSeqGrad, gruSeq, gruSeqGrad). Each step
 * makes the calls the op in src/tensor/ops/recurrent.ts made per step before (gg_sgemm, then the cell kernels of
 * native/kernels/recurrent.c, or the other way round backward), with the same arguments in the same order, so the
 * results are the same bits; what goes is a JavaScript round trip, four to six kernel calls and a few buffers per step.
 *
 * Natively, where our own sgemm computes a step's product (the per-shape choice of native/addon.c, the one gg_sgemm
 * makes), the weights (A) are packed once per call instead of once per step (gg_gemm_pack_a_whole); packing only
 * moves floats, so the bits do not change either. In wasm, and where OpenBLAS computes the product, each step calls
 * gg_sgemm as before.
 */
#include "common.h"

#if !defined(__wasm__) && defined(__x86_64__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <stdlib.h>

#include "../gemm_x86.h"
#define GG_SEQ_PACKED 1
void gg_lstm_cell_grad_c(const float *act, const float *cPrev, const float *tc, float *dh, const float *dy, gg_i dyOff,
                         gg_i ldy, const float *dc, float *dG, gg_i dOff, gg_i ldg, float *dcPrev, gg_i hidden,
                         gg_i batch, float *dGc); /* recurrent.c */
#else
#define GG_SEQ_PACKED 0
#endif

/* One of a loop's products, the same every step but for B and C: op(A) m×k (a, lda), op(B) k×n, alpha 1. */
typedef struct {
  int transA, transB;
  gg_i m, n, k;
  const float *a;
  gg_i lda;
  const float *pa; /* A packed once (natively, where our sgemm computes this shape), else NULL */
} seq_gemm;

static seq_gemm seq_gemm_of(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda) {
  seq_gemm s = {transA, transB, m, n, k, a, lda, NULL};
  return s;
}

/* C = op(A)·op(B) + beta·C: from the packed A where there is one, else gg_sgemm, as a step made it before. */
static void seq_gemm_run(const seq_gemm *s, const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff,
                         gg_i ldc) {
#if GG_SEQ_PACKED
  if (s->pa && gg_gemm_own_packed(s->transB, s->m, s->n, s->k, 1.0f, s->pa, b + bOff, ldb, (float)beta, c + cOff, ldc))
    return;
#endif
  gg_sgemm(s->transA, s->transB, s->m, s->n, s->k, 1.0, s->a, 0, s->lda, b, bOff, ldb, beta, c, cOff, ldc);
}

#if GG_SEQ_PACKED
/* The calling thread's packed weights, grown as needed and reused by every later call. */
static __thread float *seq_buf;
static __thread size_t seq_cap;

/*
 * Packs the A of each of `count` products where gg_sgemm would compute it with our sgemm (the same shape checks: k > 0,
 * leading dimensions that cover a row, then the per-shape choice), into the thread's buffer; the others keep pa NULL.
 * Nothing is packed where the buffer cannot be had.
 */
static void seq_pack(seq_gemm *s, int count, gg_i ldb, gg_i ldc) {
  size_t need = 0;
  int use[3] = {0, 0, 0};
  for (int i = 0; i < count; i++) {
    seq_gemm *g = &s[i];
    gg_i aCols = g->transA ? g->m : g->k, bCols = g->transB ? g->k : g->n;
    int fits = g->m > 0 && g->n > 0 && g->k > 0 && g->lda >= aCols && ldb >= bCols && ldc >= g->n;
    use[i] = fits && gg_gemm_choose_own(g->transA, g->transB, g->m, g->n, g->k);
    if (use[i]) need += (size_t)gg_gemm_packed_a_size(g->m, g->k);
  }
  if (!need) return;
  if (need > seq_cap) {
    float *grown = aligned_alloc(64, (need * sizeof(float) + 63) / 64 * 64);
    if (!grown) return;
    free(seq_buf);
    seq_buf = grown;
    seq_cap = need;
  }
  float *at = seq_buf;
  for (int i = 0; i < count; i++) {
    if (!use[i]) continue;
    gg_gemm_pack_a_whole(s[i].transA, s[i].m, s[i].k, s[i].a, s[i].lda, at);
    s[i].pa = at;
    at += gg_gemm_packed_a_size(s[i].m, s[i].k);
  }
}
#else
static void seq_pack(seq_gemm *s, int count, gg_i ldb, gg_i ldc) { (void)s, (void)count, (void)ldb, (void)ldc; }
#endif

/*
 * x_t, `batch` rows of `inputs` values ldx apart, transposed into z's rows [row, row + inputs), columns [col, col +
 * batch): the step's inputs placed just before its product reads them (so no permute of the whole input and no copy
 * into z beforehand, and the product finds them in cache).
 */
static void seq_x_in(const float *xt, gg_i ldx, gg_i inputs, float *z, gg_i ldz, gg_i row, gg_i col, gg_i batch) {
  for (gg_i i = 0; i < inputs; i++) {
    float *zr = z + (row + i) * ldz + col;
    for (gg_i b = 0; b < batch; b++) zr[b] = xt[b * ldx + i];
  }
}

GG_API void gg_lstm_seq(const float *w, gg_i k, float *z, gg_i ldz, const float *x, gg_i xStep, gg_i ldx, gg_i inputs,
                        float *p, float *c, float *act, float *tc, float *y, gg_i yStep, gg_i ldy, int keep, gg_i steps,
                        gg_i hidden, gg_i batch) {
  gg_i H = hidden, B = batch, n = H * B;
  seq_gemm g = seq_gemm_of(0, 0, 4 * H, B, k, w, k);
  seq_pack(&g, 1, ldz, B);
  for (gg_i t = 0; t < steps; t++) {
    /* kept: step t's buffers at block t, c_t at block t; else one set, and c_t alternating between blocks 0 and 1 */
    gg_i s = keep ? t : 0, cp = keep ? t : t & 1, cn = keep ? t + 1 : (t + 1) & 1;
    seq_x_in(x + t * xStep, ldx, inputs, z, ldz, H, t * B, B);
    seq_gemm_run(&g, z, t * B, ldz, 0.0, p, 0, B);
    gg_lstm_cell(p, 0, B, c + cp * n, act + s * 4 * n, c + cn * n, tc + s * n, z, (t + 1) * B, ldz, y, t * yStep, ldy,
                 H, B);
  }
}

GG_API void gg_lstm_seq_grad(const float *whh, const float *act, const float *c, const float *tc, float *dh,
                             const float *dy, gg_i yStep, gg_i ldy, float *dc, float *dG, gg_i ldg, float *dhss,
                             int measure, gg_i steps, gg_i hidden, gg_i batch) {
  gg_i H = hidden, B = batch, n = H * B;
  seq_gemm g = seq_gemm_of(1, 0, H, B, 4 * H, whh, H);
  seq_pack(&g, 1, ldg, B);
  /* natively, with our own product: the step's dG also in a block of its own (rows B floats apart), which the product
   * reads as stored; dG's rows in the sequence lie a sequence's length apart (a page each), and packing them took
   * ~4% of the step */
#if GG_SEQ_PACKED
  float *dGc = g.pa ? aligned_alloc(64, ((size_t)(4 * n) * sizeof(float) + 63) / 64 * 64) : NULL;
#endif
  for (gg_i t = steps - 1; t >= 0; t--) {
    /* the gradients reaching h_t and c_t in block cur, those reaching h_{t−1} and c_{t−1} into the other */
    gg_i cur = (steps - 1 - t) & 1, nxt = cur ^ 1;
#if GG_SEQ_PACKED
    if (dGc) {
      gg_lstm_cell_grad_c(act + t * 4 * n, c + t * n, tc + t * n, dh + cur * n, dy, t * yStep, ldy, dc + cur * n, dG,
                          t * B, ldg, dc + nxt * n, H, B, dGc);
      if (measure) dhss[t] = (float)gg_sum_squares(dh + cur * n, n);
      seq_gemm_run(&g, dGc, 0, B, 0.0, dh, nxt * n, B);
      continue;
    }
#endif
    gg_lstm_cell_grad(act + t * 4 * n, c + t * n, tc + t * n, dh + cur * n, dy, t * yStep, ldy, dc + cur * n, dG,
                      t * B, ldg, dc + nxt * n, H, B);
    if (measure) dhss[t] = (float)gg_sum_squares(dh + cur * n, n);
    seq_gemm_run(&g, dG, t * B, ldg, 0.0, dh, nxt * n, B);
  }
#if GG_SEQ_PACKED
  free(dGc);
#endif
  if (steps & 1) {
    gg_copy(dh, n, dh, 0, n);
    gg_copy(dc, n, dc, 0, n);
  }
}

GG_API void gg_gru_seq(const float *w, gg_i k, gg_i nb, float *z, gg_i ldz, const float *x, gg_i xStep, gg_i ldx,
                       gg_i inputs, float *p, float *hn, float *act, float *y, gg_i yStep, gg_i ldy, int keep,
                       gg_i steps, gg_i hidden, gg_i batch) {
  gg_i H = hidden, B = batch, n = H * B;
  /* z: [1; h; x; 1] (the ones rows where nb = 1), h from row nb. r and z over the k rows [h; x; 1]; n's input part
   * over [x; 1]; hn = [b_hn | W_hn]·(1, h), the first H + nb rows */
  gg_i zh = nb * ldz;
  seq_gemm g[3] = {seq_gemm_of(0, 0, 2 * H, B, k, w, k), seq_gemm_of(0, 0, H, B, k - H, w + 2 * H * k + H, k),
                   seq_gemm_of(0, 0, H, B, H + nb, w + 3 * H * k, k)};
  seq_pack(g, 3, ldz, B);
  for (gg_i t = 0; t < steps; t++) {
    gg_i s = keep ? t : 0;
    seq_x_in(x + t * xStep, ldx, inputs, z, ldz, nb + H, t * B, B);
    seq_gemm_run(&g[0], z, zh + t * B, ldz, 0.0, p, 0, B);
    seq_gemm_run(&g[1], z, zh + H * ldz + t * B, ldz, 0.0, p, 2 * n, B);
    seq_gemm_run(&g[2], z, t * B, ldz, 0.0, hn, s * n, B);
    gg_gru_cell(p, 0, B, hn + s * n, z, zh + t * B, z, zh + (t + 1) * B, ldz, y, t * yStep, ldy, act + s * 3 * n, H,
                B);
  }
}

GG_API void gg_gru_seq_grad(const float *whh, const float *act, const float *hn, const float *z, gg_i zOff, gg_i ldz,
                            float *dh, const float *dy, gg_i yStep, gg_i ldy, float *dG, gg_i ldg, float *dhss,
                            int measure, gg_i steps, gg_i hidden, gg_i batch) {
  gg_i H = hidden, B = batch, n = H * B;
  /* dh_prev += W_hr,zᵀ·[da_r; da_z] + W_hnᵀ·d hn */
  seq_gemm g[2] = {seq_gemm_of(1, 0, H, B, 2 * H, whh, H), seq_gemm_of(1, 0, H, B, H, whh + 2 * H * H, H)};
  seq_pack(g, 2, ldg, B);
  for (gg_i t = steps - 1; t >= 0; t--) {
    gg_i cur = (steps - 1 - t) & 1, nxt = cur ^ 1;
    gg_gru_cell_grad(act + t * 3 * n, hn + t * n, z, zOff + t * B, ldz, dh + cur * n, dy, t * yStep, ldy, dG, t * B,
                     ldg, dh + nxt * n, H, B);
    if (measure) dhss[t] = (float)gg_sum_squares(dh + cur * n, n);
    seq_gemm_run(&g[0], dG, t * B, ldg, 1.0, dh, nxt * n, B);
    seq_gemm_run(&g[1], dG, 3 * H * ldg + t * B, ldg, 1.0, dh, nxt * n, B);
  }
  if (steps & 1) gg_copy(dh, n, dh, 0, n);
}

/*
 * The recurrent op's weight gradients with the biases' (spec-rnn.ts, sgemmRowSums): C = A·Bᵀ (A [m, k] with rows k
 * apart from aOff, B's n rows of k ldb apart from bOff; alpha 1, beta 0) as gg_sgemm computes it, and sums[sOff + i] =
 * A's row i summed as gg_sum_axis sums it. Natively, where our sgemm computes the shape and reads A where it is stored,
 * the sums are taken from A's slivers while the product has them in cache (gg_gemm_own_row_sums: the same bits), instead
 * of in a second pass over A (dG, 13 MB for the bench's LSTM); else the product and then gg_sum_axis.
 */
GG_API void gg_sgemm_row_sums(gg_i m, gg_i n, gg_i k, const float *a, gg_i aOff, const float *b, gg_i bOff, gg_i ldb,
                              float *c, gg_i cOff, gg_i ldc, float *sums, gg_i sOff) {
#if GG_SEQ_PACKED
  if (m > 0 && n > 0 && k > 0 && ldb >= k && ldc >= n && gg_gemm_choose_own(0, 1, m, n, k) &&
      gg_gemm_own_row_sums(m, n, k, a + aOff, k, b + bOff, ldb, c + cOff, ldc, sums + sOff))
    return;
#endif
  gg_sgemm(0, 1, m, n, k, 1.0, a, aOff, k, b, bOff, ldb, 0.0, c, cOff, ldc);
  gg_sum_axis(a + aOff, sums + sOff, m, k, 1);
}

/*
 * The GRU's weight gradients (spec-rnn.ts, gruWeightGrads), the three products of the op's matrixGrads over dG [4·hidden,
 * k] (rows k apart) and z's rows from zOff (h's hidden rows, then x's `inputs`; ldz apart): both [2·hidden, hidden +
 * inputs] = dG's rows [0, 2·hidden)·[h; x]ᵀ, wi's rows [2·hidden, 3·hidden) = dG's rows [2·hidden, 3·hidden)·xᵀ, wh's
 * rows [2·hidden, 3·hidden) = dG's rows [3·hidden, 4·hidden)·hᵀ, each as gg_sgemm_row_sums (withSums: sums[0, 2·hidden),
 * [2·hidden, 3·hidden), [3·hidden, 4·hidden) the rows' sums) or gg_sgemm computes it. Natively, where our sgemm computes
 * all three, as one job over a B packed once per depth block (gg_gemm_own_segments: h's and x's rows packed once
 * instead of twice; the same bits).
 */
GG_API void gg_gru_weight_grads(const float *dG, gg_i k, const float *z, gg_i zOff, gg_i ldz, gg_i hidden, gg_i inputs,
                                float *both, float *wi, float *wh, float *sums, int withSums) {
  gg_i H = hidden, In = inputs, HI = H + In;
  const float *gn = dG + 2 * H * k, *ghn = dG + 3 * H * k;
  float *cn = wi + 2 * H * In, *chn = wh + 2 * H * H;
#if GG_SEQ_PACKED
  gg_gemm_seg segs[3] = {{dG, k, 2 * H, 0, HI, both, HI, withSums ? sums : NULL},
                         {gn, k, H, H, HI, cn, In, withSums ? sums + 2 * H : NULL},
                         {ghn, k, H, 0, H, chn, H, withSums ? sums + 3 * H : NULL}};
  if (H > 0 && In > 0 && k > 0 && ldz >= k && gg_gemm_choose_own(0, 1, 2 * H, HI, k) &&
      gg_gemm_choose_own(0, 1, H, In, k) && gg_gemm_choose_own(0, 1, H, H, k) &&
      gg_gemm_own_segments(HI, k, z + zOff, ldz, segs, 3))
    return;
#endif
  if (withSums) {
    gg_sgemm_row_sums(2 * H, HI, k, dG, 0, z, zOff, ldz, both, 0, HI, sums, 0);
    gg_sgemm_row_sums(H, In, k, gn, 0, z, zOff + H * ldz, ldz, cn, 0, In, sums, 2 * H);
    gg_sgemm_row_sums(H, H, k, ghn, 0, z, zOff, ldz, chn, 0, H, sums, 3 * H);
    return;
  }
  gg_sgemm(0, 1, 2 * H, HI, k, 1.0, dG, 0, k, z, zOff, ldz, 0.0, both, 0, HI);
  gg_sgemm(0, 1, H, In, k, 1.0, gn, 0, k, z, zOff + H * ldz, ldz, 0.0, cn, 0, In);
  gg_sgemm(0, 1, H, H, k, 1.0, ghn, 0, k, z, zOff, ldz, 0.0, chn, 0, H);
}
