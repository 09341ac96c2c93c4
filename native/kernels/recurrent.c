/*
 * native/kernels/recurrent.c: the LSTM and GRU steps, forward and backward, fused (see common.h for what all kernels
 * promise). Each replaces the dozen element-wise kernel calls a step used to make (four copies of the gates out of
 * the pre-activations, four activations, the products and sums of c and h, the copy of h into the sequence) with one
 * pass over the step's states, reading the pre-activations and writing h and the gate gradients where the sequence's
 * matrices keep them (a leading dimension apart), so that the recurrent products need no copies either.
 *
 * The arithmetic is the reference's (src/backend/js-nn.ts) operation by operation: products and sums rounded to
 * float32, the gradients' g·f'(y) in float64 and rounded once; only σ and tanh are our float versions (gg_math.h),
 * an ulp or two from the reference's, as the unary kernels.
 */
#include "common.h"

/* Hidden units [lo, hi) of one step, forward. */
typedef struct {
  const float *p;
  gg_i ldp;
  const float *cPrev;
  float *act, *c, *tc, *h;
  gg_i ldh, hidden, batch;
} lstm_args;

/* y[b] = σ(x[b]) or tanh(x[b]) over one row: plain loops over restrict pointers, so that they vectorize. */
static void lstm_sigmoid_row(const float *restrict x, float *restrict y, gg_i B) {
  for (gg_i b = 0; b < B; b++) y[b] = gg_sigmoidf(x[b]);
}
static void lstm_tanh_row(const float *restrict x, float *restrict y, gg_i B) {
  for (gg_i b = 0; b < B; b++) y[b] = gg_tanhf(x[b]);
}
static void tanh_row_in_place(float *x, gg_i B) {
  for (gg_i b = 0; b < B; b++) x[b] = gg_tanhf(x[b]);
}

static void lstm_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const lstm_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B;
  for (gg_i j = lo; j < hi; j++) {
    gg_i e0 = j * B;
    float *restrict i = a->act + e0, *restrict f = a->act + n + e0;
    float *restrict g = a->act + 2 * n + e0, *restrict o = a->act + 3 * n + e0;
    lstm_sigmoid_row(a->p + j * a->ldp, i, B);
    lstm_sigmoid_row(a->p + (H + j) * a->ldp, f, B);
    lstm_tanh_row(a->p + (2 * H + j) * a->ldp, g, B);
    lstm_sigmoid_row(a->p + (3 * H + j) * a->ldp, o, B);
    const float *restrict cp = a->cPrev + e0;
    float *restrict c = a->c + e0;
    for (gg_i b = 0; b < B; b++) {
      float fc = f[b] * cp[b];
      float ig = i[b] * g[b];
      c[b] = fc + ig;
    }
    float *restrict tc = a->tc + e0;
    lstm_tanh_row(c, tc, B);
    float *restrict h = a->h + j * a->ldh;
    for (gg_i b = 0; b < B; b++) h[b] = o[b] * tc[b];
  }
}

GG_API void gg_lstm_cell(const float *p, gg_i pOff, gg_i ldp, const float *cPrev, float *act, float *c, float *tc,
                         float *h, gg_i hOff, gg_i ldh, gg_i hidden, gg_i batch) {
  lstm_args a = {p + pOff, ldp, cPrev, act, c, tc, h + hOff, ldh, hidden, batch};
  gg_parallel_for(lstm_range, &a, hidden, 1, 40.0 * (double)hidden * (double)batch);
}

/* Hidden units [lo, hi) of one step, backward. */
typedef struct {
  const float *act, *cPrev, *tc, *dh, *dc;
  float *dG;
  gg_i ldg;
  float *dcPrev;
  gg_i hidden, batch;
} lstm_grad_args;

static void lstm_grad_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const lstm_grad_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B;
  for (gg_i j = lo; j < hi; j++) {
    gg_i e0 = j * B;
    float *restrict gi = a->dG + j * a->ldg, *restrict gf = a->dG + (H + j) * a->ldg;
    float *restrict gg = a->dG + (2 * H + j) * a->ldg, *restrict go = a->dG + (3 * H + j) * a->ldg;
    const float *restrict i = a->act + e0, *restrict f = a->act + n + e0;
    const float *restrict g = a->act + 2 * n + e0, *restrict o = a->act + 3 * n + e0;
    const float *restrict tc = a->tc + e0, *restrict dh = a->dh + e0, *restrict dc = a->dc + e0;
    const float *restrict cp = a->cPrev + e0;
    float *restrict dcp = a->dcPrev + e0;
    for (gg_i b = 0; b < B; b++) {
      double iv = i[b], fv = f[b], gv = g[b], ov = o[b], t = tc[b];
      float d = dh[b];
      /* through h = o·tanh(c) */
      float s1 = d * tc[b];
      go[b] = (float)((double)s1 * (ov * (1.0 - ov)));
      float s2 = (float)((double)(d * o[b]) * (1.0 - t * t));
      float dct = dc[b] + s2;
      /* through c = f·cPrev + i·g */
      gi[b] = (float)((double)(dct * g[b]) * (iv * (1.0 - iv)));
      gf[b] = (float)((double)(dct * cp[b]) * (fv * (1.0 - fv)));
      gg[b] = (float)((double)(dct * i[b]) * (1.0 - gv * gv));
      dcp[b] = dct * f[b];
    }
  }
}

