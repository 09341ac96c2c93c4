/*
 * gg_math.h: the few transcendental functions the kernels need, in portable C with no libc.
 *
 * Why our own: the kernels (native/kernels/) are compiled twice, natively (gcc/clang + OpenBLAS) and for wasm32 with -nostdlib, where
 * there is no libm. Having one implementation also means both backends round the same way.
 *
 * The float functions (gg_expf, gg_logf, gg_tanhf, gg_sigmoidf) follow Cephes: range reduction by ln 2 in two parts,
 * then a minimax polynomial; they are accurate to about 1-2 ulp of float32 against the correctly rounded value (the JS
 * reference computes in float64 and rounds once). They are written without branches, with the special cases (NaN,
 * ±Inf, overflow, underflow to subnormals) selected at the end, so that compilers can vectorize the loops that call
 * them. They never convert a float to an int, since wasm's i32.trunc traps on NaN: rounding uses the 1.5·2^23 shifter.
 *
 * The double functions (gg_exp, gg_log) are for the per-row work of softmax and cross-entropy, where the reference
 * exponentiates and takes logs in float64: with them those kernels agree with the reference almost bit for bit.
 */
#ifndef GG_MATH_H
#define GG_MATH_H

#include <stdint.h>

#define GG_INFF __builtin_inff()
#define GG_NANF __builtin_nanf("")
#define GG_INF __builtin_inf()
#define GG_NAN __builtin_nan("")

/* Type punning through a union is defined behaviour in C (and compiles to a register move). */
typedef union {
  float f;
  uint32_t u;
} gg_f32bits;
typedef union {
  double d;
  uint64_t u;
} gg_f64bits;

static inline float gg_asfloat(uint32_t u) {
  gg_f32bits v;
  v.u = u;
  return v.f;
}
static inline uint32_t gg_asuint(float f) {
  gg_f32bits v;
  v.f = f;
  return v.u;
}
static inline double gg_asdouble(uint64_t u) {
  gg_f64bits v;
  v.u = u;
  return v.d;
}
static inline uint64_t gg_asuint64(double d) {
  gg_f64bits v;
  v.d = d;
  return v.u;
}

/* exp(x) for float32. Cephes expf polynomial on |r| <= ln2/2. */
static inline float gg_expf(float x) {
  /* Outside [-104, 89] the result is 0 or +Inf anyway; clamping keeps the exponent arithmetic in range. The first
   * clamp is written as wasm's pmin (b < a ? b : a, one minps in V8; NaN becomes 89 here and is restored at the end)
   * rather than as f32x4.min, whose NaN semantics cost V8 seven instructions. */
  float xc = x < 89.0f ? x : 89.0f;
  xc = xc > -104.0f ? xc : -104.0f;
  /* n = round(x / ln2) with the 1.5·2^23 shifter: the integer lands in the low mantissa bits. */
  const float shifter = 12582912.0f;
  float t = xc * 1.44269504088896341f + shifter;
  int32_t n = (int32_t)(gg_asuint(t) - gg_asuint(shifter));
  float fn = t - shifter;
  /* r = x - n·ln2, with ln2 split so that n·C1 is exact. */
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  /* Scale by 2^n in two exact halves (n is in [-150, 128]) so that an overflow or a subnormal result is rounded
   * only once, by the last multiplication. */
  int32_t n1 = n >> 1;
  int32_t n2 = n - n1;
  float s1 = gg_asfloat((uint32_t)(n1 + 127) << 23);
  float s2 = gg_asfloat((uint32_t)(n2 + 127) << 23);
  float y = p * s1 * s2;
  return x != x ? x : y;
}

/* log(x) for float32. Cephes logf: x = m·2^e with m in [sqrt(1/2), sqrt(2)), polynomial in m-1. */
static inline float gg_logf(float x) {
  uint32_t ix = gg_asuint(x);
  /* Positive subnormals (and ±0, which are replaced below) are scaled into the normal range first. */
  int sub = ix < 0x00800000u;
  float xs = sub ? x * 33554432.0f : x; /* 2^25 */
  uint32_t is = gg_asuint(xs);
  int32_t e = (int32_t)((is >> 23) & 0xffu) - 126 - (sub ? 25 : 0);
  float m = gg_asfloat((is & 0x007fffffu) | 0x3f000000u); /* [0.5, 1) */
  int lt = m < 0.707106781186547524f;
  e -= lt;
  float f = lt ? m + m - 1.0f : m - 1.0f;
  float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  float fe = (float)e;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  float r = f + y;
  r += 0.693359375f * fe;
  r = x == 0.0f ? -GG_INFF : r;
  r = x < 0.0f ? GG_NANF : r;
  r = (x != x || x == GG_INFF) ? x : r;
  return r;
}

