/**
 * The library's monitor with the PyTorch-style `optim.Optimizer` (issue 17, item 7): the optimizer hands its gradients
 * and updates to its observer, so update/weight ratios are measured (they were NaN: the monitor never saw an update).
 */
import { describe, expect, it } from 'vitest';
import { clip } from '../index.js';
import { crossEntropy } from '../nn/functional.js';
import { mlp } from '../nn/models.js';
import { adam, sgd } from '../optim/alias.js';
import { Optimizer } from '../optim/optimizer.js';
import { chain } from '../optim/transform.js';
import { randn } from '../tensor/random.js';
import { tidy } from '../tensor/tensor.js';
import { Monitor } from './monitor.js';

const x = randn([16, 4], { seed: 1 });
const y = Array.from({ length: 16 }, (_, i) => i % 3);

/** One monitored step; returns each parameter's ‖Δw‖/‖w‖ measured by hand around `opt.step()`. */
function step(model: ReturnType<typeof mlp>, opt: Optimizer, mon: Monitor, n: number): Map<string, number> {
  mon.beginStep(n);
  const loss = tidy(() => {
    const l = crossEntropy(model.call(x), y);
    l.backward();
    return l.item();
  });
  const before = new Map(model.namedParameters().map(([k, p]) => [k, Float64Array.from(p.data)]));
  opt.step();
  opt.zeroGrad();
  mon.endStep(loss);
  const ratios = new Map<string, number>();
  for (const [k, p] of model.namedParameters()) {
    const w = before.get(k)!;
    let du = 0;
    let ww = 0;
    for (let i = 0; i < w.length; i++) {
      du += (p.data[i]! - w[i]!) ** 2;
      ww += w[i]! ** 2;
    }
    ratios.set(k, Math.sqrt(du / ww));
  }
  return ratios;
}

describe('Monitor with optim.Optimizer', () => {
  it.each([
    ['adam', () => chain(clip.byGlobalNorm(1), adam({ lr: 1e-2 }))],
    ['sgd', () => sgd({ lr: 0.1, momentum: 0.9 })],
  ])('measures every parameter’s update/weight ratio (%s), as the updates it applied', (_name, tx) => {
    const model = mlp({ inputSize: 4, hidden: [8], outputSize: 3, seed: 0 });
    const mon = new Monitor(model).attach();
    const opt = new Optimizer(model, tx(), { observer: mon });
    for (let n = 0; n < 3; n++) {
      const byHand = step(model, opt, mon, n);
      const rec = mon.latest()!;
      expect(rec.step).toBe(n);
      expect(rec.updated).toBe(true);
      for (const p of rec.params!) expect(p.updateRatio, p.name).toBeCloseTo(byHand.get(p.name)!, 5);
      for (const l of rec.layers) expect(Number.isFinite(l.updateRatio), l.name).toBe(true);
      expect(rec.layers.every((l) => l.gradNorm > 0)).toBe(true);
    }
    // what clipping did reaches the monitor too (the optimizer's state)
    if (_name === 'adam') expect(mon.latest()!.globalNormAfter).toBeLessThanOrEqual(1 + 1e-6);
  });

  it('observer can be set later; without one the monitor sees no update (ratios NaN)', () => {
    const model = mlp({ inputSize: 4, hidden: [8], outputSize: 3, seed: 0 });
    const mon = new Monitor(model).attach();
    const opt = new Optimizer(model, adam({ lr: 1e-2 }));
    step(model, opt, mon, 0);
    expect(mon.latest()!.layers.every((l) => Number.isNaN(l.updateRatio))).toBe(true);
    opt.observer = mon;
    step(model, opt, mon, 1);
    expect(mon.latest()!.layers.every((l) => l.updateRatio > 0)).toBe(true);
  });

  it('refuses an observer that is not one', () => {
    const model = mlp({ inputSize: 4, hidden: [8], outputSize: 3, seed: 0 });
    expect(() => new Optimizer(model, adam({ lr: 1e-2 }), { observer: {} as never })).toThrow(/afterBackward/);
  });

  it('a step skipped by skipNonFinite is recorded as skipped, its weights unchanged', () => {
    const model = mlp({ inputSize: 4, hidden: [8], outputSize: 3, seed: 0 });
    const mon = new Monitor(model).attach();
    const opt = new Optimizer(model, chain(clip.skipNonFinite(), adam({ lr: 1e-2 })), { observer: mon });
    mon.beginStep(0);
    tidy(() => crossEntropy(model.call(x), y).backward());
    model.namedParameters()[0]![1].grad!.data[0] = Number.NaN;
    const w = Float32Array.from(model.namedParameters()[0]![1].data);
    expect(opt.step().skipped).toBe(true);
    mon.endStep(Number.NaN);
    expect(mon.latest()!.skipped).toBe(true);
    expect(model.namedParameters()[0]![1].data).toEqual(w);
  });
});
