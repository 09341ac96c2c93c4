/* gemm_x86.h: our own sgemm for x86-64 with AVX-512 or AVX2+FMA (native/gemm_x86.c); stubs elsewhere. */
#ifndef GG_GEMM_X86_H
#define GG_GEMM_X86_H
#include "kernels.h"

/* "own-avx512", "own-avx2", or "" where this build has no own sgemm. */
const char *gg_gemm_own_name(void);
/* The revision of our kernels in the per-shape cache's keys (native/addon.c): raised when their speed changes, so that
 * every shape's choice is measured again against them rather than read from a measurement of the old ones. */
#define GG_GEMM_OWN_REV 5
/* Threads a product may use, the caller included (the pool starts on the first product that needs it). */
void gg_gemm_own_threads(int n);
/* addon.c: threads a product may use now, at least (gg_parallel_for's thread ids are below it), and whether kernels
 * may call gg_gemm_own on their own (this build has it and GRADGUARD_GEMM does not pin OpenBLAS). */
int gg_pool_threads(void);
int gg_conv_own_usable(void);
/* addon.c, for kernels that run one product per image on the pool's threads: 1 where ours computes products of this
 * shape, 0 where OpenBLAS does (the per-shape policy's choice, or the one GRADGUARD_GEMM pins), decided on the calling
 * thread before the pool starts (its first product of a shape may measure both); and OpenBLAS's product on the
 * calling thread alone (a pool thread's: OpenBLAS runs on one thread where the pool exists). */
int gg_gemm_choose_own(int transA, int transB, gg_i m, gg_i n, gg_i k);
void gg_gemm_blas_one(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                      const float *b, gg_i ldb, float beta, float *c, gg_i ldc);
/* Tests: hold 1 keeps the pool's workers from taking chunks (as if the OS never ran them), 2 leaves a job's last chunk
 * to a worker and stops it there until the caller has gone to sleep waiting for it (as if the OS stopped it
 * mid-chunk), 3 lets them work but has them see every job late (as if the OS ran another process while they
 * waited), 0 releases them;
 * returns the number of chunks the workers have computed so far. */
double gg_pool_hold(int hold);
/* Tests: how many times a pool worker, found off its CPU while it waited for a job (or told so by gg_pool_hold(3)),
 * slept right after a job instead of waiting for the next; in all, since the process started. */
double gg_pool_naps(void);
/* Tests: the sparse weight-gradient path (gemm_sparse_x86.h): mode 0 where it qualifies (the default), 1 never, 2
 * wherever A has any zero; -1 changes nothing. Returns the products it has computed so far in this process. */
double gg_gemm_sparse_mode(int mode);
/* Tests: how many chunks the pool's last job (a product or a gg_parallel_for) was cut into; 0 before the first. */
double gg_pool_last_chunks(void);
/* Tests: mode 1 runs every job of the pool on its threads, 2 every job on the caller alone (the timings kept), 0 (the
 * default) chooses per kind of job by their timings, forgetting those so far, 3 chooses keeping them; alone_ns /
 * threads_ns > 0 are the timings the choice then sees instead of the clock's. Returns the jobs run alone so far. */
double gg_pool_choose(int mode, double alone_ns, double threads_ns);
/* Tests: free >= 0 takes that many CPUs as free of other processes (under 1.55: every pool job alone), < 0 measures
 * (/proc/stat) afresh, NaN changes nothing; returns the CPUs free at the last reading or fake (-1: none yet). */
double gg_pool_crowd(double free);
/* Tests, bench: the jobs offered to the pool (with two or more threads) (0), those of them it ran alone (1), those run
 * alone because other processes held the CPUs (2); in all. */
double gg_pool_jobs(int alone);
/* fn over [0, n) in ranges of `step` (the last may be shorter) on the pool's threads, taken as they come, or
 * alone(0, 0, n) on the caller (with one thread, or for a kind of job that has been faster so): it must give fn's
 * bits. `key` tells kinds apart beside fn, n and step (the sizes that set the cost: 0 where those say it all). */
void gg_parallel_steps(gg_range_fn fn, gg_range_fn alone, const void *args, gg_i n, gg_i step, uint64_t key);
/* A job kind's key from the numbers that set its cost (pool_x86.c's choice between the threads and the caller). */
uint64_t gg_pool_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d);
/* pool_x86.c: chunks per thread for a product of `flops` on nt threads (ours, and OpenBLAS's on the pool). */
int gg_gemm_chunks_per_thread(double flops, int nt);
/* pool_x86.c: the threads a job may use now (gg_gemm_own_threads'), and a job: fn over [0, n) in chunks of `step` on
 * nt of the pool's threads, the caller included, taken as they come, or alone(0, 0, n, args) on the caller (the same
 * bits): alone with one thread, a busy pool (another thread's job) or none, and where jobs of this key (gg_pool_key)
 * have been faster so. */
