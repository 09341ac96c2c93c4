/*
 * native/kernels/recurrent.c: the LSTM and GRU steps, forward and backward, fused (see common.h for what all kernels
 * promise). Each replaces the dozen element-wise kernel calls a step used to make (four copies of the gates out of
 * the pre-activations, four activations, the products and sums of c and h, the copy of h into the sequence) with one
 * pass over the step's states, reading the pre-activations and writing h and the gate gradients where the sequence's
 * matrices keep them (a leading dimension apart), so that the recurrent products need no copies either. The forward
 * kernels also write h into the layer's output [batch, hidden] and the backward ones add the output's gradient read
 * from there, so that the layer needs no transposes around the sequence. Each hidden unit's row is computed whole by
 * one thread, and rows are shared out over the pool's threads by blocks of 16.
 *
 * The arithmetic is the reference's (src/backend/js-nn.ts) operation by operation: products and sums rounded to
 * float32, the gradients' g·f'(y) in float64 and rounded once; only σ and tanh are our float versions (gg_math.h),
 * an ulp or two from the reference's, as the unary kernels.
 */
#include "common.h"

/*
 * x86: σ and tanh over whole vectors (16 lanes with AVX-512, 8 with AVX2), the forward cells' main cost (five of
 * them per LSTM unit). The same Cephes functions as gg_math.h, operation by operation, except that the polynomials
 * and the range reduction use fused multiply-adds (the build's -ffp-contract=off keeps the compiler from fusing
 * anything itself): about a third fewer instructions, and results within an ulp or two of the float64 reference as
 * before (they may differ from the scalar functions' in the last bit; the lanes past the last whole vector of a row
 * use the scalar ones). NaN propagates, σ(±Inf) = 1 / 0 and tanh(±Inf) = ±1, as in the scalar functions. exp's
 * clamps are a min and a max, and with AVX-512 its scaling by 2^n one vscalefps: the same values as compares and
 * selects and as gg_expf's two products by halves of 2^n (which round once, in the second): the LSTM forward's
 * AVX-512 loop went from 222 instructions to 174 a vector. Each of σ and tanh needs only one of exp's clamps, a NaN
 * goes through as a NaN without a select, and the signs are set with bit operations: 146 (see gv_exp_clamped).
 */
#if defined(__AVX512F__)
#define GG_RV 16
typedef __m512 gg_v;
typedef __mmask16 gg_m;
#define gv_set(x) _mm512_set1_ps(x)
#define gv_load(p) _mm512_loadu_ps(p)
#define gv_store(p, v) _mm512_storeu_ps(p, v)
#define gv_add _mm512_add_ps
#define gv_sub _mm512_sub_ps
#define gv_mul _mm512_mul_ps
#define gv_div _mm512_div_ps
#define gv_fma _mm512_fmadd_ps
#define gv_fnma _mm512_fnmadd_ps /* c − a·b */
#define gv_min _mm512_min_ps
#define gv_max _mm512_max_ps
#define gv_gt(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define gv_ge(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define gv_sel(m, t, f) _mm512_mask_blend_ps(m, f, t) /* m ? t : f */
#define gv_abs(a) _mm512_abs_ps(a)
#define gv_or(a, b) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
#define gv_and(a, b) _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)))
/* p·2^fn for the integer-valued fn: one rounding, as gg_expf's two halves (p·2^(n/2) is exact, so only the second
 * product rounds, to the same value), in one instruction. */
static inline gg_v gv_scale(gg_v p, gg_v fn, gg_v t, gg_v shifter) {
  (void)t, (void)shifter;
  return _mm512_scalef_ps(p, fn);
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GG_RV 8
typedef __m256 gg_v;
typedef __m256 gg_m;
#define gv_set(x) _mm256_set1_ps(x)
#define gv_load(p) _mm256_loadu_ps(p)
#define gv_store(p, v) _mm256_storeu_ps(p, v)
#define gv_add _mm256_add_ps
#define gv_sub _mm256_sub_ps
#define gv_mul _mm256_mul_ps
#define gv_div _mm256_div_ps
#define gv_fma _mm256_fmadd_ps
#define gv_fnma _mm256_fnmadd_ps
#define gv_min _mm256_min_ps
#define gv_max _mm256_max_ps
#define gv_gt(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define gv_ge(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define gv_sel(m, t, f) _mm256_blendv_ps(f, t, m)
#define gv_abs(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)
#define gv_or _mm256_or_ps
#define gv_and _mm256_and_ps
static inline gg_v gv_scale(gg_v p, gg_v fn, gg_v t, gg_v shifter) {
  (void)fn;
  __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(shifter));
  __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1), b = _mm256_set1_epi32(127);
  gg_v s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23));
  gg_v s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}
