/**
 * The recurrent layers' op: one layer, one direction of an RNN, LSTM or GRU over a whole sequence, forward and a
 * hand-written backward through time, on the backend's kernels (nn/rnn.ts builds the layers from it).
 *
 * - the input projection of the whole sequence is one matrix product, W_ih·Xᵀ for all T·B columns at once;
 * - per step, only the recurrent product W_hh·h and the gate nonlinearities run, through the backend's sgemm and its
 *   sigmoid/tanh kernels;
 * - backward, the weight gradients are again whole-sequence products (dW_ih = dG·X, dW_hh = dG·Hᵀ).
 * The forward runs `forwardThroughTime` (a step function per cell), the backward `backwardThroughTime` (the same per
 * cell, in reverse), then the weight gradients as whole-sequence products (`matrixGrads`, `biasGrads`).
 * NOTE: states live transposed, hidden × batch, so that every gate of a step is one contiguous block that the
 * elementwise kernels (which take whole buffers) can process without copies.
 */
import { type Backend, Binary, type Buf, Unary } from '../../backend/types.js';
import { fromOp, isGradEnabled, type Tensor } from '../tensor.js';
import { zeroScalar } from './broadcast.js';
import { alloc } from './util.js';

/** The cell a recurrent layer runs. */
export type RecurrentMode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

/** Gates per cell: W_ih and W_hh have G·hidden rows. */
export const GATES: Record<RecurrentMode, number> = { RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3 };

/** Elementwise helpers over [hidden, batch] buffers of n elements. */
class Kernels {
  private readonly shape: number[];
  private readonly st = [1];
  constructor(
    readonly be: Backend,
    readonly n: number,
  ) {
    this.shape = [n];
  }
  mul(a: Buf, b: Buf, out: Buf): void {
    this.be.binary(Binary.Mul, a, b, out, this.shape, this.st, this.st);
  }
  sub(a: Buf, b: Buf, out: Buf): void {
    this.be.binary(Binary.Sub, a, b, out, this.shape, this.st, this.st);
  }
  add(a: Buf, b: Buf, out: Buf): void {
    this.be.binary(Binary.Add, a, b, out, this.shape, this.st, this.st);
  }
  act(op: Unary, x: Buf, out: Buf): void {
    this.be.unary(op, x, out, this.n, 0, 0);
  }
  /** gx = gy·f'(x) where y = f(x). */
  grad(op: Unary, x: Buf, y: Buf, gy: Buf, gx: Buf): void {
    this.be.unaryGrad(op, x, y, gy, gx, this.n, 0, 0);
  }
}

/** An LSTM step's buffers: the gate pre-activations, the gates, c, tanh(c) and h. */
type LstmStep = [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];

/** A GRU step's buffers: the r and z pre-activations, W_hn·h_prev + b_hn, n's pre-activation, r, z, n and h. */
type GruStep = [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];

/**
 * Receives ‖∂L/∂h_t‖², the squared norm of the whole gradient reaching the hidden state of step t (from the loss at
 * t and from every later step), on the steps it `wants`, while the backward through time runs: the monitor's
 * through-time record (monitor/through-time.ts). Off by default; it costs one reduction per wanted step.
 */
export interface TimeTap {
  wants(t: number, T: number): boolean;
  record(t: number, T: number, sumSquares: number): void;
}

/** The tap the next `recurrentLayer` call takes (the layer that calls it sets it; null: none). */
export const timeTaps: { current: TimeTap | null } = { current: null };

/** One call's sizes, weights and backend, shared by the forward and the backward. */
interface Seq {
  mode: RecurrentMode;
  lstm: boolean;
  gru: boolean;
  T: number;
  B: number;
  In: number;
  H: number;
  G: number;
  /** H·B, the elements of one state. */
  n: number;
  TB: number;
  /** (T + 1)·B, the row length of HT (column block t holds h_{t−1}ᵀ). */
  W: number;
  be: Backend;
  k: Kernels;
  whh: Tensor;
  bhh: Tensor | null;
  /** A new [H, B] buffer. */
  fresh: () => Tensor;
}

/** What the forward pass keeps: the projected inputs, every state, and each step's buffers (when recorded). */
interface Forward {
  /** The input projection with the biases folded in, [G·H, T·B]. */
  P: Tensor;
  /** The hidden states transposed, [H, (T + 1)·B]: h_0 in block 0. */
  HT: Tensor;
  /** One step's pre-activations of every gate, [G·H, B]. */
  Gt: Tensor;
  /** GRU: b_hn broadcast over the batch (the starting value of W_hn·h + b_hn). */
  bhn: Tensor | null;
  hs: Tensor[];
  cs: Tensor[];
  steps: Tensor[][];
  scratch: Tensor;
}

