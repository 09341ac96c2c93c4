/*
 * native/kernels/conv_whole.c: the whole convolution of a batch, natively (see common.h for what all kernels
 * promise).
 */
#include "conv.h"

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
 * 3×3 convolutions with stride 1, padding 1 and 16+ channels in and out (a ResNet's, the CLI CNN's second) run by
 * Winograd F(2×2, 3×3) instead where their tiles fill its vectors well enough (gg_wino_tiles), all three kernels
 * (gg_conv_wino, gg_conv_wino_dw, conv_wino.c), with the same sharing out.
 *
 * Where the shapes allow, an image's columns are never written: stride-1 forwards and input gradients run directly
 * (gg_direct_conv3 for rows of 16·k and of 8, conv_direct3.c; gg_direct_conv_plan for other rows of 8+, reading
 * shifted input rows; stride 2 on the phases of the image or of gx, gg_direct_s2_geom), the weight gradient with 16·k output channels per group and 64+ columns as outer products
 * (gg_conv_dw_outer, conv_dw.c), and other weight gradients of images with 512+ positions as dot products
 * (gg_dot_nt), read from the input itself for stride 1. Which path runs depends on the shapes only.
 *
 * An image's product (the columns' paths) is computed by the implementation the per-shape policy chose for its
 * shape (gg_gemm_choose_own: ours, or OpenBLAS on the pool thread alone), decided on the calling thread before the
 * images are shared out, so that a shape measured for the first time is measured once, outside the workers. The
 * choice is the shape's, not the thread count's, so the bits do not depend on it either.
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
  const gg_i *tab;  /* the rows of the columns read straight from the input (gg_conv_tab), or NULL */
  const void *mk;   /* set: it runs directly (gg_direct_conv3), with these lane masks */
  const float *wp;  /* and this weight (gg_direct_weight, or _t for the input gradient) */
  const void *plan; /* or set: it runs directly on this plan (gg_direct_plan), with that weight */
  const void *w8;   /* or set: rows of 8 (gg_direct_w8_ok), directly with these offsets and masks */
  gg_conv gt;       /* the input gradient's direct convolution: of gy, with the flipped, transposed weight; or the
                     * stride-2 forward's over the image's phases (gg_direct_s2_geom) */
  int s2;           /* the forward runs directly on the image's phases, split into its columns' buffer */
  const void *s2t;  /* or the input gradient on gx's phases (gg_direct_s2_phase[4]), through its columns' buffer */
  int own;          /* the columns' products: ours (1) or OpenBLAS's (0), as chosen for their shape */
  const float *bias; /* the forward's bias [oc], written into each image's rows before its product adds, or NULL */
  int relu;          /* the forward: each image's rows through the ReLU after its product (gg_conv2d_bias) */
} gg_whole_conv;