#endif

#ifdef GG_RV
/*
 * exp(x) for the x that σ and tanh pass it, gg_expf's steps (see gg_math.h) with the polynomial in fused multiply-adds:
 * σ's −|x| is never above 0 and tanh's 2|x| never below, so each needs only one of exp's two clamps, and it is written
 * with x as the second operand of the min or max, which the instruction returns when it is a NaN: a NaN goes through
 * the clamp and every later step as a NaN (the scaling by 2^n included), so no compare and select restores it at the
 * end. The values are those of the two clamps and the restoring select, bit for bit, but for the payloads of NaNs.
 */
static inline gg_v gv_exp_clamped(gg_v xc) {
  const gg_v shifter = gv_set(12582912.0f);
  gg_v t = gv_fma(xc, gv_set(1.44269504088896341f), shifter);
  gg_v fn = gv_sub(t, shifter);
  gg_v r = gv_fnma(fn, gv_set(0.693359375f), xc);
  r = gv_fnma(fn, gv_set(-2.12194440e-4f), r);
  gg_v z = gv_mul(r, r);
  gg_v p = gv_set(1.9875691500e-4f);
  p = gv_fma(p, r, gv_set(1.3981999507e-3f));
  p = gv_fma(p, r, gv_set(8.3334519073e-3f));
  p = gv_fma(p, r, gv_set(4.1665795894e-2f));
  p = gv_fma(p, r, gv_set(1.6666665459e-1f));
  p = gv_fma(p, r, gv_set(5.0000001201e-1f));
  p = gv_add(gv_fma(p, z, r), gv_set(1.0f));
  return gv_scale(p, fn, t, shifter);
}
/* exp(x) for x <= 0 (or NaN): only the lower clamp, −104. */
static inline gg_v gv_exp_nonpos(gg_v x) { return gv_exp_clamped(gv_max(gv_set(-104.0f), x)); }
/* exp(x) for x >= 0 (or NaN): only the upper clamp, 89 (exp(89) overflows to +Inf, as gg_expf's). */
static inline gg_v gv_exp_nonneg(gg_v x) { return gv_exp_clamped(gv_min(gv_set(89.0f), x)); }

/* σ(x) = e/(1 + e) or 1/(1 + e), e = exp(−|x|), as gg_sigmoidf; −|x| is x with its sign bit set (one OR). */
static inline gg_v gv_sigmoid(gg_v x) {
  gg_v e = gv_exp_nonpos(gv_or(x, gv_set(-0.0f)));
  gg_v d = gv_add(gv_set(1.0f), e);
  return gv_div(gv_sel(gv_ge(x, gv_set(0.0f)), gv_set(1.0f), e), d);
}

/*
 * tanh(x) as gg_tanhf: an odd polynomial below 0.625, 1 − 2/(e^{2|x|} + 1) above. The latter is never negative (nor
 * −0), so x's sign bit ORed into it is the reference's −value for x < 0 (one AND and one OR where a compare, a negation
 * and a select were; the lanes where x is −0 or a NaN take the polynomial).
 */
