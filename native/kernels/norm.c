/*
 * native/kernels/norm.c: batch and layer normalisation, forward and backward (see common.h for what all kernels
 * promise).
 */
#include "common.h"

/* ------------------------------------------------------------------------------------------------ normalisation */

/* Σ (x − mu)² in gg_lane_sum's order (common.h). */
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

/* gg_lane_sums2 without w of the ReLU's gradient: ĝ = g where y > 0, else +0 (the ReLU's backward pass, folded in;
 * y > 0 exactly where the ReLU's input was), the same sums as gg_lane_sums2 of that pass's output. */
static void gg_lane_sums2_relu(const float *g, const float *y, const float *x, gg_i len, double mu, double is,
                               double out[2]) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < 8; k++) {
      double gv = (double)gg_relu_mask(y[j + k], g[j + k]);
      a[k] += gv;
      b[k] += gv * (((double)x[j + k] - mu) * is);
    }
  double s1 = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  double s2 = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  for (; j < len; j++) {
    double gv = (double)gg_relu_mask(y[j], g[j]);
    s1 += gv;
    s2 += gv * (((double)x[j] - mu) * is);
  }
  out[0] = s1;
  out[1] = s2;
}

#if defined(__AVX512F__)
/*
 * The lane sums of BatchNorm's runs (one image's plane of one channel), GG_BN_RUNS runs at a time. One run's eight
 * lanes are one chain of dependent float64 adds, so a run alone waits on the adder's latency; the runs are
 * independent, so several chains in flight keep it busy. Each run's sum is the one gg_lane_sum (or _sqdev, or
 * gg_lane_sums2 without w) gives, in the same order, and the caller adds them in order: the same bits.
 */
#define GG_BN_RUNS 4


/* out[k] = gg_lane_sum(x[k], len) (sq = 0) or gg_lane_sum_sqdev(x[k], len, mu) (sq = 1), k < GG_BN_RUNS. */
static inline __attribute__((always_inline)) void gg_lane_sum_runs(const float *const *x, gg_i len, double mu,
                                                                   double *out, const int sq) {
  __m512d acc[GG_BN_RUNS];
  const __m512d vmu = _mm512_set1_pd(mu);
  for (int k = 0; k < GG_BN_RUNS; k++) acc[k] = _mm512_setzero_pd();
  gg_i j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < GG_BN_RUNS; k++) {
      __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x[k] + j));
      if (sq) {
        v = _mm512_sub_pd(v, vmu);
        v = _mm512_mul_pd(v, v);
      }
      acc[k] = _mm512_add_pd(acc[k], v);
    }
  for (int k = 0; k < GG_BN_RUNS; k++) {
    double s = gg_lanes_add(acc[k]);
    for (gg_i t = j; t < len; t++) {
      double d = sq ? (double)x[k][t] - mu : (double)x[k][t];
      s += sq ? d * d : d;
    }
    out[k] = s;
  }
}

/* ga[k], gb[k] = gg_lane_sums2(g[k], x[k], NULL, len, mu, is) (y NULL) or gg_lane_sums2_relu(g[k], y[k], x[k], len,
 * mu, is), k < GG_BN_RUNS. */
static inline __attribute__((always_inline)) void gg_lane_sums2_runs(const float *const *g, const float *const *y,
                                                                     const float *const *x, gg_i len, double mu,
                                                                     double is, double *ga, double *gb) {
  __m512d a[GG_BN_RUNS], b[GG_BN_RUNS];
  const __m512d vmu = _mm512_set1_pd(mu), vis = _mm512_set1_pd(is), zero = _mm512_setzero_pd();
  for (int k = 0; k < GG_BN_RUNS; k++) a[k] = b[k] = _mm512_setzero_pd();
  gg_i j = 0;
  for (; j + 8 <= len; j += 8)
    for (int k = 0; k < GG_BN_RUNS; k++) {
      __m512d gv = _mm512_cvtps_pd(_mm256_loadu_ps(g[k] + j));
      /* the ReLU's mask: +0 where y is not > 0 (NaN included), as gg_lane_sums2_relu */
      if (y) gv = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(_mm512_cvtps_pd(_mm256_loadu_ps(y[k] + j)), zero, _CMP_GT_OQ), gv);
      __m512d xh = _mm512_mul_pd(_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x[k] + j)), vmu), vis);
      a[k] = _mm512_add_pd(a[k], gv);
      b[k] = _mm512_add_pd(b[k], _mm512_mul_pd(gv, xh));
    }
  for (int k = 0; k < GG_BN_RUNS; k++) {
    double s1 = gg_lanes_add(a[k]), s2 = gg_lanes_add(b[k]);
    for (gg_i t = j; t < len; t++) {
      double gv = (double)(y ? gg_relu_mask(y[k][t], g[k][t]) : g[k][t]);
      s1 += gv;
      s2 += gv * (((double)x[k][t] - mu) * is);
    }
    ga[k] = s1;
    gb[k] = s2;
  }
}
#endif

/* Σ over the images b of gg_lane_sum (sq = 0) or gg_lane_sum_sqdev (sq = 1) of channel ch's runs, in order. */
static double gg_bn_sum(const float *x, gg_i n, gg_i c, gg_i inner, gg_i ch, double mu, int sq) {
  double s = 0.0;
  gg_i b = 0;
#if defined(__AVX512F__)
  for (; b + GG_BN_RUNS <= n; b += GG_BN_RUNS) {
    const float *runs[GG_BN_RUNS];
    double r[GG_BN_RUNS];
    for (int k = 0; k < GG_BN_RUNS; k++) runs[k] = x + ((b + k) * c + ch) * inner;
    if (sq)
      gg_lane_sum_runs(runs, inner, mu, r, 1);
    else
      gg_lane_sum_runs(runs, inner, mu, r, 0);
    for (int k = 0; k < GG_BN_RUNS; k++) s += r[k];
  }
#endif
  for (; b < n; b++)
    s += sq ? gg_lane_sum_sqdev(x + (b * c + ch) * inner, inner, mu) : gg_lane_sum(x + (b * c + ch) * inner, inner);
  return s;
}