/* One image's product on this thread, by the implementation chosen for its shape (a->own). */
static void gg_whole_gemm(const gg_whole_conv *a, int transA, int transB, gg_i m, gg_i n, gg_i k, const float *A,
                          gg_i lda, const float *B, gg_i ldb, float beta, float *C, gg_i ldc) {
  if (a->own && gg_gemm_own(transA, transB, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc)) return;
  gg_gemm_blas_one(transA, transB, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* Image i's group gi unfolded into cols (or, for a direct convolution, the input itself). */
static const float *gg_whole_cols(const gg_whole_conv *a, gg_i i, gg_i gi, float *cols) {
  const gg_conv *g = &a->g;
  const float *src = a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w;
  if (a->direct) return src;
  gg_im2col_one(src, cols, g);
  return cols;
}

#if defined(__AVX512F__)
/* The direct path, where the call set one up (output rows of 16·k: the masks; rows of 8: a plan), on rows m of the
 * weight's panels wp over `in`: 1 when it computed `out`, 0 where the columns and a product must. */
static int gg_whole_direct(const gg_whole_conv *a, const float *wp, gg_i m, gg_i ckk, const float *in,
                           const gg_conv *geom, float *out, float beta) {
  if (!a->mk && !a->plan && !a->w8) return 0;
  gg_direct_args d = {wp, m, ckk, in, geom, a->tab, a->mk, out, beta};
  if (a->mk)
    gg_direct_conv3(&d);
  else if (a->w8)
    gg_direct_conv3_w8(&d, a->w8);
  else
    gg_direct_conv_plan(&d, a->plan);
  return 1;
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
    if (a->bias) /* (+ 0, as the reference's broadcast: -0 becomes +0) */
      for (gg_i o = 0; o < ocg; o++) {
        float b = a->bias[gi * ocg + o] + 0.0f;
        for (gg_i q = 0; q < P; q++) y[o * P + q] = b;
      }
    int done = 0;
#if defined(__AVX512F__)
    const float *in = a->x + (i * g->c * a->groups + gi * g->c) * g->h * g->w;
    if (a->s2) {
      float *ph = a->cols + tid * a->slot;
      gg_direct_s2_split(in, g->c, g->h, g->w, ph);
      in = ph;
    }
    done = gg_whole_direct(a, a->wp + gi * (ocg + 7) / 8 * 8 * ckk, ocg, ckk, in, a->s2 ? &a->gt : g, y, a->beta);
#endif
    if (!done) {
      const float *src = gg_whole_cols(a, i, gi, a->cols + tid * a->slot);
      gg_whole_gemm(a, 0, 0, ocg, P, ckk, w, ckk, src, P, a->beta, y, P);
    }
    /* (unary's Relu: NaN stays NaN, -0 and 0 give +0; a compare and a select, so that it vectorizes) */
    if (a->relu)
      for (gg_i q = 0; q < ocg * P; q++) y[q] = y[q] <= 0.0f ? 0.0f : y[q];
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
    if (a->s2t) {
      gg_direct_s2t_image(a->s2t, g, gi, a->gy + (i * a->oc + gi * ocg) * P, dcols, gx);
      continue;
    }
    gg_i cols = ocg * g->kh * g->kw;
    if (gg_whole_direct(a, a->wp + gi * (g->c + 7) / 8 * 8 * cols, g->c, cols, a->gy + (i * a->oc + gi * ocg) * P,
                        &a->gt, gx, 0.0f))
      continue;
#endif
    float *dst = a->direct ? gx : dcols;
    gg_whole_gemm(a, 1, 0, ckk, P, ocg, a->w + gi * ocg * ckk, ckk, a->gy + (i * a->oc + gi * ocg) * P, P, 0.0f, dst,
                  P);
    if (!a->direct) {
      gg_col2im_one(dcols, gx, g);
    }
  }
}

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
      gg_whole_gemm(a, 0, 1, ocg, ckk, P, gy, P, src, P, i == i0 ? 0.0f : 1.0f, part, ckk);
    }
  }
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

/* gg_conv2d, or gg_conv2d_bias where bias is set (each image's rows start as the bias, then accumulate; with relu,
 * then go through the ReLU, in cache). */
static int gg_conv2d_run(const float *x, const float *weight, const float *bias, float *out, const int32_t *geom,
                         gg_i oc, gg_i groups, int accumulate, int relu) {
#if defined(__AVX512F__)
  /* 3×3, stride 1, padding 1 (ResNet-20's, the CLI CNN's second): Winograd F(2×2, 3×3), conv_wino.c, where it takes the shape */
  if (gg_conv_own_usable() && gg_conv_wino(x, weight, bias, out, geom, oc, groups, accumulate, relu, 0)) return 1;
#endif
  gg_whole_conv a = {.x = x, .w = weight, .out = out, .bias = bias, .relu = relu};
  if (!gg_whole_setup(&a, geom, oc, groups)) return 0;
  a.beta = accumulate || bias ? 1.0f : 0.0f;
  /* Computed directly (conv_direct3.c, conv_direct.c) where it has stride 1 and rows of 16·k or 8 (all of
   * ResNet-20's stride-1 3×3 convolutions: 3.6-3.7 ms against 6.6, 4.4 and 4.7 with im2col, 64 images), or stride 2
   * with its phases' rows so, else on im2col's columns. */
  int dir = 0, gen = 0;
#if defined(__AVX512F__)
  /* (at least 8 output channels: a tile has 8) */
  dir = !a.direct && oc / groups >= 8 && gg_direct_ok(&a.g);
  gen = !a.direct && oc / groups >= 8 && !dir && gg_direct_plan_ok(&a.g);
  /* stride 2 on the image's phases, as a stride-1 convolution of their geometry (rows of 16·k or of 8) */
  a.s2 = !a.direct && oc / groups >= 8 && gg_direct_s2_geom(&a.g, &a.gt);
  dir = dir || (a.s2 && gg_direct_ok(&a.gt));
  gen = gen || (a.s2 && !dir);
#endif
  gg_i *tab = NULL;
#if defined(__AVX512F__)
  if (a.s2) tab = gg_direct_s2_tab(&a.g);
#endif
  if (!a.s2 && (dir || gen)) tab = gg_conv_tab(&a.g);
  /* computed directly where the rows allow: the weight in panels, the rows' lane masks or the plan */
  void *mk = NULL, *plan = NULL, *w8 = NULL;
  float *wp = NULL;
#if defined(__AVX512F__)
  if (tab && (dir || gen)) {
    const gg_conv *gd = a.s2 ? &a.gt : &a.g; /* the geometry the direct path runs on */
    wp = gg_direct_weight(weight, oc, groups, a.g.c * a.g.kh * a.g.kw);
    if (wp && dir) mk = gg_direct_masks(gd, tab);
    if (wp && gen && gg_direct_w8_ok(gd)) w8 = gg_direct_w8_make(gd, tab);
    if (wp && gen && !w8 && !a.s2) plan = gg_direct_plan_make(gd, tab);
  }
  if (!mk && !w8) a.s2 = 0; /* (not allocated: the columns' path) */
#endif
  a.tab = tab;
  a.mk = mk;
  a.plan = plan;
  a.w8 = w8;
  a.wp = wp;
  if (!mk && !plan && !w8) a.own = gg_gemm_choose_own(0, 0, oc / groups, a.g.oh * a.g.ow, a.g.c * a.g.kh * a.g.kw);
  gg_parallel_for(gg_whole_fwd, &a, a.n * groups, 1, gg_whole_work(&a) * (double)a.n);
  free(w8);
  free(plan);
  free(mk);
  free(wp);
  free(tab);
  gg_conv_release(0, a.cols);
  return 1;
}

