/**
 * Forward and backward of the layers against PyTorch (test/fixtures/remedies.json): each module gets torch's
 * weights through loadStateDict, runs the same input, and the loss Σ out·R gives the same gradients for the inputs
 * and every parameter. The references are float64, so the tolerances measure our float32 error.
 */
import { describe, expect, it } from 'vitest';
import { fromPacked, maxRelError, type Packed, remedies } from '../../test/remedies.js';
import { tensor } from '../tensor/tensor.js';
import { Conv2d } from './conv.js';
import { Embedding } from './embedding.js';
import { Linear } from './linear.js';
import type { AnyModule } from './module.js';
import { BatchNorm1d, BatchNorm2d, LayerNorm } from './norm.js';
import { GRU, LSTM, RNN } from './rnn.js';
import '../tensor/methods.js';

interface Case {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: constructor arguments as the fixture stores them
  ctor: any;
  train: boolean;
  state: Record<string, Packed>;
  inputs: Packed[];
  outputs: Packed[];
  R: Packed[];
  inputGrads: (Packed | null)[];
  paramGrads: Record<string, Packed>;
  stateAfter?: Record<string, Packed>;
}

function build(c: Case): AnyModule {
  const a = c.ctor;
  switch (c.name) {
    case 'Linear':
      return new Linear(a.in, a.out, { seed: 0 });
    case 'Conv2d':
      return new Conv2d(a.in, a.out, a.k, { stride: a.stride, padding: a.padding, bias: a.bias ?? true, seed: 0 });
    case 'BatchNorm1d':
      return new BatchNorm1d(a.n, a.momentum !== undefined ? { momentum: a.momentum } : {});
    case 'BatchNorm2d':
      return new BatchNorm2d(a.n, a.momentum !== undefined ? { momentum: a.momentum } : {});
    case 'LayerNorm':
      return new LayerNorm(a.shape);
    case 'LSTM':
      return new LSTM(a.in, a.hidden, {
        numLayers: a.numLayers ?? 1,
        batchFirst: a.batchFirst ?? false,
        bidirectional: a.bidirectional ?? false,
        seed: 0,
      });
    case 'GRU':
      return new GRU(a.in, a.hidden, { numLayers: a.numLayers ?? 1, batchFirst: a.batchFirst ?? false, seed: 0 });
    case 'RNN':
      return new RNN(a.in, a.hidden, {
        numLayers: a.numLayers ?? 1,
        nonlinearity: a.nonlinearity,
        bias: a.bias ?? true,
        seed: 0,
      });
    default:
      throw new Error(`no builder for ${c.name}`);
  }
}

const cases = (remedies.layers as Case[]).filter((c) => c.name !== 'Embedding');

describe('layers match PyTorch forward and backward', () => {
  for (const [i, c] of cases.entries()) {
    it(`${c.name} #${i} ${JSON.stringify(c.ctor)}${c.train ? '' : ' (eval)'}`, () => {
      const m = build(c);
      const dict = Object.fromEntries(Object.entries(c.state).map(([k, v]) => [k, fromPacked(v)]));
      m.loadStateDict(dict);
      m.train(c.train);
      const inputs = c.inputs.map((p) => fromPacked(p, { requiresGrad: true }));
      const [x, h, cc] = inputs;
      const raw =
        c.name === 'LSTM' || c.name === 'GRU' || c.name === 'RNN'
          ? m.call(x!, h ? (cc ? { h, c: cc } : { h }) : undefined)
          : m.call(x!);
      const outs = raw.output ? [raw.output, raw.h, ...(raw.c ? [raw.c] : [])] : [raw];
      expect(outs.length).toBe(c.outputs.length);
      let loss = outs[0].mul(fromPacked(c.R[0]!)).sum();
      for (let k = 1; k < outs.length; k++) loss = loss.add(outs[k].mul(fromPacked(c.R[k]!)).sum());
      loss.backward();
      for (const [k, o] of outs.entries()) expect(maxRelError(o, c.outputs[k]!), `output ${k}`).toBeLessThan(2e-5);
      for (const [k, g] of c.inputGrads.entries()) {
        if (g) expect(maxRelError(inputs[k]!.grad!, g), `grad of input ${k}`).toBeLessThan(5e-5);
      }
      const params = Object.fromEntries(m.namedParameters());
      expect(Object.keys(params).sort()).toEqual(Object.keys(c.paramGrads).sort());
      for (const [k, g] of Object.entries(c.paramGrads))
        expect(maxRelError(params[k]!.grad!, g), `grad of ${k}`).toBeLessThan(5e-5);
      const sd = m.stateDict();
      for (const [k, v] of Object.entries(c.stateAfter ?? {}))
        expect(maxRelError(sd[k]!, v), `${k} after`).toBeLessThan(1e-5);
    });
  }

  it('Embedding with paddingIdx: rows, and no gradient into the padding row', () => {
    const c = remedies.layers.find((l: Case) => l.name === 'Embedding');
    const emb = new Embedding(c.ctor.num, c.ctor.dim, { paddingIdx: c.ctor.paddingIdx, seed: 0 });
    expect(Array.from(emb.weight.data.subarray(3, 6))).toEqual([0, 0, 0]);
    emb.loadStateDict({ weight: fromPacked(c.state.weight) });
    const y = emb.call(tensor(c.indices, c.indexShape));
    expect(y.shape).toEqual(c.outputs[0].shape);
    expect(maxRelError(y, c.outputs[0])).toBeLessThan(1e-6);
    y.mul(fromPacked(c.R[0])).sum().backward();
    expect(maxRelError(emb.weight.grad!, c.paramGrads.weight)).toBeLessThan(1e-5);
  });
});
