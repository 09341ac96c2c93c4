/*
 * native/kernels/conv_direct.c: the whole convolution's paths that never write an image's columns (conv_whole.c
 * chooses them by shape): the weight gradient as dot products, stride-1 forwards and input gradients computed
 * directly. Natively only.
 */
#include "conv.h"

#if !defined(__wasm__)
#include <stdlib.h>

/* The rows of the columns, 3 per row r = (c, ki, kj): c·h·w, ki·dh - ph, kj·dw - pw (gg_whole_conv.tab); NULL if it
 * cannot be allocated. */
gg_i *gg_conv_tab(const gg_conv *g) {
  gg_i ckk = g->c * g->kh * g->kw;
  gg_i *tab = malloc(sizeof(gg_i) * 3 * (size_t)ckk);
  if (!tab) return NULL;
  for (gg_i r = 0; r < ckk; r++) {
    gg_i c = r / (g->kh * g->kw), ki = r / g->kw % g->kh, kj = r % g->kw;
    tab[3 * r] = c * g->h * g->w, tab[3 * r + 1] = ki * g->dh - g->ph, tab[3 * r + 2] = kj * g->dw - g->pw;
  }
  return tab;
}

#if defined(__AVX512F__)
/*
 * The weight gradient's product where an image has many positions (a ResNet's first stage: 16×144 over 1024): both
 * operands run along the positions, gy_i's rows and the columns' rows, so C[o][r] (+)= Σ_p A[o][p]·B[r][p] is a tile
 * of dot products, 4 rows of A by 6 of B in 24 vector accumulators, read straight from A and B with no packing (the
 * sgemm would pack B transposed, element by element: 34 GFLOP/s on that shape). Each accumulator's lanes are added
 * in a fixed order at the end. Rows past m or n repeat row 0 and are not stored.
 */
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
void gg_dot_nt_x(gg_i m, gg_i n, const float *A, gg_i lda, const float *x, const gg_conv *g, const gg_i *tab,
                        float *C, gg_i ldc, int accumulate) {
  for (gg_i j = 0; j < n; j += 6)
    for (gg_i i = 0; i < m; i += 4)
      gg_dot_tile_x(m - i < 4 ? m - i : 4, n - j < 6 ? n - j : 6, A + i * lda, lda, x, g, tab + 3 * j, C + i * ldc + j,
                    ldc, accumulate);
}

/* C[m×n] (+)= A[m×k]·B[n×k]ᵀ, rows of A lda apart, of B ldb apart. */
void gg_dot_nt(gg_i m, gg_i n, gg_i k, const float *A, gg_i lda, const float *B, gg_i ldb, float *C, gg_i ldc,
                      int accumulate) {
  for (gg_i j = 0; j < n; j += 6)
    for (gg_i i = 0; i < m; i += 4)
      gg_dot_tile(m - i < 4 ? m - i : 4, n - j < 6 ? n - j : 6, k, A + i * lda, lda, B + j * ldb, ldb,
                  C + i * ldc + j, ldc, accumulate);
}
#endif

#if defined(__AVX512F__)
/* The weight's groups (oc/groups rows of ckk each) in panels of 8 rows (gg_direct_args.w), zero-padded; NULL if it
 * cannot be allocated. Group gi's panels start at gi·ceil(ocg/8)·8·ckk. */
