/**
 * Clipping against PyTorch (clip_grad_norm_, clip_grad_value_, timm's adaptive_clip_grad, AutoClip's reference
 * code) on the same gradients, plus the invariants optax tests: after byGlobalNorm(c) the norm is min(norm, c), and
 * clipping twice changes nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromPacked, maxRelError, type Packed, remedies } from '../../test/remedies.js';
import {
  adam,
  applyUpdates,
  chain,
  type GradientTransformation,
  type Params,
  sgd,
  stateRecords,
} from '../optim/index.js';
import { tensor } from '../tensor/tensor.js';
import * as clip from './index.js';

const fx = remedies.clip;
const load = (d: Record<string, Packed>): Params =>
  Object.fromEntries(Object.entries(d).map(([k, v]) => [k, fromPacked(v)]));
const byFn = (fn: string) => fx.cases.filter((c: { fn: string }) => c.fn === fn);

function expectAll(actual: Params, expected: Record<string, Packed>, tol = 1e-5): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [k, e] of Object.entries(expected)) expect(maxRelError(actual[k]!, e), k).toBeLessThan(tol);
}

function once<S>(tx: GradientTransformation<S>, grads: Params, params?: Params): S {
  const s = tx.init(params ?? grads);
  return tx.update(grads, s, params).state;
}

describe('the same numbers as PyTorch', () => {
  for (const c of byFn('byGlobalNorm')) {
    it(`byGlobalNorm(${c.max}, normType ${c.normType}) equals clip_grad_norm_ and records its norm`, () => {
      const g = load(fx.grads);
      const s = once(clip.byGlobalNorm(c.max, { normType: c.normType === 'inf' ? 'inf' : 2 }), g);
      expectAll(g, c.result);
      expect(Math.abs(s.normBefore - c.norm) / c.norm).toBeLessThan(1e-6);
      expect(s.clipped).toBe(c.norm > c.max);
    });
  }
  it('byValue equals clip_grad_value_', () => {
    const c = byFn('byValue')[0];
    const g = load(fx.grads);
    const s = once(clip.byValue(c.max), g);
    expectAll(g, c.result, 1e-7); // the bound in float32
    expect(s.clipped).toBe(true);
    expect(s.maxAbsBefore).toBeGreaterThan(c.max);
  });
  it('byNorm equals clip_grad_norm_ on each tensor alone', () => {
    const c = byFn('byNorm')[0];
    const g = load(fx.grads);
    const s = once(clip.byNorm(c.max), g);
    expectAll(g, c.result);
    for (const [k, n] of Object.entries(c.norms as Record<string, number>)) expect(s.normsBefore[k]).toBeCloseTo(n, 5);
    expect(s.clippedCount).toBe(Object.values(c.norms as Record<string, number>).filter((n) => n > c.max).length);
  });
  it("adaptive equals timm's adaptive_clip_grad (unit-wise, relative to the weights)", () => {
    const c = byFn('adaptive')[0];
    const g = load(fx.grads);
    const s = once(clip.adaptive(c.clipping, { eps: c.eps }), g, load(c.params));
    expectAll(g, c.result);
    expect(s.totalUnits).toBe(3 + 1 + 2);
    expect(s.clippedUnits).toBeGreaterThan(0);
  });
  it("autoClip equals the authors' reference (numpy percentile of the norm history)", () => {
    const c = byFn('autoClip')[0];
    const tx = clip.autoClip({ percentile: c.percentile });
    const state = tx.init(load(c.steps[0].grads));
    for (const st of c.steps) {
      const g = load(st.grads);
      tx.update(g, state);
      expect(state.normBefore).toBeCloseTo(st.norm, 5);
      expect(Math.abs(state.threshold - st.threshold) / st.threshold).toBeLessThan(1e-6);
      expectAll(g, st.result);
    }
    expect(state.history.length).toBe(c.steps.length);
  });
});

describe('invariants', () => {
  const gradsArb = fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), {
    minLength: 1,
    maxLength: 20,
  });
  it('after byGlobalNorm(c) the norm is min(norm, c), and clipping twice changes nothing', () => {
    fc.assert(
      fc.property(gradsArb, gradsArb, fc.double({ min: 0.01, max: 50, noNaN: true }), (a, b, c) => {
        const g = { a: tensor(a), b: tensor(b) };
        const before = clip.globalNorm(g);
        const tx = clip.byGlobalNorm(c);
        const s = tx.init(g);
        tx.update(g, s);
        const after = clip.globalNorm(g);
        expect(Math.abs(after - Math.min(before, c))).toBeLessThanOrEqual(1e-5 * Math.max(1, before) + 1e-6);
        const again = g.a.toArray().concat(g.b.toArray());
        tx.update(g, s);
        const twice = g.a.toArray().concat(g.b.toArray());
        // NOTE: PyTorch's formula divides by norm + 1e-6, so a second pass may shrink by up to 1e-6/c more
        const tol = 1e-6 / c + 1e-6;
        for (let i = 0; i < again.length; i++)
          expect(Math.abs(twice[i]! - again[i]!)).toBeLessThanOrEqual(tol * Math.abs(again[i]!) + 1e-12);
      }),
      { numRuns: 200 },
    );
  });
  it('byValue bounds every value and is idempotent', () => {
    fc.assert(
      fc.property(gradsArb, fc.double({ min: 0.01, max: 50, noNaN: true }), (a, c) => {
        const g = { a: tensor(a) };
        const tx = clip.byValue(c);
        const s = tx.init(g);
        tx.update(g, s);
        const once1 = g.a.toArray();
        expect(once1.every((v) => Math.abs(v) <= Math.fround(c))).toBe(true);
        tx.update(g, s);
        expect(g.a.toArray()).toEqual(once1);
        expect(s.clipped).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('non-finite gradients', () => {
  it('byGlobalNorm lets a NaN norm through as NaN gradients (as PyTorch), or throws naming the flag', () => {
    const g = { a: tensor([1, Number.NaN]) };
    once(clip.byGlobalNorm(1), g);
    expect(Number.isNaN(g.a.data[0]!)).toBe(true);
    expect(() =>
      once(clip.byGlobalNorm(1, { errorIfNonfinite: true }), { a: tensor([Number.POSITIVE_INFINITY]) }),
    ).toThrow(/total norm of order 2 of the gradients is Infinity.*errorIfNonfinite: false/);
  });
  it('skipNonFinite halts the chain: no update, later links untouched, counted; gives up after maxConsecutive', () => {
    const params = { w: tensor([1, 2]) };
    const tx = chain(clip.skipNonFinite({ maxConsecutive: 2 }), clip.byGlobalNorm(1), adam({ lr: 0.1 }));
    const state = tx.init(params);
    const step = (v: number[]) => {
      const r = tx.update({ w: tensor(v) }, state, params);
      if (!r.halt) applyUpdates(params, r.updates);
      return r;
    };
    step([1, 1]);
    const recs = () => stateRecords(state) as unknown as Record<string, unknown>[];
    const adamCount = () => recs().find((s) => s.kind === 'scaleByAdam')!.count;
    const clipCount = () => recs().find((s) => s.kind === 'clipByGlobalNorm')!.count;
    const w = params.w.toArray();
    const r = step([Number.NaN, 1]);
    expect(r.halt).toBe(true);
    expect(r.updates.w!.toArray()).toEqual([0, 0]);
    expect(params.w.toArray()).toEqual(w);
    expect([adamCount(), clipCount()]).toEqual([1, 1]);
    const skip = recs()[1]! as unknown as clip.SkipNonFiniteState;
    expect([skip.skipped, skip.consecutive, skip.totalSkipped, skip.nonFiniteCount]).toEqual([true, 1, 1, 1]);
    step([Number.POSITIVE_INFINITY, 1]);
    expect(() => step([Number.NaN, Number.NaN])).toThrow(clip.NonFiniteGradientsError);
    expect(() => step([Number.NaN, Number.NaN])).toThrow(/3 updates in a row \(maxConsecutive: 2\)/);
    step([1, 1]);
    expect(skip.consecutive).toBe(0);
    expect(adamCount()).toBe(2);
  });
  it("the wrapper form and onGiveUp: 'apply' (optax's apply_if_finite)", () => {
    const params = { w: tensor([1]) };
    const tx = clip.skipNonFinite(sgd({ lr: 1 }), { maxConsecutive: 1, onGiveUp: 'apply' });
    const s = tx.init(params);
    expect(tx.update({ w: tensor([Number.NaN]) }, s, params).halt).toBe(true);
    const r = tx.update({ w: tensor([Number.NaN]) }, s, params);
    expect(r.halt).toBeUndefined();
    expect(Number.isNaN(r.updates.w!.item())).toBe(true);
  });
  it('zeroNans replaces NaN (not Inf) and counts them', () => {
    const g = { a: tensor([1, Number.NaN, Number.POSITIVE_INFINITY, Number.NaN]) };
    const s = once(clip.zeroNans(), g);
    expect(g.a.toArray()).toEqual([1, 0, Number.POSITIVE_INFINITY, 0]);
    expect([s.replaced, s.found]).toEqual([2, true]);
  });
  it('autoClip ignores non-finite norms in its history', () => {
    const tx = clip.autoClip();
    const s = tx.init({ a: tensor([1]) });
    tx.update({ a: tensor([3]) }, s);
    tx.update({ a: tensor([Number.NaN]) }, s);
    expect(s.history).toEqual([3]);
    tx.update({ a: tensor([5]) }, s);
    expect(s.threshold).toBeCloseTo(3.2, 10);
  });
  it('autoClip historySize keeps a window', () => {
    const tx = clip.autoClip({ percentile: 0, historySize: 2 });
    const s = tx.init({ a: tensor([1]) });
    for (const v of [1, 5, 7]) tx.update({ a: tensor([v]) }, s);
    expect(s.history).toEqual([5, 7]);
    expect(s.threshold).toBe(5);
  });
});

describe('the clip record', () => {
  it('reads each clip transform state through its typed reader', () => {
    const grads = (): Params => ({ w: tensor([3, 4]) });
    const g = once(clip.byGlobalNorm(1), grads());
    expect(clip.clipRecordOf(g)).toEqual({ normBefore: 5, normAfter: 5 * g.scale, clipped: true, skipped: false });
    const a = once(clip.autoClip({ percentile: 50 }), grads());
    expect(clip.clipRecordOf(a)).toEqual({
      normBefore: 5,
      normAfter: a.clipped ? a.threshold : 5,
      clipped: a.clipped,
      skipped: false,
    });
    for (const tx of [clip.byValue(1), clip.byNorm(1)]) {
      expect(clip.clipRecordOf(once(tx as GradientTransformation<{ kind: string }>, grads()))).toEqual({
        normBefore: undefined,
        normAfter: undefined,
        clipped: true,
        skipped: false,
      });
    }
    const bad = { w: tensor([Number.NaN, 1]) };
    expect(clip.clipRecordOf(once(clip.skipNonFinite(), bad))?.skipped).toBe(true);
    expect(clip.clipRecordOf(once(clip.zeroNans(), bad))).toBeUndefined();
    expect(clip.clipRecordOf({ kind: 'sgd' })).toBeUndefined();
    expect(clip.clipRecordOf({ kind: 'toString' })).toBeUndefined();
  });
});
