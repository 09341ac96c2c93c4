/**
 * Recurrent layers `RNN`, `LSTM` and `GRU` with PyTorch's parameter names, layouts and gate orders
 * (`weight_ih_l0` [G·hidden, input], `weight_hh_l0` [G·hidden, hidden], `bias_ih_l0`, `bias_hh_l0`, `_reverse` for
 * the backward direction; LSTM gates i, f, g, o; GRU gates r, z, n), multi-layer, bidirectional, batchFirst.
 *
 * Each layer and direction is one op on the tape with a hand-written backward through time:
 * - the input projection of the whole sequence is one matrix product, W_ih·Xᵀ for all T·B columns at once;
 * - per step, only the recurrent product W_hh·h and the gate nonlinearities run, through the backend's sgemm and its
 *   sigmoid/tanh kernels;
 * - backward, the weight gradients are again whole-sequence products (dW_ih = dG·X, dW_hh = dG·Hᵀ).
 * NOTE: states live transposed, hidden × batch, so that every gate of a step is one contiguous block that the
 * elementwise kernels (which take whole buffers) can process without copies.
 */
import { type Backend, Binary, type Buf, Unary } from '../backend/types.js';
import { type RandomInit, resolveRng } from '../init/random.js';
import { dropout } from '../nn/functional.js';
import { concat, indexSelect, permute, reshape, slice, stack } from '../tensor/ops/shape.js';
import { alloc } from '../tensor/ops/util.js';
import type { Rng } from '../tensor/rng.js';
import { empty, fromOp, isGradEnabled, Tensor } from '../tensor/tensor.js';
import { checkSize } from './linear.js';
import { Module } from './module.js';

/** The cell a recurrent layer runs. */
export type RecurrentMode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

const GATES: Record<RecurrentMode, number> = { RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3 };

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

/**
 * One layer, one direction, over a whole sequence: x [T, B, in] → outputs [T, B, H]; for LSTM the result is
 * [T + 1, B, H] with c_T in block 0 and the outputs in blocks 1..T (one tensor, so one backward sees both).
 * h0 and c0 are [B, H] or null (zeros).
 */
