/**
 * The recurrent layers' op: one layer, one direction of an RNN, LSTM or GRU over a whole sequence, forward and a
 * hand-written backward through time, on the backend's kernels (nn/rnn.ts builds the layers from it).
 *
 * - the states and the inputs are stacked, transposed, into one matrix Z (h_{t−1}, x_t and a row of ones in column
 *   block t) and the weights likewise ([W_hh | W_ih | b]), so that a step's pre-activations are one product (the GRU's
 *   three), written into a buffer of one step that stays in cache;
 * - per step, that product and the gate nonlinearities run, through the backend's sgemm and its sigmoid/tanh
 *   kernels; the LSTM's and the GRU's step is one fused kernel each way (lstmCell/lstmCellGrad,
 *   gruCell/gruCellGrad) that reads the pre-activations from that buffer and writes h into HT's block, and the gate
 *   gradients into dG's, so that their recurrent products read and write those matrices in place (a leading
 *   dimension apart) with no copies; the forward kernel also writes h into the layer's output [T, B, H] (so no
 *   transpose of HT at the end) and the backward one reads the output's gradient from there (no transpose of it);
 * - backward, the weight gradients are again whole-sequence products (dW_ih = dG·X, dW_hh = dG·Hᵀ).
 * The forward runs `forwardThroughTime` (a step function per cell), the backward `backwardThroughTime` (the same per
 * cell, in reverse), then the weight gradients as whole-sequence products (`matrixGrads`, `biasGrads`).
 * NOTE: states live transposed, hidden × batch, so that every gate of a step is one contiguous block that the
 * elementwise kernels (which take whole buffers) can process without copies.
 */
import { Unary } from '../../backend/types.js';
import { fromOp, isGradEnabled, type Tensor } from '../tensor.js';
import {
  type Backward,
  dgRows,
  type Forward,
  fusedBackward,
  fusedThroughTime,
  GATES,
  Kernels,
  type RecurrentMode,
  recurrentLoop,
  type Seq,
  type TimeTap,
  transposeIn,
  yOff,
} from './recurrent-seq.js';
import { alloc } from './util.js';

export { GATES, type RecurrentMode, recurrentLoop, type TimeTap } from './recurrent-seq.js';

/** An LSTM step's buffers: the gates i, f, g, o [4, H, B] (the lstmCell kernel's act), c and tanh(c). */
type LstmStep = [Tensor, Tensor, Tensor];

/** A GRU step's buffers: r, z and n [3, H, B] (the gruCell kernel's act) and hn = W_hn·h_prev + b_hn. */
type GruStep = [Tensor, Tensor];

/** The tap the next `recurrentLayer` call takes (the layer that calls it sets it; null: none). */
export const timeTaps: { current: TimeTap | null } = { current: null };

/**
 * Z [H + In + nb, (T + 1)·B]: the hidden states transposed on top (HT: column block t holds h_{t−1}ᵀ, filled as the
 * steps run), then the inputs transposed (column block t holds x_tᵀ) and a row of ones where there are biases
 * (nb = 1); the GRU's has a second row of ones before h (`Seq.hRow`, `xRow`, `oneRow`). With the weights stacked the
 * same way
 * (`stackedWeights`), one product per step, [W_hh | W_ih | b]·Z's column block t, gives a step's pre-activations,
 * W_hh·h_{t−1} + W_ih·x_t + b, into a buffer of one step that stays in cache: no input projection of the whole
 * sequence [G·H, T·B] (13 MB for the bench's LSTM) written out before the steps and read back by each (and by each
 * step's product, which added into it).
 */
