import { describe, expect, it } from 'vitest';
import type { HistogramItem } from '../histograms-api.js';
import { ridgePlots } from './histograms.js';

const item = (step: number, layer: string, min: number, max: number, counts: number[]): HistogramItem => ({
  step,
  layer,
  kind: 'grad',
  min,
  max,
  num: counts.reduce((s, c) => s + c, 0),
  nonFinite: 0,
  counts,
});

describe('ridgePlots', () => {
  it('puts each step’s bucket centres on the layer’s shared value axis, heights over its tallest bucket', () => {
    const plots = ridgePlots([item(0, 'a', 0, 2, [1, 3]), item(50, 'a', -2, 2, [2, 2, 4, 0])], 'grad');
    expect(plots).toHaveLength(1);
    const p = plots[0]!;
    expect([p.layer, p.lo, p.hi]).toEqual(['a', -2, 2]);
    // step 0: centres 0.5 and 1.5 on [-2, 2] → 0.625, 0.875
    expect(p.ridges[0]).toEqual({
      step: 0,
      points: [
        [0.625, 1 / 3],
        [0.875, 1],
      ],
    });
    expect(p.ridges[1]!.points.map(([x]) => x)).toEqual([0.125, 0.375, 0.625, 0.875]);
    expect(p.ridges[1]!.points.map(([, y]) => y)).toEqual([0.5, 0.5, 1, 0]);
  });

  it('keeps one kind, leaves out empty histograms, and thins to at most maxRidges steps, the last kept', () => {
    const items = Array.from({ length: 10 }, (_, i) => item(i * 50, 'b', 0, 1, [1]));
    items.push({ ...item(9, 'b', 0, 1, [0]), num: 0, min: 'NaN', max: 'NaN' });
    items.push({ ...item(0, 'b', 0, 1, [1]), kind: 'weight' });
    const [p] = ridgePlots(items, 'grad', 4);
    expect(p!.ridges.map((r) => r.step)).toEqual([0, 150, 300, 450]);
    expect(ridgePlots(items, 'act')).toEqual([]);
  });
});
