/* native/kernels/optim.c: the Adam update (see common.h for what all kernels promise). */
#include "common.h"
#if defined(__AVX__) && !defined(__AVX512F__)
#include <immintrin.h> /* adam_lanes_sqrt */
#endif

/* ------------------------------------------------------------------------------------------------ optimizer */

/* The coefficients as torch.optim.Adam applies them to float32 tensors: each Python float rounded to float32. */
typedef struct {
  float b1, c1, b2, c2, r1, sbc2, eps;
} adam_coef;

/* One element of the step. NOTE: float32 in torch.optim.Adam's order of operations (its single-tensor CPU path, no
 * FMA): m = m·b1 + g·(1 − b1); v = v·b2 + ((1 − b2)·g)·g; the step (m·(1/bc1)) / (√v / √bc2 + eps). Over 300 steps
 * of random gradients this tracks PyTorch's parameters 3x closer than the float64 arithmetic it replaced (worst
 * relative error 1.5e-6 against 4.7e-6), and float32 division and square root cost a fraction of float64's. */
static inline __attribute__((always_inline)) float adam_one(float gi, float *m, float *v, const adam_coef *c) {
  float mi = *m * c->b1 + gi * c->c1;
  float vi = *v * c->b2 + (c->c2 * gi) * gi;
  *m = mi;
  *v = vi;
  return (c->r1 * mi) / (__builtin_sqrtf(vi) / c->sbc2 + c->eps);
}

/* The fused chain's scalings, as gg_scale computes them: x·s in float32, s already rounded to float32. (Until the
 * twelfth session they were the affine kernel's (float)(s·x + 0) in float64, whose conversions to and from float64
 * took ~30% of this pass natively: 56 -> 40 us over 200,704 values, Zen 5.) */
static inline float adam_scale(float s, float x) { return x * s; }

/* The loop, specialised on whether pre and post scale (constants after inlining), so that each variant vectorizes;
 * the steps go to out (g itself for gg_adam_update), or with add are added to it (out[i] + u in float32, as gg_axpy
 * with alpha 1: the parameters, for gg_adam_apply). */
static inline __attribute__((always_inline)) void adam_loop(const float *g, float *out, float *m, float *v, gg_i n,
                                                           const adam_coef *c, float pre, float post, int has_pre,
                                                           int has_post, int add) {
  gg_i i = 0;
#if defined(__wasm_simd128__)
  /* the same arithmetic by hand, four lanes at once (LLVM left this loop scalar) */
  v128_t b1 = wasm_f32x4_splat(c->b1), c1 = wasm_f32x4_splat(c->c1), b2 = wasm_f32x4_splat(c->b2);
  v128_t c2 = wasm_f32x4_splat(c->c2), r1 = wasm_f32x4_splat(c->r1), sb = wasm_f32x4_splat(c->sbc2);
  v128_t ve = wasm_f32x4_splat(c->eps), vpre = wasm_f32x4_splat(pre), vpost = wasm_f32x4_splat(post);
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i);
    if (has_pre) gv = wasm_f32x4_mul(gv, vpre);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), b1), wasm_f32x4_mul(gv, c1));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), b2), wasm_f32x4_mul(wasm_f32x4_mul(c2, gv), gv));
    v128_t q = wasm_f32x4_div(wasm_f32x4_mul(r1, mi), wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), sb), ve));
    if (has_post) q = wasm_f32x4_mul(q, vpost);
    wasm_v128_store(m + i, mi);
    wasm_v128_store(v + i, vi);
    wasm_v128_store(out + i, add ? wasm_f32x4_add(wasm_v128_load(out + i), q) : q);
  }
#endif
  for (; i < n; i++) {
    float q = adam_one(has_pre ? adam_scale(pre, g[i]) : g[i], m + i, v + i, c);
    q = has_post ? adam_scale(post, q) : q;
    out[i] = add ? out[i] + q : q;
  }
}

typedef struct {
  float *g, *m, *v;
  adam_coef c;
  float pre, post; /* rounded to float32, as gg_scale rounds its factor */
} adam_args;

static void adam_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const adam_args *a = p;
  float *g = a->g + lo, *m = a->m + lo, *v = a->v + lo;
  gg_i n = hi - lo;
  /* pre is 1 unless the global-norm clip clipped; post is −lr where a learning rate follows in the chain */
  if (a->pre == 1.0f && a->post == 1.0f) adam_loop(g, g, m, v, n, &a->c, 1.0f, 1.0f, 0, 0, 0);
  else if (a->pre == 1.0f) adam_loop(g, g, m, v, n, &a->c, 1.0f, a->post, 0, 1, 0);
  else if (a->post == 1.0f) adam_loop(g, g, m, v, n, &a->c, a->pre, 1.0f, 1, 0, 0);
  else adam_loop(g, g, m, v, n, &a->c, a->pre, a->post, 1, 1, 0);
}