static inline gg_v gv_tanh(gg_v x) {
  gg_v ax = gv_abs(x);
  gg_v e = gv_exp_nonneg(gv_add(ax, ax));
  gg_v big = gv_sub(gv_set(1.0f), gv_div(gv_set(2.0f), gv_add(e, gv_set(1.0f))));
  big = gv_or(big, gv_and(x, gv_set(-0.0f)));
  gg_v z = gv_mul(x, x);
  gg_v p = gv_set(-5.70498872745e-3f);
  p = gv_fma(p, z, gv_set(2.06390887954e-2f));
  p = gv_fma(p, z, gv_set(-5.37397155531e-2f));
  p = gv_fma(p, z, gv_set(1.33314422036e-1f));
  p = gv_fma(p, z, gv_set(-3.33332819422e-1f));
  gg_v small = gv_fma(gv_mul(p, z), x, x);
  return gv_sel(gv_gt(ax, gv_set(0.625f)), big, small);
}
#endif

/*
 * The cells' work for gg_parallel_for, in the unit of its threshold (a matrix product's multiply-adds): what the
 * product would do in the time the cell takes, measured per value on the bench's 128×64 step (AVX-512, in the
 * training step, where the backward's reads come from far caches): ~170 for the LSTM forward (five σ/tanh per
 * value, ~30 µs), ~110 for the GRU's (three, ~19 µs), ~150 for either backward (~34 µs). So a step of the bench's
 * size is shared out over the pool's threads, except the GRU forward, just under the threshold. Every hidden unit's
 * row is computed whole by one thread, so the bits never depend on the thread count.
 */
#define GG_CELL_WORK(perValue, hidden, batch) ((double)(perValue) * (double)(hidden) * (double)(batch))

/* Hidden units per block of the transposes between a step's [hidden, batch] states and the output's [batch, hidden]. */
#define GG_YB 16

/*
 * The transposes between a step's states, [hidden, batch] (unit j's row a leading dimension apart), and the layer's
 * output [batch, hidden] (batch rows ldy apart), by tiles of units × batch lanes held in registers: 8 × 8 with AVX2
 * (AVX-512 machines included), 4 × 4 with wasm SIMD; the lanes and units past the last whole tile one by one. They
 * only move values (and the backward's one float32 add), so their order changes no bit.
 */
