/**
 * BatchNorm + ReLU (batchNormRelu) and a residual block's add + ReLU (addRelu) as one op each: the bits of the ops
 * they fuse, forward and backward, on every backend; nn.Sequential, nn.BasicBlock, nn.PreActBlock and nn.ResNet
 * fusing them only where the hooks allow; and the gradient monitor's records the same fused and held apart.
 */
import { describe, expect, it } from 'vitest';
import { monitoredSteps } from '../../test/monitored-steps.js';
import { availableBackends, useBackend } from '../backend/index.js';
import { addRelu, relu } from '../tensor/ops/elementwise.js';
import { batchNorm, batchNormRelu } from '../tensor/ops/norm.js';
import { rand, randint } from '../tensor/random.js';
import { noGrad, type Tensor, tensor, tidy } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Sequential } from './container.js';
import { crossEntropy, maxPool2d } from './functional.js';
import { cnn, resnet } from './models.js';
import type { AnyModule } from './module.js';
import { BatchNorm1d, BatchNorm2d } from './norm.js';

/** Bit patterns, so that -0 and NaN payloads count. */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Seeded values in [-2, 2] with `specials` written over the first ones. */
function values(shape: number[], seed: number, specials: number[] = []): Tensor {
  const t = rand(shape, { seed, low: -2, high: 2 });
  t.data.set(specials);
  return tensor(t.data, shape, { requiresGrad: true });
}

/** Gradients of `fn`'s inputs for an upstream gradient `g`, and its output, all as bits. */
function run(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], g: Float32Array): number[][] {
  return tidy(() => {
    for (const t of inputs) t.grad = null;
    const y = fn(...inputs);
    y.backward(tensor(g, y.shape));
    const out = [bits(y.data), ...inputs.map((t) => bits(t.grad!.data))];
    for (const t of inputs) t.grad = null;
    return out;
  });
}

