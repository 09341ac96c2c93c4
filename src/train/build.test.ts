import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/index.js';
import { linear } from '../tensor/ops/matmul.js';
import { noGrad, tensor } from '../tensor/tensor.js';
import { applyInit, buildModel } from './build.js';
import { loadConfig } from './config.js';

describe('applyInit', () => {
  it('init.weight=lsuv fits every layer to unit output variance on the training data', async () => {
    const { config } = loadConfig(undefined, ['data.name=spirals', 'model.hidden=[32,32]', 'init.weight=lsuv']);
    const ds = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
    const model = buildModel(config, ds);
    applyInit(model, config, ds);
    const w = model.namedParameters().find(([k]) => k === '0.weight')![1];
    const b = model.namedParameters().find(([k]) => k === '0.bias')![1];
    const n = Math.min(256, ds.train.n);
    const out = noGrad(() => linear(tensor(ds.train.x.subarray(0, n * ds.inputSize), [n, ds.inputSize]), w, b));
    const d = out.data;
    let s = 0;
    for (const v of d) s += v;
    const mu = s / d.length;
    let v2 = 0;
    for (const v of d) v2 += (v - mu) ** 2;
    expect(v2 / d.length).toBeGreaterThan(0.85);
    expect(v2 / d.length).toBeLessThan(1.15);
  });

  it('lsuv without the data is refused', async () => {
    const { config } = loadConfig(undefined, ['data.name=spirals', 'init.weight=lsuv']);
    const ds = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
    expect(() => applyInit(buildModel(config, ds), config)).toThrow(/needs the dataset/);
  });
});