#if defined(__AVX2__)
#include <immintrin.h>
#define GG_TT 8
/* The 8 × 8 tile in r[0..7] transposed in place: r[k][l] becomes r[l][k]. */
static inline void tile_transpose(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
typedef __m256 gg_t;
#define gt_load(p) _mm256_loadu_ps(p)
#define gt_store(p, v) _mm256_storeu_ps(p, v)
#define gt_add(a, b) _mm256_add_ps(a, b)
#elif defined(__wasm_simd128__)
#define GG_TT 4
static inline void tile_transpose(v128_t r[4]) {
  v128_t t0 = wasm_i32x4_shuffle(r[0], r[1], 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r[0], r[1], 2, 6, 3, 7);
  v128_t t2 = wasm_i32x4_shuffle(r[2], r[3], 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r[2], r[3], 2, 6, 3, 7);
  r[0] = wasm_i64x2_shuffle(t0, t2, 0, 2), r[1] = wasm_i64x2_shuffle(t0, t2, 1, 3);
  r[2] = wasm_i64x2_shuffle(t1, t3, 0, 2), r[3] = wasm_i64x2_shuffle(t1, t3, 1, 3);
}
typedef v128_t gg_t;
#define gt_load(p) wasm_v128_load(p)
#define gt_store(p, v) wasm_v128_store(p, v)
#define gt_add(a, b) wasm_f32x4_add(a, b)
#endif

/* y[b·ldy + j] = h[j·ldh + b] for units [j0, j1) and lanes [0, B): the step's h into the layer's output. */
static void rows_to_output(const float *restrict h, gg_i ldh, float *restrict y, gg_i ldy, gg_i B, gg_i j0, gg_i j1) {
  gg_i j = j0;
#ifdef GG_TT
  for (; j + GG_TT <= j1; j += GG_TT) {
    gg_i b = 0;
    for (; b + GG_TT <= B; b += GG_TT) {
      gg_t r[GG_TT];
      for (int k = 0; k < GG_TT; k++) r[k] = gt_load(h + (j + k) * ldh + b);
      tile_transpose(r);
      for (int k = 0; k < GG_TT; k++) gt_store(y + (b + k) * ldy + j, r[k]);
    }
    for (; b < B; b++)
      for (gg_i k = 0; k < GG_TT; k++) y[b * ldy + j + k] = h[(j + k) * ldh + b];
  }
#endif
  for (gg_i b = 0; b < B; b++)
    for (gg_i k = j; k < j1; k++) y[b * ldy + k] = h[k * ldh + b];
}

/* dh[j·B + b] += dy[b·ldy + j] for units [j0, j1) and lanes [0, B): the gradient of the layer's output at this step
 * joins the one from the next step (a float32 add, as the reference). */
static void add_output_grad(float *restrict dh, const float *restrict dy, gg_i ldy, gg_i B, gg_i j0, gg_i j1) {
  gg_i j = j0;
#ifdef GG_TT
  for (; j + GG_TT <= j1; j += GG_TT) {
    gg_i b = 0;
    for (; b + GG_TT <= B; b += GG_TT) {
      gg_t r[GG_TT];
      for (int k = 0; k < GG_TT; k++) r[k] = gt_load(dy + (b + k) * ldy + j);
      tile_transpose(r);
      for (int k = 0; k < GG_TT; k++) gt_store(dh + (j + k) * B + b, gt_add(gt_load(dh + (j + k) * B + b), r[k]));
    }
    for (; b < B; b++)
      for (gg_i k = 0; k < GG_TT; k++) dh[(j + k) * B + b] += dy[b * ldy + j + k];
  }
#endif
  for (gg_i b = 0; b < B; b++)
    for (gg_i k = j; k < j1; k++) dh[k * B + b] += dy[b * ldy + k];
}

/* Asks for the lines of the output's columns [j0, j1) (B rows ldy apart; a block of GG_YB units is one line per
 * row), for writing (w = 1) or reading: each block of units asks for the next block's while it computes, since the
 * step's block of the output is cold (written or read once per step) and its rows are too far apart for the hardware
 * prefetchers. */
static inline void prefetch_cols(const float *y, gg_i ldy, gg_i B, gg_i j0, gg_i j1, int w) {
  for (gg_i b = 0; b < B; b++)
    for (gg_i j = j0; j < j1; j += 16) {
      if (w) __builtin_prefetch(y + b * ldy + j, 1, 3);
      else __builtin_prefetch(y + b * ldy + j, 0, 3);
    }
}

/* Hidden units [lo, hi) of one step, forward. */
typedef struct {
  const float *p;
  gg_i ldp;
  const float *cPrev;
  float *act, *c, *tc, *h, *y;
  gg_i ldh, ldy, hidden, batch;
} lstm_args;

/* y[b] = σ(x[b]) or tanh(x[b]) over one row: plain loops over restrict pointers, so that they vectorize. */
static void lstm_sigmoid_row(const float *restrict x, float *restrict y, gg_i B) {
  for (gg_i b = 0; b < B; b++) y[b] = gg_sigmoidf(x[b]);
}
static void lstm_tanh_row(const float *restrict x, float *restrict y, gg_i B) {
  for (gg_i b = 0; b < B; b++) y[b] = gg_tanhf(x[b]);
}
static void tanh_row_in_place(float *x, gg_i B) {
  for (gg_i b = 0; b < B; b++) x[b] = gg_tanhf(x[b]);
}

/* One hidden unit's row of the LSTM forward over the batch: gates, c and h (the scalar loops). */
static void lstm_row_scalar(const float *p, gg_i ldp, const float *restrict cp, float *restrict i, float *restrict f,
                            float *restrict g, float *restrict o, float *restrict c, float *restrict tc,
                            float *restrict h, gg_i H, gg_i b0, gg_i B) {
  lstm_sigmoid_row(p + b0, i + b0, B - b0);
  lstm_sigmoid_row(p + H * ldp + b0, f + b0, B - b0);
  lstm_tanh_row(p + 2 * H * ldp + b0, g + b0, B - b0);
  lstm_sigmoid_row(p + 3 * H * ldp + b0, o + b0, B - b0);
  for (gg_i b = b0; b < B; b++) {
    float fc = f[b] * cp[b];
    float ig = i[b] * g[b];
    c[b] = fc + ig;
  }
  lstm_tanh_row(c + b0, tc + b0, B - b0);
  for (gg_i b = b0; b < B; b++) h[b] = o[b] * tc[b];
}

static void lstm_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const lstm_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B, ldp = a->ldp;
  prefetch_cols(a->y, a->ldy, B, lo, lo + GG_YB < hi ? lo + GG_YB : hi, 1);
  for (gg_i j0 = lo; j0 < hi; j0 += GG_YB) {
    gg_i j1 = j0 + GG_YB < hi ? j0 + GG_YB : hi, j2 = j1 + GG_YB < hi ? j1 + GG_YB : hi;
    prefetch_cols(a->y, a->ldy, B, j1, j2, 1);
    for (gg_i j = j0; j < j1; j++) {
      gg_i e0 = j * B;
      float *i = a->act + e0, *f = a->act + n + e0, *g = a->act + 2 * n + e0, *o = a->act + 3 * n + e0;
      const float *p = a->p + j * ldp, *cp = a->cPrev + e0;
      float *c = a->c + e0, *tc = a->tc + e0, *h = a->h + j * a->ldh;
      gg_i b = 0;
#ifdef GG_RV
      /* one pass over whole vectors: c = f·c_prev + i·g and h = o·tanh(c), products and sum unfused as the reference */
      for (; b + GG_RV <= B; b += GG_RV) {
        gg_v iv = gv_sigmoid(gv_load(p + b)), fv = gv_sigmoid(gv_load(p + H * ldp + b));
        gg_v gv = gv_tanh(gv_load(p + 2 * H * ldp + b)), ov = gv_sigmoid(gv_load(p + 3 * H * ldp + b));
        gg_v cv = gv_add(gv_mul(fv, gv_load(cp + b)), gv_mul(iv, gv));
        gg_v tv = gv_tanh(cv);
        gv_store(i + b, iv), gv_store(f + b, fv), gv_store(g + b, gv), gv_store(o + b, ov);
        gv_store(c + b, cv), gv_store(tc + b, tv), gv_store(h + b, gv_mul(ov, tv));
      }
#endif
      if (b < B) lstm_row_scalar(p, ldp, cp, i, f, g, o, c, tc, h, H, b, B);
    }
    rows_to_output(a->h, a->ldh, a->y, a->ldy, B, j0, j1);
  }
}

