/*
 * native/kernels/conv.h: what the convolution's files share (conv.c: im2col and col2im; conv_whole.c: the whole
 * convolution on the pool's threads; conv_direct.c: its paths that never write the columns). Not a public header:
 * kernels.h declares the kernels.
 */
#ifndef GG_KERNELS_CONV_H
#define GG_KERNELS_CONV_H

#include "common.h"

/* The range [*lo, *hi) of output positions o in [0, on) whose input position o·s - p + off lies in [0, in). */
static inline void gg_valid_range(gg_i on, gg_i s, gg_i p, gg_i off, gg_i in, gg_i *lo, gg_i *hi) {
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

static inline gg_conv gg_read_conv(const int32_t *g) {
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

#if !defined(__wasm__)
/* conv.c: one image (g->n = 1) unfolded into cols, or its columns' gradient folded into dx (overwriting it), on the
 * calling thread. */
void gg_im2col_one(const float *x, float *cols, const gg_conv *g);
void gg_col2im_one(const float *cols, float *dx, const gg_conv *g);

/* conv_direct.c. The rows of the columns, 3 per row r = (c, ki, kj): c·h·w, ki·dh - ph, kj·dw - pw; NULL if it
 * cannot be allocated (free it). */
gg_i *gg_conv_tab(const gg_conv *g);

#if defined(__AVX512F__)
#define GG_DOT_MIN 512 /* positions per image from which the dot-product tiles pay */
#define GG_DOT_XCH 8
/* C[m×n] (+)= A[m×k]·B[n×k]ᵀ as tiles of dot products, rows of A lda apart, of B ldb apart. */
void gg_dot_nt(gg_i m, gg_i n, gg_i k, const float *A, gg_i lda, const float *B, gg_i ldb, float *C, gg_i ldc,
               int accumulate);
/* The same with B the columns of one image of a stride-1 convolution with rows of 16·k (at most GG_DOT_XCH chunks),
 * read from its input x through tab (gg_conv_tab). */
void gg_dot_nt_x(gg_i m, gg_i n, const float *A, gg_i lda, const float *x, const gg_conv *g, const gg_i *tab,
                 float *C, gg_i ldc, int accumulate);

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

/* Whether geometry g runs directly with row-aligned chunks (stride 1, rows of 16·k), or on a plan (rows of 8). */
int gg_direct_ok(const gg_conv *g);
int gg_direct_plan_ok(const gg_conv *g);
/* The lane masks of the row-aligned path (free them), the plan (one block: free it); NULL if not allocated. */
__mmask16 *gg_direct_masks(const gg_conv *g, const gg_i *tab);
gg_direct_plan *gg_direct_plan_make(const gg_conv *g, const gg_i *tab);
/* The weight in panels of 8 rows for the forward, or flipped and transposed for the input gradient (free them). */
float *gg_direct_weight(const float *w, gg_i oc, gg_i groups, gg_i ckk);
float *gg_direct_weight_t(const float *w, gg_i oc, gg_i groups, gg_i icg, gg_i kh, gg_i kw);
/* y = w·columns(x) (+ beta·y) for one image, directly, on a plan. */
void gg_direct_conv_plan(const gg_direct_args *a, const gg_direct_plan *pl);
/* Stride 2 on the image's phases (conv_direct.c): whether geometry g runs so, with gp the phases' stride-1 geometry;
 * the phases' column table (free it); the split of one image's group into its phases (4·c·(h/2)·(w/2) floats). */
int gg_direct_s2_geom(const gg_conv *g, gg_conv *gp);
gg_i *gg_direct_s2_tab(const gg_conv *g);
void gg_direct_s2_split(const float *x, gg_i c, gg_i h, gg_i w, float *out);
/* The stride-2 input gradient on gx's four phases (conv_direct.c): per phase its stride-1 geometry over gy, its
 * columns (0: no tap, the plane is 0), offsets, weight in panels and masks (row-aligned) or rows-of-8 table. */
typedef struct {
  gg_conv g;
  gg_i cols;
  gg_i *tab;
  float *wp;
  void *mk, *w8;
} gg_direct_s2_phase;
int gg_direct_s2t_make(const gg_conv *g, const float *w, gg_i oc, gg_i groups, gg_direct_s2_phase ph[4]);
void gg_direct_s2t_free(gg_direct_s2_phase ph[4]);
void gg_direct_s2t_image(const gg_direct_s2_phase ph[4], const gg_conv *g, gg_i gi, const float *gy, float *buf,
                         float *gx);
/* conv_direct3.c: y = w·columns(x) (+ beta·y) for one image, directly, with row-aligned chunks (gg_direct_ok) in
 * tiles of 3 chunks by 8 channels. And, where gg_direct_w8_ok (rows of 8 in and out: ResNet-20's third stage), the
 * plan's path with one load per chunk instead of two merged (mk unused); the same bits as gg_direct_conv_plan. */
void gg_direct_conv3(const gg_direct_args *a);
int gg_direct_w8_ok(const gg_conv *g);
void *gg_direct_w8_make(const gg_conv *g, const gg_i *tab);
void gg_direct_conv3_w8(const gg_direct_args *a, const void *w8);

/* conv_dw.c: the weight gradient as outer products over the positions, where gg_conv_dw_outer_ok takes the shape
 * (output channels per group a multiple of 16, under GG_DOT_MIN positions); 0, having done nothing, where it does
 * not run (the shape, or a buffer not allocated). */
int gg_conv_dw_outer_ok(const gg_conv *g, gg_i oc, gg_i groups);
int gg_conv_dw_outer(const float *x, const float *gy, float *gw, const int32_t *geom, gg_i oc, gg_i groups);
/* gt[p·ocg + o] = gy[o·P + p]: one image's group of ocg planes (a multiple of 16) of P positions, transposed. */
void gg_dwo_transpose(const float *gy, gg_i ocg, gg_i P, float *gt);

/* conv_wino.c: a 3×3, stride-1, padding-1 convolution by Winograd's F(2×2, 3×3): the forward (flip 0: y = (acc ? y
 * : 0) + conv, or bias + conv where bias is set, then the ReLU where relu) or the input gradient (flip 1: x is gy, y
 * is gx); 0, having done nothing, where it does not take the shape or a buffer cannot be allocated. */
int gg_conv_wino(const float *x, const float *weight, const float *bias, float *y, const int32_t *geom, gg_i oc,
                 gg_i groups, int acc, int relu, int flip);
/* conv_wino_dw.c: the weight gradient of such a convolution by Winograd (16·k input channels per group); 0, having
 * done nothing, where it does not take the shape or a buffer cannot be allocated. */
int gg_conv_wino_dw(const float *x, const float *gy, float *gw, const int32_t *geom, gg_i oc, gg_i groups);
/* conv_wino.c, for both files: whether the path takes a shape and its tiles' layout (gg_wino_tiles), whether it pays
 * (gg_wino_pick), and the calling thread's kept buffers ([0] the transformed weight, [1] the pool threads' scratch,
 * [2] the weight gradient's partials; released by gg_wino_release). */
int gg_wino_tiles(const gg_conv *g, gg_i ci, gg_i mo, gg_i *tw, gg_i *th);
int gg_wino_pick(gg_i ci, gg_i mo);
float *gg_wino_scratch(int which, size_t n);
void gg_wino_release(int which, float *b);
#endif
#endif

#endif
