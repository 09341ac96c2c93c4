/*
 * native/kernels/conv_wino_dw.c: the weight gradient of 3×3 convolutions with stride 1 and padding 1 by Winograd's
 * F(2×2, 3×3) (see common.h for what all kernels promise; conv_wino.c for the forward, the input gradient, the shapes
 * taken and the buffers). Natively, AVX-512 only; conv_whole.c calls it first and takes its other paths where it
 * returns 0.
 */
#include "conv.h"

#if !defined(__wasm__) && defined(__AVX512F__)
#include "../gemm_x86.h"

#define GG_WD_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)

/*
 * The weight gradient. With U = G·g·Gᵀ and y_t = Aᵀ·(U ⊙ V_t)·A, the gradient of U is Σ_t (A·gy_t·Aᵀ) ⊙ V_t over the
 * tiles t of all images, and the weight's is Gᵀ·dU·G: 16 products dU_ξ [outputs × inputs] = Σ_t Gy_ξ[t] ⊗ V_ξ[t],
 * 16 multiply-adds per tile and pair of channels where the direct sum makes 36. Each image's group is transposed to
 * [position][channel] (x and gy, 16×16 blocks in registers), so that both transforms run on vectors of 16 channels
 * with no shuffles, into Vt [ξ][tile][input] and Gt [ξ][tile][output]; a tile of 8 outputs by 1-3 vectors of 16
 * inputs then adds, tile after tile, 8 broadcast values of Gt times Vt's vectors (rank-1 updates, as conv_dw.c's),
 * its accumulators starting from the block's partial (zero for its first image) and stored back after each image.
 * The images are cut in blocks fixed by N (as conv_dw.c: at most 16, fewer where the partials would pass 16 MB), each
 * block's partial dU computed whole by one thread, image after image in order; the partials are added in block order
 * in float64 and transformed to the 3×3 weight in float64, rounded once: the bits do not depend on the thread count.
 */
#define GG_WDW_BLOCKS 16
#define GG_WDW_KEEP ((size_t)4 << 20)
#define GG_WDW_SUM 64 /* channels summed at a time */

typedef struct {
  const float *x, *gy;
  float *parts;      /* [block][groups][ξ][mo][ci] */
  float *gw;
  gg_i n, h, w, ci, mo, groups, per, blocks, tw, T, P;
  float *scratch;    /* per pool thread: xt [P][ci], gt [P][mo], Vt [16][T·ci + 16], Gt [16][T·mo + 16] */
  gg_i slot;
} gg_wdw_args;

