/**
 * nn.Sequential runs an nn.Linear and the nn.ReLU after it as one op (linearRelu): the same numbers as the two modules
 * run one by one, forward and backward, on every backend; and never where a forward hook must see the pre-activation.
 */
import { describe, expect, it } from 'vitest';
import { monitoredSteps } from '../../test/monitored-steps.js';
import { availableBackends, useBackend } from '../backend/index.js';
import { rand, randint } from '../tensor/random.js';
import { noGrad, type Tensor, tidy } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Sequential } from './container.js';
import { crossEntropy } from './functional.js';
import { Linear } from './linear.js';
import { mlp } from './models.js';

/** The op that made `t` (null for a leaf or a tensor made without the graph). */
const opOf = (t: Tensor): string | null => t.node?.op ?? null;

/** Bit patterns, so that -0 and NaN payloads count. */
const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

for (const name of availableBackends()) {
  describe(`nn.Sequential fuses a Linear and its ReLU (${name})`, () => {
    const step = (hook: 'none' | 'linear' | 'relu') =>
      tidy(() => {
        useBackend(name);
        // Linear, ReLU, Linear, ReLU, Linear: two fusable pairs; 70 and 40 wide (partial register tiles)
        const model = mlp({ inputSize: 50, hidden: [70, 40], outputSize: 5, seed: 0 });
        const seen: Tensor[] = [];
        if (hook === 'linear') model.at(0).registerForwardHook((_m, _x, y) => void seen.push(y as Tensor));
        if (hook === 'relu') model.at(1).registerForwardHook((_m, x) => void seen.push(x as Tensor));
        const x = rand([13, 50], { seed: 1, low: -1, high: 1 });
        const out = model.call(x);
        // the op feeding the last Linear: the second pair, fused unless hooked (hooks here are on the first pair)
        const ops = [opOf(out.node!.inputs[0]!), opOf(seen[0] ?? out)];
        crossEntropy(out, randint(0, 5, [13], { seed: 2 })).backward();
        const grads = [...model.namedParameters()].map(([, p]) => bits(p.grad!.data));
        const pre = seen.map((t) => bits(t.data));
        return { out: bits(out.data), grads, ops, pre };
      });

    it('gives the bits of the modules run one by one, forward and backward (natively with either sgemm)', () => {
      const be = useBackend(name) as ReturnType<typeof useBackend> & { selectGemm?: (w: string) => string };
      // natively these small products are OpenBLAS's by the fixed rule: pinning ours runs the fused epilogue
      const pins = be.selectGemm ? ['own', 'openblas', 'auto'] : ['auto'];
      try {
        for (const pin of pins) {
          be.selectGemm?.(pin);
          const fused = step('none');
          const hooked = step('linear');
          expect(fused.ops[0]).toBe('linearRelu');
          expect(hooked.ops[1]).toBe('linear'); // the hooked Linear ran alone (its ReLU too)
          expect(fused.out, pin).toEqual(hooked.out);
          expect(fused.grads, pin).toEqual(hooked.grads);
        }
      } finally {
        be.selectGemm?.('auto');
      }
    });

    it("runs the pair one by one where a hook is on either module: the hook sees the Linear's own output", () => {
      const onLinear = step('linear');
      const onRelu = step('relu');
      expect(onRelu.ops[1]).toBe('linear');
      expect(onLinear.pre).toHaveLength(1);
      expect(onRelu.pre).toEqual(onLinear.pre); // the ReLU's input is the Linear's output, pre-activation
      expect(onLinear.pre[0]!.some((b) => b >>> 31 === 1 && b !== 0x80000000)).toBe(true); // negatives: not ReLU'd
    });

    it('fuses only exactly nn.Linear then nn.ReLU, and also without the graph', () => {
      useBackend(name);
      class MyLinear extends Linear {}
      const x = rand([4, 6], { seed: 3 });
      tidy(() => {
        const sub = new Sequential(new MyLinear(6, 8, { seed: 0 }), new ReLU());
        expect(opOf(sub.call(x))).toBe('relu');
        const plain = new Sequential(new Linear(6, 8, { seed: 0 }), new ReLU());
        const y = plain.call(x);
        expect(opOf(y)).toBe('linearRelu');
        const y0 = noGrad(() => plain.call(x));
        expect(opOf(y0)).toBe(null);
        expect(bits(y0.data)).toEqual(bits(y.data));
      });
    });

    it('keeps what the gradient monitor records: one by one on its first step, fused after it, the same records', () => {
      useBackend(name);
      // three monitored steps with Adam between them; `block`: a hook of ours on each ReLU that never lets it fuse
      const train = (block: boolean) => {
        const model = mlp({ inputSize: 20, hidden: [16, 12], outputSize: 4, seed: 0 });
        if (block) for (const i of [1, 3]) model.at(i).registerForwardHook(() => undefined);
        return monitoredSteps(model, [8, 20], 4, 'linearRelu');
      };
      const fused = train(false);
      const separate = train(true);
      expect(fused.fusedOps).toEqual([0, 2, 2]); // the first monitored step learns that a ReLU follows each Linear
      expect(separate.fusedOps).toEqual([0, 0, 0]);
      expect(fused.history).toEqual(separate.history);
      expect(JSON.parse(fused.history)[2].layers[0].actMean).toBeGreaterThan(0); // post-ReLU moments, recorded
    });
  });
}
