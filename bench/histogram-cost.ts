/**
 * What per-layer histograms cost (`monitor.histogramEvery`): ms per training step of the MLP 784-256-10 (ReLU, batch
 * 128, global-norm clip 1.0 + Adam 1e-3) with and without the HistogramRecorder recording that step, in alternating
 * steps; the added time of one recorded step, and the overhead it amounts to at a cadence of 1, 10 and 50 steps.
 *
 * Usage: node --import tsx bench/histogram-cost.ts [--steps=200]
 */

import { getBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { HistogramRecorder } from '../src/monitor/histogram.js';
import { crossEntropy } from '../src/nn/functional.js';
import type { AnyModule } from '../src/nn/module.js';
import * as optim from '../src/optim/index.js';
import { type Tensor, tidy } from '../src/tensor/tensor.js';
import { batch, median, mlpModel } from './common.js';

/** A training step that, with a recorder, records every step's histograms. */
function stepper(model: AnyModule, x: Tensor, y: Tensor, rec: HistogramRecorder | null): () => void {
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
  let state = tx.init(params);
  const grads: Record<string, Tensor> = {};
  let step = 0;
  return () => {
    rec?.beginStep(step++);
    tidy(() => {
      const l = crossEntropy(model.call(x), y);
      l.backward();
      return l.item();
    });
    rec?.afterBackward(params);
    for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
    const r = tx.update(grads, state, params);
    state = r.state;
    optim.applyUpdates(params, r.updates);
    for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
    rec?.endStep();
  };
}

const steps = Number(process.argv.find((a) => a.startsWith('--steps='))?.slice(8) ?? 200);
const { x, y } = batch([128, 784]);
const a = mlpModel(0);
const b = mlpModel(0);
let recorded = 0;
const rec = new HistogramRecorder(b, { every: 1, onRecord: () => recorded++ }).attach();
const plain = stepper(a, x, y, null);
const withHist = stepper(b, x, y, rec);
for (let i = 0; i < 5; i++) {
  plain();
  withHist();
}
const tp: number[] = [];
const diff: number[] = [];
const time = (fn: () => void) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};
for (let i = 0; i < steps; i++) {
  const [p, h] = i % 2 === 0 ? [time(plain), time(withHist)] : ((h2) => [time(plain), h2])(time(withHist));
  tp.push(p);
  diff.push(h - p);
}
const p = median(tp);
const added = median(diff);
console.log(`backend ${getBackend().name}, MLP 784-256-10 batch 128, ${steps} paired steps (${recorded} recorded)`);
console.log(`plain step ${p.toFixed(2)} ms; a recorded step adds ${added.toFixed(2)} ms`);
for (const every of [1, 10, 50]) console.log(`  histogramEvery ${every}: ${((100 * added) / every / p).toFixed(2)}%`);
