/*
 * gemm_pack_x86.h: the packing of native/gemm_x86.c's sgemm (included there once, after gg_gemm_args, MR, NR, VL).
 *
 * A is packed into slivers of MR rows (for each p, MR floats), B into slivers of NR columns (for each p, NR floats),
 * zero-padded. Where the stored operand runs along k (A not transposed, B transposed: an nn.Linear forward x·Wᵀ packs
 * both that way), each sliver is a transpose. With AVX-512 that transpose goes 16×16 floats at a time through the
 * registers (16 loads, 64 shuffles, 16 stores) instead of one scalar load and store per float, and MR contiguous
 * floats move as one masked load and store. Packing only moves floats, so the bits of the product do not change.
 * Measured on the MLP's products, one thread (AVX-512, Zen 4, in cache): packing W (256×784) transposed took 31 µs
 * scalar, x (128×784) 17 µs, dYᵀ (256×128, twice) 30 µs; the products themselves take ~480 µs each.
 */
#ifndef GG_GEMM_PACK_X86_H
#define GG_GEMM_PACK_X86_H

#if defined(__AVX512F__)
/* r[0..16) holds 16 rows of 16 floats; afterwards r[q] holds column q (lane i: row i). */
static inline __attribute__((always_inline)) void gg_tr16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
}

/*
 * `rows` streams (src[i] + p for p < kc; at most 16, the others read as zeros) transposed into dst: for each p,
 * `width` floats (lane i: stream i) at dst + p·stride. Whole blocks of 16 p go through gg_tr16, the rest one by one.
 */
static inline __attribute__((always_inline)) void gg_pack_tr(const float *const *src, int rows, gg_i kc, int width,
                                                             int stride, float *restrict dst) {
  const __mmask16 keep = (__mmask16)((1u << width) - 1u);
  gg_i p = 0;
  for (; p + 16 <= kc; p += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = i < rows ? _mm512_loadu_ps(src[i] + p) : _mm512_setzero_ps();
    /* each stream's line after next fetched now: 16 streams at once are more than the hardware's prefetchers follow
     * (one thread: the LSTM's dW_ih NT 512×32×6400, whose B is packed from memory, 1.062 -> 0.991 ms, the GRU's NT
     * 384×32×6400 0.801 -> 0.746, the MLP's forward in its step 0.269-0.275 -> 0.267-0.268 ms; the others unchanged) */
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      if (i < rows) _mm_prefetch((const char *)(src[i] + p + 32), _MM_HINT_T0);
    gg_tr16(r);
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (p + q) * stride, keep, r[q]);
  }
  for (float *d = dst + p * stride; p < kc; p++, d += stride)
    for (int i = 0; i < width; i++) d[i] = i < rows ? src[i][p] : 0.0f;
}
#endif

/*
 * The slivers of a block of mc rows: ⌈mc/MR⌉ of them, their heights as even as can be (the first mc mod n one row
 * taller), so that no sliver is left with a few rows: the MLP's 256 rows made 21 of 12 and one of 4, whose kernel
 * does a third of the work of a 12-row one per load of B and waits on its 8 accumulators' latency; now 14 of 12 and 8
 * of 11. Sliver s starts at row *r0 and has *mr rows. Each element of C is still one kernel's sum over k in order:
 * the same bits. With `fixed` (A packed whole beforehand, whose slivers start at multiples of MR), MR each.
 */
static inline void gg_sliver(gg_i mc, gg_i s, int fixed, gg_i *r0, gg_i *mr) {
  if (fixed) {
    *r0 = s * MR;
    *mr = gg_min(MR, mc - *r0);
    return;
  }
  gg_i n = (mc + MR - 1) / MR, base = mc / n, extra = mc % n;
  *r0 = s * base + (s < extra ? s : extra);
  *mr = gg_min(MR, base + (s < extra)); /* (never more: n·MR >= mc; said for the compiler) */
}

/* A rows [i0, i0+mc), depth [p0, p0+kc) into the slivers of gg_sliver (fixed: MR rows each): sliver s holds, for
 * each p, MR floats. */
