/*
 * kernels.h: the C kernels shared by the native (N-API + OpenBLAS) and wasm backends.
 *
 * The semantics are exactly those of the reference kernels in src/backend/js.ts (see types.ts for the interface);
 * where the reference computes in float64 and rounds once (axpy, affine, the Adam update, gradients), so do these,
 * so that most results agree bit for bit. Like the reference, kernels never check their inputs.
 *
 * Conventions: every buffer is a float32 pointer plus, where the interface has one, an element offset; integer
 * arguments are gg_i (pointer-sized: 64-bit natively, 32-bit in wasm32); scalar parameters are double (JS numbers).
 * Small integer arrays (shapes, strides, geometries) are passed as int32 pointers: the JS side writes them into a
 * scratch area it reuses, so no call allocates.
 */
#ifndef GG_KERNELS_H
#define GG_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t gg_i;

#if defined(__wasm__)
/* Exported from the wasm module (the build hides everything else with -fvisibility=hidden). */
#define GG_API __attribute__((visibility("default")))
#else
#define GG_API
#endif

/* Mirrors enum Unary in types.ts. */
enum {
  GG_NEG = 0,
  GG_EXP = 1,
  GG_LOG = 2,
  GG_SQRT = 3,
  GG_ABS = 4,
  GG_RELU = 5,
  GG_LEAKY_RELU = 6,
  GG_ELU = 7,
  GG_SELU = 8,
  GG_GELU = 9,
  GG_SIGMOID = 10,
  GG_TANH = 11,
  GG_SOFTPLUS = 12,
  GG_POW_SCALAR = 13,
  GG_CLAMP = 14,
  GG_AFFINE = 15,
  GG_SQUARE = 16,
  GG_RECIPROCAL = 17,
  GG_SIGN = 18,
  GG_SCALAR_DIV = 19,
  GG_SCALAR_POW = 20
};

/*
 * Running a kernel over [0, n) on several threads: the native addon (native/pool_x86.c) and the threaded wasm
 * module (GG_WASM_THREADS, with native/wasm_threads.c) have them; the one-thread wasm module calls fn once over the
 * whole range. fn computes
 * [lo, hi) on thread `tid` (0 is the caller) and must give every element the same result whatever the cut, so that
 * the numbers do not depend on the thread count. Ranges are cut in multiples of `unit`; `work` estimates the
 * multiply-adds of the whole call, and below a threshold the caller does it alone.
 */
typedef void (*gg_range_fn)(int tid, gg_i lo, gg_i hi, const void *args);
#if defined(GG_WASM_THREADS)
#define GG_MAX_THREADS 8
void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work);
#elif !defined(__wasm__)
/* Natively: on the thread pool of native/pool_x86.c (x86-64 with AVX2 or AVX-512), else serially. */
void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work);
#else
#define GG_MAX_THREADS 1
static inline void gg_parallel_for(gg_range_fn fn, const void *args, gg_i n, gg_i unit, double work) {
  (void)unit;
  (void)work;
  if (n > 0) fn(0, 0, n, args);
}
#endif

/* Mirrors enum Binary in types.ts. */
enum { GG_ADD = 0, GG_SUB = 1, GG_MUL = 2, GG_DIV = 3, GG_POW = 4, GG_MAXIMUM = 5, GG_MINIMUM = 6 };

/* Number of int32 slots in a geometry array: ConvGeom n,c,h,w,kh,kw,sh,sw,ph,pw,dh,dw,oh,ow;
 * PoolGeom planes,h,w,kh,kw,sh,sw,ph,pw,oh,ow. */
#define GG_CONV_GEOM 14
#define GG_POOL_GEOM 11
#define GG_MAX_DIMS 8

GG_API void gg_fill(float *out, double value, gg_i n);
GG_API void gg_copy(const float *src, gg_i sOff, float *dst, gg_i dOff, gg_i n);
GG_API void gg_copy_blocks(const float *src, gg_i sOff, gg_i sStride, float *dst, gg_i dOff, gg_i dStride, gg_i len,
                           gg_i nBlocks, int accumulate);
