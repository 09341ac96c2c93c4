/*
 * native/kernels/conv_wino.c: 3×3 convolutions with stride 1 and padding 1 (a ResNet's), forward and input gradient,
 * by Winograd's F(2×2, 3×3) (see common.h for what all kernels promise). Natively, AVX-512 only; conv_whole.c calls it
 * first and takes its other paths where it returns 0; the weight gradient is conv_wino_dw.c's.
 *
 * Each 2×2 block of outputs ("tile") of output channel m is Aᵀ·[Σ_c U_m,c ⊙ V_c]·A, where V_c = Bᵀ·d_c·B is the
 * tile's 4×4 input patch of channel c transformed and U_m,c = G·g_m,c·Gᵀ the 3×3 kernel transformed:
 *
 *   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],  Aᵀ = [1 1 1 0; 0 1 -1 -1].
 *
 * The sum over the channels is 16 matrix products (one per element ξ of the 4×4 transforms): M_ξ = U_ξ·V_ξ, U_ξ
 * [outputs × channels], V_ξ [channels × tiles]: 16 multiply-adds per tile and pair of channels where the direct
 * convolution makes 36, so the products are 4/9 of its FLOPs; the transforms are additions (and the weight's is made
 * once per call, in float64, rounded once).
 *
 * The pool's threads take whole images (item i·groups + gi, as conv_whole.c): for its image a thread transforms the
 * input into V (a horizontal pass over each padded input row, then a vertical one over each tile row, vectors of 16
 * tiles, in registers from one pass to the other), multiplies in tiles of 8 output channels by 1-3 vectors of 16 tiles (24 accumulators at most, a chain
 * of FMAs over the channels in order), and transforms M back into the image's rows (the 2×2 blocks interleaved in
 * registers). Every output is computed by one thread in a fixed order: the bits do not depend on the thread count.
 * The input gradient is the same convolution of gy with the flipped, transposed weight (padding 3 - 1 - 1 = 1).
 *
 * The error: each output is a float32 sum of 16·channels products of transformed values, whose magnitudes are up to
 * 4× (input) and 2.25× (weight) those of the direct sum's terms, then an output transform of 9 terms; measured
 * against float64 on ResNet-20's shapes it stays within the backends' float32 bound of the direct sum (see
 * docs/benchmarks.md, "Winograd F(2×2, 3×3)").
 *
 * The weight gradient is conv_wino_dw.c's, on this file's buffers and shape rules (conv.h).
 */
#include "conv.h"

#if !defined(__wasm__) && defined(__AVX512F__)
#include <stdlib.h>

#include "../gemm_x86.h"

/* The calling thread's buffers, kept for its next call up to GG_WINO_KEEP floats each (as conv_whole.c's: a fresh
 * buffer of a few MB costs its page faults on every call): [0] the transformed weight, [1] the pool threads' scratch,
 * [2] the weight gradient's partials. */
#define GG_WINO_KEEP ((size_t)4 << 20) /* 16 MB */
static __thread float *gg_wino_buf[3];
static __thread size_t gg_wino_cap[3];

/* Buffer `which` of n floats for this call, released by gg_wino_release after it; NULL if it cannot be allocated. */
float *gg_wino_scratch(int which, size_t n) {
  if (n <= gg_wino_cap[which]) return gg_wino_buf[which];
  float *b = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
  if (!b || n > GG_WINO_KEEP) return b;
  free(gg_wino_buf[which]);
  gg_wino_buf[which] = b;
  gg_wino_cap[which] = n;
  return b;
}
void gg_wino_release(int which, float *b) {
  if (b && b != gg_wino_buf[which]) free(b);
}

typedef struct {
  const float *x;   /* the input (forward: x; input gradient: gy) */
  const float *u;   /* the transformed weight: per group, [ξ][mo/8][ci][8] */
  const float *bias; /* [groups·mo] or NULL: outputs start from it (+0) */
  float *y;          /* the output (forward: y; input gradient: gx) */
  gg_i h, w, ci, mo, groups; /* the plane (input and output alike), channels in and out per group */
  gg_i tw, th, T;            /* tiles per row, per column, per image (gg_wino_tiles: those of the plane zero-extended
                              * to 2·tw × 2·th) */
  gg_i vps, mps;             /* V's and M's plane strides (ξ to ξ + 1): a cache line more than a plane, so that the 16
                              * planes' same elements fall in different L1 sets */
  int acc, relu;             /* add to y (beta 1), and the ReLU after */
  float *scratch;            /* per pool thread, slot floats: V [16][ci][T], M [16][mo][T] */
  gg_i slot;
} gg_wino_args;