function stackedInputs(q: Seq, x: Tensor, withX: boolean): Tensor {
  const { be, In, TB, W, nb } = q;
  const Z = alloc([q.hRow + q.K, W]);
  if (nb) {
    const ones = alloc([TB]);
    be.fill(ones.buf, 1, TB);
    be.copyBlocks(ones.buf, 0, TB, Z.buf, q.oneRow * W, W, TB, 1, false);
    // the GRU's first row, (1, h) for hn
    if (q.hRow) be.copyBlocks(ones.buf, 0, TB, Z.buf, 0, W, TB, 1, false);
  }
  // the fused loops place x_t themselves, step by step (lstmSeq, gruSeq)
  if (!withX) return Z;
  const xt = alloc([In, TB]);
  if (q.bf) be.permute(x.buf, xt.buf, [q.B, q.T, In], [2, 1, 0]);
  else be.permute(x.buf, xt.buf, [TB, In], [1, 0]);
  be.copyBlocks(xt.buf, 0, TB, Z.buf, q.xRow * W, W, TB, In, false);
  return Z;
}

/**
 * The weights stacked as Z's rows from h's: [W_hh | W_ih | b_ih + b_hh], [G·H, H + In + nb]. GRU: rows 0..2H (r, z)
 * so; rows 2H..3H [· | W_in | b_in] (n's input part, multiplied with Z's rows from x's: W_hn·h stays apart, inside
 * r ⊙ (…)); rows 3H..4H [b_hn | W_hn | ·] (hn = W_hn·h + b_hn, multiplied with Z's first rows, its leading ones and
 * h). The blocks marked · are never read.
 */
function stackedWeights(q: Seq, wih: Tensor, whh: Tensor, bih: Tensor | null, bhh: Tensor | null): Tensor {
  const { be, G, H, In, K, nb } = q;
  const GH = G * H;
  const rows = q.gru ? 4 * H : GH;
  const wc = alloc([rows, K]);
  be.copyBlocks(whh.buf, 0, H, wc.buf, 0, K, H, q.gru ? 2 * H : GH, false);
  if (q.gru) be.copyBlocks(whh.buf, 2 * H * H, H, wc.buf, 3 * H * K + nb, K, H, H, false);
  be.copyBlocks(wih.buf, 0, In, wc.buf, H, K, In, GH, false);
  if (nb) {
    // b_ih + b_hh per row (GRU: b_hn sits inside r ⊙ (W_hn h + b_hn), so it goes with W_hn)
    const v = alloc([rows]);
    if (bih) be.copy(bih.buf, 0, v.buf, 0, GH);
    else be.fill(v.buf, 0, GH);
    if (bhh) be.copyBlocks(bhh.buf, 0, 0, v.buf, 0, 0, q.gru ? 2 * H : GH, 1, true);
    if (q.gru) {
      if (bhh) be.copy(bhh.buf, 2 * H, v.buf, 3 * H, H);
      else {
        const z = alloc([H]);
        be.fill(z.buf, 0, H);
        be.copy(z.buf, 0, v.buf, 3 * H, H);
      }
    }
    // b's column: Z's ones row after x (GRU: hn's rows, column 0, the ones before h)
    be.copyBlocks(v.buf, 0, 1, wc.buf, H + In, K, 1, GH, false);
    if (q.gru) be.copyBlocks(v.buf, 3 * H, 1, wc.buf, 3 * H * K, K, 1, H, false);
  }
  return wc;
}

/**
 * One LSTM step: P = [W_hh | W_ih | b]·Z's column block t (h_{t−1}, x_t, 1), then the fused kernel: the gates,
 * c = f ⊙ c_prev + i ⊙ g and h = o ⊙ tanh(c), h written into HT's block t + 1.
 */
function lstmForward(q: Seq, f: Forward, t: number, s: Tensor[]): void {
  const { be, B, H, G, K, W } = q;
  const [act, c, tc] = s as LstmStep;
  const P = f.P!.buf;
  be.sgemm(false, false, G * H, B, K, 1, f.wc.buf, 0, K, f.HT.buf, t * B, W, 0, P, 0, B);
  const y = f.Y!.buf;
  be.lstmCell(P, 0, B, f.cs[t]!.buf, act.buf, c.buf, tc.buf, f.HT.buf, (t + 1) * B, W, y, yOff(q, t), q.ldy, H, B);
  f.cs.push(c);
  f.hs.push(f.HT); // h_t lives in HT's block t + 1
}

