/**
 * The recurrent op's sequence (recurrent.ts): one call's sizes and buffers, shared by its forward and backward, and the
 * LSTM's and the GRU's loops over time as one kernel call each way (lstmSeq/lstmSeqGrad, gruSeq/gruSeqGrad: per step
 * the product(s) and the cell kernel that recurrent.ts's step functions call, made by the kernel instead, so that a
 * step costs no JavaScript round trip and no buffers of its own).
 */
import type { Backend, Buf, Unary } from '../../backend/types.js';
import type { Tensor } from '../tensor.js';
import { alloc } from './util.js';

/** The cell a recurrent layer runs. */
export type RecurrentMode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

/** Gates per cell: W_ih and W_hh have G·hidden rows. */
export const GATES: Record<RecurrentMode, number> = { RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3 };

/**
 * Receives ‖∂L/∂h_t‖², the squared norm of the whole gradient reaching the hidden state of step t (from the loss at
 * t and from every later step), on the steps it `wants`, while the backward through time runs: the monitor's
 * through-time record (monitor/through-time.ts). Off by default; it costs one reduction per wanted step.
 */
export interface TimeTap {
  wants(t: number, T: number): boolean;
  record(t: number, T: number, sumSquares: number): void;
}

/** Elementwise helpers over [hidden, batch] buffers of n elements (the vanilla RNN's step). */
export class Kernels {
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

/** One call's sizes, weights and backend, shared by the forward and the backward. */
export interface Seq {
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
  /** Whether x and the outputs are batch first ([B, T, ·]) rather than time-major ([T, B, ·]). */
  bf: boolean;
  /** The distance between two batch rows of the outputs: H time-major, T·H batch first. */
  ldy: number;
  /** 1 where there are biases (Z has a row of ones), else 0. */
  nb: number;
  /** H + nb + In, the rows of Z and the columns of the stacked weights. */
  K: number;
  /**
   * Z's first row of the states, of the inputs and its row of ones (where nb = 1): the LSTM and the vanilla RNN
   * stack [h; x; 1] (hRow 0, xRow H, oneRow H + In), so that the states and the inputs are adjacent rows and dW_hh
   * and dW_ih are one product over them; the GRU stacks [1; h; x; 1] (hRow nb), a second row of ones before h, as
   * hn = W_hn·h + b_hn needs ones beside h and its n gate's input part W_in·x + b_in beside x.
   */
  hRow: number;
  xRow: number;
  oneRow: number;
  be: Backend;
  k: Kernels;
  whh: Tensor;
  /** A new [H, B] buffer. */
  fresh: () => Tensor;
}

/** What the forward pass keeps: the stacked states and inputs, every state, and each step's buffers (when recorded). */
export interface Forward {
  /** The weights stacked as Z's rows (`stackedWeights`). */
  wc: Tensor;
  /**
   * Z (`stackedInputs`): its H rows from `Seq.hRow` are the hidden states transposed, [H, (T + 1)·B] with row length
   * (T + 1)·B, h_0 in block 0; the products and kernels that read and write the states address them there.
   */
  HT: Tensor;
  /** LSTM and GRU: one step's pre-activations, [G·H, B] (the step's product writes them, the cell kernel reads). */
  P: Tensor | null;
  /** LSTM and GRU: the layer's result, which their step kernels fill: [T, B, H]; LSTM [T + 1, B, H], c_T in block T. */
  Y: Tensor | null;
  hs: Tensor[];
  cs: Tensor[];
  steps: Tensor[][];
  scratch: Tensor;
  /** The loop as one kernel call (`fusedThroughTime`): the blocks it keeps, per step when recorded (null: per step). */
  seq: SeqBlocks | null;
}

/**
 * What the LSTM's and the GRU's loop kernels (lstmSeq, gruSeq) keep for their backward: every step's gate activations
 * `act` ([T, G, H, B]), the LSTM's c_0..c_T (`c`, [T + 1, H, B]) and tanh(c_t) (`tc`), the GRU's hn (`hn`, [T, H, B]);
 * one block each (c two) when nothing is recorded.
 */
export interface SeqBlocks {
  act: Tensor;
  c: Tensor | null;
  tc: Tensor | null;
  hn: Tensor | null;
}

/**
 * Whether the LSTM's and the GRU's loops over time run as one kernel call each way (lstmSeq/lstmSeqGrad,
 * gruSeq/gruSeqGrad) rather than as a product and a cell kernel per step from here; the same calls either way, so
 * the same bits (tests compare the two). With the through-time tap the fused backward also keeps every step's gradient
 * reaching h, for the tap to read afterwards.
 */
export const recurrentLoop = { fused: true };

/** A [B, H] state transposed to [H, B] (zeros for null). */
export function transposeIn(q: Seq, t: Tensor | null): Tensor {
  const out = q.fresh();
  if (t) q.be.permute(t.buf, out.buf, [q.B, q.H], [1, 0]);
  else q.be.fill(out.buf, 0, q.n);
  return out;
}

/** Where the outputs of step t start: block t of [T, B, H], or row t of each batch's [T, H] batch first. */
export const yOff = (q: Seq, t: number) => (q.bf ? t * q.H : t * q.n);

/**
 * The LSTM's or the GRU's forward pass through time as one kernel call (lstmSeq, gruSeq): the products and cell
 * kernels of `lstmForward`/`gruForward` per step, in the kernel; each step's buffers are blocks of `f.seq`.
 */
export function fusedThroughTime(
  q: Seq,
  wc: Tensor,
  Z: Tensor,
  x: Tensor,
  h0: Tensor | null,
  c0: Tensor | null,
  record: boolean,
): Forward {
  const { be, B, H, T, W, n } = q;
  be.copyBlocks(transposeIn(q, h0).buf, 0, B, Z.buf, q.hRow * W, W, B, H, false);
  const blocks = record ? T : 1;
  const f: Forward = {
    wc,
    HT: Z,
    P: alloc([q.G * H, B]),
    Y: q.lstm ? alloc([(T + 1) * B, H]) : alloc(q.bf ? [B, T, H] : [T, B, H]),
    hs: [],
    cs: [],
    steps: [],
    scratch: q.fresh(),
    seq: {
      act: alloc([blocks, q.G, H, B]),
      c: q.lstm ? alloc([record ? T + 1 : 2, H, B]) : null,
      tc: q.lstm ? alloc([blocks, H, B]) : null,
      hn: q.gru ? alloc([blocks, H, B]) : null,
    },
  };
  const s = f.seq!;
  const yStep = q.bf ? H : n;
  // x_t's rows: [B, T, In] batch first, [T, B, In] time-major
  const [xStep, ldx] = q.bf ? [q.In, T * q.In] : [B * q.In, q.In];
  if (s.c) {
    // c_0 into block 0
    if (c0) be.permute(c0.buf, s.c.buf, [B, H], [1, 0]);
    else be.fill(s.c.buf, 0, n);
    be.lstmSeq(
      wc.buf,
      q.K,
      Z.buf,
      W,
      x.buf,
      xStep,
      ldx,
      q.In,
      f.P!.buf,
      s.c.buf,
      s.act.buf,
      s.tc!.buf,
      f.Y!.buf,
      yStep,
      q.ldy,
      record,
      T,
      H,
      B,
    );
    // c_T into the scratch state, where outputsOf takes it
    be.copy(s.c.buf, (record ? T : T & 1) * n, f.scratch.buf, 0, n);
  } else {
    const { act, hn } = s;
    be.gruSeq(
      wc.buf,
      q.K,
      q.nb,
      Z.buf,
      W,
      x.buf,
      xStep,
      ldx,
      q.In,
      f.P!.buf,
      hn!.buf,
      act.buf,
      f.Y!.buf,
      yStep,
      q.ldy,
      record,
      T,
      H,
      B,
    );
  }
  return f;
}

/** The backward pass's running state: the gradient reaching h (and c) and the gate gradients of every step. */
export interface Backward {
  /** The output gradients as given, in the layout of the outputs (the LSTM and GRU kernels read them from there). */
  gOut: Tensor;
  /** The vanilla RNN's: the output gradients transposed like the states, [H, T·B]. */
  gT: Tensor | null;
  /** The gate pre-activations' gradients of the whole sequence, [rows·H, T·B]. */
  dG: Tensor;
  dh: Tensor;
  dhNext: Tensor;
  dc: Tensor | null;
  dcNext: Tensor | null;
  /** The vanilla RNN's pre-activation gradient of one step (the LSTM and GRU kernels write into dG). */
  da: Tensor | null;
}

/** Gate rows of dG: GRU keeps the gradient of W_hn·h + b_hn (rows 3H..4H) apart from that of the n gate. */
export const dgRows = (q: Seq) => (q.gru ? 4 : q.G);

/**
 * The LSTM's or the GRU's backward through time as one kernel call (lstmSeqGrad, gruSeqGrad), on the blocks that
 * `fusedThroughTime` kept: fills dG and leaves the gradient reaching h_0 (and c_0) in `dh` (`dc`), as
 * `backwardThroughTime` does.
 */
export function fusedBackward(q: Seq, f: Forward, gOut: Tensor, tap: TimeTap | null): Backward {
  const { be, T, B, H, n, TB, ldy } = q;
  const s = f.seq!;
  const dG = alloc([dgRows(q) * H, TB]);
  // two states each way: block 0 holds the gradient after the last step, and on return the one reaching step 0
  const dh = alloc([2, H, B]);
  be.fill(dh.buf, 0, n);
  const yStep = q.bf ? H : n;
  // with a tap, every step's ‖dh_t‖² (the tap then records the steps it wants, as the per-step loop did during)
  const dhss = tap ? alloc([T]) : dh;
  let dc: Tensor | null = null;
  if (q.lstm) {
    // c_T's gradient, the result's last B rows, transposed into block 0 (zeros where gOut is the outputs' alone:
    // `lstmOutputs` hands their gradient on without c_T's rows)
    dc = alloc([2, H, B]);
    if (gOut.size > T * n) {
      const rows = q.fresh();
      be.copy(gOut.buf, T * n, rows.buf, 0, n);
      be.permute(rows.buf, dc.buf, [B, H], [1, 0]);
    } else be.fill(dc.buf, 0, n);
    const [act, c, tc] = [s.act.buf, s.c!.buf, s.tc!.buf];
    be.lstmSeqGrad(q.whh.buf, act, c, tc, dh.buf, gOut.buf, yStep, ldy, dc.buf, dG.buf, TB, dhss.buf, !!tap, T, H, B);
  } else {
    const [act, hn, Z] = [s.act.buf, s.hn!.buf, f.HT.buf];
    be.gruSeqGrad(
      q.whh.buf,
      act,
      hn,
      Z,
      q.hRow * q.W,
      q.W,
      dh.buf,
      gOut.buf,
      yStep,
      ldy,
      dG.buf,
      TB,
      dhss.buf,
      !!tap,
      T,
      H,
      B,
    );
  }
  if (tap) recordTimes(q, tap, dhss);
  return { gOut, gT: null, dG, dh, dhNext: dh, dc, dcNext: dc, da: null };
}

/** ‖∂L/∂h_t‖² of the steps the tap wants, from the last to the first (as the per-step loop recorded them). */
function recordTimes(q: Seq, tap: TimeTap, dhss: Tensor): void {
  const T = q.T;
  const d = dhss.data;
  for (let t = T - 1; t >= 0; t--) if (tap.wants(t, T)) tap.record(t, T, d[t]!);
}