/*
 * Whether the Winograd path takes a 3×3, stride-1, padding-1, undilated convolution of a plane h×w, with ci input and
 * mo output channels per group (whole panels of 8 outputs; gg_wino_pick then says where it pays), and its tiles: the
 * plane's ⌈w/2⌉ × ⌈h/2⌉ tiles laid out as *tw per row (4, 8 or 16·k, the fewest that hold them) and *th rows, so that
 * a vector of 16 tiles holds whole tile rows (or 16 of one) and the tiles fill whole vectors (tw·th a multiple of 16).
 * A plane whose tiles do not fill that layout (14×14: 7 × 7 tiles as 8 × 8) is computed as the plane zero-extended to
 * 2·tw × 2·th (the padding's zeros: the same sums), the extended outputs not stored; it is taken where its own tiles
 * are at least 70% of the layout's (14×14: 49 of 64; 10×10's 25 of 48 would cost the direct paths' time).
 */
int gg_wino_tiles(const gg_conv *g, gg_i ci, gg_i mo, gg_i *tw, gg_i *th) {
  if (g->kh != 3 || g->kw != 3 || g->sh != 1 || g->sw != 1 || g->ph != 1 || g->pw != 1 || g->dh != 1 || g->dw != 1)
    return 0;
  if (g->oh != g->h || g->ow != g->w || ci < 1 || mo < 8 || mo % 8 != 0) return 0;
  gg_i rw = (g->w + 1) / 2, rh = (g->h + 1) / 2; /* the plane's own tiles */
  *tw = rw <= 4 ? 4 : rw <= 8 ? 8 : (rw + 15) / 16 * 16;
  gg_i step = *tw >= 16 ? 1 : 16 / *tw; /* tile rows to a vector */
  *th = (rh + step - 1) / step * step;
  return 10 * rw * rh >= 7 * *tw * *th;
}

/*
 * Whether it pays for this shape: 16+ channels in and out (64 images, one thread, CPU ms, Winograd against the direct
 * paths, forward: 16 channels 32×32 2.4 against 3.3, 32 16×16 1.7 against 3.2, 64 8×8 1.7 against 3.0, 128 8×8 6.6
 * against 12.0; with 8 channels 0.76 against 0.82 at 32×32 but 0.24 against 0.21 at 16×16 and 0.09 against 0.05 at
 * 8×8: the transforms cost as much as the products save; the weight gradient, 16·k channels, 2.5, 2.0 and 2.1 against
 * conv_dw.c's 3.4, 3.2 and 3.4 on ResNet-20's three stages; the CLI CNN's 32 -> 64 channels at 14×14, computed as
 * 16×16: forward 2.0 against 3.6, input gradient 2.3 against 3.2, weight gradient 1.5 against 2.7). GRADGUARD_WINO=0
 * turns the path off (A/B measurements).
 */
int gg_wino_pick(gg_i ci, gg_i mo) {
  if (ci < 16 || mo < 16) return 0;
  const char *e = getenv("GRADGUARD_WINO");
  return !(e && e[0] == '0');
}

/*
 * The horizontal pass of tiles [t0, t0 + 16) of one input row xr (NULL for a padding row: zeros), tw >= 16: for each
 * tile column tx, the patch row d_j = x[2tx - 1 + j] (0 outside the row) combined as d·B: e0 = d0 - d2, e1 = d1 + d2,
 * e2 = d2 - d1, e3 = d1 - d3. The row's 32 values of 16 tiles are read with plain loads inside it (a masked load whose
 * masked-off lanes cross into another page is slow on Zen 4: the rows of a 32×32 plane start and end pages; only a
 * row shorter than its tiles, of a zero-extended plane, ends with masked loads), split into its even (d1) and odd (d2)
 * values, and those shifted by a lane for d0 and d3, with the neighbouring chunks' values (or 0, the padding) shifted
 * in.
 */