/**
 * One GRU step, three products from Z's column block t (1, h_{t−1}, x_t, 1): r's and z's pre-activations
 * [W_hr,z | W_ir,z | b_r,z]·(h, x, 1) and n's input part [W_in | b_in]·(x, 1) into P, hn = [b_hn | W_hn]·(1, h); then
 * the fused kernel: n = tanh(W_in·x + b_in + r ⊙ hn) and h = z ⊙ (h_prev − n) + n, h written into HT's block t + 1.
 */
function gruForward(q: Seq, f: Forward, t: number, s: Tensor[]): void {
  const { be, B, H, K, W, nb } = q;
  const [act, hn] = s as GruStep;
  const [wc, Z, P] = [f.wc.buf, f.HT.buf, f.P!.buf];
  const zh = q.hRow * W;
  be.sgemm(false, false, 2 * H, B, K, 1, wc, 0, K, Z, zh + t * B, W, 0, P, 0, B);
  be.sgemm(false, false, H, B, K - H, 1, wc, 2 * H * K + H, K, Z, zh + H * W + t * B, W, 0, P, 2 * H * B, B);
  be.sgemm(false, false, H, B, H + nb, 1, wc, 3 * H * K, K, Z, t * B, W, 0, hn.buf, 0, B);
  be.gruCell(P, 0, B, hn.buf, Z, zh + t * B, Z, zh + (t + 1) * B, W, f.Y!.buf, yOff(q, t), q.ldy, act.buf, H, B);
  f.hs.push(f.HT); // h_t lives in HT's block t + 1
}

/** One vanilla RNN step: h = tanh(a) or relu(a), a = [W_hh | W_ih | b]·Z's column block t (h_prev, x_t, 1). */
function rnnForward(q: Seq, f: Forward, t: number, s: Tensor[]): void {
  const { be, B, H, K, W } = q;
  const [a, h] = s as [Tensor, Tensor];
  be.sgemm(false, false, H, B, K, 1, f.wc.buf, 0, K, f.HT.buf, t * B, W, 0, a.buf, 0, B);
  q.k.act(q.mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf);
  f.hs.push(h);
}

/** The shapes of one step's buffers of each cell. */
function stepShapes(q: Seq): number[][] {
  const s = [q.H, q.B];
  return q.lstm ? [[4, q.H, q.B], s, s] : q.gru ? [[3, q.H, q.B], s] : [s, s];
}

/** The whole forward pass through time; each step's buffers are kept for the backward when `record`. */
function forwardThroughTime(
  q: Seq,
  wc: Tensor,
  Z: Tensor,
  _x: Tensor,
  h0: Tensor | null,
  c0: Tensor | null,
  record: boolean,
): Forward {
  const { be, B, H, T, W } = q;
  const HT = Z;
  const h0T = transposeIn(q, h0);
  be.copyBlocks(h0T.buf, 0, B, HT.buf, q.hRow * W, W, B, H, false);
  const c0T = q.lstm ? transposeIn(q, c0) : null;
  const f: Forward = {
    wc,
    HT,
    P: q.lstm || q.gru ? alloc([q.G * H, B]) : null,
    Y: q.lstm ? alloc([(T + 1) * B, H]) : q.gru ? alloc(q.bf ? [B, T, H] : [T, B, H]) : null,
    hs: [h0T],
    cs: c0T ? [c0T] : [],
    steps: [],
    scratch: q.fresh(),
    seq: null,
  };
  // when nothing is recorded, two alternating sets of step buffers serve the whole sequence
  const spare: Tensor[][] = [[], []];
  const shapes = stepShapes(q);
  const stepFn = q.lstm ? lstmForward : q.gru ? gruForward : rnnForward;
  for (let t = 0; t < T; t++) {
    let s: Tensor[];
    if (record) s = shapes.map((shape) => alloc(shape));
    else {
      s = spare[t % 2]!;
      if (s.length === 0) s.push(...shapes.map((shape) => alloc(shape)));
    }
    stepFn(q, f, t, s);
    // the LSTM and GRU kernels wrote h into HT already
    if (!q.lstm && !q.gru) be.copyBlocks(f.hs[t + 1]!.buf, 0, B, HT.buf, (t + 1) * B, W, B, H, false);
    if (record) f.steps.push(s);
  }
  return f;
}

