/*
 * native/kernels/conv.c: im2col and col2im, the convolution's unfold and fold (see common.h for what all kernels
 * promise). The whole convolution is in conv_whole.c and conv_direct.c.
 */
#include "conv.h"

/* ------------------------------------------------------------------------------------------------ convolution */

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
#if defined(__AVX512F__)
          if (g.sw == 1 && g.ow <= 16) {
            /* Rows of at most one vector (the CLI CNN's 14-wide second stage): the masks are the row's, the same
             * for every output row, so each row is one masked load and one masked store. */
            __mmask16 valid = (__mmask16)(((1u << x1) - 1) & ~((1u << x0) - 1)), m = (__mmask16)((1u << g.ow) - 1);
            const float *src = xb + (y0 * g.sh - g.ph + ki * g.dh) * g.w - g.pw + kj * g.dw;
            float *cr = cb + y0 * g.ow;
            for (gg_i oy = y0; oy < y1; oy++, src += g.sh * g.w, cr += g.ow)
              _mm512_mask_storeu_ps(cr, m, _mm512_maskz_loadu_ps(valid, src));
            continue;
          }
#endif
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

#if !defined(__wasm__)
void gg_im2col_one(const float *x, float *cols, const gg_conv *g) {
  conv_args u = {x, cols, *g};
  im2col_range(0, 0, g->c * g->kh * g->kw, &u);
}

void gg_col2im_one(const float *cols, float *dx, const gg_conv *g) {
  conv_args u = {cols, dx, *g};
  col2im_range(0, 0, g->c, &u);
}
#endif