static inline __attribute__((always_inline)) void gg_wino_hchunk(const float *xr, gg_i w, gg_i t0, __m512 e[4]) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  if (!xr) {
    e[0] = e[1] = e[2] = e[3] = _mm512_setzero_ps();
    return;
  }
  __m512 lo, hi = _mm512_setzero_ps();
  float next = 0.0f, prev = t0 > 0 && 2 * t0 - 1 < w ? xr[2 * t0 - 1] : 0.0f;
  gg_i nv = w - 2 * t0;
  if (nv >= 32) {
    lo = _mm512_loadu_ps(xr + 2 * t0);
    hi = _mm512_loadu_ps(xr + 2 * t0 + 16);
    if (nv > 32) next = xr[2 * t0 + 32];
  } else if (nv > 16) {
    lo = _mm512_loadu_ps(xr + 2 * t0);
    hi = _mm512_maskz_loadu_ps((__mmask16)((1u << (nv - 16)) - 1), xr + 2 * t0 + 16);
  } else if (nv == 16) {
    lo = _mm512_loadu_ps(xr + 2 * t0);
  } else if (nv > 0) {
    lo = _mm512_maskz_loadu_ps((__mmask16)((1u << nv) - 1), xr + 2 * t0);
  } else {
    lo = _mm512_setzero_ps();
  }
  __m512 d1 = _mm512_permutex2var_ps(lo, ev, hi), d2 = _mm512_permutex2var_ps(lo, od, hi);
  __m512 d0 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(d2), _mm512_castps_si512(_mm512_set1_ps(prev)), 15));
  __m512 d3 = _mm512_castsi512_ps(
      _mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(next)), _mm512_castps_si512(d1), 1));
  e[0] = _mm512_sub_ps(d0, d2);
  e[1] = _mm512_add_ps(d1, d2);
  e[2] = _mm512_sub_ps(d2, d1);
  e[3] = _mm512_sub_ps(d1, d3);
}

/* The vertical pass: a vector of tiles' V, Bᵀ·(d·B), from the combinations H[i] of its four padded rows i. */
static inline __attribute__((always_inline)) void gg_wino_vstore(__m512 H[4][4], float *v, gg_i vps) {
  gg_i xs = 4 * vps; /* from ξ = j to ξ = 4 + j */
  for (int j = 0; j < 4; j++, v += vps) {
    _mm512_storeu_ps(v, _mm512_sub_ps(H[0][j], H[2][j]));
    _mm512_storeu_ps(v + xs, _mm512_add_ps(H[1][j], H[2][j]));
    _mm512_storeu_ps(v + 2 * xs, _mm512_sub_ps(H[2][j], H[1][j]));
    _mm512_storeu_ps(v + 3 * xs, _mm512_sub_ps(H[1][j], H[3][j]));
  }
}

/* Row r of a plane of h rows of w values (r outside [0, h): zeros), its first n >= w floats, the rest zero: a plain
 * load where it stays inside the image (end), then the lanes past w cleared. */
static inline __attribute__((always_inline)) __m512 gg_wino_row16(const float *xc, gg_i h, gg_i w, gg_i r,
                                                                const float *end) {
  if (r < 0 || r >= h) return _mm512_setzero_ps();
  const float *p = xc + r * w;
  __mmask16 m = (__mmask16)(w >= 16 ? 0xFFFFu : (1u << w) - 1u);
  return p + 16 <= end ? _mm512_maskz_mov_ps(m, _mm512_loadu_ps(p)) : _mm512_maskz_loadu_ps(m, p);
}
static inline __attribute__((always_inline)) __m256 gg_wino_row8(const float *xc, gg_i h, gg_i w, gg_i r,
                                                               const float *end) {
  if (r < 0 || r >= h) return _mm256_setzero_ps();
  const float *p = xc + r * w;
  __mmask8 m = (__mmask8)(w >= 8 ? 0xFFu : (1u << w) - 1u);
  return p + 8 <= end ? _mm256_maskz_mov_ps(m, _mm256_loadu_ps(p)) : _mm256_maskz_loadu_ps(m, p);
}