GG_API void gg_lstm_cell_grad(const float *act, const float *cPrev, const float *tc, const float *dh, const float *dc,
                              float *dG, gg_i dOff, gg_i ldg, float *dcPrev, gg_i hidden, gg_i batch) {
  lstm_grad_args a = {act, cPrev, tc, dh, dc, dG + dOff, ldg, dcPrev, hidden, batch};
  gg_parallel_for(lstm_grad_range, &a, hidden, 1, 30.0 * (double)hidden * (double)batch);
}

/* Hidden units [lo, hi) of one GRU step, forward. */
typedef struct {
  const float *p;
  gg_i ldp;
  const float *hn, *hPrev;
  float *h, *act;
  gg_i ldh, hidden, batch;
} gru_args;

static void gru_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const gru_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B;
  for (gg_i j = lo; j < hi; j++) {
    gg_i e0 = j * B;
    float *restrict r = a->act + e0, *restrict z = a->act + n + e0, *restrict nn = a->act + 2 * n + e0;
    lstm_sigmoid_row(a->p + j * a->ldp, r, B);
    lstm_sigmoid_row(a->p + (H + j) * a->ldp, z, B);
    const float *restrict pn = a->p + (2 * H + j) * a->ldp, *restrict hn = a->hn + e0;
    for (gg_i b = 0; b < B; b++) nn[b] = pn[b] + r[b] * hn[b];
    tanh_row_in_place(nn, B);
    const float *restrict hp = a->hPrev + j * a->ldh;
    float *restrict h = a->h + j * a->ldh;
    for (gg_i b = 0; b < B; b++) {
      float d = hp[b] - nn[b];
      float zd = z[b] * d;
      h[b] = zd + nn[b];
    }
  }
}

GG_API void gg_gru_cell(const float *p, gg_i pOff, gg_i ldp, const float *hn, const float *hPrev, gg_i hpOff,
                        float *h, gg_i hOff, gg_i ldh, float *act, gg_i hidden, gg_i batch) {
  gru_args a = {p + pOff, ldp, hn, hPrev + hpOff, h + hOff, act, ldh, hidden, batch};
  gg_parallel_for(gru_range, &a, hidden, 1, 30.0 * (double)hidden * (double)batch);
}

/* Hidden units [lo, hi) of one GRU step, backward. */
typedef struct {
  const float *act, *hn, *hPrev, *dh;
  gg_i ldh;
  float *dG;
  gg_i ldg;
  float *dhPrev;
  gg_i hidden, batch;
} gru_grad_args;

static void gru_grad_range(int tid, gg_i lo, gg_i hi, const void *v) {
  (void)tid;
  const gru_grad_args *a = v;
  gg_i H = a->hidden, B = a->batch, n = H * B;
  for (gg_i j = lo; j < hi; j++) {
    gg_i e0 = j * B;
    const float *restrict r = a->act + e0, *restrict z = a->act + n + e0, *restrict nn = a->act + 2 * n + e0;
    const float *restrict hn = a->hn + e0, *restrict dh = a->dh + e0, *restrict hp = a->hPrev + j * a->ldh;
    float *restrict dr = a->dG + j * a->ldg, *restrict dz = a->dG + (H + j) * a->ldg;
    float *restrict dn = a->dG + (2 * H + j) * a->ldg, *restrict dhn = a->dG + (3 * H + j) * a->ldg;
    float *restrict dhp = a->dhPrev + e0;
    for (gg_i b = 0; b < B; b++) {
      double rv = r[b], zv = z[b], nv = nn[b];
      float d = dh[b];
      /* through h = z·(h_prev − nn) + nn */
      float diff = hp[b] - nn[b];
      dz[b] = (float)((double)(d * diff) * (zv * (1.0 - zv)));
      float direct = d * z[b];
      dhp[b] = direct;
      float dnv = (float)((double)(d - direct) * (1.0 - nv * nv));
      dn[b] = dnv;
      /* through n's pre-activation n_in + r·hn */
      dhn[b] = dnv * r[b];
      dr[b] = (float)((double)(dnv * hn[b]) * (rv * (1.0 - rv)));
    }
  }
}

GG_API void gg_gru_cell_grad(const float *act, const float *hn, const float *hPrev, gg_i hpOff, gg_i ldh,
                             const float *dh, float *dG, gg_i dOff, gg_i ldg, float *dhPrev, gg_i hidden, gg_i batch) {
  gru_grad_args a = {act, hn, hPrev + hpOff, dh, ldh, dG + dOff, ldg, dhPrev, hidden, batch};
  gg_parallel_for(gru_grad_range, &a, hidden, 1, 30.0 * (double)hidden * (double)batch);
}
