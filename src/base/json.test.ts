import { describe, expect, it } from 'vitest';
import { decodeDeep, decodeNumber, encodeDeep, encodeNumber, isNonFiniteString, stringifyJson } from './json.js';

describe('the non-finite JSON codec', () => {
  it('encodes NaN and ±Infinity as strings and decodes them back', () => {
    const xs = [0, -1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    expect(xs.map(encodeNumber)).toEqual([0, -1.5, 'NaN', 'Infinity', '-Infinity']);
    expect(xs.map(encodeNumber).map(decodeNumber)).toEqual(xs);
    expect(decodeNumber('nonsense')).toBeNaN();
    expect(isNonFiniteString('Infinity')).toBe(true);
    expect(isNonFiniteString('inf')).toBe(false);
  });

  it('walks arrays, leaving other values alone', () => {
    const v = [1, [Number.NaN, Number.NEGATIVE_INFINITY], 'x', null];
    expect(encodeDeep(v)).toEqual([1, ['NaN', '-Infinity'], 'x', null]);
    expect(decodeDeep(encodeDeep(v))).toEqual(v);
  });

  it('stringifies objects with non-finite numbers as their strings', () => {
    expect(stringifyJson({ a: Number.NaN, b: [Number.POSITIVE_INFINITY, 2] })).toBe('{"a":"NaN","b":["Infinity",2]}');
  });
});
