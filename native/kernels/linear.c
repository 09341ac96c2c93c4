/*
 * native/kernels/linear.c: nn.Linear followed by nn.ReLU as one op's kernels, natively (see common.h for what all
 * kernels promise). Not in the wasm modules: the wasm backend composes the reference's kernels (js-nn.ts), as the
 * native one does where OpenBLAS computes the product.
 *
 * Forward: the bias is added as the product's first depth block is stored and the ReLU applied as its last one is
 * (native/gemm_x86.c's epilogue), instead of broadcasting the bias into the output first and passing over it again
 * for the ReLU. The bits are the composition's: C = bias, the product added with beta 1, then x <= 0 ? 0 : x.
 * Backward: the ReLU's mask and the bias gradient's column sums in one pass over the output's gradient.
 */
#include "common.h"

#if !defined(__wasm__)
#include "../gemm_x86.h"

GG_API int gg_linear_bias(const float *x, const float *w, const float *bias, float *out, gg_i rows, gg_i inF,
                          gg_i outF, int relu) {
  /* the product gg_sgemm would compute: x·wᵀ, NT; ours only where the policy gives it this shape */
  if (rows <= 0 || inF <= 0 || outF <= 0 || !gg_gemm_choose_own(0, 1, rows, outF, inF)) return 0;
  return gg_gemm_own_bias_act(0, 1, rows, outF, inF, x, inF, w, inF, bias, relu, out, outF);
}

/* gx = y > 0 ? gy : 0 (the ReLU's gradient, read from its output: y > 0 exactly where its input was), and gb[j] the
 * sum of gx's column j in row order from +0 in float32: the bits of gg_unary_grad then gg_sum_axis(gx, gb, 1, rows,
 * cols). */
GG_API void gg_relu_bias_grad(const float *gy, const float *y, float *gx, float *gb, gg_i rows, gg_i cols) {
  for (gg_i j = 0; j < cols; j++) gb[j] = 0.0f;
  for (gg_i i = 0; i < rows; i++) {
    const float *restrict gr = gy + i * cols, *restrict yr = y + i * cols;
    float *restrict xr = gx + i * cols, *restrict br = gb;
    for (gg_i j = 0; j < cols; j++) {
      float v = yr[j] > 0.0f ? gr[j] : 0.0f;
      xr[j] = v;
      br[j] += v;
    }
  }
}
#endif