GG_API void gg_lstm_cell(const float *p, gg_i pOff, gg_i ldp, const float *cPrev, float *act, float *c, float *tc,
                         float *h, gg_i hOff, gg_i ldh, float *y, gg_i yOff, gg_i ldy, gg_i hidden, gg_i batch) {
  lstm_args a = {p + pOff, ldp, cPrev, act, c, tc, h + hOff, y + yOff, ldh, ldy, hidden, batch};
  gg_parallel_for(lstm_range, &a, hidden, GG_YB, GG_CELL_WORK(170, hidden, batch));
}

/* Hidden units [lo, hi) of one step, backward. */
typedef struct {
  const float *act, *cPrev, *tc, *dy, *dc;
  gg_i ldy;
  float *dh, *dG;
  gg_i ldg;
  float *dcPrev;
  gg_i hidden, batch;
#if !defined(__wasm__)
  float *dGc; /* or NULL: the step's dG also as [4·hidden][batch], rows batch apart (gg_lstm_cell_grad_c) */
#endif
} lstm_grad_args;

/* One hidden unit's row of the LSTM backward over the batch: restrict pointers, so that the loop vectorizes. */
static inline __attribute__((always_inline)) void lstm_grad_row_c(
    const float *restrict i, const float *restrict f, const float *restrict g, const float *restrict o,
    const float *restrict tc, const float *restrict dh, const float *restrict dc, const float *restrict cp,
    float *restrict gi, float *restrict gf, float *restrict gg, float *restrict go, float *restrict dcp, gg_i B,
    float *restrict ci, float *restrict cf, float *restrict cg, float *restrict co, const int copy) {
  for (gg_i b = 0; b < B; b++) {
    double iv = i[b], fv = f[b], gv = g[b], ov = o[b], t = tc[b];
    float d = dh[b];
    /* through h = o·tanh(c) */
    float s1 = d * tc[b];
    go[b] = (float)((double)s1 * (ov * (1.0 - ov)));
    float s2 = (float)((double)(d * o[b]) * (1.0 - t * t));
    float dct = dc[b] + s2;
    /* through c = f·cPrev + i·g */
    gi[b] = (float)((double)(dct * g[b]) * (iv * (1.0 - iv)));
    gf[b] = (float)((double)(dct * cp[b]) * (fv * (1.0 - fv)));
    gg[b] = (float)((double)(dct * i[b]) * (1.0 - gv * gv));
    if (copy) co[b] = go[b], ci[b] = gi[b], cf[b] = gf[b], cg[b] = gg[b]; /* (gg_lstm_cell_grad_c's block) */
    dcp[b] = dct * f[b];
  }
}
static void lstm_grad_row(const float *restrict i, const float *restrict f, const float *restrict g,
                          const float *restrict o, const float *restrict tc, const float *restrict dh,
                          const float *restrict dc, const float *restrict cp, float *restrict gi, float *restrict gf,
                          float *restrict gg, float *restrict go, float *restrict dcp, gg_i B) {
  lstm_grad_row_c(i, f, g, o, tc, dh, dc, cp, gi, gf, gg, go, dcp, B, NULL, NULL, NULL, NULL, 0);
}
#if !defined(__wasm__)
static void lstm_grad_row_copy(const float *restrict i, const float *restrict f, const float *restrict g,
                               const float *restrict o, const float *restrict tc, const float *restrict dh,
                               const float *restrict dc, const float *restrict cp, float *restrict gi,
                               float *restrict gf, float *restrict gg, float *restrict go, float *restrict dcp, gg_i B,
                               float *restrict ci, float *restrict cf, float *restrict cg, float *restrict co) {
  lstm_grad_row_c(i, f, g, o, tc, dh, dc, cp, gi, gf, gg, go, dcp, B, ci, cf, cg, co, 1);
}
#endif

