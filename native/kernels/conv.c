/*
 * native/kernels/conv.c: im2col and col2im, the convolution's unfold and fold (see common.h for what all kernels
 * promise).
 */
#include "common.h"

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

GG_API void gg_im2col(const float *x, gg_i xOff, float *cols, const int32_t *geom) {
  conv_args a = {x + xOff, cols, gg_read_conv(geom)};
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

GG_API void gg_col2im(const float *cols, float *dx, gg_i dxOff, const int32_t *geom) {
  conv_args a = {cols, dx + dxOff, gg_read_conv(geom)};
  gg_i planes = a.g.c * a.g.n;
  gg_parallel_for(col2im_range, &a, planes, 1,
                  2.0 * (double)(a.g.c * a.g.kh * a.g.kw) * (double)(a.g.n * a.g.oh * a.g.ow));
}

/* ------------------------------------------------------------------------------------------------ whole convolution */

/*
 * The whole convolution of a batch, natively (x86-64 with our own sgemm, native/gemm_x86.c): the pool's threads take
 * whole images (image i, group gi: item i·groups + gi), each unfolding its image into its own columns and
 * multiplying them with a product on its own thread, so that two threads work on two images at once instead of
 * cutting each image's small product in two, one image after the other. Every output element is computed by one
 * product whatever the thread count, so the bits do not depend on it. The weight gradient sums over the images: they
 * are cut in blocks fixed by N (never by the threads), each block's partial gradient accumulated whole by one thread,
 * image after image, and the partials added in block order in float64 (rounded once). Not in the wasm modules (the
 * products there are wasm_sgemm.c's; the wasm backend composes im2col and sgemm, as the reference does).
 *
 * Each kernel returns 0, having done nothing, where this build has no sgemm of its own or GRADGUARD_GEMM pins
 * OpenBLAS, or a buffer cannot be allocated: the caller then runs the reference's composition.
 */
#if !defined(__wasm__)
#include <stdlib.h>

#include "../gemm_x86.h"

/* The calling thread's buffers, kept for its next call up to GG_CONV_KEEP floats each: [0] the column buffers (one
 * slice per pool thread), [1] the weight gradient's partials. */
#define GG_CONV_KEEP ((size_t)4 << 20) /* 16 MB */
static __thread float *gg_conv_buf[2];
static __thread size_t gg_conv_cap[2];

/* Buffer `which` of n floats for this call, released by gg_conv_release after it; NULL if it cannot be allocated. */
static float *gg_conv_scratch(int which, size_t n) {
  if (n <= gg_conv_cap[which]) return gg_conv_buf[which];
  float *b = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
  if (!b || n > GG_CONV_KEEP) return b;
  free(gg_conv_buf[which]);
  gg_conv_buf[which] = b;
  gg_conv_cap[which] = n;
  return b;
}
static void gg_conv_release(int which, float *b) {
  if (b && b != gg_conv_buf[which]) free(b);
}

typedef struct {
  const float *x, *w, *gy; /* x and weight (forward, weight gradient), gy (backward) */
  float *out;              /* y, gx, or the weight gradient's partials */
  gg_conv g;               /* one group of one image (n = 1, c = channels per group) */
  gg_i n, oc, groups, per; /* images, output channels, groups, images per block (weight gradient) */
  float beta;
  int direct;   /* 1×1, stride 1, no padding: an image's group is its own columns */
  float *cols;  /* pool thread tid's columns at cols + tid·slot */
  gg_i slot;
  const gg_i *tab; /* the forward's rows of the columns, 3 per row r = (c, ki, kj): c·h·w, ki·dh - ph, kj·dw - pw */
  const void *mk;  /* set: the forward runs directly (gg_direct_conv), with these masks */
  const float *wp; /* and this weight (gg_direct_weight) */
  const void *plan; /* or set: it runs directly on this plan (gg_direct_plan), with that weight */
  gg_conv gt;      /* the input gradient's direct convolution: of gy, with the flipped, transposed weight */
} gg_whole_conv;

/*
 * The forward's product packs its columns straight from the input (gg_gemm_own_packed), instead of writing them with
 * im2col and packing them again: the same panels, so the same bits, one pass over them fewer.
 */
typedef struct {
  const float *x; /* the image's group */
  const gg_conv *g;
  const gg_i *tab;
} gg_conv_pack_ctx;

static void gg_conv_pack(const void *ctx, gg_i p0, gg_i kc, gg_i j0, gg_i nc, gg_i nr, float *dst) {
  const gg_conv_pack_ctx *c = ctx;
  const gg_conv *g = c->g;
  /* a sliver's columns are output positions: runs along output rows, at most nr of them */
  gg_i roy[64], rox[64], rt[64], rlen[64];
  for (gg_i js = 0; js < nc; js += nr) {
    gg_i wd = nc - js < nr ? nc - js : nr;
    int runs = 0;
    for (gg_i t = 0, q = j0 + js; t < wd; runs++) {
      gg_i oy = q / g->ow, ox = q % g->ow, len = g->ow - ox < wd - t ? g->ow - ox : wd - t;
      roy[runs] = oy * g->sh, rox[runs] = ox * g->sw, rt[runs] = t, rlen[runs] = len;
      t += len, q += len;
    }
    float *d = dst + js * kc;
    for (gg_i p = 0; p < kc; p++, d += nr) {
      const gg_i *e = c->tab + 3 * (p0 + p);
      const float *xc = c->x + e[0];
      for (int u = 0; u < runs; u++) {
        gg_i iy = roy[u] + e[1], len = rlen[u];
        float *dd = d + rt[u];
        if (iy < 0 || iy >= g->h) {
          for (gg_i t = 0; t < len; t++) dd[t] = 0.0f;
          continue;
        }
        const float *row = xc + iy * g->w;
        gg_i ix0 = rox[u] + e[2];
        if (g->sw == 1) {
          /* lanes [lo, hi) read the input row, the others are padding */
          gg_i lo = ix0 < 0 ? -ix0 : 0, hi = g->w - ix0 < len ? g->w - ix0 : len;
          if (lo > len) lo = len;
          if (hi < lo) hi = lo;
          gg_im2col_row(dd, row + ix0, len, lo, hi);
        } else {
          for (gg_i t = 0; t < len; t++) {
            gg_i ix = ix0 + t * g->sw;
            dd[t] = ix >= 0 && ix < g->w ? row[ix] : 0.0f;
          }
        }
      }
      for (gg_i t = wd; t < nr; t++) d[t] = 0.0f;
    }
  }
}

/* Image i's group gi unfolded into cols (or, for a direct convolution, the input itself). */
static const float *gg_whole_cols(const gg_whole_conv *a, gg_i i, gg_i gi, float *cols) {
  const gg_conv *g = &a->g;
  const float *src = a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w;
  if (a->direct) return src;
  conv_args u = {src, cols, *g};
  im2col_range(0, 0, g->c * g->kh * g->kw, &u);
  return cols;
}

#if defined(__AVX512F__)
/*
 * A stride-1 convolution computed directly, with no columns and no packing, where output rows are 16·k wide (a
 * ResNet's first stage; its input gradient too, as the convolution of gy with the flipped, transposed weight): tiles
 * of 8 output channels by 2 chunks of 16 positions in 16 accumulators, over the weight's columns r = (c, ki, kj) in
 * order, each chunk's input a masked load of a shifted input row (lanes outside it 0).
 */
#define GG_DIRECT_CH 8 /* chunks of 16 positions per output row, at most */
typedef struct {
  const float *w; /* m rows of ckk in panels of 8 rows (gg_direct_weight): row i0 + i, column r at 8·(i0·ckk + r) + i */
  gg_i m, ckk;
  const float *x; /* the image's group */
  const gg_conv *g;
  const gg_i *tab;       /* gg_conv_tab */
  const __mmask16 *mk;   /* [r·GG_DIRECT_CH + chunk of the row]: lanes inside the input row */
  float *y;              /* m rows of oh·ow */
  float beta;
} gg_direct_args;

#define GG_DIR_ACC(i) __m512 d0##i = _mm512_setzero_ps(), d1##i = d0##i
#define GG_DIR_FMA(i)                                                                                            \
  {                                                                                                              \
    __m512 wv = _mm512_set1_ps(wr[i]);                                                                           \
    d0##i = _mm512_fmadd_ps(wv, vb0, d0##i);                                                                     \
    d1##i = _mm512_fmadd_ps(wv, vb1, d1##i);                                                                     \
  }
#define GG_DIR_STORE(i)                                                                                          \
  if (i < mr) {                                                                                                  \
    float *yr = a->y + (i0 + i) * P;                                                                             \
    if (a->beta != 0.0f) {                                                                                       \
      __m512 vbeta = _mm512_set1_ps(a->beta);                                                                    \
      d0##i = _mm512_add_ps(_mm512_mul_ps(vbeta, _mm512_loadu_ps(yr + p0)), d0##i);                              \
      if (two) d1##i = _mm512_add_ps(_mm512_mul_ps(vbeta, _mm512_loadu_ps(yr + p1)), d1##i);                     \
    }                                                                                                            \
    _mm512_storeu_ps(yr + p0, d0##i);                                                                            \
    if (two) _mm512_storeu_ps(yr + p1, d1##i);                                                                   \
  }
#define GG_DIR_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)

/* Output channels [i0, i0 + mr) (mr <= 8) at chunks q (and q + 1 if two) of 16 positions. */
static void gg_direct_tile(const gg_direct_args *a, gg_i i0, gg_i mr, gg_i q, int two) {
  const gg_conv *g = a->g;
  gg_i P = g->oh * g->ow, per = g->ow / 16;
  gg_i p0 = q * 16, p1 = p0 + 16;
  gg_i oy0 = p0 / g->ow, ch0 = (p0 % g->ow) / 16, oy1 = p1 / g->ow, ch1 = (p1 % g->ow) / 16;
  if (!two) oy1 = oy0, ch1 = ch0;
  const float *wr = a->w + i0 * a->ckk; /* this panel's column r at wr + 8·r */
  GG_DIR_ALL(GG_DIR_ACC);
  for (gg_i r = 0; r < a->ckk; r++, wr += 8) {
    const gg_i *e = a->tab + 3 * r;
    const float *xc = a->x + e[0] + e[2];
    gg_i iy0 = oy0 + e[1], iy1 = oy1 + e[1];
    int in0 = iy0 >= 0 && iy0 < g->h, in1 = two && iy1 >= 0 && iy1 < g->h;
    __mmask16 m0 = in0 ? a->mk[r * GG_DIRECT_CH + ch0] : 0, m1 = in1 ? a->mk[r * GG_DIRECT_CH + ch1] : 0;
    __m512 vb0 = _mm512_maskz_loadu_ps(m0, xc + (in0 ? iy0 * g->w : 0) + ch0 * 16);
    __m512 vb1 = _mm512_maskz_loadu_ps(m1, xc + (in1 ? iy1 * g->w : 0) + ch1 * 16);
    GG_DIR_ALL(GG_DIR_FMA);
  }
  (void)per;
  GG_DIR_ALL(GG_DIR_STORE);
}
#undef GG_DIR_ACC
#undef GG_DIR_FMA
#undef GG_DIR_STORE
#undef GG_DIR_ALL

/* The weight's groups (oc/groups rows of ckk each) in panels of 8 rows (gg_direct_args.w), zero-padded; NULL if it
 * cannot be allocated. Group gi's panels start at gi·ceil(ocg/8)·8·ckk. */
static float *gg_direct_weight(const float *w, gg_i oc, gg_i groups, gg_i ckk) {
  gg_i ocg = oc / groups, m8 = (ocg + 7) / 8 * 8;
  float *p = malloc(sizeof(float) * (size_t)(groups * m8 * ckk));
  if (!p) return NULL;
  for (gg_i gi = 0; gi < groups; gi++)
    for (gg_i i = 0; i < m8; i++)
      for (gg_i r = 0; r < ckk; r++)
        p[gi * m8 * ckk + (i / 8 * ckk + r) * 8 + i % 8] = i < ocg ? w[(gi * ocg + i) * ckk + r] : 0.0f;
  return p;
}

/* The input gradient's weight in panels (as gg_direct_weight): rows c < icg, columns (o, ki, kj) of the transposed
 * convolution, W'[c][o, ki, kj] = W[o][c][kh-1-ki][kw-1-kj], group by group. */
static float *gg_direct_weight_t(const float *w, gg_i oc, gg_i groups, gg_i icg, gg_i kh, gg_i kw) {
  gg_i ocg = oc / groups, m8 = (icg + 7) / 8 * 8, cols = ocg * kh * kw;
  float *p = malloc(sizeof(float) * (size_t)(groups * m8 * cols));
  if (!p) return NULL;
  for (gg_i gi = 0; gi < groups; gi++)
    for (gg_i c = 0; c < m8; c++)
      for (gg_i r = 0; r < cols; r++) {
        gg_i o = r / (kh * kw), ki = r / kw % kh, kj = r % kw;
        p[gi * m8 * cols + (c / 8 * cols + r) * 8 + c % 8] =
            c < icg ? w[(((gi * ocg + o) * icg + c) * kh + (kh - 1 - ki)) * kw + (kw - 1 - kj)] : 0.0f;
      }
  return p;
}

/* y = w·columns(x) (+ beta·y) for the image, directly. */
static void gg_direct_conv(const gg_direct_args *a) {
  gg_i chunks = a->g->oh * a->g->ow / 16;
  for (gg_i q = 0; q < chunks; q += 2)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile(a, i, a->m - i < 8 ? a->m - i : 8, q, q + 1 < chunks);
}

/*
 * Any other stride-1 convolution with output rows of 8 or more (ResNet-20's third stage, 8 wide; the CLI CNN's 28
 * and 14): a chunk of 16 consecutive positions spans up to 3 output rows, so its input is up to 3 masked loads of
 * shifted input rows merged into one vector, from a plan made once per call: per chunk its segments' offsets, per
 * chunk, weight column and segment the lanes that read the input (0 for a row outside it).
 */
typedef struct {
  gg_i chunks, ckk;
  gg_i *off;            /* [q·3 + s]: where segment s's lane 0 reads, from the column's (0, 0): oy·w + ox - lane */
  unsigned char *nseg;  /* [q]: 1 to 3 */
  __mmask16 *mk;        /* [(q·ckk + r)·3 + s] */
} gg_direct_plan;

/* The plan for geometry g, one malloc (freed with free); NULL if too large (over 4 MB) or not allocated. */
static gg_direct_plan *gg_direct_plan_make(const gg_conv *g, const gg_i *tab) {
  gg_i P = g->oh * g->ow, chunks = (P + 15) / 16, ckk = g->c * g->kh * g->kw;
  size_t bytes = sizeof(gg_direct_plan) + sizeof(gg_i) * 3 * (size_t)chunks + (size_t)chunks + 8 +
                 sizeof(__mmask16) * 3 * (size_t)chunks * (size_t)ckk;
  if (bytes > ((size_t)4 << 20)) return NULL;
  gg_direct_plan *pl = malloc(bytes);
  if (!pl) return NULL;
  pl->chunks = chunks, pl->ckk = ckk;
  pl->off = (gg_i *)(pl + 1);
  pl->mk = (__mmask16 *)(pl->off + 3 * chunks);
  pl->nseg = (unsigned char *)(pl->mk + 3 * chunks * ckk);
  for (gg_i q = 0; q < chunks; q++) {
    gg_i oyS[3], oxS[3], ls[3], le[3];
    int n = 0;
    for (gg_i l = 0, p = q * 16; l < 16 && p < P; n++) {
      gg_i oy = p / g->ow, ox = p % g->ow, len = g->ow - ox < 16 - l ? g->ow - ox : 16 - l;
      if (len > P - p) len = P - p;
      oyS[n] = oy, oxS[n] = ox, ls[n] = l, le[n] = l + len;
      pl->off[q * 3 + n] = oy * g->w + ox - l;
      l += len, p += len;
    }
    pl->nseg[q] = (unsigned char)n;
    for (gg_i r = 0; r < ckk; r++) {
      const gg_i *e = tab + 3 * r;
      for (int sg = 0; sg < 3; sg++) {
        __mmask16 m = 0;
        if (sg < n && oyS[sg] + e[1] >= 0 && oyS[sg] + e[1] < g->h) {
          /* lanes l in [ls, le) whose input column oxS + (l - ls) + e2 lies in [0, w) */
          gg_i lo = ls[sg] - (oxS[sg] + e[2]), hi = ls[sg] + g->w - (oxS[sg] + e[2]);
          lo = lo < ls[sg] ? ls[sg] : lo;
          hi = hi > le[sg] ? le[sg] : hi;
          if (hi > lo) m = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
        }
        pl->mk[(q * ckk + r) * 3 + sg] = m;
      }
    }
    for (int sg = n; sg < 3; sg++) pl->off[q * 3 + sg] = 0;
  }
  return pl;
}

#define GG_DIR_ACC(i) __m512 d0##i = _mm512_setzero_ps(), d1##i = d0##i
#define GG_DIR_FMA(i)                                                                                            \
  {                                                                                                              \
    __m512 wv = _mm512_set1_ps(wr[i]);                                                                           \
    d0##i = _mm512_fmadd_ps(wv, vb0, d0##i);                                                                     \
    d1##i = _mm512_fmadd_ps(wv, vb1, d1##i);                                                                     \
  }
#define GG_DIR_STORE(i)                                                                                          \
  if (i < mr) {                                                                                                  \
    float *yr = a->y + (i0 + i) * P;                                                                             \
    if (a->beta != 0.0f) {                                                                                       \
      __m512 vbeta = _mm512_set1_ps(a->beta);                                                                    \
      d0##i = _mm512_add_ps(_mm512_mul_ps(vbeta, _mm512_maskz_loadu_ps(s0, yr + p0)), d0##i);                    \
      d1##i = _mm512_add_ps(_mm512_mul_ps(vbeta, _mm512_maskz_loadu_ps(s1, yr + p1)), d1##i);                    \
    }                                                                                                            \
    _mm512_mask_storeu_ps(yr + p0, s0, d0##i);                                                                   \
    _mm512_mask_storeu_ps(yr + p1, s1, d1##i);                                                                   \
  }
#define GG_DIR_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)

/* Output channels [i0, i0 + mr) (mr <= 8) at chunks q and q + 1 (if two) of the plan. */
static void gg_direct_tile_plan(const gg_direct_args *a, const gg_direct_plan *pl, gg_i i0, gg_i mr, gg_i q,
                                int two) {
  const gg_conv *g = a->g;
  gg_i P = g->oh * g->ow, ckk = a->ckk;
  gg_i p0 = q * 16, p1 = p0 + 16;
  gg_i q1 = two ? q + 1 : q;
  int n0 = pl->nseg[q], n1 = pl->nseg[q1];
  const gg_i *o0 = pl->off + 3 * q, *o1 = pl->off + 3 * q1;
  /* positions stored: the last chunk may be short, a missing second chunk stores nothing */
  __mmask16 s0 = P - p0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (P - p0)) - 1);
  __mmask16 s1 = !two ? 0 : P - p1 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (P - p1)) - 1);
  const __mmask16 *m0 = pl->mk + q * ckk * 3, *m1 = pl->mk + q1 * ckk * 3;
  const float *wr = a->w + i0 * ckk;
  GG_DIR_ALL(GG_DIR_ACC);
  for (gg_i r = 0; r < ckk; r++, wr += 8, m0 += 3, m1 += 3) {
    const gg_i *e = a->tab + 3 * r;
    const float *xr = a->x + e[0] + e[1] * g->w + e[2];
    __m512 vb0 = _mm512_maskz_loadu_ps(m0[0], xr + o0[0]);
    if (n0 > 1) vb0 = _mm512_mask_loadu_ps(vb0, m0[1], xr + o0[1]);
    if (n0 > 2) vb0 = _mm512_mask_loadu_ps(vb0, m0[2], xr + o0[2]);
    __m512 vb1 = _mm512_maskz_loadu_ps(two ? m1[0] : 0, xr + o1[0]);
    if (n1 > 1) vb1 = _mm512_mask_loadu_ps(vb1, two ? m1[1] : 0, xr + o1[1]);
    if (n1 > 2) vb1 = _mm512_mask_loadu_ps(vb1, two ? m1[2] : 0, xr + o1[2]);
    GG_DIR_ALL(GG_DIR_FMA);
  }
  GG_DIR_ALL(GG_DIR_STORE);
}
#undef GG_DIR_ACC
#undef GG_DIR_FMA
#undef GG_DIR_STORE
#undef GG_DIR_ALL

static void gg_direct_conv_plan(const gg_direct_args *a, const gg_direct_plan *pl) {
  for (gg_i q = 0; q < pl->chunks; q += 2)
    for (gg_i i = 0; i < a->m; i += 8)
      gg_direct_tile_plan(a, pl, i, a->m - i < 8 ? a->m - i : 8, q, q + 1 < pl->chunks);
}

/*
 * Whether a convolution runs directly on a plan: stride 1 and rows of 8 (ResNet-20's third stage: a chunk is two
 * whole rows; 64 images, 3.7 ms against 4.7 with im2col, forward or input gradient). The plan takes any rows of 8 or
 * more, but where chunks straddle rows unevenly the extra loads cost more than the columns (the CLI CNN's 14-wide
 * rows: 6.5 ms against 6.1).
 */
static int gg_direct_plan_ok(const gg_conv *g) { return g->sh == 1 && g->sw == 1 && g->ow == 8; }

/* Whether a convolution of geometry g runs directly with row-aligned chunks (gg_direct_tile). */
static int gg_direct_ok(const gg_conv *g) {
  return g->sh == 1 && g->sw == 1 && g->ow % 16 == 0 && g->ow / 16 <= GG_DIRECT_CH;
}
static __mmask16 *gg_direct_masks(const gg_conv *g, const gg_i *tab) {
  gg_i ckk = g->c * g->kh * g->kw;
  __mmask16 *mk = malloc(sizeof(__mmask16) * GG_DIRECT_CH * (size_t)ckk);
  if (!mk) return NULL;
  for (gg_i r = 0; r < ckk; r++) {
    for (gg_i ch = 0; ch < GG_DIRECT_CH; ch++) {
      gg_i ix0 = ch * 16 + tab[3 * r + 2];
      gg_i lo = ix0 < 0 ? -ix0 : 0, hi = g->w - ix0;
      lo = lo > 16 ? 16 : lo;
      hi = hi < lo ? lo : hi > 16 ? 16 : hi;
      mk[r * GG_DIRECT_CH + ch] = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
    }
  }
  return mk;
}
#endif

static void gg_whole_fwd(int tid, gg_i lo, gg_i hi, const void *p) {
  const gg_whole_conv *a = p;
  const gg_conv *g = &a->g;
  gg_i ocg = a->oc / a->groups, ckk = g->c * g->kh * g->kw, P = g->oh * g->ow;
  for (gg_i t = lo; t < hi; t++) {
    gg_i i = t / a->groups, gi = t % a->groups;
    const float *w = a->w + gi * ocg * ckk;
    float *y = a->out + (i * a->oc + gi * ocg) * P;
#if defined(__AVX512F__)
    if (a->mk) {
      gg_direct_args d = {a->wp + gi * (ocg + 7) / 8 * 8 * ckk, ocg, ckk,
                          a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w, g, a->tab, a->mk, y, a->beta};
      gg_direct_conv(&d);
      continue;
    }
    if (a->plan) {
      gg_direct_args d = {a->wp + gi * (ocg + 7) / 8 * 8 * ckk, ocg, ckk,
                          a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w, g, a->tab, NULL, y, a->beta};
      gg_direct_conv_plan(&d, a->plan);
      continue;
    }
#endif
    if (a->tab) {
      gg_conv_pack_ctx c = {a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w, g, a->tab};
      if (gg_gemm_own_packed(ocg, P, ckk, 1.0f, w, ckk, gg_conv_pack, &c, a->beta, y, P)) continue;
    }
    const float *src = gg_whole_cols(a, i, gi, a->cols + tid * a->slot);
    gg_gemm_own(0, 0, ocg, P, ckk, 1.0f, w, ckk, src, P, a->beta, y, P);
  }
}

static void gg_whole_dx(int tid, gg_i lo, gg_i hi, const void *p) {
  const gg_whole_conv *a = p;
  const gg_conv *g = &a->g;
  gg_i ocg = a->oc / a->groups, ckk = g->c * g->kh * g->kw, P = g->oh * g->ow;
  float *dcols = a->cols + tid * a->slot;
  for (gg_i t = lo; t < hi; t++) {
    gg_i i = t / a->groups, gi = t % a->groups;
    float *gx = a->out + (i * g->c * a->groups + gi * g->c) * g->h * g->w;
#if defined(__AVX512F__)
    if (a->mk) {
      gg_i cols = ocg * g->kh * g->kw;
      gg_direct_args d = {a->wp + gi * (g->c + 7) / 8 * 8 * cols, g->c, cols, a->gy + (i * a->oc + gi * ocg) * P,
                          &a->gt, a->tab, a->mk, gx, 0.0f};
      gg_direct_conv(&d);
      continue;
    }
    if (a->plan) {
      gg_i cols = ocg * g->kh * g->kw;
      gg_direct_args d = {a->wp + gi * (g->c + 7) / 8 * 8 * cols, g->c, cols, a->gy + (i * a->oc + gi * ocg) * P,
                          &a->gt, a->tab, NULL, gx, 0.0f};
      gg_direct_conv_plan(&d, a->plan);
      continue;
    }
#endif
    float *dst = a->direct ? gx : dcols;
    gg_gemm_own(1, 0, ckk, P, ocg, 1.0f, a->w + gi * ocg * ckk, ckk, a->gy + (i * a->oc + gi * ocg) * P, P, 0.0f, dst, P);
    if (!a->direct) {
      conv_args u = {dcols, gx, *g};
      col2im_range(0, 0, g->c, &u);
    }
  }
}

#if defined(__AVX512F__)
/*
 * The weight gradient's product where an image has many positions (a ResNet's first stage: 16×144 over 1024): both
 * operands run along the positions, gy_i's rows and the columns' rows, so C[o][r] (+)= Σ_p A[o][p]·B[r][p] is a tile
 * of dot products, 4 rows of A by 6 of B in 24 vector accumulators, read straight from A and B with no packing (the
 * sgemm would pack B transposed, element by element: 34 GFLOP/s on that shape). Each accumulator's lanes are added
 * in a fixed order at the end. Rows past m or n repeat row 0 and are not stored.
 */
#define GG_DOT_MIN 512 /* positions per image from which the dot-product tiles pay */
/* 24 named accumulators (an array of them would live in memory through the loop, with gcc), c<row of A><row of B> */
#define GG_DOT_ACC(j) __m512 c0##j = _mm512_setzero_ps(), c1##j = c0##j, c2##j = c0##j, c3##j = c0##j
#define GG_DOT_FMA(j, vb)                                                                                        \
  {                                                                                                              \
    __m512 v = (vb);                                                                                             \
    c0##j = _mm512_fmadd_ps(va0, v, c0##j);                                                                      \
    c1##j = _mm512_fmadd_ps(va1, v, c1##j);                                                                      \
    c2##j = _mm512_fmadd_ps(va2, v, c2##j);                                                                      \
    c3##j = _mm512_fmadd_ps(va3, v, c3##j);                                                                      \
  }
#define GG_DOT_SUM(j)                                                                                            \
  sum[0][j] = _mm512_reduce_add_ps(c0##j), sum[1][j] = _mm512_reduce_add_ps(c1##j),                             \
  sum[2][j] = _mm512_reduce_add_ps(c2##j), sum[3][j] = _mm512_reduce_add_ps(c3##j)
#define GG_DOT_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5)

/* The tile's sums into C (rows mr, columns nr), added to it or written. */
#define GG_DOT_STORE()                                                                                           \
  float sum[4][6];                                                                                               \
  GG_DOT_ALL(GG_DOT_SUM);                                                                                        \
  for (gg_i i = 0; i < mr; i++)                                                                                  \
    for (gg_i j = 0; j < nr; j++) C[i * ldc + j] = accumulate ? C[i * ldc + j] + sum[i][j] : sum[i][j]

static void gg_dot_tile(gg_i mr, gg_i nr, gg_i k, const float *A, gg_i lda, const float *B, gg_i ldb, float *C,
                        gg_i ldc, int accumulate) {
  const float *a0 = A, *a1 = A + (mr > 1) * lda, *a2 = A + (mr > 2) * 2 * lda, *a3 = A + (mr > 3) * 3 * lda;
  const float *b[6];
  for (int j = 0; j < 6; j++) b[j] = B + (j < nr ? j : 0) * ldb;
  const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3], *b4 = b[4], *b5 = b[5];
  GG_DOT_ALL(GG_DOT_ACC);
  for (gg_i p = 0; p < k; p += 16) {
    gg_i left = k - p;
    __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    __m512 va0 = _mm512_maskz_loadu_ps(m, a0 + p), va1 = _mm512_maskz_loadu_ps(m, a1 + p);
    __m512 va2 = _mm512_maskz_loadu_ps(m, a2 + p), va3 = _mm512_maskz_loadu_ps(m, a3 + p);
    GG_DOT_FMA(0, _mm512_maskz_loadu_ps(m, b0 + p))
    GG_DOT_FMA(1, _mm512_maskz_loadu_ps(m, b1 + p))
    GG_DOT_FMA(2, _mm512_maskz_loadu_ps(m, b2 + p))
    GG_DOT_FMA(3, _mm512_maskz_loadu_ps(m, b3 + p))
    GG_DOT_FMA(4, _mm512_maskz_loadu_ps(m, b4 + p))
    GG_DOT_FMA(5, _mm512_maskz_loadu_ps(m, b5 + p))
  }
  GG_DOT_STORE();
}

/*
 * The same tile with B the columns' rows of one image read straight from its input x (no im2col), for a stride-1
 * convolution whose output rows are a multiple of 16 wide, at most GG_DOT_XCH chunks of 16: row r's position
 * (oy, ox) is x[e0 + (oy + e1)·w + ox + e2] with (e0, e1, e2) = tab[3r..], 0 outside the input. The sums are those of
 * the columns' tile, in the same order.
 */
#define GG_DOT_XCH 8
static void gg_dot_tile_x(gg_i mr, gg_i nr, const float *A, gg_i lda, const float *x, const gg_conv *g,
                          const gg_i *tab, float *C, gg_i ldc, int accumulate) {
  const float *a0 = A, *a1 = A + (mr > 1) * lda, *a2 = A + (mr > 2) * 2 * lda, *a3 = A + (mr > 3) * 3 * lda;
  const float *xb[6];
  gg_i dy[6];
  __mmask16 mk[6][GG_DOT_XCH];
  gg_i chunks = g->ow / 16;
  for (int j = 0; j < 6; j++) {
    const gg_i *e = tab + 3 * (j < nr ? j : 0);
    xb[j] = x + e[0] + e[2]; /* lane ox of a row reads xb + iy·w + ox (never a masked-off lane) */
    dy[j] = e[1];
    for (gg_i ch = 0; ch < chunks; ch++) {
      /* lanes whose input column ch·16 + lane + e2 lies in [0, w) */
      gg_i ix0 = ch * 16 + e[2];
      gg_i lo = ix0 < 0 ? -ix0 : 0, hi = g->w - ix0;
      lo = lo > 16 ? 16 : lo;
      hi = hi < lo ? lo : hi > 16 ? 16 : hi;
      mk[j][ch] = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
    }
  }
  GG_DOT_ALL(GG_DOT_ACC);
  for (gg_i oy = 0; oy < g->oh; oy++) {
    /* each B row's input row, or none (all lanes padding) */
    const float *row[6];
    __mmask16 on[6];
    for (int j = 0; j < 6; j++) {
      gg_i iy = oy + dy[j];
      int in = iy >= 0 && iy < g->h;
      row[j] = in ? xb[j] + iy * g->w : xb[j];
      on[j] = in ? (__mmask16)0xFFFF : 0;
    }
    for (gg_i ch = 0; ch < chunks; ch++) {
      gg_i p = oy * g->ow + ch * 16, ox = ch * 16;
      __m512 va0 = _mm512_loadu_ps(a0 + p), va1 = _mm512_loadu_ps(a1 + p);
      __m512 va2 = _mm512_loadu_ps(a2 + p), va3 = _mm512_loadu_ps(a3 + p);
#define GG_DOT_XB(j) _mm512_maskz_loadu_ps(mk[j][ch] & on[j], row[j] + ox)
      GG_DOT_FMA(0, GG_DOT_XB(0))
      GG_DOT_FMA(1, GG_DOT_XB(1))
      GG_DOT_FMA(2, GG_DOT_XB(2))
      GG_DOT_FMA(3, GG_DOT_XB(3))
      GG_DOT_FMA(4, GG_DOT_XB(4))
      GG_DOT_FMA(5, GG_DOT_XB(5))
#undef GG_DOT_XB
    }
  }
  GG_DOT_STORE();
}

/* gg_dot_nt over one image's input (gg_dot_tile_x): C[m×n] (+)= A[m×P]·columnsᵀ. */
static void gg_dot_nt_x(gg_i m, gg_i n, const float *A, gg_i lda, const float *x, const gg_conv *g, const gg_i *tab,
                        float *C, gg_i ldc, int accumulate) {
  for (gg_i j = 0; j < n; j += 6)
    for (gg_i i = 0; i < m; i += 4)
      gg_dot_tile_x(m - i < 4 ? m - i : 4, n - j < 6 ? n - j : 6, A + i * lda, lda, x, g, tab + 3 * j, C + i * ldc + j,
                    ldc, accumulate);
}

/* C[m×n] (+)= A[m×k]·B[n×k]ᵀ, rows of A lda apart, of B ldb apart. */
static void gg_dot_nt(gg_i m, gg_i n, gg_i k, const float *A, gg_i lda, const float *B, gg_i ldb, float *C, gg_i ldc,
                      int accumulate) {
  for (gg_i j = 0; j < n; j += 6)
    for (gg_i i = 0; i < m; i += 4)
      gg_dot_tile(m - i < 4 ? m - i : 4, n - j < 6 ? n - j : 6, k, A + i * lda, lda, B + j * ldb, ldb,
                  C + i * ldc + j, ldc, accumulate);
}
#endif

/* Item t = block·groups + gi: the block's partial gradient of group gi, its images one after the other. */
static void gg_whole_dw(int tid, gg_i lo, gg_i hi, const void *p) {
  const gg_whole_conv *a = p;
  const gg_conv *g = &a->g;
  gg_i ocg = a->oc / a->groups, ckk = g->c * g->kh * g->kw, P = g->oh * g->ow;
  float *cols = a->cols + tid * a->slot;
  for (gg_i t = lo; t < hi; t++) {
    gg_i b = t / a->groups, gi = t % a->groups;
    gg_i i0 = b * a->per, i1 = i0 + a->per < a->n ? i0 + a->per : a->n;
    float *part = a->out + (b * a->oc + gi * ocg) * ckk;
    for (gg_i i = i0; i < i1; i++) {
      const float *gy = a->gy + (i * a->oc + gi * ocg) * P;
#if defined(__AVX512F__)
      if (a->tab) {
        const float *x = a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w;
        gg_dot_nt_x(ocg, ckk, gy, P, x, g, a->tab, part, ckk, i != i0);
        continue;
      }
#endif
      const float *src = gg_whole_cols(a, i, gi, cols);
#if defined(__AVX512F__)
      if (P >= GG_DOT_MIN) {
        gg_dot_nt(ocg, ckk, P, gy, P, src, P, part, ckk, i != i0);
        continue;
      }
#endif
      gg_gemm_own(0, 1, ocg, ckk, P, 1.0f, gy, P, src, P, i == i0 ? 0.0f : 1.0f, part, ckk);
    }
  }
}

/* The rows of the columns, 3 per row r = (c, ki, kj): c·h·w, ki·dh - ph, kj·dw - pw (gg_whole_conv.tab); NULL if it
 * cannot be allocated. */
static gg_i *gg_conv_tab(const gg_conv *g) {
  gg_i ckk = g->c * g->kh * g->kw;
  gg_i *tab = malloc(sizeof(gg_i) * 3 * (size_t)ckk);
  if (!tab) return NULL;
  for (gg_i r = 0; r < ckk; r++) {
    gg_i c = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;
    tab[3 * r] = c * g->h * g->w, tab[3 * r + 1] = ki * g->dh - g->ph, tab[3 * r + 2] = kj * g->dw - g->pw;
  }
  return tab;
}

/* The arguments of a whole-convolution kernel, and its column buffers; 0 if it cannot run here. */
static int gg_whole_setup(gg_whole_conv *a, const int32_t *geom, gg_i oc, gg_i groups) {
  if (!gg_conv_own_usable()) return 0;
  a->g = gg_read_conv(geom);
  a->n = a->g.n;
  a->g.n = 1;
  a->oc = oc;
  a->groups = groups;
  a->direct = a->g.kh == 1 && a->g.kw == 1 && a->g.sh == 1 && a->g.sw == 1 && a->g.ph == 0 && a->g.pw == 0;
  a->slot = a->direct ? 0 : (a->g.c * a->g.kh * a->g.kw * a->g.oh * a->g.ow + 15) / 16 * 16;
  a->cols = NULL;
  if (a->slot) {
    a->cols = gg_conv_scratch(0, (size_t)a->slot * (size_t)gg_pool_threads());
    if (!a->cols) return 0;
  }
  return 1;
}

/* Multiply-adds of one image's product (the work estimate of gg_parallel_for). */
static double gg_whole_work(const gg_whole_conv *a) {
  return (double)(a->oc / a->groups) * (double)(a->g.c * a->g.kh * a->g.kw) * (double)(a->g.oh * a->g.ow) *
         (double)a->groups;
}

GG_API int gg_conv2d(const float *x, const float *weight, float *out, const int32_t *geom, gg_i oc, gg_i groups,
                     int accumulate) {
  gg_whole_conv a = {.x = x, .w = weight, .out = out};
  if (!gg_whole_setup(&a, geom, oc, groups)) return 0;
  a.beta = accumulate ? 1.0f : 0.0f;
  /* Computed directly (gg_direct_conv) where it has stride 1 and rows of 16·k (ResNet-20's first two stages: 3.6 ms
   * against 6.6 and 4.4 with im2col, 64 images); else packed straight from the input where an output row fills a
   * column sliver (10% faster); narrower rows cut the slivers into short runs, and im2col's vector rows and a plain
   * packing do better (the CLI CNN's 14 wide rows: 20% slower packed straight). */
  int dir = 0, gen = 0;
#if defined(__AVX512F__)
  /* (at least 8 output channels: a tile has 8) */
  dir = !a.direct && oc / groups >= 8 && gg_direct_ok(&a.g);
  gen = !a.direct && oc / groups >= 8 && !dir && gg_direct_plan_ok(&a.g);
#endif
  gg_i *tab = !a.direct && (a.g.ow >= 32 || dir || gen) ? gg_conv_tab(&a.g) : NULL;
  /* computed directly where the rows allow: the weight in panels, the rows' lane masks or the plan */
  void *mk = NULL, *plan = NULL;
  float *wp = NULL;
#if defined(__AVX512F__)
  if (tab && (dir || gen)) {
    wp = gg_direct_weight(weight, oc, groups, a.g.c * a.g.kh * a.g.kw);
    if (wp && dir) mk = gg_direct_masks(&a.g, tab);
    if (wp && gen) plan = gg_direct_plan_make(&a.g, tab);
  }
  if (gen && !plan && a.g.ow < 32) free(tab), tab = NULL;
#endif
  a.tab = tab;
  a.mk = mk;
  a.plan = plan;
  a.wp = wp;
  gg_parallel_for(gg_whole_fwd, &a, a.n * groups, 1, gg_whole_work(&a) * (double)a.n);
  free(plan);
  free(mk);
  free(wp);
  free(tab);
  gg_conv_release(0, a.cols);
  return 1;
}

GG_API int gg_conv2d_grad_input(const float *gy, const float *weight, float *gx, const int32_t *geom, gg_i oc,
                                gg_i groups) {
  gg_whole_conv a = {.w = weight, .gy = gy, .out = gx};
  if (!gg_whole_setup(&a, geom, oc, groups)) return 0;
  /* Stride 1 with input rows of 16·k: the convolution of gy with the flipped, transposed weight, padded by
   * d·(k-1) - p, computed directly (no columns' gradient, no col2im). */
  gg_i *tab = NULL;
  void *mk = NULL, *plan = NULL;
  float *wp = NULL;
#if defined(__AVX512F__)
  const gg_conv *g = &a.g;
  gg_conv t = {1, a.oc / groups, g->oh, g->ow, g->kh, g->kw, 1, 1, g->dh * (g->kh - 1) - g->ph,
               g->dw * (g->kw - 1) - g->pw, g->dh, g->dw, g->h, g->w};
  a.gt = t;
  /* (at least 8 input channels: a tile has 8; the CLI CNN's first conv has 1) */
  if (!a.direct && g->sh == 1 && g->sw == 1 && g->c >= 8 && (gg_direct_ok(&t) || gg_direct_plan_ok(&t))) {
    tab = gg_conv_tab(&t);
    wp = tab ? gg_direct_weight_t(weight, oc, groups, g->c, g->kh, g->kw) : NULL;
    if (wp && gg_direct_ok(&t))
      mk = gg_direct_masks(&t, tab);
    else if (wp)
      plan = gg_direct_plan_make(&t, tab);
  }
#endif
  a.tab = tab;
  a.wp = wp;
  a.mk = mk;
  a.plan = plan;
  gg_parallel_for(gg_whole_dx, &a, a.n * groups, 1, gg_whole_work(&a) * (double)a.n);
  free(plan);
  free(mk);
  free(wp);
  free(tab);
  gg_conv_release(0, a.cols);
  return 1;
}

/* Blocks of images of the weight gradient: at most this many, fewer where their partials would pass GG_CONV_KEEP. */
#define GG_CONV_BLOCKS 16

GG_API int gg_conv2d_grad_weight(const float *x, const float *gy, float *gw, const int32_t *geom, gg_i oc,
                                 gg_i groups) {
  gg_whole_conv a = {.x = x, .gy = gy};
  if (!gg_whole_setup(&a, geom, oc, groups)) return 0;
  gg_i wsize = oc * a.g.c * a.g.kh * a.g.kw;
  gg_i blocks = a.n < GG_CONV_BLOCKS ? a.n : GG_CONV_BLOCKS;
  gg_i fit = (gg_i)(GG_CONV_KEEP / (size_t)wsize);
  if (blocks > fit) blocks = fit < 1 ? 1 : fit;
  a.per = (a.n + blocks - 1) / blocks;
  blocks = (a.n + a.per - 1) / a.per;
  float *parts = gw;
  if (blocks > 1) {
    parts = gg_conv_scratch(1, (size_t)blocks * (size_t)wsize);
    if (!parts) {
      gg_conv_release(0, a.cols);
      return 0;
    }
  }
  a.out = parts;
  a.tab = NULL;
#if defined(__AVX512F__)
  /* dot products read straight from the input where it is a plain shift of it (stride 1, rows of 16·k) */
  if (!a.direct && a.g.oh * a.g.ow >= GG_DOT_MIN && a.g.sh == 1 && a.g.sw == 1 && a.g.ow % 16 == 0 &&
      a.g.ow / 16 <= GG_DOT_XCH)
    a.tab = gg_conv_tab(&a.g);
#endif
  gg_parallel_for(gg_whole_dw, &a, blocks * groups, 1, gg_whole_work(&a) * (double)a.n);
  free((void *)a.tab);
  if (blocks > 1) {
    for (gg_i j = 0; j < wsize; j++) {
      double s = 0.0;
      for (gg_i b = 0; b < blocks; b++) s += (double)parts[b * wsize + j];
      gw[j] = (float)s;
    }
    gg_conv_release(1, parts);
  }
  gg_conv_release(0, a.cols);
  return 1;
}
#endif
