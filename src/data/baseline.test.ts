import { describe, expect, it } from 'vitest';
import { trivialBaseline } from './baseline.js';
import { loadDataset } from './index.js';
import { adding, copyTask, spirals } from './synthetic.js';

describe('trivial baselines', () => {
  it('adding: the variance of the sum of two U[0, 1) values, 1/6, the loss of always predicting the mean (≈ 1)', () => {
    const ds = adding({ length: 50, seed: 0 });
    expect(ds.baseline!.loss).toBeCloseTo(1 / 6, 2);
    expect(ds.baseline!.accuracy).toBeUndefined();
    // always predicting 1, scored on the test split, is about as good
    const mse1 = ds.test.y.reduce((s, v) => s + (v - 1) ** 2, 0) / ds.test.n;
    expect(Math.abs(mse1 - ds.baseline!.loss)).toBeLessThan(0.01);
  });

  it('copy: the memoryless loss S·ln(A)/(T + 2S) and accuracy (T + S + S/A)/(T + 2S)', () => {
    const ds = copyTask({ length: 20, symbols: 10, alphabet: 8, seed: 0 });
    expect(ds.baseline!.loss).toBeCloseTo((10 * Math.log(8)) / 40, 2);
    expect(ds.baseline!.accuracy!).toBeCloseTo((30 + 10 / 8) / 40, 2);
    expect(ds.baseline!.predictor).toMatch(/each position/);
  });

  it('balanced classes: ln K and chance', () => {
    const ds = spirals({ classes: 3, trainSize: 3000, testSize: 3000, seed: 0 });
    expect(ds.baseline!.loss).toBeCloseTo(Math.log(3), 2);
    expect(ds.baseline!.accuracy!).toBeCloseTo(1 / 3, 1);
  });

  it('unbalanced classes: the entropy of the class frequencies, the majority class scored on the test split', () => {
    const split = (y: number[]) => ({ x: new Float32Array(y.length), y: Float32Array.from(y), n: y.length });
    const b = trivialBaseline({
      task: 'classification',
      targetShape: [],
      numClasses: 3,
      train: split([0, 0, 0, 1]),
      test: split([0, 1, 2, 2]),
    })!;
    expect(b.loss).toBeCloseTo(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 10);
    expect(b.accuracy).toBe(0.25);
    expect(trivialBaseline({ task: 'regression', targetShape: [], train: split([]) })).toBeUndefined();
  });

  it('loadDataset declares it for every dataset it returns', async () => {
    const ds = await loadDataset({ name: 'adding', length: 10, trainSize: 500, testSize: 10 });
    expect(ds.baseline!.loss).toBeGreaterThan(0.12);
    expect(ds.baseline!.loss).toBeLessThan(0.22);
    const mnist = await loadDataset({ name: 'mnist', normalize: 'standardize' });
    expect(mnist.baseline!.loss).toBeCloseTo(Math.log(10), 1);
    expect(mnist.baseline!.accuracy!).toBeGreaterThan(0.09);
    expect(mnist.baseline!.accuracy!).toBeLessThan(0.13);
  });
});
