import { describe, expect, it } from 'vitest';
import { ReLU } from '../nn/activation.js';
import { Sequential } from '../nn/container.js';
import { crossEntropy } from '../nn/functional.js';
import { Linear } from '../nn/linear.js';
import { tensor, tidy } from '../tensor/index.js';
import { bucketLimits, type HistogramRecord, HistogramRecorder, histogram } from './histogram.js';

describe('histogram', () => {
  it('counts finite values in equal-width buckets over [min, max], with num, sum and sum of squares', () => {
    const h = histogram([new Float32Array([0, 1, 2, 3]), [4, Number.NaN, Number.POSITIVE_INFINITY]], 4);
    expect([h.min, h.max, h.num, h.sum, h.sumSquares, h.nonFinite]).toEqual([0, 4, 5, 10, 30, 2]);
    // buckets [0,1) [1,2) [2,3) [3,4]: the maximum falls in the last
    expect([...h.counts]).toEqual([1, 1, 1, 2]);
    expect(bucketLimits(h)).toEqual([1, 2, 3, 4]);
  });

  it('spans [v - 0.5, v + 0.5] when every value is v, and is empty without a finite value', () => {
    const one = histogram([[2, 2, 2]], 2);
    expect([...one.counts]).toEqual([0, 3]);
    expect(bucketLimits(one)).toEqual([2, 2.5]);
    const none = histogram([[Number.NaN]], 3);
    expect([none.num, none.nonFinite, [...none.counts]]).toEqual([0, 1, [0, 0, 0]]);
    expect(Number.isNaN(none.min)).toBe(true);
    expect(bucketLimits(none)).toEqual([]);
  });
});

describe('HistogramRecorder', () => {
  function run(every: number, steps: number) {
    const l0 = new Linear(3, 4, { seed: 0 });
    const l2 = new Linear(4, 2, { seed: 1 });
    const model = new Sequential(l0, new ReLU(), l2);
    const records: HistogramRecord[] = [];
    const rec = new HistogramRecorder(model, { every, bins: 5, onRecord: (r) => records.push(r) }).attach();
    const params = Object.fromEntries(model.namedParameters());
    for (let s = 0; s < steps; s++) {
      model.zeroGrad();
      rec.beginStep(s);
      tidy(() => {
        const l = crossEntropy(model.call(tensor([1, 2, 3, -1, 0.5, 2], [2, 3])), [0, 1]);
        l.backward();
        rec.afterBackward(params);
      });
      rec.endStep();
    }
    rec.detach();
    return { records, l0, l2 };
  }

  it('records each layer’s gradient, weight and output histograms on every `every`-th step', () => {
    const { records, l0, l2 } = run(2, 5);
    expect(records.map((r) => r.step)).toEqual([0, 2, 4]);
    const [a, b] = records[0]!.layers;
    expect([a!.name, b!.name]).toEqual(['0', '2']);
    // 12 weights + 4 biases; 8 weights + 2 biases; outputs of a batch of 2
    expect([a!.weight!.num, a!.grad!.num, a!.act!.num, b!.weight!.num, b!.act!.num]).toEqual([16, 16, 8, 10, 4]);
    const w = [...l0.weight.data, ...l0.bias!.data];
    expect(a!.weight!.min).toBe(Math.min(...w));
    expect(a!.weight!.max).toBe(Math.max(...w));
    expect(a!.weight!.sum).toBeCloseTo(
      w.reduce((s, v) => s + v, 0),
      6,
    );
    const g = [...l2.weight.grad!.data, ...l2.bias!.grad!.data];
    expect(b!.grad!.sumSquares).toBeCloseTo(
      g.reduce((s, v) => s + v * v, 0),
      9,
    );
    expect([...a!.grad!.counts].reduce((s, c) => s + c, 0)).toBe(16);
  });

  it('refuses a cadence that is not a positive integer', () => {
    const model = new Sequential(new Linear(2, 2));
    expect(() => new HistogramRecorder(model, { every: 0 })).toThrow(/every must be a positive integer, got 0/);
  });
});
