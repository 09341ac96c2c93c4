/**
 * Optimizers against torch.optim (test/fixtures/remedies.json): the same initial parameters and the same six
 * gradients give the same parameters after every step, to 1e-5 relative. Plus chain, schedules, the Optimizer
 * wrapper and state flattening.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { fromPacked, maxRelError, type Packed, remedies } from '../../test/remedies.js';
import { availableBackends, getBackend, useBackend } from '../backend/index.js';
import * as clip from '../clip/index.js';
import { Linear } from '../nn/linear.js';
import { Tensor, tensor } from '../tensor/tensor.js';
import {
  adam,
  adamw,
  addDecayedWeights,
  applyUpdates,
  chain,
  findNonFiniteUpdate,
  flattenState,
  type GradientTransformation,
  gradientStats,
  NonFiniteUpdateError,
  Optimizer,
  type Params,
  restoreState,
  rmsprop,
  scale,
  scaleByAdam,
  scaleByLearningRate,
  schedules,
  sgd,
  stateRecords,
  updateAndApply,
} from './index.js';
import '../tensor/methods.js';

const fx = remedies.optim;
const load = (d: Record<string, Packed>): Params =>
  Object.fromEntries(Object.entries(d).map(([k, v]) => [k, fromPacked(v)]));

// biome-ignore lint/suspicious/noExplicitAny: fixture arguments
function build(name: string, a: any): GradientTransformation<unknown> {
  switch (name) {
    case 'sgd':
      return sgd(a);
    case 'adam':
      return adam(a);
    case 'adamw':
      return adamw(a);
    case 'rmsprop':
      return rmsprop(a);
    case 'clipAdam':
      return chain(clip.byGlobalNorm(a.max), adam({ lr: a.lr }));
    case 'adamSchedule':
      return adam({ lr: schedules.linearWarmupCosine(a) });
    default:
      throw new Error(name);
  }
}

/** Runs a transformation over the fixture's gradients; returns the worst relative error over the trajectory. */
function run(c: { name: string; args: object; trajectory: Record<string, Packed>[] }): number {
  const params = load(fx.params);
  const tx = build(c.name, c.args);
  let state = tx.init(params);
  let worst = 0;
  for (const [i, gp] of (fx.grads as Record<string, Packed>[]).entries()) {
    const grads = load(gp);
    if (c.name === 'clipAdam') for (const g of Object.values(grads)) g.data.set(g.data.map((v) => v * 3));
    const r = tx.update(grads, state, params);
    state = r.state;
    applyUpdates(params, r.updates);
    for (const [k, p] of Object.entries(c.trajectory[i]!)) worst = Math.max(worst, maxRelError(params[k]!, p, 1e-2));
  }
  return worst;
}

describe('optimizers match torch.optim step by step', () => {
  for (const c of fx.cases) {
    it(`${c.name} ${JSON.stringify(c.args)}`, () => {
      expect(run(c)).toBeLessThan(1e-5);
    });
  }
  it('clip then Adam records the norm PyTorch returned', () => {
    const c = fx.cases.find((x: { name: string }) => x.name === 'clipAdam');
    const params = load(fx.params);
    const tx = chain(clip.byGlobalNorm(1), adam({ lr: 1e-3 }));
    const state = tx.init(params);
    for (const [i, gp] of (fx.grads as Record<string, Packed>[]).entries()) {
      const grads = load(gp);
      for (const g of Object.values(grads)) g.data.set(g.data.map((v) => v * 3));
      tx.update(grads, state, params);
      const rec = stateRecords(state).find((s) => s.kind === 'clipByGlobalNorm') as clip.ByGlobalNormState;
      expect(rec.normBefore).toBeCloseTo(c.norms[i], 4);
      expect(rec.clipped).toBe(c.norms[i] > 1);
    }
  });
  it('the schedule gives the learning rates LambdaLR used', () => {
    const c = fx.cases.find((x: { name: string }) => x.name === 'adamSchedule');
    const s = schedules.linearWarmupCosine(c.args);
    for (const [i, lr] of (c.lrs as number[]).entries()) expect(s(i)).toBeCloseTo(lr, 12);
  });
});

/** The 32-bit LCG of scripts/fixtures/fx_adam_float32.py: n values in [-scale, scale), rounded to float32. */
function lcg(seed: number): (n: number, scale: number) => Float32Array {
  let s = seed;
  return (n, scale) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (1664525 * s + 1013904223) % 4294967296;
      out[i] = (s / 4294967296 - 0.5) * 2 * scale;
    }
    return out;
  };
}