/*
 * One image's input (ci planes h×w) transformed into V[ξ][c][T], ξ = 4·i + j: Bᵀ·(d·B), the horizontal pass's
 * combinations going from the registers straight into the vertical pass. tw >= 16: per chunk of 16 tiles, the tile
 * rows in order, the two padded rows a tile row shares with the next kept in registers. tw = 8 or 4 (a vector holds 2
 * or 4 tile rows): the rows a vector's tile rows need (input row 2·ty' - 1 + i for each of them, i = 0..3) are
 * gathered into two registers and split into even and odd values by one permutation each, zeros at each row's ends,
 * so every store is a whole vector. Until the sixteenth session the horizontal pass went through a buffer of rows and
 * the vertical pass stored 8 or 4 floats at a time for tw = 8 or 4 (the same operations on the same values: the same
 * bits; one thread, 64 images, forward / input gradient: 16 channels 32×32 1.26 / 1.23 -> 1.13 / 1.05 ms, 32 16×16
 * 1.04 / 1.05 -> 0.98 / 0.97, 64 8×8 1.43 / 1.44 -> 1.22 / 1.19, the CLI CNN's 32 -> 64 at 14×14 2.40 / 2.68 -> 2.36 /
 * 2.55; Zen 5).
 */
/* The next channel's plane (c + 1 < ci) fetched into the cache while this one's is transformed: a 32×32 plane is a
 * 4 KB page, and the hardware's prefetcher starts over at every page (one thread, 64 images, forward / input
 * gradient, with against without: 16 channels 32×32 0.92x / 0.98x, 32 16×16 0.87x / 0.97x, 64 8×8 0.99x, the CLI
 * CNN's 14×14 0.94x / 0.96x; Zen 5). Planes of tw >= 16 (32×32 and up) take it row by row instead (the rows the next
 * plane's same tile row will need, as this one's are read; and, after the image's last plane, the next image's first
 * where the thread takes it next): 64 lines at the start of a plane left the loads of its rows waiting on memory (the
 * forward's 16-channel 32×32 plane spent ~60% of the transform's samples on them), and spread out they reach the
 * cache in time (one thread, 64 images, forward / input gradient, three A/B rounds: 1.29-1.60 / 1.29-1.59 against
 * 1.16-1.21 / 1.18-1.21 ms; the planes at 2, 4 or 8 planes' distance for smaller planes did not pay; Zen 5). */
static inline void gg_wino_fetch_next(const float *xc, gg_i c, gg_i ci, gg_i P) {
  if (c + 1 < ci)
    for (gg_i i = 0; i < P; i += 16) _mm_prefetch((const char *)(xc + P + i), _MM_HINT_T0);
}

/* Rows [r, r + k) of a plane of width w fetched into the cache. */
static inline void gg_wino_fetch_rows(const float *plane, gg_i w, gg_i r, gg_i k) {
  for (gg_i i = 0; i < k * w; i += 16) _mm_prefetch((const char *)(plane + r * w + i), _MM_HINT_T0);
}

