/*
 * native/kernels/loss.c: softmax, log-softmax and cross-entropy, forward and backward (see common.h for what all
 * kernels promise).
 */
#include "common.h"

/* ------------------------------------------------------------------------------------------------ softmax, loss */

GG_API void gg_softmax(const float *x, float *out, gg_i rows, gg_i cols, int log) {
  for (gg_i r = 0; r < rows; r++) {
    const float *xs = x + r * cols;
    float *os = out + r * cols;
    double mx = -GG_INF;
    for (gg_i c = 0; c < cols; c++)
      if ((double)xs[c] > mx) mx = xs[c];
    double s = 0.0;
    for (gg_i c = 0; c < cols; c++) s += gg_exp((double)xs[c] - mx);
    if (log) {
      double ls = gg_log(s) + mx;
      for (gg_i c = 0; c < cols; c++) os[c] = (float)((double)xs[c] - ls);
    } else {
      for (gg_i c = 0; c < cols; c++) os[c] = (float)(gg_exp((double)xs[c] - mx) / s);
    }
  }
}

GG_API void gg_softmax_grad(const float *y, const float *gy, float *gx, gg_i rows, gg_i cols, int log) {
  for (gg_i r = 0; r < rows; r++) {
    const float *ys = y + r * cols;
    const float *gs = gy + r * cols;
    float *xs = gx + r * cols;
    double s = 0.0;
    if (log) {
      for (gg_i c = 0; c < cols; c++) s += (double)gs[c];
      for (gg_i c = 0; c < cols; c++) xs[c] = (float)((double)gs[c] - gg_exp((double)ys[c]) * s);
    } else {
      for (gg_i c = 0; c < cols; c++) s += (double)gs[c] * (double)ys[c];
      for (gg_i c = 0; c < cols; c++) xs[c] = (float)((double)ys[c] * ((double)gs[c] - s));
    }
  }
}

/* Rows' exponentials at a time in the cross-entropy: up to this many values, as one loop that vectorizes. */
#define CE_BLOCK 512

GG_API void gg_cross_entropy(const float *x, const float *targets, float *probs, float *loss, gg_i rows, gg_i cols,
                             double smoothing, double ignoreIndex) {
  /* exp(x − max) of a block of rows first, all in one vectorized loop (gg_exp_select: gg_exp's bits), then each row
   * as before; a row wider than the block is exponentiated on its own */
  double ex[CE_BLOCK], mxs[CE_BLOCK];
  gg_i per = cols <= CE_BLOCK ? CE_BLOCK / (cols > 0 ? cols : 1) : 0;
  for (gg_i r = 0; r < rows; r++) {
    const float *xs = x + r * cols;
    float *ps = probs + r * cols;
    double mx;
    double s = 0.0;
    if (per > 0) {
      gg_i k = r % per; /* the row's place in its block */
      if (k == 0) {
        gg_i nr = rows - r < per ? rows - r : per;
        for (gg_i i = 0; i < nr; i++) {
          const float *xi = xs + i * cols;
          double m = -GG_INF;
          for (gg_i c = 0; c < cols; c++)
            if ((double)xi[c] > m) m = xi[c];
          mxs[i] = m;
          for (gg_i c = 0; c < cols; c++) ex[i * cols + c] = (double)xi[c] - m;
        }
        for (gg_i j = 0; j < nr * cols; j++) ex[j] = gg_exp_select(ex[j]);
      }
      mx = mxs[k];
      for (gg_i c = 0; c < cols; c++) {
        double e = ex[k * cols + c];
        ps[c] = (float)e;
        s += e;
      }
    } else {
      mx = -GG_INF;
      for (gg_i c = 0; c < cols; c++)
        if ((double)xs[c] > mx) mx = xs[c];
      for (gg_i c = 0; c < cols; c++) {
        double e = gg_exp((double)xs[c] - mx);
        ps[c] = (float)e;
        s += e;
      }
    }
    double lse = gg_log(s) + mx;
    double sumLogp = 0.0;
    for (gg_i c = 0; c < cols; c++) {
      ps[c] = (float)((double)ps[c] / s);
      sumLogp += (double)xs[c] - lse;
    }
    double t = (double)targets[r];
    if (t == ignoreIndex) {
      loss[r] = 0.0f;
      continue;
    }
    /* A target outside [0, cols) (callers validate, so this is defence only) gives NaN instead of reading another
     * row; the comparison also keeps NaN away from the float-to-int conversion, which traps in wasm. */
    if (!(t >= 0.0 && t < (double)cols)) {
      loss[r] = GG_NANF;
      continue;
    }
    gg_i ti = (gg_i)t;
    loss[r] = (float)(-(1.0 - smoothing) * ((double)xs[ti] - lse) - (smoothing / (double)cols) * sumLogp);
  }
}

GG_API void gg_cross_entropy_grad(const float *probs, const float *targets, const float *scale, float *gx, gg_i rows,
                                  gg_i cols, double smoothing, double ignoreIndex) {
  double off = smoothing / (double)cols;
  for (gg_i r = 0; r < rows; r++) {
    const float *ps = probs + r * cols;
    float *gs = gx + r * cols;
    double t = (double)targets[r];
    if (t == ignoreIndex) {
      for (gg_i c = 0; c < cols; c++) gs[c] = 0.0f;
      continue;
    }
    double sc = (double)scale[r];
    for (gg_i c = 0; c < cols; c++) gs[c] = (float)(sc * ((double)ps[c] - off));
    if (t >= 0.0 && t < (double)cols) {
      gg_i ti = (gg_i)t;
      gs[ti] = (float)((double)gs[ti] - sc * (1.0 - smoothing));
    }
  }
}