float *gg_direct_weight(const float *w, gg_i oc, gg_i groups, gg_i ckk) {
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
float *gg_direct_weight_t(const float *w, gg_i oc, gg_i groups, gg_i icg, gg_i kh, gg_i kw) {
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

/*
 * Stride 2 (ResNet-20's first convolution of stages 2 and 3): the image split into its four phases, plane (c, a, b)
 * the h/2 × w/2 values x[c][2i + a][2j + b] (gg_direct_s2_split), makes the convolution a stride-1 one over the
 * phases, column r = (c, ki, kj) reading phase (a, b) shifted by (di, dj), ki - ph = 2·di + a: a geometry gp with
 * the phases' rows (gg_direct_s2_geom) and a table of those offsets (gg_direct_s2_tab) that the row-aligned and the
 * rows-of-8 paths take as they are. Where: stride 2, dilation 1, even input sides with outputs of half of them, 4+
 * taps (the split fits the columns' buffer), and the phases' rows of 16·k or of 8 (gg_direct_ok, gg_direct_w8_ok).
 */
int gg_direct_s2_geom(const gg_conv *g, gg_conv *gp) {
  if (g->sh != 2 || g->sw != 2 || g->dh != 1 || g->dw != 1 || g->h % 2 || g->w % 2 || g->oh * 2 != g->h ||
      g->ow * 2 != g->w || g->kh * g->kw < 4)
    return 0;
  gg_conv t = {1, g->c, g->h / 2, g->w / 2, g->kh, g->kw, 1, 1, g->ph, g->pw, 1, 1, g->oh, g->ow};
  *gp = t;
  return gg_direct_ok(gp) || gg_direct_w8_ok(gp);
}

/* The phases' offsets of the columns, 3 per row r as gg_conv_tab's (for the geometry gp of gg_direct_s2_geom). */
gg_i *gg_direct_s2_tab(const gg_conv *g) {
  gg_i ckk = g->c * g->kh * g->kw, plane = (g->h / 2) * (g->w / 2);
  gg_i *tab = malloc(sizeof(gg_i) * 3 * (size_t)ckk);
  if (!tab) return NULL;
  for (gg_i r = 0; r < ckk; r++) {
    gg_i c = r / (g->kh * g->kw), ty = r / g->kw % g->kh - g->ph, tx = r % g->kw - g->pw;
    gg_i ay = ty & 1, ax = tx & 1; /* (two's complement: the phase of a negative offset too) */
    tab[3 * r] = ((c * 2 + ay) * 2 + ax) * plane, tab[3 * r + 1] = (ty - ay) / 2, tab[3 * r + 2] = (tx - ax) / 2;
  }
  return tab;
}

/* An image's c planes of h × w (both even) into their 4·c phases of h/2 × w/2 (gg_direct_s2_geom). */
void gg_direct_s2_split(const float *x, gg_i c, gg_i h, gg_i w, float *out) {
  gg_i hh = h / 2, wh = w / 2;
  for (gg_i ci = 0; ci < c; ci++)
    for (gg_i a = 0; a < 2; a++)
      for (gg_i b = 0; b < 2; b++) {
        float *o = out + ((ci * 2 + a) * 2 + b) * hh * wh;
        for (gg_i i = 0; i < hh; i++) {
          const float *xr = x + (ci * h + 2 * i + a) * w + b;
          for (gg_i j = 0; j < wh; j++) o[i * wh + j] = xr[2 * j];
        }
      }
}

/*
 * The stride-2 input gradient on gx's phases (gg_direct_s2_geom's g): gx's plane of rows 2i + a and columns 2j + b
 * is a stride-1 convolution of gy with the taps (ki, kj) of that phase, (ki - ph) mod 2 = a and (kj - pw) mod 2 = b,
 * column (o, ki, kj) reading gy[o][i - di][j - dj] with ki - ph = 2·di + a: each phase its geometry (ocg·na·nb
 * columns), offsets, weight in panels (rows c < icg, group by group) and masks or rows-of-8 table; together the
 * phases take each tap once, so no FLOP is added. 0, all freed, if something was not allocated.
 */
int gg_direct_s2t_make(const gg_conv *g, const float *w, gg_i oc, gg_i groups, gg_direct_s2_phase ph[4]) {
  gg_i ocg = oc / groups, icg = g->c, m8 = (icg + 7) / 8 * 8, P = g->oh * g->ow;
  int ok = 1;
  for (int f = 0; f < 4; f++) {
    gg_direct_s2_phase *q = &ph[f];
    int a = f / 2, b = f % 2;
    gg_i ki_[64], kj_[64], na = 0, nb = 0;
    for (gg_i ki = 0; ki < g->kh && na < 64; ki++)
      if (((ki - g->ph) & 1) == a) ki_[na++] = ki;
    for (gg_i kj = 0; kj < g->kw && nb < 64; kj++)
      if (((kj - g->pw) & 1) == b) kj_[nb++] = kj;
    gg_conv t = {1, ocg, g->oh, g->ow, na, nb, 1, 1, 0, 0, 1, 1, g->h / 2, g->w / 2};
    q->g = t, q->cols = ocg * na * nb, q->tab = NULL, q->wp = NULL, q->mk = NULL, q->w8 = NULL;
    if (!q->cols) continue; /* (no tap of this phase: its plane of gx is 0) */
    q->tab = malloc(sizeof(gg_i) * 3 * (size_t)q->cols);
    q->wp = malloc(sizeof(float) * (size_t)(groups * m8 * q->cols));
    if (!q->tab || !q->wp) {
      ok = 0;
      break;
    }
    for (gg_i r = 0; r < q->cols; r++) {
      gg_i o = r / (na * nb), ki = ki_[r / nb % na], kj = kj_[r % nb];
      q->tab[3 * r] = o * P, q->tab[3 * r + 1] = -((ki - g->ph - a) / 2), q->tab[3 * r + 2] = -((kj - g->pw - b) / 2);
      for (gg_i gi = 0; gi < groups; gi++)
        for (gg_i c = 0; c < m8; c++)
          q->wp[gi * m8 * q->cols + (c / 8 * q->cols + r) * 8 + c % 8] =
              c < icg ? w[(((gi * ocg + o) * icg + c) * g->kh + ki) * g->kw + kj] : 0.0f;
    }
    if (gg_direct_ok(&q->g))
      q->mk = gg_direct_masks(&q->g, q->tab);
    else
      q->w8 = gg_direct_w8_make(&q->g, q->tab);
    if (!q->mk && !q->w8) {
      ok = 0;
      break;
    }
  }
  if (!ok) gg_direct_s2t_free(ph);
  return ok;
}

void gg_direct_s2t_free(gg_direct_s2_phase ph[4]) {
  for (int f = 0; f < 4; f++) {
    free(ph[f].tab), free(ph[f].wp), free(ph[f].mk), free(ph[f].w8);
    ph[f].tab = NULL, ph[f].wp = NULL, ph[f].mk = NULL, ph[f].w8 = NULL;
  }
}

/* gx (icg planes of h × w) of one image's group gi from its gy (ocg planes), phase by phase through buf (icg planes
 * of h/2 × w/2). */
void gg_direct_s2t_image(const gg_direct_s2_phase ph[4], const gg_conv *g, gg_i gi, const float *gy, float *buf,
                         float *gx) {
  gg_i hh = g->h / 2, wh = g->w / 2, m8 = (g->c + 7) / 8 * 8;
  for (int f = 0; f < 4; f++) {
    const gg_direct_s2_phase *q = &ph[f];
    int a = f / 2, b = f % 2;
    if (q->cols) {
      gg_direct_args d = {q->wp + gi * m8 * q->cols, g->c, q->cols, gy, &q->g, q->tab, q->mk, buf, 0.0f};
      if (q->mk)
        gg_direct_conv3(&d);
      else
        gg_direct_conv3_w8(&d, q->w8);
    }
    for (gg_i c = 0; c < g->c; c++)
      for (gg_i i = 0; i < hh; i++) {
        float *o = gx + (c * g->h + 2 * i + a) * g->w + b;
        const float *src = buf + (c * hh + i) * wh;
        for (gg_i j = 0; j < wh; j++) o[2 * j] = q->cols ? src[j] : 0.0f;
      }
  }
}

/* The plan for geometry g, one malloc (freed with free); NULL if too large (over 4 MB) or not allocated. */
gg_direct_plan *gg_direct_plan_make(const gg_conv *g, const gg_i *tab) {
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

void gg_direct_conv_plan(const gg_direct_args *a, const gg_direct_plan *pl) {
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
int gg_direct_plan_ok(const gg_conv *g) { return g->sh == 1 && g->sw == 1 && g->ow == 8; }

/* Whether a convolution of geometry g runs directly with row-aligned chunks (gg_direct_tile). */
int gg_direct_ok(const gg_conv *g) {
  return g->sh == 1 && g->sw == 1 && g->ow % 16 == 0 && g->ow / 16 <= GG_DIRECT_CH;
}
__mmask16 *gg_direct_masks(const gg_conv *g, const gg_i *tab) {
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
#endif