/* Element by element, so any cut gives the same numbers: large tensors are shared out over the threads. */
static adam_coef adam_coefficients(double b1, double b2, double eps, double bc1, double bc2) {
  adam_coef c = {(float)b1, (float)(1.0 - b1), (float)b2, (float)(1.0 - b2), (float)(1.0 / bc1),
                 (float)__builtin_sqrt(bc2), (float)eps};
  return c;
}

GG_API void gg_adam_update(float *g, float *m, float *v, gg_i n, double b1, double b2, double eps, double bc1,
                           double bc2, double pre, double post) {
  adam_args a = {g, m, v, adam_coefficients(b1, b2, eps, bc1, bc2), (float)pre, (float)post};
  gg_parallel_for(adam_range, &a, n, 16, 8.0 * (double)n);
}

/* ------------------------------------------------------------------------------------------- Adam, applied */

/* Values a turn of the fused step: the steps of one turn wait in a buffer on the stack (L1) to be added to p. */
#define ADAM_APPLY_TURN 512

/* Sixteen float32 lanes as one generic vector: one AVX-512 register, two AVX2 or four SIMD128 ones. */
typedef float adam_lanes __attribute__((vector_size(64)));

/* NOTE: a macro and a pointer below, not vector arguments or results: without AVX-512 those change the ABI (gcc
 * warns, -Wpsabi) */
#define ADAM_SPLAT(x) ((adam_lanes){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x})

/* √x in every lane of *x, correctly rounded as sqrtf (the vector instructions are IEEE's square root too). */
static inline __attribute__((always_inline)) void adam_lanes_sqrt(adam_lanes *x) {
#if defined(__AVX512F__)
  *x = (adam_lanes)_mm512_sqrt_ps((__m512)*x);
#elif defined(__AVX__)
  __m256 h[2];
  __builtin_memcpy(h, x, sizeof h);
  h[0] = _mm256_sqrt_ps(h[0]);
  h[1] = _mm256_sqrt_ps(h[1]);
  __builtin_memcpy(x, h, sizeof h);
#elif defined(__wasm_simd128__)
  v128_t q[4];
  __builtin_memcpy(q, x, sizeof q);
  for (int k = 0; k < 4; k++) q[k] = wasm_f32x4_sqrt(q[k]);
  __builtin_memcpy(x, q, sizeof q);
#else
  for (int l = 0; l < 16; l++) (*x)[l] = __builtin_sqrtf((*x)[l]);
#endif
}

/* Adam's steps u over [0, n) as gg_adam_update computes them, added to p as gg_axpy(1, u, p) does (p + u in float32,
 * rounded once), g left as it was; with ss, the sums of squares of the new p (ss[0]) and of u (ss[1]) in float64,
 * each turn of 512 values' squares first summed in float32 over 16 lanes (element j of the turn in lane j mod 16, 32
 * terms a lane, the turn's last len mod 16 in lane 0), the lanes then added in float64 in order.
 * NOTE: the measured loop computes the step sixteen lanes at a time with the sums in the same loop (adam_one's
 * operations, in its order: the same bits); until the thirteenth session each turn's steps went to a buffer on the
 * stack and a second loop added them to p and took the squares (81.5 -> 66 us over 200,704 values, Zen 5). */
static inline __attribute__((always_inline)) void adam_apply_loop(const float *g, float *m, float *v, float *p,
                                                                 gg_i n, const adam_coef *c, float pre, float post,
                                                                 int has_pre, int has_post, double *ss) {
  if (!ss) {
    adam_loop(g, p, m, v, n, c, pre, post, has_pre, has_post, 1);
    return;
  }
  const adam_lanes b1 = ADAM_SPLAT(c->b1), c1 = ADAM_SPLAT(c->c1), b2 = ADAM_SPLAT(c->b2), c2 = ADAM_SPLAT(c->c2);
  const adam_lanes r1 = ADAM_SPLAT(c->r1), sbc2 = ADAM_SPLAT(c->sbc2), eps = ADAM_SPLAT(c->eps);
  const adam_lanes vpre = ADAM_SPLAT(pre), vpost = ADAM_SPLAT(post);
  for (gg_i i = 0; i < n; i += ADAM_APPLY_TURN) {
    gg_i len = n - i < ADAM_APPLY_TURN ? n - i : ADAM_APPLY_TURN;
    const float *gi = g + i;
    float *mi = m + i, *vi = v + i, *pi = p + i;
    adam_lanes sp = {0}, su = {0};
    gg_i j = 0;
    for (; j + 16 <= len; j += 16) {
      adam_lanes gv, mv, vv, w;
      __builtin_memcpy(&gv, gi + j, sizeof gv);
      __builtin_memcpy(&mv, mi + j, sizeof mv);
      __builtin_memcpy(&vv, vi + j, sizeof vv);
      __builtin_memcpy(&w, pi + j, sizeof w);
      if (has_pre) gv = gv * vpre;
      mv = mv * b1 + gv * c1;
      vv = vv * b2 + (c2 * gv) * gv;
      __builtin_memcpy(mi + j, &mv, sizeof mv);
      __builtin_memcpy(vi + j, &vv, sizeof vv);
      adam_lanes sv = vv;
      adam_lanes_sqrt(&sv);
      adam_lanes q = (r1 * mv) / (sv / sbc2 + eps);
      if (has_post) q = q * vpost;
      w = w + q;
      __builtin_memcpy(pi + j, &w, sizeof w);
      sp += w * w;
      su += q * q;
    }
    for (; j < len; j++) {
      float q = adam_one(has_pre ? adam_scale(pre, gi[j]) : gi[j], mi + j, vi + j, c);
      q = has_post ? adam_scale(post, q) : q;
      pi[j] = pi[j] + q;
      sp[0] += pi[j] * pi[j];
      su[0] += q * q;
    }
    double tp = 0.0, tu = 0.0;
    for (int l = 0; l < 16; l++) {
      tp += (double)sp[l];
      tu += (double)su[l];
    }
    ss[0] += tp;
    ss[1] += tu;
  }
}

