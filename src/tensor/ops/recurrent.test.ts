/**
 * The recurrent op (recurrentLayer) against central finite differences, every cell with and without biases, and the
 * layers without biases against the same layers with zero biases: a step's pre-activations are one product over the
 * states and inputs stacked with a row of ones for the biases (Z = [Hᵀ; Xᵀ; 1], the GRU's [Hᵀ; 1; Xᵀ]), which the
 * bias-free layers leave out.
 */
import { describe, expect, it } from 'vitest';
import '../methods.js';
import { GRU, LSTM, RNN } from '../../nn/rnn.js';
import { gradcheck } from '../gradcheck.js';
import { randn } from '../random.js';
import { GATES, lstmOutputs, type RecurrentMode, recurrentLayer, recurrentLoop } from './recurrent.js';
import { concat, permute, reshape, slice } from './shape.js';

const MODES: RecurrentMode[] = ['RNN_TANH', 'RNN_RELU', 'LSTM', 'GRU'];

describe('recurrentLayer', () => {
  for (const mode of MODES) {
    for (const bias of [true, false]) {
      it(`${mode}${bias ? '' : ' without biases'}: gradients of x, weights, biases and initial states match finite differences`, () => {
        const [T, B, In, H] = [4, 3, 2, 5];
        const G = GATES[mode];
        const lstm = mode === 'LSTM';
        const p = (shape: number[], seed: number) => randn(shape, { seed }).mul(0.5).requiresGrad_();
        const x = p([T, B, In], 1);
        const wih = p([G * H, In], 2);
        const whh = p([G * H, H], 3);
        const bih = bias ? p([G * H], 4) : null;
        const bhh = bias ? p([G * H], 5) : null;
        const h0 = p([B, H], 6);
        const c0 = lstm ? p([B, H], 7) : null;
        const inputs = [x, wih, whh, h0, ...(c0 ? [c0] : []), ...(bih ? [bih, bhh!] : [])];
        const fn = (...a: ReturnType<typeof p>[]) => {
          const [xa, wa, wb, ha] = a as [typeof x, typeof x, typeof x, typeof x];
          const ca = lstm ? a[4]! : null;
          const k = lstm ? 5 : 4;
          return recurrentLayer(mode, xa, wa, wb, bias ? a[k]! : null, bias ? a[k + 1]! : null, ha, ca);
        };
        const res = gradcheck(fn, inputs, { eps: 1e-2, rtol: 2e-2, atol: 2e-3 });
        expect(res.ok, JSON.stringify(res)).toBe(true);
      });
    }
  }

  it('layers without biases give the bits of the same layers with zero biases (RNN, LSTM, GRU)', () => {
    for (const make of [
      (bias: boolean) => new RNN(3, 6, { bias, seed: 1 }),
      (bias: boolean) => new LSTM(3, 6, { bias, seed: 1, numLayers: 2 }),
      (bias: boolean) => new GRU(3, 6, { bias, seed: 1, bidirectional: true }),
    ]) {
      const plain = make(false);
      const zero = make(true);
      const weights = new Map(plain.namedParameters());
      for (const [name, t] of zero.namedParameters()) {
        const w = weights.get(name);
        if (w) t.data.set(w.data);
        else t.data.fill(0);
      }
      const x = randn([5, 4, 3], { seed: 2 });
      const runs = [plain, zero].map((m) => {
        const { output, h } = m.call(x);
        output
          .mul(randn(output.shape, { seed: 3 }))
          .sum()
          .add(h.sum())
          .backward();
        return [output.data, h.data, ...[...weights.keys()].map((n) => m.get(n).grad!.data)];
      });
      const [a, b] = runs as [Float32Array[], Float32Array[]];
      expect(a.length).toBe(b.length);
      for (let k = 0; k < a.length; k++) {
        // equal values (a sum with a zero bias may turn −0 into +0)
        const at = a[k]!.findIndex((v, i) => v !== b[k]![i]);
        expect(at, `${plain.constructor.name}: array ${k} differs at ${at}`).toBe(-1);
        expect(a[k]!.length).toBe(b[k]!.length);
      }
    }
  });

  it('nn.LSTM: outputs on the op result storage (c_T after them); x, h0, c0 get their gradients through outputs, h and c', () => {
    const lstm = new LSTM(2, 4, { seed: 1, numLayers: 2, batchFirst: true });
    const x = randn([3, 5, 2], { seed: 2 }).requiresGrad_();
    const h0 = randn([2, 3, 4], { seed: 3 }).mul(0.5).requiresGrad_();
    const c0 = randn([2, 3, 4], { seed: 4 }).mul(0.5).requiresGrad_();
    const flat = (...a: (typeof x)[]) => {
      const { output, h, c } = lstm.call(a[0]!, { h: a[1]!, c: a[2]! });
      return concat([reshape(output, [-1]), reshape(h, [-1]), reshape(c, [-1])], 0);
    };
    const res = gradcheck(flat, [x, h0, c0], { eps: 1e-2, rtol: 2e-2, atol: 2e-3 });
    expect(res.ok, JSON.stringify(res)).toBe(true);
    const w = [...lstm.parameters()];
    const out = recurrentLayer('LSTM', randn([5, 3, 2], { seed: 5 }), w[0]!, w[1]!, w[2]!, w[3]!, null, null);
    expect(lstmOutputs(out, [5, 3, 4]).storage).toBe(out.storage);
  });

  it("lstmOutputs hands the outputs' gradient on as it is (no copy into a result-sized buffer)", () => {
    const [T, B, In, H] = [4, 3, 2, 5];
    const p = (shape: number[], seed: number) => randn(shape, { seed }).mul(0.5).requiresGrad_();
    const res = recurrentLayer('LSTM', p([T, B, In], 1), p([4 * H, In], 2), p([4 * H, H], 3), null, null, null, null);
    const y = lstmOutputs(res, [T, B, H]);
    const g = randn([T, B, H], { seed: 4 });
    expect(y.node!.backward(g, [true])[0]).toBe(g);
  });

  it("LSTM: the outputs' gradient alone (without c_T's rows) gives the bits of the full-size one, either loop, every use of outputs and c_T", () => {
    const [T, B, In, H] = [5, 3, 2, 4];
    const shape = [T, B, H];
    // which of the result's parts the loss reads: the outputs (through lstmOutputs, once or twice), c_T
    const uses = [
      { outs: 1, c: false },
      { outs: 0, c: true },
      { outs: 1, c: true },
      { outs: 2, c: false },
      { outs: 2, c: true },
    ];
    for (const fused of [true, false]) {
      for (const use of uses) {
        const run = (viaView: boolean) => {
          const p = (sh: number[], seed: number) => randn(sh, { seed }).mul(0.5).requiresGrad_();
          const inputs = [p([T, B, In], 1), p([4 * H, In], 2), p([4 * H, H], 3), p([4 * H], 4), p([4 * H], 5)];
          const [h0, c0] = [p([B, H], 6), p([B, H], 7)];
          const [x, wih, whh, bih, bhh] = inputs as [typeof h0, typeof h0, typeof h0, typeof h0, typeof h0];
          const res = recurrentLayer('LSTM', x, wih, whh, bih, bhh, h0, c0);
          // the view hands on a gradient of T·B·H elements; slicing the rows hands on one of the result's size
          const outputs = () => (viaView ? lstmOutputs(res, shape) : reshape(slice(res, 0, 0, T * B), shape));
          const terms = Array.from({ length: use.outs }, (_, k) =>
            outputs()
              .mul(randn(shape, { seed: 8 + k }))
              .sum(),
          );
          if (use.c)
            terms.push(
              slice(res, 0, T * B)
                .mul(randn([B, H], { seed: 10 }))
                .sum(),
            );
          terms.reduce((l, t) => l.add(t)).backward();
          return [...inputs, h0, c0].map((t) => t.grad!.data.slice());
        };
        recurrentLoop.fused = fused;
        let a: Float32Array[];
        let b: Float32Array[];
        try {
          [a, b] = [run(true), run(false)];
        } finally {
          recurrentLoop.fused = true;
        }
        for (let k = 0; k < a.length; k++) {
          const at = a[k]!.findIndex((v, i) => v !== b[k]![i]);
          expect(at, `fused ${fused}, ${JSON.stringify(use)}: gradient ${k} differs at ${at}`).toBe(-1);
        }
      }
    }
  });

  it('batch first gives the bits of time-major (LSTM, GRU; two layers, bidirectional, initial states): outputs, states, gradients', () => {
    for (const Cell of [LSTM, GRU]) {
      const runs = [false, true].map((batchFirst) => {
        const m = new Cell(3, 5, { seed: 1, numLayers: 2, bidirectional: true, batchFirst });
        const xt = randn([6, 4, 3], { seed: 2 });
        const x = (batchFirst ? permute(xt, [1, 0, 2]) : xt).requiresGrad_();
        const h0 = randn([4, 4, 5], { seed: 3 }).requiresGrad_();
        const c0 = randn([4, 4, 5], { seed: 4 }).requiresGrad_();
        const out = m.call(x, Cell === LSTM ? { h: h0, c: c0 } : { h: h0 }) as {
          output: typeof x;
          h: typeof x;
          c?: typeof x;
        };
        const y = batchFirst ? permute(out.output, [1, 0, 2]) : out.output;
        let loss = y
          .mul(randn(y.shape, { seed: 5 }))
          .sum()
          .add(out.h.mul(randn(out.h.shape, { seed: 6 })).sum());
        if (out.c) loss = loss.add(out.c.mul(randn(out.c.shape, { seed: 7 })).sum());
        loss.backward();
        const gx = batchFirst ? permute(x.grad!, [1, 0, 2]) : x.grad!;
        return [
          y,
          out.h,
          ...(out.c ? [out.c] : []),
          gx,
          h0.grad!,
          ...(Cell === LSTM ? [c0.grad!] : []),
          ...m.parameters().map((p) => p.grad!),
        ].map((t) => t.data.slice());
      });
      const [a, b] = runs as [Float32Array[], Float32Array[]];
      for (let k = 0; k < a.length; k++) {
        expect(b[k]!.length).toBe(a[k]!.length);
        const at = a[k]!.findIndex((v, i) => v !== b[k]![i]);
        expect(at, `${Cell.name}: array ${k} differs at ${at}`).toBe(-1);
      }
    }
  });
});
