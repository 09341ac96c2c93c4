/*
 * native/kernels/conv_direct3.c: gg_direct_conv's row-aligned path (conv_direct.c) with tiles of 3 chunks of 16
 * positions by 8 output channels (24 accumulators) instead of 2 by 8: per weight column, 3 input loads and 8 weight
 * broadcasts feed 24 FMAs instead of 2 and 8 feeding 16, and the column's bookkeeping (its row, its masks) is shared
 * by more of them. Each output element is the same chain of FMAs over the columns in order, from 0, then beta·y
 * added: the same bits as gg_direct_conv. Natively, AVX-512 only.
 */
#include "conv.h"

#if !defined(__wasm__) && defined(__AVX512F__)
#include <stdlib.h>

#define GG_D3_ACC(i) __m512 d0##i = _mm512_setzero_ps(), d1##i = d0##i, d2##i = d0##i
#define GG_D3_FMA(i)                                                                                             \
  {                                                                                                              \
    __m512 wv = _mm512_set1_ps(wr[i]);                                                                           \
    d0##i = _mm512_fmadd_ps(wv, vb0, d0##i);                                                                     \
    if (NQ > 1) d1##i = _mm512_fmadd_ps(wv, vb1, d1##i);                                                         \
    if (NQ > 2) d2##i = _mm512_fmadd_ps(wv, vb2, d2##i);                                                         \
  }
#define GG_D3_ONE(d, pp, on)                                                                                     \
  if (on) {                                                                                                      \
    if (a->beta != 0.0f) d = _mm512_add_ps(_mm512_mul_ps(vbeta, _mm512_loadu_ps(yr + pp)), d);                 \
    _mm512_storeu_ps(yr + pp, d);                                                                                \
  }