static void lstm_grad_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const lstm_grad_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B, ldg = a->ldg;
  prefetch_cols(a->dy, a->ldy, B, lo, lo + GG_YB < hi ? lo + GG_YB : hi, 0);
  for (gg_i j0 = lo; j0 < hi; j0 += GG_YB) {
    gg_i j1 = j0 + GG_YB < hi ? j0 + GG_YB : hi, j2 = j1 + GG_YB < hi ? j1 + GG_YB : hi;
    prefetch_cols(a->dy, a->ldy, B, j1, j2, 0);
    add_output_grad(a->dh, a->dy, a->ldy, B, j0, j1);
    for (gg_i j = j0; j < j1; j++) {
      gg_i e0 = j * B;
#if !defined(__wasm__)
      if (a->dGc) {
        float *c0 = a->dGc + j * B;
        lstm_grad_row_copy(a->act + e0, a->act + n + e0, a->act + 2 * n + e0, a->act + 3 * n + e0, a->tc + e0,
                           a->dh + e0, a->dc + e0, a->cPrev + e0, a->dG + j * ldg, a->dG + (H + j) * ldg,
                           a->dG + (2 * H + j) * ldg, a->dG + (3 * H + j) * ldg, a->dcPrev + e0, B, c0, c0 + n,
                           c0 + 2 * n, c0 + 3 * n);
        continue;
      }
#endif
      lstm_grad_row(a->act + e0, a->act + n + e0, a->act + 2 * n + e0, a->act + 3 * n + e0, a->tc + e0, a->dh + e0,
                    a->dc + e0, a->cPrev + e0, a->dG + j * ldg, a->dG + (H + j) * ldg, a->dG + (2 * H + j) * ldg,
                    a->dG + (3 * H + j) * ldg, a->dcPrev + e0, B);
    }
  }
}

