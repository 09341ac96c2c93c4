/*
 * native/kernels/gemm_ref.c: the plain sgemm for the shapes cblas rejects (see common.h for what all kernels
 * promise).
 */
#include "common.h"

/* ------------------------------------------------------------------------------------------------ sgemm fallback */

void gg_sgemm_ref(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff, gg_i lda,
                  const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc) {
  gg_i ai = transA ? 1 : lda, ak = transA ? lda : 1;
  gg_i bk = transB ? 1 : ldb, bj = transB ? ldb : 1;
  for (gg_i i = 0; i < m; i++) {
    float *cr = c + cOff + i * ldc;
    for (gg_i j = 0; j < n; j++) {
      double s = 0.0;
      for (gg_i p = 0; p < k; p++) s += (double)a[aOff + i * ai + p * ak] * (double)b[bOff + p * bk + j * bj];
      cr[j] = (float)(beta == 0.0 ? alpha * s : alpha * s + beta * (double)cr[j]);
    }
  }
}