/** The input projection of the whole sequence with the biases folded in: P [G·H, T·B] (one matrix product). */
function projectInputs(q: Seq, x: Tensor, wih: Tensor, bih: Tensor | null, bhh: Tensor | null): Tensor {
  const { be, G, H, TB, In } = q;
  const P = alloc([G * H, TB]);
  const hasBias = !!(bih || bhh);
  if (hasBias) {
    // b_ih + b_hn per row (GRU: b_hn sits inside r ⊙ (W_hn h + b_hn), so it is not folded here), broadcast along it
    const v = alloc([G * H]);
    if (bih) be.copy(bih.buf, 0, v.buf, 0, G * H);
    else be.fill(v.buf, 0, G * H);
    if (bhh) be.copyBlocks(bhh.buf, 0, 0, v.buf, 0, 0, q.gru ? 2 * H : G * H, 1, true);
    be.binary(Binary.Add, v.buf, zeroScalar(be), P.buf, [G * H, TB], [1, 0], [0, 0]);
  }
  be.sgemm(false, true, G * H, TB, In, 1, wih.buf, 0, In, x.buf, 0, In, hasBias ? 1 : 0, P.buf, 0, TB);
  return P;
}

/** A [B, H] state transposed to [H, B] (zeros for null). */
function transposeIn(q: Seq, t: Tensor | null): Tensor {
  const out = q.fresh();
  if (t) q.be.permute(t.buf, out.buf, [q.B, q.H], [1, 0]);
  else q.be.fill(out.buf, 0, q.n);
  return out;
}

/** GRU: b_hn broadcast over the batch (zeros without biases), the starting value of W_hn·h + b_hn. */
function gruHiddenBias(q: Seq, bhh: Tensor | null): Tensor {
  const { be, H, B } = q;
  const bhn = q.fresh();
  if (bhh) {
    const b = alloc([H]);
    be.copy(bhh.buf, 2 * H, b.buf, 0, H);
    be.binary(Binary.Add, b.buf, zeroScalar(be), bhn.buf, [H, B], [1, 0], [0, 0]);
  } else be.fill(bhn.buf, 0, q.n);
  return bhn;
}

/**
 * The pre-activations of every gate at step t into `f.Gt`: P's column block t plus W_hh·h_prev, one product for all
 * gates (GRU: rows 2H..3H hold W_hn·h_prev + b_hn instead, which the n gate needs apart).
 */
function preactivations(q: Seq, f: Forward, t: number, prev: Tensor): void {
  const { be, B, H, G, TB, n } = q;
  be.copyBlocks(f.P.buf, t * B, TB, f.Gt.buf, 0, B, B, q.gru ? 2 * H : G * H, false);
  if (f.bhn) be.copy(f.bhn.buf, 0, f.Gt.buf, 2 * n, n);
  be.sgemm(false, false, G * H, B, H, 1, q.whh.buf, 0, H, prev.buf, 0, B, 1, f.Gt.buf, 0, B);
}

/** Gate `gate`'s block of `f.Gt` into `out`. */
function gateOut(q: Seq, f: Forward, gate: number, out: Tensor): void {
  q.be.copy(f.Gt.buf, gate * q.n, out.buf, 0, q.n);
}

/** One LSTM step: c = f ⊙ c_prev + i ⊙ g; h = o ⊙ tanh(c). */
function lstmForward(q: Seq, f: Forward, t: number, s: Tensor[]): void {
  const { k } = q;
  const [ai, af, ag, ao, i, fg, g, o, c, tc, h] = s as LstmStep;
  preactivations(q, f, t, f.hs[t]!);
  gateOut(q, f, 0, ai);
  gateOut(q, f, 1, af);
  gateOut(q, f, 2, ag);
  gateOut(q, f, 3, ao);
  k.act(Unary.Sigmoid, ai.buf, i.buf);
  k.act(Unary.Sigmoid, af.buf, fg.buf);
  k.act(Unary.Tanh, ag.buf, g.buf);
  k.act(Unary.Sigmoid, ao.buf, o.buf);
  k.mul(fg.buf, f.cs[t]!.buf, c.buf);
  k.mul(i.buf, g.buf, f.scratch.buf);
  q.be.axpy(1, f.scratch.buf, c.buf, q.n);
  k.act(Unary.Tanh, c.buf, tc.buf);
  k.mul(o.buf, tc.buf, h.buf);
  f.cs.push(c);
  f.hs.push(h);
}

