/*
 * native/kernels/reduce.c: sums and maxima along an axis, and the whole-tensor reductions (sums of squares, max |x|,
 * non-finite counts) (see common.h for what all kernels promise).
 */
#include "common.h"

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
#if !defined(__wasm__)
  if (inner == 1) {
    /* the loop below's runs (the same bits; four at a time with AVX-512) */
    gg_run_sums(x + lo * mid, mid, mid, hi - lo, out + lo);
    return;
  }
#endif
  for (gg_i o = lo; o < hi; o++) {
    float *os = out + o * inner;
    if (inner == 1) {
      /* a contiguous run, as the reference sums it (gg_lane_sum): the sums agree bit for bit */
      os[0] = (float)gg_lane_sum(x + o * mid, mid);
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

/* max over x[0..n) of (bits & 0x7fffffff): on the bits, |x|'s float order is the unsigned-integer order, and every NaN
 * lies above +Inf (0x7f800000). So one integer max, which every compiler vectorizes (a float max with NaN does not),
 * gives the maximum, or NaN if there is one. */
static uint32_t max_abs_bits(const float *x, gg_i n) {
  uint32_t m = 0;
  for (gg_i i = 0; i < n; i++) {
    uint32_t u = gg_asuint(x[i]) & 0x7fffffffu;
    m = u > m ? u : m;
  }
  return m;
}

/* The value of max_abs_bits' result: max |x|, or NaN. */
static double max_abs_value(uint32_t m) { return m > 0x7f800000u ? GG_NAN : (double)gg_asfloat(m); }

/* Values whose max |x| is taken right after their squares were summed, while they are still in L1. */
#define SS_MAX_CHUNK 4096

/*
 * Column sums taken in the same pass as a sum of squares (gg_sum_squares_columns): x read as rows of `cols` values,
 * out[j] the float32 sum of column j from +0 in the order of the rows, as gg_sum_axis(x, out, 1, rows, cols) sums
 * it. `done` values of x are in out so far; the next one is in column `col`.
 */
typedef struct {
  float *out;
  gg_i cols, col, done;
#if !defined(__wasm__)
  /* 1: row sums instead (gg_sum_squares_rows): out[r] the sum of row r as gg_sum_axis(x, out, rows, cols, 1) takes
   * it, each row summed once the pass has read all of it; `done` values of x are in whole rows summed so far */
  int rows;
  gg_i end; /* with rows: the values of x in all (the last rows are summed at the end) */
#endif
} ss_columns;

#if !defined(__wasm__)
/* The row sums of the whole rows in x[cs->done..upto) (gg_sum_squares_rows), from L1 or L2 just after the pass. */
static inline __attribute__((always_inline)) void rows_upto(ss_columns *cs, const float *x, gg_i upto) {
  gg_i len = cs->cols, first = cs->done / len, last = upto / len;
  /* whole groups of four rows until the end (gg_run_sums' four chains; a row left over summed alone is one chain):
   * the same bits either way; the CLI CNN's 784-value planes 0.163 -> 0.150 ms for 2048 of them (one thread) */
  if (upto < cs->end) last = first + (last - first) / 4 * 4;
  if (last > first) gg_run_sums(x + first * len, len, len, last - first, cs->out + first);
  cs->done = last * len;
}
#endif

/* Adds x[cs->done..upto) to the column sums (in the order of memory, so each column in the order of the rows). */
static inline __attribute__((always_inline)) void columns_upto(ss_columns *cs, const float *x, gg_i upto) {
#if !defined(__wasm__)
  if (cs->rows) {
    rows_upto(cs, x, upto);
    return;
  }
#endif
  const float *xs = x + cs->done;
  gg_i len = upto - cs->done, c = cs->col;
  float *out = cs->out;
  while (len > 0) {
    gg_i run = cs->cols - c < len ? cs->cols - c : len;
    for (gg_i t = 0; t < run; t++) out[c + t] += xs[t];
    xs += run;
    len -= run;
    c += run;
    if (c == cs->cols) c = 0;
  }
  cs->col = c;
  cs->done = upto;
}

/*
 * The end of sum_squares_core: x[i..n) added to the eight float64 lanes acc, the lanes summed, the last values added
 * in order; with want_max, *mbits = the larger of m and the max |x| bits of x[tail..n).
 */
static inline __attribute__((always_inline)) double sum_squares_rest(const float *x, gg_i i, gg_i n, double *acc,
                                                                    int want_max, gg_i tail, uint32_t m,
                                                                    uint32_t *mbits, ss_columns *cs) {
  /* Runs of up to SS_MAX_CHUNK values (the accumulators carry on, so the sum is that of one loop), each one's max
   * (or column sums) taken while it is still in L1 */
  while (i + 8 <= n) {
    gg_i stop = i + (n - i) / 8 * 8;
    if ((want_max || cs) && stop - i > SS_MAX_CHUNK) stop = i + SS_MAX_CHUNK;
    for (; i < stop; i += 8) {
      for (int j = 0; j < 8; j++) {
        double v = (double)x[i + j];
        acc[j] += v * v;
      }
    }
    if (want_max) {
      uint32_t c = max_abs_bits(x + tail, i - tail);
      m = c > m ? c : m;
      tail = i;
    }
    if (cs) columns_upto(cs, x, i);
  }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += (double)x[i] * (double)x[i];
  if (want_max) {
    uint32_t c = max_abs_bits(x + tail, n - tail);
    *mbits = c > m ? c : m;
  }
  if (cs) columns_upto(cs, x, n);
  return s;
}

#if defined(__AVX512F__)
/* out[*c..) += v0, v1, v2, v3 (16 values each), as gg_sum_axis adds a row: float32, each column in the order of the
 * rows; the column index wraps at cols (a multiple of 16). */
static inline __attribute__((always_inline)) void columns_add64(float *out, gg_i cols, gg_i *c, __m512 v0, __m512 v1,
                                                                __m512 v2, __m512 v3) {
  const __m512 v[4] = {v0, v1, v2, v3};
  for (int q = 0; q < 4; q++) {
    _mm512_storeu_ps(out + *c, _mm512_add_ps(_mm512_loadu_ps(out + *c), v[q]));
    *c += 16;
    if (*c == cols) *c = 0;
  }
}
#endif

/*
 * Σx² over x[0..n), and with want_max (a constant after inlining) max |x|'s bits in *mbits, in the same pass over
 * memory. The sum's operations and their order do not depend on want_max, so gg_sum_squares and
 * gg_sum_squares_max_abs give the same bits: the monitor's gradient norms and the global-norm clip's are one number.
 */
static inline __attribute__((always_inline)) double sum_squares_core(const float *x, gg_i n, int want_max,
                                                                    uint32_t *mbits, ss_columns *cs) {
  /* float64 accumulation in eight lanes, summed at the end: within ~1e-16 of the reference's sequential sum. The
   * wasm build spells the lanes out in SIMD (LLVM does not vectorize this); both builds add in the same order. The
   * SIMD builds first take blocks of 512 values in float32 (~1e-7 relative to the float64 sum), see below. */
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i i = 0;
  uint32_t m = 0;
#if defined(__wasm_simd128__)
  v128_t a01 = wasm_f64x2_splat(0.0), a23 = a01, a45 = a01, a67 = a01;
  v128_t mv = wasm_i32x4_splat(0), absmask = wasm_i32x4_splat(0x7fffffff);
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
      if (want_max) {
        v128_t u01 = wasm_u32x4_max(wasm_v128_and(v0, absmask), wasm_v128_and(v1, absmask));
        v128_t u23 = wasm_u32x4_max(wasm_v128_and(v2, absmask), wasm_v128_and(v3, absmask));
        mv = wasm_u32x4_max(mv, wasm_u32x4_max(u01, u23));
      }
    }
    a01 = wasm_f64x2_add(a01, wasm_f64x2_add(gg_f64_lo(f0), gg_f64_lo(f2)));
    a23 = wasm_f64x2_add(a23, wasm_f64x2_add(gg_f64_hi(f0), gg_f64_hi(f2)));
    a45 = wasm_f64x2_add(a45, wasm_f64x2_add(gg_f64_lo(f1), gg_f64_lo(f3)));
    a67 = wasm_f64x2_add(a67, wasm_f64x2_add(gg_f64_hi(f1), gg_f64_hi(f3)));
    if (cs && i + 512 - cs->done >= SS_MAX_CHUNK) columns_upto(cs, x, i + 512);
  }
  if (want_max) {
    uint32_t ml[4];
    wasm_v128_store(ml, mv);
    for (int l = 0; l < 4; l++) m = ml[l] > m ? ml[l] : m;
  }
  gg_i tail = i; /* the values whose max is still to take */
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
#elif defined(__AVX512F__)
  /* Four independent registers of eight float64 lanes, 32 values per turn: one register alone waits on the add's
   * latency (the monitor and global-norm clipping call this on every parameter every step). The sum differs from
   * the eight-lane order of the loop below (and of wasm) only in float64 rounding, far below float32's. */
  __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
  __m512i mv = _mm512_setzero_si512(), absmask = _mm512_set1_epi32(0x7fffffff);
  /* Blocks of 512 values first: float32 fused multiply-adds into 64 lanes (8 terms each, so a block's sum is good to
   * ~1e-6 relative), each block's sum then added in float64. Four times fewer instructions than converting every
   * value to float64, which is what bounds this loop on data in cache. */
  /* Column sums (cs) in the same loop where a vector of 16 never straddles two rows; else after each run of
   * SS_MAX_CHUNK values, from L1 (two loops one after the other over data in L3 took as long as two passes) */
  const int in_loop = cs && !cs->rows && cs->cols % 16 == 0;
  float *cout = in_loop ? cs->out : NULL;
  gg_i ccols = in_loop ? cs->cols : 0, c = in_loop ? cs->col : 0;
  for (; i + 512 <= n; i += 512) {
    __m512 f0 = _mm512_setzero_ps(), f1 = f0, f2 = f0, f3 = f0;
    for (gg_i j = i; j < i + 512; j += 64) {
      __m512 v0 = _mm512_loadu_ps(x + j), v1 = _mm512_loadu_ps(x + j + 16);
      __m512 v2 = _mm512_loadu_ps(x + j + 32), v3 = _mm512_loadu_ps(x + j + 48);
      f0 = _mm512_fmadd_ps(v0, v0, f0);
      f1 = _mm512_fmadd_ps(v1, v1, f1);
      f2 = _mm512_fmadd_ps(v2, v2, f2);
      f3 = _mm512_fmadd_ps(v3, v3, f3);
      if (in_loop) columns_add64(cout, ccols, &c, v0, v1, v2, v3);
      if (want_max) {
        __m512i u01 = _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(v0), absmask),
                                       _mm512_and_si512(_mm512_castps_si512(v1), absmask));
        __m512i u23 = _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(v2), absmask),
                                       _mm512_and_si512(_mm512_castps_si512(v3), absmask));
        mv = _mm512_max_epu32(mv, _mm512_max_epu32(u01, u23));
      }
    }
    __m512 f = _mm512_add_ps(_mm512_add_ps(f0, f1), _mm512_add_ps(f2, f3));
    a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
    a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1))));
    if (!in_loop && cs && i + 512 - cs->done >= SS_MAX_CHUNK) columns_upto(cs, x, i + 512);
  }
  if (in_loop) {
    cs->col = c;
    cs->done = i;
  }
  if (want_max) m = (uint32_t)_mm512_reduce_max_epu32(mv);
  gg_i tail = i; /* the values whose max is still to take */
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
#else
  gg_i tail = 0; /* the values whose max is still to take */
