/**
 * The gradients read once a step (issue 16): `optim.updateAndApply` measures them on entry (`plan.gradStats`) for the
 * global-norm clip, and the monitor, told `gradNormsFollow`, takes its gradient norms from there instead of reading
 * every gradient again. The records and the trained weights are those of the monitor reading the gradients itself.
 */
import { describe, expect, it, vi } from 'vitest';
import { getBackend } from '../backend/index.js';
import * as clip from '../clip/index.js';
import { crossEntropy } from '../nn/functional.js';
import { mlp } from '../nn/models.js';
import { adam } from '../optim/alias.js';
import { applyUpdates, chain, type GradientStats, gradientStats, updateAndApply } from '../optim/transform.js';
import { randn } from '../tensor/random.js';
import { dispose, type Tensor, tensor, tidy } from '../tensor/tensor.js';
import { Monitor, type StepRecord } from './monitor.js';
import '../tensor/methods.js';

const x = randn([32, 6], { seed: 1 });
const y = Array.from({ length: 32 }, (_, i) => i % 3);

/**
 * A monitored training loop as the trainer's (clip, Adam in its own pass, the monitor's afterApply), with the
 * gradients' norms shared (`share`) or read by the monitor in afterBackward; `skipAt` steps end after the backward
 * (as a step the trainer skips). `meddle` may hand the monitor stats of other tensors.
 */
function train(
  share: boolean,
  steps: number,
  opts: { skipAt?: number; meddle?: (s: GradientStats) => GradientStats } = {},
): { records: StepRecord[]; weights: number[][]; gradReads: number } {
  let gradReads = 0;
  const model = mlp({ inputSize: 6, hidden: [12, 12], outputSize: 3, seed: 4 });
  const params = Object.fromEntries(model.namedParameters());
  const tx = chain(clip.byGlobalNorm(0.05), adam({ lr: 0.05 }));
  let state = tx.init(params);
  const mon = new Monitor(model, { every: 1 }).attach();
  const weightSS: Record<string, number> = {};
  const updateSS: Record<string, number> = {};
  const stats = gradientStats();
  const given = (): GradientStats => (opts.meddle ? opts.meddle(stats) : stats);
  const plan = {
    weightBounds: {},
    weightSumSquares: weightSS,
    updateSumSquares: updateSS,
    beforeApply: (u: Record<string, Tensor>) =>
      mon.afterUpdate(u, params, state, { updateNormsFollow: true, ...(share ? { gradStats: given() } : {}) }),
    ...(share ? { gradStats: stats } : {}),
  };
  // count the reductions over gradient buffers
  const be = getBackend();
  const grads = new Set<unknown>();
  const ssm = vi.spyOn(be, 'sumSquaresMaxAbs');
  const ss = vi.spyOn(be, 'sumSquares');
  try {
    for (let t = 0; t < steps; t++) {
      mon.beginStep(t);
      const loss = tidy(() => {
        const l = crossEntropy(model.call(x), y);
        l.backward();
        return l.item();
      });
      // (per step: the pool hands a released buffer out again)
      grads.clear();
      for (const p of Object.values(params)) grads.add(p.grad!.buf);
      ssm.mockClear();
      ss.mockClear();
      mon.afterBackward(params, share ? { gradNormsFollow: true } : {});
      if (t !== opts.skipAt) {
        const g: Record<string, Tensor> = {};
        for (const [k, p] of Object.entries(params)) g[k] = p.grad!;
        const r = updateAndApply(tx, g, state, params, plan);
        state = r.state;
        if (!r.applied) {
          mon.afterUpdate(r.updates, params, r.state, {
            updateNormsFollow: true,
            ...(share ? { gradStats: given() } : {}),
          });
          applyUpdates(params, r.updates, weightSS, updateSS);
        }
        mon.afterApply(weightSS, updateSS);
      }
      gradReads += [...ssm.mock.calls, ...ss.mock.calls].filter((c) => grads.has(c[0])).length;
      // as the trainer: a skipped step's observers end before the gradients are released
      if (t === opts.skipAt) mon.endStep(loss);
      for (const p of Object.values(params)) {
        dispose(p.grad!);
        p.grad = null;
      }
      if (t !== opts.skipAt) mon.endStep(loss);
    }
  } finally {
    ssm.mockRestore();
    ss.mockRestore();
    mon.detach();
  }
  return { records: mon.history, weights: Object.values(params).map((p) => Array.from(p.data)), gradReads };
}

describe('the gradients read once a step, for the clip and the monitor', () => {
  it('the same records and weights to the bit, with one read of each gradient where there were two', () => {
    const steps = 12;
    const a = train(false, steps);
    const b = train(true, steps);
    expect(b.records).toEqual(a.records);
    expect(b.weights).toEqual(a.weights);
    // the mlp has 6 parameters: the monitor's read and the clip's where unshared, one where shared
    expect(a.gradReads).toBe(2 * 6 * steps);
    expect(b.gradReads).toBe(6 * steps);
    // the clip clipped on some steps (its norm came from the shared sums there too)
    expect(a.records.some((r) => r.clipped)).toBe(true);
  });

  it('a step with no update (skipped): the monitor reads the gradients at endStep', () => {
    const a = train(false, 4, { skipAt: 2 });
    const b = train(true, 4, { skipAt: 2 });
    expect(b.records).toEqual(a.records);
    expect(b.records[2]!.updated).toBe(false);
    expect(b.records[2]!.globalNormBefore).toBeGreaterThan(0);
  });

  it('never takes numbers measured on other tensors', () => {
    // stats that name other tensors (with numbers of their own) for every parameter: the monitor reads its gradients
    const bogus = tensor([1e3, 1e3], [2]);
    const meddle = (s: GradientStats): GradientStats => ({
      sumSquares: Object.fromEntries(Object.keys(s.sumSquares).map((k) => [k, 1e6])),
      maxAbs: Object.fromEntries(Object.keys(s.maxAbs).map((k) => [k, 1e3])),
      tensors: Object.fromEntries(Object.keys(s.tensors).map((k) => [k, bogus])),
    });
    const a = train(false, 3);
    const b = train(true, 3, { meddle });
    expect(b.records).toEqual(a.records);
  });
});