/** One GRU step: n = tanh(W_in·x + b_in + r ⊙ hn); h = n + z ⊙ (h_prev − n) = (1 − z) ⊙ n + z ⊙ h_prev. */
function gruForward(q: Seq, f: Forward, t: number, s: Tensor[]): void {
  const { k, be, n } = q;
  const [ar, az, hn, an, r, z, nn, h] = s as GruStep;
  const hPrev = f.hs[t]!;
  preactivations(q, f, t, hPrev);
  gateOut(q, f, 0, ar);
  gateOut(q, f, 1, az);
  gateOut(q, f, 2, hn); // W_hn·h_prev + b_hn
  k.act(Unary.Sigmoid, ar.buf, r.buf);
  k.act(Unary.Sigmoid, az.buf, z.buf);
  be.copyBlocks(f.P.buf, 2 * q.H * q.TB + t * q.B, q.TB, an.buf, 0, q.B, q.B, q.H, false);
  k.mul(r.buf, hn.buf, f.scratch.buf);
  be.axpy(1, f.scratch.buf, an.buf, n);
  k.act(Unary.Tanh, an.buf, nn.buf);
  k.sub(hPrev.buf, nn.buf, f.scratch.buf);
  k.mul(z.buf, f.scratch.buf, h.buf);
  be.axpy(1, nn.buf, h.buf, n);
  f.hs.push(h);
}

/** One vanilla RNN step: h = tanh(a) or relu(a). */
function rnnForward(q: Seq, f: Forward, t: number, s: Tensor[]): void {
  const [a, h] = s as [Tensor, Tensor];
  preactivations(q, f, t, f.hs[t]!);
  gateOut(q, f, 0, a);
  q.k.act(q.mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf);
  f.hs.push(h);
}

/** Buffers per step of each cell. */
const STEP_BUFFERS: Record<RecurrentMode, number> = { RNN_TANH: 2, RNN_RELU: 2, LSTM: 11, GRU: 8 };

/** The whole forward pass through time; each step's buffers are kept for the backward when `record`. */
function forwardThroughTime(q: Seq, P: Tensor, h0: Tensor | null, c0: Tensor | null, record: boolean): Forward {
  const { be, B, H, T, W } = q;
  const HT = alloc([H, W]);
  const h0T = transposeIn(q, h0);
  be.copyBlocks(h0T.buf, 0, B, HT.buf, 0, W, B, H, false);
  const c0T = q.lstm ? transposeIn(q, c0) : null;
  const bhn = q.gru ? gruHiddenBias(q, q.bhh) : null;
  const f: Forward = {
    P,
    HT,
    Gt: alloc([q.G * H, B]),
    bhn,
    hs: [h0T],
    cs: c0T ? [c0T] : [],
    steps: [],
    scratch: q.fresh(),
  };
  // when nothing is recorded, two alternating sets of step buffers serve the whole sequence
  const spare: Tensor[][] = [[], []];
  const count = STEP_BUFFERS[q.mode];
  const stepFn = q.lstm ? lstmForward : q.gru ? gruForward : rnnForward;
  for (let t = 0; t < T; t++) {
    let s: Tensor[];
    if (record) s = Array.from({ length: count }, q.fresh);
    else {
      s = spare[t % 2]!;
      while (s.length < count) s.push(q.fresh());
    }
    stepFn(q, f, t, s);
    be.copyBlocks(f.hs[t + 1]!.buf, 0, B, HT.buf, (t + 1) * B, W, B, H, false);
    if (record) f.steps.push(s);
  }
  return f;
}

/** The outputs [T, B, H] from HT's blocks 1..T; LSTM: [T + 1, B, H] with c_T in block 0. */
function outputsOf(q: Seq, f: Forward): Tensor {
  const { be, T, B, H, n } = q;
  const full = alloc([T + 1, B, H]);
  be.permute(f.HT.buf, full.buf, [H, T + 1, B], [1, 2, 0]);
  if (q.lstm) {
    be.permute(f.cs[T]!.buf, f.scratch.buf, [H, B], [1, 0]);
    be.copy(f.scratch.buf, 0, full.buf, 0, n);
    return full;
  }
  const out = alloc([T, B, H]);
  be.copy(full.buf, n, out.buf, 0, T * n);
  return out;
}

