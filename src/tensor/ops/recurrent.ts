/**
 * The recurrent layers' op: one layer, one direction of an RNN, LSTM or GRU over a whole sequence, forward and a
 * hand-written backward through time, on the backend's kernels (nn/rnn.ts builds the layers from it).
 *
 * - the input projection of the whole sequence is one matrix product, W_ih·Xᵀ for all T·B columns at once;
 * - per step, only the recurrent product W_hh·h and the gate nonlinearities run, through the backend's sgemm and its
 *   sigmoid/tanh kernels; the LSTM's step is one fused kernel each way (lstmCell, lstmCellGrad) that reads the
 *   pre-activations from P's column block and writes h into HT's, and the gate gradients into dG's, so that its
 *   recurrent products read and write those matrices in place (a leading dimension apart) with no copies;
 * - backward, the weight gradients are again whole-sequence products (dW_ih = dG·X, dW_hh = dG·Hᵀ).
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

/** Elementwise helpers over [hidden, batch] buffers of n elements (the plain RNN's step). */
class Kernels {
  constructor(
    readonly be: Backend,
    readonly n: number,
  ) {}
  act(op: Unary, x: Buf, out: Buf): void {
    this.be.unary(op, x, out, this.n, 0, 0);
  }
  /** gx = gy·f'(x) where y = f(x). */
  grad(op: Unary, x: Buf, y: Buf, gy: Buf, gx: Buf): void {
    this.be.unaryGrad(op, x, y, gy, gx, this.n, 0, 0);
  }
}

