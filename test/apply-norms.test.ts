import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { Monitor } from '../src/monitor/monitor.js';
import { crossEntropy } from '../src/nn/functional.js';
import { mlp } from '../src/nn/models.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { keep, type Tensor, tidy } from '../src/tensor/tensor.js';

for (const name of availableBackends()) {
  describe(`applying updates while measuring the weights (${name})`, () => {
    it('axpySumSquares updates exactly as axpy and returns the new sum of squares', () => {
      const be = useBackend(name);
      for (const n of [0, 1, 7, 8, 9, 1000, 200_003]) {
        const x = rand([n], { seed: n, low: -1, high: 1 });
        const y1 = rand([n], { seed: n + 1, low: -3, high: 3 });
        const y2 = rand([n], { seed: n + 1, low: -3, high: 3 });
        be.axpy(-0.37, x.buf, y1.buf, n);
        const xss = new Float64Array([Number.NaN]);
        const ss = be.axpySumSquares(-0.37, x.buf, y2.buf, n, xss);
        expect(Array.from(y2.data)).toEqual(Array.from(y1.data));
        const want = be.sumSquares(y1.buf, n);
        expect(Math.abs(ss - want)).toBeLessThanOrEqual(1e-6 * want);
        const wantX = be.sumSquares(x.buf, n);
        expect(Math.abs(xss[0]! - wantX)).toBeLessThanOrEqual(1e-6 * wantX);
        // alpha = 1 (applying an update) takes the float32 path in C: the same bits as axpy
        const y3 = rand([n], { seed: n + 2, low: -3, high: 3 });
        const y4 = rand([n], { seed: n + 2, low: -3, high: 3 });
        be.axpy(1, x.buf, y3.buf, n);
        be.axpySumSquares(1, x.buf, y4.buf, n, xss);
        expect(Array.from(y4.data)).toEqual(Array.from(y3.data));
        expect(Math.abs(xss[0]! - wantX)).toBeLessThanOrEqual(1e-6 * wantX);
      }
    });

    it('a monitor fed by afterApply reports the same weight norms and update ratios as one that reads them', () => {
      useBackend(name);
      const run = (feed: boolean) => {
        const model = mlp({ inputSize: 20, hidden: [16], outputSize: 4, seed: 0 });
        const x = keep(rand([8, 20], { seed: 1 }));
        const y = keep(randint(0, 4, [8], { seed: 2 }));
        const params = Object.fromEntries(model.namedParameters());
        const tx = optim.chain(clip.byGlobalNorm(1), optim.adam({ lr: 0.05 }));
        let state = tx.init(params);
        const mon = new Monitor(model, { every: 1 });
        mon.attach();
        const applied: Record<string, number> = {};
        const appliedUpdates: Record<string, number> = {};
        for (let step = 0; step < 5; step++) {
          mon.beginStep(step);
          const loss = tidy(() => {
            const l = crossEntropy(model.call(x), y);
            l.backward();
            return l.item();
          });
          mon.afterBackward(params);
          const grads: Record<string, Tensor> = {};
          for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
          const r = tx.update(grads, state, params);
          state = r.state;
          mon.afterUpdate(r.updates, params, r.state, { updateNormsFollow: feed });
          if (feed) {
            optim.applyUpdates(params, r.updates, applied, appliedUpdates);
            mon.afterApply(applied, appliedUpdates);
          } else optim.applyUpdates(params, r.updates);
          for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
          mon.endStep(loss);
        }
        return mon.history.map((h) => h.layers.map((l) => [l.weightNorm, l.updateRatio]));
      };
      const fed = run(true);
      const read = run(false);
      expect(fed).toHaveLength(5);
      for (let s = 0; s < 5; s++) {
        for (let l = 0; l < read[s]!.length; l++) {
          const [wf, uf] = fed[s]![l]!;
          const [wr, ur] = read[s]![l]!;
          expect(wf).toBeCloseTo(wr!, 5);
          expect(Number.isFinite(uf)).toBe(true);
          expect(Math.abs(uf! - ur!)).toBeLessThanOrEqual(1e-6 * Math.abs(ur!));
        }
      }
      // the weights moved, so a stale norm would show
      expect(read[4]![0]![0]).not.toBeCloseTo(read[0]![0]![0]!, 3);
    });
  });
}