/**
 * The outputs [T, B, H] ([B, T, H] batch first); LSTM: [(T + 1)·B, H], the outputs' rows then c_T's B rows. The LSTM
 * and GRU kernels wrote them already (but c_T); the vanilla RNN's come from HT's blocks 1..T.
 */
function outputsOf(q: Seq, f: Forward): Tensor {
  const { be, T, B, H, n } = q;
  if (q.lstm) {
    // c_T [H, B] (the fused loop left it in the scratch state) transposed into the result's last B rows
    const cT = f.seq ? f.scratch : f.cs[T]!;
    const rows = f.seq ? q.fresh() : f.scratch;
    be.permute(cT.buf, rows.buf, [H, B], [1, 0]);
    be.copy(rows.buf, 0, f.Y!.buf, T * n, n);
    return f.Y!;
  }
  if (q.gru) return f.Y!;
  if (q.bf) {
    const full = alloc([B, T + 1, H]);
    be.permute(f.HT.buf, full.buf, [H, T + 1, B], [2, 1, 0]);
    const out = alloc([B, T, H]);
    be.copyBlocks(full.buf, H, (T + 1) * H, out.buf, 0, T * H, T * H, B, false);
    return out;
  }
  const full = alloc([T + 1, B, H]);
  be.permute(f.HT.buf, full.buf, [H, T + 1, B], [1, 2, 0]);
  const out = alloc([T, B, H]);
  be.copy(full.buf, n, out.buf, 0, T * n);
  return out;
}

/** One step's gate gradient `src` into row block `row`, column block t of dG. */
function toDG(q: Seq, b: Backward, src: Tensor, row: number, t: number): void {
  q.be.copyBlocks(src.buf, 0, q.B, b.dG.buf, row * q.H * q.TB + t * q.B, q.TB, q.B, q.H, false);
}

/**
 * Backward through one LSTM step: the fused kernel writes the gates' pre-activation gradients into dG's column block
 * t and dc_prev; then dh_prev = W_hhᵀ·[da_i; da_f; da_g; da_o], one product for all gates, read from dG's block t.
 */
function lstmBackward(q: Seq, f: Forward, b: Backward, t: number): void {
  const { be, H, B, G, TB } = q;
  const [act, , tc] = f.steps[t] as LstmStep;
  const [dh, dc] = [b.dh.buf, b.dc!.buf];
  be.lstmCellGrad(
    act.buf,
    f.cs[t]!.buf,
    tc.buf,
    dh,
    b.gOut.buf,
    yOff(q, t),
    q.ldy,
    dc,
    b.dG.buf,
    t * B,
    TB,
    b.dcNext!.buf,
    H,
    B,
  );
  be.sgemm(true, false, H, B, G * H, 1, q.whh.buf, 0, H, b.dG.buf, t * B, TB, 0, b.dhNext.buf, 0, B);
  [b.dc, b.dcNext] = [b.dcNext, b.dc];
}

/**
 * Backward through one GRU step: the fused kernel writes the gradients of r's, z's and n's pre-activations and of hn
 * into dG's column block t (rows 0..4H) and dh_prev = dh ⊙ z (the direct path); then dh_prev += W_hr,zᵀ·[da_r; da_z]
 * + W_hnᵀ·d hn, read from dG's block t.
 */
function gruBackward(q: Seq, f: Forward, b: Backward, t: number): void {
  const { be, H, B, TB, W } = q;
  const [act, hn] = f.steps[t] as GruStep;
  be.gruCellGrad(
    act.buf,
    hn.buf,
    f.HT.buf,
    q.hRow * W + t * B,
    W,
    b.dh.buf,
    b.gOut.buf,
    yOff(q, t),
    q.ldy,
    b.dG.buf,
    t * B,
    TB,
    b.dhNext.buf,
    H,
    B,
  );
  be.sgemm(true, false, H, B, 2 * H, 1, q.whh.buf, 0, H, b.dG.buf, t * B, TB, 1, b.dhNext.buf, 0, B);
  be.sgemm(true, false, H, B, H, 1, q.whh.buf, 2 * H * H, H, b.dG.buf, 3 * H * TB + t * B, TB, 1, b.dhNext.buf, 0, B);
}