static void gg_wino_input(const gg_wino_args *a, const float *x, float *V, const float *next) {
  gg_i h = a->h, w = a->w, tw = a->tw, T = a->T, ci = a->ci, vps = a->vps;
  const float *end = x + ci * h * w;
  if (tw >= 16) {
    for (gg_i c = 0; c < ci; c++) {
      const float *xc = x + c * h * w;
      /* the next plane (or the next image's first), row by row as this one's rows are read */
      const float *nxt = c + 1 < ci ? xc + h * w : next;
      if (nxt) gg_wino_fetch_rows(nxt, w, 0, 1);
      for (gg_i t0 = 0; t0 < tw; t0 += 16) {
        __m512 H[4][4];
        gg_wino_hchunk(NULL, w, t0, H[0]);                    /* input row -1: the padding */
        gg_wino_hchunk(h > 0 ? xc : NULL, w, t0, H[1]);       /* input row 0 */
        for (gg_i ty = 0; ty < a->th; ty++) {
          gg_i r2 = 2 * ty + 1, r3 = 2 * ty + 2;
          if (nxt && t0 == 0 && r3 < h) gg_wino_fetch_rows(nxt, w, r2, 2);
          gg_wino_hchunk(r2 < h ? xc + r2 * w : NULL, w, t0, H[2]);
          gg_wino_hchunk(r3 < h ? xc + r3 * w : NULL, w, t0, H[3]);
          gg_wino_vstore(H, V + c * T + ty * tw + t0, vps);
          for (int j = 0; j < 4; j++) H[0][j] = H[2][j], H[1][j] = H[3][j];
        }
      }
    }
    return;
  }
  /* tw = 8: two rows of 16 values (a, b); tw = 4: [row 0 | row 1], [row 2 | row 3] of 8 values each. Lane L holds
   * tile k = L mod tw of the vector's tile row L / tw, whose row starts at index base = (L / tw)·(32 / step). */
  const gg_i step = 16 / tw, span = 32 / step;
  int ev[16], od[16], pv[16], nx[16];
  unsigned mp = 0, mn = 0;
  for (int L = 0; L < 16; L++) {
    int k = (int)(L % tw), base = (int)((L / tw) * span);
    ev[L] = base + 2 * k;
    od[L] = base + 2 * k + 1;
    pv[L] = k > 0 ? base + 2 * k - 1 : 0;
    nx[L] = k + 1 < tw ? base + 2 * k + 2 : 0;
    mp |= (unsigned)(k > 0) << L;
    mn |= (unsigned)(k + 1 < tw) << L;
  }
  const __m512i iev = _mm512_loadu_si512(ev), iod = _mm512_loadu_si512(od);
  const __m512i ipv = _mm512_loadu_si512(pv), inx = _mm512_loadu_si512(nx);
  for (gg_i c = 0; c < ci; c++) {
    const float *xc = x + c * h * w;
    gg_wino_fetch_next(xc, c, ci, h * w);
    for (gg_i ty = 0; ty < a->th; ty += step) {
      __m512 H[4][4];
      for (int i = 0; i < 4; i++) {
        gg_i r0 = 2 * ty - 1 + i; /* the input row of tile row ty + q: r0 + 2q */
        __m512 A, B;
        if (step == 2) {
          A = gg_wino_row16(xc, h, w, r0, end);
          B = gg_wino_row16(xc, h, w, r0 + 2, end);
        } else {
          A = _mm512_insertf32x8(_mm512_castps256_ps512(gg_wino_row8(xc, h, w, r0, end)), gg_wino_row8(xc, h, w, r0 + 2, end), 1);
          B = _mm512_insertf32x8(_mm512_castps256_ps512(gg_wino_row8(xc, h, w, r0 + 4, end)), gg_wino_row8(xc, h, w, r0 + 6, end), 1);
        }
        __m512 d1 = _mm512_permutex2var_ps(A, iev, B), d2 = _mm512_permutex2var_ps(A, iod, B);
        __m512 d0 = _mm512_maskz_permutex2var_ps((__mmask16)mp, A, ipv, B);
        __m512 d3 = _mm512_maskz_permutex2var_ps((__mmask16)mn, A, inx, B);
        H[i][0] = _mm512_sub_ps(d0, d2);
        H[i][1] = _mm512_add_ps(d1, d2);
        H[i][2] = _mm512_sub_ps(d2, d1);
        H[i][3] = _mm512_sub_ps(d1, d3);
      }
      gg_wino_vstore(H, V + c * T + ty * tw, vps);
    }
  }
}

#define GG_WI_ACC(i) __m512 a0##i = _mm512_setzero_ps(), a1##i = a0##i, a2##i = a0##i
#define GG_WI_FMA(i)                                                                                             \
  {                                                                                                              \
    __m512 uv = _mm512_set1_ps(ur[i]);                                                                           \
    a0##i = _mm512_fmadd_ps(uv, v0, a0##i);                                                                      \
    if (NQ > 1) a1##i = _mm512_fmadd_ps(uv, v1, a1##i);                                                          \
    if (NQ > 2) a2##i = _mm512_fmadd_ps(uv, v2, a2##i);                                                          \
  }
