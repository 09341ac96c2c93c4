/*
 * native/kernels/conv_dw.c: the weight gradient of a convolution with few positions per image (a ResNet's second and
 * third stages: 256 and 64), as outer products over the positions, with no columns (see common.h for what all kernels
 * promise). Natively, AVX-512 only; conv_whole.c calls it first and takes its other paths where it returns 0.
 */
#include "conv.h"

#if !defined(__wasm__) && defined(__AVX512F__)
#include <stdlib.h>
#include <string.h>

#include "../gemm_x86.h"

/*
 * dW[o][r] = Σ_i Σ_p gy_i[o][p]·cols_i[r][p]. The products' paths (im2col and the sgemm's NT product, which packs the
 * columns transposed, or the dot-product tiles, whose final sums cost more than they save under 512 positions) ran
 * these shapes at 55-60 GFLOP/s. Here gy is transposed image by image to [p][o] (16×16 blocks in registers) and the
 * input is copied once into a zero-padded plane, so that column r's value at position p is xpad[off[r] + oy·sh·wp +
 * ox·sw] with no bounds to check; a tile of R weight columns by V vectors of 16 output channels (R·V = 24
 * accumulators) adds, for each position, R broadcast input values times V vectors of gyᵀ's row: a rank-1 update, like
 * the sgemm's micro-kernel, but reading both operands where they lie. The accumulators run over all the images of a
 * block before they are stored, so each block's partial is written once.
 *
 * The images are cut in blocks fixed by N as in gg_conv2d_grad_weight (at most GG_DWO_BLOCKS, fewer where their
 * partials would pass GG_DWO_KEEP floats), each block's partial computed whole by one thread (each element a float32
 * sum over the block's images and positions in order), and the partials added in block order in float64, rounded
 * once: the bits do not depend on the thread count or on who took which block.
 */
#define GG_DWO_BLOCKS 16
#define GG_DWO_KEEP ((size_t)4 << 20)

typedef struct {
  const float *x, *gy;
  float *parts;     /* [block][oc][ckk] */
  gg_conv g;        /* one group of one image */
  gg_i n, oc, groups, per, ocg, ckk, P, hp, wp;
  const gg_i *off;  /* [r]: where column r reads in the padded plane, from the position's corner */
  float *scratch;   /* per pool thread, slot floats: per padded planes (c·hp·wp), then per gyᵀ (P·ocg) */
  gg_i slot, plane;
} gg_dwo_args;

/* gt[p·ocg + o] = gy[o·P + p] for one image's group (ocg a multiple of 16; conv_wino.c's weight gradient too). */
void gg_dwo_transpose(const float *gy, gg_i ocg, gg_i P, float *gt) {
  for (gg_i p0 = 0; p0 < P; p0 += 16) {
    gg_i np = P - p0 < 16 ? P - p0 : 16;
    __mmask16 m = (__mmask16)((1u << np) - 1);
    for (gg_i o0 = 0; o0 < ocg; o0 += 16) {
      __m512 r[16];
      for (int j = 0; j < 16; j++) r[j] = _mm512_maskz_loadu_ps(m, gy + (o0 + j) * P + p0);
      gg_transpose16(r);
      for (gg_i j = 0; j < np; j++) _mm512_storeu_ps(gt + (p0 + j) * ocg + o0, r[j]);
    }
  }
}

/* One image's group copied into the zero-padded planes (c planes of hp × wp, the input at (ph, pw)). */
static void gg_dwo_pad(const float *x, const gg_conv *g, gg_i hp, gg_i wp, float *xp) {
  memset(xp, 0, sizeof(float) * (size_t)(g->c * hp * wp));
  for (gg_i c = 0; c < g->c; c++)
    for (gg_i y = 0; y < g->h; y++)
      memcpy(xp + (c * hp + y + g->ph) * wp + g->pw, x + (c * g->h + y) * g->w, sizeof(float) * (size_t)g->w);
}

/*
 * The tile of columns [r0, r0 + nr) (nr <= R) by output channels [o0, o0 + 16·V) over the block's cnt images
 * (padded planes xs[k], gyᵀ gs[k]), stored into part ([ocg][ckk]). Instantiated for (V, R) = (2, 12) and (1, 24)
 * (always inlined with constants, so the accumulators stay in registers).
 */