/** Backward through one vanilla RNN step. */
function rnnBackward(q: Seq, f: Forward, b: Backward, t: number): void {
  const [a, h] = f.steps[t] as [Tensor, Tensor];
  const { H, B, be } = q;
  const da = b.da!;
  q.k.grad(q.mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf, b.dh.buf, da.buf);
  toDG(q, b, da, 0, t);
  be.sgemm(true, false, H, B, H, 1, q.whh.buf, 0, H, da.buf, 0, B, 0, b.dhNext.buf, 0, B);
}

/**
 * The backward through time, from the last step to the first: fills dG and leaves the gradient reaching h_0 (and
 * c_0) in `dh` (`dc`); the tap, when given, gets ‖∂L/∂h_t‖² of the steps it wants.
 */
function backwardThroughTime(q: Seq, f: Forward, gOut: Tensor, tap: TimeTap | null): Backward {
  const { be, T, B, H, n } = q;
  // the LSTM and GRU kernels add the output's gradient themselves, read from gOut; the vanilla RNN's step adds it from
  // a transposed copy
  const cell = q.lstm || q.gru;
  const gT = cell ? null : alloc([H, q.TB]);
  if (gT) {
    if (q.bf) be.permute(gOut.buf, gT.buf, [B, T, H], [2, 1, 0]);
    else be.permute(gOut.buf, gT.buf, [T, B, H], [2, 0, 1]);
  }
  const dG = alloc([dgRows(q) * H, q.TB]);
  const dh = q.fresh();
  const dhNext = q.fresh();
  be.fill(dh.buf, 0, n);
  const dc = q.lstm ? q.fresh() : null;
  const dcNext = q.lstm ? q.fresh() : null;
  if (dc) {
    // c_T's gradient, block T (zeros where gOut is the outputs' alone: `lstmOutputs`)
    if (gOut.size > T * n) {
      be.copy(gOut.buf, T * n, dhNext.buf, 0, n);
      be.permute(dhNext.buf, dc.buf, [B, H], [1, 0]);
    } else be.fill(dc.buf, 0, n);
  }
  const da = cell ? null : q.fresh();
  const b: Backward = { gOut, gT, dG, dh, dhNext, dc, dcNext, da };
  const stepFn = q.lstm ? lstmBackward : q.gru ? gruBackward : rnnBackward;
  for (let t = T - 1; t >= 0; t--) {
    // dh += dL/dy_t (the LSTM and GRU kernels do it, leaving the sum in dh)
    if (gT) be.copyBlocks(gT.buf, t * B, q.TB, b.dh.buf, 0, B, B, H, true);
    stepFn(q, f, b, t);
    // rounded to float32 as the fused backward stores it (lstmSeqGrad, gruSeqGrad): the same record either way
    if (tap?.wants(t, T)) tap.record(t, T, Math.fround(be.sumSquares(b.dh.buf, n)));
    [b.dh, b.dhNext] = [b.dhNext, b.dh];
  }
  return b;
}

/**
 * The gradients of x, W_ih and W_hh: whole-sequence products with dG (dx = dGᵀ·W_ih, dW_ih = dG·X, dW_hh = dG·Hᵀ).
 * Where `sums` is given and both weights' gradients are wanted, the products also take dG's row sums into it (the
 * biases' gradients, `sgemmRowSums`: the bits of `biasGrads`' sumAxis, without a second pass over dG); returns
 * whether they did.
 */
