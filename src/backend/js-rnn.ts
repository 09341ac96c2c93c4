/**
 * The reference kernels of the recurrent layers' steps (spec-rnn.ts): the LSTM's and the GRU's, forward and backward.
 * The C kernels (native/kernels/recurrent.c) do the same operations in the same order, rounding to float32 where these
 * do; only σ and tanh differ by an ulp or two.
 */
import { unaryScalar } from './js-math.js';
import { type Backend, type Buf, Unary } from './types.js';

const f32 = Math.fround;
/** σ as the unary kernel computes it (float64, rounded once by the caller). */
const sigmoid = (x: number) => unaryScalar(Unary.Sigmoid, x, 0, 0);

/** Elements [off, off + len) of a reference buffer as a buffer of their own (the cell kernels take no offsets there). */
const view = (b: Buf, off: number, len: number): Buf => ({ size: len, data: b.data.subarray(off, off + len), ptr: 0 });

/** x_t (`batch` rows of `inputs` values, ldx apart, from xOff) transposed into z's rows from `row`, from column `col`. */
function xIn(
  x: Buf,
  xOff: number,
  ldx: number,
  inputs: number,
  z: Buf,
  ldz: number,
  row: number,
  col: number,
  B: number,
) {
  for (let i = 0; i < inputs; i++) {
    for (let b = 0; b < B; b++) z.data[(row + i) * ldz + col + b] = x.data[xOff + b * ldx + i]!;
  }
}

/** One LSTM step (spec-rnn.ts, lstmCell). */
export function lstmCell(
  p: Buf,
  pOff: number,
  ldp: number,
  cPrev: Buf,
  act: Buf,
  c: Buf,
  tc: Buf,
  h: Buf,
  hOff: number,
  ldh: number,
  y: Buf,
  yOff: number,
  ldy: number,
  hidden: number,
  batch: number,
): void {
  const ps = p.data;
  const as = act.data;
  const n = hidden * batch;
  for (let j = 0; j < hidden; j++) {
    for (let b = 0; b < batch; b++) {
      const e = j * batch + b;
      const at = (q: number) => ps[pOff + (q * hidden + j) * ldp + b]!;
      const i = f32(sigmoid(at(0)));
      const f = f32(sigmoid(at(1)));
      const g = f32(Math.tanh(at(2)));
      const o = f32(sigmoid(at(3)));
      as[e] = i;
      as[n + e] = f;
      as[2 * n + e] = g;
      as[3 * n + e] = o;
      const cv = f32(f32(f * cPrev.data[e]!) + f32(i * g));
      const t = f32(Math.tanh(cv));
      c.data[e] = cv;
      tc.data[e] = t;
      const hv = f32(o * t);
      h.data[hOff + j * ldh + b] = hv;
      y.data[yOff + b * ldy + j] = hv;
    }
  }
}

/** The LSTM step's backward (spec-rnn.ts, lstmCellGrad). */
export function lstmCellGrad(
  act: Buf,
  cPrev: Buf,
  tc: Buf,
  dh: Buf,
  dy: Buf,
  dyOff: number,
  ldy: number,
  dc: Buf,
  dG: Buf,
  dOff: number,
  ldg: number,
  dcPrev: Buf,
  hidden: number,
  batch: number,
): void {
  const as = act.data;
  const gs = dG.data;
  const n = hidden * batch;
  for (let j = 0; j < hidden; j++) {
    for (let b = 0; b < batch; b++) {
      const e = j * batch + b;
      const i = as[e]!;
      const f = as[n + e]!;
      const g = as[2 * n + e]!;
      const o = as[3 * n + e]!;
      const t = tc.data[e]!;
      const d = f32(dh.data[e]! + dy.data[dyOff + b * ldy + j]!);
      dh.data[e] = d;
      const out = (q: number, v: number) => {
        gs[dOff + (q * hidden + j) * ldg + b] = v;
      };
      // through h = o·tanh(c)
      out(3, f32(f32(d * t) * (o * (1 - o))));
      const dct = f32(dc.data[e]! + f32(f32(d * o) * (1 - t * t)));
      // through c = f·cPrev + i·g
      out(0, f32(f32(dct * g) * (i * (1 - i))));
      out(1, f32(f32(dct * cPrev.data[e]!) * (f * (1 - f))));
      out(2, f32(f32(dct * i) * (1 - g * g)));
      dcPrev.data[e] = f32(dct * f);
    }
  }
}

