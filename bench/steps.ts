/**
 * Our side of `npm run bench`, one backend per process (GRADGUARD_BACKEND picks it): ms per training step of the
 * MLP 784-256-10 (ReLU, Adam, batch 128, per-parameter gradient norms read back and global-norm clipping at 1.0, as
 * bench/torch_bench.py does) and the small CNN (batch 64) (the monitor's cost is bench/monitor-overhead.ts's), and an
 * LSTM step (sequence 100, batch 64, input 32, hidden 128). Prints one JSON line.
 */
import { getBackend } from '../src/backend/index.js';
import { mseLoss } from '../src/nn/functional.js';
import { Linear } from '../src/nn/linear.js';
import { LSTM } from '../src/nn/rnn.js';
import * as optim from '../src/optim/index.js';
import { reshape, slice } from '../src/tensor/ops/shape.js';
import { rand } from '../src/tensor/random.js';
import { keep, type Tensor, tidy } from '../src/tensor/tensor.js';
import { batch, classifierStep, cnnModel, mlpModel } from './common.js';

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

function mlpBench(): number {
  const { x, y } = batch([128, 784]);
  // 30 warm-up steps: V8 first runs wasm on its baseline compiler and swaps in optimized code once it is hot
  return timeit(classifierStep(mlpModel(), x, y, true), 30, 50);
}

function cnnBench(): number {
  const { x, y } = batch([64, 1, 28, 28]);
  return timeit(classifierStep(cnnModel(), x, y), 3, 10);
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
