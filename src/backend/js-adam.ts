import type { Buf } from './types.js';

/**
 * Adam's arithmetic for the reference backend (js.ts) and AMSGrad's loop (src/optim/transforms.ts): float32 in
 * torch.optim.Adam's order of operations, which the C kernel (native/kernels/optim.c) reproduces bit for bit.
 */
/** Adam's coefficients as torch.optim.Adam applies them to float32 tensors: each rounded to float32. */
export interface AdamCoefficients {
  b1: number;
  c1: number;
  b2: number;
  c2: number;
  /** 1 / bc1 */
  r1: number;
  /** √bc2 */
  sbc2: number;
  eps: number;
}

/** {@link AdamCoefficients} of b1, b2, eps and the bias corrections bc1 = 1 − b1ᵗ, bc2 = 1 − b2ᵗ. */
export function adamCoefficients(b1: number, b2: number, eps: number, bc1: number, bc2: number): AdamCoefficients {
  const f = Math.fround;
  return { b1: f(b1), c1: f(1 - b1), b2: f(b2), c2: f(1 - b2), r1: f(1 / bc1), sbc2: f(Math.sqrt(bc2)), eps: f(eps) };
}

/**
 * One element of Adam in float32, in torch.optim.Adam's order (its single-tensor CPU path): m ← m·b1 + g·(1 − b1),
 * v ← v·b2 + ((1 − b2)·g)·g, written to `m[i]`, `v[i]`; returns the step (m·(1/bc1)) / (√v / √bc2 + eps). Every
 * operation rounds to float32 (`Math.fround` of a float64 sum, product, quotient or square root of two float32 values
 * is the correctly rounded float32 result), so the native and wasm kernels give the same bits.
 */
export function adamStep(g: number, m: Float32Array, v: Float32Array, i: number, c: AdamCoefficients): number {
  const f = Math.fround;
  const mi = f(f(m[i]! * c.b1) + f(g * c.c1));
  const vi = f(f(v[i]! * c.b2) + f(f(c.c2 * g) * g));
  m[i] = mi;
  v[i] = vi;
  return f(f(c.r1 * mi) / f(f(f(Math.sqrt(vi)) / c.sbc2) + c.eps));
}

/** The reference `adamUpdate` (see src/backend/spec.ts). */
export function adamUpdate(
  g: Buf,
  m: Buf,
  v: Buf,
  n: number,
  b1: number,
  b2: number,
  eps: number,
  bc1: number,
  bc2: number,
  pre: number,
  post: number,
): void {
  const gs = g.data;
  const ms = m.data;
  const vs = v.data;
  const c = adamCoefficients(b1, b2, eps, bc1, bc2);
  for (let i = 0; i < n; i++) gs[i] = scaledStep(gs[i]!, pre, post, ms, vs, i, c);
}

/** {@link adamStep} of pre·g, times post: each factor applied as the `scale` kernel scales (a float32 product). */
function scaledStep(
  g: number,
  pre: number,
  post: number,
  m: Float32Array,
  v: Float32Array,
  i: number,
  c: AdamCoefficients,
): number {
  const q = adamStep(pre !== 1 ? Math.fround(Math.fround(pre) * g) : g, m, v, i, c);
  return post !== 1 ? Math.fround(Math.fround(post) * q) : q;
}

/** The reference `adamApply`: `adamUpdate`'s step added to p as `axpy(1, u, p)`, g untouched (see spec.ts). */
export function adamApply(
  g: Buf,
  m: Buf,
  v: Buf,
  p: Buf,
  n: number,
  b1: number,
  b2: number,
  eps: number,
  bc1: number,
  bc2: number,
  pre: number,
  post: number,
  measure: boolean,
  out: Float64Array,
): void {
  const gs = g.data;
  const ms = m.data;
  const vs = v.data;
  const ps = p.data;
  const c = adamCoefficients(b1, b2, eps, bc1, bc2);
  let sp = 0;
  let su = 0;
  for (let i = 0; i < n; i++) {
    // adamUpdate's step, then p + u rounded once, as axpy(1, u, p)
    const u = scaledStep(gs[i]!, pre, post, ms, vs, i, c);
    const w = Math.fround(ps[i]! + u);
    ps[i] = w;
    sp += w * w;
    su += u * u;
  }
  if (measure) {
    out[0] = sp;
    out[1] = su;
  }
}