GG_API void gg_axpy(double alpha, const float *x, float *y, gg_i n);
GG_API void gg_scale(float *x, gg_i n, double s);

/* Whether gg_unary / gg_unary_grad implement `op` (1) or the caller must fall back to its own kernel (0). */
GG_API int gg_unary_supported(int op);
/* Return 0 (and do nothing) for an op they do not implement. */
GG_API int gg_unary(int op, const float *x, float *out, gg_i n, double a, double b);
GG_API int gg_unary_grad(int op, const float *x, const float *y, const float *gy, float *gx, gg_i n, double a,
                         double b);
/* Returns 0 (and does nothing) for Pow, which is left to the caller. */
/* out = relu(a + b) over n elements: the float32 sum, then gg_unary's ReLU (a residual block's add + ReLU). */
GG_API void gg_add_relu(const float *a, const float *b, float *out, gg_i n);
/* out = y > 0 ? a + b : +0 over n elements: two gradients of a ReLU output y summed (float32) and masked, one pass. */
GG_API void gg_relu_grad_sum(const float *a, const float *b, const float *y, float *out, gg_i n);
GG_API int gg_binary(int op, const float *a, const float *b, float *out, int nd, const int32_t *shape,
                     const int32_t *aStrides, const int32_t *bStrides);

GG_API void gg_sum_axis(const float *x, float *out, gg_i outer, gg_i mid, gg_i inner);
GG_API void gg_max_axis(const float *x, float *out, float *arg, gg_i outer, gg_i mid, gg_i inner);
GG_API double gg_sum_squares(const float *x, gg_i n);
GG_API double gg_max_abs(const float *x, gg_i n);
GG_API void gg_sum_squares_max_abs(const float *x, gg_i n, double *out);
/* out[j] = column j's sum of x read as [rows, cols] (gg_sum_axis's bits); returns Σx² (gg_sum_squares' bits). */
GG_API double gg_sum_squares_columns(const float *x, float *out, gg_i rows, gg_i cols);
GG_API double gg_sum_squares_rows(const float *x, float *out, gg_i rows, gg_i cols);
GG_API double gg_axpy_sum_squares(double alpha, const float *x, float *y, gg_i n, double *xss);
GG_API double gg_count_non_finite(const float *x, gg_i n);
GG_API double gg_count_outside(const float *x, gg_i n, double lo, double hi);

GG_API void gg_permute(const float *x, float *out, int nd, const int32_t *shape, const int32_t *perm);

GG_API void gg_softmax(const float *x, float *out, gg_i rows, gg_i cols, int log);
GG_API void gg_softmax_grad(const float *y, const float *gy, float *gx, gg_i rows, gg_i cols, int log);
GG_API void gg_cross_entropy(const float *x, const float *targets, float *probs, float *loss, gg_i rows, gg_i cols,
                             double smoothing, double ignoreIndex);
GG_API void gg_cross_entropy_grad(const float *probs, const float *targets, const float *scale, float *gx, gg_i rows,
                                  gg_i cols, double smoothing, double ignoreIndex);

GG_API void gg_im2col(const float *x, gg_i xOff, float *cols, const int32_t *geom);
GG_API void gg_col2im(const float *cols, float *dx, gg_i dxOff, const int32_t *geom);
/* The whole convolution of a batch (geom: one group, n = the images), natively only; 0 where it cannot run (then the
 * caller composes im2col and sgemm). */
GG_API int gg_conv2d(const float *x, const float *weight, float *out, const int32_t *geom, gg_i oc, gg_i groups,
                     int accumulate);
GG_API int gg_conv2d_bias(const float *x, const float *weight, const float *bias, float *out, const int32_t *geom,
                          gg_i oc, gg_i groups, int relu);