#endif
  return sum_squares_rest(x, i, n, acc, want_max, tail, m, mbits, cs);
}

static double sum_squares_serial(const float *x, gg_i n) { return sum_squares_core(x, n, 0, NULL, NULL); }

static double max_abs_serial(const float *x, gg_i n) { return max_abs_value(max_abs_bits(x, n)); }

static double count_non_finite_serial(const float *x, gg_i n) {
  gg_i c = 0;
  for (gg_i i = 0; i < n; i++) c += (gg_asuint(x[i]) & 0x7f800000u) == 0x7f800000u;
  return (double)c;
}

/* Σx² (the bits of gg_sum_squares) and max |x| of one tensor in one pass over memory (the monitor reads every
 * gradient for both). */
static void sum_squares_max_abs_serial(const float *x, gg_i n, double *ss, double *mx) {
  uint32_t m = 0;
  *ss = sum_squares_core(x, n, 1, &m, NULL);
  *mx = max_abs_value(m);
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

/* The values of x[0..n) below lo or above hi, compared in float64 as JavaScript compares a Float32Array's (NaN is
 * neither): thresholds rounded to float32 towards the inside would differ from JavaScript's count for values
 * between them. The count is exact in any order; the loop runs in vector lanes. */
GG_API double gg_count_outside(const float *x, gg_i n, double lo, double hi) {
  gg_i c = 0;
  for (gg_i i = 0; i < n; i++) {
    double v = (double)x[i];
    c += (v < lo) | (v > hi);
  }
  return (double)c;
}
/* out[0] = Σx² (the bits of gg_sum_squares), out[1] = max |x| (NaN if x holds one), in one pass over memory. */
GG_API void gg_sum_squares_max_abs(const float *x, gg_i n, double *out) {
  out[0] = reduce(RED_SS_MAX, x, n, 10.0, &out[1]);
}

/* ------------------------------------------------------- the monitor's statistics of a layer's output */

/* Σx² of x[0..n) as sum_squares_serial takes it, with the column sums of cs in the same pass. */
static double sum_squares_columns_serial(const float *x, gg_i n, ss_columns *cs) {
  return sum_squares_core(x, n, 0, NULL, cs);
}

/*
 * out[j] = Σ_r x[r·cols + j] (gg_sum_axis(x, out, 1, rows, cols)'s bits) and Σx² over the rows·cols values
 * (gg_sum_squares' bits) in one pass over memory: the monitor takes both of every layer's output (its moments, and a
 * ReLU's dead units), where it read the output twice (the thirteenth session).
 */
GG_API double gg_sum_squares_columns(const float *x, float *out, gg_i rows, gg_i cols) {
  gg_i n = rows * cols;
  if (cols == 1) {
    /* one column: gg_sum_axis sums a contiguous run in float64 lanes, not in float32 */
    gg_sum_axis(x, out, 1, rows, 1);
    return gg_sum_squares(x, n);
  }
  for (gg_i j = 0; j < cols; j++) out[j] = 0.0f;
  if (n <= 0) return 0.0;
  ss_columns cs = {.out = out, .cols = cols}; /* (the rest zero: column 0, nothing done, natively not rows) */
#if !defined(__wasm__)
  return sum_squares_columns_serial(x, n, &cs);
#else
  /* gg_sum_squares' blocks in wasm (reduce): each block's sum as sum_squares_serial, then the blocks' in order */
  if (n <= RED_BLOCK) return sum_squares_columns_serial(x, n, &cs);
  gg_i block = RED_BLOCK;
  gg_i blocks = (n + block - 1) / block;
  if (blocks > RED_MAX_BLOCKS) {
    block = ((n + RED_MAX_BLOCKS - 1) / RED_MAX_BLOCKS + 15) / 16 * 16;
    blocks = (n + block - 1) / block;
  }
  double r = 0.0;
  for (gg_i b = 0; b < blocks; b++) {
    gg_i start = b * block;
    gg_i len = n - start < block ? n - start : block;
    /* the block's column sums continue where the last block's stopped */
    cs.done = 0;
    double p = sum_squares_columns_serial(x + start, len, &cs);
    r = b == 0 ? p : r + p;
  }
  return r;
#endif
}

#if !defined(__wasm__)
/* The rows of a block of gg_sum_squares_rows: at least RS_BLOCK values (whole rows), at most RS_MAX_BLOCKS blocks. */
#define RS_BLOCK 32768

typedef struct {
  const float *x;
  float *out;
  gg_i rows, cols, per; /* per: rows a block */
  double *partials;
} rows_args;

gg_i gg_rows_per_block(gg_i rows, gg_i cols) {
  gg_i per = (RS_BLOCK + cols - 1) / cols;
  if ((rows + per - 1) / per > RS_MAX_BLOCKS) per = (rows + RS_MAX_BLOCKS - 1) / RS_MAX_BLOCKS;
  return per;
}

double gg_rows_block(const float *x, float *out, gg_i rows, gg_i cols) {
  ss_columns cs = {out, cols, 0, 0, 1, rows * cols};
  return sum_squares_columns_serial(x, rows * cols, &cs);
}

/* Blocks [lo, hi): each block's row sums into out and its Σx² (one pass, sum_squares_core's order) into partials. */
static void rows_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const rows_args *a = p;
  for (gg_i b = lo; b < hi; b++) {
    gg_i r0 = b * a->per, r1 = r0 + a->per < a->rows ? r0 + a->per : a->rows;
    a->partials[b] = gg_rows_block(a->x + r0 * a->cols, a->out + r0, r1 - r0, a->cols);
  }
}

