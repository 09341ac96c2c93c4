import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyNormalization, apportion, gatherSplit, standardize, stratifiedSplit } from './split.js';
import { DataError } from './types.js';

describe('apportion', () => {
  it('splits 2,000 over the bundled digit counts by largest remainder', () => {
    const counts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
    // quotas 200.2 225.4 198.2 206.4 196 172.6 202.8 214 188.8 195.6: the four largest remainders (6, 8, 5, 9) round up
    expect(apportion(2000, counts)).toEqual([200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
  });

  it('breaks ties towards the lower index', () => {
    expect(apportion(1, [1, 1, 1])).toEqual([1, 0, 0]);
    expect(apportion(2, [1, 1, 1])).toEqual([1, 1, 0]);
  });

  it('sums to the total, stays within one of the quota and never exceeds a weight', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(500), { minLength: 1, maxLength: 12 }), fc.nat(1000), (w, t) => {
        const W = w.reduce((a, b) => a + b, 0);
        fc.pre(W > 0 && t <= W);
        const p = apportion(t, w);
        expect(p.reduce((a, b) => a + b, 0)).toBe(t);
        p.forEach((v, c) => {
          expect(Math.abs(v - (t * w[c]!) / W)).toBeLessThan(1);
          expect(v).toBeLessThanOrEqual(w[c]!);
        });
      }),
    );
  });
});

describe('stratifiedSplit', () => {
  const labels = Float32Array.from({ length: 1000 }, (_, i) => (i < 700 ? 0 : i < 900 ? 1 : 2));

  it('gives disjoint splits of the requested sizes with class proportions kept', () => {
    const { train, test } = stratifiedSplit(labels, 3, { trainSize: 800, testSize: 200 }, 1);
    expect(train.length).toBe(800);
    expect(test.length).toBe(200);
    const all = new Set([...train, ...test]);
    expect(all.size).toBe(1000);
    const count = (idx: Int32Array, c: number) => [...idx].filter((i) => labels[i] === c).length;
    expect([0, 1, 2].map((c) => count(test, c))).toEqual([140, 40, 20]);
    expect([0, 1, 2].map((c) => count(train, c))).toEqual([560, 160, 80]);
  });

  it('is a function of the seed', () => {
    const a = stratifiedSplit(labels, 3, { trainSize: 500, testSize: 100 }, 7);
    const b = stratifiedSplit(labels, 3, { trainSize: 500, testSize: 100 }, 7);
    const c = stratifiedSplit(labels, 3, { trainSize: 500, testSize: 100 }, 8);
    expect(a.test).toEqual(b.test);
    expect(a.train).toEqual(b.train);
    expect(a.test).not.toEqual(c.test);
  });

  it('does not sort either split by class', () => {
    const { train } = stratifiedSplit(labels, 3, { trainSize: 800, testSize: 200 }, 0);
    const firstHundred = [...train.subarray(0, 100)].map((i) => labels[i]);
    expect(new Set(firstHundred).size).toBe(3);
  });

  it('refuses sizes larger than the data and labels out of range', () => {
    expect(() => stratifiedSplit(labels, 3, { trainSize: 900, testSize: 200 }, 0)).toThrow(
      /1100 is more than the 1000/,
    );
    expect(() => stratifiedSplit([0, 3], 3, { trainSize: 1, testSize: 1 }, 0)).toThrow(DataError);
    expect(() => stratifiedSplit([0, 0.5], 3, { trainSize: 1, testSize: 1 }, 0)).toThrow(/not an integer in \[0, 3\)/);
  });
});

describe('gatherSplit', () => {
  it('copies the chosen rows', () => {
    const x = Float32Array.from([0, 1, 10, 11, 20, 21]);
    const y = Float32Array.from([0, 1, 2]);
    const s = gatherSplit(x, y, 2, 1, [2, 0]);
    expect([...s.x]).toEqual([20, 21, 0, 1]);
    expect([...s.y]).toEqual([2, 0]);
    expect(s.n).toBe(2);
  });
});

describe('standardize', () => {
  const mk = (vals: number[][]) => ({
    x: Float32Array.from(vals.flat()),
    y: new Float32Array(vals.length),
    n: vals.length,
  });

  it('uses the training statistics only, for both splits', () => {
    const train = mk([[0], [2], [4]]); // mean 2, population std sqrt(8/3)
    const test = mk([[10]]);
    const norm = standardize(train, test, 1, 'standardize')!;
    const std = Math.sqrt(8 / 3);
    expect(norm.mean[0]).toBeCloseTo(2, 12);
    expect(norm.std[0]).toBeCloseTo(std, 12);
    expect(train.x[0]).toBeCloseTo(-2 / std, 6);
    expect(test.x[0]).toBeCloseTo(8 / std, 6);
  });

  it('per feature, leaves a constant feature centred with std 1', () => {
    const train = mk([
      [1, 5],
      [3, 5],
    ]);
    const test = mk([[2, 6]]);
    const norm = standardize(train, test, 2, 'standardize-features')!;
    expect(norm.mean).toEqual([2, 5]);
    expect(norm.std).toEqual([1, 1]);
    expect([...train.x]).toEqual([-1, 0, 1, 0]);
    expect([...test.x]).toEqual([0, 1]);
  });

  it('none changes nothing; applyNormalization repeats the transform on new inputs', () => {
    const train = mk([[1], [3]]);
    expect(standardize(train, mk([[0]]), 1, 'none')).toBeUndefined();
    expect([...train.x]).toEqual([1, 3]);
    const norm = standardize(train, mk([[0]]), 1, 'standardize')!;
    const fresh = Float32Array.from([3]);
    applyNormalization(fresh, norm);
    expect(fresh[0]).toBeCloseTo(train.x[1]!, 7);
  });
});
