/* native/kernels/optim.c: the Adam update (see common.h for what all kernels promise). */
#include "common.h"

/* ------------------------------------------------------------------------------------------------ optimizer */

static void adam_kernel(float *g, float *m, float *v, gg_i n, double b1, double b2, double eps, double bc1,
                        double bc2, double pre, double post) {
  /* float64 throughout. The moments are the reference's expressions, so m and v agree with it bit for bit (no drift
   * between backends over a run); the step multiplies by 1/bc1 and 1/bc2 instead of dividing, which leaves one
   * division and one square root per element (half the time; divisions bound this loop) and moves the float32
   * result by at most one ulp, rarely. */
  double c1 = 1.0 - b1, c2 = 1.0 - b2;
  double r1 = 1.0 / bc1, r2 = 1.0 / bc2;
  gg_i i = 0;
#if defined(__wasm_simd128__)
  v128_t vb1 = wasm_f64x2_splat(b1), vb2 = wasm_f64x2_splat(b2), vc1 = wasm_f64x2_splat(c1), vc2 = wasm_f64x2_splat(c2);
  v128_t ve = wasm_f64x2_splat(eps), vr1 = wasm_f64x2_splat(r1), vr2 = wasm_f64x2_splat(r2);
  v128_t vpre = wasm_f64x2_splat(pre), vpost = wasm_f64x2_splat(post), vz = wasm_f64x2_splat(0.0);
  /* with the scalings of the fused chain where they are not 1 (the affine kernel's expressions, below) */
  for (; i + 4 <= n; i += 4) {
    v128_t gv = wasm_v128_load(g + i), mv = wasm_v128_load(m + i), vv = wasm_v128_load(v + i);
    if (pre != 1.0) {
      v128_t lo = wasm_f64x2_add(wasm_f64x2_mul(vpre, gg_f64_lo(gv)), vz);
      v128_t hi = wasm_f64x2_add(wasm_f64x2_mul(vpre, gg_f64_hi(gv)), vz);
      gv = gg_f32_pack(lo, hi);
    }
    v128_t mo[2], vo[2], go[2];
    for (int h = 0; h < 2; h++) {
      v128_t gi = h ? gg_f64_hi(gv) : gg_f64_lo(gv);
      v128_t mi = wasm_f64x2_add(wasm_f64x2_mul(vb1, h ? gg_f64_hi(mv) : gg_f64_lo(mv)), wasm_f64x2_mul(vc1, gi));
      v128_t vi = wasm_f64x2_add(wasm_f64x2_mul(vb2, h ? gg_f64_hi(vv) : gg_f64_lo(vv)),
                                 wasm_f64x2_mul(wasm_f64x2_mul(vc2, gi), gi));
      mo[h] = mi;
      vo[h] = vi;
      go[h] = wasm_f64x2_div(wasm_f64x2_mul(mi, vr1), wasm_f64x2_add(wasm_f64x2_sqrt(wasm_f64x2_mul(vi, vr2)), ve));
    }
    v128_t q = gg_f32_pack(go[0], go[1]);
    if (post != 1.0) {
      v128_t lo = wasm_f64x2_add(wasm_f64x2_mul(vpost, gg_f64_lo(q)), vz);
      v128_t hi = wasm_f64x2_add(wasm_f64x2_mul(vpost, gg_f64_hi(q)), vz);
      q = gg_f32_pack(lo, hi);
    }
    wasm_v128_store(m + i, gg_f32_pack(mo[0], mo[1]));
    wasm_v128_store(v + i, gg_f32_pack(vo[0], vo[1]));
    wasm_v128_store(g + i, q);
  }
#endif
  if (pre == 1.0 && post == 1.0) {
    for (; i < n; i++) {
      double gi = (double)g[i];
      double mi = b1 * (double)m[i] + c1 * gi;
      double vi = b2 * (double)v[i] + c2 * gi * gi;
      m[i] = (float)mi;
      v[i] = (float)vi;
      g[i] = (float)(mi * r1 / (__builtin_sqrt(vi * r2) + eps));
    }
    return;
  }
  /* The fused chain: g is first scaled as the affine kernel does it, (float)(pre·g + 0), unless pre is 1 (the global
   * norm clip scales only when it clips), and the step likewise by post (−lr), unless 1: the same bits as the
   * separate passes. */
  for (; i < n; i++) {
    double gi = (double)g[i];
    if (pre != 1.0) gi = (double)(float)(pre * gi + 0.0);
    double mi = b1 * (double)m[i] + c1 * gi;
    double vi = b2 * (double)v[i] + c2 * gi * gi;
    m[i] = (float)mi;
    v[i] = (float)vi;
    float q = (float)(mi * r1 / (__builtin_sqrt(vi * r2) + eps));
    g[i] = post != 1.0 ? (float)(post * (double)q + 0.0) : q;
  }
}

typedef struct {
  float *g, *m, *v;
  double b1, b2, eps, bc1, bc2, pre, post;
} adam_args;

static void adam_range(int tid, gg_i lo, gg_i hi, const void *p) {
  (void)tid;
  const adam_args *a = p;
  adam_kernel(a->g + lo, a->m + lo, a->v + lo, hi - lo, a->b1, a->b2, a->eps, a->bc1, a->bc2, a->pre, a->post);
}

/* Element by element, so any cut gives the same numbers: on the threaded wasm module, large tensors are shared out
 * (a division and a square root in float64 per element make this the step's costliest loop after the products). */
GG_API void gg_adam_update(float *g, float *m, float *v, gg_i n, double b1, double b2, double eps, double bc1,
                           double bc2, double pre, double post) {
  adam_args a = {g, m, v, b1, b2, eps, bc1, bc2, pre, post};
  gg_parallel_for(adam_range, &a, n, 16, 16.0 * (double)n);
}
