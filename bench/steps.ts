/**
 * Our side of `npm run bench`, one backend per process (GRADGUARD_BACKEND picks it): ms per training step of the
 * MLP 784-256-10 (ReLU, Adam, batch 128, per-parameter gradient norms read back and global-norm clipping at 1.0, as
 * bench/torch_bench.py does) and the small CNN (batch 64) (the monitor's cost is bench/monitor-overhead.ts's), and an
 * LSTM step (sequence 100, batch 64, input 32, hidden 128). Prints one JSON line.
 */
import { getBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { ReLU } from '../src/nn/activation.js';
import { Flatten, Sequential } from '../src/nn/container.js';
import { Conv2d, MaxPool2d } from '../src/nn/conv.js';
import { crossEntropy, mseLoss } from '../src/nn/functional.js';
import { Linear } from '../src/nn/linear.js';
import { mlp } from '../src/nn/models.js';
import type { AnyModule } from '../src/nn/module.js';
import { LSTM } from '../src/nn/rnn.js';
import * as optim from '../src/optim/index.js';
import { reshape, slice } from '../src/tensor/ops/shape.js';
import { rand, randint } from '../src/tensor/random.js';
import { keep, type Tensor, tidy } from '../src/tensor/tensor.js';
import '../src/tensor/methods.js';

const REPS = 3;

function timeit(fn: () => void, warm: number, n: number): number {
  for (let i = 0; i < warm; i++) fn();
  const all: number[] = [];
  for (let r = 0; r < REPS; r++) {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      fn();
      all.push(performance.now() - t0);
    }
  }
  all.sort((a, b) => a - b);
  return all[Math.floor(all.length / 2)]!;
}

interface Setup {
  model: AnyModule;
  step: () => number;
}

function classifierStep(model: AnyModule, x: Tensor, y: Tensor, readNorms: boolean): Setup {
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
  let state = tx.init(params);
  const grads: Record<string, Tensor> = {};
  return {
    model,
    step: () => {
      const loss = tidy(() => {
        const l = crossEntropy(model.call(x), y);
        l.backward();
        return l.item();
      });
      if (readNorms) {
        // the reference reads every parameter's gradient norm back, as a monitoring user would
        for (const p of Object.values(params)) Math.sqrt(p.grad!.storage.backend.sumSquares(p.grad!.buf, p.grad!.size));
      }
      for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
      const r = tx.update(grads, state, params);
      state = r.state;
      optim.applyUpdates(params, r.updates);
      for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
      return loss;
    },
  };
}

function mlpBench(): number {
  const model = mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed: 0 });
  const x = keep(rand([128, 784], { seed: 1 }));
  const y = keep(randint(0, 10, [128], { seed: 2 }));
  const { step } = classifierStep(model, x, y, true);
  return timeit(step, 10, 50);
}

function cnnModel(): AnyModule {
  return new Sequential(
    new Conv2d(1, 32, 3, { seed: 0 }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(32, 64, 3, { seed: 1 }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Linear(1600, 10, { seed: 2 }),
  );
}

function cnnBench(): number {
  const model = cnnModel();
  const x = keep(rand([64, 1, 28, 28], { seed: 1 }));
  const y = keep(randint(0, 10, [64], { seed: 2 }));
  // NOTE: the PyTorch CNN reference neither clips nor reads norms; clipping here costs one pass over 20k values
  const { step } = classifierStep(model, x, y, false);
  return timeit(step, 3, 10);
}

function lstmBench(): number {
  const lstm = new LSTM(32, 128, { batchFirst: true, seed: 0 });
  const head = new Linear(128, 1, { seed: 1 });
  const params = {
    ...Object.fromEntries(lstm.namedParameters().map(([k, v]) => [`lstm.${k}`, v])),
    ...Object.fromEntries(head.namedParameters().map(([k, v]) => [`head.${k}`, v])),
  };
  const tx = optim.adam({ lr: 1e-3 });
  let state = tx.init(params);
  const x = keep(rand([64, 100, 32], { seed: 1 }));
  const y = keep(rand([64, 1], { seed: 2 }));
  const grads: Record<string, Tensor> = {};
  const step = () => {
    tidy(() => {
      const { output } = lstm.call(x);
      const last = reshape(slice(output, 1, 99, 100), [64, 128]);
      const l = mseLoss(head.call(last), y);
      l.backward();
      return l.item();
    });
    for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
    const r = tx.update(grads, state, params);
    state = r.state;
    optim.applyUpdates(params, r.updates);
    for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
  };
  return timeit(step, 2, 5);
}

const be = getBackend();
const skipSlow = be.name === 'js';
const before = be.stats().freshAllocs;
const mlpMs = mlpBench();
const freshMlp = be.stats().freshAllocs - before;
const out: Record<string, unknown> = {
  backend: be.name,
  threads: be.threads,
  // the native backend's sgemm ('openblas', 'own-avx512', ...) and OpenBLAS's kernel set, as this process saw them
  gemm: 'gemmImpl' in be ? (be as { gemmImpl: string }).gemmImpl : undefined,
  blasCore: 'blasCore' in be ? (be as { blasCore: string }).blasCore : undefined,
  mlp_step_ms: +mlpMs.toFixed(3),
  freshAllocsDuringMlpBench: freshMlp,
};
if (!skipSlow || process.argv.includes('--all')) {
  out.cnn_step_ms = +cnnBench().toFixed(3);
  out.lstm_step_ms = +lstmBench().toFixed(3);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