/** One GRU step (spec-rnn.ts, gruCell). */
export function gruCell(
  p: Buf,
  pOff: number,
  ldp: number,
  hn: Buf,
  hPrev: Buf,
  hpOff: number,
  h: Buf,
  hOff: number,
  ldh: number,
  y: Buf,
  yOff: number,
  ldy: number,
  act: Buf,
  hidden: number,
  batch: number,
): void {
  const ps = p.data;
  const as = act.data;
  const n = hidden * batch;
  for (let j = 0; j < hidden; j++) {
    for (let b = 0; b < batch; b++) {
      const e = j * batch + b;
      const r = f32(sigmoid(ps[pOff + j * ldp + b]!));
      const z = f32(sigmoid(ps[pOff + (hidden + j) * ldp + b]!));
      const an = f32(ps[pOff + (2 * hidden + j) * ldp + b]! + f32(r * hn.data[e]!));
      const nn = f32(Math.tanh(an));
      as[e] = r;
      as[n + e] = z;
      as[2 * n + e] = nn;
      const hv = f32(f32(z * f32(hPrev.data[hpOff + j * ldh + b]! - nn)) + nn);
      h.data[hOff + j * ldh + b] = hv;
      y.data[yOff + b * ldy + j] = hv;
    }
  }
}

/** The GRU step's backward (spec-rnn.ts, gruCellGrad). */
export function gruCellGrad(
  act: Buf,
  hn: Buf,
  hPrev: Buf,
  hpOff: number,
  ldh: number,
  dh: Buf,
  dy: Buf,
  dyOff: number,
  ldy: number,
  dG: Buf,
  dOff: number,
  ldg: number,
  dhPrev: Buf,
  hidden: number,
  batch: number,
): void {
  const as = act.data;
  const gs = dG.data;
  const n = hidden * batch;
  for (let j = 0; j < hidden; j++) {
    for (let b = 0; b < batch; b++) {
      const e = j * batch + b;
      const r = as[e]!;
      const z = as[n + e]!;
      const nn = as[2 * n + e]!;
      const d = f32(dh.data[e]! + dy.data[dyOff + b * ldy + j]!);
      dh.data[e] = d;
      const out = (q: number, v: number) => {
        gs[dOff + (q * hidden + j) * ldg + b] = v;
      };
      // through h = z·(h_prev − nn) + nn
      out(1, f32(f32(d * f32(hPrev.data[hpOff + j * ldh + b]! - nn)) * (z * (1 - z))));
      const direct = f32(d * z);
      dhPrev.data[e] = direct;
      const dn = f32(f32(d - direct) * (1 - nn * nn));
      out(2, dn);
      // through n's pre-activation n_in + r·hn
      out(3, f32(dn * r));
      out(0, f32(f32(dn * hn.data[e]!) * (r * (1 - r))));
    }
  }
}