static void gg_pack_a(const gg_gemm_args *g, gg_i i0, gg_i mc, gg_i p0, gg_i kc, int fixed, float *restrict dst) {
  for (gg_i sl = 0, is, mr; sl * MR < mc; sl++) {
    gg_sliver(mc, sl, fixed, &is, &mr);
    float *d = dst + sl * MR * kc;
    if (g->transA) {
      /* op(A)[i][p] = a[p·lda + i]: MR contiguous floats per p. */
      const float *s = g->a + p0 * g->lda + i0 + is;
#if defined(__AVX512F__)
      const __mmask16 in = (__mmask16)((1u << mr) - 1u), out = (__mmask16)((1u << MR) - 1u);
      for (gg_i p = 0; p < kc; p++, s += g->lda, d += MR) _mm512_mask_storeu_ps(d, out, _mm512_maskz_loadu_ps(in, s));
#else
      for (gg_i p = 0; p < kc; p++, s += g->lda, d += MR) {
        gg_i r = 0;
        for (; r < mr; r++) d[r] = s[r];
        for (; r < MR; r++) d[r] = 0.0f;
      }
#endif
    } else {
      /* op(A)[i][p] = a[i·lda + p]: mr streams read in step, contiguous writes. */
      const float *s = g->a + (i0 + is) * g->lda + p0;
      const float *rows[MR];
      for (gg_i r = 0; r < MR; r++) rows[r] = s + (r < mr ? r : 0) * g->lda;
#if defined(__AVX512F__)
      if (mr == MR)
        gg_pack_tr(rows, MR, kc, MR, MR, d);
      else
        gg_pack_tr(rows, (int)mr, kc, MR, MR, d);
#else
      if (mr == MR) {
        for (gg_i p = 0; p < kc; p++, d += MR)
#pragma GCC unroll 16
          for (int r = 0; r < MR; r++) d[r] = rows[r][p];
      } else {
        for (gg_i p = 0; p < kc; p++, d += MR)
          for (gg_i r = 0; r < MR; r++) d[r] = r < mr ? rows[r][p] : 0.0f;
      }
#endif
    }
  }
}

/* B depth [p0, p0+kc), columns [j0, j0+nc) into slivers of NR columns: sliver s holds, for each p, NR floats. */
static void gg_pack_b(const gg_gemm_args *g, gg_i p0, gg_i kc, gg_i j0, gg_i nc, float *restrict dst) {
  for (gg_i js = 0; js < nc; js += NR) {
    gg_i nr = gg_min(NR, nc - js);
    float *d = dst + js * kc;
    if (!g->transB) {
      const float *s = g->b + p0 * g->ldb + j0 + js;
      if (nr == NR) {
        for (gg_i p = 0; p < kc; p++, s += g->ldb, d += NR) {
          _mm_prefetch((const char *)(s + 4 * g->ldb), _MM_HINT_T0);
          V_STOREU(d, V_LOADU(s));
          V_STOREU(d + VL, V_LOADU(s + VL));
        }
      } else {
        for (gg_i p = 0; p < kc; p++, s += g->ldb, d += NR) {
          gg_i j = 0;
          for (; j < nr; j++) d[j] = s[j];
          for (; j < NR; j++) d[j] = 0.0f;
        }
      }
    } else {
      /* op(B)[p][j] = b[j·ldb + p]: read each stored row contiguously, write with stride NR. */
      const float *s = g->b + (j0 + js) * g->ldb + p0;
      const float *rows[NR];
      for (gg_i j = 0; j < NR; j++) rows[j] = s + (j < nr ? j : 0) * g->ldb;
#if defined(__AVX512F__)
      /* NR = 32 columns as two halves of 16, each transposed into its half of every p's 32 floats */
      if (nr == NR) {
        gg_pack_tr(rows, VL, kc, VL, NR, d);
        gg_pack_tr(rows + VL, VL, kc, VL, NR, d + VL);
      } else {
        gg_pack_tr(rows, nr < VL ? (int)nr : VL, kc, VL, NR, d);
        gg_pack_tr(rows + VL, nr > VL ? (int)(nr - VL) : 0, kc, VL, NR, d + VL);
      }
#else
      if (nr == NR) {
        for (gg_i p = 0; p < kc; p++, d += NR)
#pragma GCC unroll 32
          for (int j = 0; j < NR; j++) d[j] = rows[j][p];
      } else {
        for (gg_i p = 0; p < kc; p++, d += NR)
          for (gg_i j = 0; j < NR; j++) d[j] = j < nr ? rows[j][p] : 0.0f;
      }
#endif
    }
  }
}

#endif
