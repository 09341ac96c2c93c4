/*
 * kernels.c: the hot kernels of the native and wasm backends, in portable C with no libc (see gg_math.h).
 *
 * Every kernel reproduces the reference in src/backend/js.ts, including its evaluation order and its float64
 * intermediates where it has them, so that results agree with it bit for bit wherever the arithmetic allows (the
 * transcendental functions differ by an ulp or two). The loops are plain so that gcc (-O3 -march=native) and clang
 * (-msimd128) vectorize them; the build turns off floating-point contraction so that no FMA changes a rounding.
 */
#include "kernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "gg_math.h"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
/*
 * Hand-written SIMD128 loops for the kernels that compute in float64 and store float32. LLVM 14 vectorizes them but
 * scalarizes the f64x2 -> f32 demotion (four extract/demote/replace per vector), which makes them several times
 * slower than these; the arithmetic and its order are the same, so the results are identical.
 */
static inline v128_t gg_f64_lo(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
static inline v128_t gg_f64_hi(v128_t v) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3)); }
static inline v128_t gg_f32_pack(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}
#endif

/* ------------------------------------------------------------------------------------------------ basic copies */

GG_API void gg_fill(float *out, double value, gg_i n) {
  float v = (float)value;
  for (gg_i i = 0; i < n; i++) out[i] = v;
}

GG_API void gg_copy(const float *src, gg_i sOff, float *dst, gg_i dOff, gg_i n) {
  /* memmove, as TypedArray.set copies correctly between overlapping ranges of one buffer. In wasm this becomes a
   * memory.copy instruction (bulk memory), natively a libc call. */
  if (n > 0) __builtin_memmove(dst + dOff, src + sOff, (size_t)n * sizeof(float));
}

GG_API void gg_copy_blocks(const float *src, gg_i sOff, gg_i sStride, float *dst, gg_i dOff, gg_i dStride, gg_i len,
                           gg_i nBlocks, int accumulate) {
  if (len <= 0) return;
  for (gg_i blk = 0; blk < nBlocks; blk++) {
    const float *s = src + sOff + blk * sStride;
    float *d = dst + dOff + blk * dStride;
    if (accumulate) {
      for (gg_i i = 0; i < len; i++) d[i] += s[i];
    } else {
      __builtin_memmove(d, s, (size_t)len * sizeof(float));
    }
  }
}

GG_API void gg_axpy(double alpha, const float *x, float *y, gg_i n) {
  /* float64 product and sum, rounded once, as the reference. With alpha = ±1 that is float addition or subtraction:
   * rounding the exact sum of two floats to float64 (53 bits >= 2·24 + 2) and then to float32 gives the correctly
   * rounded float32 sum, so float32 arithmetic gives the same bits, twice as wide (gradient accumulation and applying
   * updates both come here with alpha = 1). */
  gg_i i = 0;
  if (alpha == 1.0 || alpha == -1.0) {
    const float s = (float)alpha;
#if defined(__wasm_simd128__)
    if (s > 0)
      for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i), wasm_v128_load(x + i)));
    else
      for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, wasm_f32x4_sub(wasm_v128_load(y + i), wasm_v128_load(x + i)));
#endif
    for (; i < n; i++) y[i] = s > 0 ? y[i] + x[i] : y[i] - x[i];
    return;
  }
#if defined(__wasm_simd128__)
  v128_t va = wasm_f64x2_splat(alpha);
  for (; i + 4 <= n; i += 4) {
    v128_t xv = wasm_v128_load(x + i), yv = wasm_v128_load(y + i);
    v128_t lo = wasm_f64x2_add(gg_f64_lo(yv), wasm_f64x2_mul(va, gg_f64_lo(xv)));
    v128_t hi = wasm_f64x2_add(gg_f64_hi(yv), wasm_f64x2_mul(va, gg_f64_hi(xv)));
    wasm_v128_store(y + i, gg_f32_pack(lo, hi));
  }
#endif
  for (; i < n; i++) y[i] = (float)((double)y[i] + alpha * (double)x[i]);
}

/* y += alpha·x as gg_axpy (float64 product and sum, rounded once), and the sums of squares of the new y (returned)
 * and of x (xss[0]) in float64: one pass where applying an update and then measuring the weights and the update would
 * take three. */
GG_API double gg_axpy_sum_squares(double alpha, const float *x, float *y, gg_i n, double *xss) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  double xacc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i i = 0;
#if defined(__wasm_simd128__)
  /* four values a turn, two float64 lanes per sum and half; alpha = 1 adds in float32 (the same bits, see gg_axpy) */
  v128_t sy0 = wasm_f64x2_splat(0.0), sy1 = sy0, sx0 = sy0, sx1 = sy0, va2 = wasm_f64x2_splat(alpha);
  for (; i + 4 <= n; i += 4) {
    v128_t xv = wasm_v128_load(x + i), yv = wasm_v128_load(y + i);
    v128_t xl = gg_f64_lo(xv), xh = gg_f64_hi(xv);
    v128_t r = alpha == 1.0 ? wasm_f32x4_add(yv, xv)
                            : gg_f32_pack(wasm_f64x2_add(gg_f64_lo(yv), wasm_f64x2_mul(va2, xl)),
                                          wasm_f64x2_add(gg_f64_hi(yv), wasm_f64x2_mul(va2, xh)));
    wasm_v128_store(y + i, r);
    v128_t rl = gg_f64_lo(r), rh = gg_f64_hi(r);
    sy0 = wasm_f64x2_add(sy0, wasm_f64x2_mul(rl, rl));
    sy1 = wasm_f64x2_add(sy1, wasm_f64x2_mul(rh, rh));
    sx0 = wasm_f64x2_add(sx0, wasm_f64x2_mul(xl, xl));
    sx1 = wasm_f64x2_add(sx1, wasm_f64x2_mul(xh, xh));
  }
  /* the lanes into the accumulators of the loop below (two float64 per store) */
  wasm_v128_store(acc, sy0);
  wasm_v128_store(acc + 2, sy1);
  wasm_v128_store(xacc, sx0);
  wasm_v128_store(xacc + 2, sx1);
#endif
#if defined(__AVX512F__)
  __m512d va = _mm512_set1_pd(alpha), s0 = _mm512_setzero_pd(), s1 = s0, t0 = s0, t1 = s0;
  if (alpha == 1.0) {
    /* Applying an update: y + x in float32 is the float64 sum rounded (see gg_axpy), so the new y has the same bits.
     * The squares go into float32 fused multiply-adds over blocks of 512 values (32 terms per lane, so a block's sum
     * is good to ~1e-6 relative, as gg_sum_squares natively), each block's sums then added in float64: half the
     * instructions of converting every value to float64, which is what bounds this loop. */
    for (; i + 512 <= n; i += 512) {
      __m512 ay0 = _mm512_setzero_ps(), ay1 = ay0, ax0 = ay0, ax1 = ay0;
      for (gg_i j = i; j < i + 512; j += 32) {
        __m512 x0 = _mm512_loadu_ps(x + j), x1 = _mm512_loadu_ps(x + j + 16);
        __m512 y0 = _mm512_add_ps(_mm512_loadu_ps(y + j), x0), y1 = _mm512_add_ps(_mm512_loadu_ps(y + j + 16), x1);
        _mm512_storeu_ps(y + j, y0);
        _mm512_storeu_ps(y + j + 16, y1);
        ay0 = _mm512_fmadd_ps(y0, y0, ay0);
        ay1 = _mm512_fmadd_ps(y1, y1, ay1);
        ax0 = _mm512_fmadd_ps(x0, x0, ax0);
        ax1 = _mm512_fmadd_ps(x1, x1, ax1);
      }
      __m512 ay = _mm512_add_ps(ay0, ay1), ax = _mm512_add_ps(ax0, ax1);
      s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(ay)));
      s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ay), 1))));
      t0 = _mm512_add_pd(t0, _mm512_cvtps_pd(_mm512_castps512_ps256(ax)));
      t1 = _mm512_add_pd(t1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ax), 1))));
    }
  }
  /* the same float64 arithmetic as the reference, eight lanes at a time, with two accumulators */
  for (; i + 16 <= n; i += 16) {
    __m512d x0 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), x1 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    __m512d y0 = _mm512_add_pd(_mm512_cvtps_pd(_mm256_loadu_ps(y + i)), _mm512_mul_pd(va, x0));
    __m512d y1 = _mm512_add_pd(_mm512_cvtps_pd(_mm256_loadu_ps(y + i + 8)), _mm512_mul_pd(va, x1));
    t0 = _mm512_add_pd(t0, _mm512_mul_pd(x0, x0));
    t1 = _mm512_add_pd(t1, _mm512_mul_pd(x1, x1));
    __m256 f0 = _mm512_cvtpd_ps(y0), f1 = _mm512_cvtpd_ps(y1);
    _mm256_storeu_ps(y + i, f0);
    _mm256_storeu_ps(y + i + 8, f1);
    __m512d r0 = _mm512_cvtps_pd(f0), r1 = _mm512_cvtps_pd(f1);
    s0 = _mm512_add_pd(s0, _mm512_mul_pd(r0, r0));
    s1 = _mm512_add_pd(s1, _mm512_mul_pd(r1, r1));
  }
  _mm512_storeu_pd(acc, _mm512_add_pd(s0, s1));
  _mm512_storeu_pd(xacc, _mm512_add_pd(t0, t1));
#endif
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; j++) {
      double xv = (double)x[i + j];
      float v = (float)((double)y[i + j] + alpha * xv);
      y[i + j] = v;
      acc[j] += (double)v * (double)v;
      xacc[j] += xv * xv;
    }
  }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  double t = ((xacc[0] + xacc[1]) + (xacc[2] + xacc[3])) + ((xacc[4] + xacc[5]) + (xacc[6] + xacc[7]));
  for (; i < n; i++) {
    double xv = (double)x[i];
    float v = (float)((double)y[i] + alpha * xv);
    y[i] = v;
    s += (double)v * (double)v;
    t += xv * xv;
  }
  xss[0] = t;
  return s;
}

/* ------------------------------------------------------------------------------------------------ unary ops */

GG_API int gg_unary_supported(int op) {
  switch (op) {
    case GG_NEG:
    case GG_EXP:
    case GG_LOG:
    case GG_SQRT:
    case GG_ABS:
    case GG_RELU:
    case GG_LEAKY_RELU:
    case GG_SIGMOID:
    case GG_TANH:
    case GG_CLAMP:
    case GG_AFFINE:
    case GG_SQUARE:
    case GG_RECIPROCAL:
    case GG_SIGN:
    case GG_SCALAR_DIV:
      return 1;
    default:
      /* Elu, Selu, Gelu, Softplus, PowScalar, ScalarPow need expm1/log1p/erf/pow: left to the JS kernel. */
      return 0;
  }
}

#define GG_MAP(EXPR)                  \
  for (gg_i i = 0; i < n; i++) {      \
    float v = x[i];                   \
    out[i] = (EXPR);                  \
  }                                   \
  return 1

