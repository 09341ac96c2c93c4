import { describe, expect, it } from 'vitest';
import { Activation, activation, GELU, ReLU, Sigmoid, Tanh } from '../nn/activation.js';
import { ACTIVATIONS, type ActivationKey } from '../nn/activation-names.js';
import { Sequential } from '../nn/container.js';
import { crossEntropy } from '../nn/functional.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { type Tensor, tensor, tidy } from '../tensor/index.js';
import { gelu } from '../tensor/ops/elementwise.js';
import { Monitor, readClipState, summarizeLayers } from './monitor.js';

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

function set(t: Tensor, v: number[]): void {
  t.data.set(v);
}

/** Linear(3,4) → act → Linear(4,2) with fixed weights, one batch of 3 examples. */
function tiny(act: 'relu' | 'sigmoid' | 'tanh') {
  const l0 = new Linear(3, 4, { seed: 0 });
  const l2 = new Linear(4, 2, { seed: 1 });
  set(l0.weight, [0.5, -1, 0.25, 1, 0.5, -0.5, -2, 0.1, 0.3, 0.2, 0.2, 0.2]);
  set(l0.bias!, [0, 0.1, -5, 0.2]);
  set(l2.weight, [1, -1, 0.5, 0.5, -0.5, 0.25, 1, -1]);
  set(l2.bias!, [0.1, -0.1]);
  const a = act === 'relu' ? new ReLU() : act === 'sigmoid' ? new Sigmoid() : new Tanh();
  const model = new Sequential(l0, a, l2);
  const x = [1, 2, 3, -1, 0.5, 2, 0, -1, 1];
  const y = [0, 1, 1];
  return { model, l0, l2, x, y };
}

function step(
  mon: Monitor,
  model: Sequential,
  x: number[],
  y: number[],
  s: number,
  upd?: (p: Record<string, Tensor>) => Record<string, Tensor>,
  txState?: unknown,
) {
  const params = Object.fromEntries(model.namedParameters());
  model.zeroGrad();
  mon.beginStep(s);
  const loss = tidy(() => {
    const l = crossEntropy(model.call(tensor(x, [3, 3])), y);
    l.backward();
    mon.afterBackward(params);
    if (upd) mon.afterUpdate(upd(params), params, txState);
    return l.item();
  });
  mon.endStep(loss);
  return { loss, params };
}