for (const name of availableBackends()) {
  describe(`batchNormRelu and addRelu give the bits of the ops they fuse (${name})`, () => {
    it('batchNormRelu: forward, running statistics and backward, training and evaluation, [N, C] and [N, C, H, W]', () => {
      useBackend(name);
      for (const shape of [
        [6, 3],
        [4, 3, 5, 6],
      ]) {
        const c = shape[1]!;
        const size = shape.reduce((p, d) => p * d, 1);
        // channel 1 has weight 0 and bias 0: every output exactly 0, where the mask must drop even an infinite gy
        const w = tensor([1.3, 0, -0.7], [c], { requiresGrad: true });
        const b = tensor([0.2, 0, -0.1], [c], { requiresGrad: true });
        const g = rand([size], { seed: 5, low: -1, high: 1 }).data;
        const inner = size / (shape[0]! * c);
        g[inner] = Number.POSITIVE_INFINITY; // image 0, channel 1
        for (const training of [true, false]) {
          const x = values(shape, 7);
          const stats = () => [tensor([0.1, -0.2, 0.3], [c]), tensor([0.5, 1.5, 2], [c])] as const;
          const [rm1, rv1] = stats();
          const [rm2, rv2] = stats();
          const fused = run((xx, ww, bb) => batchNormRelu(xx!, rm1, rv1, ww!, bb!, { training }), [x, w, b], g);
          const apart = run((xx, ww, bb) => relu(batchNorm(xx!, rm2, rv2, ww!, bb!, { training })), [x, w, b], g);
          expect(fused).toEqual(apart);
          expect(bits(rm1.data)).toEqual(bits(rm2.data));
          expect(bits(rv1.data)).toEqual(bits(rv2.data));
          expect(fused[1]!.some((v) => v !== 0)).toBe(true); // a gradient reached x
        }
        // without affine parameters or running statistics
        const x = values(shape, 8);
        const g2 = rand([size], { seed: 6 }).data;
        expect(run((xx) => batchNormRelu(xx!, null, null, null, null), [x], g2)).toEqual(
          run((xx) => relu(batchNorm(xx!, null, null, null, null)), [x], g2),
        );
      }
    });

    it('batchNormRelu under a max pooling, whose backward folds the mask in already (reluFolded)', () => {
      useBackend(name);
      const x = values([3, 4, 6, 6], 9);
      const g = rand([3, 4, 3, 3], { seed: 10 }).data;
      const pool = (y: Tensor) => maxPool2d(y, 2);
      const fused = run((xx) => pool(batchNormRelu(xx!, null, null, null, null)), [x], g);
      const apart = run((xx) => pool(relu(batchNorm(xx!, null, null, null, null))), [x], g);
      expect(fused).toEqual(apart);
      // and an output used twice (its gradients summed and masked in one pass: reluGradSum) or three times (that sum
      // plus one, masked again)
      const twice = (y: Tensor) => pool(y).add(pool(y.mul(0.5)));
      const thrice = (y: Tensor) => twice(y).add(pool(y.mul(y)));
      for (const use of [twice, thrice]) {
        expect(run((xx) => use(batchNormRelu(xx!, null, null, null, null)), [x], g)).toEqual(
          run((xx) => use(relu(batchNorm(xx!, null, null, null, null))), [x], g),
        );
      }
    });

    it('addRelu: the sum and the ReLU in one pass, one gradient for both operands', () => {
      useBackend(name);
      const shape = [2, 3, 4, 5];
      // sums of exactly 0 (both signs of zero), NaN, infinities, and values that cancel to ±0
      const a = values(shape, 11, [0, -0, -0, 1, Number.NaN, Number.POSITIVE_INFINITY, 0.75, -3]);
      const b = values(shape, 12, [0, 0, -0, -1, 2, 1, -0.75, 3]);
      const g = rand([a.size], { seed: 13, low: -1, high: 1 }).data;
      g[0] = Number.POSITIVE_INFINITY; // where the sum is 0: the mask drops it
      const fused = run((aa, bb) => addRelu(aa!, bb!), [a, b], g);
      expect(fused).toEqual(run((aa, bb) => relu(aa!.add(bb!)), [a, b], g));
      expect(fused[1]).toEqual(fused[2]); // the one gradient, handed to both
      tidy(() => {
        const y = addRelu(a, b);
        expect(y.node!.op).toBe('addRelu');
        expect(Array.from(y.data.subarray(0, 8))).toEqual([0, 0, 0, 0, Number.NaN, Number.POSITIVE_INFINITY, 0, 0]);
        expect(bits(y.data.subarray(0, 3))).toEqual([0, 0, 0]); // +0, never -0
        // operands of different shapes: the two ops
        const bias = tensor([0.5, -0.5, 0.25, 0, 1], [5]);
        const yb = addRelu(a, bias);
        expect(yb.node!.op).toBe('relu');
        expect(bits(yb.data)).toEqual(bits(relu(a.add(bias)).data));
      });
      // an output that feeds two ops (their gradients summed and masked in one pass: reluGradSum) and three
      const two = (y: Tensor) => y.mul(0.5).add(y.mul(y));
      const three = (y: Tensor) => two(y).add(y.mul(-0.25));
      for (const use of [two, three]) {
        expect(run((aa, bb) => use(addRelu(aa!, bb!)), [a, b], g)).toEqual(
          run((aa, bb) => use(relu(aa!.add(bb!))), [a, b], g),
        );
      }
      // under a max pooling (reluFolded)
      const g2 = rand([2, 3, 2, 2], { seed: 14 }).data;
      expect(run((aa, bb) => maxPool2d(addRelu(aa!, bb!), 2), [a, b], g2)).toEqual(
        run((aa, bb) => maxPool2d(relu(aa!.add(bb!)), 2), [a, b], g2),
      );
    });
  });

  describe(`modules run BatchNorm + ReLU and add + ReLU as one op where the hooks allow (${name})`, () => {
    /** One training step's output, parameter gradients, running statistics and the ops along the output's chain. */
    const step = (model: AnyModule, hook: AnyModule[]) =>
      tidy(() => {
        useBackend(name);
        for (const m of hook) m.registerForwardHook(() => undefined);
        const out = model.call(rand([3, 2, 8, 8], { seed: 1, low: -1, high: 1 })) as Tensor;
        const seen = new Set<Tensor>();
        const ops: string[] = [];
        const walk = (t: Tensor): void => {
          if (!t.node || seen.has(t)) return;
          seen.add(t);
          ops.push(t.node.op);
          for (const i of t.node.inputs) walk(i);
        };
        walk(out);
        crossEntropy(out, randint(0, 4, [3], { seed: 2 })).backward();
        const count = (op: string) => ops.filter((o) => o === op).length;
        return {
          out: bits(out.data),
          grads: [...model.namedParameters()].map(([k, p]) => [k, bits(p.grad!.data)]),
          buffers: [...model.namedBuffers()].map(([k, t]) => [k, bits(t.data)]),
          fused: [count('batchNormRelu'), count('addRelu')],
        };
      });

    for (const preActivation of [false, true]) {
      it(`nn.resnet({ preActivation: ${preActivation} }): the bits of the modules one by one`, () => {
        const make = () => resnet({ depth: 8, inChannels: 2, width: 4, numClasses: 4, preActivation, seed: 0 });
        const fused = step(make(), []);
        const m = make();
        // a hook on every ReLU that must see its own input: no pair fuses
        const apart = step(
          m,
          [...m.modules()].filter((x) => x instanceof ReLU),
        );
        // post-activation: the stem's and each block's first BN + ReLU, each block's add + ReLU; pre-activation:
        // two BN + ReLU per block and the head's
        expect(fused.fused).toEqual(preActivation ? [7, 0] : [4, 3]);
        expect(apart.fused).toEqual([0, 0]);
        expect(fused.out).toEqual(apart.out);
        expect(fused.grads).toEqual(apart.grads);
        expect(fused.buffers).toEqual(apart.buffers);
      });
    }

    it('a hook on the BatchNorm alone keeps its pair apart, the sum and ReLU still fused', () => {
      const make = () => resnet({ depth: 8, inChannels: 2, width: 4, numClasses: 4, seed: 0 });
      const m = make();
      const bns = [...m.modules()].filter((x) => x instanceof BatchNorm2d);
      const hooked = step(m, bns);
      expect(hooked.fused).toEqual([0, 3]);
      expect(hooked.out).toEqual(step(make(), []).out);
    });

    it('nn.Sequential fuses exactly nn.BatchNorm1d/2d then nn.ReLU, also without the graph', () => {
      useBackend(name);
      class MyBN extends BatchNorm2d {}
      tidy(() => {
        const x = rand([3, 4, 5, 5], { seed: 3 });
        expect(new Sequential(new MyBN(4), new ReLU()).call(x).node!.op).toBe('relu');
        const y = new Sequential(new BatchNorm2d(4), new ReLU()).call(x);
        expect(y.node!.op).toBe('batchNormRelu');
        const y0 = noGrad(() => new Sequential(new BatchNorm2d(4), new ReLU()).call(x));
        expect(y0.node).toBe(null);
        expect(bits(y0.data)).toEqual(bits(y.data));
        const h = rand([6, 4], { seed: 4 });
        expect(new Sequential(new BatchNorm1d(4), new ReLU()).call(h).node!.op).toBe('batchNormRelu');
      });
    });

    it('keeps what the gradient monitor records: one by one on its first step, fused after it, the same records', () => {
      useBackend(name);
      // a CNN with BatchNorm (Sequential pairs) and a ResNet (blocks); `block`: a hook of ours on each ReLU
      const models = [
        () => cnn({ inChannels: 2, imageSize: 8, channels: [4, 8], hidden: 8, numClasses: 4, norm: 'batch', seed: 0 }),
        () => resnet({ depth: 8, inChannels: 2, width: 4, numClasses: 4, seed: 0 }),
        () => resnet({ depth: 8, inChannels: 2, width: 4, numClasses: 4, preActivation: true, seed: 0 }),
      ];
      for (const [i, make] of models.entries()) {
        const train = (block: boolean) => {
          const m = make();
          if (block) for (const r of m.modules()) if (r instanceof ReLU) r.registerForwardHook(() => undefined);
          return monitoredSteps(m, [3, 2, 8, 8], 4, 'batchNormRelu');
        };
        const fused = train(false);
        const separate = train(true);
        expect(fused.fusedOps[0], `model ${i}`).toBe(0); // the first monitored step learns which layers a ReLU follows
        expect(fused.fusedOps[2], `model ${i}`).toBeGreaterThan(0);
        expect(separate.fusedOps, `model ${i}`).toEqual([0, 0, 0]);
        expect(fused.history, `model ${i}`).toEqual(separate.history);
      }
    });
  });
}

describe('addRelu and batchNormRelu refuse what their ops refuse', () => {
  it('names the op and the argument', () => {
    expect(() => addRelu(1 as unknown as Tensor, tensor([1], [1]))).toThrow(
      "argument 'a' passed to 'addRelu' must be a Tensor, but got number",
    );
    expect(() => batchNormRelu(tensor([1, 2], [2]), null, null, null, null)).toThrow(
      'batchNormRelu(): input must be [N, C, ...], got shape [2]',
    );
  });
});
