/**
 * The reference kernels of the recurrent layers' steps (spec-nn.ts): the LSTM's and the GRU's, forward and backward.
 * The C kernels (native/kernels/recurrent.c) do the same operations in the same order, rounding to float32 where these
 * do; only σ and tanh differ by an ulp or two.
 */
import { unaryScalar } from './js-math.js';
import { type Buf, Unary } from './types.js';

const f32 = Math.fround;
/** σ as the unary kernel computes it (float64, rounded once by the caller). */
const sigmoid = (x: number) => unaryScalar(Unary.Sigmoid, x, 0, 0);

/** One LSTM step (spec-nn.ts, lstmCell). */
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

/** The LSTM step's backward (spec-nn.ts, lstmCellGrad). */
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

/** One GRU step (spec-nn.ts, gruCell). */
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

/** The GRU step's backward (spec-nn.ts, gruCellGrad). */
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