/** The backward pass's running state: the gradient reaching h (and c) and the gate gradients of every step. */
interface Backward {
  /** The output gradients transposed like the states, [H, (T + off)·B]. */
  gT: Tensor;
  GW: number;
  /** 1 for LSTM (its result carries c_T in block 0), else 0. */
  off: number;
  /** The gate pre-activations' gradients of the whole sequence, [rows·H, T·B]. */
  dG: Tensor;
  dh: Tensor;
  dhNext: Tensor;
  dc: Tensor | null;
  dcNext: Tensor | null;
  s1: Tensor;
  s2: Tensor;
  da: [Tensor, Tensor, Tensor, Tensor];
  /** One step's gate gradients stacked [G·H, B], for the product with W_hh. */
  dGt: Tensor;
}

/** Gate rows of dG: GRU keeps the gradient of W_hn·h + b_hn (rows 3H..4H) apart from that of the n gate. */
const dgRows = (q: Seq) => (q.gru ? 4 : q.G);

/** One step's gate gradient `src` into row block `row`, column block t of dG. */
function toDG(q: Seq, b: Backward, src: Tensor, row: number, t: number): void {
  q.be.copyBlocks(src.buf, 0, q.B, b.dG.buf, row * q.H * q.TB + t * q.B, q.TB, q.B, q.H, false);
}

/** Backward through one LSTM step: through h = o ⊙ tanh(c), then c = f ⊙ c_prev + i ⊙ g. */
function lstmBackward(q: Seq, f: Forward, b: Backward, t: number): void {
  const { k, be, n, H, B, G } = q;
  const [ai, af, ag, ao, i, fg, g, o, c, tc] = f.steps[t] as LstmStep;
  const { dh, s1, s2, da } = b;
  const dc = b.dc!;
  k.mul(dh.buf, tc.buf, s1.buf);
  k.grad(Unary.Sigmoid, ao.buf, o.buf, s1.buf, da[3].buf);
  k.mul(dh.buf, o.buf, s1.buf);
  k.grad(Unary.Tanh, c.buf, tc.buf, s1.buf, s2.buf);
  be.axpy(1, s2.buf, dc.buf, n);
  k.mul(dc.buf, g.buf, s1.buf);
  k.grad(Unary.Sigmoid, ai.buf, i.buf, s1.buf, da[0].buf);
  k.mul(dc.buf, f.cs[t]!.buf, s1.buf);
  k.grad(Unary.Sigmoid, af.buf, fg.buf, s1.buf, da[1].buf);
  k.mul(dc.buf, i.buf, s1.buf);
  k.grad(Unary.Tanh, ag.buf, g.buf, s1.buf, da[2].buf);
  k.mul(dc.buf, fg.buf, b.dcNext!.buf);
  for (let gate = 0; gate < 4; gate++) {
    toDG(q, b, da[gate]!, gate, t);
    be.copy(da[gate]!.buf, 0, b.dGt.buf, gate * n, n);
  }
  // dh_prev = W_hhᵀ·[da_i; da_f; da_g; da_o], one product for all gates
  be.sgemm(true, false, H, B, G * H, 1, q.whh.buf, 0, H, b.dGt.buf, 0, B, 0, b.dhNext.buf, 0, B);
  [b.dc, b.dcNext] = [b.dcNext, b.dc];
}

/** Backward through one GRU step: through h = n + z ⊙ (h_prev − n), then n's pre-activation W_in·x + b_in + r ⊙ hn. */
function gruBackward(q: Seq, f: Forward, b: Backward, t: number): void {
  const { k, be, n, H, B, G } = q;
  const [ar, az, hn, an, r, z, nn] = f.steps[t] as GruStep;
  const { dh, dhNext, s1, s2, da, dGt } = b;
  k.sub(f.hs[t]!.buf, nn.buf, s1.buf);
  k.mul(dh.buf, s1.buf, s2.buf);
  k.grad(Unary.Sigmoid, az.buf, z.buf, s2.buf, da[1].buf);
  k.mul(dh.buf, z.buf, dhNext.buf); // the direct path to h_prev
  k.sub(dh.buf, dhNext.buf, s1.buf); // dn = dh ⊙ (1 − z)
  k.grad(Unary.Tanh, an.buf, nn.buf, s1.buf, da[2].buf);
  k.mul(da[2].buf, r.buf, da[3].buf); // d hn
  k.mul(da[2].buf, hn.buf, s1.buf);
  k.grad(Unary.Sigmoid, ar.buf, r.buf, s1.buf, da[0].buf);
  for (let row = 0; row < 4; row++) toDG(q, b, da[row]!, row, t);
  // dh_prev = dh ⊙ z + W_hhᵀ·[da_r; da_z; d hn]
  be.copy(da[0].buf, 0, dGt.buf, 0, n);
  be.copy(da[1].buf, 0, dGt.buf, n, n);
  be.copy(da[3].buf, 0, dGt.buf, 2 * n, n);
  be.sgemm(true, false, H, B, G * H, 1, q.whh.buf, 0, H, dGt.buf, 0, B, 1, dhNext.buf, 0, B);
}

