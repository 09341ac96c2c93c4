/**
 * The rows' training steps, shared by bench/ours-worker.ts (the timed side of `npm run bench`) and bench/profile.ts
 * (where a step's time goes): each row's model, fixed batch and loss, and one step as the trainer takes it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { loadMnistEmbedded } from '../src/data/mnist.js';
import { Monitor } from '../src/monitor/monitor.js';
import { crossEntropy, mseLoss } from '../src/nn/functional.js';
import { Linear } from '../src/nn/linear.js';
import { cnn, mlp, resnet } from '../src/nn/models.js';
import type { AnyModule } from '../src/nn/module.js';
import { GRU, LSTM } from '../src/nn/rnn.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { dispose, keep, type Tensor, tensor, tidy } from '../src/tensor/tensor.js';
import { SequenceModel } from '../src/train/build.js';
import type { RowSpec } from './rows.js';
import '../src/tensor/methods.js';

/**
 * The MNIST row's batch: the first `b` training digits of the bundled MNIST (the CLI's split, seed 0), standardized as
 * the CLI does by default, and their labels. bench.ts writes the same to a file for PyTorch's side.
 */
export function mnistBatch(b: number): { x: Float32Array; y: Float32Array } {
  const { train } = loadMnistEmbedded({ normalize: 'standardize' });
  return { x: train.x.slice(0, b * 784), y: train.y.slice(0, b) };
}

/** The MNIST row's batch as raw float32 (the digits, then their labels), written once for PyTorch's side. */
let mnistPath: string | null = null;
export function mnistFile(b: number): string {
  if (mnistPath) return mnistPath;
  const dir = mkdtempSync(join(tmpdir(), 'gg-bench-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const { x, y } = mnistBatch(b);
  const all = new Float32Array(x.length + y.length);
  all.set(x);
  all.set(y, x.length);
  mnistPath = join(dir, 'mnist-batch.f32');
  writeFileSync(mnistPath, Buffer.from(all.buffer));
  return mnistPath;
}

/** The row's model (PyTorch's twin is in bench/torch_worker.py), its fixed batch and its loss. */
export function build(spec: RowSpec): {
  model: AnyModule;
  x: Tensor;
  y: Tensor;
  loss: (out: Tensor, y: Tensor) => Tensor;
} {
  const b = spec.batch;
  const seed = 0;
  const labels = () => keep(randint(0, 10, [b], { seed: 2 }));
  switch (spec.id) {
    case 'mlp':
      return {
        model: mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed }),
        x: keep(rand([b, 784], { seed: 1 })),
        y: labels(),
        loss: crossEntropy,
      };
    case 'mlp-mnist': {
      const { x, y } = mnistBatch(b);
      return {
        model: mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed }),
        x: keep(tensor(x, [b, 784])),
        y: keep(tensor(y, [b])),
        loss: crossEntropy,
      };
    }
    case 'cnn':
      // what `gradguard train --set model.type=cnn` builds for 28×28 digits (src/train/build.ts): nn.cnn()'s defaults
      return {
        model: cnn({ inChannels: 1, imageSize: [28, 28], numClasses: 10, seed }),
        x: keep(rand([b, 1, 28, 28], { seed: 1 })),
        y: labels(),
        loss: crossEntropy,
      };
    case 'resnet20':
      return {
        model: resnet({ depth: 20, inChannels: spec.channels!, numClasses: 10, seed }),
        x: keep(rand([b, spec.channels!, spec.size!, spec.size!], { seed: 1 })),
        y: labels(),
        loss: crossEntropy,
      };
    case 'lstm':
    case 'gru': {
      const Cell = spec.id === 'lstm' ? LSTM : GRU;
      const rnn = new Cell(spec.features!, spec.hidden!, { batchFirst: true, seed });
      return {
        // the CLI's sequence model (src/train/build.ts): the recurrent layer and a linear head on the last step
        model: new SequenceModel(rnn, new Linear(spec.hidden!, 1, { seed: seed + 1 }), false),
        x: keep(rand([b, spec.seq!, spec.features!], { seed: 1 })),
        y: keep(rand([b, 1], { seed: 2 })),
        loss: mseLoss,
      };
    }
  }
}

/** One training step as the trainer takes it, with or without the monitor's hooks. */
export function stepper(spec: RowSpec, monitored: boolean): () => number {
  const { model, x, y, loss } = build(spec);
  model.train();
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
  let state = tx.init(params);
  const mon = monitored ? new Monitor(model, { every: 1, maxHistory: 100 }).attach() : null;
  const grads: Record<string, Tensor> = {};
  const weightSS: Record<string, number> = {};
  const updateSS: Record<string, number> = {};
  // as the trainer does: the chain measures the gradients on entry (for the clip, the non-finite check and the
  // monitor), and Adam's pass applies the updates where it can (and measures them for the monitor)
  const gradStats = optim.gradientStats();
  const follow = { updateNormsFollow: true, gradStats };
  const gradsFollow = { gradNormsFollow: true };
  const plan: optim.ApplyPlan = mon
    ? {
        weightBounds: {},
        weightSumSquares: weightSS,
        updateSumSquares: updateSS,
        beforeApply: (u) => mon.afterUpdate(u, params, state, follow),
        gradStats,
        stopOnNonFiniteGradients: true,
      }
    : { weightBounds: {}, gradStats, stopOnNonFiniteGradients: true };
  let step = 0;
  return () => {
    mon?.beginStep(step);
    const l = tidy(() => {
      const out = loss(model.call(x), y);
      out.backward();
      return out.item();
    });
    mon?.afterBackward(params, gradsFollow);
    for (const [k, p] of Object.entries(params)) {
      if (p.grad) grads[k] = p.grad;
      else delete grads[k];
    }
    const r = optim.updateAndApply(tx, grads, state, params, plan);
    state = r.state;
    if (r.nonFiniteGradient !== undefined) throw new Error(`bench: '${r.nonFiniteGradient}' has a non-finite gradient`);
    if (r.applied) mon?.afterApply(weightSS, updateSS);
    else if (mon) {
      // the pass that applies the updates measures them and the weights they leave
      mon.afterUpdate(r.updates, params, r.state, follow);
      optim.applyUpdates(params, r.updates, weightSS, updateSS);
      mon.afterApply(weightSS, updateSS);
    } else optim.applyUpdates(params, r.updates);
    // as the trainer's Optimizer.zeroGrad (PyTorch's set_to_none): the next backward's gradients become the .grad
    for (const p of Object.values(params)) {
      if (p.grad) dispose(p.grad);
      p.grad = null;
    }
    mon?.endStep(l);
    step++;
    return l;
  };
}

/** GFLOP/s of the backend's sgemm on x [m,k] by wᵀ (w [n,k], as nn.Linear multiplies), best of 5 rounds. */
export function sgemm(m: number, k: number, n: number, ms: number): number {
  const be = getBackend();
  const a = be.alloc(m * k);
  const w = be.alloc(n * k);
  const c = be.alloc(m * n);
  for (let i = 0; i < a.data.length; i++) a.data[i] = ((i * 7919) % 1000) / 1000;
  for (let i = 0; i < w.data.length; i++) w.data[i] = ((i * 104729) % 1000) / 1000;
  const once = () => be.sgemm(false, true, m, n, k, 1, a, 0, k, w, 0, k, 0, c, 0, n);
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once();
    if (performance.now() - t0 >= ms / 4 || reps > 1e6) break;
    reps *= 2;
  }
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once();
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  be.free(a);
  be.free(w);
  be.free(c);
  return (2 * m * k * n) / best / 1e6;
}