GG_API int gg_conv2d_grad_input(const float *gy, const float *weight, float *gx, const int32_t *geom, gg_i oc,
                                gg_i groups);
GG_API int gg_conv2d_grad_weight(const float *x, const float *gy, float *gw, const int32_t *geom, gg_i oc,
                                 gg_i groups);
GG_API void gg_max_pool2d(const float *x, float *out, const int32_t *geom);
GG_API double gg_max_pool2d_sums(const float *x, float *out, float *sums, const int32_t *geom);
GG_API void gg_max_pool2d_grad(const float *x, const float *gy, float *dx, const int32_t *geom);
GG_API void gg_max_pool2d_grad_relu(const float *x, const float *gy, float *dx, float *sums, const int32_t *geom);
GG_API void gg_avg_pool2d(const float *x, float *out, const int32_t *geom, int countIncludePad);
GG_API void gg_avg_pool2d_grad(const float *gy, float *dx, const int32_t *geom, int countIncludePad);

/* Batch and layer normalisation, forward and backward (see the kernel spec, src/backend/spec.ts). */
GG_API void gg_batch_norm(const float *x, const float *weight, const float *bias, float *runningMean,
                          float *runningVar, float *mean, float *invstd, float *out, gg_i n, gg_i c, gg_i inner,
                          int training, int updateRunning, double momentum, double eps);
GG_API void gg_batch_norm_grad(const float *x, const float *gy, const float *weight, const float *mean,
                               const float *invstd, float *gx, float *gw, float *gb, gg_i n, gg_i c, gg_i inner,
                               int training);
GG_API void gg_batch_norm_relu(const float *x, const float *weight, const float *bias, float *runningMean,
                               float *runningVar, float *mean, float *invstd, float *out, gg_i n, gg_i c, gg_i inner,
                               int training, int updateRunning, double momentum, double eps);
GG_API void gg_batch_norm_relu_grad(const float *x, const float *gy, const float *y, const float *weight,
                                    const float *mean, const float *invstd, float *gx, float *gw, float *gb, gg_i n,
                                    gg_i c, gg_i inner, int training);
GG_API void gg_layer_norm(const float *x, const float *weight, const float *bias, float *mean, float *rstd, float *out,
                          gg_i rows, gg_i d, double eps);
GG_API void gg_layer_norm_grad(const float *x, const float *gy, const float *weight, const float *mean,
                               const float *rstd, float *gx, float *gw, float *gb, gg_i rows, gg_i d);

/* The LSTM and GRU steps, forward and backward (native/kernels/recurrent.c; see the kernel spec, src/backend/spec-nn.ts). */
GG_API void gg_lstm_cell(const float *p, gg_i pOff, gg_i ldp, const float *cPrev, float *act, float *c, float *tc,
                         float *h, gg_i hOff, gg_i ldh, float *y, gg_i yOff, gg_i ldy, gg_i hidden, gg_i batch);
GG_API void gg_lstm_cell_grad(const float *act, const float *cPrev, const float *tc, float *dh, const float *dy,
                              gg_i dyOff, gg_i ldy, const float *dc, float *dG, gg_i dOff, gg_i ldg, float *dcPrev,
                              gg_i hidden, gg_i batch);

GG_API void gg_gru_cell(const float *p, gg_i pOff, gg_i ldp, const float *hn, const float *hPrev, gg_i hpOff,
                        float *h, gg_i hOff, gg_i ldh, float *y, gg_i yOff, gg_i ldy, float *act, gg_i hidden,
                        gg_i batch);
GG_API void gg_gru_cell_grad(const float *act, const float *hn, const float *hPrev, gg_i hpOff, gg_i ldh, float *dh,
                             const float *dy, gg_i dyOff, gg_i ldy, float *dG, gg_i dOff, gg_i ldg, float *dhPrev,
                             gg_i hidden, gg_i batch);