describe('Monitor', () => {
  it('groups parameters into layers by owning module, in forward order', () => {
    const { model } = tiny('relu');
    const mon = new Monitor(model).attach();
    expect(mon.layerInfo().map((l) => l.name)).toEqual(['0', '2']);
    step(mon, model, tiny('relu').x, tiny('relu').y, 0);
    const info = mon.layerInfo();
    expect(info.map((l) => [l.name, l.type, l.size, l.activation])).toEqual([
      ['0', 'Linear', 16, 'relu'],
      ['2', 'Linear', 10, 'none'],
    ]);
    expect(info[0]!.params).toEqual(['0.weight', '0.bias']);
  });

  it('records gradient norms, max |g|, weight norms and the global norm that match the tensors', () => {
    const { model, l0, l2, x, y } = tiny('relu');
    const mon = new Monitor(model).attach();
    const { loss } = step(mon, model, x, y, 0);
    const r = mon.latest()!;
    expect(r.step).toBe(0);
    expect(r.loss).toBeCloseTo(loss, 6);
    const g0 = [...l0.weight.grad!.toArray(), ...l0.bias!.grad!.toArray()];
    const g2 = [...l2.weight.grad!.toArray(), ...l2.bias!.grad!.toArray()];
    expect(r.layers[0]!.gradNorm).toBeCloseTo(norm(g0), 6);
    expect(r.layers[1]!.gradNorm).toBeCloseTo(norm(g2), 6);
    expect(r.layers[0]!.gradMaxAbs).toBeCloseTo(Math.max(...g0.map(Math.abs)), 6);
    expect(r.layers[0]!.weightNorm).toBeCloseTo(norm([...l0.weight.toArray(), ...l0.bias!.toArray()]), 5);
    expect(r.globalNormBefore).toBeCloseTo(norm([...g0, ...g2]), 6);
    expect(r.globalNormAfter).toBe(r.globalNormBefore);
    expect(r.clipped).toBe(false);
    expect(r.updated).toBe(false);
    expect(Number.isNaN(r.layers[0]!.updateRatio)).toBe(true);
    expect(r.params!.map((p) => p.name)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect(r.params![0]!.gradNorm).toBeCloseTo(norm(l0.weight.grad!.toArray()), 6);
  });

  it('credits the ReLU output to the layer before it: post-activation moments and dead units', () => {
    const { model, x, y } = tiny('relu');
    const mon = new Monitor(model).attach();
    step(mon, model, x, y, 0);
    const l = mon.latest()!.layers[0]!;
    // pre-activations by hand: unit 2 has bias -5 and is negative for every example, so it is dead
    const W = [0.5, -1, 0.25, 1, 0.5, -0.5, -2, 0.1, 0.3, 0.2, 0.2, 0.2];
    const b = [0, 0.1, -5, 0.2];
    const post: number[] = [];
    const alive = [false, false, false, false];
    for (let n = 0; n < 3; n++) {
      for (let j = 0; j < 4; j++) {
        let z = b[j]!;
        for (let i = 0; i < 3; i++) z += W[j * 3 + i]! * x[n * 3 + i]!;
        post.push(Math.max(0, z));
        if (z > 0) alive[j] = true;
      }
    }
    const mean = post.reduce((s, v) => s + v, 0) / post.length;
    const std = Math.sqrt(post.reduce((s, v) => s + (v - mean) ** 2, 0) / post.length);
    expect(l.actMean).toBeCloseTo(mean, 5);
    expect(l.actStd).toBeCloseTo(std, 5);
    expect(l.deadFrac).toBeCloseTo(alive.filter((a) => !a).length / 4, 10);
    expect(l.deadFrac).toBeGreaterThan(0);
    expect(l.satFrac).toBeUndefined();
    expect(mon.latest()!.layers[1]!.deadFrac).toBeUndefined();
  });

  it('counts dead units per channel for images and per hidden unit across time for sequences', () => {
    class Scale extends Module {
      readonly w: Tensor;
      constructor(w: Tensor) {
        super();
        this.w = this.registerParameter('w', w);
      }
      forward(x: Tensor): Tensor {
        return x.mul(this.w);
      }
    }
    // [N=2, C=3, H=2, W=2]: channel 0 is negative everywhere; channel 1 is positive at one position of one example
    const x = tensor(
      [-1, -1, -1, -1, -1, -1, -1, 2, 1, 1, 1, 1, -3, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1],
      [2, 3, 2, 2],
    );
    const img = new Sequential(new Scale(tensor([1, 1, 1], [1, 3, 1, 1])), new ReLU());
    const mon = new Monitor(img).attach();
    mon.beginStep(0);
    tidy(() => img.call(x));
    mon.endStep(0);
    expect(mon.latest()!.layers[0]!.deadFrac).toBeCloseTo(1 / 3, 10);
    // and the ReLU output's moments, from its planes' sums: values 2, 1, 1, 1, 1, 1, 1, 1, 1 and 15 zeros
    const post = [2, 1, 1, 1, 1, 1, 1, 1, 1];
    const mean = post.reduce((a, b) => a + b, 0) / 24;
    const std = Math.sqrt(post.reduce((a, b) => a + b * b, 0) / 24 - mean * mean);
    expect(mon.latest()!.layers[0]!.actMean).toBeCloseTo(mean, 6);
    expect(mon.latest()!.layers[0]!.actStd).toBeCloseTo(std, 6);
    // [B=2, T=3, H=2]: unit 0 fires once, at one step of one example; unit 1 never
    const seq = new Sequential(new Scale(tensor([1, 1], [1, 1, 2])), new ReLU());
    const m2 = new Monitor(seq).attach();
    m2.beginStep(0);
    tidy(() => seq.call(tensor([-1, -1, -1, -1, 5, -1, -1, -1, -1, -2, -1, -1], [2, 3, 2])));
    m2.endStep(0);
    expect(m2.latest()!.layers[0]!.deadFrac).toBe(0.5);
  });

  it('reports post-activation moments for other activations too (GELU)', () => {
    const l0 = new Linear(3, 4, { seed: 0 });
    const model = new Sequential(l0, new GELU(), new Linear(4, 2, { seed: 1 }));
    const mon = new Monitor(model).attach();
    const x = tensor([1, 2, 3, -1, 0.5, 2], [2, 3]);
    const post = tidy(() => gelu(l0.call(x)).toArray());
    mon.beginStep(0);
    tidy(() => model.call(x));
    mon.endStep(0);
    const mean = post.reduce((a, b) => a + b, 0) / post.length;
    expect(mon.latest()!.layers[0]!.actMean).toBeCloseTo(mean, 5);
    expect(mon.layerInfo()[0]!.activation).toBe('other');
    expect(mon.latest()!.layers[0]!.deadFrac).toBeUndefined();
  });

  it("takes a large output's moments over all of it (80,000 values: several blocks, shared out natively)", () => {
    // the layer's own output (nothing follows the last Linear) and a GELU's output, 200 × 400 each
    const l0 = new Linear(300, 400, { seed: 0 });
    const l1 = new Linear(400, 400, { seed: 1 });
    const model = new Sequential(l0, new GELU(), l1);
    const mon = new Monitor(model).attach();
    const xs = Array.from({ length: 200 * 300 }, (_, i) => Math.sin(i * 0.37) + 0.25);
    const x = tensor(xs, [200, 300]);
    const [post, out] = tidy(() => {
      const h = gelu(l0.call(x));
      return [h.toArray(), l1.call(h).toArray()];
    });
    mon.beginStep(0);
    tidy(() => model.call(x));
    mon.endStep(0);
    const moments = (v: number[]) => {
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      return [mean, Math.sqrt(v.reduce((a, b) => a + (b - mean) * (b - mean), 0) / v.length)];
    };
    const [layer0, layer1] = mon.latest()!.layers;
    const [m0, s0] = moments(post);
    const [m1, s1] = moments(out);
    expect(Math.abs(m0!)).toBeGreaterThan(0.01);
    expect(layer0!.actMean).toBeCloseTo(m0!, 5);
    expect(layer0!.actStd).toBeCloseTo(s0!, 4);
    expect(layer1!.actMean).toBeCloseTo(m1!, 5);
    expect(layer1!.actStd).toBeCloseTo(s1!, 4);
  });

  it("takes each activation's statistics from its row of the activation table, a user's own module too", () => {
    const kindAfter = (act: Module) => {
      const model = new Sequential(new Linear(3, 4, { seed: 0 }), act, new Linear(4, 2, { seed: 1 }));
      const mon = new Monitor(model).attach();
      mon.beginStep(0);
      tidy(() => model.call(tensor([1, 2, 3, -1, 0.5, 2], [2, 3])));
      mon.endStep(0);
      return mon.layerInfo()[0]!.activation;
    };
    for (const key of Object.keys(ACTIVATIONS) as ActivationKey[]) {
      expect([key, kindAfter(activation(key))]).toEqual([key, ACTIVATIONS[key].stats ?? 'none']);
    }
    // a module of the user's that names a row is monitored as that row says, without touching the monitor
    class Clipped extends Activation {
      override readonly activation = 'tanh';
      forward(x: Tensor): Tensor {
        return x.tanh();
      }
    }
    expect(kindAfter(new Clipped())).toBe('tanh');
  });

  it('counts sigmoid and tanh outputs within 1% of their bounds as saturated', () => {
    for (const act of ['sigmoid', 'tanh'] as const) {
      const { model, l0, x, y } = tiny(act);
      // huge weights: every pre-activation is far from 0 except the constant unit
      set(l0.weight, [50, 50, 50, -50, -50, -50, 0, 0, 0, 100, -100, 100]);
      set(l0.bias!, [0, 0, 0, 0]);
      const mon = new Monitor(model).attach();
      step(mon, model, x, y, 0);
      const l = mon.latest()!.layers[0]!;
      let sat = 0;
      const f = act === 'sigmoid' ? (z: number) => 1 / (1 + Math.exp(-z)) : Math.tanh;
      for (let n = 0; n < 3; n++) {
        const xs = x.slice(n * 3, n * 3 + 3);
        const zs = [
          50 * (xs[0]! + xs[1]! + xs[2]!),
          -50 * (xs[0]! + xs[1]! + xs[2]!),
          0,
          100 * (xs[0]! - xs[1]! + xs[2]!),
        ];
        for (const z of zs) {
          const v = f(z);
          if (act === 'sigmoid' ? v < 0.01 || v > 0.99 : Math.abs(v) > 0.99) sat++;
        }
      }
      expect(l.satFrac).toBeCloseTo(sat / 12, 10);
      expect(l.satFrac).toBeGreaterThan(0.5);
      expect(l.deadFrac).toBeUndefined();
    }
  });

  it('records the update-to-weight ratio and reads clipping from the transform state', () => {
    const { model, x, y } = tiny('relu');
    const mon = new Monitor(model).attach();
    let us: Record<string, Tensor> = {};
    step(
      mon,
      model,
      x,
      y,
      0,
      (p) => {
        us = Object.fromEntries(
          Object.entries(p).map(([k, t]) => [
            k,
            tensor(
              t.toArray().map((v) => v * 0.01),
              t.shape,
            ),
          ]),
        );
        return us;
      },
      [{ normBefore: 7, clipped: true, max: 1 }, { count: 3 }],
    );
    const r = mon.latest()!;
    expect(r.updated).toBe(true);
    expect(r.layers[0]!.updateRatio).toBeCloseTo(0.01, 6);
    expect(r.params![0]!.updateRatio).toBeCloseTo(0.01, 6);
    expect(r.clipped).toBe(true);
    expect(r.globalNormAfter).toBe(1);
  });

  it('logs every N-th step only, but keeps every loss', () => {
    const { model, x, y } = tiny('relu');
    const mon = new Monitor(model, { every: 3 }).attach();
    for (let s = 0; s < 7; s++) step(mon, model, x, y, s);
    expect(mon.history.map((r) => r.step)).toEqual([0, 3, 6]);
    // later records report the same post-activation moments as the first (same batch, no update)
    const [a, , c] = mon.history;
    expect(c!.layers[0]!.actMean).toBeCloseTo(a!.layers[0]!.actMean, 6);
    expect(c!.layers[1]!.actStd).toBeCloseTo(a!.layers[1]!.actStd, 6);
    expect(Number.isFinite(c!.layers[1]!.actMean)).toBe(true);
    expect(mon.losses.length).toBe(7);
    expect(mon.losses.every((l) => Number.isFinite(l))).toBe(true);
  });

  it('sees nothing once detached, and changes no output', () => {
    const { model, x, y } = tiny('relu');
    const before = tidy(() => model.call(tensor(x, [3, 3])).toArray());
    const mon = new Monitor(model).attach();
    const during = tidy(() => model.call(tensor(x, [3, 3])).toArray());
    expect(during).toEqual(before);
    mon.detach();
    expect(mon.attached).toBe(false);
    step(mon, model, x, y, 0);
    expect(Number.isNaN(mon.latest()!.layers[0]!.actMean)).toBe(true);
    expect(mon.latest()!.layers[0]!.deadFrac).toBeUndefined();
  });

  it('counts NaN and Inf in gradients and activations', () => {
    const { model, l2, x, y } = tiny('relu');
    l2.weight.data[0] = Number.NaN;
    const mon = new Monitor(model).attach();
    step(mon, model, x, y, 0);
    const r = mon.latest()!;
    expect(Number.isNaN(r.loss)).toBe(true);
    expect(r.layers[1]!.nonFinite).toBeGreaterThan(0);
    expect(Number.isNaN(r.layers[1]!.gradMaxAbs)).toBe(true);
    expect(Number.isFinite(r.globalNormBefore)).toBe(false);
  });

  it('refuses bad options with a message that names them', () => {
    const { model } = tiny('relu');
    expect(() => new Monitor(model, { every: 0 })).toThrow('Monitor: every must be a positive integer');
    expect(() => new Monitor({} as never)).toThrow('Monitor: model must be an nn.Module');
  });
});

describe('readClipState', () => {
  it('finds clip and skip records anywhere in a chain state', () => {
    expect(readClipState(undefined)).toEqual({
      normBefore: undefined,
      normAfter: undefined,
      clipped: false,
      skipped: false,
    });
    expect(readClipState([{ norm: 0.5, clipped: false, max: 1 }, { mu: {} }])).toEqual({
      normBefore: 0.5,
      normAfter: 0.5,
      clipped: false,
      skipped: false,
    });
    expect(readClipState({ inner: [{ skipped: true, count: 2 }] }).skipped).toBe(true);
    expect(readClipState([{ normBefore: 9, normAfter: 2, clipped: true }]).normAfter).toBe(2);
  });
});

describe('summarizeLayers', () => {
  it('takes the median of each statistic over the records, ignoring NaN', () => {
    const rec = (step: number, g: number, u: number) => ({
      step,
      loss: 1,
      globalNormBefore: g,
      globalNormAfter: g,
      clipped: false,
      skipped: false,
      updated: true,
      layers: [
        {
          name: 'a',
          gradNorm: g,
          gradMaxAbs: g,
          weightNorm: 1,
          updateRatio: u,
          actMean: 0,
          actStd: 1,
          nonFinite: 0,
          deadFrac: g / 10,
        },
      ],
    });
    const s = summarizeLayers([rec(0, 1, Number.NaN), rec(1, 3, 2), rec(2, 2, 4)]);
    expect(s).toHaveLength(1);
    expect(s[0]!.gradNorm).toBe(2);
    expect(s[0]!.updateRatio).toBe(3);
    expect(s[0]!.deadFrac).toBeCloseTo(0.2);
    expect(s[0]!.satFrac).toBeUndefined();
  });
});