GG_API void gg_lstm_cell_grad(const float *act, const float *cPrev, const float *tc, float *dh, const float *dy,
                              gg_i dyOff, gg_i ldy, const float *dc, float *dG, gg_i dOff, gg_i ldg, float *dcPrev,
                              gg_i hidden, gg_i batch) {
  lstm_grad_args a = {act, cPrev, tc, dy + dyOff, dc, ldy, dh, dG + dOff, ldg, dcPrev, hidden, batch
#if !defined(__wasm__)
                      , NULL
#endif
  };
  gg_parallel_for(lstm_grad_range, &a, hidden, GG_YB, GG_CELL_WORK(150, hidden, batch));
}

#if !defined(__wasm__)
/* gg_lstm_cell_grad, the step's dG also written into dGc [4·hidden][batch] (gg_lstm_seq_grad's product reads it there,
 * rows of batch floats, where its sgemm takes B as stored: no packing pass over dG's rows, a sequence's length apart). */
void gg_lstm_cell_grad_c(const float *act, const float *cPrev, const float *tc, float *dh, const float *dy, gg_i dyOff,
                         gg_i ldy, const float *dc, float *dG, gg_i dOff, gg_i ldg, float *dcPrev, gg_i hidden,
                         gg_i batch, float *dGc) {
  lstm_grad_args a = {act, cPrev, tc, dy + dyOff, dc, ldy, dh, dG + dOff, ldg, dcPrev, hidden, batch, dGc};
  gg_parallel_for(lstm_grad_range, &a, hidden, GG_YB, GG_CELL_WORK(150, hidden, batch));
}
#endif

/* Hidden units [lo, hi) of one GRU step, forward. */
typedef struct {
  const float *p;
  gg_i ldp;
  const float *hn, *hPrev;
  float *h, *act, *y;
  gg_i ldh, ldy, hidden, batch;
} gru_args;

/* The GRU forward's scalar loops over a row's lanes [b0, B). */
static void gru_row_tail(const float *restrict pr, const float *restrict pz, const float *restrict pn,
                         const float *restrict hn, const float *restrict hp, float *restrict r, float *restrict z,
                         float *restrict nn, float *restrict h, gg_i b0, gg_i B) {
  lstm_sigmoid_row(pr + b0, r + b0, B - b0);
  lstm_sigmoid_row(pz + b0, z + b0, B - b0);
  for (gg_i b = b0; b < B; b++) nn[b] = pn[b] + r[b] * hn[b];
  tanh_row_in_place(nn + b0, B - b0);
  for (gg_i b = b0; b < B; b++) {
    float d = hp[b] - nn[b];
    float zd = z[b] * d;
    h[b] = zd + nn[b];
  }
}

static void gru_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const gru_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B, ldp = a->ldp;
  prefetch_cols(a->y, a->ldy, B, lo, lo + GG_YB < hi ? lo + GG_YB : hi, 1);
  for (gg_i j0 = lo; j0 < hi; j0 += GG_YB) {
    gg_i j1 = j0 + GG_YB < hi ? j0 + GG_YB : hi, j2 = j1 + GG_YB < hi ? j1 + GG_YB : hi;
    prefetch_cols(a->y, a->ldy, B, j1, j2, 1);
    for (gg_i j = j0; j < j1; j++) {
      gg_i e0 = j * B;
      float *restrict r = a->act + e0, *restrict z = a->act + n + e0, *restrict nn = a->act + 2 * n + e0;
      const float *restrict pr = a->p + j * ldp, *restrict pz = a->p + (H + j) * ldp;
      const float *restrict pn = a->p + (2 * H + j) * ldp, *restrict hn = a->hn + e0;
      const float *restrict hp = a->hPrev + j * a->ldh;
      float *restrict h = a->h + j * a->ldh;
      gg_i b0 = 0;
#ifdef GG_RV
      /* one pass over whole vectors; n's pre-activation and h's update unfused, as the reference */
      for (; b0 + GG_RV <= B; b0 += GG_RV) {
        gg_v rv = gv_sigmoid(gv_load(pr + b0)), zv = gv_sigmoid(gv_load(pz + b0));
        gg_v nv = gv_tanh(gv_add(gv_load(pn + b0), gv_mul(rv, gv_load(hn + b0))));
        gg_v d = gv_sub(gv_load(hp + b0), nv);
        gv_store(r + b0, rv), gv_store(z + b0, zv), gv_store(nn + b0, nv);
        gv_store(h + b0, gv_add(gv_mul(zv, d), nv));
      }
#endif
      if (b0 < B) gru_row_tail(pr, pz, pn, hn, hp, r, z, nn, h, b0, B);
    }
    rows_to_output(a->h, a->ldh, a->y, a->ldy, B, j0, j1);
  }
}