int gg_pool_nthreads(void);
void gg_pool_exec(gg_range_fn fn, gg_range_fn alone, const void *args, gg_i n, gg_i step, int nt, uint64_t key);
/* gemm_x86.c: a pool thread's packing buffers, allocated at its start; 0 if they cannot be. */
int gg_gemm_thread_init(void);
/* Row-major C = alpha·op(A)·op(B) + beta·C, pointers already offset; m, n, k > 0. Returns 0 if not available. */
int gg_gemm_own(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                const float *b, gg_i ldb, float beta, float *c, gg_i ldc);
/* nn.Linear's product with its epilogue: C = op(A)·op(B) + bias (bias[j] added to column j; NULL: none), then
 * x <= 0 ? 0 : x where relu: the bits of C = bias, gg_gemm_own with beta 1, then a ReLU pass. Returns 0, having done
 * nothing, where ours cannot (no own sgemm, or a shape it computes transposed or in k slices). */
int gg_gemm_own_bias_act(int transA, int transB, gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b,
                         gg_i ldb, const float *bias, int relu, float *c, gg_i ldc);
/* A product's op(A) packed once for many products with the same A (the recurrent layers' weights, one product per
 * time step: native/kernels/recurrent_seq.c): the floats it takes (0 where this build has no own sgemm), the packing
 * (m×k of op(A), read as gg_gemm_own reads it), and the product C = alpha·A·op(B) + beta·C from it, with the bits of
 * gg_gemm_own on the same A (packing only moves floats). Returns 0, having done nothing, where ours would compute the
 * product transposed or in k slices, or cannot: the caller then runs gg_sgemm. */
gg_i gg_gemm_packed_a_size(gg_i m, gg_i k);
void gg_gemm_pack_a_whole(int transA, gg_i m, gg_i k, const float *a, gg_i lda, float *dst);
int gg_gemm_own_packed(int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *pa, const float *b, gg_i ldb,
                       float beta, float *c, gg_i ldc);
/* The recurrent layers' weight gradient with their biases' (native/kernels/recurrent_seq.c, gg_sgemm_row_sums):
 * C = A·Bᵀ (A m×k not transposed, B n×k; alpha 1, beta 0) with gg_gemm_own's bits, and sums[i] = A's row i summed
 * as gg_sum_axis sums a contiguous run (eight float64 lanes, summed pairwise, then the tail; rounded once: the same
 * bits), taken from each A sliver while the kernels have it in L1 instead of in a second pass over A. Returns 0,
 * having done nothing, where ours would not read A where it is stored (or cannot compute the product). */
int gg_gemm_own_row_sums(gg_i m, gg_i n, gg_i k, const float *a, gg_i lda, const float *b, gg_i ldb, float *c,
                         gg_i ldc, float *sums);
/* Products C_s = A_s·Bᵀ[·, c0_s..c1_s) sharing one B (n×k, ldb; alpha 1, beta 0; the GRU's three weight-gradient
 * products over Z's rows, native/kernels/recurrent_seq.c), B's depth blocks packed once for all: each C_s (and its row
 * sums, where sums_s is set) with the bits of gg_gemm_own_row_sums (gg_gemm_own) on that segment alone. c0 on a
 * sliver of 32 (AVX2: 16) columns. Returns 0, having done nothing, where one of them would not be computed so alone (A
 * packed, transposed, k-sliced) or a buffer cannot be had. native/gemm_seg_x86.h. */
typedef struct {
  const float *a;
  gg_i lda, m, c0, c1;
  float *c;
  gg_i ldc;
  float *sums;
} gg_gemm_seg;
int gg_gemm_own_segments(gg_i n, gg_i k, const float *b, gg_i ldb, const gg_gemm_seg *segs, int count);
/* Benchmarks: the calling thread's vector FMA rate in GFLOP/s (0 where this build has no own sgemm); and
 * (native/gemm_bench.c) the best seconds per product of one shape by one implementation (see there). */
double gg_gemm_fma_peak(gg_i iters);
double gg_gemm_time(int impl, int transA, int transB, gg_i m, gg_i n, gg_i k, int reps, int rounds, int cpu);
/* addon.c: OpenBLAS's product, cut into column chunks on the pool's threads where there are several. */
void gg_sgemm_blas(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                   const float *b, gg_i ldb, float beta, float *c, gg_i ldc);
#endif