/* Blocks of the measured step: each block's two sums land in partials, added in order by the caller, so the sums
 * depend on n only, never on the thread count. 4096 values a block (16384 until the twelfth session): the MLP's
 * 200,704 weights made 13 blocks, which two threads share 7 to 6, and the measured pass (the monitor's) took 37%
 * longer than the unmeasured one on two threads against 8% on one; in 49 blocks, 21% (78 -> 68 us, Zen 5). */
#define ADAM_APPLY_BLOCK 4096
#define ADAM_APPLY_MAX_BLOCKS 256

typedef struct {
  const float *g;
  float *m, *v, *p;
  adam_coef c;
  float pre, post;
  gg_i n_total, block;
  double *partials; /* 2 per block; NULL: not measured, [lo, hi) are elements */
} adam_apply_args;

static void adam_apply_span(const adam_apply_args *a, gg_i lo, gg_i n, double *ss) {
  const float *g = a->g + lo;
  float *m = a->m + lo, *v = a->v + lo, *p = a->p + lo;
  if (a->pre == 1.0f && a->post == 1.0f) adam_apply_loop(g, m, v, p, n, &a->c, 1.0f, 1.0f, 0, 0, ss);
  else if (a->pre == 1.0f) adam_apply_loop(g, m, v, p, n, &a->c, 1.0f, a->post, 0, 1, ss);
  else if (a->post == 1.0f) adam_apply_loop(g, m, v, p, n, &a->c, a->pre, 1.0f, 1, 0, ss);
  else adam_apply_loop(g, m, v, p, n, &a->c, a->pre, a->post, 1, 1, ss);
}

static void adam_apply_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const adam_apply_args *a = p;
  if (!a->partials) {
    adam_apply_span(a, lo, hi - lo, NULL);
    return;
  }
  for (gg_i b = lo; b < hi; b++) {
    gg_i start = b * a->block;
    double *ss = a->partials + 2 * b;
    ss[0] = ss[1] = 0.0;
    adam_apply_span(a, start, a->n_total - start < a->block ? a->n_total - start : a->block, ss);
  }
}

/* gg_adam_update's step added straight to the parameter p (nothing written to g): p ← p + u with the same bits as
 * the update computed and then gg_axpy(1, u, p), in one pass instead of two, and no update buffer written and read
 * back. With measure, out[0] = Σp² of the new p and out[1] = Σu² (what gg_axpy_sum_squares measures). */
GG_API void gg_adam_apply(const float *g, float *m, float *v, float *p, gg_i n, double b1, double b2, double eps,
                          double bc1, double bc2, double pre, double post, int measure, double *out) {
  adam_apply_args a = {g, m, v, p, adam_coefficients(b1, b2, eps, bc1, bc2), (float)pre, (float)post, n, ADAM_APPLY_BLOCK,
                        NULL};
  if (!measure) {
    gg_parallel_for(adam_apply_range, &a, n, 16, 10.0 * (double)n);
    return;
  }
  gg_i blocks = (n + a.block - 1) / a.block;
  if (blocks > ADAM_APPLY_MAX_BLOCKS) {
    a.block = ((n + ADAM_APPLY_MAX_BLOCKS - 1) / ADAM_APPLY_MAX_BLOCKS + 15) / 16 * 16;
    blocks = (n + a.block - 1) / a.block;
  }
  double partials[2 * ADAM_APPLY_MAX_BLOCKS];
  a.partials = partials;
  gg_parallel_for(adam_apply_range, &a, blocks, 1, 12.0 * (double)n);
  double sp = 0.0, su = 0.0;
  for (gg_i b = 0; b < blocks; b++) {
    sp += partials[2 * b];
    su += partials[2 * b + 1];
  }
  out[0] = sp;
  out[1] = su;
}
