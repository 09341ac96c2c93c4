/*
 * common.h: what every kernel family of native/kernels/ includes: the public declarations (../kernels.h), our libc-free
 * math (../gg_math.h), the vector intrinsics of the target, and the SIMD128 helpers shared by several families.
 *
 * Every kernel reproduces the reference in src/backend/js.ts, including its evaluation order and its float64
 * intermediates where it has them, so that results agree with it bit for bit wherever the arithmetic allows (the
 * transcendental functions differ by an ulp or two). The loops are plain so that gcc (-O3 -march=native) and clang
 * (-msimd128) vectorize them; the build turns off floating-point contraction so that no FMA changes a rounding.
 */
#ifndef GG_KERNELS_COMMON_H
#define GG_KERNELS_COMMON_H

#include "../kernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../gg_math.h"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
/*
 * Hand-written SIMD128 loops for the kernels that compute in float64 and store float32. LLVM 14 vectorizes them but
 * scalarizes the f64x2 -> f32 demotion (four extract/demote/replace per vector), which makes them several times
 * slower than these; the arithmetic and its order are the same, so the results are identical.
 */
static inline v128_t gg_f64_lo(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
static inline v128_t gg_f64_hi(v128_t v) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3)); }
static inline v128_t gg_f32_pack(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}
#endif

/*
 * max(v, 0) as the reference's ReLU: NaN stays NaN, -0 and 0 give +0. A compare and a select, which gcc vectorizes
 * (also where it is the last step of a longer expression in a loop, so that no second pass is needed natively).
 * NOTE: in wasm, loops use gg_relu_row instead: clang 19 vectorizes this select for SIMD128 as f32x4.pmax(v, 0), which
 * keeps -0, and does so for the same select written with bit masks too.
 */
static inline float gg_relu(float v) { return v <= 0.0f ? 0.0f : v; }

/* g where y > 0, else +0 (the ReLU's gradient read from its output; 0 even for an infinite g), without a branch: gcc
 * does not if-convert the select once its result is widened to double, and a branch on the mask mispredicts. */
static inline float gg_relu_mask(float y, float g) {
  union {
    float f;
    uint32_t u;
  } v = {g};
  v.u &= (uint32_t)0 - (uint32_t)(y > 0.0f);
  return v.f;
}

/* out[i] = gg_relu(x[i]) for i < n (out may be x); in wasm by hand: x with the lanes where x <= 0 cleared. */
static inline void gg_relu_row(const float *x, float *out, gg_i n) {
  gg_i i = 0;
#if defined(__wasm_simd128__)
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(out + i, wasm_v128_andnot(v, wasm_f32x4_le(v, zero)));
  }
#pragma clang loop vectorize(disable)
  for (; i < n; i++) out[i] = gg_relu(x[i]);
#else
  for (; i < n; i++) out[i] = gg_relu(x[i]);
#endif
}

#endif
