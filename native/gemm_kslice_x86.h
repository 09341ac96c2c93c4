/*
 * gemm_kslice_x86.h: products whose C is a single register tile, cut along k (native/gemm_x86.c includes it once,
 * after the pool's chunks, before gg_gemm_exec).
 */
/*
 * A product whose C is a single register tile (after gg_gemm_run's transpose: a conv weight gradient, 32×9 over
 * k = 43264) cannot be cut by rows or columns; cut k instead. The slices depend on k only, never on the thread count:
 * each slice's partial product is computed whole by one thread (alpha 1, beta 0) into a buffer of the caller, and the
 * caller then adds the partials in slice order in float64, C = alpha·Σ + beta·C, rounded once. So the bits are the
 * same on any number of threads, one included.
 */
#define KS_MIN (4 * KC)
#define KS_MAX_SLICES 64

/* Partials of the calling thread's k-sliced products: KS_MAX_SLICES tiles, allocated on first use and reused. */
static __thread float *gg_buf_k;

typedef struct {
  const gg_gemm_args *g;
  gg_i slice; /* k per slice (the last may be shorter) */
  float *partials;
} gg_kslice_args;

static void gg_kslice_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_kslice_args *s = p;
  const gg_gemm_args *g = s->g;
  for (gg_i i = lo; i < hi; i++) {
    gg_i p0 = i * s->slice;
    gg_gemm_args t = *g;
    t.k = gg_min(s->slice, g->k - p0);
    t.a = g->transA ? g->a + p0 * g->lda : g->a + p0;
    t.b = g->transB ? g->b + p0 : g->b + p0 * g->ldb;
    t.alpha = 1.0f;
    t.beta = 0.0f;
    t.c = s->partials + i * MR * NR;
    t.ldc = g->n;
    t.csc = 1;
    gg_gemm_block(&t, 0, g->m, 0, g->n);
  }
}

/* g->m <= MR, g->n <= NR, g->k >= 2·KS_MIN. Returns 0 if the partials buffer cannot be allocated. */
static int gg_gemm_ksliced(const gg_gemm_args *g) {
  if (!gg_buf_k) gg_buf_k = aligned_alloc(64, sizeof(float) * KS_MAX_SLICES * MR * NR);
  if (!gg_buf_k) return 0;
  gg_i slice = (g->k + KS_MAX_SLICES - 1) / KS_MAX_SLICES;
  slice = slice < KS_MIN ? KS_MIN : (slice + KC - 1) / KC * KC;
  gg_i slices = (g->k + slice - 1) / slice;
  gg_kslice_args s = {g, slice, gg_buf_k};
  gg_parallel_for(gg_kslice_range, &s, slices, 1, (double)g->m * (double)g->n * (double)g->k);
  for (gg_i i = 0; i < g->m; i++) {
    for (gg_i j = 0; j < g->n; j++) {
      double sum = 0.0;
      for (gg_i q = 0; q < slices; q++) sum += (double)gg_buf_k[q * MR * NR + i * g->n + j];
      float *cij = g->c + i * g->ldc + j * g->csc;
      /* beta = 0 ignores C (even NaN), as everywhere */
      *cij = (float)((double)g->alpha * sum + (g->beta == 0.0f ? 0.0 : (double)g->beta * (double)*cij));
    }
  }
  return 1;
}
