/**
 * The trainer's Optimizer: gradients cleared as PyTorch's set_to_none (no zeroing pass, no accumulation pass, no
 * fresh buffers), and the same numbers as zeroing in place, including for a parameter a backward does not reach.
 */
import { describe, expect, it, vi } from 'vitest';
import { availableBackends, useBackend } from '../backend/index.js';
import { crossEntropy } from '../nn/functional.js';
import { mlp } from '../nn/models.js';
import * as optim from '../optim/index.js';
import { rand, randint } from '../tensor/random.js';
import { keep, type Tensor, tensor, tidy } from '../tensor/tensor.js';
import '../tensor/methods.js';
import { Config } from './config.js';
import { buildOptimizer, buildTransform } from './optimizer.js';

const config = Config.parse({ optim: { name: 'adam', lr: 1e-2 }, clip: [{ type: 'global-norm', max: 1 }] });

/** The trainer's step with its Optimizer: backward in tidy, gradsReady, the chain, apply, zeroGrad. */
function trainerStep(params: Record<string, Tensor>, loss: () => Tensor) {
  const opt = buildOptimizer(config, params, 100);
  return () => {
    tidy(() => {
      const l = loss();
      l.backward();
      return l.item();
    });
    opt.gradsReady();
    const { updates } = opt.computeUpdates();
    opt.apply(updates);
    opt.zeroGrad();
  };
}

/** The same chain (the config's) driven as before set_to_none: gradients zeroed in place and accumulated into. */
function zeroingStep(params: Record<string, Tensor>, loss: () => Tensor) {
  const tx = buildTransform(config, 100);
  const state = tx.init(params);
  return () => {
    tidy(() => {
      const l = loss();
      l.backward();
      return l.item();
    });
    const grads: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(params)) if (p.grad) grads[k] = p.grad;
    optim.applyUpdates(params, tx.update(grads, state, params).updates);
    for (const p of Object.values(params)) if (p.grad) p.grad.storage.backend.fill(p.grad.buf, 0, p.grad.size);
  };
}