typedef struct {
  const float *x, *gy, *w, *b;
  float *rm, *rv, *mean, *invstd, *out, *gx, *gw, *gb;
  gg_i n, c, inner;
  int training, update;
  double momentum, eps;
  /* forward: whether a ReLU follows (out = max(·, 0)); backward: the ReLU's output whose mask gy takes, or NULL */
  int relu;
  const float *y;
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
      mu = gg_bn_sum(a->x, n, c, inner, ch, 0.0, 0) / m;
      double v = gg_bn_sum(a->x, n, c, inner, ch, mu, 1);
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
      /* with the ReLU as gg_unary's (NaN stays NaN, -0 and 0 give +0): natively in the same pass, in wasm over the
       * run again while it is in cache (common.h) */
#if defined(__wasm_simd128__)
      for (gg_i i = 0; i < inner; i++) os[i] = (float)((double)xs[i] * sc + sh);
      if (a->relu) gg_relu_row(os, os, inner);
#else
      if (a->relu)
        for (gg_i i = 0; i < inner; i++) os[i] = gg_relu((float)((double)xs[i] * sc + sh));
      else
        for (gg_i i = 0; i < inner; i++) os[i] = (float)((double)xs[i] * sc + sh);
#endif
    }
  }
}

GG_API void gg_batch_norm(const float *x, const float *weight, const float *bias, float *runningMean,
                          float *runningVar, float *mean, float *invstd, float *out, gg_i n, gg_i c, gg_i inner,
                          int training, int updateRunning, double momentum, double eps) {
  bn_args a = {x, NULL, weight,   bias,          runningMean, runningVar, mean, invstd, out, NULL, NULL, NULL,
               n, c,    inner,    training,      updateRunning, momentum, eps,      0,      NULL};
  gg_parallel_for(bn_forward_range, &a, c, 1, 4.0 * (double)n * (double)c * (double)inner);
}

GG_API void gg_batch_norm_relu(const float *x, const float *weight, const float *bias, float *runningMean,
                               float *runningVar, float *mean, float *invstd, float *out, gg_i n, gg_i c, gg_i inner,
                               int training, int updateRunning, double momentum, double eps) {
  bn_args a = {x, NULL, weight,   bias,          runningMean, runningVar, mean, invstd, out, NULL, NULL, NULL,
               n, c,    inner,    training,      updateRunning, momentum, eps,      1,      NULL};
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
    gg_i b0 = 0;
#if defined(__AVX512F__)
    for (; b0 + GG_BN_RUNS <= n; b0 += GG_BN_RUNS) {
      const float *gr[GG_BN_RUNS], *xr[GG_BN_RUNS];
      double ga[GG_BN_RUNS], gb[GG_BN_RUNS];
      for (int k = 0; k < GG_BN_RUNS; k++) {
        gr[k] = a->gy + ((b0 + k) * c + ch) * inner;
        xr[k] = a->x + ((b0 + k) * c + ch) * inner;
      }
      if (a->y) {
        const float *yr[GG_BN_RUNS];
        for (int k = 0; k < GG_BN_RUNS; k++) yr[k] = a->y + ((b0 + k) * c + ch) * inner;
        gg_lane_sums2_runs(gr, yr, xr, inner, mu, is, ga, gb);
      } else
        gg_lane_sums2_runs(gr, NULL, xr, inner, mu, is, ga, gb);
      for (int k = 0; k < GG_BN_RUNS; k++) {
        sumG += ga[k];
        sumGX += gb[k];
      }
    }
#endif
    for (gg_i b = b0; b < n; b++) {
      if (a->y)
        gg_lane_sums2_relu(a->gy + (b * c + ch) * inner, a->y + (b * c + ch) * inner, a->x + (b * c + ch) * inner,
                           inner, mu, is, two);
      else
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
      if (a->y) {
        /* ĝ masked by the ReLU's output, as in the sums */
        const float *ys = a->y + (b * c + ch) * inner;
        if (a->training) {
          for (gg_i i = 0; i < inner; i++) {
            double xh = ((double)xs[i] - mu) * is;
            double gv = (double)gg_relu_mask(ys[i], gs[i]);
            gx[i] = (float)(wv * is * (gv - k1 - xh * k2));
          }
        } else {
          for (gg_i i = 0; i < inner; i++) gx[i] = (float)(wv * is * (double)gg_relu_mask(ys[i], gs[i]));
        }
      } else if (a->training) {
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
  bn_args a = {x, gy, weight, NULL,     NULL, NULL, (float *)mean, (float *)invstd, NULL, gx, gw, gb,
               n, c,  inner,  training, 0,    0.0,  0.0,           0,               NULL};
  gg_parallel_for(bn_backward_range, &a, c, 1, 6.0 * (double)n * (double)c * (double)inner);
}

GG_API void gg_batch_norm_relu_grad(const float *x, const float *gy, const float *y, const float *weight,
                                    const float *mean, const float *invstd, float *gx, float *gw, float *gb, gg_i n,
                                    gg_i c, gg_i inner, int training) {
  bn_args a = {x, gy, weight, NULL,     NULL, NULL, (float *)mean, (float *)invstd, NULL, gx, gw, gb,
               n, c,  inner,  training, 0,    0.0,  0.0,           0,               y};
  gg_parallel_for(bn_backward_range, &a, c, 1, 7.0 * (double)n * (double)c * (double)inner);
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