/** An LSTM layer's loop over time (spec-rnn.ts, lstmSeq): per step, the backend's sgemm and lstmCell. */
export function lstmSeq(
  be: Backend,
  w: Buf,
  k: number,
  z: Buf,
  ldz: number,
  x: Buf,
  xStep: number,
  ldx: number,
  inputs: number,
  p: Buf,
  c: Buf,
  act: Buf,
  tc: Buf,
  y: Buf,
  yStep: number,
  ldy: number,
  keep: boolean,
  steps: number,
  hidden: number,
  batch: number,
): void {
  const [H, B] = [hidden, batch];
  const n = H * B;
  for (let t = 0; t < steps; t++) {
    const [s, cp, cn] = keep ? [t, t, t + 1] : [0, t & 1, (t + 1) & 1];
    xIn(x, t * xStep, ldx, inputs, z, ldz, H, t * B, B);
    be.sgemm(false, false, 4 * H, B, k, 1, w, 0, k, z, t * B, ldz, 0, p, 0, B);
    const [cPrev, cNext] = [view(c, cp * n, n), view(c, cn * n, n)];
    const [a, tcs] = [view(act, s * 4 * n, 4 * n), view(tc, s * n, n)];
    be.lstmCell(p, 0, B, cPrev, a, cNext, tcs, z, (t + 1) * B, ldz, y, t * yStep, ldy, H, B);
  }
}

/** Its backward (spec-rnn.ts, lstmSeqGrad): per step from the last, the backend's lstmCellGrad and sgemm. */
export function lstmSeqGrad(
  be: Backend,
  whh: Buf,
  act: Buf,
  c: Buf,
  tc: Buf,
  dh: Buf,
  dy: Buf,
  yStep: number,
  ldy: number,
  dc: Buf,
  dG: Buf,
  ldg: number,
  dhss: Buf,
  measure: boolean,
  steps: number,
  hidden: number,
  batch: number,
): void {
  const [H, B] = [hidden, batch];
  const n = H * B;
  const dhv = [view(dh, 0, n), view(dh, n, n)];
  const dcs = [view(dc, 0, n), view(dc, n, n)];
  for (let t = steps - 1; t >= 0; t--) {
    const cur = (steps - 1 - t) & 1;
    const [a, ct, tct] = [view(act, t * 4 * n, 4 * n), view(c, t * n, n), view(tc, t * n, n)];
    be.lstmCellGrad(a, ct, tct, dhv[cur]!, dy, t * yStep, ldy, dcs[cur]!, dG, t * B, ldg, dcs[cur ^ 1]!, H, B);
    if (measure) dhss.data[t] = be.sumSquares(dhv[cur]!, n);
    be.sgemm(true, false, H, B, 4 * H, 1, whh, 0, H, dG, t * B, ldg, 0, dh, (cur ^ 1) * n, B);
  }
  if (steps & 1) {
    be.copy(dh, n, dh, 0, n);
    be.copy(dc, n, dc, 0, n);
  }
}

/** A GRU layer's loop over time (spec-rnn.ts, gruSeq): per step, the backend's three sgemms and gruCell. */
export function gruSeq(
  be: Backend,
  w: Buf,
  k: number,
  nb: number,
  z: Buf,
  ldz: number,
  x: Buf,
  xStep: number,
  ldx: number,
  inputs: number,
  p: Buf,
  hn: Buf,
  act: Buf,
  y: Buf,
  yStep: number,
  ldy: number,
  keep: boolean,
  steps: number,
  hidden: number,
  batch: number,
): void {
  const [H, B] = [hidden, batch];
  const n = H * B;
  // z is [1; h; x; 1] (the ones rows where nb = 1): h from row nb
  const zh = nb * ldz;
  for (let t = 0; t < steps; t++) {
    const s = keep ? t : 0;
    xIn(x, t * xStep, ldx, inputs, z, ldz, nb + H, t * B, B);
    be.sgemm(false, false, 2 * H, B, k, 1, w, 0, k, z, zh + t * B, ldz, 0, p, 0, B);
    be.sgemm(false, false, H, B, k - H, 1, w, 2 * H * k + H, k, z, zh + H * ldz + t * B, ldz, 0, p, 2 * n, B);
    be.sgemm(false, false, H, B, H + nb, 1, w, 3 * H * k, k, z, t * B, ldz, 0, hn, s * n, B);
    be.gruCell(
      p,
      0,
      B,
      view(hn, s * n, n),
      z,
      zh + t * B,
      z,
      zh + (t + 1) * B,
      ldz,
      y,
      t * yStep,
      ldy,
      view(act, s * 3 * n, 3 * n),
      H,
      B,
    );
  }
}