/** Backward through one vanilla RNN step. */
function rnnBackward(q: Seq, f: Forward, b: Backward, t: number): void {
  const [a, h] = f.steps[t] as [Tensor, Tensor];
  const { H, B, be } = q;
  q.k.grad(q.mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf, b.dh.buf, b.da[0].buf);
  toDG(q, b, b.da[0], 0, t);
  be.sgemm(true, false, H, B, H, 1, q.whh.buf, 0, H, b.da[0].buf, 0, B, 0, b.dhNext.buf, 0, B);
}

/**
 * The backward through time, from the last step to the first: fills dG and leaves the gradient reaching h_0 (and
 * c_0) in `dh` (`dc`); the tap, when given, gets ‖∂L/∂h_t‖² of the steps it wants.
 */
function backwardThroughTime(q: Seq, f: Forward, gOut: Tensor, tap: TimeTap | null): Backward {
  const { be, T, B, H, n, G } = q;
  const off = q.lstm ? 1 : 0;
  const GW = (T + off) * B;
  const gT = alloc([H, GW]);
  be.permute(gOut.buf, gT.buf, [T + off, B, H], [2, 0, 1]);
  const dG = alloc([dgRows(q) * H, q.TB]);
  const dh = q.fresh();
  const dhNext = q.fresh();
  be.fill(dh.buf, 0, n);
  const dc = q.lstm ? q.fresh() : null;
  const dcNext = q.lstm ? q.fresh() : null;
  if (dc) be.copyBlocks(gT.buf, 0, GW, dc.buf, 0, B, B, H, false);
  const s1 = q.fresh();
  const s2 = q.fresh();
  const da = [q.fresh(), q.fresh(), q.fresh(), q.fresh()] as [Tensor, Tensor, Tensor, Tensor];
  const dGt = G > 1 ? alloc([G * H, B]) : da[0];
  const b: Backward = { gT, GW, off, dG, dh, dhNext, dc, dcNext, s1, s2, da, dGt };
  const stepFn = q.lstm ? lstmBackward : q.gru ? gruBackward : rnnBackward;
  for (let t = T - 1; t >= 0; t--) {
    // dh += dL/dy_t
    be.copyBlocks(gT.buf, (t + off) * B, GW, b.dh.buf, 0, B, B, H, true);
    if (tap?.wants(t, T)) tap.record(t, T, be.sumSquares(b.dh.buf, n));
    stepFn(q, f, b, t);
    [b.dh, b.dhNext] = [b.dhNext, b.dh];
  }
  return b;
}

/** The gradients of x, W_ih and W_hh: whole-sequence products with dG (dx = dGᵀ·W_ih, dW_ih = dG·X, dW_hh = dG·Hᵀ). */
function matrixGrads(
  q: Seq,
  f: Forward,
  dG: Tensor,
  x: Tensor,
  wih: Tensor,
  needs: readonly boolean[],
): [Tensor | null, Tensor | null, Tensor | null] {
  const { be, H, TB, In, W } = q;
  const GH = q.G * H;
  const res: [Tensor | null, Tensor | null, Tensor | null] = [null, null, null];
  if (needs[0]) {
    res[0] = alloc(x.shape);
    be.sgemm(true, false, TB, In, GH, 1, dG.buf, 0, TB, wih.buf, 0, In, 0, res[0].buf, 0, In);
  }
  if (needs[1]) {
    res[1] = alloc(wih.shape);
    be.sgemm(false, false, GH, In, TB, 1, dG.buf, 0, TB, x.buf, 0, In, 0, res[1].buf, 0, In);
  }
  if (needs[2]) {
    const gw = alloc(q.whh.shape);
    if (q.gru) {
      be.sgemm(false, true, 2 * H, H, TB, 1, dG.buf, 0, TB, f.HT.buf, 0, W, 0, gw.buf, 0, H);
      be.sgemm(false, true, H, H, TB, 1, dG.buf, 3 * H * TB, TB, f.HT.buf, 0, W, 0, gw.buf, 2 * H * H, H);
    } else be.sgemm(false, true, GH, H, TB, 1, dG.buf, 0, TB, f.HT.buf, 0, W, 0, gw.buf, 0, H);
    res[2] = gw;
  }
  return res;
}

