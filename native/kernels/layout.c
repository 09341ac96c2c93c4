/* native/kernels/layout.c: permute (transpose of any axes) (see common.h for what all kernels promise). */
#include "common.h"

/* ------------------------------------------------------------------------------------------------ permute */

/* A permute, its axes collapsed (see gg_permute): `outer` blocks, each a rows×cols tile or a run of cols. */
typedef struct {
  const float *x;
  float *out;
  int outerDims, tiled;
  gg_i osh[GG_MAX_DIMS], ostr[GG_MAX_DIMS];
  gg_i rows, cols, cs;
} permute_plan;

#if defined(__AVX512F__)
/* o[r·cols + c] = x[r + c·cs] for r < rows, c < cols, 16×16 at a time through the registers (gg_transpose16): 16
 * loads along x's contiguous axis, 16 stores along o's, the edges masked. The scalar tiles moved a float at a time,
 * one load and one store each (the MLP's 256×784 weight transposed: ~100 µs). Only moves floats: the same values. */
static void permute_tile16(const float *x, gg_i rows, gg_i cols, gg_i cs, float *o) {
  for (gg_i c0 = 0; c0 < cols; c0 += 16) {
    gg_i nc = cols - c0 < 16 ? cols - c0 : 16;
    __mmask16 mc = (__mmask16)((1u << nc) - 1u);
    for (gg_i r0 = 0; r0 < rows; r0 += 16) {
      gg_i nr = rows - r0 < 16 ? rows - r0 : 16;
      __mmask16 mr = (__mmask16)((1u << nr) - 1u);
      __m512 r[16];
      if (nr == 16 && nc == 16) {
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) r[j] = _mm512_loadu_ps(x + r0 + (c0 + j) * cs);
        gg_transpose16(r);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) _mm512_storeu_ps(o + (r0 + i) * cols + c0, r[i]);
        continue;
      }
      for (gg_i j = 0; j < 16; j++)
        r[j] = j < nc ? _mm512_maskz_loadu_ps(mr, x + r0 + (c0 + j) * cs) : _mm512_setzero_ps();
      gg_transpose16(r);
      for (gg_i i = 0; i < nr; i++) _mm512_mask_storeu_ps(o + (r0 + i) * cols + c0, mc, r[i]);
    }
  }
}
#endif

/* Blocks [lo, hi) of the output: independent, so shared out between threads without changing a value. */
static void permute_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const permute_plan *pl = p;
  const gg_i rows = pl->rows, cols = pl->cols, cs = pl->cs;
  const int outerDims = pl->outerDims, tiled = pl->tiled;
  /* The input offset of block lo: its index in the mixed radix of the outer axes. */
  gg_i idx[GG_MAX_DIMS] = {0};
  gg_i off = 0, rest = lo;
  for (int d = outerDims - 1; d >= 0; d--) {
    idx[d] = rest % pl->osh[d];
    rest /= pl->osh[d];
    off += idx[d] * pl->ostr[d];
  }
  const float *x = pl->x;
  float *o = pl->out + lo * (tiled ? rows * cols : cols);
  for (gg_i q = lo; q < hi; q++) {
    const float *xb = x + off;
    if (tiled) {
#if defined(__AVX512F__)
      permute_tile16(xb, rows, cols, cs, o);
#else
      enum { T = 32 };
      for (gg_i r0 = 0; r0 < rows; r0 += T) {
        gg_i r1 = r0 + T < rows ? r0 + T : rows;
        for (gg_i c0 = 0; c0 < cols; c0 += T) {
          gg_i c1 = c0 + T < cols ? c0 + T : cols;
          for (gg_i r = r0; r < r1; r++)
            for (gg_i c = c0; c < c1; c++) o[r * cols + c] = xb[r + c * cs];
        }
      }
#endif
      o += rows * cols;
    } else if (cs == 1) {
      __builtin_memmove(o, xb, (size_t)cols * sizeof(float));
      o += cols;
    } else {
      for (gg_i c = 0; c < cols; c++) o[c] = xb[c * cs];
      o += cols;
    }
    for (int d = outerDims - 1; d >= 0; d--) {
      off += pl->ostr[d];
      if (++idx[d] < pl->osh[d]) break;
      off -= pl->ostr[d] * pl->osh[d];
      idx[d] = 0;
    }
  }
}

GG_API void gg_permute(const float *x, float *out, int nd, const int32_t *shape, const int32_t *perm) {
  gg_i istr[GG_MAX_DIMS], osh[GG_MAX_DIMS], ostr[GG_MAX_DIMS];
  gg_i total = 1;
  for (int d = nd - 1; d >= 0; d--) {
    istr[d] = total;
    total *= shape[d];
  }
  if (total == 0) return;
  /* Output axes in order with their input strides; drop size-1 axes, merge runs that stay contiguous. */
  int k = 0;
  for (int j = 0; j < nd; j++) {
    gg_i sz = shape[perm[j]], st = istr[perm[j]];
    if (sz == 1) continue;
    if (k > 0 && ostr[k - 1] == st * sz) {
      osh[k - 1] *= sz;
      ostr[k - 1] = st;
    } else {
      osh[k] = sz;
      ostr[k] = st;
      k++;
    }
  }
  if (k == 0) {
    out[0] = x[0];
    return;
  }
  if (k == 1) { /* the identity, after collapsing */
    __builtin_memmove(out, x, (size_t)total * sizeof(float));
    return;
  }
  /* A batch of 2-D transposes when the second-to-last output axis is the input's contiguous one (matrix transposes,
   * NCHW <-> NHWC): done in tiles so that both sides stay in cache. */
  permute_plan pl;
  pl.x = x;
  pl.out = out;
  pl.tiled = ostr[k - 2] == 1;
  pl.outerDims = pl.tiled ? k - 2 : k - 1;
  pl.rows = pl.tiled ? osh[k - 2] : 1;
  pl.cols = osh[k - 1];
  pl.cs = ostr[k - 1];
  gg_i outer = 1;
  for (int d = 0; d < pl.outerDims; d++) {
    pl.osh[d] = osh[d];
    pl.ostr[d] = ostr[d];
    outer *= osh[d];
  }
  gg_parallel_for(permute_range, &pl, outer, 1, 2.0 * (double)total);
}