/** An LSTM step's buffers: the gates i, f, g, o [4, H, B] (the lstmCell kernel's act), c and tanh(c). */
type LstmStep = [Tensor, Tensor, Tensor];
/** A GRU step's buffers: r, z and n [3, H, B] (the gruCell kernel's act) and hn = W_hn·h_prev + b_hn. */
type GruStep = [Tensor, Tensor];

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
  const G = GATES[mode];
  const n = H * B;
  const TB = T * B;
  const W = (T + 1) * B; // row length of HT: column block t holds h_{t-1}ᵀ
  const be = x.storage.backend;
  const k = new Kernels(be, n);
  const lstm = mode === 'LSTM';
  const gru = mode === 'GRU';
  const inputs: Tensor[] = [x, wih, whh];
  const iBih = bih ? inputs.push(bih) - 1 : -1;
  const iBhh = bhh ? inputs.push(bhh) - 1 : -1;
  const iH0 = h0 ? inputs.push(h0) - 1 : -1;
  const iC0 = c0 ? inputs.push(c0) - 1 : -1;
  const record = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  const tap = record ? timeTaps.current : null;
  const fresh = () => alloc([H, B]);
  // when nothing is recorded, two alternating sets of step buffers serve the whole sequence
  const spare: Tensor[][] = [[], []];
  const stepBufs = (t: number, count: number): Tensor[] => {
    if (record) return Array.from({ length: count }, fresh);
    const set = spare[t % 2]!;
    while (set.length < count) set.push(fresh());
    return set;
  };
  // a GRU step's: the three gates [3, H, B] and hn
  const gruBufs = (t: number): Tensor[] => {
    if (record) return [alloc([3, H, B]), fresh()];
    const set = spare[t % 2]!;
    if (set.length === 0) set.push(alloc([3, H, B]), fresh());
    return set;
  };
  // an LSTM step's: the four gates [4, H, B], c and tanh(c)
  const lstmBufs = (t: number): Tensor[] => {
    if (record) return [alloc([4, H, B]), fresh(), fresh()];
    const set = spare[t % 2]!;
    if (set.length === 0) set.push(alloc([4, H, B]), fresh(), fresh());
    return set;
  };

  // input projection of the whole sequence with the biases folded in: P [G·H, T·B]
  const P = alloc([G * H, TB]);
  const hasBias = !!(bih || bhh);
  if (hasBias) {
    // b_ih + b_hn per row (GRU: b_hn sits inside r ⊙ (W_hn h + b_hn), so it is not folded here), broadcast along it
    const v = alloc([G * H]);
    if (bih) be.copy(bih.buf, 0, v.buf, 0, G * H);
    else be.fill(v.buf, 0, G * H);
    if (bhh) be.copyBlocks(bhh.buf, 0, 0, v.buf, 0, 0, gru ? 2 * H : G * H, 1, true);
    be.binary(Binary.Add, v.buf, zeroScalar(be), P.buf, [G * H, TB], [1, 0], [0, 0]);
  }
  be.sgemm(false, true, G * H, TB, In, 1, wih.buf, 0, In, x.buf, 0, In, hasBias ? 1 : 0, P.buf, 0, TB);

  const transposeIn = (t: Tensor | null): Tensor => {
    const out = fresh();
    if (t) be.permute(t.buf, out.buf, [B, H], [1, 0]);
    else be.fill(out.buf, 0, n);
    return out;
  };
  const HT = alloc([H, W]);
  const h0T = transposeIn(h0);
  be.copyBlocks(h0T.buf, 0, B, HT.buf, 0, W, B, H, false);
  const c0T = lstm ? transposeIn(c0) : null;
  // GRU: b_hn broadcast over the batch (zeros without biases), the starting value of W_hn·h + b_hn
  let bhn: Tensor | null = null;
  if (gru) {
    bhn = fresh();
    if (bhh) {
      const b = alloc([H]);
      be.copy(bhh.buf, 2 * H, b.buf, 0, H);
      be.binary(Binary.Add, b.buf, zeroScalar(be), bhn.buf, [H, B], [1, 0], [0, 0]);
    } else be.fill(bhn.buf, 0, n);
  }
  // the plain RNN's pre-activations at step t: P's column block t plus W_hh·h_prev (the LSTM and GRU add the
  // product into P's block in place, below)
  const Gt = lstm || gru ? null : alloc([G * H, B]);
  const preactivations = (t: number, prev: Tensor) => {
    be.copyBlocks(P.buf, t * B, TB, Gt!.buf, 0, B, B, G * H, false);
    be.sgemm(false, false, G * H, B, H, 1, whh.buf, 0, H, prev.buf, 0, B, 1, Gt!.buf, 0, B);
  };
  const gateOut = (gate: number, out: Tensor) => be.copy(Gt!.buf, gate * n, out.buf, 0, n);

  // per-step tensors kept for the backward pass
  const steps: Tensor[][] = [];
  const hs: Tensor[] = [h0T];
  const cs: Tensor[] = lstm ? [c0T!] : [];
  const scratch = fresh();
  for (let t = 0; t < T; t++) {
    const hPrev = hs[t]!;
    let s: Tensor[];
    if (lstm) {
      s = lstmBufs(t);
      const [act, c, tc] = s as LstmStep;
      // the pre-activations in P's column block t: P_t += W_hh·h_{t-1}, h_{t-1} read from HT's block t
      be.sgemm(false, false, G * H, B, H, 1, whh.buf, 0, H, HT.buf, t * B, W, 1, P.buf, t * B, TB);
      // the gates, c = f ⊙ c_prev + i ⊙ g and h = o ⊙ tanh(c), h written into HT's block t + 1
      be.lstmCell(P.buf, t * B, TB, cs[t]!.buf, act.buf, c.buf, tc.buf, HT.buf, (t + 1) * B, W, H, B);
      cs.push(c);
      hs.push(HT); // h_t lives in HT's block t + 1
    } else if (gru) {
      s = gruBufs(t);
      const [act, hn] = s as GruStep;
      // r's and z's pre-activations in P's column block t: += W_hr,z·h_{t-1}, read from HT's block t
      be.sgemm(false, false, 2 * H, B, H, 1, whh.buf, 0, H, HT.buf, t * B, W, 1, P.buf, t * B, TB);
      // hn = W_hn·h_{t-1} + b_hn
      be.copy(bhn!.buf, 0, hn.buf, 0, n);
      be.sgemm(false, false, H, B, H, 1, whh.buf, 2 * H * H, H, HT.buf, t * B, W, 1, hn.buf, 0, B);
      // r, z, n = tanh(W_in·x + b_in + r ⊙ hn) and h = z ⊙ (h_prev − n) + n, h written into HT's block t + 1
      be.gruCell(P.buf, t * B, TB, hn.buf, HT.buf, t * B, HT.buf, (t + 1) * B, W, act.buf, H, B);
      hs.push(HT); // h_t lives in HT's block t + 1
    } else {
      s = stepBufs(t, 2);
      const [a, h] = s as [Tensor, Tensor];
      preactivations(t, hPrev);
      gateOut(0, a);
      k.act(mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf);
      hs.push(h);
    }
    if (!lstm && !gru) be.copyBlocks(hs[t + 1]!.buf, 0, B, HT.buf, (t + 1) * B, W, B, H, false);
    if (record) steps.push(s);
  }

  // outputs [T, B, H] from HT's blocks 1..T; LSTM: [T + 1, B, H] with c_T in block 0
  const full = alloc([T + 1, B, H]);
  be.permute(HT.buf, full.buf, [H, T + 1, B], [1, 2, 0]);
  let out: Tensor;
  if (lstm) {
    be.permute(cs[T]!.buf, scratch.buf, [H, B], [1, 0]);
    be.copy(scratch.buf, 0, full.buf, 0, n);
    out = full;
  } else {
    out = alloc([T, B, H]);
    be.copy(full.buf, n, out.buf, 0, T * n);
  }
  const off = lstm ? 1 : 0;
  const outShape = out.shape;
  return fromOp(mode.toLowerCase(), out.storage, outShape, inputs, (gOut, needs) => {
    const GW = (T + off) * B;
    // gT [H, T + off, B]: the output gradients, transposed like the states
    const gT = alloc([H, GW]);
    be.permute(gOut.buf, gT.buf, [T + off, B, H], [2, 0, 1]);
    const rows = gru ? 4 : G; // GRU keeps the gradient of W_hn·h + b_hn (rows 3H..4H) apart from that of the n gate
    const dG = alloc([rows * H, TB]);
    let dh = fresh();
    let dhNext = fresh();
    be.fill(dh.buf, 0, n);
    let dc = lstm ? fresh() : null;
    let dcNext = lstm ? fresh() : null;
    if (dc) be.copyBlocks(gT.buf, 0, GW, dc.buf, 0, B, B, H, false);
    const da = lstm || gru ? null : fresh(); // the plain RNN's pre-activation gradient of one step
    const toDG = (src: Tensor, row: number, t: number) =>
      be.copyBlocks(src.buf, 0, B, dG.buf, row * H * TB + t * B, TB, B, H, false);
    for (let t = T - 1; t >= 0; t--) {
      // dh += dL/dy_t
      be.copyBlocks(gT.buf, (t + off) * B, GW, dh.buf, 0, B, B, H, true);
      if (tap?.wants(t, T)) tap.record(t, T, be.sumSquares(dh.buf, n));
      const s = steps[t]!;
      if (lstm) {
        const [act, , tc] = s as LstmStep;
        // the gates' pre-activation gradients into dG's column block t, and dc_prev
        be.lstmCellGrad(act.buf, cs[t]!.buf, tc.buf, dh.buf, dc!.buf, dG.buf, t * B, TB, dcNext!.buf, H, B);
        // dh_prev = W_hhᵀ·[da_i; da_f; da_g; da_o], one product for all gates, read from dG's block t
        be.sgemm(true, false, H, B, G * H, 1, whh.buf, 0, H, dG.buf, t * B, TB, 0, dhNext.buf, 0, B);
        [dc, dcNext] = [dcNext, dc];
      } else if (gru) {
        const [act, hn] = s as GruStep;
        // the gradients of r's, z's and n's pre-activations and of hn into dG's column block t; dh_prev = dh ⊙ z
        be.gruCellGrad(act.buf, hn.buf, HT.buf, t * B, W, dh.buf, dG.buf, t * B, TB, dhNext.buf, H, B);
        // dh_prev += W_hr,zᵀ·[da_r; da_z] + W_hnᵀ·d hn, read from dG's block t (rows 0..2H and 3H..4H)
        be.sgemm(true, false, H, B, 2 * H, 1, whh.buf, 0, H, dG.buf, t * B, TB, 1, dhNext.buf, 0, B);
        be.sgemm(true, false, H, B, H, 1, whh.buf, 2 * H * H, H, dG.buf, 3 * H * TB + t * B, TB, 1, dhNext.buf, 0, B);
      } else {
        const [a, h] = s as [Tensor, Tensor];
        k.grad(mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf, dh.buf, da!.buf);
        toDG(da!, 0, t);
        be.sgemm(true, false, H, B, H, 1, whh.buf, 0, H, da!.buf, 0, B, 0, dhNext.buf, 0, B);
      }
      [dh, dhNext] = [dhNext, dh];
    }
    const res: (Tensor | null)[] = inputs.map(() => null);
    const GH = G * H;
    if (needs[0]) {
      const gx = alloc(x.shape);
      be.sgemm(true, false, TB, In, GH, 1, dG.buf, 0, TB, wih.buf, 0, In, 0, gx.buf, 0, In);
      res[0] = gx;
    }
    if (needs[1]) {
      const gw = alloc(wih.shape);
      be.sgemm(false, false, GH, In, TB, 1, dG.buf, 0, TB, x.buf, 0, In, 0, gw.buf, 0, In);
      res[1] = gw;
    }
    if (needs[2]) {
      const gw = alloc(whh.shape);
      if (gru) {
        be.sgemm(false, true, 2 * H, H, TB, 1, dG.buf, 0, TB, HT.buf, 0, W, 0, gw.buf, 0, H);
        be.sgemm(false, true, H, H, TB, 1, dG.buf, 3 * H * TB, TB, HT.buf, 0, W, 0, gw.buf, 2 * H * H, H);
      } else be.sgemm(false, true, GH, H, TB, 1, dG.buf, 0, TB, HT.buf, 0, W, 0, gw.buf, 0, H);
      res[2] = gw;
    }
    if ((iBih >= 0 && needs[iBih]) || (iBhh >= 0 && needs[iBhh])) {
      const sums = alloc([rows * H]);
      be.sumAxis(dG.buf, sums.buf, rows * H, TB, 1);
      if (iBih >= 0 && needs[iBih]) {
        const gb = alloc([GH]);
        be.copy(sums.buf, 0, gb.buf, 0, GH);
        res[iBih] = gb;
      }
      if (iBhh >= 0 && needs[iBhh]) {
        const gb = alloc([GH]);
        if (gru) {
          be.copy(sums.buf, 0, gb.buf, 0, 2 * H);
          be.copy(sums.buf, 3 * H, gb.buf, 2 * H, H);
        } else be.copy(sums.buf, 0, gb.buf, 0, GH);
        res[iBhh] = gb;
      }
    }
    const untranspose = (src: Tensor) => {
      const out = alloc([B, H]);
      be.permute(src.buf, out.buf, [H, B], [1, 0]);
      return out;
    };
    if (iH0 >= 0 && needs[iH0]) res[iH0] = untranspose(dh);
    if (iC0 >= 0 && needs[iC0]) res[iC0] = untranspose(dc!);
    return res;
  });
}