for (const name of availableBackends()) {
  describe(`the trainer's Optimizer on ${name}`, () => {
    it('a warm step zeroes and accumulates no gradient, allocates nothing and releases what it took', () => {
      const be = useBackend(name);
      const model = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const params = Object.fromEntries(model.namedParameters());
      const x = keep(rand([16, 64], { seed: 1 }));
      const y = keep(randint(0, 10, [16], { seed: 2 }));
      const step = trainerStep(params, () => crossEntropy(model.call(x), y));
      step();
      step();
      const sizes = new Set(Object.values(params).map((p) => p.size));
      const fill = vi.spyOn(be, 'fill');
      const axpy = vi.spyOn(be, 'axpy');
      const fresh = be.stats().freshAllocs;
      const live = be.stats().liveBytes;
      let calls: { fill: number; axpy: number };
      try {
        for (let i = 0; i < 5; i++) step();
        calls = {
          fill: fill.mock.calls.filter((c) => sizes.has(c[2])).length,
          axpy: axpy.mock.calls.filter((c) => sizes.has(c[3])).length,
        };
      } finally {
        fill.mockRestore();
        axpy.mockRestore();
      }
      expect(calls).toEqual({ fill: 0, axpy: 0 });
      expect(be.stats().freshAllocs).toBe(fresh);
      expect(be.stats().liveBytes).toBe(live);
    });

    it('the same weights as zeroing in place, also for a parameter one backward does not reach', () => {
      useBackend(name);
      const make = () => ({
        a: tensor([0.5, -1.5, 2], [3], { requiresGrad: true }),
        b: tensor([1, -2], [2], { requiresGrad: true }),
      });
      const p1 = make();
      const p2 = make();
      let t = 0;
      // b takes part in the first two steps only: afterwards Adam still moves it, on zero gradients, as before
      const loss = (p: ReturnType<typeof make>) => () => {
        const la = p.a.mul(p.a).sum();
        return t < 2 ? la.add(p.b.mul(p.b).mul(3).sum()) : la;
      };
      const s1 = trainerStep(p1, loss(p1));
      const s2 = zeroingStep(p2, loss(p2));
      for (t = 0; t < 5; t++) {
        s1();
        s2();
      }
      expect(p1.a.toArray()).toEqual(p2.a.toArray());
      expect(p1.b.toArray()).toEqual(p2.b.toArray());
      expect(p1.b.toArray()).not.toEqual([1, -2]);
    });

    it("with beforeApply, Adam's pass applies the updates: the weights and sums of the unfused step, observers told first", () => {
      const be = useBackend(name);
      const model = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const twin = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const p1 = Object.fromEntries(model.namedParameters());
      const p2 = Object.fromEntries(twin.namedParameters());
      const x = keep(rand([16, 64], { seed: 1 }));
      const y = keep(randint(0, 10, [16], { seed: 2 }));
      const o1 = buildOptimizer(config, p1, 100);
      const o2 = buildOptimizer(config, p2, 100);
      const step = (o: typeof o1, m: typeof model, before?: (u: Record<string, Tensor>) => void) => {
        tidy(() => {
          const l = crossEntropy(m.call(x), y);
          l.backward();
          return l.item();
        });
        o.gradsReady();
        const r = o.computeUpdates(before);
        o.apply(r.updates);
        o.zeroGrad();
        return r.applied;
      };
      const adamApply = vi.spyOn(be, 'adamApply');
      const maxAbs = vi.spyOn(be, 'maxAbs');
      try {
        for (let t = 0; t < 6; t++) {
          if (t === 3) {
            // a checkpoint restored (the same weights here): the weights' bounds are read again (maxAbs)
            o1.restoreCounters(o1.stepCount, o1.clippedSteps());
            maxAbs.mockClear();
          }
          let seen: number | null = null;
          const w0 = p1['0.weight']!.data[0]!;
          const applied = step(o1, model, (u) => {
            seen = p1['0.weight']!.data[0]!;
            expect(Object.keys(u).sort()).toEqual(Object.keys(p1).sort());
          });
          expect(step(o2, twin), `step ${t}`).toBe(false);
          expect(applied, `step ${t}`).toBe(true);
          expect(seen, 'beforeApply sees the weights before the step').toBe(w0);
          for (const k of Object.keys(p1)) {
            expect(Array.from(p1[k]!.data), `step ${t}: ${k}`).toEqual(Array.from(p2[k]!.data));
            const [a, b] = [o1.weightSumSquares[k]!, o2.weightSumSquares[k]!];
            expect(Math.abs(a - b), `step ${t}: Σw² of ${k}`).toBeLessThanOrEqual(1e-6 * b);
            const [c, d] = [o1.updateSumSquares[k]!, o2.updateSumSquares[k]!];
            expect(Math.abs(c - d), `step ${t}: Σu² of ${k}`).toBeLessThanOrEqual(1e-6 * d);
          }
          if (t === 3) expect(maxAbs.mock.calls.filter((c) => c[1] === p1['0.weight']!.size).length).toBe(1);
        }
        expect(adamApply.mock.calls.length).toBe(4 * 6);
        expect(o1.stepCount).toBe(6);
        // a step applied unfused (no hook) changes the weights: the next fused step reads their bounds again
        expect(step(o1, model)).toBe(false);
        step(o2, twin);
        maxAbs.mockClear();
        expect(step(o1, model, () => {})).toBe(true);
        step(o2, twin);
        expect(maxAbs.mock.calls.filter((c) => c[0] === p1['0.weight']!.buf).length).toBe(1);
        for (const k of Object.keys(p1)) expect(Array.from(p1[k]!.data), k).toEqual(Array.from(p2[k]!.data));
      } finally {
        adamApply.mockRestore();
        maxAbs.mockRestore();
      }
    });
  });
}
