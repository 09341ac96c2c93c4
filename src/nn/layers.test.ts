/**
 * Forward and backward of the layers against PyTorch (test/fixtures/remedies.json): each module gets torch's
 * weights through loadStateDict, runs the same input, and the loss Σ out·R gives the same gradients for the inputs
 * and every parameter. The references are float64, so the tolerances measure our float32 error.
 */
import { describe, expect, it } from 'vitest';
import { fromPacked, maxRelError, type Packed, remedies } from '../../test/remedies.js';
import { tensor } from '../tensor/tensor.js';
import { AdaptiveAvgPool2d, Conv2d } from './conv.js';
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

describe('AdaptiveAvgPool2d', () => {
  it('pools any input size to its output size (PyTorch parity is in test/fixtures/ops.json)', () => {
    const pool = new AdaptiveAvgPool2d([2, null]);
    // one plane 4x3: rows 0-1 and 2-3 averaged, columns kept
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [1, 1, 4, 3]);
    const y = pool.call(x);
    expect(y.shape).toEqual([1, 1, 2, 3]);
    expect(y.toArray()).toEqual([2.5, 3.5, 4.5, 8.5, 9.5, 10.5]);
    expect(new AdaptiveAvgPool2d(1).call(x).toArray()).toEqual([6.5]);
    expect(String(pool)).toContain('outputSize=[2,null]');
  });
  it('refuses an output size that is not a whole number >= 1, and inputs of the wrong rank', () => {
    const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(() => new AdaptiveAvgPool2d(0).call(x)).toThrow(
      'adaptiveAvgPool2d(): the output height must be a whole number >= 1, got 0',
    );
    expect(() => new AdaptiveAvgPool2d([2, 1.5]).call(x)).toThrow(
      'the output width must be a whole number >= 1, got 1.5',
    );
    expect(() => new AdaptiveAvgPool2d(1).call(tensor([1, 2], [2]))).toThrow(
      'adaptiveAvgPool2d(): input must be [N, C, H, W] or [C, H, W], got shape [2]',
    );
  });
});

describe('Conv2d with groups', () => {
  it('holds [out, in/groups, kh, kw] weights with fanIn = in/groups·kh·kw, and checks the groups', () => {
    const conv = new Conv2d(4, 6, 3, { groups: 2, seed: 0 });
    expect(conv.weight.shape).toEqual([6, 2, 3, 3]);
    const bound = 1 / Math.sqrt(2 * 9);
    expect(Math.max(...conv.weight.toArray().map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(conv.call(tensor(new Array(2 * 4 * 5 * 5).fill(0.5), [2, 4, 5, 5])).shape).toEqual([2, 6, 3, 3]);
    expect(String(conv)).toContain('groups=2');
    expect(() => new Conv2d(4, 6, 3, { groups: 3 })).toThrow(
      'nn.Conv2d: groups=3 must divide inChannels (4) and outChannels (6)',
    );
  });
  it('a depthwise convolution sees each channel alone', () => {
    const conv = new Conv2d(2, 2, 1, { groups: 2, bias: false });
    conv.weight.data.set([2, -1]);
    const y = conv.call(tensor([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 2, 2]));
    expect(y.shape).toEqual([1, 2, 2, 2]);
    expect(y.toArray()).toEqual([2, 4, 6, 8, -10, -20, -30, -40]);
  });
});
