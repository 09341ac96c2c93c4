/**
 * Recurrent layers `RNN`, `LSTM` and `GRU` with PyTorch's parameter names, layouts and gate orders
 * (`weight_ih_l0` [G·hidden, input], `weight_hh_l0` [G·hidden, hidden], `bias_ih_l0`, `bias_hh_l0`, `_reverse` for
 * the backward direction; LSTM gates i, f, g, o; GRU gates r, z, n), multi-layer, bidirectional, batchFirst.
 *
 * Each layer and direction is one op on the tape with a hand-written backward through time (`recurrentLayer`,
 * tensor/ops/recurrent.ts).
 */
import { type RandomInit, resolveRng } from '../init/random.js';
import { dropout } from '../tensor/ops/dropout.js';
import {
  GATES,
  lstmOutputs,
  type RecurrentMode,
  recurrentLayer,
  type TimeTap,
  timeTaps,
} from '../tensor/ops/recurrent.js';
import { concat, indexSelect, reshape, slice, stack } from '../tensor/ops/shape.js';
import type { Rng } from '../tensor/rng.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { checkSize } from './linear.js';
import { Module } from './module.js';

export type { RecurrentMode, TimeTap };

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
  /**
   * Set by a monitor (monitor/through-time.ts): the tap that records ‖∂L/∂h_t‖ for layer `l`, direction `d` during
   * the backward through time of the next forward pass; null records nothing (the default).
   */
  timeTap: ((l: number, d: number) => TimeTap | null) | null = null;

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
    // batch first, the layers read and write [batch, seq, ·] themselves (no permutes around them)
    const bf = this.batchFirst && !unbatched;
    let x = unbatched ? reshape(input, [input.shape[0]!, 1, input.shape[1]!]) : input;
    const [T, B] = (bf ? [x.shape[1], x.shape[0]] : [x.shape[0], x.shape[1]]) as [number, number];
    const F = x.shape[2]!;
    const tAxis = bf ? 1 : 0;
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
        const xin = d ? indexSelect(x, tAxis, reverse) : x;
        timeTaps.current = this.timeTap?.(l, d) ?? null;
        let res: Tensor;
        try {
          res = recurrentLayer(this.mode, xin, w.wih, w.whh, w.bih, w.bhh, pick(h0), pick(c0), bf);
        } finally {
          timeTaps.current = null;
        }
        let y: Tensor;
        if (lstm) {
          y = lstmOutputs(res, bf ? [B, T, H] : [T, B, H]);
          cN.push(slice(res, 0, T * B));
        } else y = res;
        hN.push(reshape(slice(y, tAxis, T - 1, T), [B, H]));
        outs.push(d ? indexSelect(y, tAxis, reverse) : y);
      }
      x = dirs === 2 ? concat(outs, 2) : outs[0]!;
      if (this.dropout > 0 && this.training && l < this.numLayers - 1) x = dropout(x, this.dropout, { rng: this.rng });
    }
    let output = x;
    if (unbatched) output = reshape(output, [T, dirs * H]);
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
