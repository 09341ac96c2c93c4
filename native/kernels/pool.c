/* native/kernels/pool.c: max and average pooling, forward and backward (see common.h for what all kernels promise). */
#include "common.h"

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
 * valid input columns of the two loads of each row. Plain loads wherever the 32 values read from r1 (the later row)
 * end inside the input (`end`): a masked load that misses the cache waits far longer than a plain one on Zen 5 (the
 * CLI CNN's first pooling, 64 images read from memory: 0.9 ms with masked loads, 0.25 with plain ones); the values
 * past the window row belong to other rows and reach only the outputs past the row's, which are never stored. */
static inline void gg_pool2_windows512(const float *r0, const float *r1, __mmask16 lo, __mmask16 hi,
                                       const float *end, __m512 *a, __m512 *b, __m512 *c, __m512 *d) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  __m512 x0, x1, y0, y1;
  if (r1 + 32 <= end) {
    x0 = _mm512_loadu_ps(r0), x1 = _mm512_loadu_ps(r0 + 16);
    y0 = _mm512_loadu_ps(r1), y1 = _mm512_loadu_ps(r1 + 16);
  } else {
    x0 = _mm512_maskz_loadu_ps(lo, r0), x1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
    y0 = _mm512_maskz_loadu_ps(lo, r1), y1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
  }
  *a = _mm512_permutex2var_ps(x0, ev, x1);
  *b = _mm512_permutex2var_ps(x0, od, x1);
  *c = _mm512_permutex2var_ps(y0, ev, y1);
  *d = _mm512_permutex2var_ps(y0, od, y1);
}
/* The lanes where v takes the window from best: v > best, or v is NaN. */
static inline __mmask16 gg_pool2_take512(__m512 v, __m512 best) {
  return _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}