/* tanh(x) for float32 (Cephes tanhf): an odd polynomial below 0.625, 1 - 2/(e^{2|x|} + 1) above. */
static inline float gg_tanhf(float x) {
  float ax = __builtin_fabsf(x);
  float e = gg_expf(ax + ax);
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0.0f ? -big : big;
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  return ax > 0.625f ? big : small;
}

/* The logistic function; exp of a non-positive argument only, so it never overflows (the reference's two branches). */
static inline float gg_sigmoidf(float x) {
  float e = gg_expf(-__builtin_fabsf(x));
  float d = 1.0f + e;
  return (x >= 0.0f ? 1.0f : e) / d;
}

/* exp(x) for float64 of an argument within [-745.2, 709.8]: ln2 split as in fdlibm, Taylor series to degree 13 on
 * |r| <= ln2/2 (truncation < 1e-17), 2^n applied in two halves (so that subnormal results stay exact). Branch free,
 * so that loops of it vectorize; gg_exp and gg_exp_select share it, so the same bits wherever either computes. */
static inline double gg_exp_core(double x) {
  const double shifter = 6755399441055744.0; /* 1.5·2^52 */
  double t = x * 1.4426950408889634 + shifter;
  int64_t n = (int64_t)(gg_asuint64(t) - gg_asuint64(shifter));
  double fn = t - shifter;
  double r = x - fn * 6.93147180369123816490e-01;
  r = r - fn * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t n1 = n >> 1;
  int64_t n2 = n - n1;
  double s1 = gg_asdouble((uint64_t)(n1 + 1023) << 52);
  double s2 = gg_asdouble((uint64_t)(n2 + 1023) << 52);
  return p * s1 * s2;
}

/* exp(x) for float64 (gg_exp_core with its special cases: NaN, overflow to Inf, underflow to 0). */
static inline double gg_exp(double x) {
  if (x != x) return x;
  if (x > 709.8) return GG_INF;
  if (x < -745.2) return 0.0;
  return gg_exp_core(x);
}

/* gg_exp without branches, for loops that the compiler vectorizes: the argument first clamped so that the integer
 * steps stay in range whatever the lanes hold, the special cases (NaN, overflow, underflow) selected at the end. */
static inline double gg_exp_select(double x) {
  double xc = x > 709.8 ? 709.8 : x;
  xc = xc < -745.2 ? -745.2 : xc;
  double y = gg_exp_core(xc);
  y = x < -745.2 ? 0.0 : y;
  y = x > 709.8 ? GG_INF : y;
  return x != x ? x : y;
}

/* log(x) for float64: x = m·2^e with m in [sqrt(1/2), sqrt(2)), log m = 2·atanh((m-1)/(m+1)) as a series. */
static inline double gg_log(double x) {
  if (x != x || x == GG_INF) return x;
  if (x < 0.0) return GG_NAN;
  if (x == 0.0) return -GG_INF;
  int64_t adj = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0; /* 2^54 */
    adj = 54;
  }
  uint64_t ix = gg_asuint64(x);
  int64_t e = (int64_t)((ix >> 52) & 0x7ff) - 1023 - adj;
  double m = gg_asdouble((ix & 0x000fffffffffffffull) | 0x3ff0000000000000ull); /* [1, 2) */
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  double f = (m - 1.0) / (m + 1.0);
  double s = f * f;
  double q = 1.0 / 23.0;
  q = q * s + 1.0 / 21.0;
  q = q * s + 1.0 / 19.0;
  q = q * s + 1.0 / 17.0;
  q = q * s + 1.0 / 15.0;
  q = q * s + 1.0 / 13.0;
  q = q * s + 1.0 / 11.0;
  q = q * s + 1.0 / 9.0;
  q = q * s + 1.0 / 7.0;
  q = q * s + 1.0 / 5.0;
  q = q * s + 1.0 / 3.0;
  double lm = 2.0 * f + 2.0 * f * s * q;
  double de = (double)e;
  return de * 6.93147180369123816490e-01 + (lm + de * 1.90821492927058770002e-10);
}

#endif