#define GG_D3_STORE(i)                                                                                           \
  if (i < mr) {                                                                                                  \
    float *yr = a->y + (i0 + i) * P;                                                                             \
    GG_D3_ONE(d0##i, p[0], 1)                                                                                    \
    GG_D3_ONE(d1##i, p[1], NQ > 1)                                                                               \
    GG_D3_ONE(d2##i, p[2], NQ > 2)                                                                               \
  }
#define GG_D3_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)

/* Output channels [i0, i0 + mr) (mr <= 8) at chunks q .. q + NQ - 1 (NQ <= 3, a constant) of 16 positions. */
static inline __attribute__((always_inline)) void gg_direct_tile_n(const gg_direct_args *a, gg_i i0, gg_i mr, gg_i q,
                                                                  const int NQ) {
  const gg_conv *g = a->g;
  gg_i P = g->oh * g->ow;
  gg_i p[3], oy[3], ch[3];
  for (int k = 0; k < 3; k++) {
    p[k] = (q + (k < NQ ? k : 0)) * 16;
    oy[k] = p[k] / g->ow;
    ch[k] = (p[k] % g->ow) / 16;
  }
  const float *wr = a->w + i0 * a->ckk; /* this panel's column r at wr + 8·r */
  const __m512 vbeta = _mm512_set1_ps(a->beta);
  GG_D3_ALL(GG_D3_ACC);
  for (gg_i r = 0; r < a->ckk; r++, wr += 8) {
    const gg_i *e = a->tab + 3 * r;
    const float *xc = a->x + e[0] + e[2];
    const __mmask16 *mk = a->mk + r * GG_DIRECT_CH;
    __m512 vb[3] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int k = 0; k < NQ; k++) {
      gg_i iy = oy[k] + e[1];
      int in = iy >= 0 && iy < g->h;
      vb[k] = _mm512_maskz_loadu_ps(in ? mk[ch[k]] : 0, xc + (in ? iy * g->w : 0) + ch[k] * 16);
    }
    __m512 vb0 = vb[0], vb1 = vb[1], vb2 = vb[2];
    GG_D3_ALL(GG_D3_FMA);
  }
  GG_D3_ALL(GG_D3_STORE);
}

static void gg_direct_tile3(const gg_direct_args *a, gg_i i0, gg_i mr, gg_i q) { gg_direct_tile_n(a, i0, mr, q, 3); }
static void gg_direct_tile2(const gg_direct_args *a, gg_i i0, gg_i mr, gg_i q) { gg_direct_tile_n(a, i0, mr, q, 2); }
static void gg_direct_tile1(const gg_direct_args *a, gg_i i0, gg_i mr, gg_i q) { gg_direct_tile_n(a, i0, mr, q, 1); }

/*
 * Rows of 8 in and out (gg_direct_w8_ok): chunk q is output rows 2q and 2q + 1, and its input for column r is the 16
 * consecutive floats at x + off[r] + 16·q (two input rows, shifted), one masked load (mk[q·ckk + r]: lanes inside
 * the input) where the plan merged two. Same chains of FMAs as gg_direct_tile_plan: the same bits.
 */
typedef struct {
  const gg_i *off;
  const __mmask16 *mk;
} gg_w8_tab;

static inline __attribute__((always_inline)) void gg_direct_tile_w8(const gg_direct_args *a, const gg_w8_tab *t,
                                                                   gg_i i0, gg_i mr, gg_i q, const int NQ) {
  gg_i P = a->g->oh * 8, ckk = a->ckk;
  gg_i p[3];
  for (int k = 0; k < 3; k++) p[k] = (q + (k < NQ ? k : 0)) * 16;
  const float *wr = a->w + i0 * ckk;
  const __m512 vbeta = _mm512_set1_ps(a->beta);
  const __mmask16 *m0 = t->mk + q * ckk, *m1 = m0 + (NQ > 1) * ckk, *m2 = m0 + (NQ > 2) * 2 * ckk;
  GG_D3_ALL(GG_D3_ACC);
  for (gg_i r = 0; r < ckk; r++, wr += 8) {
    const float *xr = a->x + t->off[r];
    __m512 vb0 = _mm512_maskz_loadu_ps(m0[r], xr + p[0]);
    __m512 vb1 = NQ > 1 ? _mm512_maskz_loadu_ps(m1[r], xr + p[1]) : vb0;
    __m512 vb2 = NQ > 2 ? _mm512_maskz_loadu_ps(m2[r], xr + p[2]) : vb0;
    GG_D3_ALL(GG_D3_FMA);
  }
  GG_D3_ALL(GG_D3_STORE);
}

/*
 * The chunks in tiles of 3, and the rest in tiles of 2 (3k + 1 chunks: k - 1 tiles of 3 and two of 2; 3k + 2: k of 3
 * and one of 2), where a tile of 3 would compute lanes for nothing; 1 chunk alone, one tile of 1.
 */
void gg_direct_conv3(const gg_direct_args *a) {
  gg_i chunks = a->g->oh * a->g->ow / 16;
  gg_i threes = chunks % 3 == 1 && chunks > 1 ? chunks / 3 - 1 : chunks / 3;
  gg_i q = 0;
  for (; q < 3 * threes; q += 3)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile3(a, i, a->m - i < 8 ? a->m - i : 8, q);
  for (; q + 2 <= chunks; q += 2)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile2(a, i, a->m - i < 8 ? a->m - i : 8, q);
  for (; q < chunks; q++)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile1(a, i, a->m - i < 8 ? a->m - i : 8, q);
}

/* Whether geometry g runs on gg_direct_conv3_w8: stride 1, input and output rows 8 wide, an even number of rows. */
int gg_direct_w8_ok(const gg_conv *g) {
  return g->sh == 1 && g->sw == 1 && g->w == 8 && g->ow == 8 && g->oh % 2 == 0;
}

/* The offsets and masks of gg_direct_tile_w8 for geometry g (a->g, a->tab), in one block; NULL if not allocated. */
void *gg_direct_w8_make(const gg_conv *g, const gg_i *tab) {
  gg_i ckk = g->c * g->kh * g->kw, chunks = g->oh / 2;
  gg_i *off = malloc(sizeof(gg_i) * (size_t)ckk + sizeof(__mmask16) * (size_t)(chunks * ckk));
  if (!off) return NULL;
  __mmask16 *mk = (__mmask16 *)(off + ckk);
  for (gg_i r = 0; r < ckk; r++) {
    const gg_i *e = tab + 3 * r;
    off[r] = e[0] + e[1] * 8 + e[2];
    /* lanes whose input column (lane mod 8) + e2 lies in [0, 8) */
    gg_i lo = e[2] < 0 ? -e[2] : 0, hi = e[2] > 0 ? 8 - e[2] : 8;
    lo = lo > 8 ? 8 : lo;
    hi = hi < lo ? lo : hi;
    unsigned m8 = ((1u << hi) - 1) & ~((1u << lo) - 1);
    for (gg_i q = 0; q < chunks; q++) {
      gg_i iy = 2 * q + e[1]; /* the chunk's first input row */
      unsigned rows = (iy >= 0 && iy < g->h ? 0x00FFu : 0) | (iy + 1 >= 0 && iy + 1 < g->h ? 0xFF00u : 0);
      mk[q * ckk + r] = (__mmask16)((m8 | m8 << 8) & rows);
    }
  }
  return off;
}

void gg_direct_conv3_w8(const gg_direct_args *a, const void *w8) {
  gg_i ckk = a->g->c * a->g->kh * a->g->kw;
  gg_w8_tab t = {(const gg_i *)w8, (const __mmask16 *)((const gg_i *)w8 + ckk)};
  gg_i chunks = a->g->oh / 2;
  gg_i threes = chunks % 3 == 1 && chunks > 1 ? chunks / 3 - 1 : chunks / 3;
  gg_i q = 0;
  for (; q < 3 * threes; q += 3)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile_w8(a, &t, i, a->m - i < 8 ? a->m - i : 8, q, 3);
  for (; q + 2 <= chunks; q += 2)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile_w8(a, &t, i, a->m - i < 8 ? a->m - i : 8, q, 2);
  for (; q < chunks; q++)
    for (gg_i i = 0; i < a->m; i += 8) gg_direct_tile_w8(a, &t, i, a->m - i < 8 ? a->m - i : 8, q, 1);
}
#endif
