import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/index.js';
import { flattenState } from '../optim/optimizer.js';
import { linear } from '../tensor/ops/matmul.js';
import { noGrad, tensor } from '../tensor/tensor.js';
import { applyInit, buildModel } from './build.js';
import { loadConfig } from './config.js';
import { Optimizer } from './optimizer.js';

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

  it('init.weight=standard-uniform draws every weight from U(−1/√fanIn, 1/√fanIn) (Glorot & Bengio 2010)', async () => {
    const { config } = loadConfig(undefined, [
      'data.name=spirals',
      'model.hidden=[64,32]',
      'init.weight=standard-uniform',
    ]);
    const ds = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
    const model = buildModel(config, ds);
    applyInit(model, config, ds);
    for (const [k, w] of model.namedParameters().filter(([k]) => k.endsWith('weight'))) {
      const bound = 1 / Math.sqrt(w.shape[1]!);
      const d = [...w.data];
      expect(Math.max(...d.map(Math.abs)), k).toBeLessThanOrEqual(bound);
      expect(Math.max(...d.map(Math.abs)), k).toBeGreaterThan(0.9 * bound);
    }
  });

  it('lsuv without the data is refused', async () => {
    const { config } = loadConfig(undefined, ['data.name=spirals', 'init.weight=lsuv']);
    const ds = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
    expect(() => applyInit(buildModel(config, ds), config)).toThrow(/needs the dataset/);
  });
});

describe('the optimizer of a config', () => {
  it('optim.amsgrad=true gives Adam and AdamW the largest second moments; it is off by default', () => {
    for (const name of ['adam', 'adamw']) {
      const params = { w: tensor([1, 2], [2], { requiresGrad: true }) };
      const { config } = loadConfig(undefined, [`optim.name=${name}`, 'optim.amsgrad=true']);
      const opt = new Optimizer(params, config, 10);
      params.w.grad = tensor([0.5, -1]);
      opt.computeUpdates();
      expect(Object.keys(flattenState(opt.state).tensors).some((k) => k.includes('nuMax.w'))).toBe(true);
      const plain = new Optimizer(params, loadConfig(undefined, [`optim.name=${name}`]).config, 10);
      expect(Object.keys(flattenState(plain.state).tensors).some((k) => k.includes('nuMax'))).toBe(false);
    }
  });
});