describe("Adam tracks torch.optim.Adam's own float32 trajectory", () => {
  const fx32 = JSON.parse(readFileSync(new URL('../../test/fixtures/adam-float32.json', import.meta.url), 'utf8')) as {
    n: number;
    steps: number;
    every: number;
    lr: number;
    seed: number;
    checkpoints: number[][];
  };
  const initial = getBackend().name as Parameters<typeof useBackend>[0];
  for (const name of availableBackends()) {
    it(`${fx32.steps} steps on ${name}: within 1.5e-6 relative of PyTorch's parameters`, () => {
      useBackend(name);
      try {
        const values = lcg(fx32.seed);
        const p = tensor(values(fx32.n, 0.05));
        const grads = Array.from({ length: fx32.steps }, (_, t) => values(fx32.n, [1, 0.1, 0.01, 0.001][t % 4]!));
        const tx = adam({ lr: fx32.lr });
        let state = tx.init({ p });
        let worst = 0;
        for (const [t, g] of grads.entries()) {
          const r = tx.update({ p: tensor(g) }, state, { p });
          state = r.state;
          applyUpdates({ p }, r.updates);
          if ((t + 1) % fx32.every === 0)
            worst = Math.max(worst, maxRelError(p, fx32.checkpoints[(t + 1) / fx32.every - 1]!, 1e-2));
        }
        // float32 in PyTorch's order gives 8.4e-7 here; the float64 arithmetic used before drifted to 2.8e-6
        expect(worst).toBeLessThan(1.5e-6);
      } finally {
        useBackend(initial);
      }
    });
  }
});

describe('schedules', () => {
  it('step and cosine equal PyTorch StepLR and CosineAnnealingLR', () => {
    const st = schedules.step(0.1, { stepSize: 3, gamma: 0.5 });
    for (const [i, lr] of (fx.schedules.step as number[]).entries()) expect(st(i)).toBeCloseTo(lr, 12);
    const cos = schedules.cosine(0.1, { decaySteps: 10, alpha: 0.1 });
    for (const [i, lr] of (fx.schedules.cosine as number[]).entries()) expect(cos(i)).toBeCloseTo(lr, 9);
    expect(cos(50)).toBeCloseTo(0.01, 12); // stays at the end value (optax), where PyTorch would rise again
  });
  it('warmup and constant', () => {
    const w = schedules.warmup(1, { warmupSteps: 4 });
    expect([0, 1, 2, 4, 9].map(w)).toEqual([0, 0.25, 0.5, 1, 1]);
    expect(schedules.constant(3)(100)).toBe(3);
    expect(() => schedules.linearWarmupCosine({ peak: 1, warmupSteps: 10, decaySteps: 5 })).toThrow(
      /decaySteps \(5\) counts the warm-up too/,
    );
  });
});

describe('chain and transformations', () => {
  it('adam is scaleByAdam then −lr, and chain keeps one state per link', () => {
    const p = { w: tensor([1, 2, 3]) };
    const a = adam({ lr: 0.1 });
    const b = chain(scaleByAdam(), scaleByLearningRate(0.1));
    const sa = a.init(p);
    const sb = b.init(p);
    const ua = a.update({ w: tensor([0.5, -1, 2]) }, sa, p).updates.w!.toArray();
    const ub = b.update({ w: tensor([0.5, -1, 2]) }, sb, p).updates.w!.toArray();
    expect(ua).toEqual(ub);
    expect(ua.map((v) => +v.toFixed(6))).toEqual([-0.1, 0.1, -0.1]); // the first Adam step is −lr·sign(g)
    expect(stateRecords(sa).map((s) => s.kind)).toEqual(['chain', 'scaleByAdam', 'scaleByLearningRate']);
  });
  it('updates are written into the gradient buffers, state buffers are reused', () => {
    const p = { w: tensor([1, 2]) };
    const tx = adam({ lr: 0.1 });
    const s = tx.init(p);
    const g = { w: tensor([1, 1]) };
    const r = tx.update(g, s, p);
    expect(r.updates.w).toBe(g.w);
    expect(r.state).toBe(s);
    const mu = (stateRecords(s)[1] as unknown as { mu: Params }).mu.w;
    tx.update({ w: tensor([1, 1]) }, s, p);
    expect((stateRecords(s)[1] as unknown as { mu: Params }).mu.w).toBe(mu);
  });
  it('a subset of the keys updates only those', () => {
    const p = { a: tensor([1]), b: tensor([1]) };
    const tx = sgd({ lr: 1, momentum: 0.5 });
    const s = tx.init(p);
    applyUpdates(p, tx.update({ a: tensor([2]) }, s, p).updates);
    expect([p.a.item(), p.b.item()]).toEqual([-1, 1]);
  });
  it('errors name the argument and the fix', () => {
    // @ts-expect-error lr missing on purpose
    expect(() => adam({})).toThrow('adam(): lr is required, e.g. adam({ lr: 1e-3 })');
    expect(() => adam({ lr: -1 })).toThrow('scaleByLearningRate(): lr must be a non-negative number or a schedule');
    expect(() => adam({ lr: 1, b1: 1 })).toThrow('scaleByAdam(): b1 must be a number in [0, 1), got 1');
    expect(() => sgd({ lr: 1, nesterov: true })).toThrow('Nesterov momentum requires a momentum > 0');
    const tx = adam({ lr: 1 });
    const s = tx.init({ a: tensor([1]) });
    expect(() => tx.update({ b: tensor([1]) }, s)).toThrow(
      "scaleByAdam.update(): grads has 'b', which init() did not see",
    );
    expect(() => adamw({ lr: 1 }).update({ a: tensor([1]) }, adamw({ lr: 1 }).init({ a: tensor([1]) }))).toThrow(
      'addDecayedWeights.update(): this transformation needs the parameters: call update(grads, state, params)',
    );
    expect(() => chain(scale(1), {} as GradientTransformation)).toThrow(
      'chain(): argument 1 is not a gradient transformation',
    );
  });
});