function matrixGrads(
  q: Seq,
  f: Forward,
  dG: Tensor,
  x: Tensor,
  wih: Tensor,
  needs: readonly boolean[],
  sums: Tensor | null,
): [Tensor | null, Tensor | null, Tensor | null, boolean] {
  const { be, H, TB, In, W } = q;
  const GH = q.G * H;
  const res: [Tensor | null, Tensor | null, Tensor | null, boolean] = [null, null, null, false];
  if (needs[0]) {
    // rows (t, b): x's own layout time-major, permuted into [B, T, In] batch first
    const dx = alloc(x.shape);
    const rows = q.bf ? alloc([TB, In]) : dx;
    be.sgemm(true, false, TB, In, GH, 1, dG.buf, 0, TB, wih.buf, 0, In, 0, rows.buf, 0, In);
    if (q.bf) be.permute(rows.buf, dx.buf, [q.T, q.B, In], [1, 0, 2]);
    res[0] = dx;
  }
  const [Z, zh, zx] = [f.HT.buf, q.hRow * W, q.xRow * W];
  if (needs[1] && needs[2]) {
    // [dW_hh | dW_ih] = dG·[H; X]ᵀ, one product over Z's adjacent rows of the states and the inputs (dG packed once,
    // not once per weight; each element's sum runs over the same T·B columns in the same order as in two products).
    // GRU: so for r and z; n's input part and hn's hidden part (the reset gate sits between W_hn·h and n) apart
    // with `sums`, every row of dG goes through one of these products (GRU: r and z, n, hn), which sum them
    const rows = q.gru ? 2 * H : GH;
    const both = alloc([rows, H + In]);
    res[2] = alloc(q.whh.shape);
    res[1] = alloc(wih.shape);
    if (q.gru) {
      // n's rows of dW_ih and hn's of dW_hh written in place, r's and z's into `both` (gruWeightGrads)
      const s = sums ?? both;
      be.gruWeightGrads(dG.buf, TB, Z, zh, W, H, In, both.buf, res[1].buf, res[2].buf, s.buf, sums !== null);
    } else if (sums) be.sgemmRowSums(rows, H + In, TB, dG.buf, 0, Z, zh, W, both.buf, 0, H + In, sums.buf, 0);
    else be.sgemm(false, true, rows, H + In, TB, 1, dG.buf, 0, TB, Z, zh, W, 0, both.buf, 0, H + In);
    be.copyBlocks(both.buf, 0, H + In, res[2].buf, 0, H, H, rows, false);
    be.copyBlocks(both.buf, H, H + In, res[1].buf, 0, In, In, rows, false);
    res[3] = sums !== null;
    return res;
  }
  if (needs[1]) {
    // dG·Xᵀ with X read from Z's rows (x_t in column block t, whatever x's layout)
    res[1] = alloc(wih.shape);
    be.sgemm(false, true, GH, In, TB, 1, dG.buf, 0, TB, Z, zx, W, 0, res[1].buf, 0, In);
  }
  if (needs[2]) {
    const gw = alloc(q.whh.shape);
    if (q.gru) {
      be.sgemm(false, true, 2 * H, H, TB, 1, dG.buf, 0, TB, Z, zh, W, 0, gw.buf, 0, H);
      be.sgemm(false, true, H, H, TB, 1, dG.buf, 3 * H * TB, TB, Z, zh, W, 0, gw.buf, 2 * H * H, H);
    } else be.sgemm(false, true, GH, H, TB, 1, dG.buf, 0, TB, Z, zh, W, 0, gw.buf, 0, H);
    res[2] = gw;
  }
  return res;
}

/**
 * The gradients of b_ih and b_hh (null where not wanted): dG's row sums (GRU: b_hn's from rows 3H..4H), in `sums`
 * (`given`, [dgRows·H]) where `summed` (the weight gradients' products took them), else taken here.
 */