static int unary_serial(int op, const float *x, float *out, gg_i n, double a, double b) {
  switch (op) {
    case GG_NEG:
      GG_MAP(-v);
    case GG_EXP:
      GG_MAP(gg_expf(v));
    case GG_LOG:
      GG_MAP(gg_logf(v));
    case GG_SQRT:
      GG_MAP(__builtin_sqrtf(v));
    case GG_ABS:
      GG_MAP(__builtin_fabsf(v));
    case GG_RELU:
      /* NaN stays NaN (as PyTorch); -0 and 0 give +0. A compare and a select, so that it vectorizes. */
      GG_MAP(v <= 0.0f ? 0.0f : v);
    case GG_LEAKY_RELU:
      /* NaN stays NaN: a·NaN is NaN. */
      GG_MAP(v > 0.0f ? v : (float)(a * (double)v));
    case GG_SIGMOID:
      GG_MAP(gg_sigmoidf(v));
    case GG_TANH:
      GG_MAP(gg_tanhf(v));
    case GG_CLAMP: {
      /* A NaN bound means "no bound". */
      double lo = a == a ? a : -GG_INF;
      double hi = b == b ? b : GG_INF;
      /* The reference applies the upper bound after the lower one, so min > max gives max (as PyTorch). */
      GG_MAP((float)((double)v < lo ? (lo > hi ? hi : lo) : ((double)v > hi ? hi : (double)v)));
    }
    case GG_AFFINE: {
      gg_i i0 = 0;
#if defined(__wasm_simd128__)
      v128_t va = wasm_f64x2_splat(a), vb = wasm_f64x2_splat(b);
      for (; i0 + 4 <= n; i0 += 4) {
        v128_t xv = wasm_v128_load(x + i0);
        v128_t lo = wasm_f64x2_add(wasm_f64x2_mul(va, gg_f64_lo(xv)), vb);
        v128_t hi = wasm_f64x2_add(wasm_f64x2_mul(va, gg_f64_hi(xv)), vb);
        wasm_v128_store(out + i0, gg_f32_pack(lo, hi));
      }
#endif
      for (gg_i i = i0; i < n; i++) out[i] = (float)(a * (double)x[i] + b);
      return 1;
    }
    case GG_SQUARE:
      GG_MAP(v * v);
    case GG_RECIPROCAL:
      GG_MAP(1.0f / v);
    case GG_SIGN:
      GG_MAP(v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : (v == 0.0f ? 0.0f : GG_NANF)));
    case GG_SCALAR_DIV:
      GG_MAP((float)(a / (double)v));
    default:
      return 0;
  }
}

/* gx = gy · f'(x), the product in float64 as in the reference. `xv`, `yv`, `g` are in scope. */
#define GG_DMAP(DERIV)                                        \
  for (gg_i i = 0; i < n; i++) {                              \
    double xv = (double)x[i];                                 \
    double yv = (double)y[i];                                 \
    double g = (double)gy[i];                                 \
    (void)xv;                                                 \
    (void)yv;                                                 \
    gx[i] = (float)(g * (DERIV));                             \
  }                                                           \
  return 1

static int unary_grad_serial(int op, const float *x, const float *y, const float *gy, float *gx, gg_i n, double a,
                             double b) {
  switch (op) {
    case GG_NEG:
      GG_DMAP(-1.0);
    case GG_EXP:
      GG_DMAP(yv);
    case GG_LOG:
      GG_DMAP(1.0 / xv);
    case GG_SQRT:
      GG_DMAP(0.5 / yv);
    case GG_ABS:
      GG_DMAP(xv > 0.0 ? 1.0 : (xv < 0.0 ? -1.0 : 0.0));
    case GG_RELU:
      /* Not gy·0: an infinite gy still gives 0 where x <= 0, as in the reference. */
      for (gg_i i = 0; i < n; i++) {
        float g = gy[i]; /* loaded unconditionally, so that the loop vectorizes */
        gx[i] = x[i] > 0.0f ? g : 0.0f;
      }
      return 1;
    case GG_LEAKY_RELU:
      GG_DMAP(xv > 0.0 ? 1.0 : a);
    case GG_SIGMOID:
      GG_DMAP(yv * (1.0 - yv));
    case GG_TANH:
      GG_DMAP(1.0 - yv * yv);
    case GG_CLAMP: {
      double lo = a == a ? a : -GG_INF;
      double hi = b == b ? b : GG_INF;
      GG_DMAP((xv < lo || xv > hi) ? 0.0 : 1.0);
    }
    case GG_AFFINE:
      GG_DMAP(a);
    case GG_SQUARE:
      GG_DMAP(2.0 * xv);
    case GG_RECIPROCAL:
      GG_DMAP(-yv * yv);
    case GG_SIGN:
      GG_DMAP(0.0);
    case GG_SCALAR_DIV:
      GG_DMAP(-yv / xv);
    default:
      return 0;
  }
}

/* Element by element, so any cut into ranges gives the same numbers: large tensors (a CNN's activations) are shared
 * out between threads where there are several (gg_parallel_for). */
typedef struct {
  int op;
  const float *x, *y, *gy;
  float *out;
  double a, b;
} unary_args;

static void unary_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const unary_args *u = p;
  unary_serial(u->op, u->x + lo, u->out + lo, hi - lo, u->a, u->b);
}

static void unary_grad_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const unary_args *u = p;
  unary_grad_serial(u->op, u->x + lo, u->y + lo, u->gy + lo, u->out + lo, hi - lo, u->a, u->b);
}

GG_API int gg_unary(int op, const float *x, float *out, gg_i n, double a, double b) {
  if (!gg_unary_supported(op)) return 0;
  unary_args u = {op, x, NULL, NULL, out, a, b};
  gg_parallel_for(unary_range, &u, n, 16, 8.0 * (double)n);
  return 1;
}

GG_API int gg_unary_grad(int op, const float *x, const float *y, const float *gy, float *gx, gg_i n, double a,
                         double b) {
  if (!gg_unary_supported(op)) return 0;
  unary_args u = {op, x, y, gy, gx, a, b};
  gg_parallel_for(unary_grad_range, &u, n, 16, 8.0 * (double)n);
  return 1;
}

/* ------------------------------------------------------------------------------------------------ binary ops */

/* One output row: o[i] = a[i·ia] op b[i·ib]. The unit-stride and broadcast-scalar cases get their own loops so that
 * they vectorize. */
#define GG_BINROW(NAME, EXPR)                                                            \
  static void NAME(const float *pa, const float *pb, float *po, gg_i n, gg_i ia, gg_i ib) { \
    if (ia == 1 && ib == 1) {                                                            \
      for (gg_i i = 0; i < n; i++) {                                                     \
        float x = pa[i], y = pb[i];                                                      \
        po[i] = (EXPR);                                                                  \
      }                                                                                  \
    } else if (ia == 1 && ib == 0) {                                                     \
      float y = pb[0];                                                                   \
      for (gg_i i = 0; i < n; i++) {                                                     \
        float x = pa[i];                                                                 \
        po[i] = (EXPR);                                                                  \
      }                                                                                  \
    } else if (ia == 0 && ib == 1) {                                                     \
      float x = pa[0];                                                                   \
      for (gg_i i = 0; i < n; i++) {                                                     \
        float y = pb[i];                                                                 \
        po[i] = (EXPR);                                                                  \
      }                                                                                  \
    } else {                                                                             \
      for (gg_i i = 0; i < n; i++) {                                                     \
        float x = pa[i * ia], y = pb[i * ib];                                            \
        po[i] = (EXPR);                                                                  \
      }                                                                                  \
    }                                                                                    \
  }

/* For float inputs, float +, -, ·, / round exactly as the reference's float64 operation rounded to float32. */
GG_BINROW(bin_add, x + y)
GG_BINROW(bin_sub, x - y)
GG_BINROW(bin_mul, x *y)
GG_BINROW(bin_div, x / y)
GG_BINROW(bin_max, (x != x || y != y) ? GG_NANF : (x > y ? x : y))
GG_BINROW(bin_min, (x != x || y != y) ? GG_NANF : (x < y ? x : y))

typedef void (*gg_binrow)(const float *, const float *, float *, gg_i, gg_i, gg_i);

GG_API int gg_binary(int op, const float *a, const float *b, float *out, int nd, const int32_t *shape,
                     const int32_t *aStrides, const int32_t *bStrides) {
  gg_binrow row;
  switch (op) {
    case GG_ADD:
      row = bin_add;
      break;
    case GG_SUB:
      row = bin_sub;
      break;
    case GG_MUL:
      row = bin_mul;
      break;
    case GG_DIV:
      row = bin_div;
      break;
    case GG_MAXIMUM:
      row = bin_max;
      break;
    case GG_MINIMUM:
      row = bin_min;
      break;
    default:
      return 0; /* Pow: needs powf; the caller's kernel does it. */
  }
  /* Collapse the iteration space: drop size-1 axes and merge neighbours that are contiguous in both inputs (the
   * output is always contiguous). Same-shape operands collapse to one axis, a bias add to two. */
  gg_i sh[GG_MAX_DIMS], sa[GG_MAX_DIMS], sb[GG_MAX_DIMS];
  int k = 0;
  for (int d = 0; d < nd; d++) {
    gg_i s = shape[d];
    if (s == 0) return 1;
    if (s == 1) continue;
    gg_i as = aStrides[d], bs = bStrides[d];
    if (k > 0 && sa[k - 1] == as * s && sb[k - 1] == bs * s) {
      sh[k - 1] *= s;
      sa[k - 1] = as;
      sb[k - 1] = bs;
    } else {
      sh[k] = s;
      sa[k] = as;
      sb[k] = bs;
      k++;
    }
  }
  if (k == 0) {
    row(a, b, out, 1, 0, 0);
    return 1;
  }
  gg_i inner = sh[k - 1], ia = sa[k - 1], ib = sb[k - 1];
  gg_i idx[GG_MAX_DIMS] = {0};
  gg_i outer = 1;
  for (int d = 0; d < k - 1; d++) outer *= sh[d];
  gg_i ao = 0, bo = 0;
  for (gg_i o = 0; o < outer; o++) {
    row(a + ao, b + bo, out + o * inner, inner, ia, ib);
    for (int d = k - 2; d >= 0; d--) {
      ao += sa[d];
      bo += sb[d];
      if (++idx[d] < sh[d]) break;
      ao -= sa[d] * sh[d];
      bo -= sb[d] * sh[d];
      idx[d] = 0;
    }
  }
  return 1;
}

/* ------------------------------------------------------------------------------------------------ reductions */

typedef struct {
  const float *x;
  float *out;
  gg_i mid, inner;
} sum_axis_args;