/** The same transformation without the optional members through which `chain` fuses links (run one by one). */
function apart<S>(t: GradientTransformation<S>): GradientTransformation<S> {
  return { kind: t.kind, init: (p) => t.init(p), update: (g, s, p) => t.update(g, s, p) };
}

describe('fused chains', () => {
  const defaultBackend = getBackend().name as Parameters<typeof useBackend>[0];
  const lin = (seed: number) => new Linear(7, 5, { seed });
  const gradsFor = (step: number, big: number): Params => ({
    weight: tensor(
      Array.from({ length: 35 }, (_, i) => big * Math.sin(i * 1.7 + step) + (i === 3 ? -0 : 0)),
      [5, 7],
    ),
    bias: tensor(
      Array.from({ length: 5 }, (_, i) => big * Math.cos(i + 2.3 * step)),
      [5],
    ),
  });
  /** Runs both transformations over the same gradients (clipped on some steps, not others); bits and states equal. */
  const same = (fused: GradientTransformation<unknown>, reference: GradientTransformation<unknown>, steps = 6) => {
    const p1 = Object.fromEntries(lin(3).namedParameters());
    const p2 = Object.fromEntries(lin(3).namedParameters());
    let s1 = fused.init(p1);
    let s2 = reference.init(p2);
    for (let t = 0; t < steps; t++) {
      const big = t % 2 ? 10 : 0.01; // the global norm 1 clips on odd steps
      const r1 = fused.update(gradsFor(t, big), s1, p1);
      const r2 = reference.update(gradsFor(t, big), s2, p2);
      applyUpdates(p1, r1.updates);
      applyUpdates(p2, r2.updates);
      s1 = r1.state;
      s2 = r2.state;
      expect(Boolean(r1.halt)).toBe(Boolean(r2.halt));
      for (const k of Object.keys(p1)) {
        expect(Array.from(r1.updates[k]!.data)).toEqual(Array.from(r2.updates[k]!.data));
        expect(Array.from(p1[k]!.data)).toEqual(Array.from(p2[k]!.data));
      }
      // the fused side nests adam()'s own chain: compare the links' states
      const links = (s: unknown) =>
        stateRecords(s)
          .filter((x) => x.kind !== 'chain')
          .map((x) => JSON.stringify(x, (_k, v) => (v instanceof Tensor ? Array.from(v.data) : v)));
      expect(links(s1)).toEqual(links(s2));
    }
  };

  for (const name of availableBackends()) {
    it(`clip then Adam on ${name}: the numbers and state of the links run one by one, in one pass`, () => {
      const be = useBackend(name);
      try {
        const scalePass = vi.spyOn(be, 'scale');
        const adamUpdate = vi.spyOn(be, 'adamUpdate');
        try {
          same(
            chain(clip.byGlobalNorm(1), adam({ lr: 0.01 })),
            chain(apart(clip.byGlobalNorm(1)), apart(scaleByAdam()), apart(scaleByLearningRate(0.01))),
          );
          // the reference's clip (3 of 6 steps) and learning rate passes, and none of the fused side's
          expect(scalePass.mock.calls.length).toBe(2 * (3 + 6));
          expect(adamUpdate.mock.calls.length).toBe(2 * 2 * 6);
        } finally {
          scalePass.mockRestore();
          adamUpdate.mockRestore();
        }
      } finally {
        useBackend(defaultBackend);
      }
    });
  }

  it('the same with AMSGrad, a schedule, weight decay, AdamW and a constant scale', () => {
    same(
      chain(clip.byGlobalNorm(1), adam({ lr: 0.01, amsgrad: true })),
      chain(apart(clip.byGlobalNorm(1)), apart(scaleByAdam({ amsgrad: true })), apart(scaleByLearningRate(0.01))),
    );
    const sched = schedules.cosine(0.05, { decaySteps: 4 });
    same(
      chain(clip.byGlobalNorm(0.5), adam({ lr: sched, weightDecay: 0.1 })),
      chain(
        apart(clip.byGlobalNorm(0.5)),
        apart(addDecayedWeights(0.1)),
        apart(scaleByAdam()),
        apart(scaleByLearningRate(sched)),
      ),
    );
    same(
      chain(clip.byGlobalNorm(1), adamw({ lr: 0.01 })),
      chain(
        apart(clip.byGlobalNorm(1)),
        apart(scaleByAdam()),
        apart(addDecayedWeights(0.01)),
        apart(scaleByLearningRate(0.01)),
      ),
    );
    same(chain(scaleByAdam({ b1: 0.5 }), scale(-0.3)), chain(apart(scaleByAdam({ b1: 0.5 })), apart(scale(-0.3))));
    same(
      chain(clip.byGlobalNorm(1), sgd({ lr: 0.1 })),
      chain(apart(clip.byGlobalNorm(1)), apart(scaleByLearningRate(0.1))),
    );
  });

  it('a non-finite step halts the same way: the later links keep their state', () => {
    const grads = (step: number, big: number) => {
      const g = gradsFor(step, big);
      if (step === 2) g.bias!.data[1] = Number.NaN;
      return g;
    };
    const p1 = Object.fromEntries(lin(4).namedParameters());
    const p2 = Object.fromEntries(lin(4).namedParameters());
    const f = chain(clip.skipNonFinite(), clip.byGlobalNorm(1), adam({ lr: 0.01 }));
    const r = chain(
      apart(clip.skipNonFinite()),
      apart(clip.byGlobalNorm(1)),
      apart(scaleByAdam()),
      apart(scaleByLearningRate(0.01)),
    );
    const s1 = f.init(p1);
    const s2 = r.init(p2);
    for (let t = 0; t < 4; t++) {
      const r1 = f.update(grads(t, 5), s1, p1);
      const r2 = r.update(grads(t, 5), s2, p2);
      expect(Boolean(r1.halt)).toBe(t === 2);
      expect(Boolean(r2.halt)).toBe(t === 2);
      applyUpdates(p1, r1.updates);
      applyUpdates(p2, r2.updates);
      expect(Array.from(p1.weight!.data)).toEqual(Array.from(p2.weight!.data));
    }
    const adamCount = (s: unknown) =>
      stateRecords(s).find((x) => x.kind === 'scaleByAdam') as unknown as { count: number };
    expect(adamCount(s1).count).toBe(3);
    expect(adamCount(s2).count).toBe(3);
  });

  it('a schedule that fails throws as before, after Adam moved its moments', () => {
    const bad = (step: number) => (step < 1 ? 0.01 : Number.NaN);
    const p = Object.fromEntries(lin(5).namedParameters());
    const tx = chain(clip.byGlobalNorm(1), adam({ lr: bad }));
    const st = tx.init(p);
    tx.update(gradsFor(0, 1), st, p);
    expect(() => tx.update(gradsFor(1, 1), st, p)).toThrow(
      'scaleByLearningRate(): the schedule returned NaN at step 1',
    );
    expect((stateRecords(st).find((x) => x.kind === 'scaleByAdam') as unknown as { count: number }).count).toBe(2);
  });
});

