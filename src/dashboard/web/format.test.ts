/** The dashboard's number formatting and the helpers its charts use to draw a diverged run (no DOM needed). */
import { describe, expect, it } from 'vitest';
import { fmtNum, isolatedPoints, logSplits, logTicks, nonFiniteSteps, numberTicks } from './format.js';

describe('axis labels stay short whatever the values', () => {
  it('log ticks: every decade up to float32 and beyond, written compactly', () => {
    const splits = logSplits(1, 1e38);
    expect(splits).toEqual([1, 1e7, 1e14, 1e21, 1e28, 1e35]);
    expect(logTicks(splits)).toEqual(['1', '1e7', '1e14', '1e21', '1e28', '1e35']);
    expect(logTicks([4.1e14, 0.5, 0.001, 2e-7, null])).toEqual(['4.1e14', '0.5', '0.001', '2e-7', '']);
  });
  it('log splits: 1-2-5 in a narrow range, decades in a wide one, never empty', () => {
    expect(logSplits(0.1, 10)).toEqual([0.1, 0.2, 0.5, 1, 2, 5, 10]);
    expect(logSplits(0.5, 0.9)).toEqual([0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(logSplits(2.1, 2.9)).toEqual([2.1, 2.9]);
    expect(logSplits(1, 1e19)).toEqual([1, 1e4, 1e8, 1e12, 1e16]);
    expect(logSplits(0, 10)).toEqual([]);
  });
  it('linear ticks: decimals as the spacing needs, compact exponents for huge values', () => {
    expect(numberTicks([0, 0.25, 0.5])).toEqual(['0.00', '0.25', '0.50']);
    expect(numberTicks([1e14, 2e14, 3e14, null])).toEqual(['1e14', '2e14', '3e14', '']);
    expect(numberTicks([4.1e14, 4.15e14, 4.2e14])).toEqual(['4.1e14', '4.15e14', '4.2e14']);
    for (const t of numberTicks([0, 1e20, 2e20, 3e20])) expect(t.length).toBeLessThanOrEqual(7);
  });
  it('fmtNum writes huge values as 1.68e22', () => {
    expect(fmtNum(1.684e22)).toBe('1.68e22');
    expect(fmtNum(414769437736960.1)).toBe('4.15e14');
    expect(fmtNum(0.1234567)).toBe('0.1235');
    expect(fmtNum('NaN')).toBe('NaN');
  });
});

describe('a diverged series', () => {
  const xs = [0, 1, 2, 3, 4, 5, 6, 7];
  const loss = [2.3, 1e30, Number.NaN, 5, Number.NaN, Number.POSITIVE_INFINITY, null, 1];
  it('marks where it is not finite (null is "not logged", not counted), as runs of neighbouring steps', () => {
    expect(nonFiniteSteps(xs, [loss])).toEqual({
      steps: [2, 4, 5],
      ranges: [
        [2, 2],
        [4, 5],
      ],
    });
    expect(nonFiniteSteps(xs, [[1, 2, 3, 4, 5, 6, 7, 8]])).toEqual({ steps: [], ranges: [] });
  });
  it('finds the finite points a line cannot show (no finite neighbour)', () => {
    const clean = loss.map((v) => (v === null || !Number.isFinite(v) ? null : v));
    expect(isolatedPoints(clean)).toEqual([3, 7]);
    expect(isolatedPoints([1, 2, null, 3])).toEqual([3]);
  });
});
