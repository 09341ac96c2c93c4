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
 * Float64 sum of a run of float32 values in the reference's order (js.ts, laneSum): value m into lane m mod 8 for
 * every full group of eight, the lanes added pairwise, then the rest in order (gg_sum_axis's runs, BatchNorm's and
 * LayerNorm's sums). Eight independent chains: gcc vectorizes the loop; for wasm the same eight lanes are spelled out
 * two float64 a register (LLVM does not vectorize the conversions).
 */
static inline double gg_lane_sum(const float *x, gg_i len) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  gg_i m = 0;
#if defined(__wasm_simd128__)
  v128_t a01 = wasm_f64x2_splat(0.0), a23 = a01, a45 = a01, a67 = a01;
  for (; m + 8 <= len; m += 8) {
    v128_t u = wasm_v128_load(x + m), w = wasm_v128_load(x + m + 4);
    a01 = wasm_f64x2_add(a01, gg_f64_lo(u));
    a23 = wasm_f64x2_add(a23, gg_f64_hi(u));
    a45 = wasm_f64x2_add(a45, gg_f64_lo(w));
    a67 = wasm_f64x2_add(a67, gg_f64_hi(w));
  }
  wasm_v128_store(acc, a01);
  wasm_v128_store(acc + 2, a23);
  wasm_v128_store(acc + 4, a45);
  wasm_v128_store(acc + 6, a67);
#endif
  for (; m + 8 <= len; m += 8)
    for (int j = 0; j < 8; j++) acc[j] += (double)x[m + j];
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; m < len; m++) s += (double)x[m];
  return s;
}

#if defined(__AVX512F__)
/* The 16×16 block of rows r[0..15] transposed in place (r[j] becomes column j): conv_dw.c's weight gradient, the
 * permute's matrix transposes (layout.c). */
static inline void gg_transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  /* r[4i + j]'s 128-bit lane L now holds rows 4i..4i+3 of column 4L + j */
  __m512 o[16];
  for (int j = 0; j < 4; j++) {
    __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88), u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
    __m512 u2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88), u3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    o[j] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    o[8 + j] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    o[4 + j] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    o[12 + j] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
  for (int j = 0; j < 16; j++) r[j] = o[j];
}
#endif

#if defined(__AVX512F__)
/* The eight lanes of a register added pairwise, as gg_lane_sum adds its lanes. */
static inline double gg_lanes_add(__m512d acc) {
  double l[8];
  _mm512_storeu_pd(l, acc);
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}
#endif

/*
 * The sums of `count` contiguous runs of len values (run k at x + k·stride) into out[k], each as gg_sum_axis sums a
 * run (reduce.c): float64 in eight lanes, element m in lane m mod 8, the lanes summed pairwise, then the tail in
 * order, rounded once; so bit for bit the one-run loop's. The one-run loop is a single chain of vector additions (one
 * register of eight lanes), bound by the addition's latency (~37 GB/s in cache, Zen 5); with AVX-512, four runs at
 * once make four independent chains.
 */
static inline void gg_run_sums(const float *x, gg_i len, gg_i stride, gg_i count, float *out) {
  gg_i k = 0;
#if defined(__AVX512F__)
  for (; k + 4 <= count; k += 4) {
    const float *x0 = x + k * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    gg_i m = 0;
    for (; m + 8 <= len; m += 8) {
      a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm256_loadu_ps(x0 + m)));
      a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_loadu_ps(x1 + m)));
      a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm256_loadu_ps(x2 + m)));
      a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_loadu_ps(x3 + m)));
    }
    const __m512d acc[4] = {a0, a1, a2, a3};
    const float *xs[4] = {x0, x1, x2, x3};
    for (int r = 0; r < 4; r++) {
      double s = gg_lanes_add(acc[r]);
      for (gg_i t = m; t < len; t++) s += (double)xs[r][t];
      out[k + r] = (float)s;
    }
  }
#endif
  for (; k < count; k++) out[k] = (float)gg_lane_sum(x + k * stride, len);
}


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

#if !defined(__wasm__)
/* gg_sum_squares_rows' blocks (reduce.c), for a kernel that takes the same statistics in its own pass over x (the max
 * pooling's gg_max_pool2d_sums): `per` rows a block (at least 32,768 values, at most 256 blocks: fixed by the shape),
 * and one block's row sums into out with its Σx², the partial that gg_sum_squares_rows adds in order. */
#define RS_MAX_BLOCKS 256
gg_i gg_rows_per_block(gg_i rows, gg_i cols);
double gg_rows_block(const float *x, float *out, gg_i rows, gg_i cols);
#endif

#endif