function biasGrads(
  q: Seq,
  dG: Tensor,
  wantIh: boolean,
  wantHh: boolean,
  given: Tensor | null,
  summed: boolean,
): [Tensor | null, Tensor | null] {
  if (!wantIh && !wantHh) return [null, null];
  const { be, H } = q;
  const GH = q.G * H;
  const sums = given ?? alloc([dgRows(q) * H]);
  if (!given || !summed) be.sumAxis(dG.buf, sums.buf, dgRows(q) * H, q.TB, 1);
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
 * One layer, one direction, over a whole sequence: x [T, B, in] → outputs [T, B, H] (batchFirst: [B, T, in] →
 * [B, T, H], written so by the step kernels, no permutes); for LSTM the result is [(T + 1)·B, H], the outputs' rows
 * and then c_T's B rows (one tensor, so one backward sees both; `lstmOutputs` takes the outputs without a copy).
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
  batchFirst = false,
): Tensor {
  const [d0, d1, In] = x.shape as [number, number, number];
  const [T, B] = batchFirst ? [d1, d0] : [d0, d1];
  const H = whh.shape[1]!;
  const be = x.storage.backend;
  const n = H * B;
  const nb = bih || bhh ? 1 : 0;
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
    bf: batchFirst,
    ldy: batchFirst ? T * H : H,
    nb,
    K: H + nb + In,
    hRow: mode === 'GRU' ? nb : 0,
    xRow: (mode === 'GRU' ? nb : 0) + H,
    oneRow: (mode === 'GRU' ? nb : 0) + H + In,
    be,
    k: new Kernels(be, n),
    whh,
    fresh: () => alloc([H, B]),
  };
  const inputs: Tensor[] = [x, wih, whh];
  const iBih = bih ? inputs.push(bih) - 1 : -1;
  const iBhh = bhh ? inputs.push(bhh) - 1 : -1;
  const iH0 = h0 ? inputs.push(h0) - 1 : -1;
  const iC0 = c0 ? inputs.push(c0) - 1 : -1;
  const record = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const tap = record ? timeTaps.current : null;
  const fused = (q.lstm || q.gru) && recurrentLoop.fused;
  const through = fused ? fusedThroughTime : forwardThroughTime;
  const Z = stackedInputs(q, x, !fused);
  const f = through(q, stackedWeights(q, wih, whh, bih, bhh), Z, x, h0, c0, record);
  const out = outputsOf(q, f);
  return fromOp(
    mode.toLowerCase(),
    out.storage,
    out.shape,
    inputs,
    (gOut, needs) => {
      const b = f.seq ? fusedBackward(q, f, gOut, tap) : backwardThroughTime(q, f, gOut, tap);
      const res: (Tensor | null)[] = inputs.map(() => null);
      const want = (i: number) => i >= 0 && needs[i] === true;
      const sums = want(iBih) || want(iBhh) ? alloc([dgRows(q) * q.H]) : null;
      const [dx, dwih, dwhh, summed] = matrixGrads(q, f, b.dG, x, wih, needs, sums);
      [res[0], res[1], res[2]] = [dx, dwih, dwhh];
      const [gih, ghh] = biasGrads(q, b.dG, want(iBih), want(iBhh), sums, summed);
      if (gih) res[iBih] = gih;
      if (ghh) res[iBhh] = ghh;
      if (want(iH0)) res[iH0] = untranspose(q, b.dh);
      if (want(iC0)) res[iC0] = untranspose(q, b.dc!);
      return res;
    },
    q.lstm ? sumResultGrads : undefined,
  );
}

/**
 * The outputs of an LSTM layer's result [(T + 1)·B, H] (the rows before c_T's last B), as a tensor of `shape`
 * ([T, B, H], or [B, T, H] batch first) on the same storage, so no copy forward; backward, the outputs' gradient is
 * handed on as it is, T·B·H elements without c_T's rows, which the LSTM's backward reads as zeros (no copy of the
 * outputs' gradient into a result-sized buffer, 3.3 MB for the bench's row).
 */
export function lstmOutputs(res: Tensor, shape: readonly number[]): Tensor {
  return fromOp('lstmOutputs', res.storage, shape, [res], (g) => [g]);
}

/**
 * The LSTM op's sum of two gradients of its result (fromOp's sumGrads), where either may be the outputs' alone
 * (`lstmOutputs`, T·B·H elements: c_T's rows zero): the longer one's copy with the shorter added over its elements,
 * the bits of the sum of the two as full-size gradients (x + 0 is x, and the float32 add commutes).
 */
function sumResultGrads(a: Tensor, b: Tensor): Tensor {
  const [long, short] = a.size >= b.size ? [a, b] : [b, a];
  const be = long.storage.backend;
  const out = alloc(long.shape);
  be.copy(long.buf, 0, out.buf, 0, long.size);
  be.axpy(1, short.buf, out.buf, short.size);
  return out;
}
