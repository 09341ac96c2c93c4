/** Model builders and residual blocks: structure, shapes, and the behaviour at initialisation they exist for. */
import { describe, expect, it } from 'vitest';
import { kaimingNormal } from '../init/initializers.js';
import { Rng } from '../tensor/rng.js';
import { type Tensor, tensor } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Sequential } from './container.js';
import { Dropout } from './dropout.js';
import { Linear } from './linear.js';
import { cnn, mlp, resnet } from './models.js';
import { BatchNorm1d } from './norm.js';
import { BasicBlock, PreActBlock, Residual, ResidualMLPBlock, ZeroPadShortcut } from './residual.js';
import '../tensor/methods.js';

function randn(shape: number[], seed: number): Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((p, d) => p * d, 1);
  return tensor(
    Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

function rms(t: Tensor): number {
  let s = 0;
  for (const v of t.data) s += v * v;
  return Math.sqrt(s / t.size);
}

describe('mlp', () => {
  it('plain: Linear, activation, ..., Linear, with PyTorch indices', () => {
    const m = mlp({ inputSize: 784, hidden: [256, 128], outputSize: 10, seed: 0 });
    expect(m.namedParameters().map(([n, t]) => `${n}:${t.shape}`)).toEqual([
      '0.weight:256,784',
      '0.bias:256',
      '2.weight:128,256',
      '2.bias:128',
      '4.weight:10,128',
      '4.bias:10',
    ]);
    expect(
      mlp({ inputSize: 4, depth: 3, width: 8, outputSize: 2, norm: 'batch', dropout: 0.1, activation: 'tanh', seed: 0 })
        .length,
    ).toBe(3 * 4 + 1);
  });
  it('residual: input layer, depth/2 blocks, output layer', () => {
    const m = mlp({ inputSize: 10, depth: 4, width: 8, outputSize: 3, residual: true, seed: 0 });
    expect(m.length).toBe(2 + 2 + 1);
    expect(m.at(2)).toBeInstanceOf(ResidualMLPBlock);
    expect(m.get('2.fc1.weight').shape).toEqual([8, 8]);
    expect(m.call(randn([5, 10], 1)).shape).toEqual([5, 3]);
  });
  it('rejects inconsistent options with the fix', () => {
    expect(() => mlp({ inputSize: 4, outputSize: 2, hidden: [3], depth: 2, width: 3 })).toThrow('give either hidden');
    expect(() => mlp({ inputSize: 4, outputSize: 2, depth: 3, width: 3, residual: true })).toThrow(
      'depth must be even, got 3',
    );
    expect(() => mlp({ inputSize: 4, outputSize: 2, depth: 2, width: 3, zeroInitResidual: true })).toThrow(
      'need residual: true',
    );
    expect(() => mlp({ inputSize: 0, outputSize: 2 })).toThrow('nn.mlp(): inputSize must be a positive integer, got 0');
    // @ts-expect-error an unknown activation on purpose
    expect(() => mlp({ inputSize: 4, outputSize: 2, depth: 1, width: 3, activation: 'swish' })).toThrow(
      /unknown activation 'swish'/,
    );
  });
});

describe('a 30-layer residual MLP at initialisation (the reason for zero init and ReZero)', () => {
  const x = randn([64, 32], 7);
  const build = (o: { zeroInitResidual?: boolean; rezero?: boolean; norm?: 'layer' }) => {
    const m = mlp({ inputSize: 32, depth: 30, width: 64, outputSize: 10, residual: true, seed: 3, ...o });
    for (const [n, p] of m.namedParameters()) {
      if (n.endsWith('weight') && p.ndim === 2 && p.data.some((v) => v !== 0))
        kaimingNormal(p, { nonlinearity: 'relu', seed: n.length });
    }
    return m;
  };
  it('plain blocks with Kaiming init blow the logits up; zero-init and ReZero keep them small', () => {
    const plain = rms(build({}).call(x));
    const zero = rms(build({ zeroInitResidual: true }).call(x));
    const rezero = rms(build({ rezero: true }).call(x));
    expect(plain).toBeGreaterThan(100);
    expect(zero).toBeLessThan(10);
    expect(rezero).toBeLessThan(10);
  });
  it('ReZero blocks start as the identity and still pass gradient to alpha', () => {
    const b = new ResidualMLPBlock(6, { rezero: true, seed: 0 });
    const h = randn([3, 6], 1);
    const y = b.call(h);
    expect(y.toArray()).toEqual(h.toArray());
    y.sum().backward();
    expect(Math.abs(b.alpha!.grad!.item())).toBeGreaterThan(0);
  });
  it('zeroInit zeroes the last norm weight when there is one, else the last linear layer', () => {
    const withNorm = new ResidualMLPBlock(4, { norm: 'layer', zeroInit: true, seed: 0 });
    expect(withNorm.get('norm2.weight').toArray()).toEqual([0, 0, 0, 0]);
    expect(
      withNorm
        .get('fc2.weight')
        .toArray()
        .some((v) => v !== 0),
    ).toBe(true);
    const bare = new ResidualMLPBlock(4, { zeroInit: true, seed: 0 });
    expect(
      bare
        .get('fc2.weight')
        .toArray()
        .every((v) => v === 0),
    ).toBe(true);
  });
  it('Residual wraps any branch', () => {
    const r = new Residual(new Sequential(new Linear(3, 3, { seed: 0 }), new ReLU()), { rezero: true });
    const x3 = randn([2, 3], 2);
    expect(r.call(x3).toArray()).toEqual(x3.toArray());
    expect(r.namedParameters().map(([n]) => n)).toEqual(['alpha', 'branch.0.weight', 'branch.0.bias']);
  });
});

describe('convolutional models', () => {
  it('cnn maps images to logits', () => {
    const m = cnn({ inChannels: 1, imageSize: 12, channels: [4, 8], hidden: 16, norm: 'batch', seed: 0 });
    const y = m.call(randn([2, 1, 12, 12], 0));
    expect(y.shape).toEqual([2, 10]);
    y.sum().backward();
    expect(m.get('0.weight').grad!.shape).toEqual([4, 1, 3, 3]);
  });
  it('resnet depths are 6n + 2 with n blocks per stage', () => {
    for (const depth of [20, 32, 44, 56, 110]) {
      const r = resnet({ depth, width: 2, seed: 0 });
      expect(r.layer1.length).toBe((depth - 2) / 6);
    }
    expect(() => resnet({ depth: 18 })).toThrow('depth must be 6n + 2 with n >= 1 (8, 20, 32, 44, 56, 110), got 18');
  });
  it('MNIST-sized resnet trains end to end (post- and pre-activation, projection and zero-pad shortcuts)', () => {
    for (const o of [
      {},
      { preActivation: true },
      { shortcut: 'zero-pad' as const },
      { preActivation: true, shortcut: 'zero-pad' as const, zeroInitResidual: true },
    ]) {
      const r = resnet({ depth: 8, inChannels: 1, width: 4, seed: 0, ...o });
      const y = r.call(randn([2, 1, 8, 8], 0));
      expect(y.shape).toEqual([2, 10]);
      y.sum().backward();
      expect(
        r
          .get('conv1.weight')
          .grad!.toArray()
          .some((v) => v !== 0),
      ).toBe(true);
    }
  });
  it('blocks: zero-init makes the post-activation block relu(x) and the pre-activation block the identity', () => {
    const x = randn([2, 4, 5, 5], 3);
    const post = new BasicBlock(4, 4, { zeroInitResidual: true, seed: 0 });
    expect(post.call(x).toArray()).toEqual(x.relu().toArray());
    const pre = new PreActBlock(4, 4, { zeroInitResidual: true, seed: 0 });
    expect(pre.call(x).toArray()).toEqual(x.toArray());
  });
  it('ZeroPadShortcut subsamples and pads channels with zeros on both sides', () => {
    const x = tensor(
      Array.from({ length: 16 }, (_, i) => i + 1),
      [1, 1, 4, 4],
    );
    const y = new ZeroPadShortcut(1, 4, 2).call(x);
    expect(y.shape).toEqual([1, 4, 2, 2]);
    expect(y.toArray()).toEqual([0, 0, 0, 0, 1, 3, 9, 11, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('Dropout and BatchNorm behaviour', () => {
  it('Dropout is seeded, scales by 1/(1 − p) and is the identity in eval', () => {
    const x = tensor(new Float32Array(1000).fill(1), [1000]);
    const a = new Dropout(0.25, { seed: 1 }).call(x).toArray();
    expect(new Dropout(0.25, { seed: 1 }).call(x).toArray()).toEqual(a);
    expect(new Set(a.map((v) => v.toFixed(5)))).toEqual(new Set(['0.00000', '1.33333']));
    const kept = a.filter((v) => v > 0).length;
    expect(kept).toBeGreaterThan(700);
    expect(kept).toBeLessThan(800);
    const d = new Dropout(0.5, { seed: 0 });
    d.eval();
    expect(d.call(x)).toBe(x);
  });
  it('BatchNorm with momentum null keeps a cumulative average', () => {
    const bn = new BatchNorm1d(1, { momentum: null });
    bn.call(tensor([1, 3], [2, 1]));
    bn.call(tensor([5, 7], [2, 1]));
    expect(bn.get('running_mean').item()).toBeCloseTo(4, 6);
    expect(bn.get('num_batches_tracked').item()).toBe(2);
    bn.eval();
    expect(bn.call(tensor([4], [1, 1])).item()).toBeCloseTo(0, 6);
  });
  it('layers name the argument on bad input', () => {
    expect(() => new Linear(2.5, 3)).toThrow('nn.Linear: inFeatures must be a non-negative integer, got 2.5');
    expect(() => new BatchNorm1d(3).call(tensor([1, 2], [1, 2]))).toThrow(
      'nn.BatchNorm1d: input has 2 channels (shape [1,2]) but the layer expects 3',
    );
    expect(() => new Linear(2, 3, { seed: 0 }).call(tensor([1, 2, 3], [1, 3]))).toThrow(
      /input has 3 features but the weight expects 2/,
    );
  });
});