GG_API int gg_conv2d(const float *x, const float *weight, float *out, const int32_t *geom, gg_i oc, gg_i groups,
                     int accumulate) {
  return gg_conv2d_run(x, weight, NULL, out, geom, oc, groups, accumulate, 0);
}

GG_API int gg_conv2d_bias(const float *x, const float *weight, const float *bias, float *out, const int32_t *geom,
                          gg_i oc, gg_i groups, int relu) {
  return gg_conv2d_run(x, weight, bias, out, geom, oc, groups, 1, relu);
}

GG_API int gg_conv2d_grad_input(const float *gy, const float *weight, float *gx, const int32_t *geom, gg_i oc,
                                gg_i groups) {
#if defined(__AVX512F__)
  if (gg_conv_own_usable() && gg_conv_wino(gy, weight, NULL, gx, geom, oc, groups, 0, 0, 1)) return 1;
#endif
  gg_whole_conv a = {.w = weight, .gy = gy, .out = gx};
  if (!gg_whole_setup(&a, geom, oc, groups)) return 0;
  /* Stride 1 with input rows of 16·k: the convolution of gy with the flipped, transposed weight, padded by
   * d·(k-1) - p, computed directly (no columns' gradient, no col2im). */
  gg_i *tab = NULL;
  void *mk = NULL, *plan = NULL, *w8 = NULL;
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
    else if (wp && gg_direct_w8_ok(&t))
      w8 = gg_direct_w8_make(&t, tab);
    if (wp && !mk && !w8) plan = gg_direct_plan_make(&t, tab);
  }
  /* stride 2 (rows of 16·k or 8 on the phases): gx phase by phase, each a stride-1 convolution of gy */
  gg_direct_s2_phase s2t[4];
  gg_conv gp;
  int s2 = !a.direct && g->c >= 8 && gg_direct_s2_geom(g, &gp) && gg_direct_s2t_make(g, weight, oc, groups, s2t);
  a.s2t = s2 ? s2t : NULL;
#else
  int s2 = 0;
#endif
  a.tab = tab;
  a.wp = wp;
  a.mk = mk;
  a.plan = plan;
  a.w8 = w8;
  if (!mk && !plan && !w8 && !s2)
    a.own = gg_gemm_choose_own(1, 0, a.g.c * a.g.kh * a.g.kw, a.g.oh * a.g.ow, oc / groups);
  gg_parallel_for(gg_whole_dx, &a, a.n * groups, 1, gg_whole_work(&a) * (double)a.n);
#if defined(__AVX512F__)
  if (s2) gg_direct_s2t_free(s2t);
#endif
  free(w8);
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
#if defined(__AVX512F__)
  /* 3×3, stride 1, padding 1, 16·k channels in and out: Winograd (conv_wino.c) */
  if (gg_conv_own_usable() && gg_conv_wino_dw(x, gy, gw, geom, oc, groups)) return 1;
  /* 16·k output channels per group, 64+ weight columns: outer products over the positions (conv_dw.c) */
  if (gg_conv_own_usable() && gg_conv_dw_outer(x, gy, gw, geom, oc, groups)) return 1;
#endif
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
  int dots = a.tab || a.g.oh * a.g.ow >= GG_DOT_MIN;
#else
  int dots = 0;
#endif
  if (!dots) a.own = gg_gemm_choose_own(0, 1, oc / groups, a.g.c * a.g.kh * a.g.kw, a.g.oh * a.g.ow);
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