/* The LSTM's and the GRU's loops over time, one call per layer and direction (native/kernels/recurrent_seq.c; see the
 * kernel spec, src/backend/spec-nn.ts): per step the product(s) and the cell kernel above, as the op made them. */
GG_API void gg_lstm_seq(const float *w, gg_i k, float *z, gg_i ldz, const float *x, gg_i xStep, gg_i ldx, gg_i inputs,
                        float *p, float *c, float *act, float *tc, float *y, gg_i yStep, gg_i ldy, int keep, gg_i steps,
                        gg_i hidden, gg_i batch);
GG_API void gg_lstm_seq_grad(const float *whh, const float *act, const float *c, const float *tc, float *dh,
                             const float *dy, gg_i yStep, gg_i ldy, float *dc, float *dG, gg_i ldg, float *dhss,
                             int measure, gg_i steps, gg_i hidden, gg_i batch);
GG_API void gg_gru_seq(const float *w, gg_i k, gg_i nb, float *z, gg_i ldz, const float *x, gg_i xStep, gg_i ldx,
                       gg_i inputs, float *p, float *hn, float *act, float *y, gg_i yStep, gg_i ldy, int keep,
                       gg_i steps, gg_i hidden, gg_i batch);
GG_API void gg_gru_seq_grad(const float *whh, const float *act, const float *hn, const float *z, gg_i zOff, gg_i ldz,
                            float *dh, const float *dy, gg_i yStep, gg_i ldy, float *dG, gg_i ldg, float *dhss,
                            int measure, gg_i steps, gg_i hidden, gg_i batch);
GG_API void gg_gru_weight_grads(const float *dG, gg_i k, const float *z, gg_i zOff, gg_i ldz, gg_i hidden, gg_i inputs,
                                float *both, float *wi, float *wh, float *sums, int withSums);
GG_API void gg_sgemm_row_sums(gg_i m, gg_i n, gg_i k, const float *a, gg_i aOff, const float *b, gg_i bOff, gg_i ldb,
                              float *c, gg_i cOff, gg_i ldc, float *sums, gg_i sOff);

/* nn.Linear (+ ReLU), natively (native/kernels/linear.c; not in the wasm modules): out = x·wᵀ + bias, then ReLU where
 * relu, in the product's output pass; 0 (nothing done) where OpenBLAS computes the product or ours cannot. And its
 * backward's first pass: gx = y > 0 ? gy : 0 and gb = gx's column sums (as gg_unary_grad and gg_sum_axis). */
GG_API int gg_linear_bias(const float *x, const float *w, const float *bias, float *out, gg_i rows, gg_i inF,
                          gg_i outF, int relu);
GG_API void gg_relu_bias_grad(const float *gy, const float *y, float *gx, float *gb, gg_i rows, gg_i cols);

GG_API void gg_adam_update(float *g, float *m, float *v, gg_i n, double b1, double b2, double eps, double bc1,
                           double bc2, double pre, double post);
GG_API void gg_adam_apply(const float *g, float *m, float *v, float *p, gg_i n, double b1, double b2, double eps,
                          double bc1, double bc2, double pre, double post, int measure, double *out);

/*
 * C[cOff..] = alpha·op(A)·op(B) + beta·C, row-major (the reference's sgemm); beta = 0 ignores C's contents.
 * Natively this is cblas_sgemm (native/addon.c); in wasm it is native/wasm_sgemm.c. gg_sgemm_ref is a plain loop
 * with float64 accumulation, for the shapes cblas rejects (leading dimensions smaller than a row).
 */
GG_API void gg_sgemm(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff,
                     gg_i lda, const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc);
void gg_sgemm_ref(int transA, int transB, gg_i m, gg_i n, gg_i k, double alpha, const float *a, gg_i aOff, gg_i lda,
                  const float *b, gg_i bOff, gg_i ldb, double beta, float *c, gg_i cOff, gg_i ldc);

#endif