/* Outer rows [lo, hi): each sum is taken whole by one thread, in the same order. */
static void sum_axis_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const sum_axis_args *a = p;
  const float *x = a->x;
  float *out = a->out;
  const gg_i mid = a->mid, inner = a->inner;
  for (gg_i o = lo; o < hi; o++) {
    float *os = out + o * inner;
    if (inner == 1) {
      /* A contiguous run: float64 accumulation in eight lanes (element m goes to lane m mod 8), the lanes summed
       * pairwise, then the tail in order, rounded once; the reference does exactly this, so the sums agree bit for
       * bit, and eight independent chains keep the loop at memory speed. */
      const float *xs = x + o * mid;
      double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      gg_i m = 0;
#if defined(__wasm_simd128__)
      /* the same eight lanes, two float64 per register (LLVM does not vectorize the conversions for wasm) */
      v128_t a01 = wasm_f64x2_splat(0.0), a23 = a01, a45 = a01, a67 = a01;
      for (; m + 8 <= mid; m += 8) {
        v128_t u = wasm_v128_load(xs + m), w = wasm_v128_load(xs + m + 4);
        a01 = wasm_f64x2_add(a01, gg_f64_lo(u));
        a23 = wasm_f64x2_add(a23, gg_f64_hi(u));
        a45 = wasm_f64x2_add(a45, gg_f64_lo(w));
        a67 = wasm_f64x2_add(a67, gg_f64_hi(w));
      }
      wasm_v128_store(acc, a01);
      wasm_v128_store(acc + 2, a23);
      wasm_v128_store(acc + 4, a45);
      wasm_v128_store(acc + 6, a67);
#endif
      for (; m + 8 <= mid; m += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)xs[m + j];
      double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; m < mid; m++) s += (double)xs[m];
      os[0] = (float)s;
      continue;
    }
    /* float32 accumulation in the reference's order (starting from +0), so the sums agree bit for bit. */
    for (gg_i i = 0; i < inner; i++) os[i] = 0.0f;
    for (gg_i m = 0; m < mid; m++) {
      const float *xs = x + (o * mid + m) * inner;
      for (gg_i i = 0; i < inner; i++) os[i] += xs[i];
    }
  }
}

GG_API void gg_sum_axis(const float *x, float *out, gg_i outer, gg_i mid, gg_i inner) {
  sum_axis_args a = {x, out, mid, inner};
  gg_parallel_for(sum_axis_range, &a, outer, 1, 2.0 * (double)outer * (double)mid * (double)inner);
}

GG_API void gg_max_axis(const float *x, float *out, float *arg, gg_i outer, gg_i mid, gg_i inner) {
  for (gg_i o = 0; o < outer; o++) {
    float *os = out + o * inner;
    float *as = arg + o * inner;
    if (inner == 1) {
      const float *xs = x + o * mid;
      float best = -GG_INFF;
      gg_i bi = 0;
      for (gg_i m = 0; m < mid; m++) {
        float v = xs[m];
        if (v > best || v != v) {
          best = v;
          bi = m;
          if (v != v) break;
        }
      }
      os[0] = best;
      as[0] = (float)bi;
      continue;
    }
    /* Row by row, so that memory is read in order: once a running maximum is NaN it stays (the reference stops at
     * the first NaN). */
    for (gg_i i = 0; i < inner; i++) {
      os[i] = -GG_INFF;
      as[i] = 0.0f;
    }
    for (gg_i m = 0; m < mid; m++) {
      const float *xs = x + (o * mid + m) * inner;
      float fm = (float)m;
      for (gg_i i = 0; i < inner; i++) {
        float v = xs[i], cur = os[i];
        int take = cur == cur && (v > cur || v != v);
        os[i] = take ? v : cur;
        as[i] = take ? fm : as[i];
      }
    }
  }
}

static double sum_squares_serial(const float *x, gg_i n) {
  /* float64 accumulation in eight lanes, summed at the end: within ~1e-16 of the reference's sequential sum. The
   * wasm build spells the lanes out in SIMD (LLVM does not vectorize this); both builds add in the same order. The
   * SIMD builds first take blocks of 512 values in float32 (~1e-7 relative to the float64 sum), see below. */
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i i = 0;
#if defined(__wasm_simd128__)
  v128_t a01 = wasm_f64x2_splat(0.0), a23 = a01, a45 = a01, a67 = a01;
  /* Blocks of 512 values first, as the AVX-512 path below: float32 squares summed in 16 lanes (32 terms each, so a
   * block's sum is good to ~1e-6 relative), each block's lanes then added in float64. Converting every value to
   * float64 takes three times the instructions, which is what bounds this loop (the monitor and global-norm clipping
   * run it on every gradient every step). Multiply then add, never fused, so both wasm modules give the same bits. */
  for (; i + 512 <= n; i += 512) {
    v128_t f0 = wasm_f32x4_splat(0.0f), f1 = f0, f2 = f0, f3 = f0;
    for (gg_i j = i; j < i + 512; j += 16) {
      v128_t v0 = wasm_v128_load(x + j), v1 = wasm_v128_load(x + j + 4);
      v128_t v2 = wasm_v128_load(x + j + 8), v3 = wasm_v128_load(x + j + 12);
      f0 = wasm_f32x4_add(f0, wasm_f32x4_mul(v0, v0));
      f1 = wasm_f32x4_add(f1, wasm_f32x4_mul(v1, v1));
      f2 = wasm_f32x4_add(f2, wasm_f32x4_mul(v2, v2));
      f3 = wasm_f32x4_add(f3, wasm_f32x4_mul(v3, v3));
    }
    a01 = wasm_f64x2_add(a01, wasm_f64x2_add(gg_f64_lo(f0), gg_f64_lo(f2)));
    a23 = wasm_f64x2_add(a23, wasm_f64x2_add(gg_f64_hi(f0), gg_f64_hi(f2)));
    a45 = wasm_f64x2_add(a45, wasm_f64x2_add(gg_f64_lo(f1), gg_f64_lo(f3)));
    a67 = wasm_f64x2_add(a67, wasm_f64x2_add(gg_f64_hi(f1), gg_f64_hi(f3)));
  }
  for (; i + 8 <= n; i += 8) {
    v128_t u = wasm_v128_load(x + i), w = wasm_v128_load(x + i + 4);
    v128_t d;
    d = gg_f64_lo(u);
    a01 = wasm_f64x2_add(a01, wasm_f64x2_mul(d, d));
    d = gg_f64_hi(u);
    a23 = wasm_f64x2_add(a23, wasm_f64x2_mul(d, d));
    d = gg_f64_lo(w);
    a45 = wasm_f64x2_add(a45, wasm_f64x2_mul(d, d));
    d = gg_f64_hi(w);
    a67 = wasm_f64x2_add(a67, wasm_f64x2_mul(d, d));
  }
  wasm_v128_store(acc, a01);
  wasm_v128_store(acc + 2, a23);
  wasm_v128_store(acc + 4, a45);
  wasm_v128_store(acc + 6, a67);
#endif
#if defined(__AVX512F__)
  /* Four independent registers of eight float64 lanes, 32 values per turn: one register alone waits on the add's
   * latency (the monitor and global-norm clipping call this on every parameter every step). The sum differs from
   * the eight-lane order of the loop below (and of wasm) only in float64 rounding, far below float32's. */
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  /* Blocks of 512 values first: float32 fused multiply-adds into 64 lanes (8 terms each, so a block's sum is good to
   * ~1e-6 relative), each block's sum then added in float64. Four times fewer instructions than converting every
   * value to float64, which is what bounds this loop on data in cache. */
  for (; i + 512 <= n; i += 512) {
    __m512 f0 = _mm512_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
    for (gg_i j = i; j < i + 512; j += 64) {
      __m512 v0 = _mm512_loadu_ps(x + j), v1 = _mm512_loadu_ps(x + j + 16);
      __m512 v2 = _mm512_loadu_ps(x + j + 32), v3 = _mm512_loadu_ps(x + j + 48);
      f0 = _mm512_fmadd_ps(v0, v0, f0);
      f1 = _mm512_fmadd_ps(v1, v1, f1);
      f2 = _mm512_fmadd_ps(v2, v2, f2);
      f3 = _mm512_fmadd_ps(v3, v3, f3);
    }
    __m512 f = _mm512_add_ps(_mm512_add_ps(f0, f1), _mm512_add_ps(f2, f3));
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1))));
  }
  for (; i + 32 <= n; i += 32) {
    __m512d v0 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
    __m512d v1 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
    __m512d v2 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16));
    __m512d v3 = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24));
    a0 = _mm512_add_pd(a0, _mm512_mul_pd(v0, v0));
    a1 = _mm512_add_pd(a1, _mm512_mul_pd(v1, v1));
    a2 = _mm512_add_pd(a2, _mm512_mul_pd(v2, v2));
    a3 = _mm512_add_pd(a3, _mm512_mul_pd(v3, v3));
  }
  _mm512_storeu_pd(acc, _mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
#endif
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; j++) {
      double v = (double)x[i + j];
      acc[j] += v * v;
    }
  }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

static double max_abs_serial(const float *x, gg_i n) {
  /* On the bits: for |x| the float order is the unsigned-integer order of (bits & 0x7fffffff), and every NaN lies
   * above +Inf (0x7f800000). So one integer max, which every compiler vectorizes (a float max with NaN does not),
   * gives the maximum, or NaN if there is one. */
  uint32_t m = 0;
  for (gg_i i = 0; i < n; i++) {
    uint32_t u = gg_asuint(x[i]) & 0x7fffffffu;
    m = u > m ? u : m;
  }
  return m > 0x7f800000u ? GG_NAN : (double)gg_asfloat(m);
}

static double count_non_finite_serial(const float *x, gg_i n) {
  gg_i c = 0;
  for (gg_i i = 0; i < n; i++) c += (gg_asuint(x[i]) & 0x7f800000u) == 0x7f800000u;
  return (double)c;
}

/*
 * Σx² and max |x| of one tensor in one pass over memory (the monitor reads every gradient for both): chunks of 4096
 * values, small enough to stay in L1 between the two kernels' loops. The sum is the chunks' sums added in order, so
 * its last bits may differ from gg_sum_squares' (both are float64 sums of float32 squares).
 */
#define SSMAX_CHUNK 4096
static void sum_squares_max_abs_serial(const float *x, gg_i n, double *ss, double *mx) {
  double s = 0.0, m = 0.0;
  int nan = 0;
  for (gg_i i = 0; i < n; i += SSMAX_CHUNK) {
    gg_i len = n - i < SSMAX_CHUNK ? n - i : SSMAX_CHUNK;
    s += sum_squares_serial(x + i, len);
    double c = max_abs_serial(x + i, len);
    if (c != c) nan = 1;
    else if (c > m) m = c;
  }
  *ss = s;
  *mx = nan ? GG_NAN : m;
}

/*
 * In wasm, large reductions are shared out between threads where there are several (the monitor and global-norm
 * clipping run them on every parameter every step). The sum of squares is taken over blocks, each as sum_squares_serial does, then
 * the blocks' sums in order: the blocks depend on n only, never on the thread count, so neither does the result (a
 * tensor of one block gives the serial bits). The maximum and the count are exact in any order. The blocks' results
 * live on the caller's stack, so concurrent callers (worker threads) do not share them.
 */
#define RED_BLOCK 16384
#define RED_MAX_BLOCKS 256
enum { RED_SUM_SQUARES, RED_MAX_ABS, RED_NON_FINITE, RED_SS_MAX };

/* One kind of reduction over x[0..n) on this thread; RED_SS_MAX returns Σx² and stores max |x| in *mx. */
static double reduce_serial(int kind, const float *x, gg_i n, double *mx) {
  double ss;
  switch (kind) {
    case RED_SUM_SQUARES:
      return sum_squares_serial(x, n);
    case RED_MAX_ABS:
      return max_abs_serial(x, n);
    case RED_NON_FINITE:
      return count_non_finite_serial(x, n);
    default:
      sum_squares_max_abs_serial(x, n, &ss, mx);
      return ss;
  }
}

