import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataConfig as CliDataConfig } from '../train/config.js';
import { type DataConfig, DataError, encodeIdx, expandPath, FASHION_MNIST_DIR, loadDataset } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'gradguard-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function dataError(p: Promise<unknown>): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error('expected a DataError');
}

describe('loadDataset', () => {
  it('defaults to the bundled MNIST digits, 8,000 / 2,000', async () => {
    const ds = await loadDataset();
    expect(ds.name).toBe('mnist');
    expect([ds.train.n, ds.test.n]).toEqual([8000, 2000]);
    // the CLI's default normalisation (config.ts's data.normalize): standardized, as `gradguard train` sees them
    expect(CliDataConfig.parse({}).normalize).toBe('standardize');
    expect(ds.normalization?.kind).toBe('standardize');
    const std = await loadDataset({ name: 'mnist', source: 'embedded', normalize: 'standardize', testSize: 500 });
    expect(std.test.n).toBe(500);
    expect(std.normalization?.kind).toBe('standardize');
    const same = await loadDataset({ normalize: 'standardize' });
    expect(ds.train.x.subarray(0, 784 * 4)).toEqual(same.train.x.subarray(0, 784 * 4));
    const raw = await loadDataset({ normalize: 'none' });
    expect(raw.normalization).toBeUndefined();
    expect(Math.min(...raw.train.x.subarray(0, 784))).toBeGreaterThanOrEqual(0);
    expect(Math.min(...ds.train.x.subarray(0, 784))).toBeLessThan(0);
  });

  it('reads mnist from an IDX directory (with ~ expanded) and generic idx', async () => {
    const put = (name: string, dims: number[]) =>
      writeFileSync(
        join(dir, name),
        encodeIdx({
          dtype: 'uint8',
          dims,
          data: Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => i % 10),
        }),
      );
    put('train-images-idx3-ubyte', [10, 28, 28]);
    put('train-labels-idx1-ubyte', [10]);
    put('t10k-images-idx3-ubyte', [10, 28, 28]);
    put('t10k-labels-idx1-ubyte', [10]);
    const ds = await loadDataset({ name: 'mnist', source: 'idx', dir });
    expect(ds.train.n).toBe(10);
    const generic = await loadDataset({ name: 'idx', dir, numClasses: 12 });
    expect(generic.numClasses).toBe(12);
    expect(expandPath('~/x')).toBe(join(homedir(), 'x'));
  });

  it('builds the synthetic tasks from their keys, with normalisation if asked', async () => {
    const s = await loadDataset({ name: 'spirals', classes: 5, trainSize: 50, testSize: 10 });
    expect(s.numClasses).toBe(5);
    const a = await loadDataset({ name: 'adding', length: 7, trainSize: 4, testSize: 2, normalize: 'standardize' });
    expect(a.inputShape).toEqual([7, 2]);
    expect(a.normalization?.kind).toBe('standardize');
    const c = await loadDataset({ name: 'copy', length: 3, symbols: 2, trainSize: 4, testSize: 2 });
    expect(c.inputShape).toEqual([7, 10]);
  });

  it('loads a csv', async () => {
    const f = join(dir, 'd.csv');
    writeFileSync(f, `x,label\n${Array.from({ length: 10 }, (_, i) => `${i},${i % 2}`).join('\n')}`);
    const ds = await loadDataset({ name: 'csv', file: f, label: 'label' });
    expect(ds.train.n + ds.test.n).toBe(10);
  });

  it('unknown names, sources and values, and missing keys, are DataErrors that list the choices', async () => {
    const e1 = await dataError(loadDataset({ name: 'cifar' } as unknown as DataConfig));
    expect(e1.message).toBe(
      'data.name: unknown dataset "cifar"; expected one of mnist, fashion-mnist, idx, csv, spirals, circles, xor, gaussians, adding, copy',
    );
    const e2 = await dataError(loadDataset({ name: 'mnist', source: 'ftp' } as unknown as DataConfig));
    expect(e2.message).toMatch(/data\.source: unknown source "ftp" for mnist; expected one of embedded, idx, download/);
    const e3 = await dataError(loadDataset({ name: 'mnist', source: 'idx' }));
    expect(e3.message).toMatch(/data\.dir is required with data\.source: idx/);
    const e6 = await dataError(loadDataset({ name: 'mnist', source: 'idx', dir, testSize: 100 }));
    expect(e6.message).toMatch(/data\.testSize applies only to data\.source: embedded/);
    const e4 = await dataError(loadDataset({ name: 'mnist', normalize: 'minmax' } as unknown as DataConfig));
    expect(e4.message).toMatch(/data\.normalize: unknown value "minmax"/);
    await expect(loadDataset({ name: 'idx' } as unknown as DataConfig)).rejects.toThrow(/data\.dir is required/);
    await expect(loadDataset({ name: 'csv' } as unknown as DataConfig)).rejects.toThrow(/data\.file is required/);
    const e5 = await dataError(loadDataset({ name: 'fashion-mnist', dir: join(dir, 'nowhere') }));
    expect(e5.code).toBe('not-found');
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))('fashion-mnist defaults to the Debian directory', async () => {
    const ds = await loadDataset({ name: 'fashion-mnist' });
    expect(ds.source).toBe(FASHION_MNIST_DIR);
    expect(ds.test.n).toBe(10_000);
  });
});