/*
 * out[r] = Σ_j x[r·cols + j] (gg_sum_axis(x, out, rows, cols, 1)'s bits) and Σx² over the rows·cols values, in one
 * pass over memory: the monitor's statistics of a conv's ReLU output by planes (src/monitor/activation-stats.ts),
 * which read the output twice until the sixteenth session. Σx² is gg_sum_squares' over blocks of whole rows (at
 * least RS_BLOCK values each, fixed by the shape), the blocks' sums added in order in float64: the blocks share out
 * over the threads (one pass on one thread lost to the two kernels with the row sums on two, Zen 5), and the bits do
 * not depend on the thread count; a single block's is gg_sum_squares' own. Natively only (elsewhere the two kernels).
 */
GG_API double gg_sum_squares_rows(const float *x, float *out, gg_i rows, gg_i cols) {
  if (rows <= 0) return 0.0;
  if (cols <= 0) {
    for (gg_i r = 0; r < rows; r++) out[r] = 0.0f;
    return 0.0;
  }
  gg_i per = gg_rows_per_block(rows, cols);
  gg_i blocks = (rows + per - 1) / per;
  double partials[RS_MAX_BLOCKS];
  rows_args a = {x, out, rows, cols, per, partials};
  gg_parallel_for(rows_range, &a, blocks, 1, 3.0 * (double)rows * (double)cols);
  double s = partials[0];
  for (gg_i b = 1; b < blocks; b++) s += partials[b];
  return s;
}
#endif