#if defined(__wasm__)
typedef struct {
  const float *x;
  gg_i n, block;
  int kind;
  double *partials;
} red_args;

/* Blocks [lo, hi): partials[b], and for RED_SS_MAX the block's max |x| at partials[RED_MAX_BLOCKS + b]. */
static void red_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const red_args *a = p;
  for (gg_i b = lo; b < hi; b++) {
    gg_i start = b * a->block;
    gg_i len = a->n - start < a->block ? a->n - start : a->block;
    a->partials[b] = reduce_serial(a->kind, a->x + start, len, &a->partials[RED_MAX_BLOCKS + b]);
  }
}

/* The larger of two maxima of |x|, NaN if either is. */
static inline double max_nan(double a, double b) { return (a != a || b != b) ? GG_NAN : (b > a ? b : a); }
#endif

/* A reduction of kind `kind` (RED_SS_MAX also stores max |x| in *mx); `cost` per value decides whether to share
 * the blocks out. */
static double reduce(int kind, const float *x, gg_i n, double cost, double *mx) {
#if !defined(__wasm__)
  /* Natively one AVX-512 pass is as fast as handing a parameter-sized tensor to the pool and back (measured on the
   * monitor's reads of gradients, 200k floats): keep the serial sum, and its bits. */
  (void)cost;
  return reduce_serial(kind, x, n, mx);
#else
  if (n <= RED_BLOCK) return reduce_serial(kind, x, n, mx);
  gg_i block = RED_BLOCK;
  gg_i blocks = (n + block - 1) / block;
  if (blocks > RED_MAX_BLOCKS) {
    block = ((n + RED_MAX_BLOCKS - 1) / RED_MAX_BLOCKS + 15) / 16 * 16;
    blocks = (n + block - 1) / block;
  }
  double partials[2 * RED_MAX_BLOCKS];
  red_args a = {x, n, block, kind, partials};
  gg_parallel_for(red_range, &a, blocks, 1, cost * (double)n);
  double r = partials[0], m = partials[RED_MAX_BLOCKS];
  for (gg_i b = 1; b < blocks; b++) {
    r = kind == RED_MAX_ABS ? max_nan(r, partials[b]) : r + partials[b];
    if (kind == RED_SS_MAX) m = max_nan(m, partials[RED_MAX_BLOCKS + b]);
  }
  if (kind == RED_SS_MAX) *mx = m;
  return r;
#endif
}

GG_API double gg_sum_squares(const float *x, gg_i n) { return reduce(RED_SUM_SQUARES, x, n, 8.0, NULL); }
GG_API double gg_max_abs(const float *x, gg_i n) { return reduce(RED_MAX_ABS, x, n, 4.0, NULL); }
GG_API double gg_count_non_finite(const float *x, gg_i n) { return reduce(RED_NON_FINITE, x, n, 4.0, NULL); }
/* out[0] = Σx², out[1] = max |x| (NaN if x holds one), in one pass over memory. */
GG_API void gg_sum_squares_max_abs(const float *x, gg_i n, double *out) {
  out[0] = reduce(RED_SS_MAX, x, n, 10.0, &out[1]);
}

/* ------------------------------------------------------------------------------------------------ permute */

/* A permute, its axes collapsed (see gg_permute): `outer` blocks, each a rows×cols tile or a run of cols. */
typedef struct {
  const float *x;
  float *out;
  int outerDims, tiled;
  gg_i osh[GG_MAX_DIMS], ostr[GG_MAX_DIMS];
  gg_i rows, cols, cs;
} permute_plan;

/* Blocks [lo, hi) of the output: independent, so shared out between threads without changing a value. */
static void permute_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const permute_plan *pl = p;
  const gg_i rows = pl->rows, cols = pl->cols, cs = pl->cs;
  const int outerDims = pl->outerDims, tiled = pl->tiled;
  /* The input offset of block lo: its index in the mixed radix of the outer axes. */
  gg_i idx[GG_MAX_DIMS] = {0};
  gg_i off = 0, rest = lo;
  for (int d = outerDims - 1; d >= 0; d--) {
    idx[d] = rest % pl->osh[d];
    rest /= pl->osh[d];
    off += idx[d] * pl->ostr[d];
  }
  const float *x = pl->x;
  float *o = pl->out + lo * (tiled ? rows * cols : cols);
  for (gg_i q = lo; q < hi; q++) {
    const float *xb = x + off;
    if (tiled) {
      enum { T = 32 };
      for (gg_i r0 = 0; r0 < rows; r0 += T) {
        gg_i r1 = r0 + T < rows ? r0 + T : rows;
        for (gg_i c0 = 0; c0 < cols; c0 += T) {
          gg_i c1 = c0 + T < cols ? c0 + T : cols;
          for (gg_i r = r0; r < r1; r++)
            for (gg_i c = c0; c < c1; c++) o[r * cols + c] = xb[r + c * cs];
        }
      }
      o += rows * cols;
    } else if (cs == 1) {
      __builtin_memmove(o, xb, (size_t)cols * sizeof(float));
      o += cols;
    } else {
      for (gg_i c = 0; c < cols; c++) o[c] = xb[c * cs];
      o += cols;
    }
    for (int d = outerDims - 1; d >= 0; d--) {
      off += pl->ostr[d];
      if (++idx[d] < pl->osh[d]) break;
      off -= pl->ostr[d] * pl->osh[d];
      idx[d] = 0;
    }
  }
}

GG_API void gg_permute(const float *x, float *out, int nd, const int32_t *shape, const int32_t *perm) {
  gg_i istr[GG_MAX_DIMS], osh[GG_MAX_DIMS], ostr[GG_MAX_DIMS];
  gg_i total = 1;
  for (int d = nd - 1; d >= 0; d--) {
    istr[d] = total;
    total *= shape[d];
  }
  if (total == 0) return;
  /* Output axes in order with their input strides; drop size-1 axes, merge runs that stay contiguous. */
  int k = 0;
  for (int j = 0; j < nd; j++) {
    gg_i sz = shape[perm[j]], st = istr[perm[j]];
    if (sz == 1) continue;
    if (k > 0 && ostr[k - 1] == st * sz) {
      osh[k - 1] *= sz;
      ostr[k - 1] = st;
    } else {
      osh[k] = sz;
      ostr[k] = st;
      k++;
    }
  }
  if (k == 0) {
    out[0] = x[0];
    return;
  }
  if (k == 1) { /* the identity, after collapsing */
    __builtin_memmove(out, x, (size_t)total * sizeof(float));
    return;
  }
  /* A batch of 2-D transposes when the second-to-last output axis is the input's contiguous one (matrix transposes,
   * NCHW <-> NHWC): done in tiles so that both sides stay in cache. */
  permute_plan pl;
  pl.x = x;
  pl.out = out;
  pl.tiled = ostr[k - 2] == 1;
  pl.outerDims = pl.tiled ? k - 2 : k - 1;
  pl.rows = pl.tiled ? osh[k - 2] : 1;
  pl.cols = osh[k - 1];
  pl.cs = ostr[k - 1];
  gg_i outer = 1;
  for (int d = 0; d < pl.outerDims; d++) {
    pl.osh[d] = osh[d];
    pl.ostr[d] = ostr[d];
    outer *= osh[d];
  }
  gg_parallel_for(permute_range, &pl, outer, 1, 2.0 * (double)total);
}

/* ------------------------------------------------------------------------------------------------ softmax, loss */

GG_API void gg_softmax(const float *x, float *out, gg_i rows, gg_i cols, int log) {
  for (gg_i r = 0; r < rows; r++) {
    const float *xs = x + r * cols;
    float *os = out + r * cols;
    double mx = -GG_INF;
    for (gg_i c = 0; c < cols; c++)
      if ((double)xs[c] > mx) mx = xs[c];
    double s = 0.0;
    for (gg_i c = 0; c < cols; c++) s += gg_exp((double)xs[c] - mx);
    if (log) {
      double ls = gg_log(s) + mx;
      for (gg_i c = 0; c < cols; c++) os[c] = (float)((double)xs[c] - ls);
    } else {
      for (gg_i c = 0; c < cols; c++) os[c] = (float)(gg_exp((double)xs[c] - mx) / s);
    }
  }
}

GG_API void gg_softmax_grad(const float *y, const float *gy, float *gx, gg_i rows, gg_i cols, int log) {
  for (gg_i r = 0; r < rows; r++) {
    const float *ys = y + r * cols;
    const float *gs = gy + r * cols;
    float *xs = gx + r * cols;
    double s = 0.0;
    if (log) {
      for (gg_i c = 0; c < cols; c++) s += (double)gs[c];
      for (gg_i c = 0; c < cols; c++) xs[c] = (float)((double)gs[c] - gg_exp((double)ys[c]) * s);
    } else {
      for (gg_i c = 0; c < cols; c++) s += (double)gs[c] * (double)ys[c];
      for (gg_i c = 0; c < cols; c++) xs[c] = (float)((double)ys[c] * ((double)gs[c] - s));
    }
  }
}

GG_API void gg_cross_entropy(const float *x, const float *targets, float *probs, float *loss, gg_i rows, gg_i cols,
                             double smoothing, double ignoreIndex) {
  for (gg_i r = 0; r < rows; r++) {
    const float *xs = x + r * cols;
    float *ps = probs + r * cols;
    double mx = -GG_INF;
    for (gg_i c = 0; c < cols; c++)
      if ((double)xs[c] > mx) mx = xs[c];
    double s = 0.0;
    for (gg_i c = 0; c < cols; c++) {
      double e = gg_exp((double)xs[c] - mx);
      ps[c] = (float)e;
      s += e;
    }
    double lse = gg_log(s) + mx;
    double sumLogp = 0.0;
    for (gg_i c = 0; c < cols; c++) {
      ps[c] = (float)((double)ps[c] / s);
      sumLogp += (double)xs[c] - lse;
    }
    double t = (double)targets[r];
    if (t == ignoreIndex) {
      loss[r] = 0.0f;
      continue;
    }
    /* A target outside [0, cols) (callers validate, so this is defence only) gives NaN instead of reading another
     * row; the comparison also keeps NaN away from the float-to-int conversion, which traps in wasm. */
    if (!(t >= 0.0 && t < (double)cols)) {
      loss[r] = GG_NANF;
      continue;
    }
    gg_i ti = (gg_i)t;
    loss[r] = (float)(-(1.0 - smoothing) * ((double)xs[ti] - lse) - (smoothing / (double)cols) * sumLogp);
  }
}

GG_API void gg_cross_entropy_grad(const float *probs, const float *targets, const float *scale, float *gx, gg_i rows,
                                  gg_i cols, double smoothing, double ignoreIndex) {
  double off = smoothing / (double)cols;
  for (gg_i r = 0; r < rows; r++) {
    const float *ps = probs + r * cols;
    float *gs = gx + r * cols;
    double t = (double)targets[r];
    if (t == ignoreIndex) {
      for (gg_i c = 0; c < cols; c++) gs[c] = 0.0f;
      continue;
    }
    double sc = (double)scale[r];
    for (gg_i c = 0; c < cols; c++) gs[c] = (float)(sc * ((double)ps[c] - off));
    if (t >= 0.0 && t < (double)cols) {
      gg_i ti = (gg_i)t;
      gs[ti] = (float)((double)gs[ti] - sc * (1.0 - smoothing));
    }
  }
}

