/* gemm_x86.h: our own sgemm for x86-64 with AVX-512 or AVX2+FMA (native/gemm_x86.c); stubs elsewhere. */
#ifndef GG_GEMM_X86_H
#define GG_GEMM_X86_H
#include "kernels.h"

/* "own-avx512", "own-avx2", or "" where this build has no own sgemm. */
const char *gg_gemm_own_name(void);
/* Threads a product may use, the caller included (the pool starts on the first product that needs it). */
void gg_gemm_own_threads(int n);
/*
 * Packs rows [p0, p0+kc) and columns [j0, j0+nc) of a product's B into slivers of nr columns, zero-padded: sliver s
 * (columns j0 + s·nr onwards) at dst + s·nr·kc holds, for each row p, nr floats.
 */
typedef void (*gg_pack_fn)(const void *ctx, gg_i p0, gg_i kc, gg_i j0, gg_i nc, gg_i nr, float *dst);
/* C = alpha·A·B + beta·C on the calling thread, B packed by `pack` (the convolution's columns, straight from its
 * input); 0 if not available. */
int gg_gemm_own_packed(gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda, gg_pack_fn pack,
                       const void *ctx, float beta, float *c, gg_i ldc);
/* Threads a product may use now (gg_parallel_for's thread ids are below it). */
int gg_pool_threads(void);
/* addon.c: whether kernels may call gg_gemm_own on their own (this build has it and GRADGUARD_GEMM does not pin
 * OpenBLAS). */
int gg_conv_own_usable(void);
/* Tests: hold != 0 keeps the pool's workers from taking chunks (as if the OS never ran them), 0 releases them;
 * returns the number of chunks the workers have computed so far. */
double gg_pool_hold(int hold);
/* Row-major C = alpha·op(A)·op(B) + beta·C, pointers already offset; m, n, k > 0. Returns 0 if not available. */
int gg_gemm_own(int transA, int transB, gg_i m, gg_i n, gg_i k, float alpha, const float *a, gg_i lda,
                const float *b, gg_i ldb, float beta, float *c, gg_i ldc);
#endif
