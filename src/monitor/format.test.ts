import { describe, expect, it } from 'vitest';
import { formatCompact, formatExp, formatMetric } from './format.js';

describe('formatMetric: fixed for ordinary magnitudes, exponent for huge and tiny ones', () => {
  it.each([
    [2.302585, '2.3026'],
    [0, '0.0000'],
    [0.001, '0.0010'],
    [9999.99994, '9999.9999'],
    [-1234.56789, '-1234.5679'],
    [10000, '1e4'],
    [414769437736960, '4.15e14'],
    [1.684e22, '1.68e22'],
    [-3.4e38, '-3.4e38'],
    [0.00099, '9.9e-4'],
    [3.2e-7, '3.2e-7'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
  ])('%d → %s', (x, s) => {
    expect(formatMetric(x)).toBe(s);
    expect(formatMetric(x).length).toBeLessThanOrEqual(10);
  });
  it('takes the decimals', () => {
    expect(formatMetric(0.5, 2)).toBe('0.50');
  });
});

describe('formatExp and formatCompact', () => {
  it('write exponents without + and trailing zeros', () => {
    expect(formatExp(414769437736960)).toBe('4.15e14');
    expect(formatExp(4.1e14, 2)).toBe('4.1e14');
    expect(formatExp(1e14, 2)).toBe('1e14');
    expect(formatExp(9.996e14, 3)).toBe('1e15');
    expect(formatExp(-2.5e-9)).toBe('-2.5e-9');
  });
  it('keeps short labels short', () => {
    expect([0.25, 1, 1000, 9999, 1e14, 4.1e14, 1e-5, 0].map((x) => formatCompact(x, 2))).toEqual([
      '0.25',
      '1',
      '1000',
      '10000',
      '1e14',
      '4.1e14',
      '1e-5',
      '0',
    ]);
  });
});