/* ------------------------------------------------------------------------------------------------ convolution */

/* The range [*lo, *hi) of output positions o in [0, on) whose input position o·s - p + off lies in [0, in). */
static void gg_valid_range(gg_i on, gg_i s, gg_i p, gg_i off, gg_i in, gg_i *lo, gg_i *hi) {
  gg_i first = p - off; /* need o·s >= first */
  gg_i a = first <= 0 ? 0 : (first + s - 1) / s;
  gg_i last = in - 1 + p - off; /* need o·s <= last */
  gg_i b = last < 0 ? 0 : last / s + 1;
  if (a > on) a = on;
  if (b > on) b = on;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

typedef struct {
  gg_i n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
} gg_conv;

static gg_conv gg_read_conv(const int32_t *g) {
  gg_conv r = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13]};
  return r;
}

/* One output row of length ow: d[i] = src[i] for i in [x0, x1), 0 elsewhere (the padding). src is indexed by the
 * output column, so src + i lies outside the input for the padded columns; those are never read. */
static inline void gg_im2col_row(float *d, const float *src, gg_i ow, gg_i x0, gg_i x1) {
#if defined(__AVX512F__)
  /* Masked loads read only the valid columns (masked-off lanes do not fault), masked stores write the row once. */
  for (gg_i i = 0; i < ow; i += 16) {
    gg_i lo = x0 - i, hi = x1 - i, n = ow - i;
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
    hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
    n = n > 16 ? 16 : n;
    __mmask16 valid = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
    __mmask16 m = (__mmask16)((1u << n) - 1);
    _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(valid, src + i));
  }
#else
  for (gg_i i = 0; i < x0; i++) d[i] = 0.0f;
  gg_i i = x0;
#if defined(__wasm_simd128__)
  /* rows are short (a conv's output width): spelled out, where LLVM's vectorized loop would first check overlap */
  for (; i + 4 <= x1; i += 4) wasm_v128_store(d + i, wasm_v128_load(src + i));
#endif
  for (; i < x1; i++) d[i] = src[i];
  for (gg_i i = x1; i < ow; i++) d[i] = 0.0f;
#endif
}

/* d[i] += src[i] for i in [x0, x1) (col2im's row; d and src indexed by the output column, as above). */
static inline void gg_col2im_row(float *d, const float *src, gg_i x0, gg_i x1) {
#if defined(__AVX512F__)
  for (gg_i i = x0; i < x1; i += 16) {
    gg_i n = x1 - i;
    __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, d + i), _mm512_maskz_loadu_ps(m, src + i));
    _mm512_mask_storeu_ps(d + i, m, v);
  }
#else
  gg_i i = x0;
#if defined(__wasm_simd128__)
  for (; i + 4 <= x1; i += 4) wasm_v128_store(d + i, wasm_f32x4_add(wasm_v128_load(d + i), wasm_v128_load(src + i)));
#endif
  for (; i < x1; i++) d[i] += src[i];
#endif
}

typedef struct {
  const float *in;
  float *out;
  gg_conv g;
} conv_args;

/* Rows [lo, hi) of cols, row (c·kh + ki)·kw + kj: each written whole by one thread. */
static void im2col_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const conv_args *a = p;
  const float *x = a->in;
  float *cols = a->out;
  const gg_conv g = a->g;
  gg_i L = g.n * g.oh * g.ow;
  gg_i plane = g.oh * g.ow;
  for (gg_i r = lo; r < hi; r++) {
    gg_i c = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh;
    {
      /* Output rows [y0, y1) read an input row; the others are padding. */
      gg_i y0, y1;
      gg_valid_range(g.oh, g.sh, g.ph, ki * g.dh, g.h, &y0, &y1);
      {
        gg_i kj = r % g.kw;
        float *rowBase = cols + ((c * g.kh + ki) * g.kw + kj) * L;
        gg_i x0, x1;
        gg_valid_range(g.ow, g.sw, g.pw, kj * g.dw, g.w, &x0, &x1);
        for (gg_i n = 0; n < g.n; n++) {
          const float *xb = x + (n * g.c + c) * g.h * g.w;
          float *cb = rowBase + n * plane;
          for (gg_i i = 0; i < y0 * g.ow; i++) cb[i] = 0.0f;
          for (gg_i i = y1 * g.ow; i < plane; i++) cb[i] = 0.0f;
          if (g.sw == 1 && x0 == 0 && x1 == g.ow && g.ow == g.w && g.sh == 1) {
            /* Whole rows, contiguous on both sides (1×1 kernels, "same" rows): one copy. */
            gg_i iy0 = y0 - g.ph + ki * g.dh;
            __builtin_memcpy(cb + y0 * g.ow, xb + iy0 * g.w - g.pw + kj * g.dw, (size_t)((y1 - y0) * g.ow) * sizeof(float));
            continue;
          }
          for (gg_i oy = y0; oy < y1; oy++) {
            gg_i iy = oy * g.sh - g.ph + ki * g.dh;
            float *cr = cb + oy * g.ow;
            gg_i xo = iy * g.w - g.pw + kj * g.dw; /* xb[xo + ox·sw] is the input for column ox */
            if (g.sw == 1) {
              gg_im2col_row(cr, xb + xo, g.ow, x0, x1);
              continue;
            }
            for (gg_i ox = 0; ox < x0; ox++) cr[ox] = 0.0f;
            for (gg_i ox = x0; ox < x1; ox++) cr[ox] = xb[xo + ox * g.sw];
            for (gg_i ox = x1; ox < g.ow; ox++) cr[ox] = 0.0f;
          }
        }
      }
    }
  }
}

GG_API void gg_im2col(const float *x, float *cols, const int32_t *geom) {
  conv_args a = {x, cols, gg_read_conv(geom)};
  gg_i rows = a.g.c * a.g.kh * a.g.kw;
  gg_parallel_for(im2col_range, &a, rows, 1, 2.0 * (double)rows * (double)(a.g.n * a.g.oh * a.g.ow));
}

/* Input planes [lo, hi) of dx, channel-major (t = c·N + n, so that consecutive planes read the same rows of cols,
 * one image further on): each summed whole by one thread in the reference's order. */
static void col2im_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const conv_args *a = p;
  const float *cols = a->in;
  float *dx = a->out;
  const gg_conv g = a->g;
  gg_i L = g.n * g.oh * g.ow;
  gg_i plane = g.oh * g.ow;
  gg_i hw = g.h * g.w;
  /* One input plane at a time (it stays in L1 while its kh·kw contributions are added), each position summing its
   * contributions in the reference's order (ki, then kj, then the output row); the rows are vectorized across
   * columns, which changes no element's order. */
#if defined(__AVX512F__)
  if (g.sh == 1 && g.sw == 1) {
    /* Stride 1: gathered instead of scattered. Each input row is summed in a register over the kernel positions in
     * the reference's order (ki, then kj), from +0, padded lanes adding +0 (exact: the sum starts at +0, so it is
     * never -0), and stored once. */
    /* Channel-major, so that the kernel positions' rows of cols are read as kh·kw sequential streams. */
    for (gg_i t = lo; t < hi; t++) {
      {
        gg_i c = t / g.n, n = t % g.n;
        float *xb = dx + (n * g.c + c) * hw;
        const float *pb = cols + c * g.kh * g.kw * L + n * plane;
        for (gg_i iy = 0; iy < g.h; iy++) {
          for (gg_i ix0 = 0; ix0 < g.w; ix0 += 16) {
            gg_i nl = g.w - ix0 < 16 ? g.w - ix0 : 16;
            __m512 acc = _mm512_setzero_ps();
            for (gg_i ki = 0; ki < g.kh; ki++) {
              gg_i oy = iy + g.ph - ki * g.dh;
              if (oy < 0 || oy >= g.oh) continue;
              for (gg_i kj = 0; kj < g.kw; kj++) {
                gg_i ox0 = ix0 + g.pw - kj * g.dw; /* the output column of lane 0 */
                gg_i lo = -ox0, hi = g.ow - ox0;
                lo = lo < 0 ? 0 : lo > nl ? nl : lo;
                hi = hi < 0 ? 0 : hi > nl ? nl : hi;
                if (hi <= lo) continue;
                __mmask16 m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
                const float *cr = pb + (ki * g.kw + kj) * L + oy * g.ow + ox0;
                acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, cr));
              }
            }
            _mm512_mask_storeu_ps(xb + iy * g.w + ix0, (__mmask16)((1u << nl) - 1), acc);
          }
        }
      }
    }
    return;
  }
#endif
  for (gg_i t = lo; t < hi; t++) {
    {
      gg_i c = t / g.n, n = t % g.n;
      float *xb = dx + (n * g.c + c) * hw;
      for (gg_i i = 0; i < hw; i++) xb[i] = 0.0f;
      for (gg_i ki = 0; ki < g.kh; ki++) {
        gg_i y0, y1;
        gg_valid_range(g.oh, g.sh, g.ph, ki * g.dh, g.h, &y0, &y1);
        for (gg_i kj = 0; kj < g.kw; kj++) {
          const float *cb = cols + ((c * g.kh + ki) * g.kw + kj) * L + n * plane;
          gg_i x0, x1;
          gg_valid_range(g.ow, g.sw, g.pw, kj * g.dw, g.w, &x0, &x1);
          for (gg_i oy = y0; oy < y1; oy++) {
            gg_i iy = oy * g.sh - g.ph + ki * g.dh;
            const float *cr = cb + oy * g.ow;
            gg_i xo = iy * g.w - g.pw + kj * g.dw;
            if (g.sw == 1) {
              gg_col2im_row(xb + xo, cr, x0, x1);
            } else {
              for (gg_i ox = x0; ox < x1; ox++) xb[xo + ox * g.sw] += cr[ox];
            }
          }
        }
      }
    }
  }
}

GG_API void gg_col2im(const float *cols, float *dx, const int32_t *geom) {
  conv_args a = {cols, dx, gg_read_conv(geom)};
  gg_i planes = a.g.c * a.g.n;
  gg_parallel_for(col2im_range, &a, planes, 1,
                  2.0 * (double)(a.g.c * a.g.kh * a.g.kw) * (double)(a.g.n * a.g.oh * a.g.ow));
}

/* ------------------------------------------------------------------------------------------------ pooling */

typedef struct {
  gg_i planes, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
} gg_pool;

static gg_pool gg_read_pool(const int32_t *g) {
  gg_pool r = {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10]};
  return r;
}

/* The window rows [*k0, *k1) of output position o that fall inside [0, n): no per-element bounds checks after. */
static void gg_pool_range(gg_i o, gg_i s, gg_i pad, gg_i k, gg_i n, gg_i *k0, gg_i *k1) {
  gg_i base = o * s - pad;
  *k0 = base < 0 ? -base : 0;
  *k1 = base + k > n ? n - base : k;
}

