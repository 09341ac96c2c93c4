/**
 * nn.Sequential runs an nn.Conv2d and the nn.ReLU after it as one op (conv2dRelu): the same numbers as the two
 * modules run one by one, forward and backward, on every backend; and never where a forward hook must see the
 * pre-activation (the gradient monitor's hooks: what it records is unchanged).
 */
import { describe, expect, it } from 'vitest';
import { monitoredSteps, opChain } from '../../test/monitored-steps.js';
import { availableBackends, useBackend } from '../backend/index.js';
import { rand, randint } from '../tensor/random.js';
import { noGrad, type Tensor, tidy } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Sequential } from './container.js';
import { Conv2d } from './conv.js';
import { crossEntropy } from './functional.js';
import { cnn } from './models.js';

/** The op that made `t` (null for a leaf or a tensor made without the graph). */
const opOf = (t: Tensor): string | null => t.node?.op ?? null;

/** Bit patterns, so that -0 and NaN payloads count. */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

for (const name of availableBackends()) {
  describe(`nn.Sequential fuses a Conv2d and its ReLU (${name})`, () => {
    // the CLI CNN's layout in small: Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d, Flatten, Linear, ReLU, Linear
    const model = () => cnn({ inChannels: 1, imageSize: 12, channels: [8, 16], hidden: 20, numClasses: 5, seed: 0 });
    const step = (hook: 'none' | 'conv' | 'relu') =>
      tidy(() => {
        useBackend(name);
        const m = model();
        const seen: Tensor[] = [];
        if (hook === 'conv') m.at(0).registerForwardHook((_m, _x, y) => void seen.push(y as Tensor));
        if (hook === 'relu') m.at(1).registerForwardHook((_m, x) => void seen.push(x as Tensor));
        const x = rand([3, 1, 12, 12], { seed: 1, low: -1, high: 1 });
        const out = m.call(x);
        // what fed the pooling layers: the first pair (hooked or not) and the second (never hooked here)
        const ops: (string | null)[] = [];
        const walk = (t: Tensor): void => {
          if (!t.node) return;
          if (t.node.op === 'maxPool2d') ops.unshift(opOf(t.node.inputs[0]!));
          for (const i of t.node.inputs) walk(i);
        };
        walk(out);
        crossEntropy(out, randint(0, 5, [3], { seed: 2 })).backward();
        const grads = [...m.namedParameters()].map(([, p]) => bits(p.grad!.data));
        return { out: bits(out.data), grads, ops, pre: seen.map((t) => bits(t.data)) };
      });

    it('gives the bits of the modules run one by one, forward and backward', () => {
      const fused = step('none');
      const hooked = step('conv');
      expect(fused.ops).toEqual(['conv2dRelu', 'conv2dRelu']);
      expect(hooked.ops).toEqual(['relu', 'conv2dRelu']); // the hooked pair ran one by one
      expect(fused.out).toEqual(hooked.out);
      expect(fused.grads).toEqual(hooked.grads);
    });

    it("runs the pair one by one where a hook is on either module: the hook sees the Conv2d's own output", () => {
      const onConv = step('conv');
      const onRelu = step('relu');
      expect(onRelu.ops).toEqual(['relu', 'conv2dRelu']);
      expect(onConv.pre).toHaveLength(1);
      expect(onRelu.pre).toEqual(onConv.pre); // the ReLU's input is the Conv2d's output, pre-activation
      expect(onConv.pre[0]!.some((b) => b >>> 31 === 1 && b !== 0x80000000)).toBe(true); // negatives: not ReLU'd
    });

    it('fuses only exactly nn.Conv2d then nn.ReLU, and also without the graph', () => {
      useBackend(name);
      class MyConv extends Conv2d {}
      const x = rand([2, 3, 6, 6], { seed: 3 });
      tidy(() => {
        const sub = new Sequential(new MyConv(3, 8, 3, { seed: 0 }), new ReLU());
        expect(opOf(sub.call(x))).toBe('relu');
        const plain = new Sequential(new Conv2d(3, 8, 3, { seed: 0 }), new ReLU());
        const y = plain.call(x);
        expect(opOf(y)).toBe('conv2dRelu');
        const y0 = noGrad(() => plain.call(x));
        expect(opOf(y0)).toBe(null);
        expect(bits(y0.data)).toEqual(bits(y.data));
      });
    });

    it('keeps what the gradient monitor records: one by one on its first step, fused after it, the same records', () => {
      useBackend(name);
      // three monitored steps with Adam between them; `block`: a hook of ours on each ReLU that never lets it fuse
      const train = (block: boolean) => {
        const m = model();
        if (block) for (const i of [1, 4]) m.at(i).registerForwardHook(() => undefined);
        const r = monitoredSteps(m, [3, 1, 12, 12], 5, 'conv2dRelu');
        return { ...r, unhooked: opChain(tidy(() => m.call(rand([2, 1, 12, 12], { seed: 4 })))) };
      };
      const fused = train(false);
      const separate = train(true);
      expect(fused.fusedOps).toEqual([0, 2, 2]); // the first monitored step learns that a ReLU follows each conv
      expect(separate.fusedOps).toEqual([0, 0, 0]);
      // detached: the monitor's hooks are gone (ours stay)
      expect(fused.unhooked.filter((o) => o === 'conv2dRelu')).toHaveLength(2);
      expect(separate.unhooked.filter((o) => o === 'conv2dRelu')).toHaveLength(0);
      expect(fused.history).toEqual(separate.history);
      expect(JSON.parse(fused.history)[2].layers[0].actMean).toBeGreaterThan(0); // post-ReLU moments, recorded
    });
  });
}