/* Vt[ξ][t][c]: Bᵀ·d·B for every tile t of one image's transposed group xt [P][ci], 16 channels at a time. */
static void gg_wdw_input(const gg_wdw_args *a, const float *xt, float *Vt) {
  gg_i h = a->h, w = a->w, ci = a->ci, T = a->T, tw = a->tw, ps = T * ci + 16;
  for (gg_i t = 0; t < T; t++) {
    gg_i y0 = 2 * (t / tw) - 1, x0 = 2 * (t % tw) - 1;
    for (gg_i c0 = 0; c0 < ci; c0 += 16) {
      __m512 d[4][4], e[4][4];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
          gg_i yy = y0 + i, xx = x0 + j;
          d[i][j] = yy >= 0 && yy < h && xx >= 0 && xx < w ? _mm512_loadu_ps(xt + (yy * w + xx) * ci + c0)
                                                           : _mm512_setzero_ps();
        }
      for (int j = 0; j < 4; j++) { /* Bᵀ·d */
        e[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        e[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        e[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        e[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
      }
      float *v = Vt + t * ci + c0;
      for (int i = 0; i < 4; i++) { /* (Bᵀ·d)·B */
        _mm512_storeu_ps(v + (4 * i) * ps, _mm512_sub_ps(e[i][0], e[i][2]));
        _mm512_storeu_ps(v + (4 * i + 1) * ps, _mm512_add_ps(e[i][1], e[i][2]));
        _mm512_storeu_ps(v + (4 * i + 2) * ps, _mm512_sub_ps(e[i][2], e[i][1]));
        _mm512_storeu_ps(v + (4 * i + 3) * ps, _mm512_sub_ps(e[i][1], e[i][3]));
      }
    }
  }
}

/* Gt[ξ][t][o]: A·g·Aᵀ (A = [1 0; 1 1; 1 -1; 0 -1]) of every 2×2 block of one image's transposed gy gt [P][mo]. */
static void gg_wdw_grad(const gg_wdw_args *a, const float *gt, float *Gt) {
  gg_i h = a->h, w = a->w, mo = a->mo, T = a->T, tw = a->tw, ps = T * mo + 16;
  for (gg_i t = 0; t < T; t++) {
    gg_i y0 = 2 * (t / tw), x0 = 2 * (t % tw);
    for (gg_i o0 = 0; o0 < mo; o0 += 16) {
      const float *p = gt + (y0 * w + x0) * mo + o0;
      __m512 z = _mm512_setzero_ps(); /* (an odd plane's last row or column: the extended plane's, no gradient) */
      __m512 g00 = _mm512_loadu_ps(p), g01 = x0 + 1 < w ? _mm512_loadu_ps(p + mo) : z;
      __m512 g10 = y0 + 1 < h ? _mm512_loadu_ps(p + w * mo) : z;
      __m512 g11 = y0 + 1 < h && x0 + 1 < w ? _mm512_loadu_ps(p + (w + 1) * mo) : z;
      /* A·g: rows g0, g0 + g1, g0 - g1, -g1 (per column) */
      __m512 q[4][2] = {{g00, g01},
                        {_mm512_add_ps(g00, g10), _mm512_add_ps(g01, g11)},
                        {_mm512_sub_ps(g00, g10), _mm512_sub_ps(g01, g11)},
                        {_mm512_sub_ps(_mm512_setzero_ps(), g10), _mm512_sub_ps(_mm512_setzero_ps(), g11)}};
      float *v = Gt + t * mo + o0;
      for (int i = 0; i < 4; i++) { /* (A·g)·Aᵀ */
        _mm512_storeu_ps(v + (4 * i) * ps, q[i][0]);
        _mm512_storeu_ps(v + (4 * i + 1) * ps, _mm512_add_ps(q[i][0], q[i][1]));
        _mm512_storeu_ps(v + (4 * i + 2) * ps, _mm512_sub_ps(q[i][0], q[i][1]));
        _mm512_storeu_ps(v + (4 * i + 3) * ps, _mm512_sub_ps(_mm512_setzero_ps(), q[i][1]));
      }
    }
  }
}

#define GG_WD_ACC(i)                                                                                             \
  __m512 a0##i = first ? _mm512_setzero_ps() : _mm512_loadu_ps(du + i * ci);                                    \
  __m512 a1##i = NQ > 1 && !first ? _mm512_loadu_ps(du + i * ci + 16) : _mm512_setzero_ps();                    \
  __m512 a2##i = NQ > 2 && !first ? _mm512_loadu_ps(du + i * ci + 32) : _mm512_setzero_ps()
#define GG_WD_FMA(i)                                                                                             \
  {                                                                                                              \
    __m512 gv = _mm512_set1_ps(gr[i]);                                                                           \
    a0##i = _mm512_fmadd_ps(gv, v0, a0##i);                                                                      \
    if (NQ > 1) a1##i = _mm512_fmadd_ps(gv, v1, a1##i);                                                          \
    if (NQ > 2) a2##i = _mm512_fmadd_ps(gv, v2, a2##i);                                                          \
  }
#define GG_WD_STORE(i)                                                                                           \
  {                                                                                                              \
    _mm512_storeu_ps(du + i * ci, a0##i);                                                                        \
    if (NQ > 1) _mm512_storeu_ps(du + i * ci + 16, a1##i);                                                       \
    if (NQ > 2) _mm512_storeu_ps(du + i * ci + 32, a2##i);                                                       \
  }

/* dU_ξ's 8 rows (outputs) by NQ vectors of inputs, du (row stride ci) += Σ_t Gt_ξ[t][8 rows] ⊗ Vt_ξ[t][vectors]. */
static inline __attribute__((always_inline)) void gg_wdw_tile(const float *g, gg_i mo, const float *v, gg_i ci,
                                                              gg_i T, float *du, int first, const int NQ) {
  GG_WD_ALL(GG_WD_ACC);
  const float *gr = g;
  for (gg_i t = 0; t < T; t++, gr += mo, v += ci) {
    __m512 v0 = _mm512_loadu_ps(v), v1 = v0, v2 = v0;
    if (NQ > 1) v1 = _mm512_loadu_ps(v + 16);
    if (NQ > 2) v2 = _mm512_loadu_ps(v + 32);
    GG_WD_ALL(GG_WD_FMA);
  }
  GG_WD_ALL(GG_WD_STORE);
}

/* Item b·groups + gi: block b's partial dU of group gi, its images one after the other. */
static void gg_wdw_range(int tid, gg_i lo, gg_i hi, const void *p) {
  const gg_wdw_args *a = p;
  gg_i ci = a->ci, mo = a->mo, T = a->T, P = a->P, nv = ci / 16;
  float *xt = a->scratch + (size_t)tid * (size_t)a->slot;
  float *gt = xt + P * ci;
  float *Vt = gt + P * mo;
  float *Gt = Vt + 16 * (T * ci + 16);
  for (gg_i it = lo; it < hi; it++) {
    gg_i b = it / a->groups, gi = it % a->groups;
    gg_i i0 = b * a->per, i1 = i0 + a->per < a->n ? i0 + a->per : a->n;
    float *part = a->parts + (b * a->groups + gi) * 16 * mo * ci;
    for (gg_i i = i0; i < i1; i++) {
      gg_dwo_transpose(a->x + (i * a->groups + gi) * ci * P, ci, P, xt);
      gg_dwo_transpose(a->gy + (i * a->groups + gi) * mo * P, mo, P, gt);
      gg_wdw_input(a, xt, Vt);
      gg_wdw_grad(a, gt, Gt);
      int first = i == i0;
      for (gg_i xi = 0; xi < 16; xi++)
        for (gg_i m0 = 0; m0 < mo; m0 += 8) {
          const float *g = Gt + xi * (T * mo + 16) + m0;
          const float *v = Vt + xi * (T * ci + 16);
          float *du = part + (xi * mo + m0) * ci;
          gg_i q = 0;
          for (; q + 3 <= nv; q += 3) gg_wdw_tile(g, mo, v + q * 16, ci, T, du + q * 16, first, 3);
          if (nv - q == 2) gg_wdw_tile(g, mo, v + q * 16, ci, T, du + q * 16, first, 2);
          if (nv - q == 1) gg_wdw_tile(g, mo, v + q * 16, ci, T, du + q * 16, first, 1);
        }
    }
  }
}

/* Rows [lo, hi) of groups·mo: the blocks' partials added in block order in float64, then dW = Gᵀ·dU·G in float64,
 * rounded once, into gw [groups·mo][ci][3][3]. */
static void gg_wdw_sum_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_wdw_args *a = p;
  gg_i ci = a->ci, mo = a->mo;
  for (gg_i row = lo; row < hi; row++) {
    gg_i gi = row / mo, m = row % mo;
    for (gg_i c0 = 0; c0 < ci; c0 += GG_WDW_SUM) {
      gg_i nc = ci - c0 < GG_WDW_SUM ? ci - c0 : GG_WDW_SUM;
      double u[16][GG_WDW_SUM];
      for (int xi = 0; xi < 16; xi++) {
        for (gg_i c = 0; c < nc; c++) u[xi][c] = 0.0;
        for (gg_i b = 0; b < a->blocks; b++) { /* (the runs of channels read in order) */
          const float *pb = a->parts + (((b * a->groups + gi) * 16 + xi) * mo + m) * ci + c0;
          for (gg_i c = 0; c < nc; c++) u[xi][c] += (double)pb[c];
        }
      }
      for (gg_i c = 0; c < nc; c++) {
        double t[3][4];
        for (int s = 0; s < 4; s++) { /* Gᵀ·dU: Gᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1] */
          t[0][s] = u[s][c] + 0.5 * (u[4 + s][c] + u[8 + s][c]);
          t[1][s] = 0.5 * (u[4 + s][c] - u[8 + s][c]);
          t[2][s] = 0.5 * (u[4 + s][c] + u[8 + s][c]) + u[12 + s][c];
        }
        float *dst = a->gw + ((gi * mo + m) * ci + c0 + c) * 9;
        for (int r = 0; r < 3; r++) { /* (Gᵀ·dU)·G */
          dst[r * 3] = (float)(t[r][0] + 0.5 * (t[r][1] + t[r][2]));
          dst[r * 3 + 1] = (float)(0.5 * (t[r][1] - t[r][2]));
          dst[r * 3 + 2] = (float)(0.5 * (t[r][1] + t[r][2]) + t[r][3]);
        }
      }
    }
  }
}

int gg_conv_wino_dw(const float *x, const float *gy, float *gw, const int32_t *geom, gg_i oc, gg_i groups) {
  gg_conv g = gg_read_conv(geom);
  gg_i ci = g.c, mo = oc / groups;
  gg_i tw, th; /* (the layout the forward takes; the sums here run over the plane's own tiles) */
  if (!gg_wino_tiles(&g, ci, mo, &tw, &th) || ci % 16 != 0 || mo % 16 != 0 || !gg_wino_pick(ci, mo)) return 0;
  gg_wdw_args a = {.x = x, .gy = gy, .gw = gw, .n = g.n, .h = g.h, .w = g.w, .ci = ci, .mo = mo, .groups = groups};
  a.tw = (g.w + 1) / 2, a.T = a.tw * ((g.h + 1) / 2), a.P = g.h * g.w;
  gg_i psize = 16 * oc * ci; /* one block's partial, all groups */
  gg_i blocks = a.n < GG_WDW_BLOCKS ? a.n : GG_WDW_BLOCKS;
  gg_i fit = (gg_i)(GG_WDW_KEEP / (size_t)psize);
  if (blocks > fit) blocks = fit < 1 ? 1 : fit;
  a.per = (a.n + blocks - 1) / blocks;
  a.blocks = (a.n + a.per - 1) / a.per;
  a.slot = (a.P * (ci + mo) + 16 * (a.T * ci + 16) + 16 * (a.T * mo + 16) + 15) / 16 * 16;
  float *scratch = gg_wino_scratch(1, (size_t)a.slot * (size_t)gg_pool_threads());
  float *parts = gg_wino_scratch(2, (size_t)a.blocks * (size_t)psize);
  if (!scratch || !parts) {
    gg_wino_release(1, scratch);
    gg_wino_release(2, parts);
    return 0;
  }
  a.scratch = scratch, a.parts = parts;
  gg_parallel_for(gg_wdw_range, &a, a.blocks * groups, 1,
                  (double)(16 * ci * mo) * (double)a.T * (double)(a.n * groups));
  gg_parallel_for(gg_wdw_sum_range, &a, oc, 1, (double)oc * (double)ci * 16.0 * (double)a.blocks);
  gg_wino_release(2, parts);
  gg_wino_release(1, scratch);
  return 1;
}
#endif