GG_API void gg_gru_cell(const float *p, gg_i pOff, gg_i ldp, const float *hn, const float *hPrev, gg_i hpOff,
                        float *h, gg_i hOff, gg_i ldh, float *y, gg_i yOff, gg_i ldy, float *act, gg_i hidden,
                        gg_i batch) {
  gru_args a = {p + pOff, ldp, hn, hPrev + hpOff, h + hOff, act, y + yOff, ldh, ldy, hidden, batch};
  gg_parallel_for(gru_range, &a, hidden, GG_YB, GG_CELL_WORK(110, hidden, batch));
}

/* Hidden units [lo, hi) of one GRU step, backward. */
typedef struct {
  const float *act, *hn, *hPrev, *dy;
  gg_i ldy, ldh;
  float *dh, *dG;
  gg_i ldg;
  float *dhPrev;
  gg_i hidden, batch;
} gru_grad_args;

/* One hidden unit's row of the GRU backward over the batch (restrict pointers: the loop vectorizes). */
static void gru_grad_row(const float *restrict r, const float *restrict z, const float *restrict nn,
                         const float *restrict hn, const float *restrict dh, const float *restrict hp,
                         float *restrict dr, float *restrict dz, float *restrict dn, float *restrict dhn,
                         float *restrict dhp, gg_i B) {
  for (gg_i b = 0; b < B; b++) {
    double rv = r[b], zv = z[b], nv = nn[b];
    float d = dh[b];
    /* through h = z·(h_prev − nn) + nn */
    float diff = hp[b] - nn[b];
    dz[b] = (float)((double)(d * diff) * (zv * (1.0 - zv)));
    float direct = d * z[b];
    dhp[b] = direct;
    float dnv = (float)((double)(d - direct) * (1.0 - nv * nv));
    dn[b] = dnv;
    /* through n's pre-activation n_in + r·hn */
    dhn[b] = dnv * r[b];
    dr[b] = (float)((double)(dnv * hn[b]) * (rv * (1.0 - rv)));
  }
}

static void gru_grad_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const gru_grad_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B, ldg = a->ldg;
  prefetch_cols(a->dy, a->ldy, B, lo, lo + GG_YB < hi ? lo + GG_YB : hi, 0);
  for (gg_i j0 = lo; j0 < hi; j0 += GG_YB) {
    gg_i j1 = j0 + GG_YB < hi ? j0 + GG_YB : hi, j2 = j1 + GG_YB < hi ? j1 + GG_YB : hi;
    prefetch_cols(a->dy, a->ldy, B, j1, j2, 0);
    add_output_grad(a->dh, a->dy, a->ldy, B, j0, j1);
    for (gg_i j = j0; j < j1; j++) {
      gg_i e0 = j * B;
      gru_grad_row(a->act + e0, a->act + n + e0, a->act + 2 * n + e0, a->hn + e0, a->dh + e0, a->hPrev + j * a->ldh,
                   a->dG + j * ldg, a->dG + (H + j) * ldg, a->dG + (2 * H + j) * ldg, a->dG + (3 * H + j) * ldg,
                   a->dhPrev + e0, B);
    }
  }
}

GG_API void gg_gru_cell_grad(const float *act, const float *hn, const float *hPrev, gg_i hpOff, gg_i ldh, float *dh,
                             const float *dy, gg_i dyOff, gg_i ldy, float *dG, gg_i dOff, gg_i ldg, float *dhPrev,
                             gg_i hidden, gg_i batch) {
  gru_grad_args a = {act, hn, hPrev + hpOff, dy + dyOff, ldy, ldh, dh, dG + dOff, ldg, dhPrev, hidden, batch};
  gg_parallel_for(gru_grad_range, &a, hidden, GG_YB, GG_CELL_WORK(150, hidden, batch));
}