#define GG_WI_STORE(i)                                                                                           \
  {                                                                                                              \
    _mm512_storeu_ps(m + i * T, a0##i);                                                                          \
    if (NQ > 1) _mm512_storeu_ps(m + i * T + 16, a1##i);                                                         \
    if (NQ > 2) _mm512_storeu_ps(m + i * T + 32, a2##i);                                                         \
  }
#define GG_WI_ALL(M) M(0); M(1); M(2); M(3); M(4); M(5); M(6); M(7)

/* M_ξ's 8 rows of the panel u (u[c·8 + i]) at NQ vectors of tiles from v (V_ξ's column block), into m (row stride T). */
static inline __attribute__((always_inline)) void gg_wino_tile(const float *u, const float *v, gg_i ci, gg_i T,
                                                               float *m, const int NQ) {
  GG_WI_ALL(GG_WI_ACC);
  const float *ur = u;
  for (gg_i c = 0; c < ci; c++, ur += 8, v += T) {
    __m512 v0 = _mm512_loadu_ps(v), v1 = v0, v2 = v0;
    if (NQ > 1) v1 = _mm512_loadu_ps(v + 16);
    if (NQ > 2) v2 = _mm512_loadu_ps(v + 32);
    GG_WI_ALL(GG_WI_FMA);
  }
  GG_WI_ALL(GG_WI_STORE);
}

/* The 16 products M_ξ = U_ξ·V_ξ of one image, in tiles of 8 outputs by 3 vectors of tiles (the last 1 or 2). */
__attribute__((noinline)) static void gg_wino_products(const gg_wino_args *a, const float *u, const float *V, float *M) {
  gg_i ci = a->ci, mo = a->mo, T = a->T, nv = T / 16;
  for (gg_i xi = 0; xi < 16; xi++)
    for (gg_i mp = 0; mp < mo / 8; mp++) {
      const float *up = u + (xi * (mo / 8) + mp) * ci * 8;
      const float *vx = V + xi * a->vps;
      float *mx = M + xi * a->mps + mp * 8 * T;
      gg_i q = 0;
      for (; q + 3 <= nv; q += 3) gg_wino_tile(up, vx + q * 16, ci, T, mx + q * 16, 3);
      if (nv - q == 2) gg_wino_tile(up, vx + q * 16, ci, T, mx + q * 16, 2);
      if (nv - q == 1) gg_wino_tile(up, vx + q * 16, ci, T, mx + q * 16, 1);
    }
}

/* One output row's 32 values (or 2·8 tile rows of 16, or 4 of 8) at row parity r of tiles t0 .. t0 + 15, from the
 * tiles' left (l) and right (rt) columns: (+ y), (+ bias), ReLU, stored; of a zero-extended plane (gg_wino_tiles) only
 * its own rows and columns, the last with masked loads and stores. */
static inline void gg_wino_put(const gg_wino_args *a, float *yo, gg_i t0, gg_i r, __m512 l, __m512 rt, __m512 bv,
                               int hasb) {
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  __m512 half[2] = {_mm512_permutex2var_ps(l, ilo, rt), _mm512_permutex2var_ps(l, ihi, rt)};
  gg_i tw = a->tw, w = a->w, h = a->h;
  for (int hh = 0; hh < 2; hh++) {
    gg_i t = t0 + 8 * hh, row = 2 * (t / tw) + r, col = 2 * (t % tw);
    float *dst = yo + row * w + col;
    if (tw == 4) { /* two tile rows of 4: 8 floats each, plain 256-bit loads and stores (see gg_wino_hchunk) */
      __mmask8 mk = w >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << w) - 1);
      for (int pp = 0; pp < 2 && row + 2 * pp < h; pp++, dst += 2 * w) {
        __m256 v = pp ? _mm512_extractf32x8_ps(half[hh], 1) : _mm512_castps512_ps256(half[hh]);
        if (hasb)
          v = _mm256_add_ps(_mm512_castps512_ps256(bv), v);
        else if (a->acc)
          v = _mm256_add_ps(w >= 8 ? _mm256_loadu_ps(dst) : _mm256_maskz_loadu_ps(mk, dst), v);
        if (a->relu) v = _mm256_maskz_mov_ps(_mm256_cmp_ps_mask(v, _mm256_setzero_ps(), _CMP_NLE_UQ), v);
        if (w >= 8)
          _mm256_storeu_ps(dst, v);
        else
          _mm256_mask_storeu_ps(dst, mk, v);
      }
      continue;
    }
    /* one tile row's 8 tiles: 16 floats (of which the plane's own: n) */
    gg_i n = w - col;
    if (row >= h || n <= 0) continue;
    __mmask16 mk = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    __m512 val = half[hh];
    if (hasb)
      val = _mm512_add_ps(bv, val);
    else if (a->acc)
      val = _mm512_add_ps(n >= 16 ? _mm512_loadu_ps(dst) : _mm512_maskz_loadu_ps(mk, dst), val);
    if (a->relu) val = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(val, _mm512_setzero_ps(), _CMP_NLE_UQ), val);
    if (n >= 16)
      _mm512_storeu_ps(dst, val);
    else
      _mm512_mask_storeu_ps(dst, mk, val);
  }
}