#if defined(__AVX512F__)
/* One output row of 2×2 max pooling, 16 outputs a step: even and odd columns split with permutes, the comparisons of
 * the scalar loop as masks (a tail of fewer than 16 uses masked loads and stores). */
static inline void gg_pool2_masks(gg_i n, __mmask16 *m, __mmask16 *lo, __mmask16 *hi) {
  *m = (__mmask16)((1u << n) - 1);
  *lo = 2 * n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (2 * n)) - 1);
  *hi = 2 * n >= 32 ? (__mmask16)0xFFFF : 2 * n > 16 ? (__mmask16)((1u << (2 * n - 16)) - 1) : (__mmask16)0;
}
/* The 2×2 windows of up to 16 outputs from x, position by position: a b (top row) over c d; `lo`, `hi` mask the
 * valid input columns of the two loads of each row. */
static inline void gg_pool2_windows512(const float *r0, const float *r1, __mmask16 lo, __mmask16 hi, __m512 *a,
                                       __m512 *b, __m512 *c, __m512 *d) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 x0 = _mm512_maskz_loadu_ps(lo, r0), x1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
  __m512 y0 = _mm512_maskz_loadu_ps(lo, r1), y1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
  *a = _mm512_permutex2var_ps(x0, ev, x1);
  *b = _mm512_permutex2var_ps(x0, od, x1);
  *c = _mm512_permutex2var_ps(y0, ev, y1);
  *d = _mm512_permutex2var_ps(y0, od, y1);
}
/* The lanes where v takes the window from best: v > best, or v is NaN. */
static inline __mmask16 gg_pool2_take512(__m512 v, __m512 best) {
  return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}
static void gg_pool2_row(const float *r0, const float *r1, float *o, gg_i ow) {
  for (gg_i ox = 0; ox < ow; ox += 16) {
    __mmask16 m, lo, hi;
    gg_pool2_masks(ow - ox < 16 ? ow - ox : 16, &m, &lo, &hi);
    __m512 a, b, c, d;
    gg_pool2_windows512(r0 + 2 * ox, r1 + 2 * ox, lo, hi, &a, &b, &c, &d);
    __m512 best = a;
    best = _mm512_mask_blend_ps(gg_pool2_take512(b, best), best, b);
    best = _mm512_mask_blend_ps(gg_pool2_take512(c, best), best, c);
    best = _mm512_mask_blend_ps(gg_pool2_take512(d, best), best, d);
    _mm512_mask_storeu_ps(o + ox, m, best);
  }
}
static void gg_pool2_row_grad(const float *r0, const float *r1, const float *gr, float *d0, float *d1, gg_i ow) {
  const __m512i il0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i il1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (gg_i ox = 0; ox < ow; ox += 16) {
    __mmask16 m, lo, hi;
    gg_pool2_masks(ow - ox < 16 ? ow - ox : 16, &m, &lo, &hi);
    __m512 a, b, c, d;
    gg_pool2_windows512(r0 + 2 * ox, r1 + 2 * ox, lo, hi, &a, &b, &c, &d);
    __m512 best = a;
    __mmask16 tb = gg_pool2_take512(b, best);
    best = _mm512_mask_blend_ps(tb, best, b);
    __mmask16 tc = gg_pool2_take512(c, best);
    best = _mm512_mask_blend_ps(tc, best, c);
    __mmask16 td = gg_pool2_take512(d, best);
    __mmask16 s3 = td, s2 = tc & ~td, s1 = tb & ~tc & ~td, s0 = ~(tb | tc | td);
    __m512 gv = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, gr + ox));
    __m512 ga = _mm512_maskz_mov_ps(s0, gv), gb = _mm512_maskz_mov_ps(s1, gv);
    __m512 gc = _mm512_maskz_mov_ps(s2, gv), gd = _mm512_maskz_mov_ps(s3, gv);
    _mm512_mask_storeu_ps(d0 + 2 * ox, lo, _mm512_permutex2var_ps(ga, il0, gb));
    _mm512_mask_storeu_ps(d0 + 2 * ox + 16, hi, _mm512_permutex2var_ps(ga, il1, gb));
    _mm512_mask_storeu_ps(d1 + 2 * ox, lo, _mm512_permutex2var_ps(gc, il0, gd));
    _mm512_mask_storeu_ps(d1 + 2 * ox + 16, hi, _mm512_permutex2var_ps(gc, il1, gd));
  }
}
#endif

#if defined(__wasm_simd128__)
/* The same row kernels in SIMD128, 4 outputs a step (the even and odd columns of two input rows split with
 * shuffles, the comparisons as lane masks); returns how many outputs it did, the caller's scalar loop does the rest
 * (fewer than 4). LLVM leaves the scalar loops' stride-2 reads unvectorized for wasm. */
static inline v128_t gg_pool2_take(v128_t v, v128_t best) {
  return wasm_v128_or(wasm_f32x4_gt(v, best), wasm_f32x4_ne(v, v)); /* v > best, or v is NaN */
}
/* The 2×2 windows of four outputs, position by position: a b (top row) over c d. */
static inline void gg_pool2_windows(const float *r0, const float *r1, v128_t *a, v128_t *b, v128_t *c, v128_t *d) {
  v128_t x0 = wasm_v128_load(r0), x1 = wasm_v128_load(r0 + 4);
  v128_t y0 = wasm_v128_load(r1), y1 = wasm_v128_load(r1 + 4);
  *a = wasm_i32x4_shuffle(x0, x1, 0, 2, 4, 6);
  *b = wasm_i32x4_shuffle(x0, x1, 1, 3, 5, 7);
  *c = wasm_i32x4_shuffle(y0, y1, 0, 2, 4, 6);
  *d = wasm_i32x4_shuffle(y0, y1, 1, 3, 5, 7);
}
static gg_i gg_pool2_row(const float *r0, const float *r1, float *o, gg_i ow) {
  gg_i ox = 0;
  for (; ox + 4 <= ow; ox += 4) {
    v128_t a, b, c, d;
    gg_pool2_windows(r0 + 2 * ox, r1 + 2 * ox, &a, &b, &c, &d);
    v128_t best = a;
    best = wasm_v128_bitselect(b, best, gg_pool2_take(b, best));
    best = wasm_v128_bitselect(c, best, gg_pool2_take(c, best));
    best = wasm_v128_bitselect(d, best, gg_pool2_take(d, best));
    wasm_v128_store(o + ox, best);
  }
  return ox;
}
static gg_i gg_pool2_row_grad(const float *r0, const float *r1, const float *gr, float *d0, float *d1, gg_i ow) {
  gg_i ox = 0;
  for (; ox + 4 <= ow; ox += 4) {
    v128_t a, b, c, d;
    gg_pool2_windows(r0 + 2 * ox, r1 + 2 * ox, &a, &b, &c, &d);
    v128_t best = a;
    v128_t tb = gg_pool2_take(b, best);
    best = wasm_v128_bitselect(b, best, tb);
    v128_t tc = gg_pool2_take(c, best);
    best = wasm_v128_bitselect(c, best, tc);
    v128_t td = gg_pool2_take(d, best);
    /* which of the four takes the gradient: the last one taken */
    v128_t s3 = td, s2 = wasm_v128_andnot(tc, td), s1 = wasm_v128_andnot(wasm_v128_andnot(tb, tc), td);
    v128_t s0 = wasm_v128_not(wasm_v128_or(tb, wasm_v128_or(tc, td)));
    v128_t gv = wasm_f32x4_add(wasm_f32x4_splat(0.0f), wasm_v128_load(gr + ox)); /* 0 + g: -0 becomes +0 */
    v128_t ga = wasm_v128_and(s0, gv), gb = wasm_v128_and(s1, gv);
    v128_t gc = wasm_v128_and(s2, gv), gd = wasm_v128_and(s3, gv);
    wasm_v128_store(d0 + 2 * ox, wasm_i32x4_shuffle(ga, gb, 0, 4, 1, 5));
    wasm_v128_store(d0 + 2 * ox + 4, wasm_i32x4_shuffle(ga, gb, 2, 6, 3, 7));
    wasm_v128_store(d1 + 2 * ox, wasm_i32x4_shuffle(gc, gd, 0, 4, 1, 5));
    wasm_v128_store(d1 + 2 * ox + 4, wasm_i32x4_shuffle(gc, gd, 2, 6, 3, 7));
  }
  return ox;
}
#endif

/* The common 2×2, stride 2, no padding case: the same comparisons, in the same order, as the general loop. */
static int gg_pool_is_2x2(const gg_pool *g) {
  return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && 2 * g->oh <= g->h &&
         2 * g->ow <= g->w;
}

static void max_pool2d_serial(const float *x, float *out, gg_pool g) {
  if (gg_pool_is_2x2(&g)) {
    for (gg_i p = 0; p < g.planes; p++) {
      for (gg_i oy = 0; oy < g.oh; oy++) {
        const float *r0 = x + p * g.h * g.w + 2 * oy * g.w, *r1 = r0 + g.w;
        float *o = out + p * g.oh * g.ow + oy * g.ow;
#if defined(__AVX512F__)
        gg_pool2_row(r0, r1, o, g.ow);
        continue;
#endif
        gg_i ox0 = 0;
#if defined(__wasm_simd128__)
        ox0 = gg_pool2_row(r0, r1, o, g.ow);
#endif
        for (gg_i ox = ox0; ox < g.ow; ox++) {
          float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
          /* Branch-free (bitwise | and selects), so that the compiler vectorizes it. */
          float best = a; /* a > -inf, or a is NaN: a either way */
          best = ((b > best) | (b != b)) ? b : best;
          best = ((c > best) | (c != c)) ? c : best;
          best = ((d > best) | (d != d)) ? d : best;
          o[ox] = best;
        }
      }
    }
    return;
  }
  for (gg_i p = 0; p < g.planes; p++) {
    const float *xb = x + p * g.h * g.w;
    float *ob = out + p * g.oh * g.ow;
    for (gg_i oy = 0; oy < g.oh; oy++) {
      gg_i ki0, ki1;
      gg_pool_range(oy, g.sh, g.ph, g.kh, g.h, &ki0, &ki1);
      for (gg_i ox = 0; ox < g.ow; ox++) {
        gg_i kj0, kj1;
        gg_pool_range(ox, g.sw, g.pw, g.kw, g.w, &kj0, &kj1);
        const float *xw = xb + (oy * g.sh - g.ph) * g.w + (ox * g.sw - g.pw);
        float best = -GG_INFF;
        for (gg_i ki = ki0; ki < ki1; ki++) {
          for (gg_i kj = kj0; kj < kj1; kj++) {
            float v = xw[ki * g.w + kj];
            if (v > best || v != v) best = v;
          }
        }
        ob[oy * g.ow + ox] = best;
      }
    }
  }
}