/** A small layer and gradients for it that change with the step (`big` scales them), for the updateAndApply tests. */
const lin = (seed: number) => new Linear(7, 5, { seed });
const gradsFor = (step: number, big: number): Params => ({
  weight: tensor(
    Array.from({ length: 35 }, (_, i) => big * Math.sin(i * 1.3 + step)),
    [5, 7],
  ),
  bias: tensor(
    Array.from({ length: 5 }, (_, i) => big * Math.cos(i + 1.9 * step)),
    [5],
  ),
});

describe('updateAndApply: Adam applied in its own pass', () => {
  const defaultBackend = getBackend().name as Parameters<typeof useBackend>[0];
  const tensorsOf = (s: unknown) =>
    stateRecords(s)
      .filter((x) => x.kind !== 'chain')
      .map((x) => JSON.stringify(x, (_k, v) => (v instanceof Tensor ? Array.from(v.data) : v)));

  /**
   * `updateAndApply` against `update` then `applyUpdates` (measuring where `measure`) on the same gradients: the same
   * parameters and states to the bit every step, and whether each step was applied in Adam's pass.
   */
  const compare = (
    make: () => GradientTransformation<unknown>,
    grads: (step: number) => Params,
    steps: number,
    measure: boolean,
    p0 = lin(3),
  ): boolean[] => {
    const p1 = Object.fromEntries(p0.namedParameters().map(([k, t]) => [k, tensor(Array.from(t.data), t.shape)]));
    const p2 = Object.fromEntries(p0.namedParameters().map(([k, t]) => [k, tensor(Array.from(t.data), t.shape)]));
    const f = make();
    const r = make();
    const s1 = f.init(p1);
    const s2 = r.init(p2);
    const wss1: Record<string, number> = {};
    const uss1: Record<string, number> = {};
    const wss2: Record<string, number> = {};
    const uss2: Record<string, number> = {};
    const plan = measure ? { weightBounds: {}, weightSumSquares: wss1, updateSumSquares: uss1 } : { weightBounds: {} };
    const applied: boolean[] = [];
    for (let t = 0; t < steps; t++) {
      const a = updateAndApply(f, grads(t), s1, p1, plan);
      if (!a.applied && !a.halt) applyUpdates(p1, a.updates, measure ? wss1 : undefined, measure ? uss1 : undefined);
      const b = r.update(grads(t), s2, p2);
      if (!b.halt) applyUpdates(p2, b.updates, measure ? wss2 : undefined, measure ? uss2 : undefined);
      expect(Boolean(a.halt), `step ${t}`).toBe(Boolean(b.halt));
      applied.push(a.applied);
      for (const k of Object.keys(p1))
        expect(Array.from(p1[k]!.data), `step ${t}: ${k}`).toEqual(Array.from(p2[k]!.data));
      expect(tensorsOf(s1), `step ${t}`).toEqual(tensorsOf(s2));
      if (measure && !b.halt)
        for (const k of Object.keys(p1)) {
          if (!Number.isFinite(wss2[k]!)) continue; // the unfused side wrote a NaN (eps 0): the fused one did not run
          expect(Math.abs(wss1[k]! - wss2[k]!), `step ${t}: Σw² of ${k}`).toBeLessThanOrEqual(1e-6 * wss2[k]!);
          expect(Math.abs(uss1[k]! - uss2[k]!), `step ${t}: Σu² of ${k}`).toBeLessThanOrEqual(1e-6 * uss2[k]!);
        }
    }
    return applied;
  };
  const clipped = (t: number) => gradsFor(t, t % 2 ? 10 : 0.01); // the global norm 1 clips on odd steps

  for (const name of availableBackends()) {
    it(`clip then Adam on ${name}: every step in Adam's pass, the parameters and state of the unfused step`, () => {
      const be = useBackend(name);
      try {
        const adamApply = vi.spyOn(be, 'adamApply');
        const axpy = vi.spyOn(be, 'axpy');
        try {
          for (const measure of [false, true]) {
            adamApply.mockClear();
            axpy.mockClear();
            const applied = compare(() => chain(clip.byGlobalNorm(1), adam({ lr: 0.01 })), clipped, 8, measure);
            expect(applied).toEqual(Array(8).fill(true));
            expect(adamApply.mock.calls.length).toBe(2 * 8);
            expect(adamApply.mock.calls.every((c) => c[12] === measure)).toBe(true);
            // the unfused side's applyUpdates, and nothing on the fused side
            if (!measure) expect(axpy.mock.calls.length).toBe(2 * 8);
          }
        } finally {
          adamApply.mockRestore();
          axpy.mockRestore();
        }
      } finally {
        useBackend(defaultBackend);
      }
    });
  }

  it('chains it cannot prove or fuse run unfused, with the same numbers', () => {
    const sched = schedules.cosine(0.05, { decaySteps: 4 });
    const cases: [string, () => GradientTransformation<unknown>, boolean][] = [
      ['a schedule', () => chain(clip.byGlobalNorm(1), adam({ lr: sched })), true],
      ['Adam without a learning rate', () => chain(clip.byGlobalNorm(1), scaleByAdam()), true],
      ['the inf-norm clip', () => chain(clip.byGlobalNorm(1, { normType: 'inf' }), adam({ lr: 0.01 })), true],
      // no bound on the gradients: no clip, or weight decay between the clip and Adam
      ['no clip', () => adam({ lr: 0.01 }), false],
      ['weight decay', () => chain(clip.byGlobalNorm(1), adam({ lr: 0.01, weightDecay: 0.1 })), false],
      ['AMSGrad', () => chain(clip.byGlobalNorm(1), adam({ lr: 0.01, amsgrad: true })), false],
      ['AdamW', () => chain(clip.byGlobalNorm(1), adamw({ lr: 0.01 })), false],
      // eps = 0: nothing bounds the step (0/0 where m and v are 0)
      ['eps 0', () => chain(clip.byGlobalNorm(1), adam({ lr: 0.01, eps: 0 })), false],
      // a step the bound cannot keep finite: lr · (1/bc1) · |m'| / eps, 1e33 · 10 · ~0.005 / 1e-8
      ['a learning rate of 1e33', () => chain(clip.byGlobalNorm(1), adam({ lr: 1e33 })), false],
      ['SGD', () => chain(clip.byGlobalNorm(1), sgd({ lr: 0.1 })), false],
    ];
    for (const [what, make, fused] of cases) {
      const applied = compare(make, clipped, 5, true);
      expect(applied, what).toEqual(Array(5).fill(fused));
    }
  });

  it('never writes a NaN or an infinity: weights near the float32 limit and non-finite gradients go unfused', () => {
    const big = lin(6);
    big.weight.data[4] = 3e38;
    // the fused path would have been proven unsafe: the unfused update overflows there, and nothing was applied
    const p = Object.fromEntries(big.namedParameters());
    const before = Array.from(p.weight!.data);
    const tx = chain(clip.byGlobalNorm(1), adam({ lr: 1e38 })); // the first step is ±lr, here +1e38
    const st = tx.init(p);
    const r = updateAndApply(tx, gradsFor(0, 1), st, p, { weightBounds: {} });
    expect(r.applied).toBe(false);
    expect(Array.from(p.weight!.data)).toEqual(before);
    expect(findNonFiniteUpdate(p, r.updates)?.cause).toBe('overflow');
    // a NaN gradient: the clip's norm is NaN, so no bound; the unfused step's update is NaN (as before)
    const nan = (t: number) => {
      const g = gradsFor(t, 1);
      if (t === 1) g.bias!.data[2] = Number.NaN;
      return g;
    };
    expect(compare(() => chain(clip.skipNonFinite(), clip.byGlobalNorm(1), adam({ lr: 0.01 })), nan, 4, true)).toEqual([
      true,
      false,
      true,
      true,
    ]);
  });

  it("a step left to the caller forgets the weights' bounds: the next fused step reads them again", () => {
    // the learning rate 1e33 on step 1 cannot be proven finite: that step is applied unfused, by the caller
    const lr = (step: number) => (step === 1 ? 1e33 : 0.01);
    const p = Object.fromEntries(lin(8).namedParameters());
    const tx = chain(clip.byGlobalNorm(1), adam({ lr }));
    const st = tx.init(p);
    const plan: { weightBounds: Record<string, number> } = { weightBounds: {} };
    const maxAbs = vi.spyOn(getBackend(), 'maxAbs');
    try {
      const applied: boolean[] = [];
      for (let t = 0; t < 3; t++) {
        maxAbs.mockClear();
        const r = updateAndApply(tx, clipped(t), st, p, plan);
        applied.push(r.applied);
        if (!r.applied) {
          expect(plan.weightBounds).toEqual({});
          applyUpdates(p, r.updates);
        }
        // a fused step on weights it has no bound for reads each parameter's max |w| (after the unfused step, the
        // moments' too)
        const weights = maxAbs.mock.calls.filter((c) => c[0] === p.weight!.buf || c[0] === p.bias!.buf).length;
        expect(weights, `step ${t}`).toBe(t === 1 ? 0 : 2);
      }
      expect(applied).toEqual([true, false, true]);
      const wMax = Math.max(...Array.from(p.weight!.data, Math.abs));
      expect(plan.weightBounds.weight).toBeGreaterThanOrEqual(wMax);
    } finally {
      maxAbs.mockRestore();
    }
  });

  it('moments written from outside are read again: a restored state steps fused, a bad one unfused', () => {
    const make = () => chain(clip.byGlobalNorm(1), adam({ lr: 0.01 }));
    const p = Object.fromEntries(lin(7).namedParameters());
    const tx = make();
    const st = tx.init(p);
    const plan = { weightBounds: {} };
    for (let t = 0; t < 3; t++) expect(updateAndApply(tx, clipped(t), st, p, plan).applied).toBe(true);
    const saved = flattenState(st);
    // a restored state with the moments it had: read again (max |m|, v ≥ 0), then fused with the same numbers
    const q = Object.fromEntries(lin(7).namedParameters());
    for (const k of Object.keys(q)) q[k]!.data.set(p[k]!.data);
    const tx2 = make();
    const st2 = tx2.init(q);
    restoreState(st2, saved);
    const plan2 = { weightBounds: {} };
    const r1 = updateAndApply(tx, clipped(3), st, p, plan);
    const r2 = updateAndApply(tx2, clipped(3), st2, q, plan2);
    expect([r1.applied, r2.applied]).toEqual([true, true]);
    for (const k of Object.keys(p)) expect(Array.from(q[k]!.data)).toEqual(Array.from(p[k]!.data));
    // a negative second moment (a corrupt checkpoint) would make √v NaN: restored, the step is not fused
    const nu = saved.tensors['inner.1.inner.0.nu.bias']!;
    nu.data[0] = -1;
    restoreState(st2, saved);
    const r3 = updateAndApply(tx2, clipped(4), st2, q, plan2);
    expect(r3.applied).toBe(false);
    expect(Number.isNaN(r3.updates.bias!.data[0]!)).toBe(true);
  });
});

