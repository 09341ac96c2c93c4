import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_KINDS, type TestStore, testStore } from '../../test/services/stores.js';
import { histogram, type LayerHistograms } from '../monitor/histogram.js';
import { decodeHistogram, encodeHistogram } from './histograms.js';
import { RunStore } from './store.js';

let t: TestStore;
let store: RunStore;

function layers(step: number): LayerHistograms[] {
  return [
    { name: 'layers.0', grad: histogram([[step, -1, 2]], 3), weight: histogram([[0.5, 0.25]], 3) },
    { name: 'layers.2', act: histogram([[1, 2, 3, Number.NaN]], 3) },
  ];
}

describe('histograms as blobs', () => {
  it('encode as 48 header bytes and 4 bytes a bucket, and decode to the same histogram', () => {
    const h = histogram([[1, 2, 3, Number.NaN, -7]], 30);
    const blob = encodeHistogram(h);
    expect(blob.byteLength).toBe(48 + 30 * 4);
    expect(decodeHistogram(blob, 'x')).toEqual(h);
    expect(() => decodeHistogram(blob.subarray(0, 50), 'runs.db')).toThrow(/runs.db: a histogram has the wrong size/);
  });
});

describe.each(STORE_KINDS)('histograms in the run store on %s', (kind) => {
  beforeEach(async () => {
    t = await testStore(kind, 'gg-hist-');
    store = RunStore.open(t.spec);
  });
  afterEach(async () => {
    store.close();
    await t.drop();
  });

  it('are logged per step and read back by step, layer and kind; a step logged again is replaced', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    store.logHistograms(id, 0, layers(0));
    store.logHistograms(id, 50, layers(50));
    store.logHistograms(id, 50, layers(51));
    const rows = store.getHistograms(id);
    expect(rows.map((r) => [r.step, r.layer, r.kind])).toEqual([
      [0, 'layers.0', 'grad'],
      [0, 'layers.0', 'weight'],
      [0, 'layers.2', 'act'],
      [50, 'layers.0', 'grad'],
      [50, 'layers.0', 'weight'],
      [50, 'layers.2', 'act'],
    ]);
    expect(rows[3]!.hist).toEqual(layers(51)[0]!.grad);
    expect(store.getHistograms(id, { fromStep: 1 })).toHaveLength(3);
  });

  it('after a resume from an earlier step, keep only the steps before it; a removed run keeps none', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    for (const s of [0, 50, 100]) {
      store.logStep(id, s, { loss: 1 });
      store.logHistograms(id, s, layers(s));
    }
    store.finishRun(id, 'interrupted');
    store.resumeRun(id, { fromStep: 60 });
    expect([...new Set(store.getHistograms(id).map((r) => r.step))]).toEqual([0, 50]);
    store.finishRun(id, 'finished');
    store.deleteRun(id);
    expect(store.listRuns()).toEqual([]);
    const other = store.createRun({ config: {}, backend: 'js' });
    expect(store.getHistograms(other)).toEqual([]);
    expect(() => store.logHistograms(other, -1, [])).toThrow(/step must be an integer >= 0, got -1/);
  });
});