/** Its backward (spec-rnn.ts, gruSeqGrad): per step from the last, the backend's gruCellGrad and two sgemms. */
export function gruSeqGrad(
  be: Backend,
  whh: Buf,
  act: Buf,
  hn: Buf,
  z: Buf,
  zOff: number,
  ldz: number,
  dh: Buf,
  dy: Buf,
  yStep: number,
  ldy: number,
  dG: Buf,
  ldg: number,
  dhss: Buf,
  measure: boolean,
  steps: number,
  hidden: number,
  batch: number,
): void {
  const [H, B] = [hidden, batch];
  const n = H * B;
  const dhv = [view(dh, 0, n), view(dh, n, n)];
  for (let t = steps - 1; t >= 0; t--) {
    const cur = (steps - 1 - t) & 1;
    const nxt = cur ^ 1;
    const [a, hnt] = [view(act, t * 3 * n, 3 * n), view(hn, t * n, n)];
    be.gruCellGrad(a, hnt, z, zOff + t * B, ldz, dhv[cur]!, dy, t * yStep, ldy, dG, t * B, ldg, dhv[nxt]!, H, B);
    if (measure) dhss.data[t] = be.sumSquares(dhv[cur]!, n);
    be.sgemm(true, false, H, B, 2 * H, 1, whh, 0, H, dG, t * B, ldg, 1, dh, nxt * n, B);
    be.sgemm(true, false, H, B, H, 1, whh, 2 * H * H, H, dG, 3 * H * ldg + t * B, ldg, 1, dh, nxt * n, B);
  }
  if (steps & 1) be.copy(dh, n, dh, 0, n);
}

/** The weight gradients with the biases' (spec-rnn.ts, sgemmRowSums): the backend's sgemm, then its sumAxis over A's rows. */
export function sgemmRowSums(
  be: Backend,
  m: number,
  n: number,
  k: number,
  a: Buf,
  aOff: number,
  b: Buf,
  bOff: number,
  ldb: number,
  c: Buf,
  cOff: number,
  ldc: number,
  sums: Buf,
  sOff: number,
): void {
  be.sgemm(false, true, m, n, k, 1, a, aOff, k, b, bOff, ldb, 0, c, cOff, ldc);
  be.sumAxis(view(a, aOff, m * k), view(sums, sOff, m), m, k, 1);
}

/** The GRU's weight gradients (spec-rnn.ts, gruWeightGrads): three sgemmRowSums, or sgemm without the sums. */
export function gruWeightGrads(
  be: Backend,
  dG: Buf,
  k: number,
  z: Buf,
  zOff: number,
  ldz: number,
  H: number,
  In: number,
  both: Buf,
  wi: Buf,
  wh: Buf,
  sums: Buf,
  withSums: boolean,
): void {
  const HI = H + In;
  // [dG's first row, its rows, z's first row, the columns, C, C's offset, its ldc, the sums' offset]
  const parts: [number, number, number, number, Buf, number, number, number][] = [
    [0, 2 * H, zOff, HI, both, 0, HI, 0],
    [2 * H * k, H, zOff + H * ldz, In, wi, 2 * H * In, In, 2 * H],
    [3 * H * k, H, zOff, H, wh, 2 * H * H, H, 3 * H],
  ];
  for (const [aOff, m, bOff, n, c, cOff, ldc, sOff] of parts) {
    if (withSums) be.sgemmRowSums(m, n, k, dG, aOff, z, bOff, ldz, c, cOff, ldc, sums, sOff);
    else be.sgemm(false, true, m, n, k, 1, dG, aOff, k, z, bOff, ldz, 0, c, cOff, ldc);
  }
}
