/*
 * native/kernels/elementwise.c: copies, axpy (with the sums of squares clipping wants), unary and binary ops (see
 * common.h for what all kernels promise).
 */
#include "common.h"

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

/* x ← (float)s · x in float32 (the optimizer's factors: see spec.ts). Element by element, so any cut gives the same
 * numbers. */
typedef struct {
  float *x;
  float s;
} scale_args;

static void scale_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const scale_args *a = p;
  float *restrict x = a->x;
  const float s = a->s;
  for (gg_i i = lo; i < hi; i++) x[i] = x[i] * s;
}

GG_API void gg_scale(float *x, gg_i n, double s) {
  scale_args a = {x, (float)s};
  gg_parallel_for(scale_range, &a, n, 16, 2.0 * (double)n);
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
      /* NaN stays NaN (as PyTorch); -0 and 0 give +0 (common.h). */
      gg_relu_row(x, out, n);
      return 1;
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

/* ------------------------------------------------------------------------------------------------ add + ReLU */

typedef struct {
  const float *a, *b, *y;
  float *out;
} add_relu_args;

static void add_relu_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const add_relu_args *u = p;
  const float *a = u->a, *b = u->b;
  float *out = u->out;
  /* the ReLU as gg_unary's: NaN stays NaN, -0 and 0 give +0 (in wasm by hand: common.h) */
  gg_i i = lo;
#if defined(__wasm_simd128__)
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (; i + 4 <= hi; i += 4) {
    v128_t v = wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i));
    wasm_v128_store(out + i, wasm_v128_andnot(v, wasm_f32x4_le(v, zero)));
  }
#pragma clang loop vectorize(disable)
#endif
  for (; i < hi; i++) out[i] = gg_relu(a[i] + b[i]);
}

/* Element by element, so any cut gives the same numbers: gg_binary's float32 add, then gg_unary's ReLU, in one pass
 * (neither the sum nor a second pass over it is written). */
GG_API void gg_add_relu(const float *a, const float *b, float *out, gg_i n) {
  add_relu_args u = {a, b, NULL, out};
  gg_parallel_for(add_relu_range, &u, n, 16, 8.0 * (double)n);
}

static void relu_grad_sum_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const add_relu_args *u = p;
  for (gg_i i = lo; i < hi; i++) u->out[i] = gg_relu_mask(u->y[i], u->a[i] + u->b[i]);
}

/* out = y > 0 ? a + b : +0: the float32 sum of a ReLU output's two gradients, then the ReLU's gradient (gg_binary's
 * add, then gg_unary_grad's mask read from the output), in one pass. */
GG_API void gg_relu_grad_sum(const float *a, const float *b, const float *y, float *out, gg_i n) {
  add_relu_args u = {a, b, y, out};
  gg_parallel_for(relu_grad_sum_range, &u, n, 16, 8.0 * (double)n);
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