static void gg_pool2_row(const float *r0, const float *r1, float *o, gg_i ow, const float *end) {
  for (gg_i ox = 0; ox < ow; ox += 16) {
    __mmask16 m, lo, hi;
    gg_pool2_masks(ow - ox < 16 ? ow - ox : 16, &m, &lo, &hi);
    __m512 a, b, c, d;
    gg_pool2_windows512(r0 + 2 * ox, r1 + 2 * ox, lo, hi, end, &a, &b, &c, &d);
    __m512 best = a;
    best = _mm512_mask_blend_ps(gg_pool2_take512(b, best), best, b);
    best = _mm512_mask_blend_ps(gg_pool2_take512(c, best), best, c);
    best = _mm512_mask_blend_ps(gg_pool2_take512(d, best), best, d);
    _mm512_mask_storeu_ps(o + ox, m, best);
  }
}
static void gg_pool2_row_grad(const float *r0, const float *r1, const float *gr, float *d0, float *d1, gg_i ow,
                              int relu, const float *end, const float *gend) {
  const __m512i il0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i il1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (gg_i ox = 0; ox < ow; ox += 16) {
    __mmask16 m, lo, hi;
    gg_pool2_masks(ow - ox < 16 ? ow - ox : 16, &m, &lo, &hi);
    __m512 a, b, c, d;
    gg_pool2_windows512(r0 + 2 * ox, r1 + 2 * ox, lo, hi, end, &a, &b, &c, &d);
    __m512 best = a;
    __mmask16 tb = gg_pool2_take512(b, best);
    best = _mm512_mask_blend_ps(tb, best, b);
    __mmask16 tc = gg_pool2_take512(c, best);
    best = _mm512_mask_blend_ps(tc, best, c);
    __mmask16 td = gg_pool2_take512(d, best);
    __mmask16 s3 = td, s2 = tc & ~td, s1 = tb & ~tc & ~td, s0 = ~(tb | tc | td);
    /* (relu: the window's maximum must be > 0, not NaN, for the gradient to pass) */
    __mmask16 pass = m;
    if (relu) pass &= _mm512_cmp_ps_mask(_mm512_mask_blend_ps(td, best, d), _mm512_setzero_ps(), _CMP_GT_OQ);
    __m512 gl = gr + ox + 16 <= gend ? _mm512_maskz_mov_ps(pass, _mm512_loadu_ps(gr + ox))
                                     : _mm512_maskz_loadu_ps(pass, gr + ox); /* (plain where it can: see above) */
    __m512 gv = _mm512_add_ps(_mm512_setzero_ps(), gl);
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
static gg_i gg_pool2_row_grad(const float *r0, const float *r1, const float *gr, float *d0, float *d1, gg_i ow,
                              int relu) {
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
    if (relu) gv = wasm_v128_and(gv, wasm_f32x4_gt(wasm_v128_bitselect(d, best, td), wasm_f32x4_splat(0.0f)));
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

/* xend: the end of the whole input x is a part of (the row kernels read past a row where it stays inside). */
static void max_pool2d_serial(const float *x, float *out, gg_pool g, const float *xend) {
  (void)xend;
  if (gg_pool_is_2x2(&g)) {
    for (gg_i p = 0; p < g.planes; p++) {
      for (gg_i oy = 0; oy < g.oh; oy++) {
        const float *r0 = x + p * g.h * g.w + 2 * oy * g.w, *r1 = r0 + g.w;
        float *o = out + p * g.oh * g.ow + oy * g.ow;
#if defined(__AVX512F__)
        gg_pool2_row(r0, r1, o, g.ow, xend);
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

/* relu: x is a ReLU's output and dx the gradient of its input, which is 0 wherever x is not > 0 (the ReLU's gradient
 * folded in: the same values as the pooling gradient followed by the ReLU's). */
static void max_pool2d_grad_serial(const float *x, const float *gy, float *dx, gg_pool g, int relu, const float *xend,
                                   const float *gend) {
  (void)xend, (void)gend;
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
        gg_pool2_row_grad(r0, r1, gr, d0, d1, g.ow, relu, xend, gend);
        for (gg_i ix = 2 * g.ow; ix < g.w; ix++) d0[ix] = d1[ix] = 0.0f;
        continue;
#endif
        gg_i ox0 = 0;
#if defined(__wasm_simd128__)
        ox0 = gg_pool2_row_grad(r0, r1, gr, d0, d1, g.ow, relu);
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
          best = td ? d : best;
          bi = td ? 3 : bi;
          float gv = 0.0f + gr[ox];
          gv = !relu || best > 0.0f ? gv : 0.0f;
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
    if (relu)
      for (gg_i i = 0; i < g.h * g.w; i++) db[i] = xb[i] > 0.0f ? db[i] : 0.0f;
  }
}

/* Planes are independent (windows never cross one), so the pooling kernels share them out: each range of planes is
 * the same kernel on fewer planes, computing every value as the whole call would. */
typedef struct {
  const float *x, *gy;
  float *out;
  gg_pool g;
  int relu;    /* max_pool2d_grad_serial's */
  float *sums; /* with relu: each plane's sum of dx (gg_run_sums) */
} pool_args;

static void max_pool_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const pool_args *a = p;
  gg_pool g = a->g;
  g.planes = hi - lo;
  max_pool2d_serial(a->x + lo * g.h * g.w, a->out + lo * g.oh * g.ow, g, a->x + a->g.planes * g.h * g.w);
}

static void max_pool_grad_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const pool_args *a = p;
  gg_pool g = a->g;
  g.planes = hi - lo;
  max_pool2d_grad_serial(a->x + lo * g.h * g.w, a->gy + lo * g.oh * g.ow, a->out + lo * g.h * g.w, g, a->relu,
                         a->x + a->g.planes * g.h * g.w, a->gy + a->g.planes * g.oh * g.ow);
  /* each plane's sum as gg_sum_axis takes it (the same bits), right after it was written, still in cache */
  if (a->sums) gg_run_sums(a->out + lo * g.h * g.w, g.h * g.w, g.h * g.w, hi - lo, a->sums + lo);
}

GG_API void gg_max_pool2d(const float *x, float *out, const int32_t *geom) {
  pool_args a = {x, NULL, out, gg_read_pool(geom), 0, NULL};
  gg_parallel_for(max_pool_range, &a, a.g.planes, 1, 4.0 * (double)a.g.planes * (double)(a.g.h * a.g.w));
}

#if !defined(__wasm__)
/*
 * gg_max_pool2d, and the statistics gg_sum_squares_rows(x, sums, planes, h·w) takes of its input (each plane's sum,
 * and Σx² returned), in the pooling's pass: the monitor's figures of a convolution's ReLU output that a max pooling
 * reads (src/monitor/activation-stats.ts), which a pass of their own read from memory again (the CLI CNN's two
 * outputs: 9.6 MB a step). By gg_sum_squares_rows' blocks of whole planes: each block pooled, then its sums and Σx²
 * taken while it is in L2, the blocks' Σx² added in order: the same bits as the two kernels on any thread count.
 */
typedef struct {
  const float *x;
  float *out, *sums;
  gg_pool g;
  gg_i per; /* planes a block */
  double *partials;
} pool_sums_args;

static void max_pool_sums_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const pool_sums_args *a = p;
  gg_i hw = a->g.h * a->g.w;
  for (gg_i b = lo; b < hi; b++) {
    gg_i r0 = b * a->per, r1 = r0 + a->per < a->g.planes ? r0 + a->per : a->g.planes;
    gg_pool g = a->g;
    g.planes = r1 - r0;
    max_pool2d_serial(a->x + r0 * hw, a->out + r0 * g.oh * g.ow, g, a->x + a->g.planes * hw);
    a->partials[b] = gg_rows_block(a->x + r0 * hw, a->sums + r0, r1 - r0, hw);
  }
}

GG_API double gg_max_pool2d_sums(const float *x, float *out, float *sums, const int32_t *geom) {
  gg_pool g = gg_read_pool(geom);
  gg_i hw = g.h * g.w;
  if (g.planes <= 0 || hw <= 0) {
    gg_max_pool2d(x, out, geom);
    for (gg_i r = 0; r < g.planes; r++) sums[r] = 0.0f;
    return 0.0;
  }
  double partials[RS_MAX_BLOCKS];
  pool_sums_args a = {x, out, sums, g, gg_rows_per_block(g.planes, hw), partials};
  gg_i blocks = (g.planes + a.per - 1) / a.per;
  gg_parallel_for(max_pool_sums_range, &a, blocks, 1, 7.0 * (double)g.planes * (double)hw);
  double s = partials[0];
  for (gg_i b = 1; b < blocks; b++) s += partials[b];
  return s;
}
#endif

GG_API void gg_max_pool2d_grad(const float *x, const float *gy, float *dx, const int32_t *geom) {
  pool_args a = {x, gy, dx, gg_read_pool(geom), 0, NULL};
  gg_parallel_for(max_pool_grad_range, &a, a.g.planes, 1, 8.0 * (double)a.g.planes * (double)(a.g.h * a.g.w));
}

GG_API void gg_max_pool2d_grad_relu(const float *x, const float *gy, float *dx, float *sums, const int32_t *geom) {
  pool_args a = {x, gy, dx, gg_read_pool(geom), 1, sums};
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