static inline __attribute__((always_inline)) void gg_dwo_tile(const gg_dwo_args *a, float *const *xs,
                                                              float *const *gs, gg_i cnt, gg_i r0, gg_i nr, gg_i o0,
                                                              float *part, const int V, const int R) {
  const gg_conv *g = &a->g;
  gg_i off[24];
  for (int r = 0; r < R; r++) off[r] = a->off[r0 + (r < nr ? r : 0)];
  __m512 acc[24][2];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) acc[r][v] = _mm512_setzero_ps();
  const gg_i rs = g->sh * a->wp, sw = g->sw, ocg = a->ocg;
  for (gg_i k = 0; k < cnt; k++) {
    const float *gp = gs[k] + o0;
    for (gg_i oy = 0; oy < g->oh; oy++) {
      const float *xr = xs[k] + oy * rs;
      for (gg_i ox = 0; ox < g->ow; ox++, gp += ocg) {
        const float *xp = xr + ox * sw;
        __m512 gv[2];
#pragma GCC unroll 2
        for (int v = 0; v < V; v++) gv[v] = _mm512_loadu_ps(gp + 16 * v);
#pragma GCC unroll 24
        for (int r = 0; r < R; r++) {
          __m512 xv = _mm512_set1_ps(xp[off[r]]);
#pragma GCC unroll 2
          for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(xv, gv[v], acc[r][v]);
        }
      }
    }
  }
  float t[16];
  for (int r = 0; r < R; r++) {
    if (r >= nr) break;
    for (int v = 0; v < V; v++) {
      _mm512_storeu_ps(t, acc[r][v]);
      for (int l = 0; l < 16; l++) part[(o0 + 16 * v + l) * a->ckk + r0 + r] = t[l];
    }
  }
}

#define GG_DWO_TILES(V, R)                                                                                       \
  static void gg_dwo_tiles_##V(const gg_dwo_args *a, float *const *xs, float *const *gs, gg_i cnt, float *part) { \
    for (gg_i o0 = 0; o0 < a->ocg; o0 += 16 * V)                                                                 \
      for (gg_i r0 = 0; r0 < a->ckk; r0 += R)                                                                    \
        gg_dwo_tile(a, xs, gs, cnt, r0, a->ckk - r0 < R ? a->ckk - r0 : R, o0, part, V, R);                     \
  }
GG_DWO_TILES(2, 12)
GG_DWO_TILES(1, 24)

/* Item t = block·groups + gi: the block's partial gradient of group gi. */
static void gg_dwo_range(int tid, gg_i lo, gg_i hi, const void *p) {
  const gg_dwo_args *a = p;
  const gg_conv *g = &a->g;
  float *xs[GG_DWO_BLOCKS * 4], *gs[GG_DWO_BLOCKS * 4];
  float *s = a->scratch + (size_t)tid * (size_t)a->slot;
  for (gg_i t = lo; t < hi; t++) {
    gg_i b = t / a->groups, gi = t % a->groups;
    gg_i i0 = b * a->per, i1 = i0 + a->per < a->n ? i0 + a->per : a->n;
    for (gg_i i = i0; i < i1; i++) {
      xs[i - i0] = s + (i - i0) * a->plane;
      gs[i - i0] = s + a->per * a->plane + (i - i0) * a->P * a->ocg;
      gg_dwo_pad(a->x + (i * a->groups + gi) * g->c * g->h * g->w, g, a->hp, a->wp, xs[i - i0]);
      gg_dwo_transpose(a->gy + (i * a->oc + gi * a->ocg) * a->P, a->ocg, a->P, gs[i - i0]);
    }
    float *part = a->parts + (b * a->oc + gi * a->ocg) * a->ckk;
    if (a->ocg % 32 == 0)
      gg_dwo_tiles_2(a, xs, gs, i1 - i0, part);
    else
      gg_dwo_tiles_1(a, xs, gs, i1 - i0, part);
  }
}

/* The blocks' partials added in block order in float64, rounded once: elements [lo, hi), GG_DWO_SUM at a time, the
 * blocks in the outer loop so that the sums run across a vector of elements (each element's order unchanged). */
#define GG_DWO_SUM 512
typedef struct {
  const float *parts;
  float *gw;
  gg_i wsize, blocks;
} gg_dwo_sum_args;