/** The gradients of b_ih and b_hh (null where not wanted): dG's row sums (GRU: b_hn's from rows 3H..4H). */
function biasGrads(q: Seq, dG: Tensor, wantIh: boolean, wantHh: boolean): [Tensor | null, Tensor | null] {
  if (!wantIh && !wantHh) return [null, null];
  const { be, H } = q;
  const GH = q.G * H;
  const rows = dgRows(q);
  const sums = alloc([rows * H]);
  be.sumAxis(dG.buf, sums.buf, rows * H, q.TB, 1);
  let gih: Tensor | null = null;
  let ghh: Tensor | null = null;
  if (wantIh) {
    gih = alloc([GH]);
    be.copy(sums.buf, 0, gih.buf, 0, GH);
  }
  if (wantHh) {
    ghh = alloc([GH]);
    if (q.gru) {
      be.copy(sums.buf, 0, ghh.buf, 0, 2 * H);
      be.copy(sums.buf, 3 * H, ghh.buf, 2 * H, H);
    } else be.copy(sums.buf, 0, ghh.buf, 0, GH);
  }
  return [gih, ghh];
}

/** An [H, B] state back to [B, H]. */
function untranspose(q: Seq, src: Tensor): Tensor {
  const out = alloc([q.B, q.H]);
  q.be.permute(src.buf, out.buf, [q.H, q.B], [1, 0]);
  return out;
}

/**
 * One layer, one direction, over a whole sequence: x [T, B, in] → outputs [T, B, H]; for LSTM the result is
 * [T + 1, B, H] with c_T in block 0 and the outputs in blocks 1..T (one tensor, so one backward sees both).
 * h0 and c0 are [B, H] or null (zeros).
 */
export function recurrentLayer(
  mode: RecurrentMode,
  x: Tensor,
  wih: Tensor,
  whh: Tensor,
  bih: Tensor | null,
  bhh: Tensor | null,
  h0: Tensor | null,
  c0: Tensor | null,
): Tensor {
  const [T, B, In] = x.shape as [number, number, number];
  const H = whh.shape[1]!;
  const be = x.storage.backend;
  const n = H * B;
  const q: Seq = {
    mode,
    lstm: mode === 'LSTM',
    gru: mode === 'GRU',
    T,
    B,
    In,
    H,
    G: GATES[mode],
    n,
    TB: T * B,
    W: (T + 1) * B,
    be,
    k: new Kernels(be, n),
    whh,
    bhh,
    fresh: () => alloc([H, B]),
  };
  const inputs: Tensor[] = [x, wih, whh];
  const iBih = bih ? inputs.push(bih) - 1 : -1;
  const iBhh = bhh ? inputs.push(bhh) - 1 : -1;
  const iH0 = h0 ? inputs.push(h0) - 1 : -1;
  const iC0 = c0 ? inputs.push(c0) - 1 : -1;
  const record = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const tap = record ? timeTaps.current : null;
  const f = forwardThroughTime(q, projectInputs(q, x, wih, bih, bhh), h0, c0, record);
  const out = outputsOf(q, f);
  return fromOp(mode.toLowerCase(), out.storage, out.shape, inputs, (gOut, needs) => {
    const b = backwardThroughTime(q, f, gOut, tap);
    const res: (Tensor | null)[] = inputs.map(() => null);
    [res[0], res[1], res[2]] = matrixGrads(q, f, b.dG, x, wih, needs);
    const want = (i: number) => i >= 0 && needs[i] === true;
    const [gih, ghh] = biasGrads(q, b.dG, want(iBih), want(iBhh));
    if (gih) res[iBih] = gih;
    if (ghh) res[iBhh] = ghh;
    if (want(iH0)) res[iH0] = untranspose(q, b.dh);
    if (want(iC0)) res[iC0] = untranspose(q, b.dc!);
    return res;
  });
}
