import { describe, expect, it } from 'vitest';
import { adding, copyTask, spirals } from './synthetic.js';
import { DataError } from './types.js';

describe('spirals', () => {
  it('balanced classes in 2-D, points within radius 1', () => {
    const ds = spirals({ classes: 4, trainSize: 400, testSize: 100 });
    expect(ds.inputShape).toEqual([2]);
    expect(ds.numClasses).toBe(4);
    const counts = [0, 0, 0, 0];
    for (const v of ds.train.y) counts[v]!++;
    expect(counts).toEqual([100, 100, 100, 100]);
    for (let i = 0; i < ds.train.n; i++) expect(Math.hypot(ds.train.x[2 * i]!, ds.train.x[2 * i + 1]!)).toBeLessThan(1);
  });

  it('is learnable: 1-nearest-neighbour on low noise beats 90%, on pure angle noise it falls to chance', () => {
    const knn = (noise: number) => {
      const ds = spirals({ classes: 3, trainSize: 1500, testSize: 300, noise });
      let right = 0;
      for (let i = 0; i < ds.test.n; i++) {
        let best = Infinity;
        let label = -1;
        for (let j = 0; j < ds.train.n; j++) {
          const d =
            (ds.test.x[2 * i]! - ds.train.x[2 * j]!) ** 2 + (ds.test.x[2 * i + 1]! - ds.train.x[2 * j + 1]!) ** 2;
          if (d < best) {
            best = d;
            label = ds.train.y[j]!;
          }
        }
        if (label === ds.test.y[i]) right++;
      }
      return right / ds.test.n;
    };
    expect(knn(0.1)).toBeGreaterThan(0.9);
    expect(knn(50)).toBeLessThan(0.5);
  });

  it('is a function of the seed', () => {
    expect([...spirals({ seed: 1, trainSize: 10 }).train.x]).toEqual([...spirals({ seed: 1, trainSize: 10 }).train.x]);
    expect([...spirals({ seed: 1, trainSize: 10 }).train.x]).not.toEqual([
      ...spirals({ seed: 2, trainSize: 10 }).train.x,
    ]);
  });
});

describe('adding', () => {
  it('two markers, one in each half; the target is the sum of the marked values', () => {
    const T = 11;
    const ds = adding({ length: T, trainSize: 300, testSize: 10, seed: 4 });
    expect(ds.task).toBe('regression');
    expect(ds.inputShape).toEqual([T, 2]);
    const firstHalf = new Set<number>();
    for (let i = 0; i < ds.train.n; i++) {
      const marks: number[] = [];
      let sum = 0;
      for (let t = 0; t < T; t++) {
        const v = ds.train.x[i * T * 2 + 2 * t]!;
        const m = ds.train.x[i * T * 2 + 2 * t + 1]!;
        expect(v >= 0 && v < 1).toBe(true);
        if (m === 1) {
          marks.push(t);
          sum += v;
        } else expect(m).toBe(0);
      }
      expect(marks).toHaveLength(2);
      expect(marks[0]).toBeLessThan(5);
      expect(marks[1]).toBeGreaterThanOrEqual(5);
      firstHalf.add(marks[0]!);
      expect(ds.train.y[i]).toBeCloseTo(sum, 6);
    }
    expect(firstHalf.size).toBe(5); // every position of the first half gets used
  });

  it('the constant guess 1 scores a mean squared error near 1/6', () => {
    const ds = adding({ length: 20, trainSize: 20_000, testSize: 1 });
    let mse = 0;
    for (const y of ds.train.y) mse += (y - 1) ** 2;
    expect(mse / ds.train.n).toBeCloseTo(1 / 6, 2);
  });
});

describe('copy', () => {
  it('S symbols, T - 1 blanks, a delimiter, S blanks; the target repeats the symbols at the end', () => {
    const T = 5;
    const S = 3;
    const A = 4;
    const ds = copyTask({ length: T, symbols: S, alphabet: A, trainSize: 50, testSize: 5, seed: 2 });
    const L = T + 2 * S;
    const C = A + 2;
    expect(ds.inputShape).toEqual([L, C]);
    expect(ds.targetShape).toEqual([L]);
    expect(ds.numClasses).toBe(C);
    for (let i = 0; i < ds.train.n; i++) {
      const tokens: number[] = [];
      for (let t = 0; t < L; t++) {
        const row = ds.train.x.subarray((i * L + t) * C, (i * L + t + 1) * C);
        expect(row.reduce((a, b) => a + b, 0)).toBe(1);
        tokens.push(row.indexOf(1));
      }
      const symbols = tokens.slice(0, S);
      for (const s of symbols) expect(s >= 1 && s <= A).toBe(true);
      expect(tokens.slice(S)).toEqual([0, 0, 0, 0, A + 1, 0, 0, 0]);
      const target = [...ds.train.y.subarray(i * L, (i + 1) * L)];
      expect(target).toEqual([...new Array(T + S).fill(0), ...symbols]);
    }
  });

  it('rejects bad parameters with DataError', () => {
    expect(() => copyTask({ length: 0 })).toThrow(DataError);
    expect(() => adding({ length: 1 })).toThrow(/data\.length must be an integer >= 2, got 1/);
    expect(() => spirals({ classes: 1 })).toThrow(/data\.classes/);
    expect(() => spirals({ noise: -1 })).toThrow(/data\.noise/);
  });
});
