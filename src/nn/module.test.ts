/** Module bookkeeping: PyTorch paths, state dicts, hooks, modes, gradients. */
import { describe, expect, it } from 'vitest';
import { tensor, tidy } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Sequential } from './container.js';
import { Dropout } from './dropout.js';
import { Linear } from './linear.js';
import { mlp, resnet } from './models.js';
import type { AnyModule } from './module.js';
import { BatchNorm1d } from './norm.js';
import { GRU, LSTM } from './rnn.js';
import '../tensor/methods.js';

const small = () =>
  new Sequential(new Linear(3, 4, { seed: 0 }), new BatchNorm1d(4), new ReLU(), new Linear(4, 2, { seed: 1 }));

describe('names follow PyTorch', () => {
  it('Sequential children are 0, 1, ...; parameters then buffers', () => {
    const m = small();
    expect(m.namedParameters().map(([n, t]) => [n, t.shape])).toEqual([
      ['0.weight', [4, 3]],
      ['0.bias', [4]],
      ['1.weight', [4]],
      ['1.bias', [4]],
      ['3.weight', [2, 4]],
      ['3.bias', [2]],
    ]);
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['1.running_mean', '1.running_var', '1.num_batches_tracked']);
    expect(Object.keys(m.stateDict())).toEqual([
      '0.weight',
      '0.bias',
      '1.weight',
      '1.bias',
      '1.running_mean',
      '1.running_var',
      '1.num_batches_tracked',
      '3.weight',
      '3.bias',
    ]);
    expect(m.namedModules().map(([n]) => n)).toEqual(['', '0', '1', '2', '3']);
  });
  it('LSTM and GRU: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._reverse', () => {
    const lstm = new LSTM(3, 5, { numLayers: 2, bidirectional: true, seed: 0 });
    expect(lstm.namedParameters().map(([n, t]) => `${n}:${t.shape}`)).toEqual([
      'weight_ih_l0:20,3',
      'weight_hh_l0:20,5',
      'bias_ih_l0:20',
      'bias_hh_l0:20',
      'weight_ih_l0_reverse:20,3',
      'weight_hh_l0_reverse:20,5',
      'bias_ih_l0_reverse:20',
      'bias_hh_l0_reverse:20',
      'weight_ih_l1:20,10',
      'weight_hh_l1:20,5',
      'bias_ih_l1:20',
      'bias_hh_l1:20',
      'weight_ih_l1_reverse:20,10',
      'weight_hh_l1_reverse:20,5',
      'bias_ih_l1_reverse:20',
      'bias_hh_l1_reverse:20',
    ]);
    expect(new GRU(2, 3, { bias: false, seed: 0 }).namedParameters().map(([n, t]) => `${n}:${t.shape}`)).toEqual([
      'weight_ih_l0:9,2',
      'weight_hh_l0:9,3',
    ]);
  });
  it('ResNet names follow torchvision', () => {
    const keys = Object.keys(resnet({ depth: 8, seed: 0 }).stateDict());
    for (const k of [
      'conv1.weight',
      'bn1.running_var',
      'layer1.0.conv1.weight',
      'layer2.0.downsample.0.weight',
      'layer2.0.downsample.1.weight',
      'fc.bias',
    ]) {
      expect(keys, k).toContain(k);
    }
  });
  it('get() and getModule() walk paths, with errors that list what exists', () => {
    const m = small();
    expect(m.get('0.weight').shape).toEqual([4, 3]);
    expect(m.get('1.running_mean').shape).toEqual([4]);
    expect(m.getModule('3')).toBeInstanceOf(Linear);
    expect(() => m.get('0.weights')).toThrow(
      "get(): no parameter or buffer '0.weights'; Linear at '0' has tensors weight, bias",
    );
    expect(() => m.get('7.weight')).toThrow(/no submodule '7' in Sequential .*children are 0, 1, 2, 3/);
  });
  it('a shared parameter is listed once', () => {
    const lin = new Linear(2, 2, { seed: 0 });
    const m = new Sequential(lin, new ReLU(), lin);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias']);
    expect(m.numParameters()).toBe(6);
  });
});

describe('loadStateDict', () => {
  it('copies values in place', () => {
    const a = small();
    const b = new Sequential(
      new Linear(3, 4, { seed: 5 }),
      new BatchNorm1d(4),
      new ReLU(),
      new Linear(4, 2, { seed: 6 }),
    );
    const w = b.get('0.weight');
    b.loadStateDict(a.stateDict());
    expect(b.get('0.weight')).toBe(w);
    expect(w.toArray()).toEqual(a.get('0.weight').toArray());
  });
  it('lists missing and unexpected keys and shape mismatches, as PyTorch', () => {
    const sd = small().stateDict();
    const { ['3.bias']: _gone, ...rest } = sd;
    const m = new Sequential(
      new Linear(3, 4, { seed: 5 }),
      new BatchNorm1d(4),
      new ReLU(),
      new Linear(4, 2, { seed: 6 }),
    );
    expect(() => m.loadStateDict({ ...rest, extra: tensor([1]) })).toThrow(
      'Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: "3.bias"\n\tUnexpected key(s) in state_dict: "extra"\n\t(pass { strict: false } to load the matching keys only)',
    );
    expect(() => m.loadStateDict({ ...sd, '0.weight': tensor(new Float32Array(12), [3, 4]) })).toThrow(
      'size mismatch for 0.weight: copying a param with shape [3,4] from checkpoint, the shape in current model is [4,3]',
    );
    const before = m.get('3.weight').toArray();
    expect(m.loadStateDict({ ...rest, extra: tensor([1]) }, { strict: false })).toEqual({
      missingKeys: ['3.bias'],
      unexpectedKeys: ['extra'],
    });
    expect(m.get('3.weight').toArray()).toEqual(sd['3.weight']!.toArray());
    expect(before).not.toEqual(m.get('3.weight').toArray());
  });
});