static void max_pool2d_grad_serial(const float *x, const float *gy, float *dx, gg_pool g) {
  if (gg_pool_is_2x2(&g)) {
    /* Windows do not overlap: each writes its four gradients (0 + g, as the general loop's accumulation into zeros,
     * so -0 becomes +0); only a last odd row or column is left to zero. */
    for (gg_i p = 0; p < g.planes; p++) {
      const float *xb = x + p * g.h * g.w;
      float *db = dx + p * g.h * g.w;
      for (gg_i oy = 0; oy < g.oh; oy++) {
        const float *r0 = xb + 2 * oy * g.w, *r1 = r0 + g.w;
        float *d0 = db + 2 * oy * g.w, *d1 = d0 + g.w;
        const float *gr = gy + p * g.oh * g.ow + oy * g.ow;
#if defined(__AVX512F__)
        gg_pool2_row_grad(r0, r1, gr, d0, d1, g.ow);
        for (gg_i ix = 2 * g.ow; ix < g.w; ix++) d0[ix] = d1[ix] = 0.0f;
        continue;
#endif
        gg_i ox0 = 0;
#if defined(__wasm_simd128__)
        ox0 = gg_pool2_row_grad(r0, r1, gr, d0, d1, g.ow);
#endif
        for (gg_i ox = ox0; ox < g.ow; ox++) {
          float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
          /* Branch-free, as the forward pass. The last NaN of the window takes the gradient (PyTorch). */
          float best = a;
          int bi = 0;
          int tb = (b > best) | (b != b);
          best = tb ? b : best;
          bi = tb ? 1 : bi;
          int tc = (c > best) | (c != c);
          best = tc ? c : best;
          bi = tc ? 2 : bi;
          int td = (d > best) | (d != d);
          bi = td ? 3 : bi;
          float gv = 0.0f + gr[ox];
          d0[2 * ox] = bi == 0 ? gv : 0.0f;
          d0[2 * ox + 1] = bi == 1 ? gv : 0.0f;
          d1[2 * ox] = bi == 2 ? gv : 0.0f;
          d1[2 * ox + 1] = bi == 3 ? gv : 0.0f;
        }
        for (gg_i ix = 2 * g.ow; ix < g.w; ix++) d0[ix] = d1[ix] = 0.0f;
      }
      for (gg_i i = 2 * g.oh * g.w; i < g.h * g.w; i++) db[i] = 0.0f;
    }
    return;
  }
  gg_i total = g.planes * g.h * g.w;
  for (gg_i i = 0; i < total; i++) dx[i] = 0.0f;
  for (gg_i p = 0; p < g.planes; p++) {
    const float *xb = x + p * g.h * g.w;
    float *db = dx + p * g.h * g.w;
    const float *gb = gy + p * g.oh * g.ow;
    for (gg_i oy = 0; oy < g.oh; oy++) {
      gg_i ki0, ki1;
      gg_pool_range(oy, g.sh, g.ph, g.kh, g.h, &ki0, &ki1);
      for (gg_i ox = 0; ox < g.ow; ox++) {
        gg_i kj0, kj1;
        gg_pool_range(ox, g.sw, g.pw, g.kw, g.w, &kj0, &kj1);
        gg_i base = (oy * g.sh - g.ph) * g.w + (ox * g.sw - g.pw);
        float best = -GG_INFF;
        gg_i bi = -1;
        for (gg_i ki = ki0; ki < ki1; ki++) {
          for (gg_i kj = kj0; kj < kj1; kj++) {
            gg_i at = base + ki * g.w + kj;
            float v = xb[at];
            /* As PyTorch's CPU kernel, (v > best || isnan(v)) with no early exit: the last NaN takes the gradient. */
            if (v > best || bi < 0 || v != v) {
              best = v;
              bi = at;
            }
          }
        }
        if (bi >= 0) db[bi] += gb[oy * g.ow + ox];
      }
    }
  }
}

/* Planes are independent (windows never cross one), so the pooling kernels share them out: each range of planes is
 * the same kernel on fewer planes, computing every value as the whole call would. */
typedef struct {
  const float *x, *gy;
  float *out;
  gg_pool g;
} pool_args;

static void max_pool_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const pool_args *a = p;
  gg_pool g = a->g;
  g.planes = hi - lo;
  max_pool2d_serial(a->x + lo * g.h * g.w, a->out + lo * g.oh * g.ow, g);
}

static void max_pool_grad_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const pool_args *a = p;
  gg_pool g = a->g;
  g.planes = hi - lo;
  max_pool2d_grad_serial(a->x + lo * g.h * g.w, a->gy + lo * g.oh * g.ow, a->out + lo * g.h * g.w, g);
}

GG_API void gg_max_pool2d(const float *x, float *out, const int32_t *geom) {
  pool_args a = {x, NULL, out, gg_read_pool(geom)};
  gg_parallel_for(max_pool_range, &a, a.g.planes, 1, 4.0 * (double)a.g.planes * (double)(a.g.h * a.g.w));
}

GG_API void gg_max_pool2d_grad(const float *x, const float *gy, float *dx, const int32_t *geom) {
  pool_args a = {x, gy, dx, gg_read_pool(geom)};
  gg_parallel_for(max_pool_grad_range, &a, a.g.planes, 1, 8.0 * (double)a.g.planes * (double)(a.g.h * a.g.w));
}

/* PyTorch's divisor with count_include_pad: the window clipped to the padded input. */
static gg_i gg_pool_divisor(const gg_pool *g, gg_i y0, gg_i x0) {
  gg_i y1 = y0 + g->kh < g->h + g->ph ? y0 + g->kh : g->h + g->ph;
  gg_i x1 = x0 + g->kw < g->w + g->pw ? x0 + g->kw : g->w + g->pw;
  return (y1 - y0) * (x1 - x0);
}

GG_API void gg_avg_pool2d(const float *x, float *out, const int32_t *geom, int countIncludePad) {
  gg_pool g = gg_read_pool(geom);
  for (gg_i p = 0; p < g.planes; p++) {
    const float *xb = x + p * g.h * g.w;
    float *ob = out + p * g.oh * g.ow;
    for (gg_i oy = 0; oy < g.oh; oy++) {
      for (gg_i ox = 0; ox < g.ow; ox++) {
        double s = 0.0;
        gg_i cnt = 0;
        gg_i y0 = oy * g.sh - g.ph;
        gg_i x0 = ox * g.sw - g.pw;
        for (gg_i ki = 0; ki < g.kh; ki++) {
          gg_i iy = y0 + ki;
          if (iy < 0 || iy >= g.h) continue;
          for (gg_i kj = 0; kj < g.kw; kj++) {
            gg_i ix = x0 + kj;
            if (ix < 0 || ix >= g.w) continue;
            s += (double)xb[iy * g.w + ix];
            cnt++;
          }
        }
        double div = (double)(countIncludePad ? gg_pool_divisor(&g, y0, x0) : cnt);
        ob[oy * g.ow + ox] = (float)(s / div);
      }
    }
  }
}

GG_API void gg_avg_pool2d_grad(const float *gy, float *dx, const int32_t *geom, int countIncludePad) {
  gg_pool g = gg_read_pool(geom);
  gg_i total = g.planes * g.h * g.w;
  for (gg_i i = 0; i < total; i++) dx[i] = 0.0f;
  for (gg_i p = 0; p < g.planes; p++) {
    float *db = dx + p * g.h * g.w;
    const float *gb = gy + p * g.oh * g.ow;
    for (gg_i oy = 0; oy < g.oh; oy++) {
      for (gg_i ox = 0; ox < g.ow; ox++) {
        gg_i y0 = oy * g.sh - g.ph;
        gg_i x0 = ox * g.sw - g.pw;
        gg_i ya = y0 < 0 ? 0 : y0, yb = y0 + g.kh < g.h ? y0 + g.kh : g.h;
        gg_i xa = x0 < 0 ? 0 : x0, xb2 = x0 + g.kw < g.w ? x0 + g.kw : g.w;
        gg_i cnt = (yb > ya ? yb - ya : 0) * (xb2 > xa ? xb2 - xa : 0);
        double div = (double)(countIncludePad ? gg_pool_divisor(&g, y0, x0) : cnt);
        double gv = (double)gb[oy * g.ow + ox] / div;
        for (gg_i iy = ya; iy < yb; iy++)
          for (gg_i ix = xa; ix < xb2; ix++) db[iy * g.w + ix] = (float)((double)db[iy * g.w + ix] + gv);
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------------ optimizer */

static void adam_kernel(float *g, float *m, float *v, gg_i n, double b1, double b2, double eps, double bc1,
                        double bc2) {
  /* float64 throughout. The moments are the reference's expressions, so m and v agree with it bit for bit (no drift
   * between backends over a run); the step multiplies by 1/bc1 and 1/bc2 instead of dividing, which leaves one
   * division and one square root per element (half the time; divisions bound this loop) and moves the float32
   * result by at most one ulp, rarely. */
  double c1 = 1.0 - b1, c2 = 1.0 - b2;
  double r1 = 1.0 / bc1, r2 = 1.0 / bc2;
  gg_i i = 0;
#if defined(__wasm_simd128__)
  v128_t vb1 = wasm_f64x2_splat(b1), vb2 = wasm_f64x2_splat(b2), vc1 = wasm_f64x2_splat(c1), vc2 = wasm_f64x2_splat(c2);
  v128_t ve = wasm_f64x2_splat(eps), vr1 = wasm_f64x2_splat(r1), vr2 = wasm_f64x2_splat(r2);
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i), mv = wasm_v128_load(m + i), vv = wasm_v128_load(v + i);
    v128_t mo[2], vo[2], go[2];
    for (int h = 0; h < 2; h++) {
      v128_t gi = h ? gg_f64_hi(gv) : gg_f64_lo(gv);
      v128_t mi = wasm_f64x2_add(wasm_f64x2_mul(vb1, h ? gg_f64_hi(mv) : gg_f64_lo(mv)), wasm_f64x2_mul(vc1, gi));
      v128_t vi = wasm_f64x2_add(wasm_f64x2_mul(vb2, h ? gg_f64_hi(vv) : gg_f64_lo(vv)),
                                 wasm_f64x2_mul(wasm_f64x2_mul(vc2, gi), gi));
      mo[h] = mi;
      vo[h] = vi;
      go[h] = wasm_f64x2_div(wasm_f64x2_mul(mi, vr1), wasm_f64x2_add(wasm_f64x2_sqrt(wasm_f64x2_mul(vi, vr2)), ve));
    }
    wasm_v128_store(m + i, gg_f32_pack(mo[0], mo[1]));
    wasm_v128_store(v + i, gg_f32_pack(vo[0], vo[1]));
    wasm_v128_store(g + i, gg_f32_pack(go[0], go[1]));
  }
#endif
  for (; i < n; i++) {
    double gi = (double)g[i];
    double mi = b1 * (double)m[i] + c1 * gi;
    double vi = b2 * (double)v[i] + c2 * gi * gi;
    m[i] = (float)mi;
    v[i] = (float)vi;
    g[i] = (float)(mi * r1 / (__builtin_sqrt(vi * r2) + eps));
  }
}

typedef struct {
  float *g, *m, *v;
  double b1, b2, eps, bc1, bc2;
} adam_args;

static void adam_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const adam_args *a = p;
  adam_kernel(a->g + lo, a->m + lo, a->v + lo, hi - lo, a->b1, a->b2, a->eps, a->bc1, a->bc2);
}

/* Element by element, so any cut gives the same numbers: on the threaded wasm module, large tensors are shared out
 * (a division and a square root in float64 per element make this the step's costliest loop after the products). */
GG_API void gg_adam_update(float *g, float *m, float *v, gg_i n, double b1, double b2, double eps, double bc1,
                           double bc2) {
  adam_args a = {g, m, v, b1, b2, eps, bc1, bc2};
  gg_parallel_for(adam_range, &a, n, 16, 16.0 * (double)n);
}

/* ------------------------------------------------------------------------------------------------ normalisation */

/*
 * Float64 sums of a run of float32 values in the reference's order (js.ts, laneSum): value j into lane j mod 8 for
 * every full group of eight, the lanes added pairwise, then the rest in order. Eight independent chains, which the
 * compiler vectorizes (the order within each lane is fixed, so the result does not depend on it).
 */
static double gg_lane_sum(const float *x, gg_i len) {
  double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) l[k] += (double)x[j + k];
  double s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  for (; j < len; j++) s += (double)x[j];
  return s;
}

