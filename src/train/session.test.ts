import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../data/index.js';
import { RunStore } from '../track/store.js';
import { applySet, Config } from './config.js';
import { timeFlowMetrics, trainSession } from './session.js';
import { EVAL_BATCH_BYTES, evalBatchSize, evaluate, setupExperiment } from './trainer.js';

const dir = mkdtempSync(join(tmpdir(), 'gg-session-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(sets: string[]): Config {
  const raw: Record<string, unknown> = {};
  for (const s of sets) applySet(raw, s);
  return Config.parse(raw);
}

describe('timeFlowMetrics', () => {
  const flow = (layer: string, norms: number[]) => ({
    layer,
    sub: 'l0',
    length: norms.length,
    steps: norms.map((_, i) => i),
    norms,
  });

  it('is the horizon and first/last ratio of the layer with the shortest horizon', () => {
    // horizon: steps back from the last while the norm stays >= 1% of the last step's
    const long = flow('a', [0.5, 0.6, 0.8, 1]);
    const short = flow('b', [1e-4, 1e-3, 0.5, 1]);
    expect(timeFlowMetrics({ timeFlow: [long, short] })).toEqual({ time_horizon: 2, time_first_last: 1e-4 });
    expect(timeFlowMetrics({ timeFlow: [long] })).toEqual({ time_horizon: 4, time_first_last: 0.5 });
  });

  it('is nothing without recurrent layers, or when the last step overflowed', () => {
    expect(timeFlowMetrics({})).toEqual({});
    expect(timeFlowMetrics({ timeFlow: [flow('a', [1, Number.NaN])] })).toEqual({});
  });
});

describe('trainSession', () => {
  it("stores a recurrent net's gradient horizon at every monitored step, and none for an MLP", async () => {
    const store = join(dir, 'store');
    const rnn = await trainSession(
      config([
        'data.name=adding',
        'data.length=12',
        'data.trainSize=64',
        'data.testSize=16',
        'model.type=rnn',
        'model.hiddenSize=8',
        'train.maxSteps=3',
        'train.batchSize=16',
      ]),
      { store, source: 'test' },
    );
    const mlp = await trainSession(config(['data.trainSize=64', 'data.testSize=32', 'train.maxSteps=2']), {
      store,
      source: 'test',
    });
    const st = RunStore.open(store, { readonly: true });
    try {
      const m = st.getMetrics(rnn.run!);
      expect(m.steps).toEqual([0, 1, 2, 3]);
      const h = m.series.time_horizon!.slice(0, 3);
      expect(h).toHaveLength(3);
      for (const v of h) expect(v).toSatisfy((x: number | null) => x !== null && x >= 1 && x <= 12);
      expect(m.series.time_first_last!.slice(0, 3).every((v) => v !== null && v > 0)).toBe(true);
      // the final diagnosis reports the same measure as the last stored step
      expect(h[2]).toBe(rnn.diagnosis.time?.[0]?.horizon);
      expect(st.getMetrics(mlp.run!).series.time_horizon).toBeUndefined();
    } finally {
      st.close();
    }
  });
});

describe('evalBatchSize', () => {
  it('keeps 1000 for small nets and cuts it for a deep CNN, never below the training batch', async () => {
    const mnist = await loadDataset({ name: 'mnist', trainSize: 200, testSize: 100 });
    expect(evalBatchSize(config([]), mnist)).toBe(1000);
    // a 56-layer CNN held 14 GiB evaluating 1000 digits in one batch before
    const deep = config(['model.type=cnn', 'model.width=8', 'model.depth=56', 'train.batchSize=32']);
    const b = evalBatchSize(deep, mnist);
    expect(b).toBeGreaterThanOrEqual(32);
    expect(b).toBeLessThan(100);
    expect((b * 14 * 2 ** 30) / 1000).toBeLessThan(2 * EVAL_BATCH_BYTES);
    const huge = config(['model.type=cnn', 'model.width=64', 'model.depth=56', 'train.batchSize=64']);
    expect(evalBatchSize(huge, mnist)).toBe(64);
  });

  it('gives the same loss and accuracy as one batch of 1000', async () => {
    const c = config(['model.type=cnn', 'model.width=4', 'model.depth=4', 'data.trainSize=200', 'data.testSize=60']);
    const ds = await loadDataset({ name: 'mnist', trainSize: 200, testSize: 60 });
    const exp = setupExperiment(c, ds);
    const one = evaluate(exp.model, ds, 'test', 1000);
    const small = evaluate(exp.model, ds, 'test', 7);
    expect(small.accuracy).toBe(one.accuracy);
    expect(small.loss).toBeCloseTo(one.loss, 5);
  });
});