describe('updateAndApply: the gradients measured once on entry (plan.gradStats)', () => {
  const defaultBackend = getBackend().name as Parameters<typeof useBackend>[0];
  const copy = (p: Params): Params =>
    Object.fromEntries(Object.entries(p).map(([k, t]) => [k, tensor(Array.from(t.data), t.shape)]));
  const clipState = (s: unknown) =>
    stateRecords(s).find((r) => r.kind === 'clipByGlobalNorm') as clip.ByGlobalNormState;

  for (const name of availableBackends()) {
    it(`on ${name}: one read of each gradient for the stats and the clip; the numbers of the step without them`, () => {
      const be = useBackend(name);
      try {
        const ssmax = vi.spyOn(be, 'sumSquaresMaxAbs');
        const ss = vi.spyOn(be, 'sumSquares');
        try {
          for (const normType of [2, 'inf'] as const) {
            const make = () => chain(clip.byGlobalNorm(1, { normType }), adam({ lr: 0.01 }));
            const p0 = Object.fromEntries(lin(3).namedParameters());
            const [p1, p2] = [copy(p0), copy(p0)];
            const [f, r] = [make(), make()];
            const [s1, s2] = [f.init(p1), r.init(p2)];
            const stats = gradientStats();
            const plan1 = { weightBounds: {}, gradStats: stats };
            const plan2 = { weightBounds: {} };
            for (let t = 0; t < 6; t++) {
              const big = t % 2 ? 10 : 0.01; // clipped on odd steps
              const g = gradsFor(t, big);
              ssmax.mockClear();
              ss.mockClear();
              const a = updateAndApply(f, g, s1, p1, plan1);
              // one pass over each gradient, none by the clip
              expect(ssmax.mock.calls.length, `step ${t}`).toBe(2);
              expect(ss.mock.calls.length, `step ${t}`).toBe(0);
              for (const k of ['weight', 'bias']) {
                expect(stats.tensors[k]).toBe(g[k]);
                expect(stats.sumSquares[k]).toBe(be.sumSquares(g[k]!.buf, g[k]!.size));
                expect(stats.maxAbs[k]).toBe(be.maxAbs(g[k]!.buf, g[k]!.size));
              }
              const b = updateAndApply(r, gradsFor(t, big), s2, p2, plan2);
              expect([a.applied, b.applied]).toEqual([true, true]);
              expect(clipState(s1).normBefore, `step ${t}`).toBe(clipState(s2).normBefore);
              expect(clipState(s1).clipped).toBe(t % 2 === 1);
              for (const k of Object.keys(p1)) expect(Array.from(p1[k]!.data)).toEqual(Array.from(p2[k]!.data));
            }
          }
        } finally {
          ssmax.mockRestore();
          ss.mockRestore();
        }
      } finally {
        useBackend(defaultBackend);
      }
    });
  }

  it('never takes a stale sum: numbers left from before, gradients changed since, or a link that ran first', () => {
    const p = Object.fromEntries(lin(4).namedParameters());
    const norm = (g: Params) =>
      Math.sqrt(Object.values(g).reduce((s, t) => s + t.data.reduce((a, v) => a + v * v, 0), 0));
    // (1) numbers a stats object holds for these very tensors, from before: measured again on entry
    const tx = chain(clip.byGlobalNorm(100), adam({ lr: 0.01 }));
    const st = tx.init(p);
    const stats = gradientStats();
    const plan = { weightBounds: {}, gradStats: stats };
    const g = gradsFor(1, 1);
    stats.tensors.weight = g.weight!;
    stats.tensors.bias = g.bias!;
    stats.sumSquares.weight = stats.sumSquares.bias = 1e6;
    stats.maxAbs.weight = stats.maxAbs.bias = 1e3;
    updateAndApply(tx, g, st, p, plan);
    expect(clipState(st).normBefore).toBeCloseTo(norm(gradsFor(1, 1)), 5);
    // (2) the same tensors written in place between two steps: the second step sees the new values
    for (const t of Object.values(g)) for (let i = 0; i < t.size; i++) t.data[i] = 3 * Math.sin(i * 1.3 + 2);
    const expected = norm(g);
    updateAndApply(tx, g, st, p, plan);
    expect(clipState(st).normBefore).toBeCloseTo(expected, 5);
    // a parameter without a gradient on this step keeps no numbers from the last
    updateAndApply(tx, { weight: gradsFor(5, 1).weight! }, st, p, plan);
    expect(Object.keys(stats.tensors)).toEqual(['weight']);
    expect(Object.keys(stats.sumSquares)).toEqual(['weight']);
    expect(Object.keys(stats.maxAbs)).toEqual(['weight']);
    // (3) a link before the clip changes the gradients in place: the clip measures them itself, not the entry's
    // numbers (here the value clip caps every |g| at 0.001)
    const tx3 = chain(clip.byValue(0.001), clip.byGlobalNorm(100), adam({ lr: 0.01 }));
    const st3 = tx3.init(p);
    const g3 = gradsFor(2, 1);
    updateAndApply(tx3, g3, st3, p, { weightBounds: {}, gradStats: gradientStats() });
    const capped = Object.values(gradsFor(2, 1)).reduce(
      (s, t) => s + t.data.reduce((a, v) => a + Math.min(Math.abs(v), 0.001) ** 2, 0),
      0,
    );
    expect(clipState(st3).normBefore).toBeCloseTo(Math.sqrt(capped), 7);
    // (4) the same chain inside another, after a link that scales: the inner clip measures too
    const tx4 = chain(scale(0.5), chain(clip.byGlobalNorm(100), adam({ lr: 0.01 })));
    const st4 = tx4.init(p);
    updateAndApply(tx4, gradsFor(3, 1), st4, p, { weightBounds: {}, gradStats: gradientStats() });
    expect(clipState(st4).normBefore).toBeCloseTo(norm(gradsFor(3, 1)) / 2, 5);
  });

  it('stopOnNonFiniteGradients: a NaN or Inf gradient runs no link and changes nothing', () => {
    const p = Object.fromEntries(lin(5).namedParameters());
    const before = copy(p);
    const tx = chain(clip.byGlobalNorm(1), adam({ lr: 0.01 }));
    const st = tx.init(p);
    const saved = JSON.stringify(flattenState(st).values);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const g = gradsFor(1, 1);
      g.bias!.data[2] = bad;
      const r = updateAndApply(tx, g, st, p, {
        weightBounds: {},
        gradStats: gradientStats(),
        stopOnNonFiniteGradients: true,
      });
      expect(r.nonFiniteGradient).toBe('bias');
      expect(r.applied).toBe(false);
      expect(JSON.stringify(flattenState(st).values)).toBe(saved);
      for (const k of Object.keys(p)) expect(Array.from(p[k]!.data)).toEqual(Array.from(before[k]!.data));
    }
    // finite gradients: the step runs
    const r = updateAndApply(tx, gradsFor(1, 1), st, p, {
      weightBounds: {},
      gradStats: gradientStats(),
      stopOnNonFiniteGradients: true,
    });
    expect(r.nonFiniteGradient).toBeUndefined();
    expect(r.applied).toBe(true);
  });
});