function recurrentLayer(
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
  const fresh = () => alloc([H, B]);
  // when nothing is recorded, two alternating sets of step buffers serve the whole sequence
  const spare: Tensor[][] = [[], []];
  const stepBufs = (t: number, count: number): Tensor[] => {
    if (record) return Array.from({ length: count }, fresh);
    const set = spare[t % 2]!;
    while (set.length < count) set.push(fresh());
    return set;
  };

  // input projection of the whole sequence with the biases folded in: P [G·H, T·B]
  const P = alloc([G * H, TB]);
  const hasBias = !!(bih || bhh);
  if (hasBias) {
    const pd = P.data;
    const bi = bih?.data;
    const bh = bhh?.data;
    for (let r = 0; r < G * H; r++) {
      // GRU: b_hn sits inside r ⊙ (W_hn h + b_hn), so it is not folded here
      const v = (bi ? bi[r]! : 0) + (bh && !(gru && r >= 2 * H) ? bh[r]! : 0);
      pd.fill(v, r * TB, (r + 1) * TB);
    }
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
    const d = bhn.data;
    if (bhh) {
      const bh = bhh.data;
      for (let j = 0; j < H; j++) d.fill(bh[2 * H + j]!, j * B, (j + 1) * B);
    } else d.fill(0);
  }
  // the pre-activations of every gate at step t: P's column block t plus W_hh·h_prev, one product for all gates
  // (GRU: rows 2H..3H hold W_hn·h_prev + b_hn instead, which the n gate needs apart)
  const Gt = alloc([G * H, B]);
  const preactivations = (t: number, prev: Tensor) => {
    be.copyBlocks(P.buf, t * B, TB, Gt.buf, 0, B, B, gru ? 2 * H : G * H, false);
    if (bhn) be.copy(bhn.buf, 0, Gt.buf, 2 * n, n);
    be.sgemm(false, false, G * H, B, H, 1, whh.buf, 0, H, prev.buf, 0, B, 1, Gt.buf, 0, B);
  };
  const gateOut = (gate: number, out: Tensor) => be.copy(Gt.buf, gate * n, out.buf, 0, n);

  // per-step tensors kept for the backward pass
  const steps: Tensor[][] = [];
  const hs: Tensor[] = [h0T];
  const cs: Tensor[] = lstm ? [c0T!] : [];
  const scratch = fresh();
  for (let t = 0; t < T; t++) {
    const hPrev = hs[t]!;
    let s: Tensor[];
    if (lstm) {
      s = stepBufs(t, 11);
      const [ai, af, ag, ao, i, f, g, o, c, tc, h] = s as Tensor[] as [
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
        Tensor,
      ];
      preactivations(t, hPrev);
      gateOut(0, ai);
      gateOut(1, af);
      gateOut(2, ag);
      gateOut(3, ao);
      k.act(Unary.Sigmoid, ai.buf, i.buf);
      k.act(Unary.Sigmoid, af.buf, f.buf);
      k.act(Unary.Tanh, ag.buf, g.buf);
      k.act(Unary.Sigmoid, ao.buf, o.buf);
      // c = f ⊙ c_prev + i ⊙ g;  h = o ⊙ tanh(c)
      k.mul(f.buf, cs[t]!.buf, c.buf);
      k.mul(i.buf, g.buf, scratch.buf);
      be.axpy(1, scratch.buf, c.buf, n);
      k.act(Unary.Tanh, c.buf, tc.buf);
      k.mul(o.buf, tc.buf, h.buf);
      cs.push(c);
      hs.push(h);
    } else if (gru) {
      s = stepBufs(t, 8);
      const [ar, az, hn, an, r, z, nn, h] = s as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
      preactivations(t, hPrev);
      gateOut(0, ar);
      gateOut(1, az);
      gateOut(2, hn); // W_hn·h_prev + b_hn
      k.act(Unary.Sigmoid, ar.buf, r.buf);
      k.act(Unary.Sigmoid, az.buf, z.buf);
      // n = tanh(W_in·x + b_in + r ⊙ hn);  h = n + z ⊙ (h_prev − n) = (1 − z) ⊙ n + z ⊙ h_prev
      be.copyBlocks(P.buf, 2 * H * TB + t * B, TB, an.buf, 0, B, B, H, false);
      k.mul(r.buf, hn.buf, scratch.buf);
      be.axpy(1, scratch.buf, an.buf, n);
      k.act(Unary.Tanh, an.buf, nn.buf);
      k.sub(hPrev.buf, nn.buf, scratch.buf);
      k.mul(z.buf, scratch.buf, h.buf);
      be.axpy(1, nn.buf, h.buf, n);
      hs.push(h);
    } else {
      s = stepBufs(t, 2);
      const [a, h] = s as [Tensor, Tensor];
      preactivations(t, hPrev);
      gateOut(0, a);
      k.act(mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf);
      hs.push(h);
    }
    be.copyBlocks(hs[t + 1]!.buf, 0, B, HT.buf, (t + 1) * B, W, B, H, false);
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
    const s1 = fresh();
    const s2 = fresh();
    const da = [fresh(), fresh(), fresh(), fresh()] as [Tensor, Tensor, Tensor, Tensor];
    const toDG = (src: Tensor, row: number, t: number) =>
      be.copyBlocks(src.buf, 0, B, dG.buf, row * H * TB + t * B, TB, B, H, false);
    // the gate gradients of one step stacked [G·H, B], for the product with W_hh
    const dGt = G > 1 ? alloc([G * H, B]) : da[0];
    for (let t = T - 1; t >= 0; t--) {
      // dh += dL/dy_t
      be.copyBlocks(gT.buf, (t + off) * B, GW, dh.buf, 0, B, B, H, true);
      const s = steps[t]!;
      const hPrev = hs[t]!;
      if (lstm) {
        const [ai, af, ag, ao, i, f, g, o, c, tc] = s as [
          Tensor,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
          Tensor,
        ];
        // through h = o ⊙ tanh(c)
        k.mul(dh.buf, tc.buf, s1.buf);
        k.grad(Unary.Sigmoid, ao.buf, o.buf, s1.buf, da[3].buf);
        k.mul(dh.buf, o.buf, s1.buf);
        k.grad(Unary.Tanh, c.buf, tc.buf, s1.buf, s2.buf);
        be.axpy(1, s2.buf, dc!.buf, n);
        // through c = f ⊙ c_prev + i ⊙ g
        k.mul(dc!.buf, g.buf, s1.buf);
        k.grad(Unary.Sigmoid, ai.buf, i.buf, s1.buf, da[0].buf);
        k.mul(dc!.buf, cs[t]!.buf, s1.buf);
        k.grad(Unary.Sigmoid, af.buf, f.buf, s1.buf, da[1].buf);
        k.mul(dc!.buf, i.buf, s1.buf);
        k.grad(Unary.Tanh, ag.buf, g.buf, s1.buf, da[2].buf);
        k.mul(dc!.buf, f.buf, dcNext!.buf);
        for (let gate = 0; gate < 4; gate++) {
          toDG(da[gate]!, gate, t);
          be.copy(da[gate]!.buf, 0, dGt.buf, gate * n, n);
        }
        // dh_prev = W_hhᵀ·[da_i; da_f; da_g; da_o], one product for all gates
        be.sgemm(true, false, H, B, G * H, 1, whh.buf, 0, H, dGt.buf, 0, B, 0, dhNext.buf, 0, B);
        [dc, dcNext] = [dcNext, dc];
      } else if (gru) {
        const [ar, az, hn, an, r, z, nn] = s as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
        // through h = n + z ⊙ (h_prev − n)
        k.sub(hPrev.buf, nn.buf, s1.buf);
        k.mul(dh.buf, s1.buf, s2.buf);
        k.grad(Unary.Sigmoid, az.buf, z.buf, s2.buf, da[1].buf);
        k.mul(dh.buf, z.buf, dhNext.buf); // the direct path to h_prev
        k.sub(dh.buf, dhNext.buf, s1.buf); // dn = dh ⊙ (1 − z)
        k.grad(Unary.Tanh, an.buf, nn.buf, s1.buf, da[2].buf);
        // through n's pre-activation W_in·x + b_in + r ⊙ hn
        k.mul(da[2].buf, r.buf, da[3].buf); // d hn
        k.mul(da[2].buf, hn.buf, s1.buf);
        k.grad(Unary.Sigmoid, ar.buf, r.buf, s1.buf, da[0].buf);
        toDG(da[0], 0, t);
        toDG(da[1], 1, t);
        toDG(da[2], 2, t);
        toDG(da[3], 3, t);
        // dh_prev = dh ⊙ z + W_hhᵀ·[da_r; da_z; d hn]
        be.copy(da[0].buf, 0, dGt.buf, 0, n);
        be.copy(da[1].buf, 0, dGt.buf, n, n);
        be.copy(da[3].buf, 0, dGt.buf, 2 * n, n);
        be.sgemm(true, false, H, B, G * H, 1, whh.buf, 0, H, dGt.buf, 0, B, 1, dhNext.buf, 0, B);
      } else {
        const [a, h] = s as [Tensor, Tensor];
        k.grad(mode === 'RNN_TANH' ? Unary.Tanh : Unary.Relu, a.buf, h.buf, dh.buf, da[0].buf);
        toDG(da[0], 0, t);
        be.sgemm(true, false, H, B, H, 1, whh.buf, 0, H, da[0].buf, 0, B, 0, dhNext.buf, 0, B);
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

export interface RecurrentOptions extends RandomInit {
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** Whether the layers have biases b_ih and b_hh (default true). */
  bias?: boolean;
  /** Inputs and outputs are [batch, seq, feature] instead of [seq, batch, feature] (default false, as PyTorch). */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training (default 0). */
  dropout?: number;
  /** Run a second direction over the reversed sequence and concatenate the outputs (default false). */
  bidirectional?: boolean;
}

/** The output of `RNN` and `GRU`: every step's top-layer output, and each layer's last hidden state. */
export interface RecurrentOutput {
  /** [seq, batch, D·hidden] ([batch, seq, D·hidden] with batchFirst), D = 2 if bidirectional. */
  output: Tensor;
  /** [numLayers·D, batch, hidden]: the last hidden state of each layer and direction. */
  h: Tensor;
}

/** The output of `LSTM`: `RecurrentOutput` plus each layer's last cell state `c` [numLayers·D, batch, hidden]. */
export interface LSTMOutput extends RecurrentOutput {
  c: Tensor;
}

/** An initial state: `h` (and `c` for LSTM) of shape [numLayers·D, batch, hidden]; zeros when omitted. */
export interface RecurrentState {
  h?: Tensor;
  c?: Tensor;
}

abstract class RecurrentBase<Out extends RecurrentOutput> extends Module<Tensor, Out> {
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;
  /** The generator of the dropout masks between layers. */
  readonly rng: Rng;
  readonly #weights: { wih: Tensor; whh: Tensor; bih: Tensor | null; bhh: Tensor | null }[][] = [];

  constructor(
    readonly mode: RecurrentMode,
    readonly inputSize: number,
    readonly hiddenSize: number,
    opts: RecurrentOptions,
    private readonly fn: string,
  ) {
    super();
    checkSize(inputSize, 'inputSize', fn);
    checkSize(hiddenSize, 'hiddenSize', fn);
    this.numLayers = checkSize(opts.numLayers ?? 1, 'numLayers', fn);
    this.bias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = opts.dropout ?? 0;
    this.bidirectional = opts.bidirectional ?? false;
    if (!(this.dropout >= 0 && this.dropout <= 1))
      throw new RangeError(`${fn}: dropout must be in [0, 1], got ${opts.dropout}`);
    this.rng = resolveRng(opts, fn);
    const G = GATES[mode];
    const dirs = this.bidirectional ? 2 : 1;
    const bound = 1 / Math.sqrt(hiddenSize);
    for (let l = 0; l < this.numLayers; l++) {
      const layer = [];
      for (let d = 0; d < dirs; d++) {
        const sfx = `_l${l}${d ? '_reverse' : ''}`;
        const inF = l === 0 ? inputSize : hiddenSize * dirs;
        const wih = this.registerParameter(`weight_ih${sfx}`, empty([G * hiddenSize, inF]));
        const whh = this.registerParameter(`weight_hh${sfx}`, empty([G * hiddenSize, hiddenSize]));
        const bih = this.bias ? this.registerParameter(`bias_ih${sfx}`, empty([G * hiddenSize])) : null;
        const bhh = this.bias ? this.registerParameter(`bias_hh${sfx}`, empty([G * hiddenSize])) : null;
        layer.push({ wih, whh, bih, bhh });
      }
      this.#weights.push(layer);
    }
    // PyTorch: every weight and bias from U(−1/√hidden, 1/√hidden), in registration order
    for (const [, t] of this.namedParameters()) {
      const d = t.data;
      for (let i = 0; i < d.length; i++) d[i] = -bound + 2 * bound * this.rng.uniform();
    }
  }

  /**
   * Runs the layers over a sequence.
   * @param input [seq, batch, inputSize] ([batch, seq, inputSize] with batchFirst), or [seq, inputSize] unbatched
   * @param state initial states `h` (and `c`), [numLayers·D, batch, hidden]; zeros when omitted
   */
  forward(input: Tensor, state?: RecurrentState): Out {
    const fn = this.fn;
    if (!(input instanceof Tensor)) throw new TypeError(`${fn}: input must be a Tensor`);
    const unbatched = input.ndim === 2;
    if (input.ndim !== 3 && !unbatched) {
      throw new Error(
        `${fn}: input must be [seq, batch, ${this.inputSize}]${this.batchFirst ? ' (batchFirst: [batch, seq, features])' : ''} or unbatched [seq, ${this.inputSize}], got shape [${input.shape}]`,
      );
    }
    let x = unbatched
      ? reshape(input, [input.shape[0]!, 1, input.shape[1]!])
      : this.batchFirst
        ? permute(input, [1, 0, 2])
        : input;
    const [T, B, F] = x.shape as [number, number, number];
    if (F !== this.inputSize)
      throw new Error(
        `${fn}: input has ${F} features (shape [${input.shape}]) but the layer expects inputSize ${this.inputSize}`,
      );
    if (T === 0) throw new Error(`${fn}: the sequence is empty (shape [${input.shape}])`);
    const dirs = this.bidirectional ? 2 : 1;
    const H = this.hiddenSize;
    const lstm = this.mode === 'LSTM';
    const initial = (t: Tensor | undefined, name: string): Tensor | null => {
      if (!t) return null;
      const want = unbatched ? [this.numLayers * dirs, H] : [this.numLayers * dirs, B, H];
      if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
        throw new Error(`${fn}: initial state ${name} must have shape [${want}], got [${t.shape}]`);
      }
      return unbatched ? reshape(t, [this.numLayers * dirs, 1, H]) : t;
    };
    const h0 = initial(state?.h, 'h');
    const c0 = lstm ? initial(state?.c, 'c') : null;
    if (!lstm && state?.c) throw new Error(`${fn}: only an LSTM takes a cell state c`);
    const reverse = Array.from({ length: T }, (_, i) => T - 1 - i);
    const hN: Tensor[] = [];
    const cN: Tensor[] = [];
    for (let l = 0; l < this.numLayers; l++) {
      const outs: Tensor[] = [];
      for (let d = 0; d < dirs; d++) {
        const w = this.#weights[l]![d]!;
        const idx = l * dirs + d;
        const pick = (s: Tensor | null) => (s ? reshape(slice(s, 0, idx, idx + 1), [B, H]) : null);
        const xin = d ? indexSelect(x, 0, reverse) : x;
        const res = recurrentLayer(this.mode, xin, w.wih, w.whh, w.bih, w.bhh, pick(h0), pick(c0));
        let y: Tensor;
        if (lstm) {
          y = slice(res, 0, 1);
          cN.push(reshape(slice(res, 0, 0, 1), [B, H]));
        } else y = res;
        hN.push(reshape(slice(y, 0, T - 1, T), [B, H]));
        outs.push(d ? indexSelect(y, 0, reverse) : y);
      }
      x = dirs === 2 ? concat(outs, 2) : outs[0]!;
      if (this.dropout > 0 && this.training && l < this.numLayers - 1) x = dropout(x, this.dropout, { rng: this.rng });
    }
    let output = x;
    if (unbatched) output = reshape(output, [T, dirs * H]);
    else if (this.batchFirst) output = permute(output, [1, 0, 2]);
    const fin = (list: Tensor[]) => {
      const s = stack(list, 0);
      return unbatched ? reshape(s, [list.length, H]) : s;
    };
    const out: RecurrentOutput & { c?: Tensor } = { output, h: fin(hN) };
    if (lstm) out.c = fin(cN);
    return out as Out;
  }

  override call(input: Tensor, state?: RecurrentState): Out {
    return super.call(input, state);
  }

  protected override extraRepr(): string {
    return `${this.inputSize}, ${this.hiddenSize}, numLayers=${this.numLayers}${this.batchFirst ? ', batchFirst=true' : ''}${this.bidirectional ? ', bidirectional=true' : ''}`;
  }
}

/**
 * An Elman RNN, h_t = tanh(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh) (or relu), as PyTorch's `nn.RNN`.
 *
 * Elman, "Finding Structure in Time", Cognitive Science 1990. Vanishing and exploding gradients through time:
 * Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural networks", ICML 2013.
 *
 * @example
 * const rnn = new nn.RNN(1, 64, { seed: 0 });
 * const { output, h } = rnn.call(x); // x: [seq, batch, 1]
 */
export class RNN extends RecurrentBase<RecurrentOutput> {
  /**
   * @param inputSize features per step
   * @param hiddenSize state size
   * @param opts numLayers, nonlinearity ('tanh' or 'relu'), bias, batchFirst, dropout, bidirectional, random source
   */
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions & { nonlinearity?: 'tanh' | 'relu' } = {}) {
    const nl = opts.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu')
      throw new TypeError(`nn.RNN: nonlinearity '${nl}' is not supported, please use one of tanh, relu`);
    super(nl === 'tanh' ? 'RNN_TANH' : 'RNN_RELU', inputSize, hiddenSize, opts, 'nn.RNN');
  }
}

/**
 * Long short-term memory, PyTorch's `nn.LSTM` (gate order i, f, g, o in `weight_ih_l0` [4·hidden, input]):
 * i = σ(W_ii x + b_ii + W_hi h + b_hi), f = σ(…), g = tanh(…), o = σ(…), c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c').
 * The additive cell path is what lets gradients survive long sequences; `init.lstmForgetGateBias` sets f's bias to
 * 1 (Jozefowicz et al. 2015).
 *
 * Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997; forget gate: Gers et al. 2000.
 *
 * @example
 * const lstm = new nn.LSTM(28, 128, { numLayers: 2, batchFirst: true, seed: 0 });
 * const { output, h, c } = lstm.call(x); // x: [batch, 28, 28]
 */
export class LSTM extends RecurrentBase<LSTMOutput> {
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super('LSTM', inputSize, hiddenSize, opts, 'nn.LSTM');
  }
}

/**
 * Gated recurrent unit, PyTorch's `nn.GRU` (gate order r, z, n): r = σ(W_ir x + b_ir + W_hr h + b_hr),
 * z = σ(…), n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h.
 *
 * Cho et al., "Learning Phrase Representations using RNN Encoder–Decoder for Statistical Machine Translation", 2014.
 *
 * @example const { output, h } = new nn.GRU(8, 32, { seed: 0 }).call(x);
 */
export class GRU extends RecurrentBase<RecurrentOutput> {
  constructor(inputSize: number, hiddenSize: number, opts: RecurrentOptions = {}) {
    super('GRU', inputSize, hiddenSize, opts, 'nn.GRU');
  }
}