static void gg_dwo_sum_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_dwo_sum_args *a = p;
  double acc[GG_DWO_SUM];
  for (gg_i j0 = lo; j0 < hi; j0 += GG_DWO_SUM) {
    gg_i n = hi - j0 < GG_DWO_SUM ? hi - j0 : GG_DWO_SUM;
    for (gg_i j = 0; j < n; j++) acc[j] = 0.0;
    for (gg_i b = 0; b < a->blocks; b++) {
      const float *pb = a->parts + b * a->wsize + j0;
      for (gg_i j = 0; j < n; j++) acc[j] += (double)pb[j];
    }
    for (gg_i j = 0; j < n; j++) a->gw[j0 + j] = (float)acc[j];
  }
}

/*
 * Whether this path takes the weight gradient of geometry g: output channels per group a multiple of 16 (whole
 * vectors; 32·k take tiles of 2 vectors by 12 columns, else 1 by 24) and at least 64 weight columns, not 1×1 (too
 * few columns for the padded copies and the transposes to pay: ResNet-20's 3→16 stem 1.06 ms against 0.76, 64 images,
 * its 1×1 projections 0.53 against 0.33).
 */
int gg_conv_dw_outer_ok(const gg_conv *g, gg_i oc, gg_i groups) {
  gg_i ocg = oc / groups;
  return ocg % 16 == 0 && g->c * g->kh * g->kw >= 64 && !(g->kh == 1 && g->kw == 1);
}

int gg_conv_dw_outer(const float *x, const float *gy, float *gw, const int32_t *geom, gg_i oc, gg_i groups) {
  gg_dwo_args a = {.x = x, .gy = gy};
  a.g = gg_read_conv(geom);
  if (!gg_conv_dw_outer_ok(&a.g, oc, groups)) return 0;
  a.n = a.g.n, a.g.n = 1;
  a.oc = oc, a.groups = groups, a.ocg = oc / groups;
  a.ckk = a.g.c * a.g.kh * a.g.kw, a.P = a.g.oh * a.g.ow;
  a.hp = a.g.h + 2 * a.g.ph, a.wp = a.g.w + 2 * a.g.pw;
  /* the padded plane must hold every position's reads: (o-1)·s + (k-1)·d <= h + 2p - 1 */
  if ((a.g.oh - 1) * a.g.sh + (a.g.kh - 1) * a.g.dh >= a.hp || (a.g.ow - 1) * a.g.sw + (a.g.kw - 1) * a.g.dw >= a.wp)
    return 0;
  gg_i wsize = oc * a.ckk;
  gg_i blocks = a.n < GG_DWO_BLOCKS ? a.n : GG_DWO_BLOCKS;
  gg_i fit = (gg_i)(GG_DWO_KEEP / (size_t)wsize);
  if (blocks > fit) blocks = fit < 1 ? 1 : fit;
  a.per = (a.n + blocks - 1) / blocks;
  blocks = (a.n + a.per - 1) / a.per;
  if (a.per > GG_DWO_BLOCKS * 4) return 0; /* (the image pointers of a block live on the stack) */
  a.plane = (a.g.c * a.hp * a.wp + 15) / 16 * 16;
  a.slot = a.per * (a.plane + a.P * a.ocg);
  gg_i *off = malloc(sizeof(gg_i) * (size_t)a.ckk);
  float *scratch = aligned_alloc(64, sizeof(float) * (size_t)a.slot * (size_t)gg_pool_threads());
  float *parts = blocks > 1 ? malloc(sizeof(float) * (size_t)blocks * (size_t)wsize) : gw;
  if (!off || !scratch || !parts) {
    free(off);
    free(scratch);
    if (parts != gw) free(parts);
    return 0;
  }
  for (gg_i r = 0; r < a.ckk; r++) {
    gg_i c = r / (a.g.kh * a.g.kw), ki = r / a.g.kw % a.g.kh, kj = r % a.g.kw;
    off[r] = (c * a.hp + ki * a.g.dh) * a.wp + kj * a.g.dw;
  }
  a.off = off, a.scratch = scratch, a.parts = parts;
  gg_parallel_for(gg_dwo_range, &a, blocks * groups, 1, (double)wsize * (double)a.P * (double)a.n);
  if (blocks > 1) {
    gg_dwo_sum_args sa = {parts, gw, wsize, blocks};
    gg_parallel_for(gg_dwo_sum_range, &sa, wsize, GG_DWO_SUM, (double)wsize * (double)blocks);
    free(parts);
  }
  free(scratch);
  free(off);
  return 1;
}
#endif