describe('hooks see every module through call()', () => {
  it('runs hooks in order, with module, input and output; the remover works; a return value replaces the output', () => {
    const m = mlp({ inputSize: 3, hidden: [4, 4], outputSize: 2, seed: 0 });
    const seen: string[] = [];
    const removers = m.namedModules().map(([n, mod]: [string, AnyModule]) =>
      mod.registerForwardHook((_mm, x, y) => {
        seen.push(`${n || 'root'}:${x.shape}->${y.shape}`);
      }),
    );
    m.call(tensor(new Float32Array(6), [2, 3]));
    expect(seen).toEqual(['0:2,3->2,4', '1:2,4->2,4', '2:2,4->2,4', '3:2,4->2,4', '4:2,4->2,2', 'root:2,3->2,2']);
    for (const r of removers) r();
    seen.length = 0;
    m.call(tensor(new Float32Array(6), [2, 3]));
    expect(seen).toEqual([]);
    const lin = new Linear(2, 2, { seed: 0 });
    lin.registerForwardHook((_m, _x, y) => y.mul(0));
    expect(lin.call(tensor([1, 2], [1, 2])).toArray()).toEqual([0, 0]);
  });
  it('RNN hooks receive the output record', () => {
    const g = new GRU(2, 3, { seed: 0 });
    let got: unknown = null;
    g.registerForwardHook((_m, _x, y) => {
      got = y.h.shape;
    });
    g.call(tensor(new Float32Array(8), [2, 2, 2]));
    expect(got).toEqual([1, 2, 3]);
  });
  it('a module is fusable without hooks, or with hooks whose fused predicate holds now', () => {
    const r = new ReLU();
    expect(r.fusable).toBe(true);
    let allow = true;
    const removeOk = r.registerForwardHook(() => undefined, { fused: () => allow });
    expect(r.fusable).toBe(true);
    allow = false;
    expect(r.fusable).toBe(false);
    allow = true;
    const plain = () => undefined;
    const removePlain = r.registerForwardHook(plain);
    expect(r.fusable).toBe(false); // a hook without the predicate always sees the module's own output
    removePlain();
    expect(r.fusable).toBe(true);
    removeOk();
    expect(r.fusable).toBe(true);
    expect(() => r.registerForwardHook(plain, { fused: true as never })).toThrow(
      'registerForwardHook(): opts.fused must be a function returning a boolean',
    );
    expect(r.hasForwardHooks).toBe(false);
    // runFusedHooks calls them with what it is given, their return values ignored
    const seen: number[] = [];
    r.registerForwardHook((_m, x, y) => {
      seen.push(x.size, y.size);
      return y.mul(0);
    });
    r.runFusedHooks(tensor([1, 2], [2]), tensor([3], [1]));
    expect(seen).toEqual([2, 1]);
  });
});

describe('modes, gradients and memory', () => {
  it('train() and eval() reach every descendant', () => {
    const m = new Sequential(new Linear(2, 2, { seed: 0 }), new Sequential(new Dropout(0.5, { seed: 0 })));
    m.eval();
    expect(m.modules().every((x) => !x.training)).toBe(true);
    m.train();
    expect(m.modules().every((x) => x.training)).toBe(true);
  });
  it('zeroGrad zeroes in place or clears', () => {
    const m = small();
    m.call(tensor([1, 2, 3, 4, 5, 6], [2, 3]))
      .sum()
      .backward();
    const g = m.get('0.weight').grad!;
    m.zeroGrad();
    expect(m.get('0.weight').grad).toBe(g);
    expect(g.toArray().every((v) => v === 0)).toBe(true);
    m.zeroGrad({ setToNone: true });
    expect(m.get('0.weight').grad).toBeNull();
  });
  it('parameters of a model built inside tidy() survive it', () => {
    const m = tidy(() => small());
    expect(m.get('0.weight').data.length).toBe(12);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
  });
  it('numParameters and toString', () => {
    const m = small();
    expect(m.numParameters()).toBe(16 + 8 + 10);
    expect(String(m)).toContain('(0): Linear(inFeatures=3, outFeatures=4, bias=true)');
  });
});
