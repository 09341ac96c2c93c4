/*
 * gemm_lanes_x86.h: the row sums that native/gemm_x86.c's products take from A as they read it (gg_gemm_own_row_sums,
 * gg_gemm_own_segments; included once, before gg_gemm_block, which calls gg_row_lanes after each A sliver's kernels).
 */

/*
 * gg_gemm_own_row_sums: rows [r0, r0 + mr) of A, columns [pc, pc + kc), added into their eight float64 lanes (column p
 * into lane p mod 8, in order of p), as gg_sum_axis sums a contiguous run; the columns past the last whole eight are
 * left for gg_gemm_own_row_sums to add after the lanes. Depth blocks start at multiples of KC, a multiple of 8, so a
 * block's column p goes to lane p mod 8 as in the whole row.
 */
static void gg_row_lanes(const gg_gemm_args *g, gg_i r0, gg_i mr, gg_i pc, gg_i kc) {
  gg_i end = gg_min(kc, g->k / 8 * 8 - pc);
  const float *a0 = g->a + r0 * g->lda + pc;
  double *acc = g->lanes + r0 * 8;
  gg_i r = 0;
#if defined(__AVX512F__)
  /* four rows at a time, each row's lanes one register: four independent chains of float64 adds (one row's adds are
   * in order of p, each lane's as gg_sum_axis's) */
  for (; r + 4 <= mr; r += 4) {
    const float *ar = a0 + r * g->lda;
    gg_i lda = g->lda;
    __m512d l0 = _mm512_loadu_pd(acc + r * 8), l1 = _mm512_loadu_pd(acc + r * 8 + 8);
    __m512d l2 = _mm512_loadu_pd(acc + r * 8 + 16), l3 = _mm512_loadu_pd(acc + r * 8 + 24);
    for (gg_i p = 0; p + 8 <= end; p += 8) {
      l0 = _mm512_add_pd(l0, _mm512_cvtps_pd(_mm256_loadu_ps(ar + p)));
      l1 = _mm512_add_pd(l1, _mm512_cvtps_pd(_mm256_loadu_ps(ar + lda + p)));
      l2 = _mm512_add_pd(l2, _mm512_cvtps_pd(_mm256_loadu_ps(ar + 2 * lda + p)));
      l3 = _mm512_add_pd(l3, _mm512_cvtps_pd(_mm256_loadu_ps(ar + 3 * lda + p)));
    }
    _mm512_storeu_pd(acc + r * 8, l0), _mm512_storeu_pd(acc + r * 8 + 8, l1);
    _mm512_storeu_pd(acc + r * 8 + 16, l2), _mm512_storeu_pd(acc + r * 8 + 24, l3);
  }
#endif
  for (; r < mr; r++) {
    const float *restrict ar = a0 + r * g->lda;
    double l[8];
    for (int j = 0; j < 8; j++) l[j] = acc[r * 8 + j];
    for (gg_i p = 0; p + 8 <= end; p += 8)
      for (int j = 0; j < 8; j++) l[j] += (double)ar[p + j];
    for (int j = 0; j < 8; j++) acc[r * 8 + j] = l[j];
  }
}

/* The lanes of m rows summed pairwise, then each row's tail past its last eight in order, rounded once: sums[i] as
 * gg_sum_axis gives it (gg_gemm_own_row_sums, gg_gemm_own_segments). */
static void gg_row_sums_done(gg_i m, gg_i k, const float *a, gg_i lda, const double *lanes, float *sums) {
  for (gg_i i = 0; i < m; i++) {
    const double *l = lanes + i * 8;
    double s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    for (gg_i p = k / 8 * 8; p < k; p++) s += (double)a[i * lda + p];
    sums[i] = (float)s;
  }
}

