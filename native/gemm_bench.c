/*
 * gemm_bench.c: the timing entry points of bench/gemm-shapes.ts (gemmTime; gemmPeak is gg_gemm_fma_peak in
 * gemm_x86.c), kept out of native/addon.c. Nothing here runs unless a benchmark calls it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "gemm_x86.h"

/*
 * For bench/gemm-shapes.ts: the best seconds per product of one shape over `rounds` rounds of `reps` products, on
 * operands of this shape filled with small pseudo-random floats (allocated here, dense leading dimensions), on the
 * threads setThreads gave. impl 0: OpenBLAS (gg_sgemm_blas), 1: ours (gg_gemm_own), 2: ours with op(A) packed once
 * beforehand (gg_gemm_pack_a_whole + gg_gemm_own_packed: the recurrent layers' per-step products), 3: ours with
 * nn.Linear's bias and ReLU epilogue (gg_gemm_own_bias_act), 4: gg_sgemm (the per-shape policy's choice). -1 where
 * the implementation declines the shape (or this build has no own sgemm), -2 out of memory. cpu: the process's CPU
 * time instead of the wall clock (all its threads': what a product costs on a shared machine, not how long it waited
 * for a core).
 */
static double gg_clock(int cpu) {
  struct timespec t;
  clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double gg_gemm_time(int impl, int transA, int transB, gg_i m, gg_i n, gg_i k, int reps, int rounds, int cpu) {
  gg_i lda = transA ? m : k, ldb = transB ? k : n;
  size_t as = (size_t)m * (size_t)k, bs = (size_t)k * (size_t)n, cs = (size_t)m * (size_t)n;
  float *a = aligned_alloc(64, (as + bs + cs + (size_t)n + 16) * sizeof(float));
  float *pa = impl == 2 ? aligned_alloc(64, ((size_t)gg_gemm_packed_a_size(m, k) + 16) * sizeof(float)) : NULL;
  if (!a || (impl == 2 && !pa)) {
    free(a);
    free(pa);
    return -2;
  }
  float *b = a + as, *c = b + bs, *bias = c + cs;
  uint32_t seed = 12345;
  for (size_t i = 0; i < as + bs + cs + (size_t)n; i++) {
    seed = seed * 1664525u + 1013904223u;
    a[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.5f;
  }
  if (impl == 2) gg_gemm_pack_a_whole(transA, m, k, a, lda, pa);
  double best = 1e30;
  for (int round = 0; round < rounds + 1; round++) { /* round 0 warms up */
    double t0 = gg_clock(cpu);
    for (int r = 0; r < reps; r++) {
      int ok = 1;
      if (impl == 0) gg_sgemm_blas(transA, transB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
      else if (impl == 1) ok = gg_gemm_own(transA, transB, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
      else if (impl == 2) ok = gg_gemm_own_packed(transB, m, n, k, 1.0f, pa, b, ldb, 0.0f, c, n);
      else if (impl == 3) ok = gg_gemm_own_bias_act(transA, transB, m, n, k, a, lda, b, ldb, bias, 1, c, n);
      else gg_sgemm(transA, transB, m, n, k, 1.0, a, 0, lda, b, 0, ldb, 0.0, c, 0, n);
      if (!ok) {
        free(a);
        free(pa);
        return -1;
      }
    }
    double dt = (gg_clock(cpu) - t0) / reps;
    if (round > 0 && dt < best) best = dt;
  }
  free(a);
  free(pa);
  return best;
}
