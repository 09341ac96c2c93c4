/*
 * gemm_seg_x86.h: the products that take their A's row sums as they read A (native/gemm_x86.c includes it once, after
 * gg_gemm_run; the lanes are gemm_lanes_x86.h's). gg_gemm_own_row_sums: one product (see gemm_x86.h).
 * gg_gemm_own_segments: several products sharing one B. The GRU's weight gradients are three products over the same
 * rows of Z: r's and z's over [h; x], n's over x, hn's over h (src/tensor/ops/recurrent.ts, matrixGrads), so each
 * packed its part of Zᵀ (a transpose, and Z read from memory) for itself: h's rows twice, x's twice. Here each depth
 * block of B is packed once and every segment's rows are multiplied with the slivers of its columns. Each segment's
 * tiles are computed by the kernels, with the arguments, that gg_gemm_own would use for it alone (A read where it is
 * stored: the products must qualify, else nothing is done), so every element has the bits of its own product; the row
 * sums (gg_gemm_own_row_sums') likewise.
 */

int gg_gemm_own_row_sums(gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b, gg_i ldb, float *c,
                         gg_i ldc, float *sums) {
  /* A read where it is stored in every block (gg_direct_a: not transposed, at most GG_DIRECT_SLIVERS slivers of
   * columns, rows that do not alias in L1), so that each A sliver is in L1 once per depth block for its sums */
  if (m <= 0 || n <= 0 || k <= 0 || (n + NR - 1) / NR > GG_DIRECT_SLIVERS || !gg_direct_a_ok(lda)) return 0;
  double *lanes = calloc((size_t)m * 8, sizeof(double));
  if (!lanes) return 0;
  if (!gg_gemm_run(0, 1, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, NULL, 0, NULL, lanes)) {
    free(lanes);
    return 0;
  }
  gg_row_sums_done(m, k, a, lda, lanes, sums);
  free(lanes);
  return 1;
}

/* The job: segments, and the work of their row slivers in order (a sliver's work: its slivers of columns), cut into
 * one chunk of about equal work per thread. */
typedef struct {
  gg_i n, k;
  const float *b;
  gg_i ldb;
  const gg_gemm_seg *segs;
  int count, chunks;
  gg_i work;
  double **lanes; /* per segment, its rows' lanes (or NULL) */
} gg_seg_job;

/* The row slivers whose work starts in [w0, w1), all of their columns, every depth block; B's depth block packed once
 * for all of them. */
static void gg_seg_slivers(const gg_seg_job *j, gg_i w0, gg_i w1) {
  gg_gemm_args g = {0, 1, 0, j->n, j->k, 1.0f, 0.0f, NULL, 0, j->b, j->ldb, NULL, 0, 1, NULL, 0, NULL, NULL, NULL};
  for (gg_i pc = 0; pc < j->k; pc += KC) {
    gg_i kc = gg_min(KC, j->k - pc);
    int beta0 = pc == 0;
    float beta = pc == 0 ? 0.0f : 1.0f;
    gg_pack_b(&g, pc, kc, 0, j->n, gg_buf_b);
    gg_i w = 0;
    for (int si = 0; si < j->count; si++) {
      const gg_gemm_seg *s = &j->segs[si];
      gg_i per = (s->c1 - s->c0 + NR - 1) / NR;
      gg_gemm_args sg = g;
      sg.a = s->a, sg.lda = s->lda, sg.m = s->m, sg.lanes = j->lanes[si];
      for (gg_i r0 = 0; r0 < s->m; r0 += MR, w += per) {
        if (w < w0 || w >= w1) continue;
        gg_i mr = gg_min(MR, s->m - r0);
        const float *pa = s->a + r0 * s->lda + pc;
        float *crow = s->c + r0 * s->ldc;
        for (gg_i jr = s->c0; jr < s->c1; jr += NR) {
          gg_i nr = gg_min(NR, s->c1 - jr);
          gg_kernels[1][nr <= VL][mr](kc, pa, s->lda, gg_buf_b + jr * kc, j->ldb, crow + (jr - s->c0), s->ldc, NULL, 1, nr,
                                      1.0f, beta, beta0, NULL, 0);
        }
        if (sg.lanes) gg_row_lanes(&sg, r0, mr, pc, kc);
      }
    }
  }
}

static void gg_seg_chunk(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const gg_seg_job *j = p;
  if (!gg_buffers()) return;
  for (gg_i c = lo; c < hi; c++) gg_seg_slivers(j, j->work * c / j->chunks, j->work * (c + 1) / j->chunks);
}

/* The whole job on the calling thread (the pool's choice where its threads have not paid for this kind of job). */
static void gg_seg_alone(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid, (void)lo, (void)hi;
  const gg_seg_job *j = p;
  gg_seg_slivers(j, 0, j->work);
}

int gg_gemm_own_segments(gg_i n, gg_i k, const float *b, gg_i ldb, const gg_gemm_seg *segs, int count) {
  if (count < 1 || count > 8 || n <= 0 || k <= 0 || n > NC || ldb < k || !gg_buffers()) return 0;
  gg_i slivers = 0, work = 0;
  double flops = 0.0;
  for (int i = 0; i < count; i++) {
    const gg_gemm_seg *s = &segs[i];
    gg_i cols = s->c1 - s->c0;
    /* as gg_gemm_run would compute it alone: A read where it is stored (gg_direct_a), neither transposed (cols < NR
     * and a taller m) nor k-sliced; columns that start on a sliver */
    if (s->m <= 0 || cols <= 0 || s->c0 < 0 || s->c1 > n || s->c0 % NR || s->lda < k || s->ldc < cols) return 0;
    if ((cols + NR - 1) / NR > GG_DIRECT_SLIVERS || !gg_direct_a_ok(s->lda) || cols < NR) return 0;
    if (s->m <= MR && k >= 2 * KS_MIN) return 0;
    slivers += (s->m + MR - 1) / MR;
    work += (s->m + MR - 1) / MR * ((cols + NR - 1) / NR);
    flops += 2.0 * (double)s->m * (double)cols * (double)k;
  }
  double *lanes[8] = {NULL};
  int ok = 1;
  for (int i = 0; i < count && ok; i++)
    if (segs[i].sums && !(lanes[i] = calloc((size_t)segs[i].m * 8, sizeof(double)))) ok = 0;
  if (ok) {
    int nt = flops < 2e6 ? 1 : gg_pool_nthreads();
    if (nt > slivers) nt = (int)slivers;
    gg_seg_job job = {n, k, b, ldb, segs, count, nt, work, lanes};
    if (nt <= 1) gg_seg_slivers(&job, 0, work);
    else
      gg_pool_exec(gg_seg_chunk, gg_seg_alone, &job, nt, 1, nt,
                   gg_pool_key((uint64_t)n << 32 | (uint64_t)k, (uint64_t)work, (uint64_t)count,
                               (uint64_t)(uintptr_t)gg_seg_chunk));
    for (int i = 0; i < count; i++) {
      const gg_gemm_seg *s = &segs[i];
      if (s->sums) gg_row_sums_done(s->m, k, s->a, s->lda, lanes[i], s->sums);
    }
  }
  for (int i = 0; i < count; i++) free(lanes[i]);
  return ok;
}