/* M back into the image's mo output planes: Y = Aᵀ·M·A per tile, 16 tiles at a time. */
static void gg_wino_output(const gg_wino_args *a, const float *M, const float *bias, float *y) {
  gg_i mo = a->mo, T = a->T, P = a->h * a->w;
  for (gg_i o = 0; o < mo; o++) {
    int hasb = bias != NULL;
    __m512 bv = _mm512_set1_ps(hasb ? bias[o] + 0.0f : 0.0f);
    for (gg_i t0 = 0; t0 < T; t0 += 16) {
      const float *mp = M + o * T + t0;
      gg_i xs = a->mps;
      __m512 r0[4], r1[4];
      for (int i = 0; i < 4; i++) {
        __m512 m0 = _mm512_loadu_ps(mp + (4 * i) * xs), m1 = _mm512_loadu_ps(mp + (4 * i + 1) * xs);
        __m512 m2 = _mm512_loadu_ps(mp + (4 * i + 2) * xs), m3 = _mm512_loadu_ps(mp + (4 * i + 3) * xs);
        r0[i] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        r1[i] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      __m512 y00 = _mm512_add_ps(_mm512_add_ps(r0[0], r0[1]), r0[2]);
      __m512 y01 = _mm512_add_ps(_mm512_add_ps(r1[0], r1[1]), r1[2]);
      __m512 y10 = _mm512_sub_ps(_mm512_sub_ps(r0[1], r0[2]), r0[3]);
      __m512 y11 = _mm512_sub_ps(_mm512_sub_ps(r1[1], r1[2]), r1[3]);
      gg_wino_put(a, y + o * P, t0, 0, y00, y01, bv, hasb);
      gg_wino_put(a, y + o * P, t0, 1, y10, y11, bv, hasb);
    }
  }
}

static void gg_wino_range(int tid, gg_i lo, gg_i hi, const void *p) {
  const gg_wino_args *a = p;
  gg_i P = a->h * a->w;
  float *V = a->scratch + (size_t)tid * (size_t)a->slot;
  float *M = V + 16 * a->vps;
  for (gg_i t = lo; t < hi; t++) {
    gg_i i = t / a->groups, gi = t % a->groups;
    const float *xi = a->x + (i * a->groups + gi) * a->ci * P;
    /* this thread's next image, where it is known (the pool hands out one image at a time on several threads) */
    gg_wino_input(a, xi, V, t + 1 < hi ? xi + a->ci * P : NULL);
    gg_wino_products(a, a->u + gi * 16 * a->mo * a->ci, V, M);
    gg_wino_output(a, M, a->bias ? a->bias + gi * a->mo : NULL, a->y + (i * a->groups + gi) * a->mo * P);
  }
}

/*
 * The weight transformed, U = G·g·Gᵀ in float64 rounded once, into u[gi][ξ][mo/8][ci][8]: for the forward g_m,c is
 * weight[gi·mo + m][c]; for the input gradient (flip) the convolution of gy with the flipped, transposed weight, g_m,c
 * = weight[gi·ci + c][m] rotated by 180°. A panel's 8 outputs at once, one float64 lane each (their 3×3 kernels
 * gathered), the same operations in the same order as one kernel at a time.
 */
static void gg_wino_weight(const float *w, gg_i ci, gg_i mo, gg_i groups, int flip, float *u) {
  const __m512d half = _mm512_set1_pd(0.5);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  /* the 8 kernels of outputs m .. m + 7 lie ci·9 (forward) or 9 (flip) floats apart */
  const __m256i idx = _mm256_mullo_epi32(lane, _mm256_set1_epi32(flip ? 9 : (int)(ci * 9)));
  for (gg_i gi = 0; gi < groups; gi++)
    for (gg_i mp = 0; mp < mo / 8; mp++)
      for (gg_i c = 0; c < ci; c++) {
        const float *src = flip ? w + ((gi * ci + c) * mo + 8 * mp) * 9 : w + ((gi * mo + 8 * mp) * ci + c) * 9;
        __m512d k[3][3], t[4][3];
        for (int r = 0; r < 3; r++)
          for (int q = 0; q < 3; q++)
            k[r][q] = _mm512_cvtps_pd(_mm256_i32gather_ps(src + (flip ? (2 - r) * 3 + (2 - q) : r * 3 + q), idx, 4));
        for (int q = 0; q < 3; q++) {
          t[0][q] = k[0][q];
          t[1][q] = _mm512_mul_pd(half, _mm512_add_pd(_mm512_add_pd(k[0][q], k[1][q]), k[2][q]));
          t[2][q] = _mm512_mul_pd(half, _mm512_add_pd(_mm512_sub_pd(k[0][q], k[1][q]), k[2][q]));
          t[3][q] = k[2][q];
        }
        float *ug = u + gi * 16 * mo * ci + mp * ci * 8 + c * 8;
        for (int r = 0; r < 4; r++) {
          __m512d e[4] = {t[r][0], _mm512_mul_pd(half, _mm512_add_pd(_mm512_add_pd(t[r][0], t[r][1]), t[r][2])),
                          _mm512_mul_pd(half, _mm512_add_pd(_mm512_sub_pd(t[r][0], t[r][1]), t[r][2])), t[r][2]};
          for (int q = 0; q < 4; q++) _mm256_storeu_ps(ug + (4 * r + q) * (mo / 8) * ci * 8, _mm512_cvtpd_ps(e[q]));
        }
      }
}

/*
 * The forward (flip 0: x [n][groups·ci][h][w] -> y [n][groups·mo][h][w], y = (acc ? y : 0) + conv, or bias + conv,
 * then the ReLU where relu) or the input gradient (flip 1: gy -> gx, ci = output channels per group, mo = input
 * channels per group) of geometry geom by Winograd; 0, having done nothing, where gg_wino_ok refuses the shape or a
 * buffer cannot be allocated.
 */
int gg_conv_wino(const float *x, const float *weight, const float *bias, float *y, const int32_t *geom, gg_i oc,
                 gg_i groups, int acc, int relu, int flip) {
  gg_conv g = gg_read_conv(geom);
  gg_i ci = flip ? oc / groups : g.c, mo = flip ? g.c : oc / groups;
  gg_i tw, th;
  if (!gg_wino_tiles(&g, ci, mo, &tw, &th) || !gg_wino_pick(ci, mo)) return 0;
  gg_wino_args a = {.x = x, .bias = bias, .y = y, .h = g.h, .w = g.w, .ci = ci, .mo = mo, .groups = groups};
  a.tw = tw, a.th = th;
  a.acc = acc, a.relu = relu;
  a.T = a.tw * a.th;
  a.vps = ci * a.T + 16, a.mps = mo * a.T + 16;
  a.slot = (16 * (a.vps + a.mps) + 15) / 16 * 16;
  float *u = gg_wino_scratch(0, (size_t)(16 * mo * ci * groups));
  float *scratch = gg_wino_scratch(1, (size_t)a.slot * (size_t)gg_pool_threads());
  if (!u || !scratch) {
    gg_wino_release(0, u);
    gg_wino_release(1, scratch);
    return 0;
  }
  gg_wino_weight(weight, ci, mo, groups, flip, u);
  a.u = u, a.scratch = scratch;
  gg_parallel_for(gg_wino_range, &a, g.n * groups, 1, (double)(16 * ci * mo) * (double)a.T * (double)(g.n * groups));
  gg_wino_release(1, scratch);
  gg_wino_release(0, u);
  return 1;
}

#endif