describe('Optimizer', () => {
  it('steps a model from .grad, keeps .grad intact, and skips params without grad', () => {
    const m = new Linear(2, 1, { seed: 0 });
    const opt = new Optimizer(m, sgd({ lr: 0.5 }));
    const w0 = m.weight.toArray();
    const b0 = m.bias!.item();
    m.call(tensor([1, 2], [1, 2]))
      .sum()
      .backward();
    const g = m.weight.grad!.toArray();
    expect(opt.step()).toEqual({ skipped: false });
    expect(m.weight.grad!.toArray()).toEqual(g);
    expect(m.weight.toArray()).toEqual(w0.map((w, i) => Math.fround(w - 0.5 * g[i]!)));
    expect(m.bias!.item()).toBeCloseTo(b0 - 0.5, 6);
    opt.zeroGrad({ setToNone: true });
    m.weight.grad = tensor([1, 1], [1, 2]);
    const b1 = m.bias!.item();
    opt.step();
    expect(m.bias!.item()).toBe(b1);
  });
  it('a skipped step leaves parameters and optimizer state unchanged', () => {
    const m = new Linear(2, 1, { seed: 0 });
    const opt = new Optimizer(m, clip.skipNonFinite(adam({ lr: 0.1 })));
    m.weight.grad = tensor([1, Number.NaN], [1, 2]);
    m.bias!.grad = tensor([1]);
    const w = m.weight.toArray();
    expect(opt.step()).toEqual({ skipped: true });
    expect(m.weight.toArray()).toEqual(w);
    const adamState = stateRecords(opt.state).find((s) => s.kind === 'scaleByAdam') as unknown as unknown as {
      count: number;
    };
    expect(adamState.count).toBe(0);
    expect((stateRecords(opt.state)[1] as clip.SkipNonFiniteState).totalSkipped).toBe(1);
  });
  it('an update that is not finite is never written: raise (default) names the parameter, skip counts it', () => {
    const m = new Linear(2, 1, { seed: 0 });
    const w = m.weight.toArray();
    const b = m.bias!.item();
    const grads = () => {
      m.weight.grad = tensor([1, 0.5], [1, 2]);
      m.bias!.grad = tensor([1]);
    };
    // finite gradients, but lr·g overflows float32 (lr = 1e39 is beyond 3.4e38)
    const opt = new Optimizer(m, sgd({ lr: 1e39 }));
    grads();
    expect(() => opt.step()).toThrow(NonFiniteUpdateError);
    expect(() => opt.step()).toThrow(
      "Optimizer.step(): the update of 'weight' holds NaN or Inf; no parameter was changed. Lower the learning rate, clip the gradients (clip.byGlobalNorm), or pass { onNonFinite: 'skip' } to skip such steps",
    );
    expect(m.weight.toArray()).toEqual(w);
    expect(m.bias!.item()).toBe(b);
    const skip = new Optimizer(m, sgd({ lr: 1e39 }), { onNonFinite: 'skip' });
    grads();
    expect(skip.step()).toEqual({ skipped: true, nonFinite: { path: 'weight', cause: 'update' } });
    expect(skip.skippedSteps).toBe(1);
    expect(m.weight.toArray()).toEqual(w);
    // a finite update that overflows w + u
    m.bias!.data[0] = 3e38;
    m.bias!.grad = tensor([-1]);
    m.weight.grad = tensor([0, 0], [1, 2]);
    const sum = new Optimizer(m, sgd({ lr: 1e38 }), { onNonFinite: 'skip' });
    expect(sum.step()).toEqual({ skipped: true, nonFinite: { path: 'bias', cause: 'overflow' } });
    expect(m.bias!.item()).toBe(Math.fround(3e38));
    // NaN gradients without a skipNonFinite link: refused too
    m.bias!.data[0] = 0;
    m.bias!.grad = tensor([Number.NaN]);
    expect(() => new Optimizer(m, adam({ lr: 0.1 })).step()).toThrow("the update of 'bias' holds NaN or Inf");
    expect(m.bias!.item()).toBe(0);
    expect(() => new Optimizer(m, sgd({ lr: 1 }), { onNonFinite: 'ignore' as 'skip' })).toThrow(
      "Optimizer: onNonFinite must be 'raise' or 'skip', got 'ignore'",
    );
  });
  it('stateDict round-trips through flattenState / restoreState', () => {
    const params = { w: tensor([1, 2]) };
    const tx = chain(clip.autoClip(), adam({ lr: 0.1 }));
    const s = tx.init(params);
    tx.update({ w: tensor([3, 4]) }, s, params);
    const flat = flattenState(s);
    expect(Object.keys(flat.tensors)).toEqual(['inner.1.inner.0.mu.w', 'inner.1.inner.0.nu.w']);
    expect(flat.values['inner.1.inner.0.count']).toBe(1);
    const s2 = tx.init(params);
    restoreState(s2, { tensors: flat.tensors, values: JSON.parse(JSON.stringify(flat.values)) });
    expect(flattenState(s2).values).toEqual(flat.values);
    expect(flattenState(s2).tensors['inner.1.inner.0.mu.w']!.toArray()).toEqual(
      flat.tensors['inner.1.inner.0.mu.w']!.toArray(),
    );
  });
  it('amsgrad keeps the largest second moments in the state, and checks its option', () => {
    const params = { w: tensor([1, 2]) };
    const tx = adam({ lr: 0.1, b2: 0.5, amsgrad: true });
    const s = tx.init(params);
    tx.update({ w: tensor([4, 0]) }, s, params);
    tx.update({ w: tensor([0, 2]) }, s, params);
    const flat = flattenState(s);
    expect(Object.keys(flat.tensors)).toEqual(['inner.0.mu.w', 'inner.0.nu.w', 'inner.0.nuMax.w']);
    // v: 0.5·16 = 8 then 4; 0 then 0.5·4 = 2. The maximum keeps 8 for w[0].
    expect(flat.tensors['inner.0.nu.w']!.toArray()).toEqual([4, 2]);
    expect(flat.tensors['inner.0.nuMax.w']!.toArray()).toEqual([8, 2]);
    expect(() => adam({ lr: 1, amsgrad: 1 as unknown as boolean })).toThrow(
      'scaleByAdam(): amsgrad must be true or false, got 1',
    );
  });
});