/* Σ (x − mu)² in the same order. */
static double gg_lane_sum_sqdev(const float *x, gg_i len, double mu) {
  double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) {
      double d = (double)x[j + k] - mu;
      l[k] += d * d;
    }
  double s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  for (; j < len; j++) {
    double d = (double)x[j] - mu;
    s += d * d;
  }
  return s;
}

/* out[0] = Σ ĝ, out[1] = Σ ĝ·(x − mu)·is with ĝ = g·w[j] (g alone when w is NULL), in the same order (js.ts,
 * laneSums2). */
static void gg_lane_sums2(const float *g, const float *x, const float *w, gg_i len, double mu, double is,
                          double out[2]) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) {
      double gv = w ? (double)g[j + k] * (double)w[j + k] : (double)g[j + k];
      a[k] += gv;
      b[k] += gv * (((double)x[j + k] - mu) * is);
    }
  double s1 = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  double s2 = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  for (; j < len; j++) {
    double gv = w ? (double)g[j] * (double)w[j] : (double)g[j];
    s1 += gv;
    s2 += gv * (((double)x[j] - mu) * is);
  }
  out[0] = s1;
  out[1] = s2;
}

typedef struct {
  const float *x, *gy, *w, *b;
  float *rm, *rv, *mean, *invstd, *out, *gx, *gw, *gb;
  gg_i n, c, inner;
  int training, update;
  double momentum, eps;
} bn_args;

/* Channels [lo, hi): every channel is computed whole by one thread, so any cut gives the same numbers. */
static void bn_forward_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const bn_args *a = p;
  const gg_i n = a->n, c = a->c, inner = a->inner;
  const double m = (double)(n * inner);
  for (gg_i ch = lo; ch < hi; ch++) {
    double mu, inv;
    if (a->training) {
      double s = 0.0;
      for (gg_i b = 0; b < n; b++) s += gg_lane_sum(a->x + (b * c + ch) * inner, inner);
      mu = s / m;
      double v = 0.0;
      for (gg_i b = 0; b < n; b++) v += gg_lane_sum_sqdev(a->x + (b * c + ch) * inner, inner, mu);
      inv = 1.0 / __builtin_sqrt(v / m + a->eps);
      if (a->update) {
        a->rm[ch] = (float)((1.0 - a->momentum) * (double)a->rm[ch] + a->momentum * mu);
        a->rv[ch] = (float)((1.0 - a->momentum) * (double)a->rv[ch] + a->momentum * (v / (m - 1.0)));
      }
    } else {
      mu = (double)a->rm[ch];
      inv = 1.0 / __builtin_sqrt((double)a->rv[ch] + a->eps);
    }
    a->mean[ch] = (float)mu;
    a->invstd[ch] = (float)inv;
    const double sc = inv * (double)a->w[ch];
    const double sh = (double)a->b[ch] - mu * sc;
    for (gg_i b = 0; b < n; b++) {
      const float *xs = a->x + (b * c + ch) * inner;
      float *os = a->out + (b * c + ch) * inner;
      for (gg_i i = 0; i < inner; i++) os[i] = (float)((double)xs[i] * sc + sh);
    }
  }
}

GG_API void gg_batch_norm(const float *x, const float *weight, const float *bias, float *runningMean,
                          float *runningVar, float *mean, float *invstd, float *out, gg_i n, gg_i c, gg_i inner,
                          int training, int updateRunning, double momentum, double eps) {
  bn_args a = {x,    NULL, weight, bias, runningMean, runningVar, mean, invstd, out, NULL, NULL, NULL,
               n,    c,    inner,  training, updateRunning, momentum, eps};
  gg_parallel_for(bn_forward_range, &a, c, 1, 4.0 * (double)n * (double)c * (double)inner);
}

static void bn_backward_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const bn_args *a = p;
  const gg_i n = a->n, c = a->c, inner = a->inner;
  const double m = (double)(n * inner);
  for (gg_i ch = lo; ch < hi; ch++) {
    const double mu = (double)a->mean[ch], is = (double)a->invstd[ch];
    double sumG = 0.0, sumGX = 0.0, two[2];
    for (gg_i b = 0; b < n; b++) {
      gg_lane_sums2(a->gy + (b * c + ch) * inner, a->x + (b * c + ch) * inner, NULL, inner, mu, is, two);
      sumG += two[0];
      sumGX += two[1];
    }
    a->gb[ch] = (float)sumG;
    a->gw[ch] = (float)sumGX;
    const double wv = (double)a->w[ch], k1 = sumG / m, k2 = sumGX / m;
    for (gg_i b = 0; b < n; b++) {
      const float *xs = a->x + (b * c + ch) * inner, *gs = a->gy + (b * c + ch) * inner;
      float *gx = a->gx + (b * c + ch) * inner;
      if (a->training) {
        for (gg_i i = 0; i < inner; i++) {
          double xh = ((double)xs[i] - mu) * is;
          gx[i] = (float)(wv * is * ((double)gs[i] - k1 - xh * k2));
        }
      } else {
        for (gg_i i = 0; i < inner; i++) gx[i] = (float)(wv * is * (double)gs[i]);
      }
    }
  }
}

GG_API void gg_batch_norm_grad(const float *x, const float *gy, const float *weight, const float *mean,
                               const float *invstd, float *gx, float *gw, float *gb, gg_i n, gg_i c, gg_i inner,
                               int training) {
  bn_args a = {x, gy, weight, NULL, NULL, NULL, (float *)mean, (float *)invstd, NULL, gx, gw, gb,
               n, c,  inner,  training, 0, 0.0, 0.0};
  gg_parallel_for(bn_backward_range, &a, c, 1, 6.0 * (double)n * (double)c * (double)inner);
}

typedef struct {
  const float *x, *gy, *w, *b;
  float *mean, *rstd, *out, *gx, *gw, *gb;
  gg_i rows, d;
  double eps;
} ln_args;

static void ln_forward_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const ln_args *a = p;
  const gg_i d = a->d;
  for (gg_i r = lo; r < hi; r++) {
    const float *xs = a->x + r * d;
    float *os = a->out + r * d;
    const double mu = gg_lane_sum(xs, d) / (double)d;
    const double is = 1.0 / __builtin_sqrt(gg_lane_sum_sqdev(xs, d, mu) / (double)d + a->eps);
    a->mean[r] = (float)mu;
    a->rstd[r] = (float)is;
    for (gg_i i = 0; i < d; i++) os[i] = (float)(((double)xs[i] - mu) * is * (double)a->w[i] + (double)a->b[i]);
  }
}

GG_API void gg_layer_norm(const float *x, const float *weight, const float *bias, float *mean, float *rstd, float *out,
                          gg_i rows, gg_i d, double eps) {
  ln_args a = {x, NULL, weight, bias, mean, rstd, out, NULL, NULL, NULL, rows, d, eps};
  gg_parallel_for(ln_forward_range, &a, rows, 1, 4.0 * (double)rows * (double)d);
}

/* Rows [lo, hi) of gx. */
static void ln_backward_rows(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const ln_args *a = p;
  const gg_i d = a->d;
  const double dd = (double)d;
  for (gg_i r = lo; r < hi; r++) {
    const float *xs = a->x + r * d, *gs = a->gy + r * d;
    float *gx = a->gx + r * d;
    const double mu = (double)a->mean[r], is = (double)a->rstd[r];
    double two[2];
    gg_lane_sums2(gs, xs, a->w, d, mu, is, two);
    const double s1 = two[0], s2 = two[1];
    for (gg_i i = 0; i < d; i++) {
      double xh = ((double)xs[i] - mu) * is;
      double gh = (double)gs[i] * (double)a->w[i];
      gx[i] = (float)(is * (gh - s1 / dd - (xh * s2) / dd));
    }
  }
}

#define GG_LN_COLS 64
/* Columns [lo, hi) of gw and gb, GG_LN_COLS at a time: each column summed over the rows in order (float64). */
static void ln_backward_cols(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const ln_args *a = p;
  const gg_i d = a->d;
  double aw[GG_LN_COLS], ab[GG_LN_COLS];
  for (gg_i c0 = lo; c0 < hi; c0 += GG_LN_COLS) {
    const gg_i nc = hi - c0 < GG_LN_COLS ? hi - c0 : GG_LN_COLS;
    for (gg_i i = 0; i < nc; i++) aw[i] = ab[i] = 0.0;
    for (gg_i r = 0; r < a->rows; r++) {
      const float *xs = a->x + r * d + c0, *gs = a->gy + r * d + c0;
      const double mu = (double)a->mean[r], is = (double)a->rstd[r];
      for (gg_i i = 0; i < nc; i++) {
        double g = (double)gs[i];
        aw[i] += g * (((double)xs[i] - mu) * is);
        ab[i] += g;
      }
    }
    for (gg_i i = 0; i < nc; i++) {
      a->gw[c0 + i] = (float)aw[i];
      a->gb[c0 + i] = (float)ab[i];
    }
  }
}

GG_API void gg_layer_norm_grad(const float *x, const float *gy, const float *weight, const float *mean,
                               const float *rstd, float *gx, float *gw, float *gb, gg_i rows, gg_i d) {
  ln_args a = {x, gy, weight, NULL, (float *)mean, (float *)rstd, NULL, gx, gw, gb, rows, d, 0.0};
  gg_parallel_for(ln_backward_rows, &a, rows, 1, 4.0 * (double)rows * (double)d);
  gg_parallel_for(ln_backward_cols, &a, d, GG_LN_COLS, 3.0 * (double)rows * (double)d);
}

/* ------------------------------------------------------------------------------------------------ sgemm fallback */

void gg_sgemm_ref(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff, gg_i lda,
                  const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc) {
  gg_i ai = transA ? 1 : lda, ak = transA ? lda : 1;
  gg_i bk = transB ? 1 : ldb, bj = transB ? ldb : 1;
  for (gg_i i = 0; i < m; i++) {
    float *cr = c + cOff + i * ldc;
    for (gg_i j = 0; j < n; j++) {
      double s = 0.0;
      for (gg_i p = 0; p < k; p++) s += (double)a[aOff + i * ai + p * ak] * (double)b[bOff + p * bk + j * bj];
      cr[j] = (float)(beta == 0.0 ? alpha * s : alpha * s + beta * (double)cr[j]);
    }
  }
}
